//! Quantized indexes: each node of the graph carries a compact code of its vector, stored in
//! front of its level-0 links, and the graph walk (searches and the build) compares codes only.
//! The full `f32` vectors stay in their own database, read to rescore the best candidates, by
//! `getVector`, and once per inserted item by the build.
//!
//! - [`Int8`]: one byte per dimension, ranges learned per dimension from the data.
//! - [`Binary`]: RaBitQ-style codes (Gao & Long, SIGMOD 2024): the vector minus the data's
//!   centroid is rotated at random, and its code is the signs of the rotated components, with two
//!   per-vector factors that make the estimated distance unbiased.
//!
//! Both estimate squared euclidean distances; cosine indexes quantize the normalised vectors, on
//! which squared euclidean distance is `2 × (1 − cosine)` and so ranks the same.

mod binary;
mod int8;

pub(crate) use binary::Binary;
pub(crate) use int8::Int8;

use crate::error::{Error, Result};
use crate::metric::MetricKind;

/// How an index stores the values its graph walk reads. Chosen when the index is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Quantization {
    /// The walk reads the full vectors (the layout of format 2).
    #[default]
    None = 0,
    /// One byte per dimension.
    Int8 = 1,
    /// About one bit per dimension.
    Binary = 2,
}

impl Quantization {
    pub const ALL: [Quantization; 3] =
        [Quantization::None, Quantization::Int8, Quantization::Binary];

    /// The name used by the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
            Quantization::Binary => "binary",
        }
    }

    pub fn from_name(name: &str) -> Option<Quantization> {
        Quantization::ALL.into_iter().find(|q| q.name() == name)
    }

    pub fn from_code(code: u8) -> Option<Quantization> {
        Quantization::ALL.into_iter().find(|q| *q as u8 == code)
    }

    /// The metrics a quantization works with.
    pub fn supports(self, metric: MetricKind) -> bool {
        self == Quantization::None || matches!(metric, MetricKind::Euclidean | MetricKind::Cosine)
    }

    /// How much wider than `ef` the graph walk's beam is. Binary estimates are coarse enough that
    /// a walk guided by them needs a beam twice as wide to find what an exact walk of `ef`
    /// finds; hops on codes cost a tenth of hops on vectors, so it still costs about the same
    /// time, and rescoring reads no more vectors (measured on synth384 100k: at ef 80, recall
    /// 0.933 with a beam of ef, 0.965 with 2 × ef, against 0.945 unquantized).
    pub fn beam_factor(self) -> usize {
        match self {
            Quantization::Binary => 2,
            Quantization::None | Quantization::Int8 => 1,
        }
    }

    /// The default `oversampling` of searches: the walk keeps `k ×` this many candidates and
    /// rescores them with the full vectors (see README, "Quantization", for the measurements).
    pub fn default_oversampling(self) -> usize {
        match self {
            Quantization::None => 1,
            Quantization::Int8 => 2,
            Quantization::Binary => 8,
        }
    }
}

/// Checks that `quantization` can be used with `metric`.
pub(crate) fn check_supported(quantization: Quantization, metric: MetricKind) -> Result<()> {
    if quantization.supports(metric) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "quantization '{}' works with the metrics 'euclidean' and 'cosine', not '{}'",
        quantization.name(),
        metric.name()
    )))
}

/// What a quantized index learned from its data, stored in its metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Quantizer {
    Int8(Int8),
    Binary(Binary),
}

/// Vectors a quantizer learns from, at most (spread evenly over the items).
pub(crate) const TRAINING_SAMPLE: usize = 50_000;

impl Quantizer {
    /// Learns the quantizer of `kind` from `sample` (rows of `dimensions` components).
    pub(crate) fn train(
        kind: Quantization,
        dimensions: usize,
        normalize: bool,
        sample: &[f32],
        seed: u64,
    ) -> Option<Quantizer> {
        match kind {
            Quantization::None => None,
            Quantization::Int8 => Some(Quantizer::Int8(Int8::train(dimensions, normalize, sample))),
            Quantization::Binary => Some(Quantizer::Binary(Binary::train(
                dimensions, normalize, sample, seed,
            ))),
        }
    }

    pub(crate) fn kind(&self) -> Quantization {
        match self {
            Quantizer::Int8(_) => Quantization::Int8,
            Quantizer::Binary(_) => Quantization::Binary,
        }
    }

    /// Bytes of one code.
    pub(crate) fn code_len(&self) -> usize {
        match self {
            Quantizer::Int8(q) => q.code_len(),
            Quantizer::Binary(q) => q.code_len(),
        }
    }

    /// Appends the code of `vector` (its components) to `out`.
    pub(crate) fn encode(&self, vector: &[f32], out: &mut Vec<u8>) {
        match self {
            Quantizer::Int8(q) => q.encode(vector, out),
            Quantizer::Binary(q) => q.encode(vector, out),
        }
    }

    /// How many vectors it was learned from.
    pub(crate) fn trained_on(&self) -> u32 {
        match self {
            Quantizer::Int8(q) => q.trained,
            Quantizer::Binary(q) => q.trained,
        }
    }

    /// Whether a build should learn it again without being asked: it was learned from fewer
    /// vectors than a full sample, and the index has since grown to more than twice as many
    /// (a first build of a handful of items would otherwise fix the codes of all later ones).
    pub(crate) fn outgrown(&self, items: u64) -> bool {
        let trained = self.trained_on() as u64;
        trained < TRAINING_SAMPLE as u64 && items > 2 * trained.max(1)
    }

    /// Checks a stored code (for `verify`): what the walk would decode from it is sound.
    pub(crate) fn check_code(&self, code: &[u8]) -> std::result::Result<(), String> {
        match self {
            Quantizer::Int8(_) => Ok(()),
            Quantizer::Binary(q) => q.check_code(code),
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(self.kind() as u8);
        out.extend_from_slice(&self.trained_on().to_le_bytes());
        match self {
            Quantizer::Int8(q) => q.write(&mut out),
            Quantizer::Binary(q) => q.write(&mut out),
        }
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8], dimensions: usize) -> Result<Quantizer> {
        let corrupt = |what: &str| Error::Corrupt(format!("quantizer: {what}"));
        let (&kind, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
        let mut reader = Reader { bytes: rest };
        let trained = reader.u32().ok_or_else(|| corrupt("truncated"))?;
        let quantizer = match Quantization::from_code(kind) {
            Some(Quantization::Int8) => {
                Int8::read(&mut reader, dimensions, trained).map(Quantizer::Int8)
            }
            Some(Quantization::Binary) => {
                Binary::read(&mut reader, dimensions, trained).map(Quantizer::Binary)
            }
            _ => None,
        }
        .ok_or_else(|| corrupt("does not decode"))?;
        if !reader.bytes.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(quantizer)
    }
}

/// The components to quantize: `vector`, or `vector / |vector|` for cosine (a zero vector
/// stays zero).
fn prepared(vector: &[f32], normalize: bool, out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(vector);
    if normalize {
        let norm = crate::kernels::dot(vector, vector).sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// A quantizer's estimate of a squared euclidean distance as the distance the API reports.
fn report(estimate: f32, normalize: bool) -> f32 {
    let squared = estimate.max(0.0);
    if normalize {
        (squared / 2.0).min(2.0)
    } else {
        squared.sqrt()
    }
}

/// An exact internal distance of a quantized index's metric in the units of its estimates:
/// cosine distance `1 − cos` is half the squared distance of the normalised vectors.
fn estimate_units(exact: f32, normalize: bool) -> f32 {
    if normalize {
        2.0 * exact
    } else {
        exact
    }
}

/// Reads little-endian numbers off the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_at_checked(N)?;
        self.bytes = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    /// `n` finite floats.
    fn floats(&mut self, n: usize) -> Option<Vec<f32>> {
        let mut out = Vec::with_capacity(n.min(self.bytes.len() / 4));
        for _ in 0..n {
            let x = f32::from_le_bytes(self.take::<4>()?);
            if !x.is_finite() {
                return None;
            }
            out.push(x);
        }
        Some(out)
    }
}

fn write_floats(out: &mut Vec<u8>, values: &[f32]) {
    for x in values {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Reads an f32 at `at` of a code (codes carry per-vector factors in front).
#[inline(always)]
fn f32_at(code: &[u8], at: usize) -> f32 {
    match code.get(at..at + 4) {
        Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0.0,
    }
}

#[cfg(test)]
mod tests;
