//! LMDB's structure, checked on the raw bytes of `data.mdb`.
//!
//! LMDB maps the whole file and trusts it: a truncated file makes it touch pages past the end
//! (SIGBUS), a damaged page header or branch pointer sends it anywhere (SIGSEGV). These checks
//! read the file with ordinary reads, never past its length, and report every fault as
//! [`Error::Corrupt`].
//!
//! The layout facts relied on (LMDB 0.9 as bundled by `lmdb-master-sys`, built without
//! `MDB_DEVEL` and `MDB_VL32`, on a 64-bit target; all numbers in native byte order):
//!
//! - A page starts with a 16-byte header: `pgno: u64` (its own page number), `pad: u16`,
//!   `flags: u16`, then `lower: u16` and `upper: u16` (for an overflow page these four bytes are
//!   one `u32`: the number of pages of the run). Node offsets (`u16` each) follow the header; a
//!   page holds `(lower − 16) / 2` nodes, which live in `upper..page_size`.
//! - A node: `lo: u16`, `hi: u16`, `flags: u16`, `ksize: u16`, then the key, then the data. In a
//!   branch page `lo | hi << 16 | flags << 32` is the child's page number (the data part is
//!   empty, and the key of node 0 is ignored). In a leaf page `lo | hi << 16` is the data size;
//!   with `F_BIGDATA` the data is the 8-byte number of the first page of an overflow run, with
//!   `F_SUBDATA` it is the 48-byte record of a named database.
//! - Pages 0 and 1 are meta pages: after the page header, `magic: u32`, `version: u32`,
//!   `address: u64`, `mapsize: u64`, the records of the free-page DB and of the main DB (48 bytes
//!   each: `pad: u32` (the page size, in the free DB's record), `flags: u16`, `depth: u16`, then
//!   `u64`s: branch, leaf and overflow pages, entries, root), `last_pg: u64`, `txnid: u64`. The
//!   meta with the higher txnid is the current snapshot (page 0 on a tie).
//! - The free-page DB's keys are transaction ids (8-byte integers); its values are lists of page
//!   numbers: a count, then that many page numbers.
//! - The file may be shorter than `(last_pg + 1)` pages only when the missing pages are free:
//!   LMDB never writes a page that a transaction allocated and freed again before it committed.

use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "verify::lmdb reads the files of 64-bit LMDB builds (8-byte pgno_t and size_t) only"
);

const PAGE_HEADER: usize = 16;
const NODE_HEADER: usize = 8;
/// End of the meta record inside a meta page: header, then 136 bytes.
const META_END: usize = PAGE_HEADER + 136;
const DB_RECORD: usize = 48;
const MAGIC: u32 = 0xBEEF_C0DE;
const DATA_VERSION: u32 = 1;
const P_INVALID: u64 = u64::MAX;
const NUM_METAS: u64 = 2;

const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const P_META: u16 = 0x08;
const P_DIRTY: u16 = 0x10;
const P_LEAF2: u16 = 0x20;
const P_LOOSE: u16 = 0x4000;
const P_KEEP: u16 = 0x8000;

const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;

const MDB_REVERSEKEY: u16 = 0x02;
const MDB_DUPSORT: u16 = 0x04;
const MDB_INTEGERKEY: u16 = 0x08;
const MDB_DUPFIXED: u16 = 0x10;
const MDB_INTEGERDUP: u16 = 0x20;
const MDB_REVERSEDUP: u16 = 0x40;

/// LMDB's cursor stack: no tree is deeper.
const MAX_DEPTH: u16 = 32;
const MIN_PAGE_SIZE: u32 = 512;
const MAX_PAGE_SIZE: u32 = 65536;
/// Bytes read at once by the sequential pass.
const CHUNK: usize = 8 << 20;
/// Bytes of each key kept for the order checks across pages (hannoy's keys are at most 9).
const KEY_PREFIX: usize = 16;

/// Owner id marking a page listed in the free-page DB.
const FREE_MARK: u16 = u16::MAX;
const FREE_TREE: u16 = 1;
const MAIN_TREE: u16 = 2;

/// What the structural check found on an intact file.
/// `verify` reports part of it; the rest is read by this module's tests.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) struct LmdbReport {
    pub page_size: usize,
    /// `last_pg + 1` of the current snapshot.
    pub pages: u64,
    pub file_bytes: u64,
    pub txnid: u64,
    /// Pages read and checked: the two meta pages and every page reachable from the current
    /// snapshot (tree pages and all pages of overflow runs).
    pub pages_checked: u64,
    /// The named databases and their entry counts, in key order.
    pub databases: Vec<(String, u64)>,
    /// Every tree walked: the free-page DB, the main DB, then the named databases.
    pub trees: Vec<TreeStats>,
    /// Pages listed in the free-page DB.
    pub free_pages: u64,
    /// Pages below `last_pg` neither reachable nor listed as free (LMDB's page leaks; harmless).
    pub unaccounted_pages: u64,
}

/// One tree's shape as walked (it matched its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeStats {
    pub name: String,
    pub depth: u16,
    pub branch_pages: u64,
    pub leaf_pages: u64,
    pub overflow_pages: u64,
    pub entries: u64,
}

/// Checks, before LMDB opens the environment, that `data_file` holds every page its current meta
/// page refers to (two small reads on an intact file). A missing file is a new environment.
pub(crate) fn check_size(data_file: &Path) -> Result<()> {
    let name = file_name(data_file);
    let file = match File::open(data_file) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io(format!(
                "cannot open {}: {e}",
                data_file.display()
            )))
        }
    };
    let len = file_len(&file, data_file)?;
    let metas = read_metas(&file, len, &name)?;
    check_length(&file, &name, &metas, len)
}

/// The file holds every page of the current snapshot, or misses only free pages at its end.
fn check_length(file: &File, name: &str, metas: &Metas, len: u64) -> Result<()> {
    let meta = metas.current;
    let needed = needed_bytes(&meta, name)?;
    if len >= needed {
        return Ok(());
    }
    let message = truncated(name, &meta, needed, len);
    let psize = metas.psize as u64;
    if !len.is_multiple_of(psize) {
        return Err(Error::Corrupt(message));
    }
    // Shorter than the meta says, by whole pages: legitimate only when the missing pages are
    // free (allocated and freed again by the last transactions, so never written).
    let file_pages = len / psize;
    let mut walk = Walk::new(
        file,
        name,
        metas.psize,
        file_pages,
        meta.last_pg,
        Store::default(),
    );
    let mut tail = Vec::new();
    let listed = walk
        .tree(FREE_TREE, &meta.free, Cmp::Int, Role::Free)
        .and_then(|free| {
            walk.free_lists(&free, meta.txnid, |pgno, _| {
                if pgno >= file_pages && pgno <= meta.last_pg {
                    tail.push(pgno);
                }
                Ok(())
            })
        });
    match listed {
        Ok(()) if tail_is_covered(&mut tail, file_pages, meta.last_pg) => Ok(()),
        Ok(()) => Err(Error::Corrupt(format!(
            "{message}, and the missing pages are not all free"
        ))),
        Err(Error::Corrupt(why)) => Err(Error::Corrupt(format!(
            "{message}, and its free-page list cannot be read to tell whether the missing pages are free: {why}"
        ))),
        Err(e) => Err(e),
    }
}

/// The whole-file structural check: both meta pages, then every tree of the current snapshot
/// (the free-page DB, the main DB and each named database) page by page. The file is read once,
/// sequentially, keeping a small summary of each page; the trees are then walked on the
/// summaries.
///
/// Run it while no writer commits, or while holding a read transaction that was begun before
/// the call (LMDB then keeps the pages of the current snapshot as they are).
pub(crate) fn check_structure(data_file: &Path) -> Result<LmdbReport> {
    check_structure_inner(data_file).map(|(report, _)| report)
}

/// The check, also returning which tree owns each page (for the tests' targeted damage).
fn check_structure_inner(data_file: &Path) -> Result<(LmdbReport, Vec<u16>)> {
    let name = file_name(data_file);
    let file = File::open(data_file)
        .map_err(|e| Error::Io(format!("cannot open {}: {e}", data_file.display())))?;
    let len0 = file_len(&file, data_file)?;
    let metas = read_metas(&file, len0, &name)?;
    // Pages are written before the meta that refers to them: the length read after the metas
    // covers the current snapshot.
    let len = file_len(&file, data_file)?.max(len0);
    for (slot, meta) in metas.metas.iter().enumerate() {
        if let Err(why) = meta {
            return Err(Error::Corrupt(format!(
                "{name}: meta page {slot} is damaged: it {why}"
            )));
        }
    }
    let meta = metas.current;
    let other = match &metas.metas[1 - meta.slot as usize] {
        Ok(other) => *other,
        Err(_) => meta,
    };
    for m in [&meta, &other] {
        check_meta(m, &name)?;
    }
    if other.last_pg > meta.last_pg {
        return Err(Error::Corrupt(format!(
            "{name}: meta page {} (transaction {}) ends at page {}, meta page {} (the newer, transaction {}) at page {}: the file never shrinks",
            other.slot, other.txnid, other.last_pg, meta.slot, meta.txnid, meta.last_pg
        )));
    }
    check_length(&file, &name, &metas, len)?;
    let psize = metas.psize as u64;
    let needed = needed_bytes(&meta, &name)?;
    let file_pages = len / psize;
    let scanned = file_pages.min(meta.last_pg + 1);

    let store = scan(&file, data_file, metas.psize, scanned)?;
    let mut walk = Walk::new(&file, &name, metas.psize, file_pages, meta.last_pg, store);
    walk.owners.dense = vec![0; to_usize(scanned)?];

    let mut trees = Vec::new();
    let free = walk.tree(FREE_TREE, &meta.free, Cmp::Int, Role::Free)?;
    trees.push(free.stats.clone());
    let main_cmp = tree_cmp(meta.main.flags)
        .map_err(|why| Error::Corrupt(format!("{name}: the main DB {why}")))?;
    let main = walk.tree(MAIN_TREE, &meta.main, main_cmp, Role::Main)?;
    trees.push(main.stats.clone());

    let mut databases = Vec::new();
    for sub in &main.subs {
        let db_name = show_name(&sub.name);
        let id = u16::try_from(walk.tree_names.len() + 1)
            .ok()
            .filter(|&id| id < FREE_MARK)
            .ok_or_else(|| {
                Error::Corrupt(format!("{name}: the main DB names too many databases"))
            })?;
        walk.tree_names.push(format!("database '{db_name}'"));
        let rec = parse_db(&sub.record, 0).ok_or_else(|| {
            Error::Corrupt(format!(
                "{name}: the record of database '{db_name}' is cut short"
            ))
        })?;
        let cmp = tree_cmp(rec.flags)
            .map_err(|why| Error::Corrupt(format!("{name}: database '{db_name}' {why}")))?;
        let mut out = walk.tree(id, &rec, cmp, Role::Sub)?;
        out.stats.name = db_name.clone();
        databases.push((db_name, out.stats.entries));
        trees.push(out.stats);
    }

    // The free lists: every page listed once, none of them in use, the missing tail all free.
    let mut tail = Vec::new();
    let mut free_pages = 0u64;
    let mut owners = std::mem::take(&mut walk.owners);
    let tree_names = walk.tree_names.clone();
    walk.free_lists(&free, meta.txnid, |pgno, txn| {
        free_pages += 1;
        if pgno < NUM_METAS || pgno > meta.last_pg {
            return Err(Error::Corrupt(format!(
                "{name}: the free-page DB's record of transaction {txn} lists page {pgno}, outside pages 2 to {} of the snapshot",
                meta.last_pg
            )));
        }
        if pgno >= file_pages {
            tail.push(pgno);
            return Ok(());
        }
        match owners.get(pgno) {
            0 => {
                owners.set(pgno, FREE_MARK);
                Ok(())
            }
            FREE_MARK => Err(Error::Corrupt(format!(
                "{name}: page {pgno} is listed twice in the free-page DB (again by the record of transaction {txn})"
            ))),
            owner => Err(Error::Corrupt(format!(
                "{name}: page {pgno} is listed as free by the free-page DB's record of transaction {txn} but {} uses it",
                owner_name(&tree_names, owner)
            ))),
        }
    })?;
    if len < needed && !tail_is_covered(&mut tail, file_pages, meta.last_pg) {
        return Err(Error::Corrupt(format!(
            "{}, and the missing pages are not all free",
            truncated(&name, &meta, needed, len)
        )));
    }
    let unaccounted = owners
        .dense
        .iter()
        .skip(NUM_METAS as usize)
        .filter(|&&owner| owner == 0)
        .count() as u64;

    let report = LmdbReport {
        page_size: metas.psize,
        pages: meta.last_pg + 1,
        file_bytes: len,
        txnid: meta.txnid,
        pages_checked: NUM_METAS + walk.reached,
        databases,
        trees,
        free_pages,
        unaccounted_pages: unaccounted,
    };
    Ok((report, owners.dense))
}

// ---------------------------------------------------------------------------------------------
// Reading.

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data.mdb".into())
}

fn file_len(file: &File, path: &Path) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| Error::Io(format!("cannot read the size of {}: {e}", path.display())))
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Corrupt(format!("{n} does not fit in memory")))
}

/// Reads up to `len` bytes at `offset`; fewer at the end of the file.
fn read_at(mut file: &File, offset: u64, len: usize) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn get<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    get(bytes, offset).map(u16::from_ne_bytes)
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    get(bytes, offset).map(u32::from_ne_bytes)
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    get(bytes, offset).map(u64::from_ne_bytes)
}

// ---------------------------------------------------------------------------------------------
// Meta pages.

/// A database record (`MDB_db`).
#[derive(Debug, Clone, Copy)]
struct DbRec {
    pad: u32,
    flags: u16,
    depth: u16,
    branch_pages: u64,
    leaf_pages: u64,
    overflow_pages: u64,
    entries: u64,
    root: u64,
}

fn parse_db(bytes: &[u8], at: usize) -> Option<DbRec> {
    Some(DbRec {
        pad: u32_at(bytes, at)?,
        flags: u16_at(bytes, at + 4)?,
        depth: u16_at(bytes, at + 6)?,
        branch_pages: u64_at(bytes, at + 8)?,
        leaf_pages: u64_at(bytes, at + 16)?,
        overflow_pages: u64_at(bytes, at + 24)?,
        entries: u64_at(bytes, at + 32)?,
        root: u64_at(bytes, at + 40)?,
    })
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    slot: u64,
    psize: u32,
    free: DbRec,
    main: DbRec,
    last_pg: u64,
    txnid: u64,
}

/// Parses the meta record of meta page `slot` from the start of the page; the error completes
/// "meta page N ...".
fn parse_meta(page: &[u8], slot: u64) -> std::result::Result<Meta, String> {
    let short = || "is cut short".to_string();
    if page.len() < META_END {
        return Err(short());
    }
    let pgno = u64_at(page, 0).ok_or_else(short)?;
    let flags = u16_at(page, 10).ok_or_else(short)?;
    let magic = u32_at(page, 16).ok_or_else(short)?;
    let version = u32_at(page, 20).ok_or_else(short)?;
    if magic != MAGIC {
        return Err(format!("has magic 0x{magic:08X}, not LMDB's 0x{MAGIC:08X}"));
    }
    if flags & P_META == 0 {
        return Err(format!(
            "is not flagged as a meta page (flags 0x{flags:04x})"
        ));
    }
    if pgno != slot {
        return Err(format!("says it is page {pgno}"));
    }
    if version != DATA_VERSION {
        return Err(format!(
            "has data format version {version}, LMDB 0.9 writes version {DATA_VERSION}"
        ));
    }
    let free = parse_db(page, 40).ok_or_else(short)?;
    let main = parse_db(page, 88).ok_or_else(short)?;
    let psize = free.pad;
    if !psize.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&psize) {
        return Err(format!(
            "records a page size of {psize} bytes, not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}"
        ));
    }
    Ok(Meta {
        slot,
        psize,
        free,
        main,
        last_pg: u64_at(page, 136).ok_or_else(short)?,
        txnid: u64_at(page, 144).ok_or_else(short)?,
    })
}

struct Metas {
    psize: usize,
    metas: [std::result::Result<Meta, String>; 2],
    /// The current snapshot: the valid meta with the higher txnid (page 0 on a tie).
    current: Meta,
}

fn too_short(name: &str, len: u64, psize: Option<usize>) -> Error {
    Error::Corrupt(match (len, psize) {
        (0, _) => format!(
            "{name} is truncated: the file is empty, where LMDB writes two meta pages first"
        ),
        (_, Some(psize)) => format!(
            "{name} is truncated: the file has {} bytes, less than the two meta pages of {psize} bytes LMDB writes first",
            thousands(len)
        ),
        (_, None) => format!(
            "{name} is truncated: the file has {} bytes, too few for LMDB's meta pages",
            thousands(len)
        ),
    })
}

/// Reads both meta pages. Page 0 gives the page size; when it is damaged, page 1 is looked for
/// at each possible page size.
fn read_metas(file: &File, len: u64, name: &str) -> Result<Metas> {
    if len < META_END as u64 {
        return Err(too_short(name, len, None));
    }
    let m0 = parse_meta(&read_at(file, 0, META_END)?, 0);
    let (psize, m1) = match &m0 {
        Ok(m0) => {
            let psize = m0.psize as usize;
            let m1 = if len >= 2 * psize as u64 {
                parse_meta(&read_at(file, psize as u64, META_END)?, 1).and_then(|m1| {
                    if m1.psize == m0.psize {
                        Ok(m1)
                    } else {
                        Err(format!(
                            "records a page size of {} bytes, meta page 0 of {} bytes",
                            m1.psize, m0.psize
                        ))
                    }
                })
            } else {
                Err("is missing".into())
            };
            if m1.is_err() {
                // Meta page 0's page size may be the damaged field: a meta page 1 elsewhere says.
                if let Some(other) = probe_meta1(file, len)?.filter(|m| m.psize != m0.psize) {
                    return Err(Error::Corrupt(format!(
                        "{name}: its meta pages disagree on the page size: meta page 0 records {} bytes, meta page 1 (found at offset {}) {} bytes",
                        m0.psize, other.psize, other.psize
                    )));
                }
            }
            if len < 2 * psize as u64 {
                return Err(too_short(name, len, Some(psize)));
            }
            (psize, m1)
        }
        Err(why0) => match probe_meta1(file, len)? {
            Some(m1) => {
                let psize = m1.psize as usize;
                if len < 2 * psize as u64 {
                    return Err(too_short(name, len, Some(psize)));
                }
                (psize, Ok(m1))
            }
            None if len < 2 * u64::from(MIN_PAGE_SIZE) => {
                return Err(too_short(name, len, None));
            }
            None => {
                return Err(Error::Corrupt(format!(
                    "{name} is not an LMDB file, or both its meta pages are damaged: meta page 0 {why0}, and no valid meta page 1 follows it at any page size"
                )))
            }
        },
    };
    let current = match (&m0, &m1) {
        (Ok(a), Ok(b)) if b.txnid > a.txnid => *b,
        (Ok(a), _) => *a,
        (Err(_), Ok(b)) => *b,
        (Err(a), Err(b)) => {
            return Err(Error::Corrupt(format!(
                "{name} is not an LMDB file, or both its meta pages are damaged: meta page 0 {a}, meta page 1 {b}"
            )))
        }
    };
    Ok(Metas {
        psize,
        metas: [m0, m1],
        current,
    })
}

/// Looks for a valid meta page 1 at each possible page size (the offset must match the page size
/// it records).
fn probe_meta1(file: &File, len: u64) -> Result<Option<Meta>> {
    let mut size = MIN_PAGE_SIZE;
    while size <= MAX_PAGE_SIZE && u64::from(size) + META_END as u64 <= len {
        if let Ok(m1) = parse_meta(&read_at(file, u64::from(size), META_END)?, 1) {
            if m1.psize == size {
                return Ok(Some(m1));
            }
        }
        size *= 2;
    }
    Ok(None)
}

/// `(last_pg + 1) × page size`.
fn needed_bytes(meta: &Meta, name: &str) -> Result<u64> {
    meta.last_pg
        .checked_add(1)
        .and_then(|pages| pages.checked_mul(u64::from(meta.psize)))
        .filter(|_| meta.last_pg >= NUM_METAS - 1)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "{name}: meta page {} says the last page is {}, which is impossible",
                meta.slot, meta.last_pg
            ))
        })
}

fn truncated(name: &str, meta: &Meta, needed: u64, len: u64) -> String {
    format!(
        "{name} is truncated: its meta page says it holds {} pages of {} bytes ({} bytes) but the file has {} bytes",
        thousands(meta.last_pg.saturating_add(1)),
        meta.psize,
        thousands(needed),
        thousands(len)
    )
}

/// The checks of a meta record that need no other page.
fn check_meta(meta: &Meta, name: &str) -> Result<()> {
    needed_bytes(meta, name)?;
    for (what, db) in [("free-page DB", &meta.free), ("main DB", &meta.main)] {
        let bad = |why: String| {
            Error::Corrupt(format!(
                "{name}: meta page {} (transaction {}): the {what} {why}",
                meta.slot, meta.txnid
            ))
        };
        if db.root != P_INVALID && (db.root < NUM_METAS || db.root > meta.last_pg) {
            return Err(bad(format!(
                "has its root at page {}, outside pages 2 to {}",
                db.root, meta.last_pg
            )));
        }
        if db.depth > MAX_DEPTH {
            return Err(bad(format!(
                "has depth {}, deeper than LMDB's limit of {MAX_DEPTH}",
                db.depth
            )));
        }
    }
    Ok(())
}

fn tail_is_covered(tail: &mut Vec<u64>, file_pages: u64, last_pg: u64) -> bool {
    tail.sort_unstable();
    tail.dedup();
    tail.len() as u64 == last_pg + 1 - file_pages.min(last_pg + 1)
}

// ---------------------------------------------------------------------------------------------
// Pages, parsed once into small summaries.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    Meta,
    Branch,
    Leaf,
    Overflow,
}

/// Why a branch or leaf page cannot be read; reported only when the page is reachable.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Bounds { lower: u16, upper: u16 },
    NodeOffset { node: u16, offset: u16 },
    NodeOverrun { node: u16 },
    NodeFlags { node: u16, flags: u16 },
    SubSize { node: u16, size: u32 },
    DupData { node: u16 },
    Leaf2,
}

impl Fault {
    fn describe(self, psize: usize) -> String {
        match self {
            Fault::Bounds { lower, upper } => format!(
                "its free-space bounds are lower {lower}, upper {upper} (expected {PAGE_HEADER} ≤ lower ≤ upper ≤ {psize}, lower − {PAGE_HEADER} even)"
            ),
            Fault::NodeOffset { node, offset } => format!(
                "node {node} is at offset {offset}, outside the node area of the page"
            ),
            Fault::NodeOverrun { node } => {
                format!("node {node}'s key or data runs past the end of the page")
            }
            Fault::NodeFlags { node, flags } => {
                format!("node {node} has invalid flags 0x{flags:04x}")
            }
            Fault::SubSize { node, size } => format!(
                "node {node} is a named database whose record has {size} bytes, not {DB_RECORD}"
            ),
            Fault::DupData { node } => format!(
                "node {node} holds sorted duplicates (F_DUPDATA), which hannoy's databases never use"
            ),
            Fault::Leaf2 => {
                "it is a LEAF2 page (fixed-size duplicates), which hannoy's databases never use"
                    .into()
            }
        }
    }
}

/// The first `KEY_PREFIX` bytes of a key and its full length.
#[derive(Debug, Clone, Copy)]
struct KeyPrefix {
    len: u16,
    bytes: [u8; KEY_PREFIX],
}

impl KeyPrefix {
    fn of(key: &[u8]) -> KeyPrefix {
        let mut bytes = [0; KEY_PREFIX];
        let kept = key.len().min(KEY_PREFIX);
        bytes[..kept].copy_from_slice(&key[..kept]);
        KeyPrefix {
            len: key.len() as u16,
            bytes,
        }
    }

    fn kept(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(KEY_PREFIX)]
    }

    fn is_full(&self) -> bool {
        usize::from(self.len) <= KEY_PREFIX
    }

    fn show(&self) -> String {
        let mut s: String = self.kept().iter().map(|b| format!("{b:02x}")).collect();
        if s.is_empty() {
            s.push_str("(empty)");
        }
        if !self.is_full() {
            s.push('…');
        }
        s
    }
}

/// How a tree orders its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    /// Bytes, lexicographically (LMDB's default).
    Bytes,
    /// Native unsigned integers of 4 or 8 bytes (`MDB_INTEGERKEY`; the free-page DB).
    Int,
}

fn tree_cmp(flags: u16) -> std::result::Result<Cmp, String> {
    let unexpected = MDB_REVERSEKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;
    if flags & unexpected != 0 {
        return Err(format!(
            "has flags 0x{flags:04x} (reversed keys or sorted duplicates), which hannoy never sets"
        ));
    }
    Ok(if flags & MDB_INTEGERKEY != 0 {
        Cmp::Int
    } else {
        Cmp::Bytes
    })
}

fn int_key(key: &[u8]) -> Option<u64> {
    match key.len() {
        8 => u64_at(key, 0),
        4 => u32_at(key, 0).map(u64::from),
        _ => None,
    }
}

/// Compares two keys: `None` when the kept prefixes cannot tell.
fn compare(a: &KeyPrefix, b: &KeyPrefix, cmp: Cmp) -> Option<Ordering> {
    match cmp {
        Cmp::Int => {
            if a.len != b.len {
                return None;
            }
            Some(int_key(a.kept())?.cmp(&int_key(b.kept())?))
        }
        Cmp::Bytes => {
            let (ka, kb) = (a.kept(), b.kept());
            let common = ka.len().min(kb.len());
            match ka[..common].cmp(&kb[..common]) {
                Ordering::Equal => {}
                decided => return Some(decided),
            }
            match (a.is_full(), b.is_full()) {
                (true, true) => Some(a.len.cmp(&b.len)),
                // A full key that is a prefix of a longer one sorts first.
                (true, false) if ka.len() == common => Some(Ordering::Less),
                (false, true) if kb.len() == common => Some(Ordering::Greater),
                _ => None,
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PageInfo {
    stored_pgno: u64,
    flags: u16,
    kind: Kind,
    nkeys: u16,
    fault: Option<Fault>,
    /// First node whose key is not above the previous one as bytes / as integers (`u16::MAX`
    /// when sorted).
    bytes_unsorted: u16,
    int_unsorted: u16,
    /// Overflow: the number of pages of the run.
    ov_pages: u32,
    /// Branch: index of the first child in `Store::children`; leaf: index in `Store::leaves`.
    side: usize,
}

#[derive(Debug, Clone, Copy)]
struct Child {
    pgno: u64,
    key: KeyPrefix,
}

#[derive(Debug, Clone, Copy)]
struct LeafSide {
    first: Option<KeyPrefix>,
    last: Option<KeyPrefix>,
    bigs: (usize, usize),
    subs: (usize, usize),
}

/// A value kept in an overflow run.
#[derive(Debug, Clone, Copy)]
struct Big {
    node: u16,
    pgno: u64,
    size: u32,
}

/// A named database's record in a leaf of the main DB.
#[derive(Debug, Clone)]
struct Sub {
    name: Vec<u8>,
    record: [u8; DB_RECORD],
}

#[derive(Default)]
struct Store {
    info: Vec<PageInfo>,
    /// Pages `0..dense` are `info[pgno]` (the sequential pass); others are read on demand.
    dense: u64,
    sparse: HashMap<u64, usize>,
    children: Vec<Child>,
    leaves: Vec<LeafSide>,
    bigs: Vec<Big>,
    subs: Vec<Sub>,
}

/// A node as stored.
struct RawNode<'p> {
    flags: u16,
    key: &'p [u8],
    /// Branch: the child page. Leaf: the data size.
    number: u64,
    /// Leaf: the data (the 8-byte first page of the run for `F_BIGDATA`).
    data: &'p [u8],
}

/// The page's node count, after checking its free-space bounds.
fn node_count(page: &[u8]) -> std::result::Result<(u16, u16), Fault> {
    let lower = u16_at(page, 12).unwrap_or(0);
    let upper = u16_at(page, 14).unwrap_or(0);
    let header = PAGE_HEADER as u16;
    if lower < header
        || lower > upper
        || usize::from(upper) > page.len()
        || !(lower - header).is_multiple_of(2)
    {
        return Err(Fault::Bounds { lower, upper });
    }
    Ok(((lower - header) / 2, upper))
}

fn node_at(page: &[u8], i: u16, upper: u16, leaf: bool) -> std::result::Result<RawNode<'_>, Fault> {
    let offset = u16_at(page, PAGE_HEADER + 2 * usize::from(i)).unwrap_or(0);
    let at = usize::from(offset);
    if offset < upper || at + NODE_HEADER > page.len() {
        return Err(Fault::NodeOffset { node: i, offset });
    }
    let overrun = Fault::NodeOverrun { node: i };
    let lo = u64::from(u16_at(page, at).ok_or(overrun)?);
    let hi = u64::from(u16_at(page, at + 2).ok_or(overrun)?);
    let flags = u16_at(page, at + 4).ok_or(overrun)?;
    let ksize = usize::from(u16_at(page, at + 6).ok_or(overrun)?);
    let key_at = at + NODE_HEADER;
    let key = page.get(key_at..key_at + ksize).ok_or(overrun)?;
    if !leaf {
        return Ok(RawNode {
            flags: 0,
            key,
            number: lo | hi << 16 | u64::from(flags) << 32,
            data: &[],
        });
    }
    if flags & !(F_BIGDATA | F_SUBDATA | F_DUPDATA) != 0
        || flags & (F_BIGDATA | F_SUBDATA) == (F_BIGDATA | F_SUBDATA)
    {
        return Err(Fault::NodeFlags { node: i, flags });
    }
    let size = lo | hi << 16;
    let data_len = if flags & F_BIGDATA != 0 {
        8
    } else {
        size as usize
    };
    let data_at = key_at + ksize;
    let data = page.get(data_at..data_at + data_len).ok_or(overrun)?;
    Ok(RawNode {
        flags,
        key,
        number: size,
        data,
    })
}

/// Summarises one page (any page: which ones matter is known only after the walk).
fn parse_page(page: &[u8], store: &mut Store) -> PageInfo {
    let flags = u16_at(page, 10).unwrap_or(0);
    let mut info = PageInfo {
        stored_pgno: u64_at(page, 0).unwrap_or(P_INVALID),
        flags,
        kind: Kind::Other,
        nkeys: 0,
        fault: None,
        bytes_unsorted: u16::MAX,
        int_unsorted: u16::MAX,
        ov_pages: 0,
        side: 0,
    };
    let base = flags & !(P_DIRTY | P_LOOSE | P_KEEP);
    match base {
        P_META => info.kind = Kind::Meta,
        P_OVERFLOW => {
            info.kind = Kind::Overflow;
            info.ov_pages = u32_at(page, 12).unwrap_or(0);
        }
        P_BRANCH => {
            info.kind = Kind::Branch;
            parse_nodes(page, &mut info, store, false);
        }
        P_LEAF => {
            info.kind = Kind::Leaf;
            parse_nodes(page, &mut info, store, true);
        }
        _ if base & P_LEAF2 != 0 && base & P_LEAF != 0 => {
            info.kind = Kind::Leaf;
            info.fault = Some(Fault::Leaf2);
        }
        _ => {}
    }
    info
}

fn parse_nodes(page: &[u8], info: &mut PageInfo, store: &mut Store, leaf: bool) {
    let (nkeys, upper) = match node_count(page) {
        Ok(n) => n,
        Err(fault) => {
            info.fault = Some(fault);
            return;
        }
    };
    info.nkeys = nkeys;
    let mut side = LeafSide {
        first: None,
        last: None,
        bigs: (store.bigs.len(), store.bigs.len()),
        subs: (store.subs.len(), store.subs.len()),
    };
    info.side = if leaf {
        store.leaves.len()
    } else {
        store.children.len()
    };
    let mut prev: Option<&[u8]> = None;
    for i in 0..nkeys {
        let node = match node_at(page, i, upper, leaf) {
            Ok(node) => node,
            Err(fault) => {
                info.fault = Some(fault);
                break;
            }
        };
        if leaf {
            if node.flags & F_DUPDATA != 0 {
                info.fault = Some(Fault::DupData { node: i });
                break;
            }
            if node.flags & F_BIGDATA != 0 {
                let pgno = u64_at(node.data, 0).unwrap_or(P_INVALID);
                store.bigs.push(Big {
                    node: i,
                    pgno,
                    size: node.number as u32,
                });
            } else if node.flags & F_SUBDATA != 0 {
                match get::<DB_RECORD>(node.data, 0) {
                    Some(record) if node.data.len() == DB_RECORD => store.subs.push(Sub {
                        name: node.key.to_vec(),
                        record,
                    }),
                    _ => {
                        info.fault = Some(Fault::SubSize {
                            node: i,
                            size: node.number as u32,
                        });
                        break;
                    }
                }
            }
            let key = KeyPrefix::of(node.key);
            side.first.get_or_insert(key);
            side.last = Some(key);
        } else {
            store.children.push(Child {
                pgno: node.number,
                key: KeyPrefix::of(node.key),
            });
            if i == 0 {
                // LMDB ignores the key of a branch page's first node.
                continue;
            }
        }
        match prev {
            Some(p) => {
                if info.bytes_unsorted == u16::MAX && p >= node.key {
                    info.bytes_unsorted = i;
                }
                if info.int_unsorted == u16::MAX {
                    let sorted = p.len() == node.key.len()
                        && matches!((int_key(p), int_key(node.key)), (Some(a), Some(b)) if a < b);
                    if !sorted {
                        info.int_unsorted = i;
                    }
                }
            }
            None => {
                if info.int_unsorted == u16::MAX && int_key(node.key).is_none() {
                    info.int_unsorted = i;
                }
            }
        }
        prev = Some(node.key);
    }
    if leaf {
        side.bigs.1 = store.bigs.len();
        side.subs.1 = store.subs.len();
        store.leaves.push(side);
    }
}

/// The sequential pass: summarises pages `0..pages`, reading `CHUNK` bytes at a time.
fn scan(mut file: &File, path: &Path, psize: usize, pages: u64) -> Result<Store> {
    let mut store = Store {
        info: Vec::with_capacity(to_usize(pages)?),
        dense: pages,
        ..Store::default()
    };
    let per_chunk = (CHUNK / psize).max(1) as u64;
    let mut buf = vec![0u8; to_usize(per_chunk)? * psize];
    file.seek(SeekFrom::Start(0))?;
    let mut pgno = 0;
    while pgno < pages {
        let n = per_chunk.min(pages - pgno) as usize;
        let chunk = &mut buf[..n * psize];
        file.read_exact(chunk).map_err(|e| {
            Error::Io(format!(
                "cannot read {} at page {pgno} (did the file shrink while it was checked?): {e}",
                path.display()
            ))
        })?;
        for page in chunk.chunks_exact(psize) {
            let info = parse_page(page, &mut store);
            store.info.push(info);
        }
        pgno += n as u64;
    }
    Ok(store)
}

// ---------------------------------------------------------------------------------------------
// Walking the trees.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Free,
    Main,
    Sub,
}

/// Where a page was reached from, for messages.
#[derive(Debug, Clone, Copy)]
enum Reached {
    Root,
    Child { parent: u64, node: u16 },
    Value { leaf: u64, node: u16 },
    Run { start: u64 },
}

impl Reached {
    fn describe(self, pgno: u64) -> String {
        match self {
            Reached::Root => format!("root page {pgno}"),
            Reached::Child { parent, node } => {
                format!("page {pgno} (child {node} of branch page {parent})")
            }
            Reached::Value { leaf, node } => {
                format!("overflow page {pgno} (the value of node {node} of leaf page {leaf})")
            }
            Reached::Run { start } => {
                format!("page {pgno} (inside the overflow run that starts at page {start})")
            }
        }
    }
}

#[derive(Default)]
struct Owners {
    dense: Vec<u16>,
    sparse: HashMap<u64, u16>,
}

impl Owners {
    fn get(&self, pgno: u64) -> u16 {
        match usize::try_from(pgno).ok().and_then(|i| self.dense.get(i)) {
            Some(&owner) => owner,
            None => self.sparse.get(&pgno).copied().unwrap_or(0),
        }
    }

    fn set(&mut self, pgno: u64, owner: u16) {
        match usize::try_from(pgno)
            .ok()
            .and_then(|i| self.dense.get_mut(i))
        {
            Some(slot) => *slot = owner,
            None => {
                self.sparse.insert(pgno, owner);
            }
        }
    }
}

fn owner_name(names: &[String], owner: u16) -> String {
    match owner {
        FREE_MARK => "the free-page list".into(),
        _ => names
            .get(usize::from(owner).wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| format!("tree {owner}")),
    }
}

fn show_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => name.iter().map(|b| format!("\\x{b:02x}")).collect(),
    }
}

struct TreeOut {
    stats: TreeStats,
    subs: Vec<Sub>,
    /// Free-page DB: its leaf pages, whose records are read afterwards.
    leaves: Vec<u64>,
}

struct Frame {
    pgno: u64,
    level: u16,
    from: Reached,
    low: Option<KeyPrefix>,
    high: Option<KeyPrefix>,
}

struct Walk<'f> {
    file: &'f File,
    name: String,
    psize: usize,
    file_pages: u64,
    last_pg: u64,
    store: Store,
    owners: Owners,
    /// Names of the trees by owner id − 1.
    tree_names: Vec<String>,
    reached: u64,
}

impl<'f> Walk<'f> {
    fn new(
        file: &'f File,
        name: &str,
        psize: usize,
        file_pages: u64,
        last_pg: u64,
        store: Store,
    ) -> Walk<'f> {
        Walk {
            file,
            name: name.to_string(),
            psize,
            file_pages,
            last_pg,
            store,
            owners: Owners::default(),
            tree_names: vec!["the free-page DB".into(), "the main DB".into()],
            reached: 0,
        }
    }

    fn tree_name(&self, tree: u16) -> String {
        owner_name(&self.tree_names, tree)
    }

    fn fault(&self, tree: u16, what: String) -> Error {
        Error::Corrupt(format!("{}: {}: {what}", self.name, self.tree_name(tree)))
    }

    /// Marks `pgno` as used by `tree`, after checking it is a page of the snapshot, inside the
    /// file and not used yet.
    fn claim(&mut self, tree: u16, pgno: u64, from: Reached) -> Result<()> {
        let place = || from.describe(pgno);
        if pgno < NUM_METAS {
            return Err(self.fault(tree, format!("{} is a meta page", place())));
        }
        if pgno > self.last_pg {
            return Err(self.fault(
                tree,
                format!(
                    "{} is past the last page {} of the snapshot",
                    place(),
                    self.last_pg
                ),
            ));
        }
        if pgno >= self.file_pages {
            return Err(self.fault(
                tree,
                format!(
                    "{} is beyond the end of the file ({} whole pages)",
                    place(),
                    thousands(self.file_pages)
                ),
            ));
        }
        match self.owners.get(pgno) {
            0 => {}
            owner if owner == tree => {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} is reached a second time (a cycle or a shared page)",
                        place()
                    ),
                ))
            }
            owner => {
                return Err(self.fault(
                    tree,
                    format!("{} is already used by {}", place(), self.tree_name(owner)),
                ))
            }
        }
        self.owners.set(pgno, tree);
        self.reached += 1;
        Ok(())
    }

    /// The summary of `pgno` (in the file, checked by `claim`).
    fn page(&mut self, pgno: u64) -> Result<PageInfo> {
        if pgno < self.store.dense {
            if let Some(info) = self.store.info.get(to_usize(pgno)?) {
                return Ok(*info);
            }
        }
        if let Some(&i) = self.store.sparse.get(&pgno) {
            if let Some(info) = self.store.info.get(i) {
                return Ok(*info);
            }
        }
        let bytes = self.read_page(pgno)?;
        let info = parse_page(&bytes, &mut self.store);
        self.store.sparse.insert(pgno, self.store.info.len());
        self.store.info.push(info);
        Ok(info)
    }

    fn read_page(&self, pgno: u64) -> Result<Vec<u8>> {
        let offset = pgno
            .checked_mul(self.psize as u64)
            .filter(|_| pgno < self.file_pages)
            .ok_or_else(|| {
                Error::Corrupt(format!("{}: page {pgno} is beyond the file", self.name))
            })?;
        let bytes = read_at(self.file, offset, self.psize)?;
        if bytes.len() != self.psize {
            return Err(Error::Io(format!(
                "{}: page {pgno} could not be read whole (did the file shrink?)",
                self.name
            )));
        }
        Ok(bytes)
    }

    /// Walks one tree from its root, checking every page and the record's counts.
    fn tree(&mut self, tree: u16, rec: &DbRec, cmp: Cmp, role: Role) -> Result<TreeOut> {
        let mut stats = TreeStats {
            name: match role {
                Role::Free => "(free pages)".into(),
                Role::Main => "(main)".into(),
                Role::Sub => String::new(),
            },
            depth: rec.depth,
            branch_pages: 0,
            leaf_pages: 0,
            overflow_pages: 0,
            entries: 0,
        };
        let mut out_subs = Vec::new();
        let mut leaves = Vec::new();
        if rec.root == P_INVALID {
            if rec.depth != 0
                || rec.branch_pages != 0
                || rec.leaf_pages != 0
                || rec.overflow_pages != 0
                || rec.entries != 0
            {
                return Err(self.fault(
                    tree,
                    format!(
                        "it has no root page, but its record says depth {}, {} branch, {} leaf and {} overflow pages, {} entries",
                        rec.depth, rec.branch_pages, rec.leaf_pages, rec.overflow_pages, rec.entries
                    ),
                ));
            }
            return Ok(TreeOut {
                stats,
                subs: out_subs,
                leaves,
            });
        }
        if rec.depth == 0 || rec.depth > MAX_DEPTH {
            return Err(self.fault(
                tree,
                format!(
                    "its record says depth {}, expected 1 to {MAX_DEPTH} for a tree with a root",
                    rec.depth
                ),
            ));
        }
        let mut stack = vec![Frame {
            pgno: rec.root,
            level: 1,
            from: Reached::Root,
            low: None,
            high: None,
        }];
        while let Some(frame) = stack.pop() {
            let pgno = frame.pgno;
            self.claim(tree, pgno, frame.from)?;
            let info = self.page(pgno)?;
            let place = || frame.from.describe(pgno);
            if info.stored_pgno != pgno {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} holds the header of page {} (its stored page number is wrong)",
                        place(),
                        info.stored_pgno
                    ),
                ));
            }
            let want_leaf = frame.level == rec.depth;
            match (info.kind, want_leaf) {
                (Kind::Branch, false) | (Kind::Leaf, true) => {}
                (Kind::Branch, true) | (Kind::Leaf, false) => {
                    return Err(self.fault(
                        tree,
                        format!(
                            "{} is a {} page at level {} of a tree of depth {}: all leaves must be at depth {}",
                            place(),
                            if info.kind == Kind::Leaf { "leaf" } else { "branch" },
                            frame.level,
                            rec.depth,
                            rec.depth
                        ),
                    ))
                }
                _ => {
                    return Err(self.fault(
                        tree,
                        format!(
                            "{} has page flags 0x{:04x}, where a {} page belongs",
                            place(),
                            info.flags,
                            if want_leaf { "leaf" } else { "branch" }
                        ),
                    ))
                }
            }
            if let Some(fault) = info.fault {
                return Err(
                    self.fault(tree, format!("{}: {}", place(), fault.describe(self.psize)))
                );
            }
            let unsorted = match cmp {
                Cmp::Bytes => info.bytes_unsorted,
                Cmp::Int => info.int_unsorted,
            };
            if unsorted != u16::MAX {
                return Err(self.fault(
                    tree,
                    format!(
                        "{}: the key of node {unsorted} {}",
                        place(),
                        match cmp {
                            Cmp::Bytes => "is not above the key of the node before it",
                            Cmp::Int => "is not an integer key above the key of the node before it",
                        }
                    ),
                ));
            }
            let n = usize::from(info.nkeys);
            if info.kind == Kind::Branch {
                stats.branch_pages += 1;
                if n == 0 {
                    return Err(self.fault(
                        tree,
                        format!("{} is a branch page without children", place()),
                    ));
                }
                let children: Vec<Child> = self
                    .store
                    .children
                    .get(info.side..info.side + n)
                    .map(<[Child]>::to_vec)
                    .unwrap_or_default();
                if children.len() != n {
                    return Err(self.fault(tree, format!("{}: its summary is incomplete", place())));
                }
                if n >= 2 {
                    self.check_range(tree, &frame, &children[1].key, &children[n - 1].key, cmp)?;
                }
                for (i, child) in children.iter().enumerate().rev() {
                    stack.push(Frame {
                        pgno: child.pgno,
                        level: frame.level + 1,
                        from: Reached::Child {
                            parent: pgno,
                            node: i as u16,
                        },
                        low: if i == 0 { frame.low } else { Some(child.key) },
                        high: match children.get(i + 1) {
                            Some(next) => Some(next.key),
                            None => frame.high,
                        },
                    });
                }
            } else {
                stats.leaf_pages += 1;
                stats.entries += n as u64;
                let side = self.store.leaves.get(info.side).copied().ok_or_else(|| {
                    self.fault(tree, format!("{}: its summary is incomplete", place()))
                })?;
                if let (Some(first), Some(last)) = (&side.first, &side.last) {
                    self.check_range(tree, &frame, first, last, cmp)?;
                }
                let subs = self
                    .store
                    .subs
                    .get(side.subs.0..side.subs.1)
                    .unwrap_or_default();
                if let Some(sub) = subs.first() {
                    if role != Role::Main {
                        return Err(self.fault(
                            tree,
                            format!(
                                "{}: the node of key {} is a named database (F_SUBDATA), which only the main DB holds",
                                place(),
                                KeyPrefix::of(&sub.name).show()
                            ),
                        ));
                    }
                    out_subs.extend_from_slice(subs);
                }
                let bigs: Vec<Big> = self
                    .store
                    .bigs
                    .get(side.bigs.0..side.bigs.1)
                    .map(<[Big]>::to_vec)
                    .unwrap_or_default();
                for big in bigs {
                    stats.overflow_pages += self.overflow(tree, pgno, big)?;
                }
                if role == Role::Free {
                    leaves.push(pgno);
                }
            }
        }
        let counts = [
            ("branch pages", rec.branch_pages, stats.branch_pages),
            ("leaf pages", rec.leaf_pages, stats.leaf_pages),
            ("overflow pages", rec.overflow_pages, stats.overflow_pages),
            ("entries", rec.entries, stats.entries),
        ];
        for (what, recorded, found) in counts {
            if recorded != found {
                return Err(self.fault(
                    tree,
                    format!(
                        "its record says {} {what}, the tree has {}",
                        thousands(recorded),
                        thousands(found)
                    ),
                ));
            }
        }
        Ok(TreeOut {
            stats,
            subs: out_subs,
            leaves,
        })
    }

    /// The keys of a page lie between the separators its parent gives it.
    fn check_range(
        &self,
        tree: u16,
        frame: &Frame,
        first: &KeyPrefix,
        last: &KeyPrefix,
        cmp: Cmp,
    ) -> Result<()> {
        let place = || frame.from.describe(frame.pgno);
        if let Some(low) = &frame.low {
            if compare(first, low, cmp) == Some(Ordering::Less) {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} starts with key {}, below the separator {} its parent gives it",
                        place(),
                        first.show(),
                        low.show()
                    ),
                ));
            }
        }
        if let Some(high) = &frame.high {
            if matches!(
                compare(last, high, cmp),
                Some(Ordering::Greater | Ordering::Equal)
            ) {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} ends with key {}, not below the separator {} of the next page",
                        place(),
                        last.show(),
                        high.show()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the overflow run of a value and claims its pages; returns its length in pages.
    fn overflow(&mut self, tree: u16, leaf: u64, big: Big) -> Result<u64> {
        let start = big.pgno;
        let from = Reached::Value {
            leaf,
            node: big.node,
        };
        self.claim(tree, start, from)?;
        let info = self.page(start)?;
        let place = || from.describe(start);
        if info.stored_pgno != start {
            return Err(self.fault(
                tree,
                format!(
                    "{} holds the header of page {} (its stored page number is wrong)",
                    place(),
                    info.stored_pgno
                ),
            ));
        }
        if info.kind != Kind::Overflow {
            return Err(self.fault(
                tree,
                format!(
                    "{} has page flags 0x{:04x}, not an overflow page's",
                    place(),
                    info.flags
                ),
            ));
        }
        let pages = u64::from(info.ov_pages);
        let end = start.saturating_add(pages);
        if pages == 0 {
            return Err(self.fault(tree, format!("{} says its run has 0 pages", place())));
        }
        if end > self.file_pages || end > self.last_pg + 1 {
            return Err(self.fault(
                tree,
                format!(
                    "{} starts a run of {} pages, which does not fit in the file ({} whole pages) and the snapshot ({} pages)",
                    place(),
                    thousands(pages),
                    thousands(self.file_pages),
                    thousands(self.last_pg + 1)
                ),
            ));
        }
        if u64::from(big.size) + PAGE_HEADER as u64 > pages * self.psize as u64 {
            return Err(self.fault(
                tree,
                format!(
                    "{} holds a value of {} bytes, which does not fit in its run of {} page(s)",
                    place(),
                    thousands(u64::from(big.size)),
                    pages
                ),
            ));
        }
        for pgno in start + 1..end {
            self.claim(tree, pgno, Reached::Run { start })?;
        }
        Ok(pages)
    }

    /// Reads the free-page DB's records (its leaves, walked before) and calls `each` with every
    /// page number listed and the transaction of its record.
    fn free_lists(
        &mut self,
        free: &TreeOut,
        txnid: u64,
        mut each: impl FnMut(u64, u64) -> Result<()>,
    ) -> Result<()> {
        for &leaf in &free.leaves {
            let page = self.read_page(leaf)?;
            let bad = |what: String| {
                Error::Corrupt(format!(
                    "{}: the free-page DB: leaf page {leaf} {what}",
                    self.name
                ))
            };
            let (nkeys, upper) = node_count(&page)
                .map_err(|f| bad(format!("changed: {}", f.describe(self.psize))))?;
            for i in 0..nkeys {
                let node = node_at(&page, i, upper, true)
                    .map_err(|f| bad(format!("changed: {}", f.describe(self.psize))))?;
                let txn = match node.key.len() {
                    8 => u64_at(node.key, 0),
                    _ => None,
                }
                .ok_or_else(|| {
                    bad(format!(
                        "has a key of {} bytes, not a transaction id",
                        node.key.len()
                    ))
                })?;
                if txn > txnid {
                    return Err(bad(format!(
                        "holds a record of transaction {txn}, newer than the snapshot's {txnid}"
                    )));
                }
                let value = if node.flags & F_BIGDATA != 0 {
                    let start = u64_at(node.data, 0).unwrap_or(P_INVALID);
                    let offset = start
                        .checked_mul(self.psize as u64)
                        .and_then(|o| o.checked_add(PAGE_HEADER as u64))
                        .ok_or_else(|| bad(format!("node {i} points to page {start}")))?;
                    let size = node.number as usize;
                    let end = self.file_pages.saturating_mul(self.psize as u64);
                    if offset.saturating_add(size as u64) > end {
                        return Err(bad(format!(
                            "node {i}'s value runs past the end of the file"
                        )));
                    }
                    let bytes = read_at(self.file, offset, size)?;
                    if bytes.len() != size {
                        return Err(bad(format!(
                            "node {i}'s value runs past the end of the file"
                        )));
                    }
                    bytes
                } else {
                    node.data.to_vec()
                };
                let count = u64_at(&value, 0).ok_or_else(|| {
                    bad(format!("node {i} (transaction {txn}) has a value of {} bytes, too short for a page list", value.len()))
                })?;
                let room = (value.len() / 8 - 1) as u64;
                if count > room {
                    return Err(bad(format!(
                        "node {i} (transaction {txn}) lists {count} pages in a value with room for {room}"
                    )));
                }
                for j in 1..=count as usize {
                    let pgno = u64_at(&value, 8 * j).unwrap_or(P_INVALID);
                    each(pgno, txn)?;
                }
            }
        }
        Ok(())
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricKind;
    use crate::scratch::ScratchDir;
    use crate::store::{Database, OpenOptions};
    use crate::{BuildOptions, Control, Progress};
    use std::path::PathBuf;
    use std::sync::atomic::AtomicBool;

    /// A seeded xorshift64.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    fn build(db: &Database) {
        let cancel = AtomicBool::new(false);
        let progress = |_: Progress| {};
        let control = Control {
            progress: &progress,
            cancel: &cancel,
        };
        db.build(0, &BuildOptions::default(), &control).unwrap();
    }

    /// Builds an index of `items` random vectors in `dir/env` over several transactions (adds in
    /// batches, builds, deletes some and builds again, so the free-page DB has records), closes
    /// the environment and returns the path of its `data.mdb`.
    fn environment(dir: &ScratchDir, items: u32, dims: usize, seed: u64) -> PathBuf {
        let path = dir.path().join("env");
        let db = Database::open(&path, &OpenOptions::default()).unwrap();
        let mut rng = XorShift(seed);
        let batch = (items / 3).max(1);
        let mut start = 0;
        while start < items {
            let end = (start + batch).min(items);
            let ids: Vec<u32> = (start..end).collect();
            let vectors: Vec<f32> = (0..ids.len() * dims).map(|_| rng.unit()).collect();
            db.add_items(0, dims, MetricKind::Euclidean, &ids, &vectors)
                .unwrap();
            start = end;
        }
        build(&db);
        let gone: Vec<u32> = (0..items).step_by(7).collect();
        db.delete_items(0, &gone).unwrap();
        let vectors: Vec<f32> = (0..gone.len() * dims).map(|_| rng.unit()).collect();
        db.add_items(0, dims, MetricKind::Euclidean, &gone, &vectors)
            .unwrap();
        build(&db);
        drop(db);
        path.join("data.mdb")
    }

    /// Writes `bytes` as `dir/copies/data.mdb` and returns its path.
    fn write_copy(dir: &ScratchDir, bytes: &[u8]) -> PathBuf {
        let copies = dir.path().join("copies");
        std::fs::create_dir_all(&copies).unwrap();
        let path = copies.join("data.mdb");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn corrupt_message<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::Corrupt(message)) => message,
            other => panic!("expected Error::Corrupt, got {other:?}"),
        }
    }

    fn flags_of(bytes: &[u8], psize: usize, pgno: u64) -> u16 {
        u16_at(bytes, pgno as usize * psize + 10).unwrap()
    }

    fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
        bytes[at..at + 2].copy_from_slice(&value.to_ne_bytes());
    }

    fn set_u64(bytes: &mut [u8], at: usize, value: u64) {
        bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
    }

    /// Pages reachable from the current snapshot whose base flags are `flags`, with at least
    /// `min_keys` nodes (branch and leaf pages).
    fn reachable(
        bytes: &[u8],
        owners: &[u16],
        psize: usize,
        flags: u16,
        min_keys: u16,
    ) -> Vec<u64> {
        (NUM_METAS..owners.len() as u64)
            .filter(|&p| owners[p as usize] != 0 && owners[p as usize] != FREE_MARK)
            .filter(|&p| flags_of(bytes, psize, p) & !(P_DIRTY | P_LOOSE | P_KEEP) == flags)
            .filter(|&p| {
                flags == P_OVERFLOW
                    || node_count(&bytes[p as usize * psize..(p as usize + 1) * psize])
                        .is_ok_and(|(n, _)| n >= min_keys)
            })
            .collect()
    }

    fn node_offset(bytes: &[u8], psize: usize, pgno: u64, node: usize) -> usize {
        let base = pgno as usize * psize;
        base + usize::from(u16_at(bytes, base + PAGE_HEADER + 2 * node).unwrap())
    }

    fn database<'r>(report: &'r LmdbReport, name: &str) -> &'r TreeStats {
        report
            .trees
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no database {name} in {report:?}"))
    }

    #[test]
    fn intact_environment_passes() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        assert!(check_size(&dir.path().join("missing").join("data.mdb")).is_ok());
        let data = environment(&dir, 3000, 8, 1);
        check_size(&data).unwrap();
        let report = check_structure(&data).unwrap();
        let names: Vec<&str> = report.databases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["links", "meta", "nodes", "upper"], "{report:?}");
        assert_eq!(database(&report, "nodes").entries, 3000);
        assert_eq!(database(&report, "links").entries, 3000);
        let meta = database(&report, "meta").entries;
        assert!((1..=3).contains(&meta), "{report:?}");
        let upper = database(&report, "upper").entries;
        assert!(upper > 50 && upper < 1500, "{report:?}");
        assert!(database(&report, "nodes").depth >= 2, "{report:?}");
        assert_eq!(report.trees[1].entries, 4, "{report:?}");
        assert!(
            report.trees[0].entries > 0,
            "no free-page records: {report:?}"
        );
        assert!(report.free_pages > 0, "{report:?}");
        assert_eq!(report.page_size, 4096);
        assert_eq!(report.file_bytes, std::fs::metadata(&data).unwrap().len());
        assert!(report.pages_checked + report.free_pages <= report.pages);
        assert!(report.txnid >= 5, "{report:?}");
        println!("{report:#?}");
    }

    #[test]
    fn every_commit_of_a_changing_environment_passes() {
        // Many transactions that add, replace and delete (small and overflowing values), so
        // pages are freed, reused and the free-page DB grows and shrinks; the file is checked
        // after each one (no writer runs meanwhile).
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let path = dir.path().join("env");
        let db = Database::open(&path, &OpenOptions::default()).unwrap();
        let data = path.join("data.mdb");
        let mut rng = XorShift(10);
        let mut checked = 0;
        for (index, dims) in [(0u16, 16usize), (1, 700)] {
            for round in 0..12u32 {
                let ids: Vec<u32> = (0..400).map(|_| rng.below(3000) as u32).collect();
                let vectors: Vec<f32> = (0..ids.len() * dims).map(|_| rng.unit()).collect();
                db.add_items(index, dims, MetricKind::Euclidean, &ids, &vectors)
                    .unwrap();
                check_size(&data).unwrap();
                check_structure(&data).unwrap();
                if round % 3 == 2 {
                    let gone: Vec<u32> = (0..300).map(|_| rng.below(3000) as u32).collect();
                    db.delete_items(index, &gone).unwrap();
                    check_structure(&data).unwrap();
                }
                if round % 4 == 3 {
                    let cancel = AtomicBool::new(false);
                    let progress = |_: Progress| {};
                    let control = Control {
                        progress: &progress,
                        cancel: &cancel,
                    };
                    db.build(index, &BuildOptions::default(), &control).unwrap();
                }
                let report = check_structure(&data).unwrap();
                check_size(&data).unwrap();
                checked += 1;
                if round == 11 {
                    println!("{report:?}");
                }
            }
        }
        assert_eq!(checked, 24);
    }

    #[test]
    fn intact_environment_with_overflow_values_passes() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        // 600 dimensions: 2,404-byte vectors, too big for a node of a 4 KiB page (400 would
        // still fit inline).
        let data = environment(&dir, 1500, 600, 2);
        check_size(&data).unwrap();
        let report = check_structure(&data).unwrap();
        let nodes = database(&report, "nodes");
        assert_eq!(nodes.entries, 1500);
        assert!(nodes.overflow_pages >= 1500, "{report:?}");
        assert!(report.pages_checked > 1500, "{report:?}");
        println!("{report:#?}");
    }

    #[test]
    fn truncated_files_are_reported() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let data = environment(&dir, 3000, 8, 3);
        let bytes = std::fs::read(&data).unwrap();
        let (report, owners) = check_structure_inner(&data).unwrap();
        let psize = report.page_size;
        let len = bytes.len();
        assert_eq!(len % psize, 0);
        let mut cuts = vec![
            0,
            1,
            100,
            psize - 1,
            psize,
            psize + 200,
            2 * psize - 1,
            2 * psize,
            3 * psize,
            len / 2,
            len / 2 + 1,
            len - psize,
            len - psize + 1,
            len - 1,
        ];
        let mut rng = XorShift(33);
        cuts.extend((0..20).map(|_| rng.below(len as u64) as usize));
        for cut in cuts {
            let path = write_copy(&dir, &bytes[..cut]);
            // Cutting whole pages that are all free is what LMDB itself may leave behind.
            let only_free = cut % psize == 0
                && cut >= 2 * psize
                && (cut / psize..len / psize).all(|p| owners[p] == FREE_MARK);
            if only_free {
                check_size(&path).unwrap();
                check_structure(&path).unwrap();
                continue;
            }
            let message = corrupt_message(check_size(&path));
            assert!(message.contains("truncated"), "cut at {cut}: {message}");
            assert!(message.starts_with("data.mdb is truncated"), "{message}");
            let message = corrupt_message(check_structure(&path));
            assert!(message.contains("truncated"), "cut at {cut}: {message}");
        }
        let message = corrupt_message(check_size(&write_copy(&dir, &bytes[..len - psize])));
        println!("{message}");
        let message = corrupt_message(check_size(&write_copy(&dir, &bytes[..0])));
        println!("{message}");
    }

    #[test]
    fn a_tail_of_free_pages_may_be_missing() {
        // LMDB does not write pages a transaction allocated and freed again: the file may end
        // before `last_pg` when the pages after its end are listed as free. Made here by listing
        // pages past the end in a free-page record of the current snapshot: raising `last_pg`
        // alone must be reported, with the pages listed it must pass.
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let data = environment(&dir, 3000, 8, 4);
        let bytes = std::fs::read(&data).unwrap();
        let (report, owners) = check_structure_inner(&data).unwrap();
        let psize = report.page_size;
        let metas =
            read_metas(&File::open(&data).unwrap(), bytes.len() as u64, "data.mdb").unwrap();
        let meta = metas.current;
        let meta_at = meta.slot as usize * psize;
        let file_pages = (bytes.len() / psize) as u64;
        assert_eq!(
            meta.last_pg + 1,
            file_pages,
            "the file has no missing tail already"
        );

        let mut raised = bytes.clone();
        set_u64(&mut raised, meta_at + 136, meta.last_pg + 2);
        let path = write_copy(&dir, &raised);
        let message = corrupt_message(check_size(&path));
        assert!(
            message.contains("truncated") && message.contains("not all free"),
            "{message}"
        );
        corrupt_message(check_structure(&path));

        // Find a free-page record stored inline whose list can take two more page numbers by
        // overwriting two listed ones: they become unlisted (unaccounted, which is allowed).
        let free_leaves = reachable(&bytes, &owners, psize, P_LEAF, 1)
            .into_iter()
            .filter(|&p| owners[p as usize] == FREE_TREE)
            .collect::<Vec<_>>();
        let mut patched = None;
        'find: for leaf in free_leaves {
            let page = &bytes[leaf as usize * psize..(leaf as usize + 1) * psize];
            let (n, upper) = node_count(page).unwrap();
            for i in 0..n {
                let node = node_at(page, i, upper, true).unwrap();
                if node.flags & F_BIGDATA != 0 || u64_at(node.data, 0).unwrap() < 2 {
                    continue;
                }
                let data_at = node.data.as_ptr() as usize - page.as_ptr() as usize;
                let mut copy = raised.clone();
                let at = leaf as usize * psize + data_at;
                set_u64(&mut copy, at + 8, meta.last_pg + 2);
                set_u64(&mut copy, at + 16, meta.last_pg + 1);
                patched = Some(copy);
                break 'find;
            }
        }
        let patched = patched.expect("an inline free-page record with two pages");
        let path = write_copy(&dir, &patched);
        check_size(&path).unwrap();
        let report = check_structure(&path).unwrap();
        assert_eq!(report.pages, file_pages + 2);
    }

    #[test]
    fn random_damage_never_panics() {
        for (dims, items, seed) in [(8usize, 3000u32, 5u64), (600, 600, 6)] {
            let dir = ScratchDir::new("hannoy-lmdb").unwrap();
            let data = environment(&dir, items, dims, seed);
            let bytes = std::fs::read(&data).unwrap();
            let (report, owners) = check_structure_inner(&data).unwrap();
            let psize = report.page_size;
            // Branch and leaf pages, and the first page of each overflow run (its header only).
            let mut tree_pages = reachable(&bytes, &owners, psize, P_BRANCH, 0);
            tree_pages.extend(reachable(&bytes, &owners, psize, P_LEAF, 0));
            let overflow_runs = reachable(&bytes, &owners, psize, P_OVERFLOW, 0);
            let mut rng = XorShift(seed * 7919 + 17);
            let (mut caught, mut runs) = (0, 0);
            for round in 0..600 {
                let mut copy = bytes.clone();
                let count = 1 + rng.below(8) as usize;
                let at = match round % 3 {
                    // Anywhere in the file.
                    0 => rng.below(bytes.len() as u64) as usize,
                    // The meta pages.
                    1 if round % 2 == 0 => rng.below(2 * psize as u64) as usize,
                    // The header of an overflow run.
                    2 if round % 5 == 0 && !overflow_runs.is_empty() => {
                        let page = overflow_runs[rng.below(overflow_runs.len() as u64) as usize];
                        page as usize * psize + rng.below(PAGE_HEADER as u64) as usize
                    }
                    // The header, node offsets or first nodes of a branch or leaf page.
                    _ => {
                        let page = tree_pages[rng.below(tree_pages.len() as u64) as usize];
                        page as usize * psize + rng.below(96) as usize
                    }
                };
                for b in copy.iter_mut().skip(at).take(count) {
                    *b = rng.next() as u8;
                }
                if copy == bytes {
                    continue;
                }
                let path = write_copy(&dir, &copy);
                for result in [check_size(&path), check_structure(&path).map(|_| ())] {
                    match result {
                        Ok(()) | Err(Error::Corrupt(_)) => {}
                        Err(e) => panic!("round {round}, {count} bytes at {at}: {e:?}"),
                    }
                }
                runs += 1;
                if check_structure(&path).is_err() {
                    caught += 1;
                }
            }
            println!("{dims} dimensions: {caught} of {runs} damaged copies reported");
            assert!(caught > runs / 4, "{caught} of {runs}");
        }
    }

    #[test]
    fn targeted_damage_is_caught() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let data = environment(&dir, 3000, 8, 7);
        let bytes = std::fs::read(&data).unwrap();
        let (report, owners) = check_structure_inner(&data).unwrap();
        let psize = report.page_size;
        let branches = reachable(&bytes, &owners, psize, P_BRANCH, 3);
        let leaves = reachable(&bytes, &owners, psize, P_LEAF, 2);
        assert!(!branches.is_empty() && !leaves.is_empty());
        let check = |copy: &[u8], expected: &[&str]| {
            let path = write_copy(&dir, copy);
            let message = corrupt_message(check_structure(&path));
            for part in expected {
                assert!(message.contains(part), "expected '{part}' in: {message}");
            }
            println!("{message}");
            message
        };

        // A page's stored page number changed, on a branch page and on a leaf.
        for &page in [branches[0], leaves[leaves.len() / 2]].iter() {
            let mut copy = bytes.clone();
            set_u64(&mut copy, page as usize * psize, page + 1);
            check(&copy, &["stored page number", &format!("page {page}")]);
        }

        // mp_lower beyond mp_upper.
        let leaf = leaves[0];
        let mut copy = bytes.clone();
        let upper = u16_at(&bytes, leaf as usize * psize + 14).unwrap();
        set_u16(&mut copy, leaf as usize * psize + 12, upper + 2);
        check(&copy, &["free-space bounds", &format!("page {leaf}")]);

        // mp_upper beyond the page.
        let mut copy = bytes.clone();
        set_u16(&mut copy, leaf as usize * psize + 14, psize as u16 + 8);
        check(&copy, &["free-space bounds"]);

        // A node offset outside the node area.
        let mut copy = bytes.clone();
        set_u16(&mut copy, leaf as usize * psize + PAGE_HEADER, 20);
        check(&copy, &["node 0 is at offset 20"]);

        // A key size that runs past the page.
        let mut copy = bytes.clone();
        let node = node_offset(&bytes, psize, leaf, 0);
        set_u16(&mut copy, node + 6, 60000);
        check(&copy, &["runs past the end of the page"]);

        // A branch's child pointed past the end of the file.
        let branch = branches[0];
        let mut copy = bytes.clone();
        let node = node_offset(&bytes, psize, branch, 1);
        let far = report.pages + 1000;
        set_u16(&mut copy, node, far as u16);
        set_u16(&mut copy, node + 2, (far >> 16) as u16);
        set_u16(&mut copy, node + 4, (far >> 32) as u16);
        check(
            &copy,
            &["past the last page", &format!("branch page {branch}")],
        );

        // A branch's child pointed at a meta page.
        let mut copy = bytes.clone();
        set_u16(&mut copy, node, 1);
        set_u16(&mut copy, node + 2, 0);
        set_u16(&mut copy, node + 4, 0);
        check(&copy, &["is a meta page"]);

        // Two children of a branch pointing at the same page.
        let mut copy = bytes.clone();
        let first = node_offset(&bytes, psize, branch, 0);
        copy.copy_within(first..first + 6, node);
        check(&copy, &["second time"]);

        // Two children swapped: the keys of each are outside the separators.
        let mut copy = bytes.clone();
        let second = node_offset(&bytes, psize, branch, 2);
        let (a, b) = (
            bytes[node..node + 6].to_vec(),
            bytes[second..second + 6].to_vec(),
        );
        copy[node..node + 6].copy_from_slice(&b);
        copy[second..second + 6].copy_from_slice(&a);
        check(&copy, &["separator"]);

        // Two keys of a leaf swapped (their node offsets exchanged).
        let mut copy = bytes.clone();
        let ptrs = leaf as usize * psize + PAGE_HEADER;
        copy.copy_within(ptrs..ptrs + 2, ptrs + 2);
        copy[ptrs..ptrs + 2].copy_from_slice(&bytes[ptrs + 2..ptrs + 4]);
        check(&copy, &["the key of node 1 is not above"]);

        // A leaf turned into a branch page, and into an unknown page type.
        let mut copy = bytes.clone();
        set_u16(&mut copy, leaf as usize * psize + 10, P_BRANCH);
        check(&copy, &["branch page at level"]);
        let mut copy = bytes.clone();
        set_u16(&mut copy, leaf as usize * psize + 10, 0x0300);
        check(&copy, &["page flags 0x0300"]);

        // A leaf node flagged as sorted duplicates, or as a named database outside the main DB.
        let node = node_offset(&bytes, psize, leaf, 0);
        let mut copy = bytes.clone();
        set_u16(&mut copy, node + 4, F_DUPDATA);
        check(&copy, &["F_DUPDATA"]);

        // The record counts of the main DB, in the current meta page.
        let metas =
            read_metas(&File::open(&data).unwrap(), bytes.len() as u64, "data.mdb").unwrap();
        let meta_at = metas.current.slot as usize * psize;
        let mut copy = bytes.clone();
        set_u64(&mut copy, meta_at + 88 + 32, 5);
        check(&copy, &["the main DB", "5 entries"]);
        let mut copy = bytes.clone();
        set_u64(&mut copy, meta_at + 88 + 40, report.pages + 5);
        check(&copy, &["the main DB", "outside pages"]);
        let mut copy = bytes.clone();
        set_u16(&mut copy, meta_at + 88 + 6, 7);
        check(&copy, &["the main DB", "level"]);

        // A named database's record: its entry count.
        let main_root = metas.current.main.root;
        let main_leaf = &bytes[main_root as usize * psize..(main_root as usize + 1) * psize];
        let (n, upper) = node_count(main_leaf).unwrap();
        let node = (0..n)
            .map(|i| node_at(main_leaf, i, upper, true).unwrap())
            .find(|node| node.key == b"links")
            .unwrap();
        let at = main_root as usize * psize
            + (node.data.as_ptr() as usize - main_leaf.as_ptr() as usize);
        let mut copy = bytes.clone();
        set_u64(&mut copy, at + 32, 12345);
        check(&copy, &["database 'links'", "12,345 entries"]);

        // Damage inside a named database names it.
        let leaf_owner = owners[leaf as usize];
        let owner = owner_name(
            &[
                "the free-page DB".into(),
                "the main DB".into(),
                "database 'links'".into(),
                "database 'meta'".into(),
                "database 'nodes'".into(),
                "database 'upper'".into(),
            ],
            leaf_owner,
        );
        let mut copy = bytes.clone();
        set_u64(&mut copy, leaf as usize * psize, 3);
        check(&copy, &[&owner]);

        // The meta pages: one broken is reported by the full check (LMDB refuses such a file),
        // check_size still reads the other; both broken is not an LMDB file.
        for slot in 0..2 {
            let mut copy = bytes.clone();
            copy[slot * psize + 16] ^= 0xff;
            let path = write_copy(&dir, &copy);
            check_size(&path).unwrap();
            check(&copy, &[&format!("meta page {slot} is damaged"), "magic"]);
        }
        let mut copy = bytes.clone();
        copy[16] ^= 0xff;
        copy[psize + 16] ^= 0xff;
        let path = write_copy(&dir, &copy);
        let message = corrupt_message(check_size(&path));
        assert!(message.contains("not an LMDB file"), "{message}");
        check(&copy, &["not an LMDB file"]);
        // A meta page that says it is the other one, a bad version, a bad page size.
        for (at, value, expected) in [
            (0usize, 1u64, "says it is page 1"),
            (20, 7, "version 7"),
            (40, 1000, "page size of 1000"),
        ] {
            let mut copy = bytes.clone();
            copy[at..at + 4].copy_from_slice(&(value as u32).to_ne_bytes());
            check(&copy, &["meta page 0 is damaged", expected]);
        }
        // Meta page 0 records another power of two as the page size.
        let mut copy = bytes.clone();
        copy[40..44].copy_from_slice(&8192u32.to_ne_bytes());
        let path = write_copy(&dir, &copy);
        let message = corrupt_message(check_size(&path));
        assert!(message.contains("disagree on the page size"), "{message}");
        check(&copy, &["disagree on the page size", "8192"]);
    }

    #[test]
    fn overflow_damage_is_caught() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let data = environment(&dir, 600, 600, 8);
        let bytes = std::fs::read(&data).unwrap();
        let (report, owners) = check_structure_inner(&data).unwrap();
        let psize = report.page_size;
        let runs = reachable(&bytes, &owners, psize, P_OVERFLOW, 0);
        assert!(runs.len() >= 600, "{}", runs.len());
        let run = runs[runs.len() / 2];
        let check = |copy: &[u8], expected: &str| {
            let message = corrupt_message(check_structure(&write_copy(&dir, copy)));
            assert!(
                message.contains(expected),
                "expected '{expected}' in: {message}"
            );
            assert!(message.contains("database 'nodes'"), "{message}");
            println!("{message}");
        };
        let mut copy = bytes.clone();
        set_u16(&mut copy, run as usize * psize + 10, P_LEAF);
        check(&copy, "not an overflow page");
        let mut copy = bytes.clone();
        copy[run as usize * psize + 12..run as usize * psize + 16]
            .copy_from_slice(&100_000u32.to_ne_bytes());
        check(&copy, "does not fit in the file");
        let mut copy = bytes.clone();
        copy[run as usize * psize + 12..run as usize * psize + 16]
            .copy_from_slice(&0u32.to_ne_bytes());
        check(&copy, "its run has 0 pages");
        let mut copy = bytes.clone();
        set_u64(&mut copy, run as usize * psize, run + 1);
        check(&copy, "stored page number");
        // A value size too big for its run: find the leaf node that points at `run`.
        let leaves = reachable(&bytes, &owners, psize, P_LEAF, 1);
        let mut done = false;
        for leaf in leaves {
            let page = &bytes[leaf as usize * psize..(leaf as usize + 1) * psize];
            let (n, upper) = node_count(page).unwrap();
            for i in 0..n {
                let node = node_at(page, i, upper, true).unwrap();
                if node.flags & F_BIGDATA != 0 && u64_at(node.data, 0) == Some(run) {
                    let at = node_offset(&bytes, psize, leaf, i as usize);
                    let mut copy = bytes.clone();
                    set_u16(&mut copy, at + 2, 1);
                    check(&copy, "does not fit in its run");
                    let mut copy = bytes.clone();
                    let other = runs[0];
                    let data = at + NODE_HEADER + node.key.len();
                    set_u64(&mut copy, data, other);
                    check(&copy, "second time");
                    done = true;
                }
            }
        }
        assert!(done);
    }

    /// `cargo test --release -p hannoy-engine verify::lmdb::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let path = dir.path().join("env");
        let db = Database::open(&path, &OpenOptions::default()).unwrap();
        let mut rng = XorShift(9);
        let (items, dims) = (100_000u32, 50usize);
        let ids: Vec<u32> = (0..items).collect();
        let vectors: Vec<f32> = (0..items as usize * dims).map(|_| rng.unit()).collect();
        db.add_items(0, dims, MetricKind::Euclidean, &ids, &vectors)
            .unwrap();
        build(&db);
        drop(db);
        let data = path.join("data.mdb");
        let started = std::time::Instant::now();
        check_size(&data).unwrap();
        let size = started.elapsed();
        let mut best = std::time::Duration::MAX;
        let mut report = None;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            report = Some(check_structure(&data).unwrap());
            best = best.min(started.elapsed());
        }
        let report = report.unwrap();
        println!(
            "{} bytes, {} pages checked: check_size {size:?}, check_structure best of 5 {best:?}\n{report:#?}",
            report.file_bytes, report.pages_checked
        );
    }
}
