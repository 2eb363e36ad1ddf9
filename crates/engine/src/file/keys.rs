//! Keys: the prefix of each key kept for the order checks across pages, and how a tree orders
//! its keys.

use super::layout::{
    MDB_DUPFIXED, MDB_DUPSORT, MDB_INTEGERDUP, MDB_INTEGERKEY, MDB_REVERSEDUP, MDB_REVERSEKEY,
};
use super::read::{u32_at, u64_at};
use std::cmp::Ordering;

/// Bytes of each key kept for the order checks across pages (hannoy's keys are at most 9).
const KEY_PREFIX: usize = 16;

/// The first `KEY_PREFIX` bytes of a key and its full length.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyPrefix {
    len: u16,
    bytes: [u8; KEY_PREFIX],
}

impl KeyPrefix {
    pub(super) fn of(key: &[u8]) -> KeyPrefix {
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

    pub(super) fn show(&self) -> String {
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
pub(super) enum Cmp {
    /// Bytes, lexicographically (LMDB's default).
    Bytes,
    /// Native unsigned integers of 4 or 8 bytes (`MDB_INTEGERKEY`; the free-page DB).
    Int,
}

pub(super) fn tree_cmp(flags: u16) -> std::result::Result<Cmp, String> {
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

pub(super) fn int_key(key: &[u8]) -> Option<u64> {
    match key.len() {
        8 => u64_at(key, 0),
        4 => u32_at(key, 0).map(u64::from),
        _ => None,
    }
}

/// Compares two keys: `None` when the kept prefixes cannot tell.
pub(super) fn compare(a: &KeyPrefix, b: &KeyPrefix, cmp: Cmp) -> Option<Ordering> {
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
