//! The `Reader` class: searches and reads of one index, on the read pool (see `pool`).

use std::sync::Arc;

use hannoy_engine::{
    BatchResult, IndexInfo, MetricKind, Neighbor, Quantization, SearchOptions, WarmStats,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use roaring::RoaringBitmap;

use crate::abort::AbortWatch;
use crate::convert::{self, Ids};
use crate::database::DbState;
use crate::errors::{Failure, Outcome, DIMENSION_MISMATCH};
use crate::prefetch::FirstSearch;
use crate::tasks::{self, ReadTask};

/// The answers of `searchBatch`: row-major, `k` per query, short rows padded with id
/// 0xFFFFFFFF and distance Infinity.
#[napi(object)]
pub struct BatchSearchResult {
    pub k: u32,
    pub ids: Uint32Array,
    pub distances: Float32Array,
}

/// What `warm()` read.
#[napi(object)]
pub struct WarmResult {
    /// Bytes of the pages read (whole pages), at most the budget.
    pub bytes: f64,
    /// Graph nodes whose values and links were read.
    pub nodes: f64,
    pub seconds: f64,
}

/// Default number of results.
const DEFAULT_K: usize = 10;

/// Search options as parsed on the main thread; the filter becomes a bitmap on the pool.
struct Query {
    k: usize,
    ef: Option<usize>,
    filter: Option<Ids>,
    oversampling: usize,
    rescore: bool,
}

impl Query {
    fn parse(options: Option<&Object<'_>>) -> Outcome<Query> {
        let k = convert::optional_integer(options, "k", 1.0, 1_000_000.0)?
            .map_or(DEFAULT_K, |x| x as usize);
        let ef = convert::optional_integer(options, "ef", 1.0, 1_000_000.0)?.map(|x| x as usize);
        let filter = convert::field(options, "filter")?
            .map(|v| convert::ids(&v, "filter"))
            .transpose()?;
        let oversampling = convert::optional_integer(options, "oversampling", 1.0, 1000.0)?
            .map_or(0, |x| x as usize);
        let rescore = convert::optional_bool(options, "rescore")?.unwrap_or(true);
        Ok(Query {
            k,
            ef,
            filter,
            oversampling,
            rescore,
        })
    }

    fn run<T>(self, f: impl FnOnce(&SearchOptions<'_>) -> hannoy_engine::Result<T>) -> Outcome<T> {
        let bitmap = self.filter.map(|ids| {
            let mut sorted: Vec<u32> = ids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            RoaringBitmap::from_sorted_iter(sorted).unwrap_or_default()
        });
        let options = SearchOptions {
            ef: self.ef,
            filter: bitmap.as_ref(),
            oversampling: self.oversampling,
            rescore: self.rescore,
            ..SearchOptions::new(self.k)
        };
        Ok(f(&options)?)
    }
}

type SearchTask = ReadTask<Vec<Neighbor>, Pairs>;
type BatchTask = ReadTask<BatchResult, BatchSearchResult>;
type VectorTask = ReadTask<Option<Vec<f32>>, Option<Float32Array>>;

/// The answers of one search as (id, distance) pairs in one Float64Array, which index.js turns
/// into `SearchResult` objects: one typed array costs less than Node-API calls per object and
/// property (about 6 µs less for k = 10, a few percent of an awaited search).
fn to_results(_: &Env, found: Vec<Neighbor>) -> Result<Pairs> {
    let mut pairs = Vec::with_capacity(found.len() * 2);
    for n in found {
        pairs.push(n.id as f64);
        pairs.push(n.distance as f64);
    }
    Ok(Pairs(pairs))
}

/// A search's pairs, handed to JS as a Float64Array over a copy: for the few hundred bytes of a
/// search's answer, copying into a new ArrayBuffer costs less than an external one over the
/// Vec (which V8 tracks with a finalizer): 7 % of the main thread's time with 16 searches in
/// flight went to the external buffers.
pub struct Pairs(Vec<f64>);

impl ToNapiValue for Pairs {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(env);
        let array = Float64ArraySlice::copy_from(&env, &val.0)?;
        Ok(array.raw())
    }
}

/// Turns a stored vector into what `getVector` resolves with.
type VectorConvert = fn(&Env, Option<Vec<f32>>) -> Result<Option<Float32Array>>;

/// Reads one index. Every call sees the latest committed state; readers in other threads and
/// processes never wait for a writer.
#[napi]
pub struct Reader {
    state: Arc<DbState>,
    /// Its first search, which its background work waits for (see `prefetch`).
    first: Arc<FirstSearch>,
    index: u16,
    dimensions: usize,
    metric: MetricKind,
    quantization: Quantization,
}

#[napi]
impl Reader {
    pub(crate) fn new(state: Arc<DbState>, info: IndexInfo, first: Arc<FirstSearch>) -> Reader {
        Reader {
            state,
            first,
            index: info.index,
            dimensions: info.dimensions,
            metric: info.metric,
            quantization: info.quantization,
        }
    }

    /// The index this reader reads.
    #[napi(getter)]
    pub fn index(&self) -> u32 {
        self.index as u32
    }

    /// For index.js's polling only (not part of the API): while `on`, the finished searches of
    /// this thread are settled by these calls, without waking the thread (see `settle::poll`).
    /// `in_flight`: the searches index.js is waiting for. Returns whether the loop should go on
    /// polling.
    #[napi(skip_typescript, js_name = "__pollAnswers")]
    pub fn poll_answers(env: Env, on: bool, in_flight: Option<u32>) -> bool {
        crate::settle::poll(&env, on, in_flight.unwrap_or(0))
    }

    /// The number of components of every vector.
    #[napi(getter)]
    pub fn dimensions(&self) -> u32 {
        self.dimensions as u32
    }

    /// The distance metric.
    #[napi(getter, ts_return_type = "Metric")]
    pub fn metric(&self) -> String {
        self.metric.name().to_string()
    }

    /// What the graph walk reads: 'none' (the vectors), 'int8' or 'binary' codes.
    #[napi(getter, ts_return_type = "Quantization")]
    pub fn quantization(&self) -> String {
        self.quantization.name().to_string()
    }

    /// The `k` (default 10) nearest items to `query`, nearest first. `ef` (default
    /// max(k, 64)) trades speed for recall. With `filter`, only those ids are returned; a
    /// small filter (up to √(20 · ef · items) ids, 11,300 at 100,000 items and ef 64) is
    /// answered exactly by scanning its ids. Aborting `signal`
    /// rejects with an AbortError. Quantized indexes walk on codes (a 'binary' one with a beam of
    /// 2 × ef) and keep `k × oversampling` candidates (default 2 for 'int8', 8 for 'binary'),
    /// then, with `rescore` (default true),
    /// score those again with the full vectors: the distances returned are exact. Without
    /// `rescore` they are the codes' estimates and no full vector is read.
    #[napi(
        ts_args_type = "query: Float32Array | number[], options?: { k?: number; ef?: number; filter?: Uint32Array | number[]; signal?: AbortSignal; oversampling?: number; rescore?: boolean }",
        ts_return_type = "Promise<Array<SearchResult>>"
    )]
    pub fn search<'env>(
        &self,
        env: &'env Env,
        query: Unknown,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        let prepared = (|| -> Outcome<SearchTask> {
            let query = convert::floats(&query, "query")?;
            let options = convert::options(options, "options")?;
            let parsed = Query::parse(options.as_ref())?;
            let signal = convert::field(options.as_ref(), "signal")?;
            if query.len() != self.dimensions {
                return Err(Failure::new(
                    DIMENSION_MISMATCH,
                    format!(
                        "expected a query of {} dimensions, received {}",
                        self.dimensions,
                        query.len()
                    ),
                ));
            }
            let db = self.state.engine()?;
            let first = self.first.clone();
            // Last: a listener attached to the signal is detached only by the task.
            let abort = AbortWatch::new(env, signal)?;
            let index = self.index;
            let cancel = abort.flag();
            Ok(ReadTask::new(
                move || {
                    let found = parsed.run(|o| {
                        let o = SearchOptions {
                            cancel: Some(&cancel),
                            ..*o
                        };
                        db.search(index, &query, &o)
                    });
                    first.finished();
                    found
                },
                to_results,
            )
            .with_abort(abort))
        })();
        ReadTask::on_pool(prepared, to_results, env)
    }

    /// Answers many queries (`queries`: n × dimensions, row-major) in one call, in parallel.
    #[napi(
        ts_args_type = "queries: Float32Array, options?: { k?: number; ef?: number; filter?: Uint32Array | number[]; oversampling?: number; rescore?: boolean }",
        ts_return_type = "Promise<BatchSearchResult>"
    )]
    pub fn search_batch<'env>(
        &self,
        env: &'env Env,
        queries: Unknown,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        let convert: fn(&Env, BatchResult) -> Result<BatchSearchResult> = |_, r| {
            Ok(BatchSearchResult {
                k: r.k as u32,
                ids: Uint32Array::new(r.ids),
                distances: Float32Array::new(r.distances),
            })
        };
        let prepared = (|| -> Outcome<BatchTask> {
            let queries = convert::floats(&queries, "queries")?;
            if queries.len() % self.dimensions != 0 {
                return Err(Failure::invalid(format!(
                    "queries must hold a multiple of {} components, received {}",
                    self.dimensions,
                    queries.len()
                )));
            }
            let parsed = Query::parse(convert::options(options, "options")?.as_ref())?;
            let db = self.state.engine()?;
            let first = self.first.clone();
            let index = self.index;
            Ok(ReadTask::new(
                move || {
                    let found = parsed.run(|o| db.search_batch(index, &queries, o));
                    first.finished();
                    found
                },
                convert,
            ))
        })();
        ReadTask::on_pool(prepared, convert, env)
    }

    /// The `k` nearest items to the stored item `id` (the item itself comes first).
    #[napi(
        ts_args_type = "id: number, options?: { k?: number; ef?: number; filter?: Uint32Array | number[]; oversampling?: number; rescore?: boolean }",
        ts_return_type = "Promise<Array<SearchResult>>"
    )]
    pub fn search_by_id<'env>(
        &self,
        env: &'env Env,
        id: Unknown,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        let prepared = (|| -> Outcome<SearchTask> {
            let id = convert::id(&id, "id")?;
            let parsed = Query::parse(convert::options(options, "options")?.as_ref())?;
            let db = self.state.engine()?;
            let first = self.first.clone();
            let index = self.index;
            Ok(ReadTask::new(
                move || {
                    let found = parsed.run(|o| db.search_by_id(index, id, o));
                    first.finished();
                    found
                },
                to_results,
            ))
        })();
        ReadTask::on_pool(prepared, to_results, env)
    }

    /// The stored vector of `id`, or null when it does not exist or was deleted. Quantized
    /// metrics store signs only: 'bq-*' vectors come back as ±1, 'hamming' as 0/1.
    #[napi(
        ts_args_type = "id: number",
        ts_return_type = "Promise<Float32Array | null>"
    )]
    pub fn get_vector<'env>(&self, env: &'env Env, id: Unknown) -> Result<Object<'env>> {
        let convert: VectorConvert = |_, v| Ok(v.map(Float32Array::new));
        let prepared = (|| -> Outcome<VectorTask> {
            let id = convert::id(&id, "id")?;
            let db = self.state.engine()?;
            let index = self.index;
            Ok(ReadTask::new(
                move || Ok(db.get_vector(index, id)?),
                convert,
            ))
        })();
        ReadTask::on_pool(prepared, convert, env)
    }

    /// Fills the reader's table of where each node's links (and code) are, then reads up to
    /// `bytes` (default: all of it) of the index's hot pages into memory and resolves when they
    /// are resident: the upper levels' links and the values of their nodes, highest level
    /// first, then breadth first from the entry points on level 0, each node's vector (or code,
    /// for a quantized index) and links. For code that wants to warm up before taking traffic
    /// after a cold start; answers do not change. From a file not in the page cache the fill
    /// reads the index's level-0 records in file order, ahead of its pass (so a quantized
    /// index's codes arrive at the disk's sequential speed; `bytes` does not count them, and
    /// the result's `bytes` neither, its `seconds` do); the budgeted reads run on several
    /// threads so that disk reads overlap. Aborting `signal` rejects with an AbortError, during
    /// the fill too (the pages read so far stay).
    #[napi(
        ts_args_type = "options?: { bytes?: number; signal?: AbortSignal }",
        ts_return_type = "Promise<WarmResult>"
    )]
    pub fn warm<'env>(&self, env: &'env Env, options: Option<Unknown>) -> Result<Object<'env>> {
        let convert: fn(&Env, WarmStats) -> Result<WarmResult> = |_, w| {
            Ok(WarmResult {
                bytes: w.bytes as f64,
                nodes: w.nodes as f64,
                seconds: w.seconds,
            })
        };
        let prepared = (|| -> Outcome<_> {
            let options = convert::options(options, "options")?;
            let bytes = convert::optional_integer(options.as_ref(), "bytes", 0.0, 2f64.powi(53))?
                .map_or(u64::MAX, |b| b as u64);
            let signal = convert::field(options.as_ref(), "signal")?;
            let db = self.state.engine()?;
            let abort = AbortWatch::new(env, signal)?;
            let cancel = abort.flag();
            let index = self.index;
            Ok((move || Ok(db.warm(index, bytes, Some(&cancel))?), abort))
        })();
        // On a thread of its own: a warm-up of a large index takes seconds, which would hold
        // up a read thread's searches.
        tasks::on_thread(env, "hannoy-warm", prepared, convert)
    }

    /// The number of live items (built or not).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn count<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let convert: fn(&Env, u64) -> Result<f64> = |_, n| Ok(n as f64);
        let prepared = self.state.engine().map(|db| {
            let index = self.index;
            ReadTask::new(move || Ok(db.count(index)?), convert)
        });
        ReadTask::on_pool(prepared, convert, env)
    }
}
