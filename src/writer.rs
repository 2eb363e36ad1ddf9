//! The `Writer` class: adds, deletes, builds and clears one index, through the write queue.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hannoy_engine::{BuildOptions, BuildStats, Control, MetricKind, Progress, Quantization};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::abort::AbortWatch;
use crate::convert;
use crate::database::DbState;
use crate::errors::{Failure, Outcome, DIMENSION_MISMATCH};
use crate::tasks;

/// What `build()` did.
#[napi(object)]
pub struct BuildResult {
    /// Items inserted into the graph (added or re-added since the last build).
    pub inserted: f64,
    /// Deleted items removed from the graph.
    pub deleted: f64,
    /// Live items in the index after the build.
    pub items: f64,
    /// Wall time of the build.
    pub seconds: f64,
}

/// A progress report of `build()`: `done` of `total` in `phase` ('train' and 'code' for
/// quantized indexes, then 'load', 'repair', 'insert', 'write').
#[napi(object)]
#[derive(Clone)]
pub struct BuildProgress {
    pub phase: String,
    pub done: f64,
    pub total: f64,
}

impl From<Progress> for BuildProgress {
    fn from(p: Progress) -> Self {
        BuildProgress {
            phase: p.phase.to_string(),
            done: p.done as f64,
            total: p.total as f64,
        }
    }
}

type ProgressFn = ThreadsafeFunction<BuildProgress, (), BuildProgress, Status, false>;

/// The longest a build waits for the main thread to take its last progress report.
const LAST_REPORT_WAIT: Duration = Duration::from_secs(5);
const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// The engine's last phase: its end is the one report sent after the build.
const LAST_PHASE: &str = "write";

/// Writes to one index. Every call is one LMDB write transaction, committed before its Promise
/// resolves; calls run in the order they were made.
#[napi]
pub struct Writer {
    state: Arc<DbState>,
    index: u16,
    dimensions: usize,
    metric: MetricKind,
    quantization: Quantization,
}

#[napi]
impl Writer {
    pub(crate) fn new(
        state: Arc<DbState>,
        index: u16,
        dimensions: usize,
        metric: MetricKind,
        quantization: Quantization,
    ) -> Writer {
        Writer {
            state,
            index,
            dimensions,
            quantization,
            metric,
        }
    }

    /// The index this writer writes.
    #[napi(getter)]
    pub fn index(&self) -> u32 {
        self.index as u32
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

    /// Adds or replaces items: `vectors` holds `ids.length × dimensions` components, row-major.
    /// They become searchable at the next `build()`. A `Float32Array` over 64 KiB is read in
    /// place, without a copy: do not change it before the Promise settles.
    #[napi(
        ts_args_type = "ids: Uint32Array | number[], vectors: Float32Array",
        ts_return_type = "Promise<void>"
    )]
    pub fn add_items<'env>(
        &self,
        env: &'env Env,
        ids: Unknown,
        vectors: Unknown,
    ) -> Result<Object<'env>> {
        let prepared = (|| -> Outcome<_> {
            let ids = convert::ids(&ids, "ids")?;
            let vectors = convert::floats(&vectors, "vectors")?;
            if vectors.len() != ids.len() * self.dimensions {
                return Err(Failure::invalid(format!(
                    "vectors must hold ids.length × dimensions = {} × {} = {} components, received {}",
                    ids.len(),
                    self.dimensions,
                    ids.len() * self.dimensions,
                    vectors.len()
                )));
            }
            Ok((ids, vectors))
        })();
        self.write(env, prepared, |w, db, (ids, vectors)| {
            db.add_quantized_items(
                w.index,
                w.dimensions,
                w.metric,
                w.quantization,
                &ids,
                &vectors,
            )
            .map_err(Failure::from)
        })
    }

    /// Adds or replaces one item.
    #[napi(
        ts_args_type = "id: number, vector: Float32Array | number[]",
        ts_return_type = "Promise<void>"
    )]
    pub fn add_item<'env>(
        &self,
        env: &'env Env,
        id: Unknown,
        vector: Unknown,
    ) -> Result<Object<'env>> {
        let prepared = (|| -> Outcome<_> {
            let id = convert::id(&id, "id")?;
            let vector = convert::floats(&vector, "vector")?;
            if vector.len() != self.dimensions {
                return Err(Failure::new(
                    DIMENSION_MISMATCH,
                    format!(
                        "expected a vector of {} dimensions, received {}",
                        self.dimensions,
                        vector.len()
                    ),
                ));
            }
            Ok((id, vector))
        })();
        self.write(env, prepared, |w, db, (id, vector)| {
            db.add_quantized_items(
                w.index,
                w.dimensions,
                w.metric,
                w.quantization,
                &[id],
                &vector,
            )
            .map_err(Failure::from)
        })
    }

    /// Deletes items; resolves to how many existed. Deleted items are never returned by a
    /// search once this resolves; the next `build()` repairs the graph around them.
    #[napi(
        ts_args_type = "ids: Uint32Array | number[]",
        ts_return_type = "Promise<number>"
    )]
    pub fn delete_items<'env>(&self, env: &'env Env, ids: Unknown) -> Result<Object<'env>> {
        let prepared = convert::ids(&ids, "ids");
        self.write(env, prepared, |w, db, ids| {
            db.delete_items(w.index, &ids)
                .map(|n| n as f64)
                .map_err(Failure::from)
        })
    }

    /// Removes every item and the graph of this index.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn clear<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.write(env, Ok(()), |w, db, ()| {
            db.clear(w.index).map_err(Failure::from)
        })
    }

    /// Inserts what was added since the last build into the graph and repairs what was
    /// deleted, in one transaction: it commits, or (on error or abort) leaves the index as it
    /// was. `m` (default 16) and `m0` (default 2 × m) bound the links per node,
    /// `efConstruction` (default 100) is the insertion beam width, `seed` (default 0) draws the
    /// levels. `onProgress` is called on the main thread at most ~10 times a second, and once
    /// at the end. Quantized indexes learn their quantizer (ranges, or the centroid and
    /// rotation) from the items of their first build and code later items with it; `retrain`
    /// learns it again from every item now stored and re-codes them all.
    #[napi(
        ts_args_type = "options?: { m?: number; m0?: number; efConstruction?: number; seed?: number; retrain?: boolean; signal?: AbortSignal; onProgress?: (progress: BuildProgress) => void }",
        ts_return_type = "Promise<BuildResult>"
    )]
    pub fn build<'env>(&self, env: &'env Env, options: Option<Unknown>) -> Result<Object<'env>> {
        let prepared = (|| -> Outcome<_> {
            let options = convert::options(options, "options")?;
            let o = options.as_ref();
            let build = BuildOptions {
                m: convert::optional_integer(o, "m", 2.0, 256.0)?.map(|x| x as u16),
                m0: convert::optional_integer(o, "m0", 2.0, 512.0)?.map(|x| x as u16),
                ef_construction: convert::optional_integer(o, "efConstruction", 1.0, 10_000.0)?
                    .map(|x| x as usize),
                seed: convert::optional_integer(o, "seed", 0.0, 2f64.powi(53))?.map(|x| x as u64),
                alpha: None,
                retrain: convert::optional_bool(o, "retrain")?.unwrap_or(false),
            };
            let progress = match convert::field(o, "onProgress")? {
                None => None,
                Some(value) if value.get_type().ok() == Some(ValueType::Function) => {
                    // SAFETY: checked to be a function of the current call's scope.
                    let function = unsafe {
                        Function::<BuildProgress, ()>::from_napi_value(value.env(), value.raw())
                    }
                    .map_err(|e| Failure::invalid(e.reason))?;
                    let tsfn: ProgressFn = function
                        .build_threadsafe_function::<BuildProgress>()
                        .callee_handled::<false>()
                        .build()
                        .map_err(|e| Failure::invalid(e.reason))?;
                    Some(tsfn)
                }
                Some(_) => return Err(Failure::invalid("onProgress must be a function")),
            };
            let abort = AbortWatch::new(env, convert::field(o, "signal")?)?;
            if abort.is_aborted() {
                return Err(Failure::aborted());
            }
            Ok((build, progress, abort))
        })();
        let (build, progress, abort) = match prepared {
            Ok(parts) => parts,
            Err(failure) => return tasks::rejected(env, failure),
        };
        let cancel = abort.flag();
        let abort = Mutex::new(Some(abort));
        let index = self.index;
        let db = self.state.engine();
        tasks::write(
            env,
            self.state.queue(),
            move || run_build(db?, index, &build, progress, &cancel),
            move |env, outcome| {
                if let Some(mut abort) = abort.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    abort.detach(env);
                }
                outcome.map(|stats| BuildResult {
                    inserted: stats.inserted as f64,
                    deleted: stats.deleted as f64,
                    items: stats.items as f64,
                    seconds: stats.seconds,
                })
            },
        )
    }
}

/// Runs a build on the writer thread, reporting progress through `progress` at most every
/// 100 ms (each phase's end always), and waits for the main thread to take the last report
/// before the Promise resolves, so `onProgress` never fires after it.
fn run_build(
    db: hannoy_engine::Database,
    index: u16,
    options: &BuildOptions,
    progress: Option<ProgressFn>,
    cancel: &AtomicBool,
) -> Outcome<BuildStats> {
    let last_sent = Mutex::new(None::<Instant>);
    let last = Mutex::new(None::<Progress>);
    let report = |p: Progress| {
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        let Some(tsfn) = progress.as_ref() else {
            return;
        };
        let mut sent = last_sent.lock().unwrap_or_else(|e| e.into_inner());
        let phase_end = p.done == p.total;
        if p.phase == LAST_PHASE && phase_end {
            return; // sent once, below, when the build is over
        }
        if phase_end || sent.is_none_or(|t| t.elapsed() >= REPORT_INTERVAL) {
            *sent = Some(Instant::now());
            tsfn.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    };
    let stats = db.build(
        index,
        options,
        &Control {
            progress: &report,
            cancel,
        },
    )?;
    if let (Some(tsfn), Some(p)) = (
        progress.as_ref(),
        last.into_inner().unwrap_or_else(|e| e.into_inner()),
    ) {
        // The last report, through the same queue as the others: when the main thread has
        // taken it, it has taken every earlier one too.
        let (ack, taken) = std::sync::mpsc::channel();
        tsfn.call_with_return_value(
            p.into(),
            ThreadsafeFunctionCallMode::Blocking,
            move |_, _| {
                let _ = ack.send(());
                Ok(())
            },
        );
        let _ = taken.recv_timeout(LAST_REPORT_WAIT);
    }
    Ok(stats)
}

impl Writer {
    /// Queues a write: `prepared` holds the checked arguments (or why they were refused, in
    /// which case nothing is queued and the Promise rejects).
    fn write<'env, A, T>(
        &self,
        env: &'env Env,
        prepared: Outcome<A>,
        work: fn(&Writer, hannoy_engine::Database, A) -> Outcome<T>,
    ) -> Result<Object<'env>>
    where
        A: Send + 'static,
        T: ToNapiValue + Send + 'static,
    {
        let args = match prepared {
            Ok(args) => args,
            Err(failure) => return tasks::rejected(env, failure),
        };
        let db = self.state.engine();
        let me = Writer {
            state: self.state.clone(),
            index: self.index,
            dimensions: self.dimensions,
            metric: self.metric,
            quantization: self.quantization,
        };
        tasks::write(
            env,
            self.state.queue(),
            move || work(&me, db?, args),
            |_, outcome| outcome,
        )
    }
}
