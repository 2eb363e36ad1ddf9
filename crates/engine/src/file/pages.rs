//! Pages, parsed once into small summaries: the sequential pass over the file.

use super::keys::{int_key, KeyPrefix};
use super::layout::{
    DB_RECORD, F_BIGDATA, F_DUPDATA, F_SUBDATA, P_BRANCH, P_DIRTY, P_INVALID, P_KEEP, P_LEAF,
    P_LEAF2, P_LOOSE, P_META, P_OVERFLOW,
};
use super::nodes::{node_at, node_count, Fault};
use super::read::{get, to_usize, u16_at, u32_at, u64_at};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read at once by the sequential pass.
const CHUNK: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Other,
    Meta,
    Branch,
    Leaf,
    Overflow,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PageInfo {
    pub(super) stored_pgno: u64,
    pub(super) flags: u16,
    pub(super) kind: Kind,
    pub(super) nkeys: u16,
    pub(super) fault: Option<Fault>,
    /// First node whose key is not above the previous one as bytes / as integers (`u16::MAX`
    /// when sorted).
    pub(super) bytes_unsorted: u16,
    pub(super) int_unsorted: u16,
    /// Overflow: the number of pages of the run.
    pub(super) ov_pages: u32,
    /// Branch: index of the first child in `Store::children`; leaf: index in `Store::leaves`.
    pub(super) side: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Child {
    pub(super) pgno: u64,
    pub(super) key: KeyPrefix,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct LeafSide {
    pub(super) first: Option<KeyPrefix>,
    pub(super) last: Option<KeyPrefix>,
    pub(super) bigs: (usize, usize),
    pub(super) subs: (usize, usize),
}

/// A value kept in an overflow run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Big {
    pub(super) node: u16,
    pub(super) pgno: u64,
    pub(super) size: u32,
}

/// A named database's record in a leaf of the main DB.
#[derive(Debug, Clone)]
pub(super) struct Sub {
    pub(super) name: Vec<u8>,
    pub(super) record: [u8; DB_RECORD],
}

#[derive(Default)]
pub(super) struct Store {
    pub(super) info: Vec<PageInfo>,
    /// Pages `0..dense` are `info[pgno]` (the sequential pass); others are read on demand.
    pub(super) dense: u64,
    pub(super) sparse: HashMap<u64, usize>,
    pub(super) children: Vec<Child>,
    pub(super) leaves: Vec<LeafSide>,
    pub(super) bigs: Vec<Big>,
    pub(super) subs: Vec<Sub>,
}

/// Summarises one page (any page: which ones matter is known only after the walk).
pub(super) fn parse_page(page: &[u8], store: &mut Store) -> PageInfo {
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
pub(super) fn scan(mut file: &File, path: &Path, psize: usize, pages: u64) -> Result<Store> {
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
