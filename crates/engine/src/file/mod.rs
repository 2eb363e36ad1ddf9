//! The LMDB data file of a database directory, checked on its raw bytes: its size against its
//! meta pages (at every open) and its whole structure (`verify`).
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

mod ahead;
mod free;
mod keys;
mod layout;
mod meta;
mod nodes;
mod pages;
mod read;
mod show;
mod tree;
mod walk;

pub(crate) use ahead::Leaves;

/// The LMDB data file of a database directory.
pub(crate) fn data_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("data.mdb")
}

use crate::error::{Error, Result};
use keys::{tree_cmp, Cmp};
use layout::{parse_db, NUM_METAS};
use meta::{check_length, check_meta, needed_bytes, read_metas, tail_is_covered, truncated};
use pages::scan;
use read::{file_len, file_name, to_usize};
use show::show_name;
use std::fs::File;
use std::path::Path;
use tree::Role;
use walk::{owner_name, Walk, FREE_MARK, FREE_TREE, MAIN_TREE};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("file reads the files of 64-bit LMDB builds (8-byte pgno_t and size_t) only");

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
/// page refers to (two small reads on an intact file). A missing file is a new environment, and
/// so is an empty one when `writable` (LMDB then writes its meta pages; an empty file holds
/// nothing to lose: it is what a crash right after creating it leaves).
pub(crate) fn check_size(data_file: &Path, writable: bool) -> Result<()> {
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
    if len == 0 && writable {
        return Ok(());
    }
    let metas = read_metas(&file, len, &name)?;
    // A writer in another process may have grown the file and committed between the length
    // and the metas: measure again before calling it short.
    let len = file_len(&file, data_file)?.max(len);
    check_length(&file, &name, &metas, len)
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

#[cfg(test)]
mod tests;
