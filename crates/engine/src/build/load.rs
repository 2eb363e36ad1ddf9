//! Loading the graph of an index from the store into a [`BuildGraph`].

use std::ops::Bound;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use heed::RwTxn;

use super::graph::{prune, BuildGraph};
use super::params::{Params, MAX_LEVEL};
use super::values::{Arena, Packing, Values};
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
fn load_vectors<'t>(
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

/// What `load_unquantized` found: the nodes' ids and stored vectors (borrowed from the map), in
/// id order, and the copy the build walks, if any.
pub(super) struct Unquantized<'t> {
    pub(super) ids: Vec<u32>,
    pub(super) vectors: Vec<&'t [u8]>,
    pub(super) copy: Option<Arena>,
    /// Whether the copy was made in the pass that found the vectors (the tests check it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) in_pass: bool,
}

/// The nodes of an unquantized `index` (about `nodes` of them) and the copy `packing` makes of
/// their vectors. From a `cold` file (mostly not in the page cache: a build inside a memory
/// limit) the copy is made in the pass that finds the vectors, which reads their leaves ahead
/// in file order: copying afterwards would read the file a second time, at random (600k × 384
/// in 700 MiB: 35 s for both, 2 s for the one pass). Otherwise it is made afterwards, in
/// parallel.
pub(super) fn load_unquantized<'t>(
    s: &Shared,
    txn: &'t RwTxn<'_>,
    index: u16,
    stored_len: usize,
    packing: Packing,
    nodes: usize,
    cold: bool,
) -> Result<Unquantized<'t>> {
    let mut ahead = cold.then(|| s.leaves_ahead(b"nodes", index)).flatten();
    let mut early = if cold {
        Arena::empty(packing, nodes)?
    } else {
        None
    };
    let (ids, vectors) = load_vectors(s, txn, index, stored_len, |i, value| {
        if let Some(ahead) = ahead.as_mut() {
            ahead.follow(value);
        }
        if let Some(early) = early.as_mut() {
            early.write(packing, i, value);
        }
    })?;
    let (copy, in_pass) = match early.filter(|early| early.count() >= ids.len()) {
        Some(mut early) => {
            early.truncate(ids.len());
            (Some(early), true)
        }
        None => (Arena::of(packing, &vectors)?, false),
    };
    Ok(Unquantized {
        ids,
        vectors,
        copy,
        in_pass,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_made_in_the_pass_over_a_cold_file_is_the_one_made_after() {
        // 3,000 × 32 euclidean: stored vectors of 4 + 128 bytes, copied as they are.
        let (_dir, db, _) = crate::scratch::built_index(crate::Quantization::None);
        let s = &*db.shared;
        let stored_len = 4 + 4 * 32;
        let packing = Packing::Copy(stored_len);
        db.write(0, |txn| {
            let after = load_unquantized(s, txn, 0, stored_len, packing, 3000, false)?;
            assert!(!after.in_pass);
            // Sized for more nodes (deletions pending): cut to those found.
            for nodes in [3000, 3100] {
                let pass = load_unquantized(s, txn, 0, stored_len, packing, nodes, true)?;
                assert!(pass.in_pass, "sized for {nodes} nodes");
                assert_eq!(pass.ids, after.ids);
                let (a, b) = (pass.copy.as_ref().unwrap(), after.copy.as_ref().unwrap());
                assert_eq!(a.count(), 3000);
                for i in 0..3000u32 {
                    assert_eq!(a.values().get(i), b.values().get(i));
                    assert_eq!(a.values().get(i), Some(pass.vectors[i as usize]));
                }
            }
            // Sized for fewer: made afterwards instead, the same.
            let short = load_unquantized(s, txn, 0, stored_len, packing, 2000, true)?;
            assert!(!short.in_pass);
            let last = after.copy.as_ref().and_then(|c| c.values().get(2999));
            assert_eq!(short.copy.unwrap().values().get(2999), last);
            // No copy: none made.
            let none = load_unquantized(s, txn, 0, stored_len, Packing::InPlace, 3000, true)?;
            assert!(none.copy.is_none() && !none.in_pass && none.ids.len() == 3000);
            Ok(())
        })
        .unwrap();
    }
}
