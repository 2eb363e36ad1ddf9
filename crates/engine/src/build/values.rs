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

/// The copy is made only when it takes at most this share of the free memory.
const SHARE_OF_FREE: u64 = 4;

/// Builds that change fewer nodes than this share of the index skip the copy: copying every
/// value would cost more than the few insertions gain.
const MIN_CHANGED_SHARE: u64 = 16;

/// What an unquantized build walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Packing {
    /// The stored vectors, in the map.
    InPlace,
    /// A copy of the stored vectors.
    Copy,
    /// Their unit vectors in 8 bits (`int8::Int8Cosine`), of this many bytes each.
    Int8(usize),
}

/// How an unquantized build of `items` nodes of `stored_len` bytes, `changed` of them new or
/// removed, walks them; `int8_len` is the size of an 8-bit value when the index can use them
/// (cosine, on a CPU with a fast `i8` dot product).
pub(super) fn packing(
    items: u64,
    changed: u64,
    stored_len: usize,
    int8_len: Option<usize>,
) -> Packing {
    if changed.saturating_mul(MIN_CHANGED_SHARE) < items {
        return Packing::InPlace;
    }
    let Some(free) = free_memory() else {
        return Packing::InPlace;
    };
    let fits = |len: usize| {
        ((len.div_ceil(LINE) * LINE) as u64)
            .saturating_mul(items.max(1))
            .saturating_mul(SHARE_OF_FREE)
            <= free
    };
    match int8_len {
        Some(len) if fits(len) => Packing::Int8(len),
        _ if stored_len >= LINE && fits(stored_len) => Packing::Copy,
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
    /// A copy of `values` as they are (all of one length).
    pub(super) fn copy(values: &[&[u8]]) -> Result<Arena> {
        let len = values.first().map_or(0, |v| v.len());
        if values.iter().any(|v| v.len() != len) {
            return Err(Error::Corrupt("stored vectors of different lengths".into()));
        }
        Arena::fill(values.len(), len, |i, out| out.copy_from_slice(values[i]))
    }

    /// The unit vectors of a cosine index's stored `values` in 8 bits, `len` bytes each.
    pub(super) fn int8(values: &[&[u8]], len: usize) -> Result<Arena> {
        Arena::fill(values.len(), len, |i, out| {
            super::int8::encode(values[i], out)
        })
    }

    /// `count` values of `len` bytes, value `i` written by `write(i, ..)`, in parallel.
    fn fill(count: usize, len: usize, write: impl Fn(usize, &mut [u8]) + Sync) -> Result<Arena> {
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
        bytes[start..]
            .par_chunks_mut(stride)
            .with_min_len(1024)
            .enumerate()
            .for_each(|(i, record)| write(i, &mut record[..len]));
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
/// the memory cgroup's limit when one is set (its page cache counted as used: it is the index
/// being built). `None` when it cannot be told (the copy is then not made).
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

/// The least room (limit minus usage) of this process's memory cgroup and its ancestors (v2, or
/// v1's memory controller), when any of them sets a limit. The path `/proc/self/cgroup` names
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
        let (root, limit, usage) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let mut dir = path.trim_end_matches('/');
        loop {
            if let Some(room) = room_in(&format!("{root}{dir}"), limit, usage) {
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

/// Limit minus usage of the cgroup directory `dir`, when it sets a limit (v2 says "max", not a
/// number, and v1 a value near `i64::MAX` when there is none).
#[cfg(target_os = "linux")]
fn room_in(dir: &str, limit: &str, usage: &str) -> Option<u64> {
    let number = |file: &str| -> Option<u64> {
        std::fs::read_to_string(format!("{dir}/{file}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let limit = number(limit).filter(|&l| l < 1 << 60)?;
    Some(limit.saturating_sub(number(usage)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_values_aligned_and_in_order() {
        let values: Vec<Vec<u8>> = (0..3000u32).map(|i| vec![i as u8; 100]).collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| &v[..]).collect();
        let arena = Arena::copy(&refs).unwrap();
        let copied = arena.values();
        assert_eq!(copied.len(), refs.len());
        for (i, want) in refs.iter().enumerate() {
            assert_eq!(copied.get(i as u32), Some(*want));
            assert_eq!(&copied[i], *want);
            assert_eq!(copied[i].as_ptr() as usize % LINE, 0);
        }
        assert_eq!(copied.get(refs.len() as u32), None);
        let uneven: Vec<&[u8]> = vec![&[1, 2], &[3]];
        assert!(Arena::copy(&uneven).is_err());
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
        assert_eq!(packing(1000, 10, 1540, Some(388)), Packing::InPlace);
        assert_eq!(packing(1000, 10, 1540, None), Packing::InPlace);
        // Far more than any machine has free.
        assert_eq!(packing(1 << 50, 1 << 50, 1540, Some(388)), Packing::InPlace);
        if free_memory().is_some_and(|free| free > 1 << 30) {
            assert_eq!(packing(1000, 1000, 1540, Some(388)), Packing::Int8(388));
            assert_eq!(packing(1000, 1000, 1540, None), Packing::Copy);
            assert_eq!(
                packing(1000, 1000, 8, None),
                Packing::InPlace,
                "short values stay"
            );
        }
    }
}
