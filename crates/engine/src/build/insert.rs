//! Inserting the new nodes into the graph, in parallel.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use rayon::prelude::*;

use super::graph::{link, BuildGraph, Entry, VISITED};
use super::params::Params;
use super::Control;
use crate::error::{Error, Result};
use crate::graph::{search_level, select_neighbors, will_need, Dist, Scored};
use crate::space::{Scorer, Space};

/// How many nodes ahead of the one it inserts a thread asks for the full vector of (see
/// `insert_all`): about 3 ms of insertions at 384 dimensions, time for a disk read.
const AHEAD: usize = 32;

/// Inserts `nodes` into the graph in parallel; returns the final entry point. With
/// `read_ahead` (the full vectors of a quantized index are in a file not in the page cache),
/// each thread asks for the full vector of the node `AHEAD` places after the one it inserts:
/// a thread inserts a run of nodes in order, and each insertion's query would otherwise wait
/// for its own disk read (600k × 384 binary in a 700 MiB memory limit: 54 s of insertion
/// against 32 s with the file in memory).
pub(super) fn insert_all<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    nodes: &[u32],
    entry: Entry,
    params: &Params,
    control: &Control<'_>,
    read_ahead: bool,
) -> Result<Entry> {
    let total = nodes.len() as u64;
    control.report("insert", 0, total);
    let (first, rest) = match (entry.node, nodes.split_first()) {
        (_, None) => return Ok(entry),
        // An empty graph: the first node is the entry point.
        (None, Some((&first, rest))) => {
            graph.dirty[first as usize].store(true, AtomicOrdering::Relaxed);
            (Some(first), rest)
        }
        (Some(_), Some(_)) => (None, nodes),
    };
    let entry = Mutex::new(match first {
        Some(p) => Entry {
            node: Some(p),
            top: graph.levels[p as usize],
        },
        None => entry,
    });
    let done = AtomicU64::new(first.is_some() as u64);
    rest.par_iter()
        .enumerate()
        .with_min_len(64)
        .try_for_each(|(i, &p)| {
            control.check()?;
            if read_ahead {
                if let Some(full) = rest.get(i + AHEAD).and_then(|&q| graph.full_vector(q)) {
                    will_need(full);
                }
            }
            insert_one(space, graph, p, &entry, params)?;
            let count = done.fetch_add(1, AtomicOrdering::Relaxed) + 1;
            if count.is_multiple_of(256) {
                control.report("insert", count, total);
            }
            Ok::<(), Error>(())
        })?;
    control.report("insert", total, total);
    Ok(entry.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn insert_one<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    p: u32,
    entry: &Mutex<Entry>,
    params: &Params,
) -> Result<()> {
    let level = graph.levels[p as usize];
    let (mut ep, top) = {
        let e = entry.lock().unwrap_or_else(|e| e.into_inner());
        (e.node, e.top)
    };
    // A node that tops the graph holds the entry lock for its whole insertion (rare), so two
    // such nodes do not race to become the entry point.
    let mut top_guard = if level > top {
        let guard = entry.lock().unwrap_or_else(|e| e.into_inner());
        ep = guard.node;
        Some(guard)
    } else {
        None
    };
    let top = top_guard.as_ref().map_or(top, |g| g.top);
    let Some(ep) = ep else {
        return Ok(());
    };
    let query = graph.scorer(space, p);
    let distance =
        |a: u32, b: u32| space.pair(&graph.vectors[a as usize], &graph.vectors[b as usize]);
    let not_self = |q: u32| q != p;
    VISITED.with(|visited| -> Result<()> {
        let mut visited = visited.borrow_mut();
        let mut scratch = Vec::new();
        let mut current: Vec<Scored> = vec![(Dist(query.score(&graph.vectors[ep as usize])), ep)];
        for l in (level.saturating_add(1)..=top).rev() {
            visited.reset(graph.ids.len());
            current = search_level(
                graph,
                &query,
                &current,
                l,
                1,
                &mut *visited,
                &not_self,
                &mut scratch,
            )?;
            if current.is_empty() {
                current = vec![(Dist(query.score(&graph.vectors[ep as usize])), ep)];
            }
        }
        for l in (0..=level.min(top)).rev() {
            visited.reset(graph.ids.len());
            let found = search_level(
                graph,
                &query,
                &current,
                l,
                params.ef_construction,
                &mut *visited,
                &not_self,
                &mut scratch,
            )?;
            // Like hnswlib: a new node picks m neighbours on every level; on level 0 the links
            // that others add back fill its list up to m0. Fewer links to score per visit make
            // both the build and the searches faster for the same recall.
            let capacity = params.capacity(l as usize);
            let chosen = select_neighbors(&found, params.m, params.alpha, distance);
            link(space, graph, p, l, &chosen, capacity, params.alpha);
            for &(_, q) in &chosen {
                link(
                    space,
                    graph,
                    q,
                    l,
                    &[(Dist(distance(q, p)), p)],
                    capacity,
                    params.alpha,
                );
            }
            if !found.is_empty() {
                current = found;
            }
        }
        Ok(())
    })?;
    if let Some(guard) = top_guard.as_mut() {
        if level > guard.top {
            guard.node = Some(p);
            guard.top = level;
        }
    }
    Ok(())
}
