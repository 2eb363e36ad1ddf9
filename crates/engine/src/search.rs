//! Searches over the stored graph: by vector, by item, in batches, with an optional filter.

use std::cell::{Cell, RefCell};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::dbs::ReadTxn;
use crate::error::{Error, Result};
use crate::fault;
use crate::graph::{search_level, Dist, Graph, IdSet, Marks, Scored, Visited};
use crate::items::{check_dimensions, IndexInfo};
use crate::links;
use crate::metric::MetricKind;
use crate::metric::{Distance, Query};
use crate::quant::Quantizer;
use crate::space::{Plain, Scorer, Space};
use crate::store::{Database, Shared};
use crate::view::View;
use crate::with_metric;

/// When a filter is small, an exact scan of its ids beats a graph walk: the walk has to visit
/// about `ef × items / allowed` nodes to collect `ef` allowed ones, the scan scores each allowed
/// id once. Measured on GloVe 100k × 50-d (`examples/filter_threshold.rs`, ef 64, 2026-11-25): a
/// visit costs about 20 scanned ids (1.7 µs against 0.086 µs), and the two meet between 8,192
/// (scan 706 µs, walk 1,322 µs) and 16,384 allowed ids (scan 1,442 µs, walk 640 µs). So a filter
/// is scanned when `allowed² ≤ WALK_TO_SCAN × ef × items`: 11,300 ids at 100k items and ef 64,
/// 3,600 at 10k items, 35,800 at a million. Both costs grow alike with the dimensions.
pub const WALK_TO_SCAN: u64 = 20;

/// The largest filter an exact scan answers, for an index of `items` live items searched with
/// beam width `ef` (see [`WALK_TO_SCAN`]).
pub fn exact_scan_limit(items: u64, ef: usize) -> u64 {
    let product = WALK_TO_SCAN.saturating_mul(ef as u64).saturating_mul(items);
    (product as f64).sqrt() as u64
}

/// How to search.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions<'a> {
    /// How many neighbours to return (at least 1).
    pub k: usize,
    /// Beam width (at least k; default max(k, 64)).
    pub ef: Option<usize>,
    /// Only these ids may be returned.
    pub filter: Option<&'a RoaringBitmap>,
    /// Checked while walking: a set flag stops the search with `Error::Cancelled`.
    pub cancel: Option<&'a AtomicBool>,
    /// A filter of at most this many ids is scanned exactly instead of walking the graph
    /// (default [`exact_scan_limit`] of the index's items and `ef`; 0 always walks).
    pub exact_scan_max: Option<u64>,
    /// Quantized indexes: the walk keeps `k × oversampling` candidates (at least 1×; default
    /// chosen per quantization, see `Quantization::default_oversampling`).
    pub oversampling: usize,
    /// Quantized indexes: score the best `k × oversampling` candidates again with the full
    /// vectors, so the distances returned are exact (default true). Without it the distances
    /// are the codes' estimates.
    pub rescore: bool,
}

impl SearchOptions<'_> {
    pub fn new(k: usize) -> SearchOptions<'static> {
        SearchOptions {
            k,
            ef: None,
            filter: None,
            cancel: None,
            exact_scan_max: None,
            oversampling: 0,
            rescore: true,
        }
    }

    fn validate(&self) -> Result<usize> {
        if self.k == 0 {
            return Err(Error::InvalidArgument("k must be at least 1".into()));
        }
        let ef = self.ef.unwrap_or(64);
        if ef == 0 {
            return Err(Error::InvalidArgument("ef must be at least 1".into()));
        }
        Ok(ef.max(self.k))
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    pub id: u32,
    pub distance: f32,
}

/// The answers to a batch of queries, row-major, `k` per query; short rows are padded with id
/// `u32::MAX` and distance infinity.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    pub k: usize,
    pub ids: Vec<u32>,
    pub distances: Vec<f32>,
}

/// While the walk is warm, one hop in this many is timed (see `StoredGraph::page_in`).
const WARM_SAMPLE: u32 = 8;

/// The graph as one read transaction sees it, through the commit's view.
struct StoredGraph<'t> {
    s: &'t Arc<Shared>,
    txn: &'t ReadTxn<'t>,
    view: &'t View,
    cancel: Option<&'t AtomicBool>,
    /// Hops of this search so far (see `page_in`).
    hops: Cell<u32>,
}

impl Graph for StoredGraph<'_> {
    fn vector(&self, node: u32) -> Result<Option<&[u8]>> {
        self.view.walk_value(self.s, self.txn, node)
    }

    fn prefetch_entry(&self, node: u32) {
        self.view.prefetch_entry(node);
    }

    fn prefetch_links(&self, node: u32, level: u8) {
        if level == 0 {
            self.view.prefetch_links(node);
        }
    }

    fn page_in(&self, nodes: &[u32]) -> bool {
        let view = self.view;
        if !view.walk_cold() {
            // Warm: time the first hop of a search and one in WARM_SAMPLE after it (two clock
            // reads every hop took 3 % of a 50-d search's time); a walk that turns slow shows
            // within WARM_SAMPLE hops.
            let hop = self.hops.get();
            self.hops.set(hop.wrapping_add(1));
            return hop.is_multiple_of(WARM_SAMPLE);
        }
        if view.sample_hop() {
            return true;
        }
        let unknown: Vec<u32> = nodes
            .iter()
            .copied()
            .filter(|&node| !view.advise_walk_value(node))
            .collect();
        view.note_paged_in(unknown.len());
        fault::page_in(self.s, view.walk_db(self.s), view.index, &unknown);
        false
    }

    fn note_lookups(&self, count: usize, nanos: u64) {
        self.view.note_walk(nanos / count.max(1) as u64);
    }

    fn neighbors(&self, node: u32, level: u8, out: &mut Vec<u32>) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(AtomicOrdering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        out.clear();
        let bytes = if level == 0 {
            self.view.links(self.s, self.txn, node)?
        } else {
            self.view.upper_links(self.txn, node, level)
        };
        match bytes {
            Some(bytes) => links::decode_into(bytes, node, out),
            None => Ok(()),
        }
    }
}

/// Runs `$body` with `$D` bound to the metric of `$view`'s index and `$space` to the space its
/// graph walk compares in: the stored vectors of `$D`, or the index's quantizer. Quantizers go
/// with `euclidean` and `cosine` only, so only those pairs are compiled.
macro_rules! with_space {
    ($view:expr, $D:ident, $space:ident => $body:expr) => {
        match &$view.quantizer {
            None => with_metric!($view.header.metric, $D => {
                let $space = &Plain::<$D>::new();
                $body
            }),
            Some(quantizer) => match ($view.header.metric, quantizer) {
                (MetricKind::Euclidean, Quantizer::Int8($space)) => {
                    type $D = crate::metric::Euclidean;
                    $body
                }
                (MetricKind::Euclidean, Quantizer::Binary($space)) => {
                    type $D = crate::metric::Euclidean;
                    $body
                }
                (MetricKind::Cosine, Quantizer::Int8($space)) => {
                    type $D = crate::metric::Cosine;
                    $body
                }
                (MetricKind::Cosine, Quantizer::Binary($space)) => {
                    type $D = crate::metric::Cosine;
                    $body
                }
                (metric, _) => Err(Error::Corrupt(format!(
                    "index {}: metric '{}' cannot be quantized",
                    $view.index,
                    metric.name()
                ))),
            },
        }
    };
}

/// The view of `index` for this transaction, if the index can be searched.
pub(crate) fn searchable(s: &Shared, txn: &ReadTxn<'_>, index: u16) -> Result<Arc<View>> {
    let view = s.views.get(s, txn, index)?;
    if !view.header.built {
        return Err(if view.header.items == 0 {
            Error::IndexNotFound(index)
        } else {
            Error::NeedsBuild(index)
        });
    }
    Ok(view)
}

fn check_query(query: &[f32], dimensions: usize) -> Result<()> {
    check_dimensions(dimensions, query.len())?;
    if query.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidArgument(
            "the query has a NaN or infinite component".into(),
        ));
    }
    Ok(())
}

thread_local! {
    /// Each thread's visited marks over item ids, reused by its searches.
    static MARKS: RefCell<Marks> = RefCell::new(Marks::default());
}

/// The visited set of one search: the thread's bitset when ids are dense, a hash set otherwise.
enum Seen<'a> {
    Marks(&'a mut Marks, usize),
    Set(IdSet),
}

impl Seen<'_> {
    fn clear(&mut self) {
        match self {
            Seen::Marks(marks, slots) => marks.reset(*slots),
            Seen::Set(set) => set.clear(),
        }
    }
}

impl Visited for Seen<'_> {
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        match self {
            Seen::Marks(marks, _) => marks.insert(node),
            Seen::Set(set) => set.insert(node),
        }
    }
    #[inline]
    fn keep_new(&mut self, nodes: &[u32], out: &mut Vec<u32>) {
        match self {
            Seen::Marks(marks, _) => marks.keep_new(nodes, out),
            Seen::Set(set) => set.keep_new(nodes, out),
        }
    }
}

/// Searches one view: the `k` nearest to `query` (the stored form of metric `D`), walking the
/// graph in `space`. A quantized space walks on codes with a beam of at least `k × oversampling`
/// and, with `rescore`, scores the best `k × oversampling` again with the full vectors, so the
/// distances returned are exact.
#[allow(clippy::too_many_arguments)]
fn search_in<D: Distance, S: Space>(
    s: &Arc<Shared>,
    txn: &ReadTxn<'_>,
    view: &View,
    space: &S,
    query: &[u8],
    options: &SearchOptions<'_>,
    ef: usize,
) -> Result<Vec<Neighbor>> {
    let header = &view.header;
    let dimensions = header.dimensions as usize;
    let oversampling = match options.oversampling {
        0 => header.quantization.default_oversampling(),
        n => n,
    };
    let graph = StoredGraph {
        s,
        txn,
        view,
        cancel: options.cancel,
        hops: Cell::new(0),
    };
    let exact = |found: Vec<Scored>| -> Vec<Neighbor> {
        found
            .into_iter()
            .take(options.k)
            .map(|(d, id)| Neighbor {
                id,
                distance: D::finalize(d.0, dimensions),
            })
            .collect()
    };

    if let Some(filter) = options.filter {
        let limit = options
            .exact_scan_max
            .unwrap_or_else(|| exact_scan_limit(header.items, ef));
        if filter.len() <= limit {
            return exact_scan::<D>(&graph, query, filter, options.k).map(exact);
        }
    }

    // How many candidates the walk keeps: quantized walks keep more, for rescoring, and binary
    // codes walk a wider beam (see `Quantization::beam_factor`).
    let keep = if S::CODED {
        let beam = ef.saturating_mul(header.quantization.beam_factor());
        options.k.saturating_mul(oversampling).max(beam)
    } else {
        ef
    };
    let scorer = space.vector_scorer(query);
    let mut entries: Vec<Scored> = Vec::with_capacity(header.entry_points.len());
    for &id in &header.entry_points {
        if let Some(value) = graph.vector(id)? {
            entries.push((Dist(scorer.score(value)), id));
        }
    }
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // Called exactly once, in one of the branches below: it takes `entries` over.
    let walk = |visited: &mut Seen<'_>| -> Result<Vec<Scored>> {
        // The upper levels narrow the entry points down to `current`; the entry points also
        // start the level-0 walk: every node is reachable from them (the build sees to it), so
        // a walk whose beam runs out in a corner still reaches the rest.
        let mut current: Vec<Scored> = Vec::new();
        let mut scratch = Vec::new();
        let all = |_: u32| true;
        for level in (1..=header.top_level).rev() {
            visited.clear();
            let found = search_level(
                &graph,
                &scorer,
                if current.is_empty() {
                    &entries
                } else {
                    &current
                },
                level,
                1,
                visited,
                &all,
                &mut scratch,
            )?;
            if !found.is_empty() {
                current = found;
            }
        }
        visited.clear();
        let entries = if current.is_empty() {
            entries
        } else {
            for start in entries {
                if !current.iter().any(|&(_, id)| id == start.1) {
                    current.push(start);
                }
            }
            current
        };
        let accept =
            |id: u32| !view.excluded.contains(id) && options.filter.is_none_or(|f| f.contains(id));
        // Nothing excluded and no filter (the common case): every node may be an answer.
        let everything = view.excluded.is_empty() && options.filter.is_none();
        search_level(
            &graph,
            &scorer,
            &entries,
            0,
            keep,
            visited,
            if everything { &all } else { &accept },
            &mut scratch,
        )
    };
    let found = if view.slots > 0 {
        MARKS.with(|marks| match marks.try_borrow_mut() {
            Ok(mut marks) => walk(&mut Seen::Marks(&mut marks, view.slots)),
            // Only if a search ever ran inside another on this thread.
            Err(_) => walk(&mut Seen::Set(IdSet::default())),
        })?
    } else {
        walk(&mut Seen::Set(IdSet::default()))?
    };
    if !S::CODED {
        return Ok(exact(found));
    }
    if !options.rescore {
        return Ok(found
            .into_iter()
            .take(options.k)
            .map(|(d, id)| Neighbor {
                id,
                distance: space.finalize(d.0, dimensions),
            })
            .collect());
    }
    // Rescoring: the full vectors of the best candidates, read only now, nearest estimate
    // first. A candidate whose estimate, less its error bound, is already farther than the k-th
    // exact distance found cannot be among the k (with the bound's confidence): its vector is
    // not read. Codes without a bound (int8) rescore all of them.
    let query = Query::new(query);
    let best = options.k.saturating_mul(oversampling);
    let candidates = &found[..best.min(found.len())];
    if view.vectors_cold() {
        // The vectors are not in the page cache: start reading the candidates' pages at once
        // (advised where their place is known, looked up on the fault threads where not), so
        // their faults overlap instead of following each other.
        let unknown: Vec<u32> = candidates
            .iter()
            .map(|&(_, id)| id)
            .filter(|&id| !view.advise_vector(id))
            .collect();
        fault::page_in(s, s.nodes, view.index, &unknown);
    }
    let started = std::time::Instant::now();
    let mut reads = 0u64;
    let mut nearest: BinaryHeap<Scored> = BinaryHeap::with_capacity(options.k + 1);
    for &(_, id) in candidates.iter().take(RESCORE_AHEAD) {
        view.prefetch_vector(id);
    }
    for (j, &(estimate, id)) in candidates.iter().enumerate() {
        // The vectors ahead start loading while this one is read (those the bound then skips
        // cost only their loads).
        if let Some(&(_, later)) = candidates.get(j + RESCORE_AHEAD) {
            view.prefetch_vector(later);
        }
        if nearest.len() == options.k {
            let kth = nearest.peek().map_or(f32::INFINITY, |&(d, _)| d.0);
            let lower = match graph.vector(id)? {
                Some(code) => scorer.lower_bound(code, estimate.0),
                None => f32::NEG_INFINITY,
            };
            if lower > space.in_estimate_units(kth) {
                continue;
            }
        }
        let Some(full) = view.vector(s, txn, id)? else {
            continue;
        };
        reads += 1;
        let d = Dist(D::distance_to(&query, full));
        if nearest.len() < options.k {
            nearest.push((d, id));
        } else if nearest.peek().is_some_and(|&worst| (d, id) < worst) {
            nearest.pop();
            nearest.push((d, id));
        }
    }
    if reads > 0 {
        FULL_READS.fetch_add(reads, AtomicOrdering::Relaxed);
        view.note_rescoring(started.elapsed().as_nanos() as u64 / reads);
    }
    Ok(exact(nearest.into_sorted_vec()))
}

/// Rescoring asks for the full vector of the candidate this many places ahead of the one it
/// reads.
const RESCORE_AHEAD: usize = 2;

/// Full vectors read to rescore candidates of quantized indexes, since the process started
/// (for the measuring examples and the benchmark).
#[doc(hidden)]
pub static FULL_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The exact answer among the allowed ids that are in the graph.
fn exact_scan<D: Distance>(
    graph: &StoredGraph<'_>,
    query: &[u8],
    allowed: &RoaringBitmap,
    k: usize,
) -> Result<Vec<Scored>> {
    let view = graph.view;
    let query = Query::new(query);
    let mut best: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
    for (i, id) in allowed.iter().enumerate() {
        if i % 1024 == 1023
            && graph
                .cancel
                .is_some_and(|c| c.load(AtomicOrdering::Relaxed))
        {
            return Err(Error::Cancelled);
        }
        if view.excluded.contains(id) {
            continue;
        }
        // Only items in the graph (built) are answers.
        if view.links(graph.s, graph.txn, id)?.is_none() {
            continue;
        }
        // The full vector (for a quantized index too): the scan's answer is exact.
        let Some(vector) = view.vector(graph.s, graph.txn, id)? else {
            continue;
        };
        let d = Dist(D::distance_to(&query, vector));
        if best.len() < k {
            best.push((d, id));
        } else if best.peek().is_some_and(|&(worst, _)| d < worst) {
            best.pop();
            best.push((d, id));
        }
    }
    Ok(best.into_sorted_vec())
}

impl Database {
    /// Checks that `index` can be searched and returns what is stored about it.
    pub fn open_reader(&self, index: u16) -> Result<IndexInfo> {
        let s = &self.shared;
        self.read(|txn| {
            let view = searchable(s, txn, index)?;
            Ok(IndexInfo::new(index, &view.header))
        })
    }

    /// The `k` nearest live, built items to `query`, nearest first.
    pub fn search(
        &self,
        index: u16,
        query: &[f32],
        options: &SearchOptions<'_>,
    ) -> Result<Vec<Neighbor>> {
        let ef = options.validate()?;
        let s = &self.shared;
        self.read(|txn| {
            let view = searchable(s, txn, index)?;
            check_query(query, view.header.dimensions as usize)?;
            with_space!(view, D, space => {
                let mut stored = Vec::new();
                D::encode(query, &mut stored);
                search_in::<D, _>(s, txn, &view, space, &stored, options, ef)
            })
        })
    }

    /// The `k` nearest items to the stored item `id`, the item itself first (unless a filter
    /// or an unbuilt update excludes it).
    pub fn search_by_id(
        &self,
        index: u16,
        id: u32,
        options: &SearchOptions<'_>,
    ) -> Result<Vec<Neighbor>> {
        let ef = options.validate()?;
        let s = &self.shared;
        self.read(|txn| {
            let view = searchable(s, txn, index)?;
            let vector = match view.vector(s, txn, id)? {
                Some(vector) if !view.deleted.contains(id) => vector,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "item {id} is not in index {index}"
                    )))
                }
            };
            let dimensions = view.header.dimensions as usize;
            with_space!(view, D, space => {
                let mut found = search_in::<D, _>(s, txn, &view, space, vector, options, ef)?;
                // The item itself comes first, also among equal vectors (which otherwise come
                // in id order, and may fill all k places before it).
                let answerable = !view.excluded.contains(id)
                    && options.filter.is_none_or(|f| f.contains(id));
                if answerable {
                    let own = D::finalize(D::distance(vector, vector), dimensions);
                    found.retain(|n| n.id != id);
                    let at = found.partition_point(|n| n.distance < own);
                    found.insert(at, Neighbor { id, distance: own });
                    found.truncate(options.k);
                }
                Ok(found)
            })
        })
    }

    /// Answers every query of `queries` (row-major, n × dimensions) in parallel.
    pub fn search_batch(
        &self,
        index: u16,
        queries: &[f32],
        options: &SearchOptions<'_>,
    ) -> Result<BatchResult> {
        let ef = options.validate()?;
        let info = self.open_reader(index)?;
        let dimensions = info.dimensions;
        if !queries.len().is_multiple_of(dimensions) {
            return Err(Error::InvalidArgument(format!(
                "a batch of queries must hold a multiple of {dimensions} components, received {}",
                queries.len()
            )));
        }
        if queries.iter().any(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument(
                "a query has a NaN or infinite component".into(),
            ));
        }
        let n = queries.len() / dimensions;
        let k = options.k;
        let mut ids = vec![u32::MAX; n * k];
        let mut distances = vec![f32::INFINITY; n * k];
        let per_chunk = n.div_ceil(rayon::current_num_threads() * 4).max(1);
        let s = &self.shared;
        ids.par_chunks_mut(per_chunk * k)
            .zip(distances.par_chunks_mut(per_chunk * k))
            .zip(queries.par_chunks(per_chunk * dimensions))
            .try_for_each(|((ids, distances), queries)| {
                self.read(|txn| {
                    let view = searchable(s, txn, index)?;
                    check_dimensions(view.header.dimensions as usize, dimensions)?;
                    with_space!(view, D, space => {
                        let mut stored = Vec::new();
                        for (row, query) in queries.chunks_exact(dimensions).enumerate() {
                            D::encode(query, &mut stored);
                            let found = search_in::<D, _>(s, txn, &view, space, &stored, options, ef)?;
                            for (j, neighbor) in found.into_iter().enumerate() {
                                ids[row * k + j] = neighbor.id;
                                distances[row * k + j] = neighbor.distance;
                            }
                        }
                        Ok(())
                    })
                })
            })?;
        Ok(BatchResult { k, ids, distances })
    }
}

#[cfg(test)]
mod tests {
    use super::exact_scan_limit;

    #[test]
    fn the_scan_limit_follows_the_measured_crossover() {
        // GloVe 100k, ef 64: measured between 8,192 and 16,384 allowed ids.
        let limit = exact_scan_limit(100_000, 64);
        assert!((8_192..16_384).contains(&limit), "{limit}");
        assert!(exact_scan_limit(1_000_000, 64) > limit);
        assert!(exact_scan_limit(100_000, 256) > limit);
        assert_eq!(exact_scan_limit(0, 64), 0);
        assert!(exact_scan_limit(u64::MAX, usize::MAX) > 0); // saturates, no overflow
    }
}
