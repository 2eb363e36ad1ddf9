//! Meta pages: reading and validating the two of them, and checking that the file holds the
//! pages of the current snapshot.

use super::keys::Cmp;
use super::layout::{
    parse_db, DbRec, DATA_VERSION, MAGIC, MAX_DEPTH, MAX_PAGE_SIZE, META_END, MIN_PAGE_SIZE,
    NUM_METAS, P_INVALID, P_META,
};
use super::pages::Store;
use super::read::{read_at, u16_at, u32_at, u64_at};
use super::show::thousands;
use super::tree::Role;
use super::walk::{Walk, FREE_TREE};
use crate::error::{Error, Result};
use std::fs::File;

#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub(super) slot: u64,
    pub(super) psize: u32,
    pub(super) free: DbRec,
    pub(super) main: DbRec,
    pub(super) last_pg: u64,
    pub(super) txnid: u64,
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

pub(super) struct Metas {
    pub(super) psize: usize,
    pub(super) metas: [std::result::Result<Meta, String>; 2],
    /// The current snapshot: the valid meta with the higher txnid (page 0 on a tie).
    pub(super) current: Meta,
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
pub(super) fn read_metas(file: &File, len: u64, name: &str) -> Result<Metas> {
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
pub(super) fn needed_bytes(meta: &Meta, name: &str) -> Result<u64> {
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

pub(super) fn truncated(name: &str, meta: &Meta, needed: u64, len: u64) -> String {
    format!(
        "{name} is truncated: its meta page says it holds {} pages of {} bytes ({} bytes) but the file has {} bytes",
        thousands(meta.last_pg.saturating_add(1)),
        meta.psize,
        thousands(needed),
        thousands(len)
    )
}

/// The checks of a meta record that need no other page.
pub(super) fn check_meta(meta: &Meta, name: &str) -> Result<()> {
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

pub(super) fn tail_is_covered(tail: &mut Vec<u64>, file_pages: u64, last_pg: u64) -> bool {
    tail.sort_unstable();
    tail.dedup();
    tail.len() as u64 == last_pg + 1 - file_pages.min(last_pg + 1)
}

/// The file holds every page of the current snapshot, or misses only free pages at its end.
pub(super) fn check_length(file: &File, name: &str, metas: &Metas, len: u64) -> Result<()> {
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
