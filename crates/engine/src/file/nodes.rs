//! The nodes of a branch or leaf page as stored, and why a page cannot be read.

use super::layout::{DB_RECORD, F_BIGDATA, F_DUPDATA, F_SUBDATA, NODE_HEADER, PAGE_HEADER};
use super::read::u16_at;

/// Why a branch or leaf page cannot be read; reported only when the page is reachable.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    Bounds { lower: u16, upper: u16 },
    NodeOffset { node: u16, offset: u16 },
    NodeOverrun { node: u16 },
    NodeFlags { node: u16, flags: u16 },
    SubSize { node: u16, size: u32 },
    DupData { node: u16 },
    Leaf2,
}

impl Fault {
    pub(super) fn describe(self, psize: usize) -> String {
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

/// A node as stored.
pub(super) struct RawNode<'p> {
    pub(super) flags: u16,
    pub(super) key: &'p [u8],
    /// Branch: the child page. Leaf: the data size.
    pub(super) number: u64,
    /// Leaf: the data (the 8-byte first page of the run for `F_BIGDATA`).
    pub(super) data: &'p [u8],
}

/// The page's node count, after checking its free-space bounds.
pub(super) fn node_count(page: &[u8]) -> std::result::Result<(u16, u16), Fault> {
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

pub(super) fn node_at(
    page: &[u8],
    i: u16,
    upper: u16,
    leaf: bool,
) -> std::result::Result<RawNode<'_>, Fault> {
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
