//! The build: inserts the items changed since the last build into the graph, repairs the links
//! that pointed at deleted items, and writes the touched nodes back, all in one write
//! transaction (it commits or changes nothing).
//!
//! The phases, one module each: `quantized` learns the quantizer and codes the nodes of a
//! quantized index, `load` reads the graph, `repair` re-links around removed nodes,
//! `insert` adds the new ones, `reconnect` makes every node reachable again and `write`
//! stores what changed. `graph` holds the graph they work on, `values` the node values it
//! compares (in the map, or a private copy: `int8` for cosine), `params` the build's settings.

mod graph;
mod insert;
mod int8;
mod load;
mod params;
mod quantized;
mod reconnect;
mod repair;
mod values;
mod write;

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Mutex;
use std::time::Instant;

use heed::RwTxn;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::header::Header;
use crate::kernels;
use crate::keys;
use crate::metric::{Distance, MetricKind};
use crate::quant::{Quantization, Quantizer};
use crate::records::{load_header, load_set, put_header, put_set};
use crate::space::{Plain, Space};
use crate::store::{Database, Shared};
use crate::with_metric;

use graph::Entry;
use insert::insert_all;
use int8::Int8Cosine;
use load::{load_graph, load_unquantized, Nodes};
use params::Params;
use quantized::{coded_nodes, quantizer_for, CodedNodes};
use reconnect::reconnect;
use repair::repair;
use values::{packing, Arena, Packing, Values};
use write::write_graph;

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
    /// Relaxation of the neighbour-selection heuristic, 1 to 2 (higher keeps more links; default
    /// 1.05 from 128 dimensions on, 1 below, where the extra links cost more time than they
    /// gain recall).
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
            let changes = Changes {
                updated: load_set(s, txn, index, keys::META_UPDATED)?,
                deleted: load_set(s, txn, index, keys::META_DELETED)?,
            };
            with_metric!(header.metric, D => match header.quantization {
                Quantization::None => {
                    let dimensions = header.dimensions as usize;
                    let int8 = (D::KIND == MetricKind::Cosine
                        && kernels::has_fast_i8()
                        && dimensions <= int8::MAX_DIMENSIONS)
                        .then_some(int8::value_len(dimensions));
                    let changed = changes.updated.len() + changes.deleted.len();
                    let stored_len = header.metric.stored_len(dimensions);
                    let tables = graph::table_bytes(Params::resolve(options, &header)?.m0);
                    let packing = packing(header.items, changed, stored_len, int8, tables);
                    let walk = Walk::Vectors(packing);
                    match packing {
                        Packing::Int8(_) => build_in(s, txn, index, header, changes, options, control, &Int8Cosine, walk),
                        _ => build_in(s, txn, index, header, changes, options, control, &Plain::<D>::new(), walk),
                    }
                }
                _ => {
                    let quantizer = quantizer_for(s, txn, index, &header, &changes.deleted, options, control)?;
                    let retrain = quantizer.1;
                    match &quantizer.0 {
                        Quantizer::Int8(q) => {
                            build_in(s, txn, index, header, changes, options, control, q, Walk::Codes(&quantizer.0, retrain))
                        }
                        Quantizer::Binary(q) => {
                            build_in(s, txn, index, header, changes, options, control, q, Walk::Codes(&quantizer.0, retrain))
                        }
                    }
                }
            })
        })?;
        stats.seconds = start.elapsed().as_secs_f64();
        Ok(stats)
    }
}

/// The items added or changed, and deleted, since the last build.
struct Changes {
    updated: RoaringBitmap,
    deleted: RoaringBitmap,
}

/// What the graph walk of a build compares (`space` must match).
enum Walk<'q> {
    /// The vectors of an unquantized index: in the map, or a copy of them
    /// ([`Int8Cosine`] for `Packing::Int8`).
    Vectors(Packing),
    /// Codes of the quantizer; whether it is new (every item is coded again).
    Codes(&'q Quantizer, bool),
}

#[allow(clippy::too_many_arguments)]
fn build_in<S: Space>(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    mut header: Header,
    changes: Changes,
    options: &BuildOptions,
    control: &Control<'_>,
    space: &S,
    walk: Walk<'_>,
) -> Result<BuildStats> {
    let params = Params::resolve(options, &header)?;
    let Changes { updated, deleted } = changes;
    let quantizer = match walk {
        Walk::Codes(q, new) => Some((q, new)),
        _ => None,
    };
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
    // The values the walk compares: the codes, the stored vectors, or a private copy of them
    // (which `arena` holds until the graph has been collected for writing).
    let mut arena: Option<Arena> = None;
    // The codes stay here (they are written with the graph); ids and full vectors move on.
    let (codes, coded) = match coded {
        Some(CodedNodes { ids, codes, full }) => (Some(codes), Some((ids, full))),
        None => (None, None),
    };
    let nodes = match (&codes, coded) {
        (Some(codes), Some((ids, full))) => Nodes {
            ids,
            values: Values::packed(codes, code_len),
            full,
            code_len,
        },
        _ => {
            let packing = match walk {
                Walk::Vectors(packing) => packing,
                Walk::Codes(..) => Packing::InPlace,
            };
            let cold = packing != Packing::InPlace && crate::warm::file_is_cold(s);
            // Nodes deleted since the last build still have their vector until this one.
            let nodes = header.items as usize + deleted.len() as usize;
            let loaded = load_unquantized(s, txn, index, stored_len, packing, nodes, cold)?;
            let (ids, vectors) = (loaded.ids, loaded.vectors);
            arena = loaded.copy;
            let values = match &arena {
                Some(arena) => arena.values(),
                None => Values::Scattered(vectors),
            };
            // Unquantized nodes are inserted with their own values: no full vectors apart.
            Nodes {
                ids,
                values,
                full: Vec::new(),
                code_len,
            }
        }
    };
    let graph = load_graph(space, s, txn, index, nodes, &params, control)?;
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

    let read_ahead = !graph.full.is_empty() && crate::warm::file_is_cold(s);
    let entry = insert_all(
        space, &graph, &inserted, entry, &params, control, read_ahead,
    )?;
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
    drop(arena); // the walk's copy: the write transaction's pages take its place

    // The codes (quantized indexes) are written beside the links.
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
