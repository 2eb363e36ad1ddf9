//! Stored values: vectors and link lists.
//!
//! A `nodes` value is exactly the item's stored vector. A `links` value (level 0) or `upper`
//! value (levels above) is a link list as a roaring bitmap in the portable serialization that
//! every roaring implementation reads. Lists are written in its compact form (the "run" cookie,
//! which omits the offset table when there are fewer than four containers) and decoded in place,
//! without building a bitmap, because searches decode one list per visited node.

use roaring::RoaringBitmap;

use crate::error::{Error, Result};

/// Cookie of the portable format without run containers (always followed by an offset table).
const COOKIE_NO_RUNS: u32 = 12346;
/// Cookie of the portable format that may hold run containers (low 16 bits of the first word).
const COOKIE_RUNS: u16 = 12347;
/// From this many containers on, the run-cookie format carries an offset table.
const NO_OFFSET_THRESHOLD: usize = 4;
/// An array container holds at most this many values; more are stored as a bitmap.
const ARRAY_MAX: usize = 4096;

/// Checks that a `nodes` value holds exactly one stored vector of `len` bytes.
pub fn check_vector(value: &[u8], len: usize, id: u32) -> Result<&[u8]> {
    if value.len() != len {
        return Err(Error::Corrupt(format!(
            "item {id}: a stored vector of {} bytes, expected {len}",
            value.len()
        )));
    }
    Ok(value)
}

/// Writes `ids` (any order, duplicates allowed) as a compact portable roaring bitmap into `out`
/// (cleared first).
pub fn encode(ids: &[u32], out: &mut Vec<u8>) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    out.clear();
    // Containers: runs of ids sharing the high 16 bits.
    let mut containers: Vec<(u16, &[u32])> = Vec::new();
    let mut rest = &sorted[..];
    while let Some(&first) = rest.first() {
        let high = (first >> 16) as u16;
        let end = rest.partition_point(|&id| (id >> 16) as u16 == high);
        containers.push((high, &rest[..end]));
        rest = &rest[end..];
    }
    if containers.is_empty()
        || containers.len() >= NO_OFFSET_THRESHOLD
        || containers.iter().any(|(_, c)| c.len() > ARRAY_MAX)
    {
        // Rare for link lists: let the roaring crate write its standard form.
        let bitmap: RoaringBitmap = sorted.iter().copied().collect();
        // Writing into a Vec cannot fail.
        let _ = bitmap.serialize_into(&mut *out);
        return;
    }
    let size = containers.len();
    let cookie = COOKIE_RUNS as u32 | ((size as u32 - 1) << 16);
    out.extend_from_slice(&cookie.to_le_bytes());
    // The run bitset: no container is a run container.
    out.extend(std::iter::repeat_n(0u8, size.div_ceil(8)));
    for (high, values) in &containers {
        out.extend_from_slice(&high.to_le_bytes());
        out.extend_from_slice(&((values.len() - 1) as u16).to_le_bytes());
    }
    for (_, values) in &containers {
        for &id in *values {
            out.extend_from_slice(&(id as u16).to_le_bytes());
        }
    }
}

/// Decodes a link list into `out` (cleared first) as ascending ids.
pub fn decode_into(bytes: &[u8], id: u32, out: &mut Vec<u32>) -> Result<()> {
    out.clear();
    parse(bytes, out).ok_or_else(|| Error::Corrupt(format!("the links of item {id} do not decode")))
}

/// Decodes a link list into a bitmap.
#[cfg(test)]
pub fn decode(bytes: &[u8], id: u32) -> Result<RoaringBitmap> {
    let mut ids = Vec::new();
    decode_into(bytes, id, &mut ids)?;
    Ok(ids.into_iter().collect())
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The portable roaring format (array, bitmap and run containers); `None` when it does not
/// decode or the bytes do not end where the format says.
fn parse(bytes: &[u8], out: &mut Vec<u32>) -> Option<()> {
    let first = u32_at(bytes, 0)?;
    let (size, run_bitset, mut at) = if first == COOKIE_NO_RUNS {
        (u32_at(bytes, 4)? as usize, None, 8)
    } else if first as u16 == COOKIE_RUNS {
        let size = (first >> 16) as usize + 1;
        let bitset = bytes.get(4..4 + size.div_ceil(8))?;
        (size, Some(bitset), 4 + size.div_ceil(8))
    } else {
        return None;
    };
    if size > 1 << 16 {
        return None;
    }
    let headers = at;
    at += 4 * size;
    let has_offsets = run_bitset.is_none() || size >= NO_OFFSET_THRESHOLD;
    if has_offsets {
        at += 4 * size;
    }
    if at > bytes.len() {
        return None;
    }
    let mut previous_high: Option<u16> = None;
    for c in 0..size {
        let high = u16_at(bytes, headers + 4 * c)?;
        if previous_high.is_some_and(|p| p >= high) {
            return None;
        }
        previous_high = Some(high);
        let cardinality = u16_at(bytes, headers + 4 * c + 2)? as usize + 1;
        let base = (high as u32) << 16;
        let is_run = run_bitset.is_some_and(|b| b[c / 8] & (1 << (c % 8)) != 0);
        let before = out.len();
        if is_run {
            let runs = u16_at(bytes, at)? as usize;
            at += 2;
            let mut next_free = 0u32; // runs must be sorted and apart
            for r in 0..runs {
                let start = u16_at(bytes, at + 4 * r)? as u32;
                let length = u16_at(bytes, at + 4 * r + 2)? as u32;
                if start < next_free || start + length > 0xffff {
                    return None;
                }
                // The header's cardinality bounds what a run may add (no runaway decoding).
                if out.len() - before + length as usize + 1 > cardinality {
                    return None;
                }
                out.extend((start..=start + length).map(|v| base | v));
                next_free = start + length + 2;
            }
            at += 4 * runs;
        } else if cardinality <= ARRAY_MAX {
            let values = bytes.get(at..at + 2 * cardinality)?;
            let mut previous: Option<u16> = None;
            for v in values.chunks_exact(2) {
                let v = u16::from_le_bytes([v[0], v[1]]);
                if previous.is_some_and(|p| p >= v) {
                    return None;
                }
                previous = Some(v);
                out.push(base | v as u32);
            }
            at += 2 * cardinality;
        } else {
            let words = bytes.get(at..at + 8192)?;
            for (w, word) in words.chunks_exact(8).enumerate() {
                let mut word = u64::from_le_bytes(word.try_into().ok()?);
                while word != 0 {
                    let bit = word.trailing_zeros();
                    out.push(base | (w as u32 * 64 + bit));
                    word &= word - 1;
                }
            }
            at += 8192;
        }
        if out.len() - before != cardinality {
            return None;
        }
    }
    (at == bytes.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roaring_bytes(ids: &[u32]) -> Vec<u8> {
        let bitmap: RoaringBitmap = ids.iter().copied().collect();
        let mut out = Vec::new();
        bitmap.serialize_into(&mut out).unwrap();
        out
    }

    fn lists() -> Vec<Vec<u32>> {
        vec![
            vec![],
            vec![7],
            vec![3, 70_000, 5, u32::MAX],
            (0..32).map(|i| i * 3_001).collect(),
            (0..40).map(|i| i * 200_000).collect(), // many containers: standard form
            (0..5000).collect(),                    // a bitmap container
            vec![65_535, 65_536, 131_071, 131_072],
        ]
    }

    #[test]
    fn compact_encoding_reads_back_everywhere() {
        for ids in lists() {
            let mut expected = ids.clone();
            expected.sort_unstable();
            expected.dedup();
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            // our decoder
            let mut back = Vec::new();
            decode_into(&bytes, 0, &mut back).unwrap();
            assert_eq!(back, expected);
            // the roaring crate reads what we write
            let theirs = RoaringBitmap::deserialize_from(&bytes[..]).unwrap();
            assert_eq!(theirs.iter().collect::<Vec<_>>(), expected);
            // never larger than roaring's own serialization
            assert!(bytes.len() <= roaring_bytes(&ids).len(), "{ids:?}");
        }
        let mut one_container = Vec::new();
        encode(&(0..32).collect::<Vec<_>>(), &mut one_container);
        assert_eq!(one_container.len(), 4 + 1 + 4 + 64);
    }

    #[test]
    fn in_place_decoding_matches_roaring() {
        // what the roaring crate writes (standard cookie, offsets; runs after optimize)
        for ids in lists() {
            let mut bitmap: RoaringBitmap = ids.iter().copied().collect();
            for optimize in [false, true] {
                if optimize {
                    bitmap.optimize();
                }
                let mut bytes = Vec::new();
                bitmap.serialize_into(&mut bytes).unwrap();
                let mut back = Vec::new();
                decode_into(&bytes, 0, &mut back).unwrap();
                assert_eq!(back, bitmap.iter().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xff, 0xff, 0xff], 1).is_err());
        assert!(decode(&[], 1).is_err());
        for ids in lists() {
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            for cut in 1..bytes.len().min(64) {
                assert!(
                    decode(&bytes[..bytes.len() - cut], 1).is_err(),
                    "{ids:?} cut {cut}"
                );
            }
            bytes.push(0);
            assert!(decode(&bytes, 1).is_err(), "{ids:?} with a trailing byte");
        }
    }

    #[test]
    fn malformed_containers_are_errors() {
        // One run container claiming 1 value whose runs cover 65,536: refused, not expanded.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(COOKIE_RUNS as u32).to_le_bytes()); // one container
        bytes.push(1); // it is a run container
        bytes.extend_from_slice(&[0, 0, 0, 0]); // key 0, cardinality 1
        bytes.extend_from_slice(&1u16.to_le_bytes()); // one run
        bytes.extend_from_slice(&[0, 0, 0xff, 0xff]); // 0 ..= 65535
        assert!(decode(&bytes, 1).is_err());
        // Overlapping runs.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(COOKIE_RUNS as u32).to_le_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&[0, 0, 5, 0]); // cardinality 6
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&[0, 0, 2, 0, 1, 0, 2, 0]); // 0..=2 then 1..=3
        assert!(decode(&bytes, 1).is_err());
        // An array container out of order.
        let mut bytes = Vec::new();
        encode(&[1, 2], &mut bytes);
        let n = bytes.len();
        bytes.swap(n - 4, n - 2);
        assert!(decode(&bytes, 1).is_err());
    }

    #[test]
    fn vectors_must_have_the_stored_length() {
        assert!(check_vector(&[0; 8], 8, 1).is_ok());
        assert!(check_vector(&[0; 7], 8, 1).is_err());
        assert!(check_vector(&[0; 9], 8, 1).is_err());
    }
}
