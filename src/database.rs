//! The `Database` class: opening, listing indexes, making writers and readers, closing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use hannoy_engine::{self as engine, IndexInfo, MetricKind, OpenOptions, Quantization};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::abort::AbortWatch;
use crate::convert;
use crate::errors::{Failure, Outcome};
use crate::prefetch::{self, FirstSearch};
use crate::queue::WriteQueue;
use crate::reader::Reader;
use crate::tasks::{self, ReadTask};
use crate::writer::Writer;

/// What a `Database` and its writers and readers share.
pub struct DbState {
    db: Mutex<Option<engine::Database>>,
    pub queue: WriteQueue,
    closed: AtomicBool,
    /// Promises of `close()` calls made while the first one was still running.
    close_waiters: Mutex<Option<Vec<Deferred>>>,
    /// Set by `close()`: background prefetches stop.
    pub closing: Arc<AtomicBool>,
    /// Indexes with a background prefetch running (one at a time per index).
    prefetching: Mutex<std::collections::HashSet<u16>>,
    /// The first searches that background work waits on, woken by `close()`.
    first_searches: Mutex<Vec<Weak<FirstSearch>>>,
}

type Deferred = napi::JsDeferred<(), Box<dyn FnOnce(Env) -> Result<()> + Send>>;

impl DbState {
    /// The engine handle, or ERR_HANNOY_CLOSED after `close()`.
    pub fn engine(&self) -> Outcome<engine::Database> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Failure::closed());
        }
        self.db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(Failure::closed)
    }

    /// In the background, unless it runs for `index` already: fills the reader's tables of
    /// `index` in one pass (a fresh reader's first searches otherwise look each node up), then
    /// reads `budget` bytes of its hot pages unless the file is in the page cache already
    /// (`engine::Database::prepare_reader`); `close()` stops it. The reader is usable at once
    /// and gets faster as this goes on; a failure only leaves it undone.
    fn prefetch(
        self: &Arc<Self>,
        db: engine::Database,
        index: u16,
        budget: u64,
        first: Arc<FirstSearch>,
    ) {
        if !self
            .prefetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index)
        {
            return;
        }
        {
            let mut waiting = self
                .first_searches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            waiting.retain(|w| w.strong_count() > 0);
            waiting.push(Arc::downgrade(&first));
        }
        let state = self.clone();
        let started = std::thread::Builder::new()
            .name("hannoy-prefetch".into())
            .spawn(move || {
                // Behind the searches: the reader is already answering.
                engine::lower_thread_priority();
                // After the reader's first search (see `prefetch.rs`).
                first.wait(prefetch::AFTER_OPEN, &state.closing);
                if !state.closing.load(Ordering::Relaxed) {
                    let _running = db.file_in_memory().then(prefetch::Running::start);
                    let _ = db.prepare_reader(index, budget, Some(&state.closing));
                }
                state.prefetch_done(index);
            });
        if started.is_err() {
            self.prefetch_done(index);
        }
    }

    fn prefetch_done(&self, index: u16) {
        self.prefetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index);
    }

    pub fn queue(&self) -> Outcome<&WriteQueue> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Failure::closed());
        }
        Ok(&self.queue)
    }
}

/// One index as `indexes()` lists it.
#[napi(object)]
pub struct IndexDescription {
    pub index: u32,
    pub dimensions: u32,
    #[napi(ts_type = "Metric")]
    pub metric: String,
    /// What the graph walk reads: the vectors ('none'), or 'int8' or 'binary' codes.
    #[napi(ts_type = "Quantization")]
    pub quantization: String,
    /// Live items, built or not.
    pub items: f64,
}

impl From<IndexInfo> for IndexDescription {
    fn from(info: IndexInfo) -> Self {
        IndexDescription {
            index: info.index as u32,
            dimensions: info.dimensions as u32,
            metric: info.metric.name().to_string(),
            quantization: info.quantization.name().to_string(),
            items: info.items as f64,
        }
    }
}

/// A database directory: an LMDB environment holding up to 65,536 indexes. Open it once per
/// process and share it; any number of processes may open the same directory.
#[napi]
pub struct Database {
    state: Arc<DbState>,
}

fn open_options(options: Option<Unknown<'_>>) -> Outcome<OpenOptions> {
    let options = convert::options(options, "options")?;
    let map_size = convert::optional_integer(options.as_ref(), "mapSize", 1.0, 2f64.powi(53))?;
    let read_only = convert::optional_bool(options.as_ref(), "readOnly")?.unwrap_or(false);
    let verify = convert::optional_bool(options.as_ref(), "verify")?.unwrap_or(false);
    Ok(OpenOptions {
        map_size: map_size.map(|x| x as usize),
        read_only,
        verify,
    })
}

type OpenTask = ReadTask<Arc<DbState>, Database>;
type IndexesTask = ReadTask<Vec<IndexInfo>, Vec<IndexDescription>>;
/// What opening a reader gives the main thread to make the `Reader` of.
type Opened = (Arc<DbState>, IndexInfo, Arc<FirstSearch>);
type ReaderTask = ReadTask<Opened, Reader>;

#[napi]
impl Database {
    /// Opens the database directory at `path`, creating it when missing (unless `readOnly`).
    /// `mapSize` is the initial size of the memory map in bytes (default 1 GiB, 64 MiB on
    /// Windows); it grows by itself when a write needs more. `readOnly` opens for reading only,
    /// also in a directory the process cannot write to. `verify` checks the whole file first
    /// (as `verify()` does; about one sequential read of it). A file shorter than LMDB's
    /// metadata says (a truncated copy) rejects with ERR_HANNOY_CORRUPT, with or without
    /// `verify`.
    #[napi(
        ts_args_type = "path: string, options?: { mapSize?: number; readOnly?: boolean; verify?: boolean }",
        ts_return_type = "Promise<Database>"
    )]
    pub fn open(path: Unknown, options: Option<Unknown>) -> AsyncTask<OpenTask> {
        let convert: fn(&Env, Arc<DbState>) -> Result<Database> = |_, state| Ok(Database { state });
        let prepared = (|| -> Outcome<OpenTask> {
            let path = convert::path(&path, "path")?;
            let options = open_options(options)?;
            Ok(ReadTask::new(
                move || {
                    let db = engine::Database::open(&path, &options)?;
                    Ok(Arc::new(DbState {
                        db: Mutex::new(Some(db)),
                        queue: WriteQueue::new()?,
                        closed: AtomicBool::new(false),
                        close_waiters: Mutex::new(Some(Vec::new())),
                        closing: Default::default(),
                        prefetching: Default::default(),
                        first_searches: Default::default(),
                    }))
                },
                convert,
            ))
        })();
        ReadTask::from_outcome(prepared, convert)
    }

    /// A writer for `index` (0 … 65535). `dimensions` is required; `metric` defaults to
    /// 'cosine'. `quantization` (default 'none', fixed when the index is created) makes the
    /// graph walk read compact codes instead of the vectors: 'int8' (a byte per dimension) or
    /// 'binary' (about a bit per dimension), for 'euclidean' and 'cosine' indexes; the full
    /// vectors are kept to rescore the best candidates and for `getVector`. Throws
    /// ERR_HANNOY_DIMENSION_MISMATCH or ERR_HANNOY_METRIC_MISMATCH when the stored index was
    /// created with other parameters.
    #[napi(
        ts_args_type = "index: number, options: { dimensions: number; metric?: Metric; quantization?: Quantization }"
    )]
    pub fn writer(&self, env: Env, index: Unknown, options: Unknown) -> Result<Writer> {
        let make = || -> Outcome<Writer> {
            let index = convert::index(&index)?;
            let options = convert::options(Some(options), "options")?
                .ok_or_else(|| Failure::invalid("options with dimensions are required"))?;
            let dimensions =
                convert::optional_integer(Some(&options), "dimensions", 1.0, 1_048_576.0)?
                    .ok_or_else(|| Failure::invalid("dimensions is required"))?
                    as usize;
            let metric = match convert::field(Some(&options), "metric")? {
                Some(value) => convert::metric(&value)?,
                None => MetricKind::Cosine,
            };
            let quantization = match convert::field(Some(&options), "quantization")? {
                Some(value) => convert::quantization(&value)?,
                None => Quantization::None,
            };
            self.state
                .engine()?
                .check_quantized_writer(index, dimensions, metric, quantization)?;
            Ok(Writer::new(
                self.state.clone(),
                index,
                dimensions,
                metric,
                quantization,
            ))
        };
        make().map_err(|f| f.to_js(&env))
    }

    /// A reader for `index` (default 0). Rejects ERR_HANNOY_INDEX_NOT_FOUND when the index
    /// holds no items and ERR_HANNOY_NEEDS_BUILD when it was never built. `prefetch` (bytes;
    /// default the environment variable `HANNOY_READER_PREFETCH_MEMORY`, else 0) starts reading
    /// that much of the index's hot pages in the background (the upper levels, then breadth
    /// first from the entry points; see `Reader.warm`), for faster first queries after a cold
    /// start; nothing is read when the file is already in the page cache. The Promise does not
    /// wait for it. The background work (this, and filling the reader's table of where nodes
    /// are) starts once the reader's first search has finished, or 200 ms after it opened: a
    /// first search right away gets the cores to itself.
    #[napi(
        ts_args_type = "index?: number, options?: { prefetch?: number }",
        ts_return_type = "Promise<Reader>"
    )]
    pub fn reader(
        &self,
        env: Env,
        index: Option<Unknown>,
        options: Option<Unknown>,
    ) -> AsyncTask<ReaderTask> {
        let convert: fn(&Env, Opened) -> Result<Reader> =
            |_, (state, info, first)| Ok(Reader::new(state, info, first));
        let prepared = (|| -> Outcome<ReaderTask> {
            let index = match index {
                Some(value) if value.get_type().ok() != Some(ValueType::Undefined) => {
                    convert::index(&value)?
                }
                _ => 0,
            };
            let options = convert::options(options, "options")?;
            let prefetch = match convert::optional_integer(
                options.as_ref(),
                "prefetch",
                0.0,
                2f64.powi(53),
            )? {
                Some(bytes) => bytes as u64,
                None => prefetch_from_env(&env),
            };
            let db = self.state.engine()?;
            let state = self.state.clone();
            Ok(ReadTask::new(
                move || {
                    let info = db.open_reader(index)?;
                    let first = Arc::new(FirstSearch::default());
                    state.prefetch(db, index, prefetch, first.clone());
                    Ok((state, info, first))
                },
                convert,
            ))
        })();
        ReadTask::from_outcome(prepared, convert)
    }

    /// Every index that holds metadata, with its dimensions, metric and live item count.
    #[napi(ts_return_type = "Promise<Array<IndexDescription>>")]
    pub fn indexes(&self) -> AsyncTask<IndexesTask> {
        let convert: fn(&Env, Vec<IndexInfo>) -> Result<Vec<IndexDescription>> =
            |_, list| Ok(list.into_iter().map(IndexDescription::from).collect());
        let prepared = self
            .state
            .engine()
            .map(|db| ReadTask::new(move || Ok(db.indexes()?), convert));
        ReadTask::from_outcome(prepared, convert)
    }

    /// Closes the database once the writes already queued have run. Every later call on it,
    /// its writers or its readers fails with ERR_HANNOY_CLOSED, except `close()` itself, which
    /// resolves again (when the first close has finished).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let state = self.state.clone();
        let (deferred, promise) =
            env.create_deferred::<(), Box<dyn FnOnce(Env) -> Result<()> + Send>>()?;
        if state.closed.swap(true, Ordering::SeqCst) {
            let mut waiters = state
                .close_waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match waiters.as_mut() {
                Some(waiting) => waiting.push(deferred),
                None => deferred.resolve(Box::new(|_| Ok(()))),
            }
            return Ok(promise);
        }
        state.closing.store(true, Ordering::SeqCst);
        let waiting = std::mem::take(
            &mut *state
                .first_searches
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for first in waiting.iter().filter_map(Weak::upgrade) {
            first.interrupt();
        }
        let closer = state.clone();
        let last = Box::new(move || {
            closer.db.lock().unwrap_or_else(|p| p.into_inner()).take();
            let waiting = closer
                .close_waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            deferred.resolve(Box::new(|_| Ok(())));
            for waiter in waiting {
                waiter.resolve(Box::new(|_| Ok(())));
            }
        });
        if let Err(failure) = state.queue.close(last) {
            // The last job never ran: settle the calls that wait for it.
            let waiting = state
                .close_waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            for waiter in waiting {
                waiter.resolve(Box::new(|_| Ok(())));
            }
            return tasks::rejected(env, failure);
        }
        Ok(promise)
    }

    /// Checks the whole file: LMDB's own structure, read from the raw file with bounds checks
    /// (never through the memory map, where a damaged page would crash the process), then every
    /// hannoy record (metadata, vectors, link lists, entry points, links that point at existing
    /// items). Resolves with what it checked; rejects with ERR_HANNOY_CORRUPT naming the first
    /// fault and where it is. Runs on a thread of its own; costs about one sequential read of
    /// the file.
    #[napi(ts_return_type = "Promise<VerifyReport>")]
    pub fn verify<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let work = self.state.engine().map(|db| {
            let work = move || -> Outcome<engine::VerifyReport> { Ok(db.verify()?) };
            (work, AbortWatch::none())
        });
        tasks::on_thread(env, "hannoy-verify", work, |_, report| {
            Ok(VerifyReport::from(report))
        })
    }

    /// Copies the whole database (every index) into the new directory `dest`, consistently
    /// while readers and writers go on. The copy is written under a temporary name beside
    /// `dest`, synced to disk and renamed into place only when complete, so `dest` is never a
    /// half-written index. With `compact` (the default) it holds the state committed when the
    /// copy starts, only the pages in use (the smallest copy), and never waits for a writer.
    /// `compact: false` writes the file's pages as they are (faster on a large file with
    /// few free pages), but LMDB makes it wait for a write transaction in progress (in any
    /// process) to commit first, and it copies the state after it.
    /// `dest` must not exist and must not be inside this database's directory
    /// (ERR_HANNOY_INVALID_ARGUMENT); its parent must exist and be writable (ERR_HANNOY_IO).
    #[napi(
        ts_args_type = "dest: string, options?: { compact?: boolean }",
        ts_return_type = "Promise<void>"
    )]
    pub fn copy<'env>(
        &self,
        env: &'env Env,
        dest: Unknown,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        let work = (|| -> Outcome<_> {
            let dest = convert::path(&dest, "dest")?;
            let options = convert::options(options, "options")?;
            let compact = convert::optional_bool(options.as_ref(), "compact")?.unwrap_or(true);
            let db = self.state.engine()?;
            let work = move || -> Outcome<()> {
                db.copy(std::path::Path::new(&dest), compact)?;
                Ok(())
            };
            Ok((work, AbortWatch::none()))
        })();
        tasks::on_thread(env, "hannoy-copy", work, |_, ()| Ok(()))
    }
}

/// The budget of `HANNOY_READER_PREFETCH_MEMORY` (bytes, a whole number), 0 when it is not
/// set. A value that is not a byte count is ignored, with a process warning (once).
fn prefetch_from_env(env: &Env) -> u64 {
    let Ok(value) = std::env::var("HANNOY_READER_PREFETCH_MEMORY") else {
        return 0;
    };
    match value.trim().parse::<u64>() {
        Ok(bytes) => bytes,
        Err(_) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                let message = format!(
                    "HANNOY_READER_PREFETCH_MEMORY={value:?} is not a number of bytes: it is ignored"
                );
                let warn = || -> Result<()> {
                    let process: Object = env.get_global()?.get_named_property("process")?;
                    let emit: Function<'_, String, Unknown<'_>> =
                        process.get_named_property("emitWarning")?;
                    emit.apply(process, message.clone())?;
                    Ok(())
                };
                if warn().is_err() {
                    eprintln!("hannoy: {message}");
                }
            });
            0
        }
    }
}

/// What `verify()` checked, all of it sound.
#[napi(object)]
pub struct VerifyReport {
    /// Bytes of the data file.
    pub file_bytes: f64,
    /// Pages in use and their size.
    pub pages: f64,
    pub page_size: u32,
    /// Pages read through LMDB's trees.
    pub pages_checked: f64,
    /// Pages LMDB lists as free, reused by later writes (a compacting `copy()` leaves them out).
    pub free_pages: f64,
    /// Every index, with its stored vectors and graph nodes.
    pub indexes: Vec<IndexCheck>,
    /// How long the check took.
    pub seconds: f64,
}

/// One index as `verify()` found it.
#[napi(object)]
pub struct IndexCheck {
    pub index: u32,
    /// Stored vectors (live ones, and deleted ones the next build removes).
    pub vectors: f64,
    /// Items in the graph.
    pub nodes: f64,
}

impl From<engine::VerifyReport> for VerifyReport {
    fn from(r: engine::VerifyReport) -> Self {
        VerifyReport {
            file_bytes: r.file_bytes as f64,
            pages: r.pages as f64,
            page_size: r.page_size as u32,
            pages_checked: r.pages_checked as f64,
            free_pages: r.free_pages as f64,
            indexes: r
                .indexes
                .into_iter()
                .map(|i| IndexCheck {
                    index: i.index as u32,
                    vectors: i.vectors as f64,
                    nodes: i.nodes as f64,
                })
                .collect(),
            seconds: r.seconds,
        }
    }
}
