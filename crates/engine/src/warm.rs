//! A reader's preparation for its first searches (cold starts): filling its tables of where
//! nodes are in one pass over the index's level-0 records (from a cold file, with their
//! leaves read ahead of the pass: `file::Leaves`), then reading its hot pages: the upper
//! levels first, highest first, then breadth first from the entry points on level 0, each
//! node's walk value (vector or code) and links together, up to a byte budget counted in
//! whole pages. The hot pages are read, not only advised: finding a node's links means
//! reading the page that holds them, and reads from many threads overlap where `madvise`
//! hints about unknown pages cannot.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::graph::IdHasher;
use crate::links;
use crate::search::searchable;
use crate::store::Database;

/// The unit a budget counts: the smallest page size of the platforms hannoy ships for.
const PAGE: usize = 4096;

/// Threads that bring pages in: each waits on its own page faults, so more threads keep more
/// disk reads in flight (this machine's disk answers 16 parallel random reads about as fast as
/// one).
const THREADS: usize = 16;

/// Nodes a thread reads in one read transaction.
const BATCH: usize = 512;

/// The share of the data file's pages in the page cache above which it counts as in memory.
const RESIDENT: f64 = 0.9;

/// What a warm-up brought in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmStats {
    /// Bytes of the pages it read (whole pages), at most the budget.
    pub bytes: u64,
    /// Graph nodes whose values and links it covered.
    pub nodes: u64,
    pub seconds: f64,
}

/// Shards of `Pages`' set, so that threads adding pages seldom wait for each other.
const SHARDS: usize = 64;

type PageSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// The pages read so far by all threads, and the budget they share.
struct Pages {
    /// Page numbers (addresses / `PAGE`), each in shard `page % SHARDS`.
    seen: Vec<Mutex<PageSet>>,
    /// Bytes of the pages claimed so far.
    used: AtomicU64,
    budget: u64,
}

impl Pages {
    fn new(budget: u64) -> Pages {
        Pages {
            seen: (0..SHARDS).map(|_| Mutex::default()).collect(),
            used: AtomicU64::new(0),
            budget,
        }
    }

    fn shard(&self, page: u64) -> std::sync::MutexGuard<'_, PageSet> {
        self.seen[page as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the pages of `bytes` no thread has read yet; false once the budget is spent (a
    /// value is read only when all its new pages fit). Each page counts once.
    fn add(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let start = bytes.as_ptr() as usize;
        let (first, last) = (
            (start / PAGE) as u64,
            ((start + bytes.len() - 1) / PAGE) as u64,
        );
        let new = (first..=last)
            .filter(|&p| !self.shard(p).contains(&p))
            .count() as u64;
        if new == 0 {
            return true;
        }
        let cost = new * PAGE as u64;
        let budget = self.budget;
        let reserved = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(cost).filter(|&total| total <= budget)
            });
        if reserved.is_err() {
            return false;
        }
        for page in first..=last {
            if !self.shard(page).insert(page) {
                // Another thread claimed it since: it counts once, as theirs.
                self.used.fetch_sub(PAGE as u64, Ordering::Relaxed);
                continue;
            }
            // One byte of the page, read through the slice: the fault brings the page in.
            let at = (page as usize * PAGE).max(start) - start;
            std::hint::black_box(bytes[at]);
        }
        true
    }
}

impl Database {
    /// Fills the reader tables of `index` (where each node's level-0 links, and codes, are in
    /// the map) in one cursor pass, for the latest commit. Answers do not change; a fresh
    /// reader's first searches get faster.
    pub fn fill_tables(&self, index: u16) -> Result<()> {
        self.fill_tables_with(index, self.resident_share(), None)
    }

    /// What a new reader does in the background (the binding runs it): fills its tables
    /// ([`fill_tables`](Self::fill_tables)), then reads up to `budget` bytes of its hot pages
    /// ([`warm`](Self::warm)) unless the data file (all of its indexes) is at least 90 % in
    /// the page cache, where there is nothing to bring in from disk and the reads would only
    /// compete with the searches running beside them (a fresh process's first pass over 1,000
    /// queries of a page-cached index ran at 0.60× its second pass with a background prefetch,
    /// 0.74× without). `cancel` stops it (the fill too). Returns what the reads brought in.
    pub fn prepare_reader(
        &self,
        index: u16,
        budget: u64,
        cancel: Option<&AtomicBool>,
    ) -> Result<WarmStats> {
        let share = self.resident_share();
        self.fill_tables_with(index, share, cancel)?;
        let cancelled = cancel.is_some_and(|flag| flag.load(Ordering::Relaxed));
        if budget == 0 || cancelled || !worth_reading(share) {
            return Ok(WarmStats {
                bytes: 0,
                nodes: 0,
                seconds: 0.0,
            });
        }
        self.read_hot_pages(index, budget, cancel, Instant::now())
    }

    /// Whether the data file is (at least 90 %) in the page cache, as far as can be told: a
    /// reader's background work ([`prepare_reader`](Self::prepare_reader)) is then only its
    /// tables' fill, which needs a core rather than the disk.
    pub fn file_in_memory(&self) -> bool {
        !worth_reading(self.resident_share())
    }

    /// The share of the data file in the page cache (see `resident_share`).
    fn resident_share(&self) -> Option<f64> {
        resident_share(&self.shared.data_file())
    }

    /// `fill_tables`, given the data file's share in the page cache: the vectors' slots too
    /// when it is in memory (the pass then costs memory reads, not disk reads; it also maps
    /// every page for this process). When it is not, the index's level-0 records are first
    /// asked of the disk just ahead of the pass, in file order ([`Leaves`]), so that the pass
    /// finds them in memory or on their way instead of waiting for each page in turn.
    fn fill_tables_with(
        &self,
        index: u16,
        share: Option<f64>,
        cancel: Option<&AtomicBool>,
    ) -> Result<()> {
        let s = &*self.shared;
        let resident = !worth_reading(share);
        self.read(|txn| {
            let view = searchable(s, txn, index)?;
            let cold = !resident && !view.links_filled();
            let mut ahead = if cold {
                s.leaves_ahead(b"links", index)
            } else {
                None
            };
            view.fill_links(s, txn, ahead.as_mut(), resident, cancel)?;
            if cold {
                // Finding the vectors' leaves reads their branch pages (0.4 % of the vectors at
                // 384 dimensions): every lookup of a vector passes through them, met at random.
                // After the pass: they are scattered, and the searches beside it wait behind
                // them.
                let _ = s.leaves_ahead(b"nodes", index);
            }
            if resident {
                view.fill_vectors(s, txn, cancel)?;
            }
            Ok(())
        })
    }

    /// Fills the reader tables of `index` ([`fill_tables`](Self::fill_tables): from a file not
    /// in the page cache, this reads the index's level-0 records and the B-tree pages above
    /// its vectors), then reads up to `budget` bytes of its hot pages into memory (see the
    /// module's comment), on several threads so that the disk reads overlap, and returns when
    /// they are resident. Only this index's records are read. `cancel` stops it with
    /// `Error::Cancelled`. Answers are the same with or without it; only their speed changes.
    pub fn warm(&self, index: u16, budget: u64, cancel: Option<&AtomicBool>) -> Result<WarmStats> {
        let start = Instant::now();
        if cancel.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        self.fill_tables_with(index, self.resident_share(), cancel)?;
        self.read_hot_pages(index, budget, cancel, start)
    }

    /// `warm` after the tables are filled; `start` is when the warm-up began.
    fn read_hot_pages(
        &self,
        index: u16,
        budget: u64,
        cancel: Option<&AtomicBool>,
        start: Instant,
    ) -> Result<WarmStats> {
        let s = &*self.shared;
        let cancelled = || cancel.is_some_and(|flag| flag.load(Ordering::Relaxed));
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let pages = Pages::new(budget);
        let nodes = AtomicU64::new(0);
        let full = AtomicBool::new(false);
        let (upper, entries) = self.read(|txn| {
            let view = searchable(s, txn, index)?;
            Ok((view.upper_nodes(), view.header.entry_points.clone()))
        })?;
        // Rounds, each shared out among the threads: the upper levels one at a time, highest
        // first (every search descends them), then level 0 breadth first, one level of the
        // breadth-first order at a time. A thread reads a node's value (vector or code) and
        // its links on that level.
        let round = |part: &[(u8, u32)], threads: usize| -> Result<(Vec<u32>, bool)> {
            let chunk = part.len().div_ceil(threads).max(1);
            let waited = AtomicBool::new(false);
            let next: Vec<Vec<u32>> = std::thread::scope(|scope| {
                let workers: Vec<_> = part
                    .chunks(chunk)
                    .map(|part| {
                        let (pages, nodes, full, waited) = (&pages, &nodes, &full, &waited);
                        scope.spawn(move || -> Result<Vec<u32>> {
                            let faults = crate::disk_wait::major_faults();
                            let next = self.warm_part(index, part, pages, nodes, full, &cancelled);
                            if faults.is_none_or(|f| crate::disk_wait::major_faults() != Some(f)) {
                                waited.store(true, Ordering::Relaxed);
                            }
                            next
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join()
                            .unwrap_or_else(|_| Err(Error::Io("a warm-up thread panicked".into())))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            if cancelled() {
                return Err(Error::Cancelled);
            }
            Ok((
                next.into_iter().flatten().collect(),
                waited.load(Ordering::Relaxed),
            ))
        };
        // Many threads keep many disk reads in flight; once a round found its pages in memory
        // (the fill brought a quantized index's codes in), the cores are enough, and more
        // threads would only take CPU from the searches beside them.
        let cores = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(THREADS);
        // A round of a few nodes tells little: it keeps the count as it was.
        let next_threads = |threads: usize, waited: bool, nodes: usize| match (waited, nodes) {
            (true, _) => THREADS,
            (false, n) if n >= 256 => cores,
            _ => threads,
        };
        let mut threads = THREADS;
        // `upper_nodes` lists the highest level first.
        for level in upper.chunk_by(|a, b| a.0 == b.0) {
            if full.load(Ordering::Relaxed) {
                break;
            }
            let (_, waited) = round(level, threads)?;
            threads = next_threads(threads, waited, level.len());
        }
        let mut queued: RoaringBitmap = entries.iter().copied().collect();
        let mut frontier: Vec<(u8, u32)> = entries.iter().map(|&id| (0, id)).collect();
        while !frontier.is_empty() && !full.load(Ordering::Relaxed) {
            let (next, waited) = round(&frontier, threads)?;
            threads = next_threads(threads, waited, frontier.len());
            frontier = next
                .into_iter()
                .filter(|&id| queued.insert(id))
                .map(|id| (0, id))
                .collect();
        }
        Ok(WarmStats {
            bytes: pages.used.load(Ordering::Relaxed),
            nodes: nodes.load(Ordering::Relaxed),
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// One thread's share of a warm-up round: reads the value and the links of each
    /// `(level, id)` (level 0: the level-0 record, whose neighbours it returns for the next
    /// round), page by page within the budget, in short read transactions (a resize of the
    /// map never waits long).
    fn warm_part(
        &self,
        index: u16,
        part: &[(u8, u32)],
        pages: &Pages,
        nodes: &AtomicU64,
        full: &AtomicBool,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<u32>> {
        let s = &*self.shared;
        let stop = |pages_full: bool| {
            if pages_full {
                full.store(true, Ordering::Relaxed);
            }
            full.load(Ordering::Relaxed) || cancelled()
        };
        let mut next = Vec::new();
        let mut list = Vec::new();
        for part in part.chunks(BATCH) {
            let done = self.read(|txn| {
                let view = searchable(s, txn, index)?;
                for &(level, id) in part {
                    let value = view.walk_value(s, txn, id)?.unwrap_or(&[]);
                    if level > 0 {
                        let links = view.upper_links(txn, id, level).unwrap_or(&[]);
                        if stop(!pages.add(links) || !pages.add(value)) {
                            return Ok(true);
                        }
                        continue;
                    }
                    let Some(record) = view.links(s, txn, id)? else {
                        continue;
                    };
                    if stop(!pages.add(value) || !pages.add(record)) {
                        return Ok(true);
                    }
                    nodes.fetch_add(1, Ordering::Relaxed);
                    links::decode_into(record, id, &mut list)?;
                    next.extend_from_slice(&list);
                }
                Ok(false)
            })?;
            if done {
                break;
            }
        }
        Ok(next)
    }
}

/// Whether the data file of `s` is less than 90 % in the page cache (or that is not known):
/// passes over it then gain from asking for their pages ahead.
pub(crate) fn file_is_cold(s: &crate::store::Shared) -> bool {
    worth_reading(resident_share(&s.data_file()))
}

/// Whether a background prefetch should read, given the share of the data file in the page
/// cache (`None`: not known, so read); when not, the file counts as in memory.
fn worth_reading(resident: Option<f64>) -> bool {
    !resident.is_some_and(|share| share >= RESIDENT)
}

/// Lowers the calling thread's scheduling priority (nice 10), for background work that must not
/// slow the searches running beside it; a no-op where threads have no priority of their own.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; on Linux a thread id names one thread,
    // so only the calling thread's priority changes. A failure leaves it as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Pages of the data file `resident_share` asks about, evenly spread: enough to tell 90 % from
/// less within a point or two. Asking about every page of a 1.2 GB file took 22–25 ms of a
/// fresh reader's background work; this many, about 1 ms.
const SAMPLES: usize = 4096;

/// The share of `path`'s pages that are in the page cache, estimated from `SAMPLES` pages asked
/// of the kernel (`mincore`) over a mapping of its own that is never read; `None` where that is
/// not known.
#[cfg(target_os = "linux")]
fn resident_share(path: &std::path::Path) -> Option<f64> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len() as usize;
    if len == 0 {
        return None;
    }
    // SAFETY: a new private read-only mapping of an open file, at an address the kernel
    // chooses; it is only passed to mincore (which reads page-table and page-cache state, never
    // the pages), one page at a time inside it, and unmapped before returning, so nothing
    // dereferences it.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        if map == libc::MAP_FAILED {
            return None;
        }
        let page = crate::sweep::page_size();
        let pages = len.div_ceil(page);
        let asked = pages.min(SAMPLES);
        let (mut resident, mut answered) = (0usize, 0usize);
        for i in 0..asked {
            // Evenly spread over the file (every page when it has at most SAMPLES).
            let at = i * pages / asked * page;
            let mut state = 0u8;
            if libc::mincore(map.cast::<u8>().add(at).cast(), 1, &mut state) == 0 {
                answered += 1;
                resident += usize::from(state & 1 == 1);
            }
        }
        libc::munmap(map, len);
        (answered > 0).then(|| resident as f64 / answered as f64)
    }
}

#[cfg(not(target_os = "linux"))]
fn resident_share(_path: &std::path::Path) -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Quantization;
    use crate::scratch::built_index;
    use crate::search::SearchOptions;
    use crate::store::OpenOptions;

    #[test]
    fn budgets_bound_what_is_covered_and_answers_do_not_change() {
        for q in [Quantization::None, Quantization::Binary] {
            let (_dir, db, data) = built_index(q);
            let before = db.search(0, &data[..32], &SearchOptions::new(10)).unwrap();
            let mut last = 0;
            for budget in [0, 100, 4096, 40_000, 400_000, u64::MAX] {
                let stats = db.warm(0, budget, None).unwrap();
                assert!(stats.bytes <= budget, "{q:?} {budget}: {stats:?}");
                assert_eq!(stats.bytes % PAGE as u64, 0);
                if budget < PAGE as u64 {
                    assert_eq!((stats.bytes, stats.nodes), (0, 0));
                }
                assert!(stats.nodes >= last, "{q:?} {budget}: {stats:?}");
                last = stats.nodes;
            }
            // An unlimited budget covers every node of the graph.
            assert_eq!(db.warm(0, u64::MAX, None).unwrap().nodes, 3000);
            assert_eq!(
                db.search(0, &data[..32], &SearchOptions::new(10)).unwrap(),
                before
            );
        }
    }

    #[test]
    fn filling_the_tables_in_one_pass_changes_no_answer() {
        for q in [Quantization::None, Quantization::Int8, Quantization::Binary] {
            let (_dir, db, data) = built_index(q);
            let search = |db: &Database| -> Vec<_> {
                (0..20)
                    .map(|i| db.search(0, &data[i * 32..][..32], &SearchOptions::new(10)))
                    .collect::<Result<_>>()
                    .unwrap()
            };
            let before = search(&db);
            // The same file in a second environment: a fresh view, filled before any search.
            let elsewhere = crate::scratch::ScratchDir::new("hannoy-warm-copy").unwrap();
            let copy = elsewhere.path().join("copy");
            db.copy(&copy, true).unwrap();
            let other = Database::open(&copy, &OpenOptions::default()).unwrap();
            // As for a file in the page cache: the vectors' slots too, their pages mapped
            // ahead of the pass (`Sweep`).
            other.fill_tables_with(0, Some(1.0), None).unwrap();
            other.fill_tables(0).unwrap(); // once per view: the second does nothing
            assert_eq!(search(&other), before, "{q:?}");
            drop(other);
            // As for a file not in the page cache: the level-0 records read ahead of the pass.
            let cold = Database::open(&copy, &OpenOptions::default()).unwrap();
            cold.fill_tables_with(0, Some(0.0), None).unwrap();
            assert_eq!(search(&cold), before, "{q:?}");
        }
        let (_dir, db, _) = built_index(Quantization::None);
        assert!(matches!(db.fill_tables(3), Err(Error::IndexNotFound(3))));
    }

    #[test]
    fn a_background_prefetch_reads_only_a_file_not_in_the_page_cache() {
        assert!(worth_reading(None));
        assert!(worth_reading(Some(0.0)));
        assert!(worth_reading(Some(0.89)));
        assert!(!worth_reading(Some(0.9)));
        assert!(!worth_reading(Some(1.0)));
        let (dir, db, _) = built_index(Quantization::None);
        let file = crate::file::data_file(dir.path());
        let share = resident_share(&file);
        #[cfg(target_os = "linux")]
        assert!(share.is_some(), "mincore answers on Linux");
        // Just written, so in the page cache unless memory is short.
        let read = db.prepare_reader(0, u64::MAX, None).unwrap().bytes;
        assert_eq!(read > 0, worth_reading(share), "{share:?}: {read} bytes");
        // No budget, or cancelled: no reads.
        assert_eq!(db.prepare_reader(0, 0, None).unwrap().bytes, 0);
        let cancel = AtomicBool::new(true);
        assert_eq!(
            db.prepare_reader(0, u64::MAX, Some(&cancel)).unwrap().bytes,
            0
        );
        // warm() itself always reads.
        assert!(db.warm(0, u64::MAX, None).unwrap().bytes > 0);
        assert!(matches!(
            db.prepare_reader(7, 1 << 20, None),
            Err(Error::IndexNotFound(7))
        ));
    }

    #[test]
    fn a_set_flag_cancels_and_unknown_indexes_are_errors() {
        let (_dir, db, _) = built_index(Quantization::None);
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            db.warm(0, u64::MAX, Some(&cancel)),
            Err(Error::Cancelled)
        ));
        assert!(matches!(
            db.warm(7, 1 << 20, None),
            Err(Error::IndexNotFound(7))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_resident_share_tells_a_cached_file_from_a_dropped_one() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let dir = crate::scratch::ScratchDir::new("hannoy-resident").unwrap();
        let path = dir.path().join("data");
        // More pages than SAMPLES, so that the share is sampled.
        let pages = SAMPLES * 3 + 7;
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&vec![1u8; pages * PAGE]).unwrap();
        file.sync_all().unwrap();
        let share = resident_share(&path).unwrap();
        assert!(share >= RESIDENT, "just written: {share}");
        // SAFETY: plain integers and an open descriptor; it only drops clean cached pages.
        let dropped =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(dropped, 0);
        // tmpfs (a common /tmp) keeps its pages whatever the advice: nothing to drop there.
        // SAFETY: statfs writes only into the zeroed struct passed; the path is NUL-terminated.
        let on_tmpfs = unsafe {
            let mut fs: libc::statfs = std::mem::zeroed();
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            libc::statfs(c.as_ptr(), &mut fs) == 0 && fs.f_type == libc::TMPFS_MAGIC
        };
        let share = resident_share(&path).unwrap();
        assert!(on_tmpfs || share < RESIDENT, "dropped: {share}");
        assert_eq!(resident_share(&dir.path().join("missing")), None);
    }
}
