//! The build: inserts the items changed since the last build into the graph, repairs the links
//! that pointed at deleted items, and writes the touched nodes back, all in one write
//! transaction (it commits or changes nothing).

use std::cell::RefCell;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;
use std::time::Instant;

use heed::RwTxn;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::graph::{search_level, select_neighbors, Dist, Graph, Marks, Scored};
use crate::header::Header;
use crate::items::{load_header, load_quantizer, load_set, node_range, put_header, put_set};
use crate::keys;
use crate::level0::Level0;
use crate::links::{self, check_vector};
use crate::metric::{float_components, MetricKind};
use crate::quant::{Quantization, Quantizer, TRAINING_SAMPLE};
use crate::space::{Plain, Scorer, Space};
use crate::store::{Appender, Database, Shared};
use crate::with_metric;

/// Highest level a node can get (levels above this are clamped).
const MAX_LEVEL: u8 = 16;

/// How to build. `None` keeps the stored value (or the default for a first build).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Links per node on upper levels (default 16, from 2 to 256).
    pub m: Option<u16>,
    /// Links per node on level 0 (default 2 × m).
    pub m0: Option<u16>,
    /// Beam width while inserting (default 100).
    pub ef_construction: Option<usize>,
    /// Seed of the level assignment (default 0): the same seed and items give the same graph
    /// when built on one thread.
    pub seed: Option<u64>,
    /// Relaxation of the neighbour-selection heuristic (default 1.0; ≥ 1 keeps more links).
    pub alpha: Option<f32>,
    /// Quantized indexes: learn the quantizer again from the items now stored and re-code every
    /// item (the first build always learns it; later builds code new items with it).
    pub retrain: bool,
}

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildStats {
    pub inserted: u64,
    pub deleted: u64,
    pub items: u64,
    pub seconds: f64,
}

/// Progress of a long operation: `done` of `total` in the named phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

/// Where a build reports and whether it should stop.
pub struct Control<'a> {
    pub progress: &'a (dyn Fn(Progress) + Sync),
    pub cancel: &'a AtomicBool,
}

impl Control<'_> {
    fn check(&self) -> Result<()> {
        if self.cancel.load(AtomicOrdering::Relaxed) {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
    fn report(&self, phase: &'static str, done: u64, total: u64) {
        (self.progress)(Progress { phase, done, total });
    }
}

struct Params {
    m: usize,
    m0: usize,
    ef_construction: usize,
    seed: u64,
    alpha: f32,
}

impl Params {
    fn resolve(options: &BuildOptions, header: &Header) -> Result<Params> {
        let stored = header.built.then_some((header.m, header.m0));
        let m = options.m.or(stored.map(|s| s.0)).unwrap_or(16) as usize;
        if !(2..=256).contains(&m) {
            return Err(Error::InvalidArgument(format!(
                "m must be from 2 to 256, received {m}"
            )));
        }
        let m0 = match (options.m0, options.m, stored) {
            (Some(m0), _, _) => m0 as usize,
            (None, None, Some((_, m0))) => m0 as usize,
            _ => 2 * m,
        };
        if m0 < m || m0 > 512 {
            return Err(Error::InvalidArgument(format!(
                "m0 must be from m ({m}) to 512, received {m0}"
            )));
        }
        let ef_construction = options.ef_construction.unwrap_or(100);
        if !(1..=10_000).contains(&ef_construction) {
            return Err(Error::InvalidArgument(format!(
                "efConstruction must be from 1 to 10000, received {ef_construction}"
            )));
        }
        let alpha = options.alpha.unwrap_or(1.0);
        if !(1.0..=2.0).contains(&alpha) {
            return Err(Error::InvalidArgument(format!(
                "alpha must be from 1 to 2, received {alpha}"
            )));
        }
        Ok(Params {
            m,
            m0,
            ef_construction: ef_construction.max(m0),
            seed: options.seed.unwrap_or(0),
            alpha,
        })
    }

    fn capacity(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// The level of `id`: geometric with factor 1/ln(m), a pure function of the seed and id.
    fn level_of(&self, id: u32) -> u8 {
        let mut x = self.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        // Uniform in (0, 1].
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let level = (-u.ln() / (self.m as f64).ln()).floor();
        level.min(MAX_LEVEL as f64) as u8
    }
}

/// The graph being built, over dense positions (the index of an item in `ids`).
struct BuildGraph<'t> {
    ids: Vec<u32>,
    vectors: Vec<&'t [u8]>,
    levels: Vec<u8>,
    in_graph: Vec<bool>,
    /// The full-precision stored vectors of the nodes to insert, when `vectors` holds codes
    /// (quantized indexes): inserting a node searches with its full vector.
    full: Vec<Option<&'t [u8]>>,
    /// Level-0 links of every node.
    links0: Level0,
    /// Links on levels 1..=level, for nodes above level 0.
    upper: Vec<Vec<Mutex<Vec<u32>>>>,
    dirty: Vec<AtomicBool>,
}

impl BuildGraph<'_> {
    /// The links of `node` on an upper `level` (level 0 lives in `links0`).
    fn upper_list(&self, node: u32, level: u8) -> Option<&Mutex<Vec<u32>>> {
        self.upper
            .get(node as usize)?
            .get((level as usize).checked_sub(1)?)
    }

    fn position(&self, id: u32) -> Option<u32> {
        position_in(&self.ids, id)
    }

    /// Runs `f` on the links of `node` on `level` under the list's lock and keeps what it
    /// leaves; `None` when the node has no list there.
    fn with_list<R>(&self, node: u32, level: u8, f: impl FnOnce(&mut Vec<u32>) -> R) -> Option<R> {
        if level == 0 {
            LIST.with(|scratch| self.links0.update(node, &mut scratch.borrow_mut(), f))
        } else {
            let list = self.upper_list(node, level)?;
            Some(f(&mut list.lock().unwrap_or_else(|p| p.into_inner())))
        }
    }

    /// The query that inserts `node`: its full vector when the nodes hold codes.
    fn scorer<'s, S: Space>(&'s self, space: &'s S, node: u32) -> S::Scorer<'s> {
        match self.full.get(node as usize).copied().flatten() {
            Some(full) => space.vector_scorer(full),
            None => space.value_scorer(self.vectors[node as usize]),
        }
    }

    fn mark_dirty(&self, node: u32) {
        if let Some(dirty) = self.dirty.get(node as usize) {
            dirty.store(true, AtomicOrdering::Relaxed);
        }
    }
}

/// The position of `id` among the sorted `ids`.
fn position_in(ids: &[u32], id: u32) -> Option<u32> {
    ids.binary_search(&id).ok().map(|p| p as u32)
}

/// Cuts `list`, the links of `node`, down to `capacity` with the neighbour-selection heuristic.
fn prune<S: Space>(
    space: &S,
    vectors: &[&[u8]],
    node: u32,
    list: &mut Vec<u32>,
    capacity: usize,
    alpha: f32,
) {
    let base = vectors[node as usize];
    let distance = |a: u32, b: u32| space.pair(vectors[a as usize], vectors[b as usize]);
    let mut scored: Vec<Scored> = list
        .iter()
        .map(|&q| (Dist(space.pair(base, vectors[q as usize])), q))
        .collect();
    scored.sort_unstable();
    let kept = select_neighbors(&scored, capacity, alpha, distance);
    list.clear();
    list.extend(kept.into_iter().map(|(_, q)| q));
}

impl Graph for BuildGraph<'_> {
    fn vector(&self, node: u32) -> Result<Option<&[u8]>> {
        Ok(self.vectors.get(node as usize).copied())
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
    static VISITED: RefCell<Marks> = RefCell::new(Marks::default());
    /// A level-0 list being changed by `link`.
    static LIST: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The graph's entry point and top level, changed under a lock when a node tops the graph.
struct Entry {
    node: Option<u32>,
    top: u8,
}

impl Database {
    /// Builds `index`: inserts what was added since the last build and repairs what was deleted.
    pub fn build(
        &self,
        index: u16,
        options: &BuildOptions,
        control: &Control<'_>,
    ) -> Result<BuildStats> {
        let start = Instant::now();
        control.check()?;
        // A write on a read-only database says so, whether or not the index exists.
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let s = &*self.shared;
        let Some(info) = self.info(index)? else {
            return Err(Error::IndexNotFound(index));
        };
        // Links, sets and copy-on-write of the touched pages: a generous estimate.
        let estimate = info.items as usize * (info.metric.stored_len(info.dimensions) + 400);
        let mut stats = self.write(estimate, |txn| {
            let header = load_header(s, txn, index)?.ok_or(Error::IndexNotFound(index))?;
            with_metric!(header.metric, D => match header.quantization {
                Quantization::None => {
                    build_in(s, txn, index, header, options, control, &Plain::<D>::new(), None)
                }
                _ => {
                    let quantizer = quantizer_for(s, txn, index, &header, options, control)?;
                    let retrain = quantizer.1;
                    match &quantizer.0 {
                        Quantizer::Int8(q) => {
                            build_in(s, txn, index, header, options, control, q, Some((&quantizer.0, retrain)))
                        }
                        Quantizer::Binary(q) => {
                            build_in(s, txn, index, header, options, control, q, Some((&quantizer.0, retrain)))
                        }
                    }
                }
            })
        })?;
        stats.seconds = start.elapsed().as_secs_f64();
        Ok(stats)
    }
}

/// The quantizer a build of a quantized index codes with: the stored one, or one learned now
/// from the stored items (the first build, or `retrain`). Returns it and whether it is new (every
/// item is then coded again); a new one is written to the metadata.
fn quantizer_for(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    header: &Header,
    options: &BuildOptions,
    control: &Control<'_>,
) -> Result<(Quantizer, bool)> {
    if !options.retrain {
        if let Some(q) = load_quantizer(s, txn, index, header)? {
            if !q.outgrown(header.items) {
                return Ok((q, false));
            }
        }
    }
    control.report("train", 0, 1);
    let dimensions = header.dimensions as usize;
    let stored_len = header.metric.stored_len(dimensions);
    let deleted = load_set(s, txn, index, keys::META_DELETED)?;
    // Every `every`-th live item, up to the sample's size.
    let every = (header.items as usize).div_ceil(TRAINING_SAMPLE).max(1);
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let mut sample = Vec::new();
    let mut live = 0usize;
    for entry in s.nodes.range(txn, &range)? {
        let (key, value) = entry?;
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short node key".into()))?;
        if deleted.contains(id) {
            continue;
        }
        if live.is_multiple_of(every) {
            sample.extend_from_slice(&float_components(check_vector(value, stored_len, id)?));
        }
        live += 1;
        if live.is_multiple_of(65_536) {
            control.check()?;
        }
    }
    let normalize = header.metric == MetricKind::Cosine;
    let seed = options.seed.unwrap_or(0);
    let quantizer = Quantizer::train(header.quantization, dimensions, normalize, &sample, seed)
        .ok_or_else(|| Error::InvalidArgument("this index is not quantized".into()))?;
    s.meta.put(
        txn,
        &keys::meta(index, keys::META_QUANTIZER),
        &quantizer.to_bytes(),
    )?;
    control.report("train", 1, 1);
    Ok((quantizer, true))
}

/// The nodes of a quantized index for its build: every item in the graph or waiting for it, in
/// id order, with its code (taken from its level-0 record, or made from its full vector when it
/// is new or `recode`) and, for the items to insert, the full vector they are inserted with.
struct CodedNodes<'t> {
    ids: Vec<u32>,
    codes: Vec<u8>,
    full: Vec<Option<&'t [u8]>>,
}

#[allow(clippy::too_many_arguments)]
fn coded_nodes<'t>(
    s: &Shared,
    txn: &'t RwTxn<'_>,
    index: u16,
    stored_len: usize,
    quantizer: &Quantizer,
    updated: &RoaringBitmap,
    recode: bool,
    control: &Control<'_>,
) -> Result<CodedNodes<'t>> {
    let code_len = quantizer.code_len();
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let mut graph_ids = Vec::new();
    let mut graph_codes = Vec::new();
    for entry in s.links.range(txn, &range)? {
        let (key, value) = entry?;
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short link key".into()))?;
        let code = value.get(..code_len).ok_or_else(|| {
            Error::Corrupt(format!("item {id}: a level-0 record shorter than its code"))
        })?;
        graph_ids.push(id);
        graph_codes.extend_from_slice(code);
    }
    let mut ids: Vec<u32> = Vec::with_capacity(graph_ids.len() + updated.len() as usize);
    {
        // Merge the two sorted id lists.
        let (mut a, mut b) = (graph_ids.iter().peekable(), updated.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&y)) if x == y => {
                    b.next();
                    a.next().copied()
                }
                (Some(&&x), Some(&y)) if x < y => a.next().copied(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next().copied(),
                (None, None) => None,
            };
            match next {
                Some(id) => ids.push(id),
                None => break,
            }
        }
    }
    let n = ids.len();
    control.report("code", 0, n as u64);
    let mut codes = Vec::with_capacity(n * code_len);
    let mut full = vec![None; n];
    let mut from_graph = 0usize;
    for (p, &id) in ids.iter().enumerate() {
        let in_graph = graph_ids.get(from_graph) == Some(&id);
        let new = updated.contains(id);
        if new || recode || !in_graph {
            let Some(value) = s.nodes.get(txn, &keys::node(index, id))? else {
                return Err(Error::Corrupt(format!("item {id} has links but no vector")));
            };
            let vector = check_vector(value, stored_len, id)?;
            quantizer.encode(&float_components(vector), &mut codes);
            if new {
                full[p] = Some(vector);
            }
        } else {
            codes.extend_from_slice(
                &graph_codes[from_graph * code_len..(from_graph + 1) * code_len],
            );
        }
        if in_graph {
            from_graph += 1;
        }
        if p % 65_536 == 65_535 {
            control.check()?;
            control.report("code", p as u64 + 1, n as u64);
        }
    }
    control.report("code", n as u64, n as u64);
    Ok(CodedNodes { ids, codes, full })
}

#[allow(clippy::too_many_arguments)]
fn build_in<S: Space>(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    mut header: Header,
    options: &BuildOptions,
    control: &Control<'_>,
    space: &S,
    quantizer: Option<(&Quantizer, bool)>,
) -> Result<BuildStats> {
    let params = Params::resolve(options, &header)?;
    let updated = load_set(s, txn, index, keys::META_UPDATED)?;
    let deleted = load_set(s, txn, index, keys::META_DELETED)?;
    let stored_len = header.metric.stored_len(header.dimensions as usize);
    let recode = quantizer.is_some_and(|(_, new)| new);
    if header.built && updated.is_empty() && deleted.is_empty() && !recode {
        control.report("write", 0, 0);
        return Ok(BuildStats {
            inserted: 0,
            deleted: 0,
            items: header.items,
            seconds: 0.0,
        });
    }

    let coded = match quantizer {
        Some((q, _)) => Some(coded_nodes(
            s, txn, index, stored_len, q, &updated, recode, control,
        )?),
        None => None,
    };
    let code_len = quantizer.map_or(0, |(q, _)| q.code_len());
    let graph = load_graph(
        space,
        s,
        txn,
        index,
        stored_len,
        coded.as_ref(),
        &params,
        control,
    )?;
    let n = graph.ids.len();
    let removed: Vec<u32> = (0..n as u32)
        .filter(|&p| {
            let id = graph.ids[p as usize];
            graph.in_graph[p as usize] && (deleted.contains(id) || updated.contains(id))
        })
        .collect();
    let inserted: Vec<u32> = (0..n as u32)
        .filter(|&p| updated.contains(graph.ids[p as usize]))
        .collect();
    let mut graph = graph;

    repair(space, &graph, &removed, &params, control)?;
    for &p in &removed {
        graph.in_graph[p as usize] = false;
        graph.links0.write(p, &[]);
        graph.upper[p as usize].clear();
    }
    // Give the nodes to insert their levels and empty link lists before anyone can reach them.
    for &p in &inserted {
        let level = params.level_of(graph.ids[p as usize]);
        graph.levels[p as usize] = level;
        graph.upper[p as usize] = (0..level).map(|_| Mutex::new(Vec::new())).collect();
    }

    // The entry point: the kept node on the highest level (smallest id among equals).
    let mut entry = Entry { node: None, top: 0 };
    for p in 0..n {
        if graph.in_graph[p] && (entry.node.is_none() || graph.levels[p] > entry.top) {
            entry = Entry {
                node: Some(p as u32),
                top: graph.levels[p],
            };
        }
    }

    let entry = insert_all(space, &graph, &inserted, entry, &params, control)?;
    for &p in &inserted {
        graph.in_graph[p as usize] = true;
    }
    reconnect(space, &graph, entry.node, &params, control)?;
    if recode {
        // New codes for every node: every level-0 record is written again.
        for dirty in &graph.dirty {
            dirty.store(true, AtomicOrdering::Relaxed);
        }
    }

    // Collect what to write, then let go of the borrowed vectors before writing.
    let mut scratch = Vec::new();
    let mut output: Vec<(u32, u32, Vec<Vec<u32>>)> = Vec::new();
    for p in 0..n {
        if !graph.in_graph[p] || !graph.dirty[p].load(AtomicOrdering::Relaxed) {
            continue;
        }
        let mut levels = Vec::with_capacity(1 + graph.upper[p].len());
        let to_ids =
            |list: &[u32]| -> Vec<u32> { list.iter().map(|&q| graph.ids[q as usize]).collect() };
        graph.links0.read(p as u32, &mut scratch);
        levels.push(to_ids(&scratch));
        levels.extend(
            graph.upper[p]
                .iter()
                .map(|list| to_ids(&list.lock().unwrap_or_else(|e| e.into_inner()))),
        );
        output.push((graph.ids[p], p as u32, levels));
    }
    let removed_ids: Vec<u32> = removed.iter().map(|&p| graph.ids[p as usize]).collect();
    header.entry_points = entry
        .node
        .map(|p| vec![graph.ids[p as usize]])
        .unwrap_or_default();
    header.top_level = entry.top;
    drop(graph);

    // Keep the codes, let go of the full vectors borrowed from the transaction.
    let codes = coded.map(|c| c.codes);
    let codes = codes.as_deref().map(|c| (c, code_len));
    write_graph(
        s,
        txn,
        index,
        &output,
        codes,
        &removed_ids,
        &updated,
        &deleted,
        control,
    )?;
    header.built = true;
    header.m = params.m as u16;
    header.m0 = params.m0 as u16;
    put_header(s, txn, index, &header)?;
    put_set(s, txn, index, keys::META_UPDATED, &RoaringBitmap::new())?;
    put_set(s, txn, index, keys::META_DELETED, &RoaringBitmap::new())?;
    control.check()?;
    Ok(BuildStats {
        inserted: updated.len(),
        deleted: (deleted - &updated).len(),
        items: header.items,
        seconds: 0.0,
    })
}

/// Reads every node of `index`: its vector (borrowed from the map) and its links.
/// Reads every node of `index`: its stored vector (borrowed from the map), or for a quantized
/// index its code from `coded`, and its links.
#[allow(clippy::too_many_arguments)]
fn load_graph<'t, S: Space>(
    space: &S,
    s: &Shared,
    txn: &'t RwTxn<'_>,
    index: u16,
    stored_len: usize,
    coded: Option<&'t CodedNodes<'t>>,
    params: &Params,
    control: &Control<'_>,
) -> Result<BuildGraph<'t>> {
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let mut ids = Vec::new();
    let mut vectors = Vec::new();
    let mut full = Vec::new();
    let mut code_len = 0;
    match coded {
        Some(coded) => {
            ids.clone_from(&coded.ids);
            code_len = coded.codes.len() / coded.ids.len().max(1);
            vectors.extend(coded.codes.chunks_exact(code_len.max(1)));
            full.clone_from(&coded.full);
        }
        None => {
            for entry in s.nodes.range(txn, &range)? {
                let (key, value) = entry?;
                let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short node key".into()))?;
                ids.push(id);
                vectors.push(check_vector(value, stored_len, id)?);
            }
        }
    }
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

/// Makes every level-0 node reachable from the entry point. Pruning can drop a node from every
/// list that linked to it (a few nodes in 100,000 of real embeddings; more with equal vectors),
/// and such a node is never found, not even by a search for its own vector. Each one is linked
/// from its nearest reachable neighbour, found among its own links or else by a search from the
/// entry point: into a free slot, or in place of that neighbour's farthest link that is not how
/// a node was reached (the links of a spanning tree from the entry stay, so nothing reachable
/// becomes unreachable).
fn reconnect<S: Space>(
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
                let from = graph.vectors[q as usize];
                let farthest = (0..links.len())
                    .filter(|&i| parent[links[i] as usize] != q)
                    .map(|i| (Dist(space.pair(from, graph.vectors[links[i] as usize])), i))
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
            let base = graph.vectors[p as usize];
            graph.links0.read(p, &mut list);
            let mut nearest: Vec<Scored> = list
                .iter()
                .filter(|&&q| reached(&parent, q))
                .map(|&q| (Dist(space.pair(base, graph.vectors[q as usize])), q))
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
                    let start = [(Dist(query.score(graph.vectors[entry as usize])), entry)];
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

/// Gives every kept node that linked to a removed node new links, chosen among its kept
/// neighbours and the removed nodes' neighbours.
fn repair<S: Space>(
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
        |a: u32, b: u32| space.pair(graph.vectors[a as usize], graph.vectors[b as usize]);
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

/// Inserts `nodes` into the graph in parallel; returns the final entry point.
fn insert_all<S: Space>(
    space: &S,
    graph: &BuildGraph<'_>,
    nodes: &[u32],
    entry: Entry,
    params: &Params,
    control: &Control<'_>,
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
    rest.par_iter().with_min_len(64).try_for_each(|&p| {
        control.check()?;
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
        |a: u32, b: u32| space.pair(graph.vectors[a as usize], graph.vectors[b as usize]);
    let not_self = |q: u32| q != p;
    VISITED.with(|visited| -> Result<()> {
        let mut visited = visited.borrow_mut();
        let mut scratch = Vec::new();
        let mut current: Vec<Scored> = vec![(Dist(query.score(graph.vectors[ep as usize])), ep)];
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
                current = vec![(Dist(query.score(graph.vectors[ep as usize])), ep)];
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

/// Adds `new` to the links of `node` on `level`, pruning with the heuristic when over capacity.
fn link<S: Space>(
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

#[allow(clippy::too_many_arguments)]
fn write_graph(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    output: &[(u32, u32, Vec<Vec<u32>>)],
    codes: Option<(&[u8], usize)>,
    removed: &[u32],
    updated: &RoaringBitmap,
    deleted: &RoaringBitmap,
    control: &Control<'_>,
) -> Result<()> {
    let total = (output.len() + removed.len()) as u64;
    control.report("write", 0, total);
    // Removed nodes lose every link record; re-inserted ones get theirs back below.
    for &id in removed {
        let key = keys::node(index, id);
        // The next node key: adding one carries into the index part for id u32::MAX.
        let end = (u64::from_be_bytes(key) + 1).to_be_bytes();
        let range = (Bound::Included(&key[..]), Bound::Excluded(&end[..]));
        s.upper.delete_range(txn, &range)?;
        s.links.delete(txn, &key)?;
        if deleted.contains(id) && !updated.contains(id) {
            s.nodes.delete(txn, &key)?;
        }
    }
    let mut links0 = Appender::new(s.links, txn)?;
    let mut value = Vec::new();
    let mut record = Vec::new();
    for (i, (id, p, levels)) in output.iter().enumerate() {
        if i % 4096 == 0 {
            control.check()?;
            control.report("write", (removed.len() + i) as u64, total);
        }
        let key = keys::node(index, *id);
        links::encode(&levels[0], &mut value);
        match codes {
            // A quantized index: the code leads the level-0 links.
            Some((codes, len)) => {
                let at = *p as usize * len;
                record.clear();
                record.extend_from_slice(&codes[at..at + len]);
                record.extend_from_slice(&value);
                links0.put(txn, &key, &record)?;
            }
            None => links0.put(txn, &key, &value)?,
        }
        for (level, list) in levels.iter().enumerate().skip(1) {
            links::encode(list, &mut value);
            s.upper
                .put(txn, &keys::upper(index, *id, level as u8), &value)?;
        }
    }
    control.report("write", total, total);
    Ok(())
}
