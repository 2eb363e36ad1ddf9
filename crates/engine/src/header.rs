//! The metadata record of an index.

use crate::error::{Error, Result};
use crate::metric::MetricKind;
use crate::quant::Quantization;

/// The on-disk format this code writes and the newest it reads.
/// Version 2 keeps the level-0 links in their own database (version 1 appended them to the
/// vector); version 1 files are refused. Version 3 adds the index's quantization (in a byte that
/// version 2 left zero, so version-2 headers read as unquantized indexes) and, for quantized
/// indexes, the quantizer record and codes in front of the level-0 links.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest format this code reads, and the one it writes for unquantized indexes.
const OLDEST_READ: u16 = 2;
const MAGIC: &[u8; 4] = b"HNOY";
const FIXED_LEN: usize = 4 + 2 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + 8 + 4;

/// What an index is and where its graph starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub dimensions: u32,
    pub metric: MetricKind,
    /// What the graph walk reads: the vectors, or codes of them.
    pub quantization: Quantization,
    /// Links per node on upper levels.
    pub m: u16,
    /// Links per node on level 0.
    pub m0: u16,
    /// Whether a build ever ran (an index with items but no build cannot be searched).
    pub built: bool,
    /// The highest level of the graph.
    pub top_level: u8,
    /// Live items (added and not deleted), built or not.
    pub items: u64,
    /// The nodes on the top level; searches start from them.
    pub entry_points: Vec<u32>,
}

impl Header {
    pub fn new(dimensions: u32, metric: MetricKind) -> Header {
        Header::quantized(dimensions, metric, Quantization::None)
    }

    pub fn quantized(dimensions: u32, metric: MetricKind, quantization: Quantization) -> Header {
        Header {
            dimensions,
            metric,
            quantization,
            m: 16,
            m0: 32,
            built: false,
            top_level: 0,
            items: 0,
            entry_points: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + 4 * self.entry_points.len());
        out.extend_from_slice(MAGIC);
        // An unquantized index is written as format 2, which it is byte for byte, so that
        // versions of hannoy that read only format 2 keep reading it.
        let version = match self.quantization {
            Quantization::None => OLDEST_READ,
            _ => FORMAT_VERSION,
        };
        out.extend_from_slice(&version.to_le_bytes());
        out.push(self.metric as u8);
        out.push(self.built as u8);
        out.extend_from_slice(&self.dimensions.to_le_bytes());
        out.extend_from_slice(&self.m.to_le_bytes());
        out.extend_from_slice(&self.m0.to_le_bytes());
        out.push(self.top_level);
        out.push(self.quantization as u8);
        out.extend_from_slice(&self.items.to_le_bytes());
        out.extend_from_slice(&(self.entry_points.len() as u32).to_le_bytes());
        for id in &self.entry_points {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Header> {
        let corrupt = |what: &str| Error::Corrupt(format!("index metadata: {what}"));
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if !(OLDEST_READ..=FORMAT_VERSION).contains(&version) {
            return Err(Error::Version {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if bytes.len() < FIXED_LEN {
            return Err(corrupt("truncated"));
        }
        let metric = MetricKind::from_code(bytes[6]).ok_or_else(|| corrupt("unknown metric"))?;
        let built = bytes[7] != 0;
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let dimensions = u32_at(8);
        let m = u16_at(12);
        let m0 = u16_at(14);
        let top_level = bytes[16];
        let quantization =
            Quantization::from_code(bytes[17]).ok_or_else(|| corrupt("unknown quantization"))?;
        let mut items = [0u8; 8];
        items.copy_from_slice(&bytes[18..26]);
        let items = u64::from_le_bytes(items);
        let count = u32_at(26) as usize;
        if bytes.len() != FIXED_LEN + 4 * count {
            return Err(corrupt("entry point list has the wrong length"));
        }
        if dimensions == 0 {
            return Err(corrupt("zero dimensions"));
        }
        let entry_points = (0..count).map(|i| u32_at(FIXED_LEN + 4 * i)).collect();
        Ok(Header {
            dimensions,
            metric,
            quantization,
            m,
            m0,
            built,
            top_level,
            items,
            entry_points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut h = Header::new(384, MetricKind::BqCosine);
        h.entry_points = vec![7, 9];
        h.items = 1 << 40;
        h.built = true;
        h.top_level = 3;
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        let q = Header::quantized(384, MetricKind::Cosine, Quantization::Binary);
        assert_eq!(Header::decode(&q.encode()).unwrap(), q);
    }

    #[test]
    fn format_2_headers_read_as_unquantized() {
        let h = Header::new(50, MetricKind::Euclidean);
        let mut bytes = h.encode();
        bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(Header::decode(&bytes).unwrap(), h);
        bytes[17] = 9;
        assert!(matches!(Header::decode(&bytes), Err(Error::Corrupt(_))));
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        let bytes = Header::new(3, MetricKind::Cosine).encode();
        for len in 0..bytes.len() {
            assert!(Header::decode(&bytes[..len]).is_err(), "length {len}");
        }
        assert!(matches!(
            Header::decode(b"garbage garbage garbage garbage"),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn other_versions_are_refused_with_a_message_that_says_what_to_do() {
        for (version, advice) in [(FORMAT_VERSION + 1, "upgrade"), (1, "rebuild")] {
            let mut bytes = Header::new(3, MetricKind::Cosine).encode();
            bytes[4..6].copy_from_slice(&version.to_le_bytes());
            let err = Header::decode(&bytes).unwrap_err();
            assert!(matches!(err, Error::Version { found, .. } if found == version));
            assert!(err.to_string().contains(advice), "{err}");
        }
    }
}
