//! The graph a build works on, over dense positions, and the link-list operations the phases
//! share (adding links, pruning with the heuristic).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Mutex;

use crate::error::Result;
use crate::graph::{select_neighbors, Dist, Graph, Marks, Scored};
use crate::level0::Level0;
use crate::space::Space;

use super::values::Values;

/// The graph being built, over dense positions (the index of an item in `ids`).
pub(super) struct BuildGraph<'t> {
    pub(super) ids: Vec<u32>,
    pub(super) vectors: Values<'t>,
    pub(super) levels: Vec<u8>,
    pub(super) in_graph: Vec<bool>,
    /// The full-precision stored vectors of the nodes to insert, when `vectors` holds codes
    /// (quantized indexes): inserting a node searches with its full vector.
    pub(super) full: Vec<Option<&'t [u8]>>,
    /// Level-0 links of every node.
    pub(super) links0: Level0,
    /// Links on levels 1..=level, for nodes above level 0.
    pub(super) upper: Vec<Vec<Mutex<Vec<u32>>>>,
    pub(super) dirty: Vec<AtomicBool>,
}

impl BuildGraph<'_> {
    /// The links of `node` on an upper `level` (level 0 lives in `links0`).
    fn upper_list(&self, node: u32, level: u8) -> Option<&Mutex<Vec<u32>>> {
        self.upper
            .get(node as usize)?
            .get((level as usize).checked_sub(1)?)
    }

    pub(super) fn position(&self, id: u32) -> Option<u32> {
        position_in(&self.ids, id)
    }

    /// Runs `f` on the links of `node` on `level` under the list's lock and keeps what it
    /// leaves; `None` when the node has no list there.
    pub(super) fn with_list<R>(
        &self,
        node: u32,
        level: u8,
        f: impl FnOnce(&mut Vec<u32>) -> R,
    ) -> Option<R> {
        if level == 0 {
            LIST.with(|scratch| self.links0.update(node, &mut scratch.borrow_mut(), f))
        } else {
            let list = self.upper_list(node, level)?;
            Some(f(&mut list.lock().unwrap_or_else(|p| p.into_inner())))
        }
    }

    /// The full vector `node` is inserted with, when the nodes hold codes.
    pub(super) fn full_vector(&self, node: u32) -> Option<&[u8]> {
        self.full.get(node as usize).copied().flatten()
    }

    /// The query that inserts `node`: its full vector when the nodes hold codes.
    pub(super) fn scorer<'s, S: Space>(&'s self, space: &'s S, node: u32) -> S::Scorer<'s> {
        match self.full_vector(node) {
            Some(full) => space.vector_scorer(full),
            None => space.value_scorer(&self.vectors[node as usize]),
        }
    }

    pub(super) fn mark_dirty(&self, node: u32) {
        if let Some(dirty) = self.dirty.get(node as usize) {
            dirty.store(true, AtomicOrdering::Relaxed);
        }
    }
}

/// Bytes a build takes per node besides its values, with `m0` level-0 links, at its peak (when
/// it collects the links to write, beside the graph and its values): the [`BuildGraph`]'s
/// level-0 slots (a length and the links) and lock, the id, the value's place, the upper levels'
/// list and the flags, then the node's links again as ids in their own lists, rounded up
/// (600k × 384 with m0 32: 872 B a node with the 448 B of its 8-bit value, against about 750 B
/// measured).
pub(super) fn table_bytes(m0: usize) -> usize {
    8 * (m0 + 1) + 160
}

/// The position of `id` among the sorted `ids`.
fn position_in(ids: &[u32], id: u32) -> Option<u32> {
    ids.binary_search(&id).ok().map(|p| p as u32)
}

/// Cuts `list`, the links of `node`, down to `capacity` with the neighbour-selection heuristic.
pub(super) fn prune<S: Space>(
    space: &S,
    vectors: &Values<'_>,
    node: u32,
    list: &mut Vec<u32>,
    capacity: usize,
    alpha: f32,
) {
    let base = &vectors[node as usize];
    let distance = |a: u32, b: u32| space.pair(&vectors[a as usize], &vectors[b as usize]);
    let mut scored: Vec<Scored> = list
        .iter()
        .map(|&q| (Dist(space.pair(base, &vectors[q as usize])), q))
        .collect();
    scored.sort_unstable();
    let kept = select_neighbors(&scored, capacity, alpha, distance);
    list.clear();
    list.extend(kept.into_iter().map(|(_, q)| q));
}

/// Adds `new` to the links of `node` on `level`, pruning with the heuristic when over capacity.
pub(super) fn link<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    node: u32,
    level: u8,
    new: &[Scored],
    capacity: usize,
    alpha: f32,
) {
    graph.with_list(node, level, |list| {
        let before = list.len();
        for &(_, q) in new {
            if q != node && !list.contains(&q) {
                list.push(q);
            }
        }
        if list.len() == before {
            return;
        }
        graph.mark_dirty(node);
        if list.len() > capacity {
            prune(space, &graph.vectors, node, list, capacity, alpha);
        }
    });
}

impl Graph for BuildGraph<'_> {
    fn vector(&self, node: u32) -> Result<Option<&[u8]>> {
        Ok(self.vectors.get(node))
    }
    fn neighbors(&self, node: u32, level: u8, out: &mut Vec<u32>) -> Result<()> {
        if level == 0 {
            self.links0.read(node, out);
        } else {
            out.clear();
            if let Some(list) = self.upper_list(node, level) {
                out.extend_from_slice(&list.lock().unwrap_or_else(|p| p.into_inner()));
            }
        }
        Ok(())
    }
    fn prefetch_links(&self, node: u32, level: u8) {
        if level == 0 {
            self.links0.prefetch(node);
        }
    }
}

thread_local! {
    pub(super) static VISITED: RefCell<Marks> = RefCell::new(Marks::default());
    /// A level-0 list being changed by `link`.
    static LIST: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The graph's entry point and top level, changed under a lock when a node tops the graph.
pub(super) struct Entry {
    pub(super) node: Option<u32>,
    pub(super) top: u8,
}
