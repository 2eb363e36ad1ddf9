//! Page faults in parallel, for searches of an index whose pages are not in memory (a cold
//! start, or an index larger than RAM). A walk that faults on its next vectors one after the
//! other waits for one disk read per vector (about 45 µs on this project's test machine), and a
//! hop meets 10 to 30 new neighbours. Pages whose place in the map is known are advised
//! (`will_need`: the kernel starts their reads and returns); for a node whose place is not known
//! yet (a fresh process), only a B-tree lookup finds it, and that lookup is the fault. These
//! threads make such lookups for the search, many at once, each in a read transaction of its
//! own, and read a byte of every page they find: the search's own lookups then find the pages
//! in memory, or already on their way. They only read; whatever they find or miss changes no
//! answer.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use crate::dbs::Db;
use crate::keys;
use crate::store::Shared;

/// Lookups in flight at once: this machine's disk answers 16 parallel random reads about as
/// fast as one (see `warm`).
const THREADS: usize = 16;

/// Lookups waiting at most; beyond, the oldest are dropped (a hint, not a promise: the newest
/// belong to the hops searches are at now).
const MAX_QUEUED: usize = 4096;

/// Page size the reads step by: the smallest of the platforms hannoy ships for.
const PAGE: usize = 4096;

struct Job {
    /// Weak: a queued lookup must not keep a closed database's environment open (a reopen of
    /// the same directory would find it still there).
    shared: Weak<Shared>,
    db: Db,
    index: u16,
    id: u32,
}

struct Pool {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self) {
        loop {
            let job = {
                let mut jobs = self.lock();
                loop {
                    match jobs.pop_front() {
                        Some(job) => break job,
                        None => jobs = self.ready.wait(jobs).unwrap_or_else(|p| p.into_inner()),
                    }
                }
            };
            let Job {
                shared,
                db,
                index,
                id,
            } = job;
            let Some(shared) = shared.upgrade() else {
                continue; // the database was closed meanwhile
            };
            // Only reads; a panic (a bug) must not take the thread with it.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                shared.with_read_txn(|txn| {
                    if let Ok(Some(bytes)) = db.get(txn, &keys::node(index, id)) {
                        touch(bytes);
                    }
                })
            }));
            drop(shared);
            LOOKUPS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Lookups the pool's threads made since the process started.
static LOOKUPS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
pub(crate) fn lookups() -> u64 {
    LOOKUPS.load(Ordering::Relaxed)
}

/// Reads one byte of every page of `bytes`: each read faults its page in. Returns how many
/// pages that was.
fn touch(bytes: &[u8]) -> usize {
    let start = bytes.as_ptr() as usize;
    let mut at = 0;
    let mut pages = 0;
    while at < bytes.len() {
        std::hint::black_box(bytes[at]);
        pages += 1;
        // the next page boundary after `start + at`
        at = (start + at) / PAGE * PAGE + PAGE - start;
    }
    pages
}

/// The pool, started on first use; `None` when no thread could start (then nothing is paged
/// in ahead, and searches fault as they go).
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        // One pool for the life of the process, leaked on purpose: its threads hold a plain
        // `&'static` to it.
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }));
        let started = (0..THREADS)
            .filter(|i| {
                std::thread::Builder::new()
                    .name(format!("hannoy-fault-{i}"))
                    .stack_size(256 << 10)
                    .spawn(move || pool.work())
                    .is_ok()
            })
            .count();
        (started > 0).then_some(pool)
    })
}

/// Looks up the values of `ids` in `db` (the values of index `index`) on the pool's threads
/// and reads their pages in, without waiting for them.
pub(crate) fn page_in(shared: &Arc<Shared>, db: Db, index: u16, ids: &[u32]) {
    if ids.is_empty() {
        return;
    }
    let Some(pool) = pool() else {
        return;
    };
    let mut jobs = pool.lock();
    let ids = &ids[ids.len().saturating_sub(MAX_QUEUED)..];
    let over = (jobs.len() + ids.len()).saturating_sub(MAX_QUEUED);
    jobs.drain(..over);
    let shared = Arc::downgrade(shared);
    for &id in ids {
        jobs.push_back(Job {
            shared: shared.clone(),
            db,
            index,
            id,
        });
    }
    drop(jobs);
    // One thread per lookup, up to all of them.
    if ids.len() >= THREADS {
        pool.ready.notify_all();
    } else {
        for _ in ids {
            pool.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::touch;

    #[test]
    fn touch_reads_each_page_of_a_slice_once() {
        let buffer = vec![1u8; 6 * 4096];
        // Slices starting anywhere in a page and ending anywhere: one read per page spanned,
        // and never past the end (which would panic).
        let base = buffer.as_ptr() as usize;
        for start in [0, 1, 4095, 4096, 5000] {
            for len in [0, 1, 2, 4095, 4096, 4097, 8192, 3 * 4096 + 7] {
                let slice = &buffer[start..start + len];
                let expected = if len == 0 {
                    0
                } else {
                    let first = (base + start) / 4096;
                    let last = (base + start + len - 1) / 4096;
                    last - first + 1
                };
                assert_eq!(touch(slice), expected, "start {start}, len {len}");
            }
        }
    }
}
