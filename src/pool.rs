//! The read pool: the threads that run searches and other reads of a `Reader`.
//!
//! Two reasons to keep them apart from libuv's pool. Searches then never hold up the file system,
//! DNS and zlib work that shares libuv's four threads. And a worker that has just answered can
//! wait for the next call spinning for a moment instead of sleeping: when calls follow each
//! other closely (a loop that awaits one search after another), the next one is picked up at
//! once instead of paying for a sleeping thread to be woken (30 µs per call measured on a 2-core
//! VM, where a whole awaited search takes 60-170 µs). Workers only spin while calls have been
//! arriving within that moment of the previous answer, so sporadic calls cost no spinning.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::errors::{Failure, Outcome};

pub type Job = Box<dyn FnOnce() + Send>;

/// How long an idle worker spins for the next call, and the gap between an answer and the next
/// call under which calls count as following each other closely.
const SPIN: Duration = Duration::from_micros(100);

/// Worker threads when `HANNOY_READ_THREADS` does not say: one per core, at most this many.
const MAX_DEFAULT_THREADS: usize = 16;

pub struct ReadPool {
    state: Mutex<State>,
    wake: Condvar,
    /// Jobs in the queue, readable without the lock by spinning workers.
    queued: AtomicUsize,
    /// Workers spinning for the next job (0 or 1).
    spinning: AtomicUsize,
    /// When the last job finished, in nanoseconds since `epoch`.
    last_finish: AtomicU64,
    /// Whether the latest call came within `SPIN` of the answer before it.
    hot: AtomicBool,
    epoch: Instant,
}

struct State {
    jobs: VecDeque<Job>,
    sleeping: usize,
}

/// Most threads `HANNOY_READ_THREADS` can ask for.
const MAX_THREADS: usize = 256;

/// Read threads' stack, as large as libuv's pool threads have.
const STACK_SIZE: usize = 8 << 20;

static POOL: OnceLock<&'static ReadPool> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// The process's read pool, started on first use (and tried again on the next call if no
/// thread could be started).
pub fn get() -> Outcome<&'static ReadPool> {
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let pool = start().map_err(|e| Failure::new(crate::errors::IO, e))?;
    Ok(POOL.get_or_init(|| pool))
}

/// `HANNOY_READ_THREADS` when it is a whole number from 1 to 256, else one per core (at most
/// 16). Read once, when the pool starts.
fn threads() -> usize {
    let from_env = std::env::var("HANNOY_READ_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=MAX_THREADS).contains(n));
    from_env.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(MAX_DEFAULT_THREADS)
    })
}

fn start() -> Result<&'static ReadPool, String> {
    let pool = ReadPool {
        state: Mutex::new(State {
            jobs: VecDeque::new(),
            sleeping: 0,
        }),
        wake: Condvar::new(),
        queued: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        last_finish: AtomicU64::new(0),
        hot: AtomicBool::new(false),
        epoch: Instant::now(),
    };
    // The threads outlive the environment that starts them: keep this addon's code mapped
    // even if that environment (a worker thread) unloads it (Windows unmaps an unloaded DLL).
    napi::bindgen_prelude::retain_current_module_for_unload_safety();
    // One pool for the life of the process, like libuv's: leaked on purpose, so that workers
    // can hold a plain `&'static` to it.
    let pool: &'static ReadPool = Box::leak(Box::new(pool));
    let mut started = 0;
    for i in 0..threads() {
        let spawned = std::thread::Builder::new()
            .name(format!("hannoy-read-{i}"))
            .stack_size(STACK_SIZE)
            .spawn(move || pool.work());
        match spawned {
            Ok(_) => started += 1,
            // Nothing references the leaked pool yet: a few bytes, once per failed start.
            Err(e) if started == 0 => return Err(format!("cannot start a read thread: {e}")),
            Err(_) => break, // fewer threads than asked for still serve
        }
    }
    Ok(pool)
}

impl ReadPool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Queues `job`. A panic inside it is caught (the worker goes on); `job` must settle its
    /// own Promise, so it should catch what it needs to report (see `tasks`).
    pub fn submit(&self, job: Job) {
        let gap = self
            .now()
            .saturating_sub(self.last_finish.load(Ordering::Relaxed));
        self.hot
            .store(gap < SPIN.as_nanos() as u64, Ordering::Relaxed);
        let mut state = self.lock();
        state.jobs.push_back(job);
        let queued = self.queued.fetch_add(1, Ordering::Release) + 1;
        // A spinning worker takes the job without being woken; wake a sleeper for the rest.
        let wake = state.sleeping > 0 && queued > self.spinning.load(Ordering::Acquire);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The first queued job, if any (under the lock).
    fn take(&self, state: &mut State) -> Option<Job> {
        let job = state.jobs.pop_front()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(job)
    }

    fn work(&self) {
        loop {
            let job = self.next();
            // The job settles its Promise itself; a panic must not take the worker with it.
            let _ = catch_unwind(AssertUnwindSafe(job));
            self.last_finish.fetch_max(self.now(), Ordering::Relaxed);
        }
    }

    /// The next job: at once if one is queued, else after spinning for up to `SPIN` when calls
    /// are following each other closely, else after sleeping until one comes.
    fn next(&self) -> Job {
        let mut spun = false;
        loop {
            let mut state = self.lock();
            if let Some(job) = self.take(&mut state) {
                return job;
            }
            // One worker at most spins: the others sleep, leaving the cores to the main
            // thread and to work.
            let spin = !spun
                && self.hot.load(Ordering::Relaxed)
                && self
                    .spinning
                    .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !spin {
                state.sleeping += 1;
                while state.jobs.is_empty() {
                    state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                state.sleeping -= 1;
                if let Some(job) = self.take(&mut state) {
                    return job;
                }
                continue;
            }
            drop(state);
            // Counted as spinning (above, under the lock), so `submit` leaves the next job to
            // this worker, which reads the queue again under the lock before it may sleep.
            let start = Instant::now();
            'spin: while start.elapsed() < SPIN {
                for _ in 0..32 {
                    if self.queued.load(Ordering::Acquire) != 0 {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
            }
            self.spinning.fetch_sub(1, Ordering::AcqRel);
            spun = true;
        }
    }
}
