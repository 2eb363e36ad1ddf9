//! The level-0 link lists of a build, side by side in one array: a length and `capacity` slots
//! per node, each node's list behind its own lock. Reading a list is one contiguous load, which
//! the beam search can start early, instead of a chase through a lock to a separate allocation.

use std::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Mutex, MutexGuard};

pub(crate) struct Level0 {
    /// Slots per node: the length, then up to `stride - 1` links.
    stride: usize,
    /// Written under the node's lock, which orders the writes; read with or without it (see
    /// `read`). The atomics make shared slots readable and writable without `unsafe`.
    slots: Box<[AtomicU32]>,
    locks: Box<[Mutex<()>]>,
}

impl Level0 {
    /// `nodes` empty lists of up to `capacity` links each.
    pub(crate) fn new(nodes: usize, capacity: usize) -> Level0 {
        let stride = capacity + 1;
        Level0 {
            stride,
            slots: (0..nodes * stride).map(|_| AtomicU32::new(0)).collect(),
            locks: (0..nodes).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The most links a list holds.
    pub(crate) fn capacity(&self) -> usize {
        self.stride - 1
    }

    fn lock(&self, node: u32) -> Option<(MutexGuard<'_, ()>, &[AtomicU32])> {
        let start = node as usize * self.stride;
        let slots = self.slots.get(start..start + self.stride)?;
        let guard = self.locks[node as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some((guard, slots))
    }

    /// Copies the list of `node` into `out` (cleared first), without taking its lock: the
    /// build's searches read lists far more often than they change them, and locking for each
    /// read made two threads fight over the locks' cache lines. A list that another thread
    /// changes meanwhile may read as a mix of that list and a newer one (every slot below the
    /// length read was written by the store of that length or a later one: see `store`),
    /// which a graph walk tolerates. Changes go through [`update`](Self::update) and
    /// [`write`](Self::write), under the lock.
    pub(crate) fn read(&self, node: u32, out: &mut Vec<u32>) {
        out.clear();
        let start = node as usize * self.stride;
        if let Some(slots) = self.slots.get(start..start + self.stride) {
            let len = (slots[0].load(Acquire) as usize).min(self.capacity());
            out.extend(slots[1..=len].iter().map(|s| s.load(Relaxed)));
        }
    }

    /// Replaces the list of `node` (links past the capacity are dropped: callers prune first).
    pub(crate) fn write(&self, node: u32, list: &[u32]) {
        if let Some((_guard, slots)) = self.lock(node) {
            store(slots, list);
        }
    }

    /// Runs `f` on the list of `node` (in `scratch`), holding its lock, and stores the list `f`
    /// leaves. `None` for a node out of range.
    pub(crate) fn update<R>(
        &self,
        node: u32,
        scratch: &mut Vec<u32>,
        f: impl FnOnce(&mut Vec<u32>) -> R,
    ) -> Option<R> {
        let (_guard, slots) = self.lock(node)?;
        let len = (slots[0].load(Relaxed) as usize).min(self.capacity());
        scratch.clear();
        scratch.extend(slots[1..=len].iter().map(|s| s.load(Relaxed)));
        let result = f(scratch);
        debug_assert!(
            scratch.len() <= self.capacity(),
            "level-0 list over capacity"
        );
        store(slots, scratch);
        Some(result)
    }

    /// Starts loading the list of `node` into the cache.
    pub(crate) fn prefetch(&self, node: u32) {
        let start = node as usize * self.stride;
        if let Some(slots) = self.slots.get(start..start + self.stride) {
            crate::graph::prefetch_raw(slots.as_ptr() as *const u8, slots.len() * 4);
        }
    }
}

/// Writes `list` (cut to the capacity): the links first, then the length with `Release`, so that
/// a reader that loads the length with `Acquire` finds every slot below it written by this store
/// or a later one, never a link a shorter list left behind (one to a removed node, say).
fn store(slots: &[AtomicU32], list: &[u32]) {
    let len = list.len().min(slots.len() - 1);
    for (slot, &q) in slots[1..=len].iter().zip(list) {
        slot.store(q, Relaxed);
    }
    slots[0].store(len as u32, Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_back_what_was_written_and_updated() {
        let lists = Level0::new(3, 4);
        let mut out = vec![9];
        lists.read(1, &mut out);
        assert!(out.is_empty());
        lists.write(1, &[5, 6, 7]);
        lists.read(1, &mut out);
        assert_eq!(out, [5, 6, 7]);
        lists.read(0, &mut out);
        assert!(out.is_empty(), "neighbouring lists untouched");
        let mut scratch = Vec::new();
        let len = lists.update(1, &mut scratch, |list| {
            list.push(8);
            list.retain(|&q| q != 6);
            list.len()
        });
        assert_eq!(len, Some(3));
        lists.read(1, &mut out);
        assert_eq!(out, [5, 7, 8]);
        assert_eq!(lists.update(3, &mut scratch, |_| ()), None);
        lists.read(3, &mut out);
        assert!(out.is_empty());
    }
}
