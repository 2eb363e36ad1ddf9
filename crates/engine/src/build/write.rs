//! Writing the touched nodes back to the store and deleting the removed ones.

use std::ops::Bound;

use heed::RwTxn;
use roaring::RoaringBitmap;

use super::Control;
use crate::error::Result;
use crate::keys;
use crate::links;
use crate::store::{Appender, Shared};

#[allow(clippy::too_many_arguments)]
pub(super) fn write_graph(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    output: &[(u32, u32, Vec<Vec<u32>>)],
    codes: Option<(&[u8], usize)>,
    removed: &[u32],
    updated: &RoaringBitmap,
    deleted: &RoaringBitmap,
    control: &Control<'_>,
) -> Result<()> {
    let total = (output.len() + removed.len()) as u64;
    control.report("write", 0, total);
    // Removed nodes lose every link record; re-inserted ones get theirs back below.
    for &id in removed {
        let key = keys::node(index, id);
        // The next node key: adding one carries into the index part for id u32::MAX.
        let end = (u64::from_be_bytes(key) + 1).to_be_bytes();
        let range = (Bound::Included(&key[..]), Bound::Excluded(&end[..]));
        s.upper.delete_range(txn, &range)?;
        s.links.delete(txn, &key)?;
        if deleted.contains(id) && !updated.contains(id) {
            s.nodes.delete(txn, &key)?;
        }
    }
    let mut links0 = Appender::new(s.links, txn)?;
    let mut value = Vec::new();
    let mut record = Vec::new();
    for (i, (id, p, levels)) in output.iter().enumerate() {
        if i % 4096 == 0 {
            control.check()?;
            control.report("write", (removed.len() + i) as u64, total);
        }
        let key = keys::node(index, *id);
        links::encode(&levels[0], &mut value);
        match codes {
            // A quantized index: the code leads the level-0 links.
            Some((codes, len)) => {
                let at = *p as usize * len;
                record.clear();
                record.extend_from_slice(&codes[at..at + len]);
                record.extend_from_slice(&value);
                links0.put(txn, &key, &record)?;
            }
            None => links0.put(txn, &key, &value)?,
        }
        for (level, list) in levels.iter().enumerate().skip(1) {
            links::encode(list, &mut value);
            s.upper
                .put(txn, &keys::upper(index, *id, level as u8), &value)?;
        }
    }
    control.report("write", total, total);
    Ok(())
}
