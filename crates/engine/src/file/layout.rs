//! The on-disk layout: the constants and offsets of pages, nodes, meta pages and database
//! records (`MDB_db`).

use super::read::{u16_at, u32_at, u64_at};

pub(super) const PAGE_HEADER: usize = 16;
pub(super) const NODE_HEADER: usize = 8;
/// End of the meta record inside a meta page: header, then 136 bytes.
pub(super) const META_END: usize = PAGE_HEADER + 136;
pub(super) const DB_RECORD: usize = 48;
pub(super) const MAGIC: u32 = 0xBEEF_C0DE;
pub(super) const DATA_VERSION: u32 = 1;
pub(super) const P_INVALID: u64 = u64::MAX;
pub(super) const NUM_METAS: u64 = 2;

pub(super) const P_BRANCH: u16 = 0x01;
pub(super) const P_LEAF: u16 = 0x02;
pub(super) const P_OVERFLOW: u16 = 0x04;
pub(super) const P_META: u16 = 0x08;
pub(super) const P_DIRTY: u16 = 0x10;
pub(super) const P_LEAF2: u16 = 0x20;
pub(super) const P_LOOSE: u16 = 0x4000;
pub(super) const P_KEEP: u16 = 0x8000;

pub(super) const F_BIGDATA: u16 = 0x01;
pub(super) const F_SUBDATA: u16 = 0x02;
pub(super) const F_DUPDATA: u16 = 0x04;

pub(super) const MDB_REVERSEKEY: u16 = 0x02;
pub(super) const MDB_DUPSORT: u16 = 0x04;
pub(super) const MDB_INTEGERKEY: u16 = 0x08;
pub(super) const MDB_DUPFIXED: u16 = 0x10;
pub(super) const MDB_INTEGERDUP: u16 = 0x20;
pub(super) const MDB_REVERSEDUP: u16 = 0x40;

/// LMDB's cursor stack: no tree is deeper.
pub(super) const MAX_DEPTH: u16 = 32;
pub(super) const MIN_PAGE_SIZE: u32 = 512;
pub(super) const MAX_PAGE_SIZE: u32 = 65536;

/// A database record (`MDB_db`).
#[derive(Debug, Clone, Copy)]
pub(super) struct DbRec {
    pub(super) pad: u32,
    pub(super) flags: u16,
    pub(super) depth: u16,
    pub(super) branch_pages: u64,
    pub(super) leaf_pages: u64,
    pub(super) overflow_pages: u64,
    pub(super) entries: u64,
    pub(super) root: u64,
}

pub(super) fn parse_db(bytes: &[u8], at: usize) -> Option<DbRec> {
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
