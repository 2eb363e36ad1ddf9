//! Reconnecting level-0 nodes that pruning left unreachable.

use super::graph::{BuildGraph, VISITED};
use super::params::Params;
use super::Control;
use crate::error::Result;
use crate::graph::{search_level, Dist, Scored};
use crate::space::{Scorer, Space};

/// Makes every level-0 node reachable from the entry point. Pruning can drop a node from every
/// list that linked to it (a few nodes in 100,000 of real embeddings; more with equal vectors),
/// and such a node is never found, not even by a search for its own vector. Each one is linked
/// from its nearest reachable neighbour, found among its own links or else by a search from the
/// entry point: into a free slot, or in place of that neighbour's farthest link that is not how
/// a node was reached (the links of a spanning tree from the entry stay, so nothing reachable
/// becomes unreachable).
pub(super) fn reconnect<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    entry: Option<u32>,
    params: &Params,
    control: &Control<'_>,
) -> Result<()> {
    let Some(entry) = entry else {
        return Ok(());
    };
    let n = graph.ids.len();
    let capacity = params.m0; // the lists' slots: stored lists were cut to m0 on load
    const NONE: u32 = u32::MAX;
    // The node through which each reached node was first reached; NONE for the rest.
    let mut parent = vec![NONE; n];
    let mut list = Vec::new();
    let mut stack = Vec::new();
    let visit = |from: u32, parent: &mut [u32], stack: &mut Vec<u32>, list: &mut Vec<u32>| {
        stack.push(from);
        while let Some(p) = stack.pop() {
            graph.links0.read(p, list);
            for &q in list.iter() {
                if parent[q as usize] == NONE && q != entry {
                    parent[q as usize] = p;
                    stack.push(q);
                }
            }
        }
    };
    let reached = |parent: &[u32], p: u32| p == entry || parent[p as usize] != NONE;
    visit(entry, &mut parent, &mut stack, &mut list);
    let mut waiting: Vec<u32> = (0..n as u32)
        .filter(|&p| graph.in_graph[p as usize] && !reached(&parent, p))
        .collect();
    let mut scratch = Vec::new();
    let mut search_scratch = Vec::new();
    // Links `p` from the first of `nearest` (reachable nodes, nearest first) whose list takes
    // it: into a free slot, or in place of its farthest link that is not a tree link.
    let try_link = |p: u32, nearest: &[Scored], parent: &mut [u32], scratch: &mut Vec<u32>| {
        for &(_, q) in nearest {
            let added = graph.links0.update(q, scratch, |links| {
                if links.len() < capacity {
                    links.push(p);
                    return true;
                }
                let from = &graph.vectors[q as usize];
                let farthest = (0..links.len())
                    .filter(|&i| parent[links[i] as usize] != q)
                    .map(|i| (Dist(space.pair(from, &graph.vectors[links[i] as usize])), i))
                    .max();
                match farthest {
                    Some((_, i)) => {
                        links[i] = p;
                        true
                    }
                    None => false,
                }
            });
            if added == Some(true) {
                graph.mark_dirty(q);
                parent[p as usize] = q;
                return true;
            }
        }
        false
    };
    // A node linked now can make others reachable; the rest wait for the next pass.
    while !waiting.is_empty() {
        control.check()?;
        let before = waiting.len();
        let mut still = Vec::new();
        for &p in &waiting {
            if reached(&parent, p) {
                continue;
            }
            let base = &graph.vectors[p as usize];
            graph.links0.read(p, &mut list);
            let mut nearest: Vec<Scored> = list
                .iter()
                .filter(|&&q| reached(&parent, q))
                .map(|&q| (Dist(space.pair(base, &graph.vectors[q as usize])), q))
                .collect();
            nearest.sort_unstable();
            let mut linked = try_link(p, &nearest, &mut parent, &mut scratch);
            if !linked {
                // Its links lead only to unreachable nodes (a closed group), or to lists that
                // cannot take it: search from the entry point, which meets reachable nodes only.
                VISITED.with(|visited| -> Result<()> {
                    let mut visited = visited.borrow_mut();
                    visited.reset(n);
                    let query = space.value_scorer(base);
                    let start = [(Dist(query.score(&graph.vectors[entry as usize])), entry)];
                    nearest = search_level(
                        graph,
                        &query,
                        &start,
                        0,
                        params.ef_construction,
                        &mut *visited,
                        &|q| q != p,
                        &mut search_scratch,
                    )?;
                    Ok(())
                })?;
                linked = try_link(p, &nearest, &mut parent, &mut scratch);
            }
            if linked {
                visit(p, &mut parent, &mut stack, &mut list);
            } else {
                still.push(p);
            }
        }
        still.retain(|&p| !reached(&parent, p));
        if still.len() == before {
            break; // no list could take any of them
        }
        waiting = still;
    }
    Ok(())
}
