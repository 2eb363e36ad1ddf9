//! The `Database` class: opening, listing indexes, making writers and readers, closing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hannoy_engine::{self as engine, IndexInfo, MetricKind, OpenOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert;
use crate::errors::{Failure, Outcome};
use crate::queue::WriteQueue;
use crate::reader::Reader;
use crate::tasks::{self, ReadTask};
use crate::writer::Writer;

/// What a `Database` and its writers and readers share.
pub struct DbState {
    db: Mutex<Option<engine::Database>>,
    pub queue: WriteQueue,
    closed: AtomicBool,
}

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
    /// Live items, built or not.
    pub items: f64,
}

impl From<IndexInfo> for IndexDescription {
    fn from(info: IndexInfo) -> Self {
        IndexDescription {
            index: info.index as u32,
            dimensions: info.dimensions as u32,
            metric: info.metric.name().to_string(),
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
    let read_only = match convert::field(options.as_ref(), "readOnly")? {
        None => false,
        Some(value) if value.get_type().ok() == Some(ValueType::Boolean) => {
            // SAFETY: checked to be a boolean of the current call's scope.
            unsafe { bool::from_napi_value(value.env(), value.raw()) }
                .map_err(|e| Failure::invalid(e.reason))?
        }
        Some(_) => return Err(Failure::invalid("readOnly must be a boolean")),
    };
    Ok(OpenOptions {
        map_size: map_size.map(|x| x as usize),
        read_only,
    })
}

type OpenTask = ReadTask<Arc<DbState>, Database>;
type IndexesTask = ReadTask<Vec<IndexInfo>, Vec<IndexDescription>>;
type ReaderTask = ReadTask<(Arc<DbState>, IndexInfo), Reader>;

#[napi]
impl Database {
    /// Opens the database directory at `path`, creating it when missing (unless `readOnly`).
    /// `mapSize` is the initial size of the memory map in bytes (default 1 GiB, 64 MiB on
    /// Windows); it grows by itself when a write needs more. `readOnly` opens for reading only,
    /// also in a directory the process cannot write to.
    #[napi(
        ts_args_type = "path: string, options?: { mapSize?: number; readOnly?: boolean }",
        ts_return_type = "Promise<Database>"
    )]
    pub fn open(path: Unknown, options: Option<Unknown>) -> AsyncTask<OpenTask> {
        let convert: fn(&Env, Arc<DbState>) -> Result<Database> = |_, state| Ok(Database { state });
        let prepared = (|| -> Outcome<OpenTask> {
            if path.get_type().ok() != Some(ValueType::String) {
                return Err(Failure::invalid("path must be a string"));
            }
            // SAFETY: checked to be a string of the current call's scope.
            let path = unsafe { String::from_napi_value(path.env(), path.raw()) }
                .map_err(|e| Failure::invalid(e.reason))?;
            if path.is_empty() {
                return Err(Failure::invalid("path must not be empty"));
            }
            let options = open_options(options)?;
            Ok(ReadTask::new(
                move || {
                    let db = engine::Database::open(&path, &options)?;
                    Ok(Arc::new(DbState {
                        db: Mutex::new(Some(db)),
                        queue: WriteQueue::new()?,
                        closed: AtomicBool::new(false),
                    }))
                },
                convert,
            ))
        })();
        ReadTask::from_outcome(prepared, convert)
    }

    /// A writer for `index` (0 … 65535). `dimensions` is required; `metric` defaults to
    /// 'cosine'. Throws ERR_HANNOY_DIMENSION_MISMATCH or ERR_HANNOY_METRIC_MISMATCH when the
    /// stored index was created with other parameters.
    #[napi(ts_args_type = "index: number, options: { dimensions: number; metric?: Metric }")]
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
            self.state
                .engine()?
                .check_writer(index, dimensions, metric)?;
            Ok(Writer::new(self.state.clone(), index, dimensions, metric))
        };
        make().map_err(|f| f.to_js(&env))
    }

    /// A reader for `index` (default 0). Rejects ERR_HANNOY_INDEX_NOT_FOUND when the index
    /// holds no items and ERR_HANNOY_NEEDS_BUILD when it was never built.
    #[napi(ts_args_type = "index?: number", ts_return_type = "Promise<Reader>")]
    pub fn reader(&self, index: Option<Unknown>) -> AsyncTask<ReaderTask> {
        let convert: fn(&Env, (Arc<DbState>, IndexInfo)) -> Result<Reader> =
            |_, (state, info)| Ok(Reader::new(state, info));
        let prepared = (|| -> Outcome<ReaderTask> {
            let index = match index {
                Some(value) if value.get_type().ok() != Some(ValueType::Undefined) => {
                    convert::index(&value)?
                }
                _ => 0,
            };
            let db = self.state.engine()?;
            let state = self.state.clone();
            Ok(ReadTask::new(
                move || Ok((state, db.open_reader(index)?)),
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
    /// its writers or its readers fails with ERR_HANNOY_CLOSED.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let state = self.state.clone();
        if state.closed.swap(true, Ordering::SeqCst) {
            return tasks::rejected(env, Failure::closed());
        }
        let (deferred, promise) =
            env.create_deferred::<(), Box<dyn FnOnce(Env) -> Result<()> + Send>>()?;
        let closer = state.clone();
        let last = Box::new(move || {
            closer.db.lock().unwrap_or_else(|p| p.into_inner()).take();
            deferred.resolve(Box::new(|_| Ok(())));
        });
        if let Err(failure) = state.queue.close(last) {
            return tasks::rejected(env, failure);
        }
        Ok(promise)
    }
}
