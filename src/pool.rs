//! The read pool: the threads that run searches and other reads of a `Reader`.
//!
//! Two reasons to keep them apart from libuv's pool. Searches then never hold up the file system,
//! DNS and zlib work that shares libuv's four threads. And a worker that has just answered can
//! wait for the next call spinning for a moment instead of sleeping: when calls follow each
//! other closely (a loop that awaits one search after another), the next one is picked up at
//! once instead of paying for a sleeping thread to be woken (30 µs per call measured on a 2-core
//! VM, where a whole awaited search takes 60-170 µs). Workers only spin while calls have been
//! arriving within that moment of the previous answer, so sporadic calls cost no spinning.
//!
//! With many calls in flight, the main thread's part of each call (taking the call, settling
//! its Promise, being woken for the answer) runs on the cores the searches need. Two things
//! keep it small: the queue is lock-free, so queueing a call never waits for a worker, and a
//! busy worker hands its answers over up to `HOLD` at a time (`answer`) to its environment's
//! answer queue (`settle`), which wakes the main thread once for all the answers waiting there.

use crossbeam_queue::SegQueue;
use std::cell::RefCell;
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
    /// The calls waiting for a worker. Lock-free: the main thread queues a call and the workers
    /// take calls without ever waiting for each other (a lock they shared made the main thread
    /// pay a futex call for about every other search when many were in flight).
    jobs: SegQueue<Job>,
    /// Jobs queued and not yet claimed: counted after a job is pushed, and claimed by a worker
    /// before it pops one, so a worker that claims a count always finds a job to pop, and one
    /// that reads 0 once it is counted as sleeping may sleep.
    queued: AtomicUsize,
    /// Workers spinning for the next job (0 or 1).
    spinning: AtomicUsize,
    /// Workers asleep (or about to be) that no `submit` has woken yet; changed under `asleep`.
    sleeping: AtomicUsize,
    /// Wake-ups given to sleeping workers and not yet taken by one.
    asleep: Mutex<usize>,
    wake: Condvar,
    /// When the last job finished, in nanoseconds since `epoch`.
    last_finish: AtomicU64,
    /// Whether the latest call came within `SPIN` of the answer before it.
    hot: AtomicBool,
    epoch: Instant,
}

/// Most threads `HANNOY_READ_THREADS` can ask for.
const MAX_THREADS: usize = 256;

/// Read threads' stack, as large as libuv's pool threads have.
const STACK_SIZE: usize = 8 << 20;

static POOL: OnceLock<&'static ReadPool> = OnceLock::new();

thread_local! {
    /// On a read worker, the answers it holds back (see `answer`); `None` on other threads.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Answers a worker has finished but not yet handed to the main thread.
struct Held {
    answers: Vec<Job>,
    /// When the first of them was held.
    since: Instant,
}

/// Most answers a worker holds back before it hands them over together (`HOLD_FOR` ends
/// holding sooner: at 384 dimensions, after about 5 searches). Measured with 16 searches in
/// flight on 2 cores, 5 alternating rounds at 384-d ef 25, holding 3 against 8 (both with one
/// wake-up per hand-over): the main thread's context switches per search 0.40-0.41 against
/// 0.21-0.27, its CPU per search (median of the rounds) 13.8 against 9.7 µs, QPS 18,718 against
/// 19,991; GloVe ef 40, one round: 0.39 against 0.18 switches, 11.6 against 7.7 µs. With 4 in
/// flight the pool rarely has a backlog to hold answers for: no change.
const HOLD: usize = 8;

/// Answers are held back only after jobs shorter than this: for longer ones the main thread's
/// wake-up is a small part of a call, and holding would delay answers by a long job.
const HOLD_AFTER: Duration = Duration::from_micros(250);

/// Holding stops once the first answer held is this old (checked after each job, so an answer
/// can wait this long and one job more).
const HOLD_FOR: Duration = Duration::from_micros(400);

/// Hands a finished job's answer to the main thread (`answer` settles its Promise). On a read
/// worker, after a short job and while more jobs are queued, the answer is held back until the
/// worker has finished up to `HOLD` of them and then handed over with the others. Holding
/// stops after a job that was not short, or once `HOLD_FOR` has passed (both checked between
/// jobs), so an answer waits for at most `HOLD - 1` more jobs, all short but the last, whose
/// length cannot be known before it runs. The main thread then wakes once for several answers
/// instead of once for each. With many calls in flight on few cores that is what bounds the
/// pool's throughput, since the main thread's share of every call is taken from the cores the
/// searches run on. An answer is only held while the pool has a backlog, so a lone call, or
/// calls awaited one at a time, are never held up; the worker hands over what it holds before
/// it waits for work. Elsewhere (a thread of its own, see `tasks::on_thread`) it runs at once.
pub fn answer(answer: Job) {
    let now = HELD.with(|held| match held.borrow_mut().as_mut() {
        Some(held) => {
            if held.answers.is_empty() {
                held.since = Instant::now();
            }
            held.answers.push(answer);
            None
        }
        None => Some(answer),
    });
    if let Some(answer) = now {
        answer();
    }
}

/// How many answers this worker holds, and since when.
fn held() -> (usize, Instant) {
    HELD.with(|held| {
        held.borrow()
            .as_ref()
            .map_or((0, Instant::now()), |h| (h.answers.len(), h.since))
    })
}

/// Hands over every answer this worker holds.
fn hand_over() {
    let mut answers = HELD.with(|held| {
        held.borrow_mut()
            .as_mut()
            .map(|h| std::mem::take(&mut h.answers))
            .unwrap_or_default()
    });
    crate::settle::together(|| {
        for answer in answers.drain(..) {
            // An answer settles one Promise; a panic in one must not lose the others.
            let _ = catch_unwind(AssertUnwindSafe(answer));
        }
    });
    // The emptied list goes back, keeping its room.
    HELD.with(|held| {
        if let Some(h) = held.borrow_mut().as_mut() {
            if h.answers.is_empty() {
                h.answers = answers;
            }
        }
    });
}

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
        jobs: SegQueue::new(),
        queued: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        sleeping: AtomicUsize::new(0),
        asleep: Mutex::new(0),
        wake: Condvar::new(),
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
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.asleep.lock().unwrap_or_else(|p| p.into_inner())
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
        self.jobs.push(job);
        // SeqCst here and in `sleep`: either this call sees a worker going to sleep, or that
        // worker sees the job.
        let queued = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        // A spinning worker takes the job without being woken; wake a sleeper for the rest.
        if self.sleeping.load(Ordering::SeqCst) > 0 && queued > self.spinning.load(Ordering::SeqCst)
        {
            let mut woken = self.lock();
            if self.sleeping.load(Ordering::SeqCst) > *woken {
                *woken += 1;
                drop(woken);
                self.wake.notify_one();
            }
        }
    }

    /// A queued job, if any: claims one of the counted jobs, then pops one.
    fn take(&self) -> Option<Job> {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| q.checked_sub(1))
            .ok()?;
        // Every count follows its push and every popper claims a count first, so a job is
        // there; a pop racing a push that is still being written can miss it for a moment.
        loop {
            if let Some(job) = self.jobs.pop() {
                return Some(job);
            }
            std::hint::spin_loop();
        }
    }

    fn work(&self) {
        HELD.with(|held| {
            *held.borrow_mut() = Some(Held {
                answers: Vec::with_capacity(HOLD),
                since: Instant::now(),
            })
        });
        loop {
            let job = self.next();
            let started = self.now();
            // The job settles its Promise itself (through `answer`); a panic must not take the
            // worker with it.
            let _ = catch_unwind(AssertUnwindSafe(job));
            let finished = self.now();
            self.last_finish.fetch_max(finished, Ordering::Relaxed);
            let (count, since) = held();
            let short = finished.saturating_sub(started) < HOLD_AFTER.as_nanos() as u64;
            if count > 0
                && (count >= HOLD
                    || !short
                    || self.queued.load(Ordering::Acquire) == 0
                    || since.elapsed() >= HOLD_FOR)
            {
                hand_over();
            }
        }
    }

    /// The next job: at once if one is queued, else after spinning for up to `SPIN` when calls
    /// are following each other closely, else after sleeping until one comes.
    fn next(&self) -> Job {
        let mut spun = false;
        loop {
            if let Some(job) = self.take() {
                return job;
            }
            // Nothing left to do: what this worker holds goes to the main thread before it
            // spins or sleeps (another worker took the job it was held for).
            if held().0 > 0 {
                hand_over();
                continue;
            }
            // One worker at most spins: the others sleep, leaving the cores to the main
            // thread and to work.
            let spin = !spun
                && self.hot.load(Ordering::Relaxed)
                && self
                    .spinning
                    .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            if !spin {
                self.sleep();
                spun = false;
                continue;
            }
            // Counted as spinning, so `submit` leaves the next job to this worker, which reads
            // the queue again after it stops spinning and before it may sleep.
            let start = Instant::now();
            'spin: while start.elapsed() < SPIN {
                for _ in 0..32 {
                    if self.queued.load(Ordering::Acquire) > 0 {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
            }
            self.spinning.fetch_sub(1, Ordering::SeqCst);
            spun = true;
        }
    }

    /// Sleeps until a `submit` wakes this worker, unless a job is queued by the time it is
    /// counted as sleeping.
    fn sleep(&self) {
        let mut woken = self.lock();
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) == 0 {
            while *woken == 0 {
                woken = self.wake.wait(woken).unwrap_or_else(|p| p.into_inner());
            }
            *woken -= 1;
        }
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
    }
}
