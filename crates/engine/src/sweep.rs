//! A pass over values in the memory map in key order, on a data file that is in the page cache
//! (a fresh reader filling its tables): the pages just ahead of the pass are mapped into the
//! process a window at a time, and the lines it will read a few pages on are hinted to the CPU.
//!
//! Without this, the pass over a 600k × 384 index's vectors took 175–190 ms in a fresh process:
//! a page fault every 16 pages (the kernel maps that many around a fault), and on every page
//! loads that wait for memory, as a prefetch of a page not mapped yet is dropped. Mapping the
//! pages ahead costs the kernel about what the faults did, but then the prefetches land: over
//! pages already mapped, the pass took 52 ms without them and 17–20 ms with them.
//!
//! The leaves of such a pass lie in file order almost always (in that index, 298,556 of 299,900
//! page changes went to the next page, 1,321 to the one after), so "a few pages on" is a fixed
//! distance; where it is wrong, a hint only goes unused. (LMDB's pages are the OS's pages.)

/// Bytes mapped at a time ahead of the pass: few enough that the kernel holds the process's map
/// lock only briefly each time, as the pass runs at a low priority beside searches whose page
/// faults may wait for that lock. In a fresh process beside one awaited search at a time (600k
/// × 384, page cache warm, medians of 6), the first pass over 1,000 queries ran at 0.60× the
/// second with 4 MiB windows, 0.63× with 256 KiB ones (0.60× without this module).
const WINDOW: usize = 256 << 10;

/// How far ahead of a value the pass hints the CPU: the same place this many pages on.
const HINT_PAGES: usize = 4;

/// The lines of a value's node that the cursor reads first lie just before the value (LMDB's
/// node header and key).
const NODE_HEAD: usize = 32;

/// Lookups of the mapping a pass may make: a value outside the one found looks again (the map
/// is one mapping in practice; a few more lookups only bound the cost when it is not).
const LOOKUPS: u32 = 3;

/// Linux's `MADV_POPULATE_READ` (5.14 and later; older kernels refuse it with EINVAL, and the
/// pass then faults as before). Not in every `libc` release.
#[cfg(target_os = "linux")]
const MADV_POPULATE_READ: libc::c_int = 22;

/// A pass's place: the part of the map already mapped ahead of it, and the bounds of the
/// mapping it runs in.
pub(crate) struct Sweep {
    mapped: std::ops::Range<usize>,
    map: Option<std::ops::Range<usize>>,
    lookups: u32,
    page: usize,
}

impl Sweep {
    pub(crate) fn new() -> Sweep {
        Sweep {
            mapped: 0..0,
            map: None,
            lookups: 0,
            page: page_size(),
        }
    }

    /// For a pass that is about to read `value` (a slice LMDB returned): maps the next window
    /// of pages once the value, or the place it hints at, lies outside the part mapped so far,
    /// and hints the CPU at the node a few pages on (a hint at a page not mapped yet is
    /// dropped, so the window stays ahead of the hints).
    pub(crate) fn visit(&mut self, value: &[u8]) {
        let at = value.as_ptr() as usize;
        let ahead = at.wrapping_add(HINT_PAGES * self.page);
        if !self.mapped.contains(&at) || !self.mapped.contains(&ahead) {
            self.map_ahead(at);
        }
        crate::graph::prefetch_raw(ahead.wrapping_sub(NODE_HEAD) as *const u8, 1);
        crate::graph::prefetch_raw((ahead & !(self.page - 1)) as *const u8, 1);
    }

    #[cfg(target_os = "linux")]
    fn map_ahead(&mut self, at: usize) {
        if !self.map.as_ref().is_some_and(|map| map.contains(&at)) && self.lookups < LOOKUPS {
            self.lookups += 1;
            self.map = mapping_of(at);
        }
        let Some(map) = self.map.clone().filter(|map| map.contains(&at)) else {
            // Not found: the pass faults as it would without this.
            self.mapped = at..at.saturating_add(WINDOW);
            return;
        };
        // Mappings start on a page boundary, so the value's page is inside this one.
        let start = at & !(self.page - 1);
        let end = start.saturating_add(WINDOW).min(map.end);
        self.mapped = start..end;
        if end > start {
            // SAFETY: madvise with MADV_POPULATE_READ only maps pages of this process's own
            // address space for reading, as read faults would, and never writes them. The range
            // lies inside the one mapping that holds a value LMDB returned (LMDB's read-only map
            // of the data file), which stays where it is for the whole pass: the pass holds a
            // read transaction under the store's gate, and the map is resized only under the
            // gate's write side. Pages past the end of the file make it fail with EFAULT
            // instead of raising SIGBUS, and a kernel without it fails with EINVAL: both are
            // ignored (the pass then faults on those pages as usual). It runs only on a file
            // that was in the page cache a moment ago, so it reads next to nothing from the
            // disk (kernels 5.14 to 6.8 without the fix for it could retry a page whose read
            // fails with an I/O error forever).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, MADV_POPULATE_READ);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn map_ahead(&mut self, at: usize) {
        // Elsewhere the pass faults as usual; only the hints remain.
        let _ = (self.lookups, &self.map);
        self.mapped = at..at.saturating_add(WINDOW);
    }
}

/// The OS page size (4 KiB where it is not known).
pub(crate) fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf takes an integer and reads no memory of ours.
        match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            size if size > 0 && (size as usize).is_power_of_two() => size as usize,
            _ => 4096,
        }
    }
    #[cfg(not(unix))]
    4096
}

/// The bounds of the mapping of this process that holds address `at`, from `/proc/self/maps`.
#[cfg(target_os = "linux")]
fn mapping_of(at: usize) -> Option<std::ops::Range<usize>> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (start, end) = line.split_whitespace().next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start..end).contains(&at).then_some(start..end)
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::mapping_of;

    #[test]
    fn finds_the_mapping_that_holds_an_address() {
        const LEN: usize = 64 * 4096;
        // SAFETY: a new private anonymous read-only mapping at an address the kernel chooses
        // (one mapping of its own, whatever the allocator does), never read, unmapped below.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let (first, last) = (map as usize, map as usize + LEN - 1);
            let found = mapping_of(first + 1000);
            libc::munmap(map, LEN);
            let found = found.expect("a mapped address is listed");
            assert!(
                found.contains(&first) && found.contains(&last),
                "{found:x?}"
            );
        }
        assert_eq!(mapping_of(0), None);
    }

    #[test]
    fn a_pass_near_the_end_of_a_file_mapped_longer_than_the_file_reads_it_right() {
        use super::Sweep;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        const PAGE: usize = 4096;
        let dir = crate::scratch::ScratchDir::new("hannoy-sweep").unwrap();
        let path = dir.path().join("data");
        let (pages, mapped) = (5, 256);
        let bytes: Vec<u8> = (0..pages * PAGE).map(|i| (i / PAGE) as u8 + 1).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a new shared read-only mapping of an open file, longer than the file (as
        // LMDB maps its data file); only its first `pages` pages, which the file holds, are
        // read below, and it is unmapped before the test ends.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                mapped * PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let inside = std::slice::from_raw_parts(map as *const u8, pages * PAGE);
            let mut sweep = Sweep::new();
            let mut sum = 0u64;
            for page in 0..pages {
                // Each window reaches past the end of the file: mapping it ahead must neither
                // raise SIGBUS nor change what the pass reads.
                let value = &inside[page * PAGE + 100..][..64];
                sweep.visit(value);
                sum += value.iter().map(|&b| b as u64).sum::<u64>();
            }
            libc::munmap(map, mapped * PAGE);
            assert_eq!(sum, (1..=pages as u64).map(|p| p * 64).sum::<u64>());
        }
    }
}
