//! Key layout. Every key starts with the index id (u16, big-endian), so one index's records are
//! contiguous and up to 65,536 indexes share an environment.
//!
//! - `meta`:  `[index u16][kind u8]` → header, updated-set or deleted-set record.
//! - `nodes`: `[0u16][index u16][id u32]` → the item's stored vector, nothing else. The key is 8
//!   bytes so LMDB keeps the vector that follows it 4-byte aligned.
//! - `links`: the same key → the item's level-0 links; present exactly while the item is in the
//!   graph. In a quantized index the value starts with the item's code (of the quantizer's
//!   fixed length), so a hop of the graph walk reads one value.
//! - `upper`: `[0u16][index u16][id u32][level u8]` → the item's links on an upper level.

pub const META_HEADER: u8 = 0;
pub const META_UPDATED: u8 = 1;
pub const META_DELETED: u8 = 2;
/// The quantizer of a quantized index (ranges or rotation), written by its first build.
pub const META_QUANTIZER: u8 = 3;

pub fn meta(index: u16, kind: u8) -> [u8; 3] {
    let i = index.to_be_bytes();
    [i[0], i[1], kind]
}

pub fn node(index: u16, id: u32) -> [u8; 8] {
    (((index as u64) << 32) | id as u64).to_be_bytes()
}

pub fn upper(index: u16, id: u32, level: u8) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&node(index, id));
    key[8] = level;
    key
}

/// The first key of `index` in `nodes`/`upper` (a range prefix).
pub fn node_prefix(index: u16) -> [u8; 4] {
    let i = index.to_be_bytes();
    [0, 0, i[0], i[1]]
}

/// The item id of a `nodes` or `upper` key.
pub fn id_of(key: &[u8]) -> Option<u32> {
    key.get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The level of an `upper` key.
pub fn level_of(key: &[u8]) -> Option<u8> {
    key.get(8).copied()
}

/// The key range `[start, end)` of one index in `nodes` and `upper`.
pub(crate) fn node_range(index: u16) -> ([u8; 4], [u8; 4]) {
    let start = u32::from_be_bytes(node_prefix(index));
    (start.to_be_bytes(), (start + 1).to_be_bytes())
}
