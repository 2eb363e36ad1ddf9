//! Loading the graph of an index from the store into a [`BuildGraph`].

use std::ops::Bound;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use heed::RwTxn;

use super::graph::{prune, BuildGraph};
use super::params::{Params, MAX_LEVEL};
use super::values::Values;
use super::Control;
use crate::error::{Error, Result};
use crate::keys;
use crate::keys::node_range;
use crate::level0::Level0;
use crate::links::{self, check_vector};
use crate::space::Space;
use crate::store::Shared;

/// The ids of the nodes of an unquantized `index` and their stored vectors, borrowed from the
/// map, in id order; `visit(i, vector)` sees the `i`-th as the pass reads it.
pub(super) fn load_vectors<'t>(
    s: &Shared,
    txn: &'t RwTxn<'_>,
    index: u16,
    stored_len: usize,
    mut visit: impl FnMut(usize, &[u8]),
) -> Result<(Vec<u32>, Vec<&'t [u8]>)> {
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let (mut ids, mut vectors) = (Vec::new(), Vec::new());
    for entry in s.nodes.range(txn, &range)? {
        let (key, value) = entry?;
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short node key".into()))?;
        let vector = check_vector(value, stored_len, id)?;
        visit(ids.len(), vector);
        ids.push(id);
        vectors.push(vector);
    }
    Ok((ids, vectors))
}

/// The nodes of a build: their ids in order, the values the build walks (stored vectors, a
/// copy of them, or codes) and, for quantized indexes, the full vectors of the nodes to insert.
pub(super) struct Nodes<'t> {
    pub(super) ids: Vec<u32>,
    pub(super) values: Values<'t>,
    pub(super) full: Vec<Option<&'t [u8]>>,
    /// Bytes of code in front of the links of a level-0 record (0 when not quantized).
    pub(super) code_len: usize,
}

/// Reads the links of `index` into a [`BuildGraph`] over `nodes`.
pub(super) fn load_graph<'t, S: Space>(
    space: &S,
    s: &Shared,
    txn: &RwTxn<'_>,
    index: u16,
    nodes: Nodes<'t>,
    params: &Params,
    control: &Control<'_>,
) -> Result<BuildGraph<'t>> {
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let Nodes {
        ids,
        values: vectors,
        full,
        code_len,
    } = nodes;
    let n = ids.len();
    control.report("load", 0, n as u64);
    let mut graph = BuildGraph {
        ids,
        vectors,
        levels: vec![0; n],
        in_graph: vec![false; n],
        full,
        links0: Level0::new(n, params.m0),
        upper: (0..n).map(|_| Vec::new()).collect(),
        dirty: (0..n).map(|_| AtomicBool::new(false)).collect(),
    };
    let mut scratch = Vec::new();
    let mut list = Vec::new();
    for (i, entry) in s.links.range(txn, &range)?.enumerate() {
        let (key, value) = entry?;
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short link key".into()))?;
        let Some(p) = graph.position(id) else {
            return Err(Error::Corrupt(format!("item {id} has links but no vector")));
        };
        let links = value.get(code_len..).ok_or_else(|| {
            Error::Corrupt(format!("item {id}: a level-0 record shorter than its code"))
        })?;
        links::decode_into(links, id, &mut scratch)?;
        list.clear();
        list.extend(scratch.iter().filter_map(|&id| graph.position(id)));
        // A list stored by a build with a larger m0 is cut to this build's m0 now.
        if list.len() > params.m0 {
            prune(space, &graph.vectors, p, &mut list, params.m0, params.alpha);
            graph.mark_dirty(p);
        }
        graph.in_graph[p as usize] = true;
        graph.links0.write(p, &list);
        if i % 65_536 == 0 {
            control.check()?;
        }
    }
    for entry in s.upper.range(txn, &range)? {
        let (key, value) = entry?;
        let (Some(id), Some(level)) = (keys::id_of(key), keys::level_of(key)) else {
            return Err(Error::Corrupt("short link key".into()));
        };
        let Some(p) = graph.position(id) else {
            continue;
        };
        let p = p as usize;
        if level == 0 || level > MAX_LEVEL || !graph.in_graph[p] {
            continue;
        }
        links::decode_into(value, id, &mut scratch)?;
        let list: Vec<u32> = scratch
            .iter()
            .filter_map(|&id| graph.position(id))
            .collect();
        let upper = &mut graph.upper[p];
        while upper.len() < level as usize {
            upper.push(Mutex::new(Vec::new()));
        }
        upper[level as usize - 1] = Mutex::new(list);
        graph.levels[p] = graph.levels[p].max(level);
    }
    control.report("load", n as u64, n as u64);
    Ok(graph)
}
