//! The free-page DB's records: the lists of free pages.

use super::layout::{F_BIGDATA, PAGE_HEADER, P_INVALID};
use super::nodes::{node_at, node_count};
use super::read::{read_at, u64_at};
use super::tree::TreeOut;
use super::walk::Walk;
use crate::error::{Error, Result};

impl Walk<'_> {
    /// Reads the free-page DB's records (its leaves, walked before) and calls `each` with every
    /// page number listed and the transaction of its record.
    pub(super) fn free_lists(
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
