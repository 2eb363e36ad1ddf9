//! What searches of one committed state need, worked out once per commit and shared by every
//! search of that state: the header, the ids not to return, and tables of pointers into the
//! memory map for vectors and links, filled as nodes are first visited. A table slot saves the
//! B-tree lookup that a visit would otherwise pay on every search.
//!
//! Pointers into the map stay valid while a read transaction of the same commit is open (LMDB
//! does not reuse the pages of a state a reader can see) and while the map does not move (the
//! store empties every view before it resizes the map, with no transaction open).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;

use crate::dbs::{Db, Dbs, ReadTxn};
use crate::error::{Error, Result};
use crate::file::Leaves;
use crate::graph::IdHasher;
use crate::header::Header;
use crate::keys;
use crate::keys::node_range;
use crate::links::check_vector;
use crate::quant::Quantizer;
use crate::records::{load_header, load_quantizer, load_set};
use crate::sweep::Sweep;

/// Slot states: not looked up yet, or looked up and absent; any other value is a pointer
/// (high 48 bits) and a length (low 16 bits).
const UNKNOWN: u64 = 0;
const ABSENT: u64 = u64::MAX;

/// The pointer and length a filled slot holds.
fn parts(packed: u64) -> (*const u8, usize) {
    (
        (packed >> 16) as usize as *const u8,
        (packed & 0xffff) as usize,
    )
}

/// The bytes a filled slot points at.
///
/// # Safety
/// `packed` must come from a slot of a view's table, filled from a slice that LMDB returned for
/// the view's commit, and be used only while a read transaction of that commit is open: LMDB
/// keeps those pages unchanged while a reader can see them, and the map does not move meanwhile
/// (views are dropped before a resize).
unsafe fn unpack<'t>(packed: u64) -> &'t [u8] {
    let (ptr, len) = parts(packed);
    // SAFETY: the caller's contract above.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Which value of an item a slot holds.
const VECTOR: usize = 0;
const LINKS: usize = 1;

/// A table of lookups, one pair of slots (vector, links) per item id side by side, so one cache
/// line serves both. Ids are dense in practice; an index whose largest id is far above its item
/// count gets no table and looks every node up.
struct Table {
    slots: Box<[[AtomicU64; 2]]>,
}

impl Table {
    fn new(len: usize) -> Table {
        // Zeroed memory (UNKNOWN everywhere) straight from the allocator: large tables come as
        // fresh pages the OS maps on first touch, so a view costs only what searches visit.
        let zeroed: Box<[[u64; 2]]> = vec![[UNKNOWN; 2]; len].into_boxed_slice();
        // SAFETY: `AtomicU64` has the same size, alignment and bit validity as `u64`, so a
        // `[[u64; 2]]` allocation is a valid `[[AtomicU64; 2]]` one; the box is uniquely owned.
        let slots = unsafe { Box::from_raw(Box::into_raw(zeroed) as *mut [[AtomicU64; 2]]) };
        Table { slots }
    }

    /// Starts loading the slots of `id` into the cache.
    fn prefetch_slots(&self, id: u32) {
        if let Some(pair) = self.slots.get(id as usize) {
            crate::graph::prefetch_raw(pair.as_ptr() as *const u8, 16);
        }
    }

    /// Starts loading a known `which` value of `id` with `prefetch` (given its address and
    /// length: a prefetch reads nothing, so it needs no transaction and makes no reference into
    /// the map); does nothing for a slot not filled yet.
    #[inline(always)]
    fn prefetch_value(&self, which: usize, id: u32, prefetch: impl Fn(*const u8, usize)) {
        if let Some(pair) = self.slots.get(id as usize) {
            let packed = pair[which].load(Ordering::Relaxed);
            if packed != UNKNOWN && packed != ABSENT {
                let (ptr, len) = parts(packed);
                prefetch(ptr, len);
            }
        }
    }

    /// Asks the kernel to start reading the pages of a known `which` value of `id` (a value not
    /// looked up yet is unknown: its lookup will fault on its page as usual). Returns whether
    /// the value was known (present or absent); an id without a slot never is.
    fn advise_value(&self, which: usize, id: u32) -> bool {
        let Some(pair) = self.slots.get(id as usize) else {
            return false;
        };
        match pair[which].load(Ordering::Relaxed) {
            UNKNOWN => false,
            ABSENT => true,
            packed => {
                // SAFETY: a filled slot of this view's table, see `unpack`.
                crate::graph::will_need(unsafe { unpack(packed) });
                true
            }
        }
    }

    /// Fills the `which` slot of `id` from a value LMDB returned for the table's commit (a
    /// cursor pass), unless it is filled already or cannot hold it.
    fn fill(&self, which: usize, id: u32, bytes: &[u8]) {
        let Some(slot) = self.slots.get(id as usize).map(|pair| &pair[which]) else {
            return;
        };
        let ptr = bytes.as_ptr() as usize as u64;
        if ptr >> 48 != 0 || bytes.len() > 0xffff {
            return;
        }
        let _ = slot.compare_exchange(
            UNKNOWN,
            (ptr << 16) | bytes.len() as u64,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The `which` value of `id` in `db`, through the table.
    #[inline]
    fn get<'t>(
        &self,
        which: usize,
        db: &Db,
        txn: &'t ReadTxn<'_>,
        index: u16,
        id: u32,
    ) -> Result<Option<&'t [u8]>> {
        let Some(slot) = self.slots.get(id as usize).map(|pair| &pair[which]) else {
            return Ok(db.get(txn, &keys::node(index, id))?);
        };
        match slot.load(Ordering::Relaxed) {
            UNKNOWN => {}
            ABSENT => return Ok(None),
            // SAFETY: a filled slot of this view's table, and `txn` reads the view's commit.
            packed => return Ok(Some(unsafe { unpack(packed) })),
        }
        let value = db.get(txn, &keys::node(index, id))?;
        let packed = match value {
            None => ABSENT,
            Some(bytes) => {
                let ptr = bytes.as_ptr() as usize as u64;
                if ptr >> 48 != 0 || bytes.len() > 0xffff {
                    return Ok(value); // does not fit a slot: look it up every time
                }
                (ptr << 16) | bytes.len() as u64
            }
        };
        slot.store(packed, Ordering::Relaxed);
        Ok(value)
    }
}

/// Whether a pass over a database that has reached entry `n` should stop: `cancel` is read
/// every 4,096 entries.
fn cancelled(n: usize, cancel: Option<&std::sync::atomic::AtomicBool>) -> bool {
    n % 4096 == 4095 && cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// One index as one commit sees it.
pub(crate) struct View {
    txn_id: usize,
    pub(crate) index: u16,
    pub(crate) header: Header,
    /// Deleted items (not returned, not found by id).
    pub(crate) deleted: RoaringBitmap,
    /// Deleted, or added since the last build (not searchable yet).
    pub(crate) excluded: RoaringBitmap,
    pub(crate) stored_len: usize,
    /// The quantizer of a quantized index (its codes lead each level-0 links value).
    pub(crate) quantizer: Option<Quantizer>,
    /// Bytes of a code in front of the level-0 links (0 without quantization).
    code_len: usize,
    /// Slots in the table: ids below it can use the bitset visited set.
    pub(crate) slots: usize,
    table: Table,
    /// See `vectors_cold`.
    cold: std::sync::atomic::AtomicBool,
    /// See `walk_cold`.
    walk_cold: std::sync::atomic::AtomicBool,
    /// Hops walked while `walk_cold`: see `sample_hop`.
    cold_hops: std::sync::atomic::AtomicU32,
    /// Lookups the walks of this view handed to the fault threads.
    paged_in: AtomicU64,
    /// Whether `fill_links` ran (or runs) for this view.
    filled: std::sync::atomic::AtomicBool,
    /// Whether `fill_vectors` ran (or runs) for this view.
    vectors_filled: std::sync::atomic::AtomicBool,
    /// The links of every node on every level above 0: (pointer into the map, length).
    upper: HashMap<u64, (usize, usize), BuildHasherDefault<IdHasher>>,
}

fn upper_key(id: u32, level: u8) -> u64 {
    ((id as u64) << 8) | level as u64
}

impl View {
    /// The view of `index` for the commit `txn` reads. `data_file` is read ahead when the
    /// lookups before the upper levels' pass waited for the disk.
    fn load(s: &Dbs, txn: &ReadTxn<'_>, index: u16, data_file: &std::path::Path) -> Result<View> {
        let faults = crate::disk_wait::major_faults();
        let header = load_header(s, txn, index)?.ok_or(Error::IndexNotFound(index))?;
        let quantizer = load_quantizer(s, txn, index, &header)?;
        let code_len = quantizer.as_ref().map_or(0, Quantizer::code_len);
        let deleted = load_set(s, txn, index, keys::META_DELETED)?;
        let mut excluded = load_set(s, txn, index, keys::META_UPDATED)?;
        excluded |= &deleted;
        let (start, end) = node_range(index);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        let max_id = match s.nodes.rev_range(txn, &range)?.next() {
            Some(entry) => keys::id_of(entry?.0),
            None => None,
        };
        let slots = match max_id {
            Some(max) if (max as u64) < 4 * header.items + 65_536 => max as usize + 1,
            _ => 0,
        };
        // The upper levels hold about one node in m: read them all now, so searches descending
        // them never look a key up in the B-tree. When the lookups above waited for the disk,
        // the file is cold: their leaves are asked for ahead of the pass, in file order, so
        // that it does not wait for each in turn (about 1,000 leaves for 600,000 items).
        let cold =
            matches!((faults, crate::disk_wait::major_faults()), (Some(a), Some(b)) if b > a);
        let mut ahead = if cold {
            Leaves::find(data_file, b"upper", &start, &end).ok()
        } else {
            None
        };
        let mut upper: HashMap<u64, (usize, usize), BuildHasherDefault<IdHasher>> =
            HashMap::default();
        for entry in s.upper.range(txn, &range)? {
            let (key, value) = entry?;
            if let Some(ahead) = ahead.as_mut() {
                ahead.follow(value);
            }
            let (Some(id), Some(level)) = (keys::id_of(key), keys::level_of(key)) else {
                return Err(Error::Corrupt("short link key".into()));
            };
            upper.insert(upper_key(id, level), (value.as_ptr() as usize, value.len()));
        }
        Ok(View {
            txn_id: txn.id(),
            index,
            stored_len: header.metric.stored_len(header.dimensions as usize),
            header,
            quantizer,
            code_len,
            deleted,
            excluded,
            slots,
            table: Table::new(slots),
            cold: Default::default(),
            walk_cold: Default::default(),
            cold_hops: Default::default(),
            paged_in: Default::default(),
            filled: Default::default(),
            vectors_filled: Default::default(),
            upper,
        })
    }

    /// What the graph walk scores for `id`: its code in a quantized index (present while it is
    /// in the graph), its stored vector otherwise.
    #[inline]
    pub(crate) fn walk_value<'t>(
        &self,
        s: &Dbs,
        txn: &'t ReadTxn<'_>,
        id: u32,
    ) -> Result<Option<&'t [u8]>> {
        if self.code_len == 0 {
            return self.vector(s, txn, id);
        }
        Ok(self.record(s, txn, id)?.map(|(code, _)| code))
    }

    /// A quantized index's level-0 value of `id`, split into its code and its links.
    fn record<'t>(
        &self,
        s: &Dbs,
        txn: &'t ReadTxn<'_>,
        id: u32,
    ) -> Result<Option<(&'t [u8], &'t [u8])>> {
        match self.table.get(LINKS, &s.links, txn, self.index, id)? {
            Some(bytes) => bytes
                .split_at_checked(self.code_len)
                .map(Some)
                .ok_or_else(|| {
                    Error::Corrupt(format!(
                        "item {id}: a level-0 record of {} bytes, shorter than its {}-byte code",
                        bytes.len(),
                        self.code_len
                    ))
                }),
            None => Ok(None),
        }
    }

    /// The stored vector of `id`, if it has one.
    #[inline]
    pub(crate) fn vector<'t>(
        &self,
        s: &Dbs,
        txn: &'t ReadTxn<'_>,
        id: u32,
    ) -> Result<Option<&'t [u8]>> {
        debug_assert_eq!(txn.id(), self.txn_id);
        match self.table.get(VECTOR, &s.nodes, txn, self.index, id)? {
            Some(bytes) => check_vector(bytes, self.stored_len, id).map(Some),
            None => Ok(None),
        }
    }

    /// The links of `id` on `level` (≥ 1), if it reaches that level.
    pub(crate) fn upper_links<'t>(
        &self,
        txn: &'t ReadTxn<'_>,
        id: u32,
        level: u8,
    ) -> Option<&'t [u8]> {
        debug_assert_eq!(txn.id(), self.txn_id);
        let &(ptr, len) = self.upper.get(&upper_key(id, level))?;
        // SAFETY: the pointer and length come from a slice LMDB returned in `View::load` for
        // this same commit, which `txn` reads (a view is only used with transactions of its
        // commit), and the map has not moved since (views are dropped before a resize).
        Some(unsafe { std::slice::from_raw_parts(ptr as *const u8, len) })
    }

    /// Every node on the levels above 0 with its level, the highest levels first.
    pub(crate) fn upper_nodes(&self) -> Vec<(u8, u32)> {
        let mut nodes: Vec<(u8, u32)> = self
            .upper
            .keys()
            .map(|&key| ((key & 0xff) as u8, (key >> 8) as u32))
            .collect();
        nodes.sort_unstable_by(|a, b| b.cmp(a));
        nodes
    }

    pub(crate) fn prefetch_entry(&self, id: u32) {
        self.table.prefetch_slots(id);
    }

    pub(crate) fn prefetch_links(&self, id: u32) {
        self.table
            .prefetch_value(LINKS, id, crate::graph::prefetch_raw);
    }

    /// Starts loading all of `id`'s full vector, if its place is known.
    pub(crate) fn prefetch_vector(&self, id: u32) {
        self.table
            .prefetch_value(VECTOR, id, crate::graph::prefetch_whole);
    }

    /// Whether `fill_links` has run (or begun) for this view.
    pub(crate) fn links_filled(&self) -> bool {
        self.filled.load(Ordering::Relaxed)
    }

    /// Fills the table's level-0 slots (links, and the codes in front of them in a quantized
    /// index) in one cursor pass over the index's links, in key order, instead of one B-tree
    /// lookup per node as searches meet them at random: a fresh reader's first queries pay
    /// those lookups otherwise. Once per view; `txn` must read the view's commit.
    ///
    /// With `ahead` (the index's leaves in the links database, for a file not in the page
    /// cache), the pass keeps the disk reading the leaves just ahead of it; with `resident`
    /// (the file is in the page cache), it maps the pages ahead of it (`Sweep`). A set `cancel`
    /// stops it with `Error::Cancelled` (the slots filled so far stay).
    pub(crate) fn fill_links(
        &self,
        s: &Dbs,
        txn: &ReadTxn<'_>,
        mut ahead: Option<&mut Leaves>,
        resident: bool,
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<()> {
        if txn.id() != self.txn_id || self.slots == 0 || self.filled.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let (start, end) = node_range(self.index);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        if let Some(ahead) = ahead.as_deref_mut() {
            ahead.keep_ahead(0);
        }
        let mut sweep = resident.then(Sweep::new);
        for (n, entry) in s.links.range(txn, &range)?.enumerate() {
            let (key, value) = entry?;
            if cancelled(n, cancel) {
                return Err(Error::Cancelled);
            }
            if let Some(ahead) = ahead.as_deref_mut() {
                ahead.follow(value);
            }
            if let Some(sweep) = sweep.as_mut() {
                sweep.visit(value);
            }
            if let Some(id) = keys::id_of(key) {
                self.table.fill(LINKS, id, value);
            }
        }
        Ok(())
    }

    /// Fills the table's vector slots in one cursor pass over the index's stored vectors (the
    /// pass touches every page that holds them, and maps them ahead of it (`Sweep`): do it only
    /// when they are in the page cache).
    /// Once per view (a reader warmed before its background fill ran does not pass again).
    /// A set `cancel` stops it with `Error::Cancelled`.
    pub(crate) fn fill_vectors(
        &self,
        s: &Dbs,
        txn: &ReadTxn<'_>,
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<()> {
        if txn.id() != self.txn_id
            || self.slots == 0
            || self.vectors_filled.swap(true, Ordering::Relaxed)
        {
            return Ok(());
        }
        let (start, end) = node_range(self.index);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        let mut sweep = Sweep::new();
        for (n, entry) in s.nodes.range(txn, &range)?.enumerate() {
            let (key, value) = entry?;
            if cancelled(n, cancel) {
                return Err(Error::Cancelled);
            }
            sweep.visit(value);
            if let Some(id) = keys::id_of(key) {
                self.table.fill(VECTOR, id, value);
            }
        }
        Ok(())
    }

    /// Starts reading the pages of `id`'s vector if its place is known; returns whether it was.
    pub(crate) fn advise_vector(&self, id: u32) -> bool {
        self.table.advise_value(VECTOR, id)
    }

    /// Starts reading the pages of what the walk scores for `id` (its vector, or its level-0
    /// record in a quantized index) if their place is known; returns whether it was.
    pub(crate) fn advise_walk_value(&self, id: u32) -> bool {
        let which = if self.code_len == 0 { VECTOR } else { LINKS };
        self.table.advise_value(which, id)
    }

    /// The database that holds what the walk scores: the vectors, or the level-0 records.
    pub(crate) fn walk_db(&self, s: &Dbs) -> Db {
        if self.code_len == 0 {
            s.nodes
        } else {
            s.links
        }
    }

    /// Whether the walk's lookups have lately been slow (page faults: what it scores is not in
    /// the page cache), so that the next hops read their neighbours' pages ahead, in parallel.
    pub(crate) fn walk_cold(&self) -> bool {
        self.walk_cold.load(Ordering::Relaxed)
    }

    /// Records how long one hop's lookups and scoring of its new neighbours took, per neighbour.
    pub(crate) fn note_walk(&self, nanos_per_lookup: u64) {
        let cold = self.walk_cold.load(Ordering::Relaxed);
        if !cold && nanos_per_lookup > 8_000 && crate::disk_wait::waited_for_disk() {
            self.turn_walk_cold();
        } else if cold && nanos_per_lookup < 2_000 {
            self.walk_cold.store(false, Ordering::Relaxed);
        }
    }

    fn turn_walk_cold(&self) {
        // The next hop reads ahead; the sample comes 15 hops later.
        self.cold_hops.store(1, Ordering::Relaxed);
        self.walk_cold.store(true, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn mark_walk_cold(&self) {
        self.turn_walk_cold();
    }

    /// Counts lookups handed to the fault threads for this view's walks.
    pub(crate) fn note_paged_in(&self, lookups: usize) {
        self.paged_in.fetch_add(lookups as u64, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn paged_in(&self) -> u64 {
        self.paged_in.load(Ordering::Relaxed)
    }

    /// While the walk is cold, one hop in 16 is walked without reading ahead, to time it: the
    /// hops that read ahead are fast because they do, so only such a hop can tell that the
    /// pages have come into memory (and turn reading ahead off).
    pub(crate) fn sample_hop(&self) -> bool {
        self.cold_hops
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(16)
    }

    /// Whether rescoring's reads of full vectors have lately been slow (page faults: the
    /// vectors are not in the page cache), so that the next rescorings read them ahead.
    pub(crate) fn vectors_cold(&self) -> bool {
        self.cold.load(Ordering::Relaxed)
    }

    /// Records how long rescoring took per full vector read.
    pub(crate) fn note_rescoring(&self, nanos_per_read: u64) {
        let cold = self.cold.load(Ordering::Relaxed);
        // A read from the page cache takes well under a microsecond, a fault tens.
        if !cold && nanos_per_read > 8_000 {
            self.cold.store(true, Ordering::Relaxed);
        } else if cold && nanos_per_read < 2_000 {
            self.cold.store(false, Ordering::Relaxed);
        }
    }

    /// The level-0 links of `id`, present while it is in the graph.
    pub(crate) fn links<'t>(
        &self,
        s: &Dbs,
        txn: &'t ReadTxn<'_>,
        id: u32,
    ) -> Result<Option<&'t [u8]>> {
        debug_assert_eq!(txn.id(), self.txn_id);
        if self.code_len > 0 {
            return Ok(self.record(s, txn, id)?.map(|(_, links)| links));
        }
        self.table.get(LINKS, &s.links, txn, self.index, id)
    }
}

/// The latest view of each index that searches asked for.
pub(crate) struct Views {
    latest: Mutex<HashMap<u16, Arc<View>>>,
    /// Held while a view is made, so threads that meet a new commit together make it once.
    loading: Mutex<()>,
    /// The environment's data file, read ahead when a view is made from a cold file.
    data_file: std::path::PathBuf,
}

impl Views {
    pub(crate) fn new(data_file: std::path::PathBuf) -> Views {
        Views {
            latest: Default::default(),
            loading: Default::default(),
            data_file,
        }
    }

    fn cached(&self, index: u16, txn_id: usize) -> Option<Arc<View>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .get(&index)
            .filter(|view| view.txn_id == txn_id)
            .cloned()
    }

    /// The view of `index` for the commit `txn` reads, made on first use.
    pub(crate) fn get(&self, s: &Dbs, txn: &ReadTxn<'_>, index: u16) -> Result<Arc<View>> {
        let id = txn.id();
        if let Some(view) = self.cached(index, id) {
            return Ok(view);
        }
        let _loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = self.cached(index, id) {
            return Ok(view);
        }
        let view = match View::load(s, txn, index, &self.data_file) {
            Ok(view) => Arc::new(view),
            Err(e) => {
                // An index cleared or gone since: let its old view (and table) go.
                let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
                if latest.get(&index).is_some_and(|old| old.txn_id < id) {
                    latest.remove(&index);
                }
                return Err(e);
            }
        };
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the newer of two commits when readers of both get here one after the other.
        if latest
            .get(&index)
            .is_none_or(|current| current.txn_id <= id)
        {
            latest.insert(index, view.clone());
        }
        Ok(view)
    }

    /// Drops the view of `index` (the index was cleared).
    pub(crate) fn forget(&self, index: u16) {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index);
    }

    pub(crate) fn clear(&self) {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::Quantization;
    use crate::search::SearchOptions;

    #[test]
    fn slow_rescoring_turns_read_ahead_on_and_fast_rescoring_off_without_changing_answers() {
        let (_dir, db, data) = crate::scratch::built_index(Quantization::Binary);
        let dims = 32;
        let search = || {
            db.search(0, &data[..dims], &SearchOptions::new(10))
                .unwrap()
        };
        let warm = search();
        let s = &*db.shared;
        let view = db.read(|txn| s.views.get(s, txn, 0)).unwrap();
        assert!(!view.vectors_cold());
        view.note_rescoring(50_000);
        assert!(view.vectors_cold());
        // Reading ahead changes no answer, and a search that measured fast reads turned it off
        // again (one is enough; a loaded machine, or a test suite running beside it, may
        // slow a few past the bound).
        for round in 0..50 {
            assert_eq!(search(), warm);
            if !view.vectors_cold() {
                break;
            }
            assert!(round < 49, "rescoring stayed cold");
        }
        view.note_rescoring(5_000); // in between: no change
        assert!(!view.vectors_cold());
    }

    #[test]
    fn a_slow_walk_reads_ahead_on_the_fault_threads_until_a_sampled_hop_is_fast() {
        let (_dir, db, data) = crate::scratch::built_index(Quantization::None);
        let dims = 32;
        let queries: Vec<&[f32]> = (0..20).map(|q| &data[q * 97 * dims..][..dims]).collect();
        let search = |q: &[f32]| db.search(0, q, &SearchOptions::new(10)).unwrap();

        // A fresh view (no place known yet), marked cold as if its first hops had faulted.
        let s = &*db.shared;
        let view = db.read(|txn| s.views.get(s, txn, 0)).unwrap();
        view.mark_walk_cold();
        assert!(view.walk_cold());
        let before = crate::fault::lookups();
        let cold: Vec<_> = queries.iter().map(|q| search(q)).collect();
        // This view's walks handed nodes whose place was unknown to the fault threads...
        assert!(view.paged_in() > 0, "no lookup handed to the fault threads");
        // ... which looked them up (asynchronously: wait for the first ones).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::fault::lookups() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            crate::fault::lookups() > before,
            "no lookup on the fault threads"
        );
        // Hops sampled without reading ahead found the pages in memory: it turned off (one
        // fast sample is enough; a loaded machine may need a few).
        for round in 0..50 {
            if !view.walk_cold() {
                break;
            }
            assert!(round < 49, "the walk stayed cold");
            for q in &queries {
                search(q);
            }
        }
        // Reading ahead changes no answer.
        let warm: Vec<_> = queries.iter().map(|q| search(q)).collect();
        assert_eq!(cold, warm);
        // Slow lookups without waiting for the disk (this thread has read nothing from it
        // since it last asked) leave it off; in between the bounds, no change either.
        crate::disk_wait::waited_for_disk();
        view.note_walk(50_000);
        view.note_walk(5_000);
        assert!(!view.walk_cold());
    }
}
