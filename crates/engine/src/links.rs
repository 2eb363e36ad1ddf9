//! Node records and link lists.
//!
//! A `nodes` value is the item's stored vector followed, once the item is in the graph, by its
//! level-0 links as a serialized roaring bitmap, zero-padded to a multiple of 4 bytes so the next
//! record's vector stays aligned. An `upper` value is a serialized roaring bitmap.

use roaring::RoaringBitmap;

use crate::error::{Error, Result};

/// A node record split into its parts.
pub struct NodeRecord<'a> {
    pub vector: &'a [u8],
    /// The level-0 links, `None` while the item is not in the graph.
    pub links: Option<&'a [u8]>,
}

pub fn split_record(value: &[u8], vector_len: usize, id: u32) -> Result<NodeRecord<'_>> {
    if value.len() < vector_len {
        return Err(Error::Corrupt(format!(
            "item {id}: record of {} bytes, the vector alone takes {vector_len}",
            value.len()
        )));
    }
    let (vector, rest) = value.split_at(vector_len);
    Ok(NodeRecord {
        vector,
        links: (!rest.is_empty()).then_some(rest),
    })
}

/// Appends the serialized links (padded to a multiple of 4 bytes) to `out`.
pub fn encode(ids: &[u32], out: &mut Vec<u8>) {
    let mut bitmap = RoaringBitmap::new();
    for &id in ids {
        bitmap.insert(id);
    }
    encode_bitmap(&bitmap, out);
}

pub fn encode_bitmap(bitmap: &RoaringBitmap, out: &mut Vec<u8>) {
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = bitmap.serialize_into(&mut *out);
    let written = out.len() - start;
    out.resize(start + written.div_ceil(4) * 4, 0);
}

pub fn decode(bytes: &[u8], id: u32) -> Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes)
        .map_err(|e| Error::Corrupt(format!("links of item {id}: {e}")))
}

/// Decodes links into `out` (cleared first) as plain ids.
pub fn decode_into(bytes: &[u8], id: u32, out: &mut Vec<u32>) -> Result<()> {
    out.clear();
    out.extend(decode(bytes, id)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding() {
        let ids = [3u32, 70_000, 5, u32::MAX];
        let mut out = vec![1, 2, 3, 4];
        encode(&ids, &mut out);
        assert_eq!(out.len() % 4, 0);
        let mut back = Vec::new();
        decode_into(&out[4..], 0, &mut back).unwrap();
        assert_eq!(back, vec![3, 5, 70_000, u32::MAX]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xff, 0xff, 0xff], 1).is_err());
        let mut out = Vec::new();
        encode(&[1, 2, 3], &mut out);
        assert!(decode(&out[..out.len() - 6], 1).is_err());
    }
}
