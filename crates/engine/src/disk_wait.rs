//! Whether a thread has waited for the disk, from the major page faults the platform counts:
//! the signal that a search's or a warm-up's pages are not in memory. Kept apart from `fault`,
//! whose paging threads need the store, so that the views (which the store owns) can ask
//! without an import circle.

/// Whether this thread has waited for the disk (taken major page faults) since it last asked,
/// less than a second ago; the first time, or after a longer pause, the answer is no (the count
/// seen then is the next call's baseline: faults from long ago must not count). Slow lookups
/// alone do not tell: a fresh process's first lookups of pages that are in the page cache take
/// microseconds too (minor faults map them in), and reading ahead then would only keep the
/// fault threads busy beside the search. Where the platform does not count faults (Windows),
/// the answer is yes and timing alone decides.
pub(crate) fn waited_for_disk() -> bool {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! {
        static SEEN: Cell<Option<(i64, Instant)>> = const { Cell::new(None) };
    }
    let Some(faults) = major_faults() else {
        return true;
    };
    let now = Instant::now();
    let before = SEEN.with(|seen| seen.replace(Some((faults, now))));
    matches!(before, Some((count, at)) if count < faults && now - at < Duration::from_secs(1))
}

/// The major page faults (waits for the disk) this thread has taken, where the platform counts
/// them per thread (Linux); elsewhere on Unix the process's (faults of other threads count too,
/// which makes a caller think the disk slow more readily, never wrongly think it fast); `None`
/// where it does not count them (Windows).
pub(crate) fn major_faults() -> Option<i64> {
    #[cfg(unix)]
    {
        #[cfg(target_os = "linux")]
        let who = libc::RUSAGE_THREAD;
        #[cfg(not(target_os = "linux"))]
        let who = libc::RUSAGE_SELF;
        // SAFETY: `rusage` is plain integers, for which all-zero bytes are a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, aligned, writable `rusage` that outlives the call, and
        // `who` is one of the constants getrusage accepts; it writes nothing else.
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return None;
        }
        Some(usage.ru_majflt as i64)
    }
    #[cfg(not(unix))]
    None
}
