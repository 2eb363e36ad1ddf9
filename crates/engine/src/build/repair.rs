//! Repairing the links that pointed at removed nodes.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use rayon::prelude::*;

use super::graph::{link, prune, BuildGraph};
use super::params::Params;
use super::Control;
use crate::error::{Error, Result};
use crate::graph::{select_neighbors, Dist, Graph, Scored};
use crate::space::Space;

/// Gives every kept node that linked to a removed node new links, chosen among its kept
/// neighbours and the removed nodes' neighbours.
pub(super) fn repair<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    removed: &[u32],
    params: &Params,
    control: &Control<'_>,
) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let mut is_removed = vec![false; graph.ids.len()];
    for &p in removed {
        is_removed[p as usize] = true;
    }
    let total = graph.ids.len() as u64;
    let done = AtomicU64::new(0);
    let distance =
        |a: u32, b: u32| space.pair(&graph.vectors[a as usize], &graph.vectors[b as usize]);
    (0..graph.ids.len() as u32)
        .into_par_iter()
        .try_for_each(|p| {
            let count = done.fetch_add(1, AtomicOrdering::Relaxed) + 1;
            if count.is_multiple_of(4096) {
                control.check()?;
                control.report("repair", count, total);
            }
            if !graph.in_graph[p as usize] || is_removed[p as usize] {
                return Ok(());
            }
            let mut scratch = Vec::new();
            let mut second = Vec::new();
            for level in 0..=graph.levels[p as usize] {
                graph.neighbors(p, level, &mut scratch)?;
                if !scratch.iter().any(|&q| is_removed[q as usize]) {
                    continue;
                }
                // Candidates: everything two hops away (through kept and removed neighbours alike),
                // so the node can re-link across the hole.
                let survivors: Vec<u32> = scratch
                    .iter()
                    .copied()
                    .filter(|&q| !is_removed[q as usize])
                    .collect();
                let mut pool: Vec<u32> = Vec::with_capacity(scratch.len() * scratch.len());
                for &q in &scratch {
                    graph.neighbors(q, level, &mut second)?;
                    pool.extend(
                        second.iter().copied().filter(|&r| {
                            r != p && !is_removed[r as usize] && !survivors.contains(&r)
                        }),
                    );
                }
                pool.sort_unstable();
                pool.dedup();
                let mut scored: Vec<Scored> =
                    pool.iter().map(|&q| (Dist(distance(p, q)), q)).collect();
                scored.sort_unstable();

                // The surviving links stay; the freed slots go to the best new candidates, chosen
                // with the heuristic among themselves. Re-pruning the whole list would leave the node
                // with far fewer links than insertion gave it (back-links are only pruned on
                // overflow), and recall drops by points.
                let capacity = params.capacity(level as usize);
                let slots = scratch.len().min(capacity).saturating_sub(survivors.len());
                let fresh = select_neighbors(&scored, slots, params.alpha, distance);
                // Under the list's lock, so that links other threads added since it was read
                // (their own repairs linking back) stay.
                graph.with_list(p, level, |list| {
                    list.retain(|&q| !is_removed[q as usize]);
                    for &(_, q) in &fresh {
                        if !list.contains(&q) {
                            list.push(q);
                        }
                    }
                    if list.len() > capacity {
                        prune(space, &graph.vectors, p, list, capacity, params.alpha);
                    }
                });
                graph.mark_dirty(p);
                // New neighbours link back, as on insertion, so the hole closes from both sides.
                for &(d, q) in &fresh {
                    link(space, graph, q, level, &[(d, p)], capacity, params.alpha);
                }
            }
            Ok::<(), Error>(())
        })?;
    control.report("repair", total, total);
    Ok(())
}
