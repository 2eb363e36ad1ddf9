//! When a reader's background work (filling its table of where nodes are, then any prefetch
//! budget) starts: after the reader's first search has finished, or a moment after it opened.
//! A process that opens a reader to answer at once (a serverless function) gets its first
//! answer alone: beside the fill's first passes it took four times as long (13 ms against 50 ms,
//! 600k × 384, page cache warm, 2 cores), and the fill that starts after it is done as soon.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long the background work waits for the reader's first search before it starts anyway.
pub const AFTER_OPEN: Duration = Duration::from_millis(200);

/// Whether a reader's first search has finished, for its background work to wait on.
#[derive(Default)]
pub struct FirstSearch {
    done: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl FirstSearch {
    /// Records that a search of the reader finished (from the read pool; cheap after the first).
    pub fn finished(&self) {
        if !self.done.load(Ordering::Relaxed) {
            let _lock = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.done.store(true, Ordering::Relaxed);
            self.wake.notify_all();
        }
    }

    /// Waits until a search has finished or `closing` is set, at most `limit`.
    pub fn wait(&self, limit: Duration, closing: &AtomicBool) {
        let lock = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .wake
            .wait_timeout_while(lock, limit, |_| {
                !self.done.load(Ordering::Relaxed) && !closing.load(Ordering::Relaxed)
            })
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Wakes a wait (after `closing` was set).
    pub fn interrupt(&self) {
        let _lock = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }
}

/// Readers' background work running now, in this process, on a file in the page cache (where
/// it needs a core rather than the disk).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many readers' background fills of a file in the page cache are running (see `Running`).
pub fn running() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

/// Counts a reader's background work on a file in the page cache as running while it lives.
/// The event loop does not poll for answers meanwhile unless the machine has a core to spare
/// (`settle::poll`): a polling loop keeps a core busy, and the work, at a lower priority, then
/// got little of it. In a fresh process beside one awaited search at a time (600k × 384, page
/// cache warm in 4 KiB pages, 2 cores), the work took 600–650 ms with polling and 270–340 ms
/// without, and the first pass over 1,000 queries ran at 1,460–1,560 QPS against 1,970–2,280.
/// (From a file on the disk the work waits for reads, and polling goes on.)
pub struct Running(());

impl Running {
    pub fn start() -> Running {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}
