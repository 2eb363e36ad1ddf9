//! The values (stored vectors or codes) of the nodes a build works on, and a private copy of
//! them when memory allows.
//!
//! Inserting visits nodes at random, and a build spends most of its time waiting for their
//! values to arrive from memory. Read from the memory map, a visit also costs a table lookup
//! (where the node's value lies), a TLB miss (4 KiB pages) and, at LMDB's offsets, a cache line
//! more than the value needs. A private copy (`Packing::Copy`, or for cosine the 8-bit unit
//! vectors of `int8`, a quarter of the bytes) puts each value at a fixed stride on its own cache
//! lines, in one allocation on transparent huge pages. It costs memory as large as the values,
//! so it is made only when that fits well within what the machine (or the process's memory
//! cgroup) has free; otherwise the build reads the map, which is what lets a build run inside
//! a small memory limit.

use std::ops::Index;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// The value of every node, by dense position.
pub(super) enum Values<'t> {
    /// Each value where it lies (in the memory map).
    Scattered(Vec<&'t [u8]>),
    /// Value `i` at `bytes[i * stride..][..len]`.
    Packed {
        bytes: &'t [u8],
        stride: usize,
        len: usize,
    },
}

impl<'t> Values<'t> {
    /// Values of `len` bytes side by side in `bytes`.
    pub(super) fn packed(bytes: &'t [u8], len: usize) -> Values<'t> {
        Values::Packed {
            bytes,
            stride: len,
            len,
        }
    }

    pub(super) fn get(&self, node: u32) -> Option<&'t [u8]> {
        match self {
            Values::Scattered(values) => values.get(node as usize).copied(),
            Values::Packed { bytes, stride, len } => {
                let start = (node as usize).checked_mul(*stride)?;
                bytes.get(start..start.checked_add(*len)?)
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Values::Scattered(values) => values.len(),
            Values::Packed { bytes, stride, .. } => bytes.len().checked_div(*stride).unwrap_or(0),
        }
    }
}

impl Index<usize> for Values<'_> {
    type Output = [u8];
    /// The value of the node at `position`; panics past the end, like a slice (positions come
    /// from the build's own lists, never from disk).
    fn index(&self, position: usize) -> &[u8] {
        match self {
            Values::Scattered(values) => values[position],
            Values::Packed { bytes, stride, len } => &bytes[position * stride..][..*len],
        }
    }
}

/// Values are laid out on this alignment (a cache line).
const LINE: usize = 64;

/// The copy is made only when it and the build's own tables take at most this share of the
/// free memory (in eighths): the rest is left to the process and the page cache (`table_bytes`
/// counts the build's peak, when it collects what to write; the copy is gone before the write
/// transaction's pages come).
const EIGHTHS_OF_FREE: u64 = 7;

/// Builds that change fewer nodes than this share of the index skip the copy: copying every
/// value would cost more than the few insertions gain.
const MIN_CHANGED_SHARE: u64 = 16;

/// What an unquantized build walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Packing {
    /// The stored vectors, in the map.
    InPlace,
    /// A copy of the stored vectors, of this many bytes each.
    Copy(usize),
    /// Their unit vectors in 8 bits (`int8::Int8Cosine`), of this many bytes each.
    Int8(usize),
}

impl Packing {
    /// Bytes of a copied value (0: no copy).
    fn len(self) -> usize {
        match self {
            Packing::InPlace => 0,
            Packing::Copy(len) | Packing::Int8(len) => len,
        }
    }

    /// Writes the copy of the stored vector `stored` into `out` (`len()` bytes).
    fn encode(self, stored: &[u8], out: &mut [u8]) {
        match self {
            Packing::InPlace => {}
            Packing::Copy(_) => {
                if stored.len() == out.len() {
                    out.copy_from_slice(stored)
                }
            }
            Packing::Int8(_) => super::int8::encode(stored, out),
        }
    }
}

/// How an unquantized build of `items` nodes of `stored_len` bytes, `changed` of them new or
/// removed, walks them; `int8_len` is the size of an 8-bit value when the index can use them
/// (cosine, on a CPU with a fast `i8` dot product), `table_bytes` what the build's own tables
/// take per node (they are made with or without a copy).
pub(super) fn packing(
    items: u64,
    changed: u64,
    stored_len: usize,
    int8_len: Option<usize>,
    table_bytes: usize,
) -> Packing {
    if changed.saturating_mul(MIN_CHANGED_SHARE) < items {
        return Packing::InPlace;
    }
    match free_memory() {
        Some(free) => packing_within(free, items, stored_len, int8_len, table_bytes),
        None => Packing::InPlace,
    }
}

/// `packing` for a build of `items` nodes that changes enough of them, with `free` bytes free.
fn packing_within(
    free: u64,
    items: u64,
    stored_len: usize,
    int8_len: Option<usize>,
    table_bytes: usize,
) -> Packing {
    let fits = |len: usize| {
        ((len.div_ceil(LINE) * LINE + table_bytes) as u64)
            .saturating_mul(items.max(1))
            .saturating_mul(8)
            <= free.saturating_mul(EIGHTHS_OF_FREE)
    };
    match int8_len {
        Some(len) if fits(len) => Packing::Int8(len),
        _ if stored_len >= LINE && fits(stored_len) => Packing::Copy(stored_len),
        _ => Packing::InPlace,
    }
}

/// The copied values, each at a cache-line boundary.
pub(super) struct Arena {
    bytes: Vec<u8>,
    start: usize,
    stride: usize,
    len: usize,
}

impl Arena {
    /// The copies `packing` makes of the stored `values` (all of one length), made in
    /// parallel; `None` for `Packing::InPlace`.
    pub(super) fn of(packing: Packing, values: &[&[u8]]) -> Result<Option<Arena>> {
        if packing == Packing::InPlace {
            return Ok(None);
        }
        let len = values.first().map_or(0, |v| v.len());
        if values.iter().any(|v| v.len() != len) {
            return Err(Error::Corrupt("stored vectors of different lengths".into()));
        }
        let mut arena = Arena::zeroed(values.len(), packing.len())?;
        let stride = arena.stride;
        arena.bytes[arena.start..]
            .par_chunks_mut(stride)
            .with_min_len(1024)
            .enumerate()
            .for_each(|(i, record)| packing.encode(values[i], &mut record[..packing.len()]));
        Ok(Some(arena))
    }

    /// Room for the copies `packing` makes of `count` values, all zeros until `write`; `None`
    /// for `Packing::InPlace`. For a pass that reads the stored vectors once, copying each as
    /// it goes, where reading them twice would mean reading a cold file twice.
    pub(super) fn empty(packing: Packing, count: usize) -> Result<Option<Arena>> {
        match packing {
            Packing::InPlace => Ok(None),
            _ => Arena::zeroed(count, packing.len()).map(Some),
        }
    }

    /// Writes value `i` as `packing` copies the stored vector `stored` (nothing past the end).
    pub(super) fn write(&mut self, packing: Packing, i: usize, stored: &[u8]) {
        let Some(at) = i.checked_mul(self.stride).map(|at| self.start + at) else {
            return;
        };
        if let Some(out) = self.bytes.get_mut(at..at + self.len) {
            packing.encode(stored, out);
        }
    }

    /// How many values it holds.
    pub(super) fn count(&self) -> usize {
        (self.bytes.len() - self.start) / self.stride
    }

    /// Keeps the first `count` values only.
    pub(super) fn truncate(&mut self, count: usize) {
        if count < self.count() {
            self.bytes.truncate(self.start + count * self.stride);
        }
    }

    /// `count` zeroed values of `len` bytes, each at a cache-line boundary.
    fn zeroed(count: usize, len: usize) -> Result<Arena> {
        let stride = len.div_ceil(LINE).max(1) * LINE;
        let total = stride
            .checked_mul(count)
            .and_then(|t| t.checked_add(LINE))
            .ok_or_else(|| Error::InvalidArgument("too many vectors to copy".into()))?;
        let mut bytes: Vec<u8> = Vec::new();
        bytes
            .try_reserve_exact(total)
            .map_err(|_| Error::InvalidArgument(format!("out of memory copying {total} bytes")))?;
        advise_huge_pages(&bytes);
        let start = bytes.as_ptr().align_offset(LINE).min(LINE);
        bytes.resize(start + stride * count, 0);
        Ok(Arena {
            bytes,
            start,
            stride,
            len,
        })
    }

    /// The copied values, in the order they were given.
    pub(super) fn values(&self) -> Values<'_> {
        Values::Packed {
            bytes: &self.bytes[self.start..],
            stride: self.stride,
            len: self.len,
        }
    }
}

/// Asks for transparent huge pages under the reserved (not yet touched) capacity of `bytes`.
fn advise_huge_pages(bytes: &Vec<u8>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let begin = bytes.as_ptr() as usize;
        let end = begin + bytes.capacity();
        let first = begin.next_multiple_of(HUGE);
        let last = end & !(HUGE - 1);
        if last > first {
            // SAFETY: the range lies inside the allocation `bytes` owns (from its first huge
            // page boundary to its last one); MADV_HUGEPAGE only changes how the kernel backs
            // those pages, never their contents, and a failure (THP disabled) is ignored.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Bytes of memory free for this process: the system's available memory, and on Linux within
/// the memory cgroup's limit when one is set (see `room_in`). `None` when it cannot be told (the
/// copy is then not made).
fn free_memory() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let available = std::fs::read_to_string("/proc/meminfo")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("MemAvailable:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())?
            .saturating_mul(1024);
        Some(cgroup_headroom().map_or(available, |room| room.min(available)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The least room (`room_in`) of this process's memory cgroup and its ancestors (v2, or v1's
/// memory controller), when any of them sets a limit. The path `/proc/self/cgroup` names
/// may not exist under the mount (a container without its own cgroup namespace sees its own
/// cgroup at the mount's root), so every existing ancestor is read, the root included.
#[cfg(target_os = "linux")]
fn cgroup_headroom() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut least: Option<u64> = None;
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, files) = if controllers.is_empty() {
            ("/sys/fs/cgroup", &V2)
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", &V1)
        } else {
            continue;
        };
        let mut dir = path.trim_end_matches('/');
        loop {
            if let Some(room) = room_in(&format!("{root}{dir}"), files) {
                least = Some(least.map_or(room, |l| l.min(room)));
            }
            match dir.rfind('/') {
                Some(cut) => dir = &dir[..cut],
                None => break,
            }
        }
    }
    least
}

/// Where a memory cgroup tells its limits, its usage and its page cache.
#[cfg(target_os = "linux")]
struct CgroupFiles {
    limit: &'static str,
    /// The limit above which the cgroup's processes are throttled (v2's `memory.high`).
    throttle: Option<&'static str>,
    usage: &'static str,
    /// The lines of `memory.stat` (the cgroup's and its descendants') that count the inactive
    /// file pages, and the dirty and writeback ones among the file pages.
    inactive_file: &'static str,
    dirty: &'static str,
    writeback: &'static str,
}

#[cfg(target_os = "linux")]
const V2: CgroupFiles = CgroupFiles {
    limit: "memory.max",
    throttle: Some("memory.high"),
    usage: "memory.current",
    inactive_file: "inactive_file",
    dirty: "file_dirty",
    writeback: "file_writeback",
};

#[cfg(target_os = "linux")]
const V1: CgroupFiles = CgroupFiles {
    limit: "memory.limit_in_bytes",
    throttle: None,
    usage: "memory.usage_in_bytes",
    inactive_file: "total_inactive_file",
    dirty: "total_dirty",
    writeback: "total_writeback",
};

/// The room in the cgroup directory `dir`, when it sets a limit (v2 says "max", not a number,
/// and v1 a value near `i64::MAX` when there is none): its limit (the lower of v2's `max` and
/// `high`) minus its usage, plus the clean inactive file pages its usage counts. Those are page
/// cache the kernel takes back first when the cgroup needs memory (after adding a large index
/// they are most of the usage: the pages written, synced at commit), so a copy of the vectors
/// can take their place; dirty and writeback pages are not counted (they must reach the disk
/// before they can go).
#[cfg(target_os = "linux")]
fn room_in(dir: &str, files: &CgroupFiles) -> Option<u64> {
    let read = |file: &str| std::fs::read_to_string(format!("{dir}/{file}")).ok();
    let number = |file: &str| -> Option<u64> { read(file)?.trim().parse().ok() };
    let limit = [Some(files.limit), files.throttle]
        .into_iter()
        .flatten()
        .filter_map(number)
        .filter(|&l| l < 1 << 60)
        .min()?;
    let usage = number(files.usage)?;
    let stat = read("memory.stat").unwrap_or_default();
    let value = |name: &str| stat_value(&stat, name).unwrap_or(0);
    let clean = value(files.inactive_file)
        .saturating_sub(value(files.dirty))
        .saturating_sub(value(files.writeback))
        .min(usage);
    Some(limit.saturating_sub(usage - clean))
}

/// The value of the line `name <value>` of a `memory.stat` file.
#[cfg(target_os = "linux")]
fn stat_value(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_values_aligned_and_in_order() {
        let values: Vec<Vec<u8>> = (0..3000u32).map(|i| vec![i as u8; 100]).collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| &v[..]).collect();
        let arena = Arena::of(Packing::Copy(100), &refs).unwrap().unwrap();
        let copied = arena.values();
        assert_eq!(copied.len(), refs.len());
        assert_eq!(arena.count(), refs.len());
        for (i, want) in refs.iter().enumerate() {
            assert_eq!(copied.get(i as u32), Some(*want));
            assert_eq!(&copied[i], *want);
            assert_eq!(copied[i].as_ptr() as usize % LINE, 0);
        }
        assert_eq!(copied.get(refs.len() as u32), None);
        let uneven: Vec<&[u8]> = vec![&[1, 2], &[3]];
        assert!(Arena::of(Packing::Copy(2), &uneven).is_err());
        assert!(Arena::of(Packing::InPlace, &refs).unwrap().is_none());
    }

    #[test]
    fn a_copy_made_in_one_pass_is_the_parallel_one() {
        // Stored cosine vectors (norm, then components) of 50 dimensions.
        let stored: Vec<Vec<u8>> = (0..2500u32)
            .map(|i| {
                let v: Vec<f32> = (0..50)
                    .map(|j| ((i * 7 + j * 13) % 17) as f32 - 8.0)
                    .collect();
                let mut out = Vec::new();
                <crate::metric::Cosine as crate::metric::Distance>::encode(&v, &mut out);
                out
            })
            .collect();
        let refs: Vec<&[u8]> = stored.iter().map(|v| &v[..]).collect();
        for packing in [
            Packing::Int8(super::super::int8::value_len(50)),
            Packing::Copy(204),
        ] {
            let parallel = Arena::of(packing, &refs).unwrap().unwrap();
            let mut pass = Arena::empty(packing, refs.len()).unwrap().unwrap();
            for (i, value) in refs.iter().enumerate() {
                pass.write(packing, i, value);
            }
            pass.write(packing, refs.len(), refs[0]); // past the end: ignored
            assert_eq!(pass.count(), parallel.count());
            let mut cut = Arena::empty(packing, refs.len() + 7).unwrap().unwrap();
            for (i, value) in refs.iter().enumerate() {
                cut.write(packing, i, value);
            }
            cut.truncate(refs.len());
            let last = refs.len() as u32 - 1;
            assert_eq!(cut.count(), refs.len());
            assert_eq!(cut.values().get(last), parallel.values().get(last));
            assert_eq!(cut.values().get(last + 1), None);
            let (a, b) = (pass.values(), parallel.values());
            for i in 0..refs.len() {
                assert_eq!(a.get(i as u32), b.get(i as u32), "{packing:?} value {i}");
            }
            assert!(a.get(1).is_some_and(|v| v.iter().any(|&b| b != 0)));
        }
        assert!(Arena::empty(Packing::InPlace, 10).unwrap().is_none());
    }

    #[test]
    fn packed_values_are_found_by_stride() {
        let codes: Vec<u8> = (0..=255).collect();
        let packed = Values::packed(&codes, 64);
        assert_eq!(packed.len(), 4);
        assert_eq!(packed.get(3), Some(&codes[192..]));
        assert_eq!(packed.get(4), None);
        assert_eq!(&packed[1], &codes[64..128]);
    }

    #[test]
    fn small_changes_walk_the_map() {
        assert_eq!(packing(1000, 10, 1540, Some(388), 192), Packing::InPlace);
        assert_eq!(packing(1000, 10, 1540, None, 192), Packing::InPlace);
        // Far more than any machine has free.
        assert_eq!(
            packing(1 << 50, 1 << 50, 1540, Some(388), 192),
            Packing::InPlace
        );
        if let Some(free) = free_memory().filter(|&free| free > 1 << 30) {
            assert_eq!(
                packing(1000, 1000, 1540, Some(388), 192),
                Packing::Int8(388)
            );
            assert_eq!(packing(1000, 1000, 1540, None, 192), Packing::Copy(1540));
            assert_eq!(
                packing(1000, 1000, 8, None, 192),
                Packing::InPlace,
                "short values stay"
            );
            // The build's own tables count: tables that alone take all the free memory leave
            // no room for a copy.
            let tables = (free / 1000) as usize;
            assert_eq!(
                packing(1000, 1000, 1540, Some(388), tables),
                Packing::InPlace
            );
        }
    }

    #[test]
    fn a_copy_and_the_tables_take_at_most_seven_eighths_of_the_free_memory() {
        // 1,000 nodes of 448 B (388 rounded up to lines) + 552 B of tables: 1,000,000 bytes.
        let need = 1_000_000u64;
        let free = need * 8 / 7 + 1;
        assert_eq!(
            packing_within(free, 1000, 1540, Some(388), 552),
            Packing::Int8(388)
        );
        assert_eq!(
            packing_within(free - 2, 1000, 1540, Some(388), 552),
            Packing::InPlace
        );
        // The full-precision copy (1,600 B a node) needs more; the 8-bit one is preferred.
        let full = (1600 + 552) * 1000 * 8 / 7 + 1;
        assert_eq!(
            packing_within(full, 1000, 1540, None, 552),
            Packing::Copy(1540)
        );
        assert_eq!(
            packing_within(full - 2, 1000, 1540, None, 552),
            Packing::InPlace
        );
        assert_eq!(
            packing_within(full, 1000, 1540, Some(388), 552),
            Packing::Int8(388)
        );
        assert_eq!(
            packing_within(u64::MAX, 1000, 8, None, 552),
            Packing::InPlace
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_cgroups_room_counts_its_inactive_page_cache_as_free() {
        let dir = crate::scratch::ScratchDir::new("hannoy-cgroup-room").unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let write = |file: &str, text: &str| std::fs::write(dir.path().join(file), text).unwrap();
        write("memory.max", "1000000\n");
        write("memory.current", "900000\n");
        write(
            "memory.stat",
            "anon 300000\nfile 600000\ninactive_file 500000\n",
        );
        assert_eq!(room_in(&path, &V2), Some(600_000));
        // No memory.stat: only limit minus usage.
        std::fs::remove_file(dir.path().join("memory.stat")).unwrap();
        assert_eq!(room_in(&path, &V2), Some(100_000));
        // No limit.
        write("memory.max", "max\n");
        assert_eq!(room_in(&path, &V2), None);
        // v1's names, and its "no limit" near i64::MAX.
        write("memory.limit_in_bytes", "2000000\n");
        write("memory.usage_in_bytes", "1500000\n");
        write(
            "memory.stat",
            "cache 1000\ntotal_inactive_file 700000\ninactive_file 5\n",
        );
        assert_eq!(room_in(&path, &V1), Some(1_200_000));
        write("memory.limit_in_bytes", "9223372036854771712\n");
        assert_eq!(room_in(&path, &V1), None);
        // More inactive pages than usage (a racy read) never makes room beyond the limit.
        write("memory.limit_in_bytes", "2000000\n");
        write("memory.stat", "total_inactive_file 9000000\n");
        assert_eq!(room_in(&path, &V1), Some(2_000_000));
        // Dirty and writeback pages are not free.
        write(
            "memory.stat",
            "total_inactive_file 700000\ntotal_dirty 100000\ntotal_writeback 50000\n",
        );
        assert_eq!(room_in(&path, &V1), Some(1_050_000));
        // v2's memory.high, when lower than memory.max, is the limit.
        write("memory.max", "1000000\n");
        write("memory.high", "800000\n");
        write("memory.stat", "inactive_file 500000\nfile_dirty 0\n");
        assert_eq!(room_in(&path, &V2), Some(400_000));
        write("memory.high", "max\n");
        assert_eq!(room_in(&path, &V2), Some(600_000));
    }
}
