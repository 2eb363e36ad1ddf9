//! Metrics: how a vector is stored and how two stored vectors are compared.
//!
//! Float metrics store `[norm: f32][components: f32 × d]` (little-endian), so cosine needs one dot
//! product per comparison. Binary metrics store one bit per dimension, packed and padded to a
//! multiple of 4 bytes (a 1536-d vector takes 192 bytes). Every stored length is a multiple of 4 so
//! that LMDB keeps the float records of a page 4-byte aligned and they are read without copying.

use std::borrow::Cow;

use crate::kernels;

/// The metrics an index can use. The discriminant is what the metadata record stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MetricKind {
    Euclidean = 0,
    Cosine = 1,
    Manhattan = 2,
    Hamming = 3,
    BqEuclidean = 4,
    BqCosine = 5,
    BqManhattan = 6,
}

impl MetricKind {
    pub const ALL: [MetricKind; 7] = [
        MetricKind::Euclidean,
        MetricKind::Cosine,
        MetricKind::Manhattan,
        MetricKind::Hamming,
        MetricKind::BqEuclidean,
        MetricKind::BqCosine,
        MetricKind::BqManhattan,
    ];

    /// The name used by the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Euclidean => "euclidean",
            MetricKind::Cosine => "cosine",
            MetricKind::Manhattan => "manhattan",
            MetricKind::Hamming => "hamming",
            MetricKind::BqEuclidean => "bq-euclidean",
            MetricKind::BqCosine => "bq-cosine",
            MetricKind::BqManhattan => "bq-manhattan",
        }
    }

    pub fn from_name(name: &str) -> Option<MetricKind> {
        MetricKind::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn from_code(code: u8) -> Option<MetricKind> {
        MetricKind::ALL.into_iter().find(|m| *m as u8 == code)
    }

    /// Whether vectors are stored one bit per dimension.
    pub fn is_binary(self) -> bool {
        matches!(
            self,
            MetricKind::Hamming
                | MetricKind::BqEuclidean
                | MetricKind::BqCosine
                | MetricKind::BqManhattan
        )
    }

    /// Bytes one stored vector of `dimensions` takes.
    pub fn stored_len(self, dimensions: usize) -> usize {
        if self.is_binary() {
            dimensions.div_ceil(32) * 4
        } else {
            4 + 4 * dimensions
        }
    }
}

/// A metric as a type, so the hot loops are monomorphised per metric.
pub trait Distance: Copy + Send + Sync + 'static {
    const KIND: MetricKind;

    /// Writes the stored form of `vector` (already validated: finite, right length) to `out`.
    fn encode(vector: &[f32], out: &mut Vec<u8>) {
        encode_float(vector, Self::KIND == MetricKind::Cosine, out)
    }

    /// The internal distance between two stored vectors: it orders like the user-facing one and
    /// is cheaper (euclidean stays squared, binary metrics count bits).
    fn distance(a: &[u8], b: &[u8]) -> f32;

    /// `distance(query, b)` for the stored-form query `query` was made from: float metrics take
    /// the query's components and norm from `query` instead of decoding them at every call.
    #[inline]
    fn distance_to(query: &Query<'_>, b: &[u8]) -> f32 {
        Self::distance(query.bytes, b)
    }

    /// Turns an internal distance into the one the API reports.
    fn finalize(internal: f32, _dimensions: usize) -> f32 {
        internal
    }
}

/// A stored-form query decoded once for a search level: its bytes and, read as a float vector,
/// its components (when 4-byte aligned) and norm. Binary metrics use the bytes only (the float
/// reading of their bits means nothing).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    bytes: &'a [u8],
    floats: Option<&'a [f32]>,
    norm: f32,
}

impl<'a> Query<'a> {
    pub fn new(bytes: &'a [u8]) -> Query<'a> {
        Query {
            bytes,
            floats: float_body(bytes),
            norm: float_norm(bytes),
        }
    }
}

/// Stored float vector → its components (borrowed when the bytes are 4-byte aligned).
pub fn float_components(stored: &[u8]) -> Cow<'_, [f32]> {
    match float_body(stored) {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(
            stored
                .get(4..)
                .unwrap_or(&[])
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    }
}

#[inline(always)]
fn float_norm(stored: &[u8]) -> f32 {
    match stored.get(..4) {
        Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0.0,
    }
}

fn encode_float(vector: &[f32], with_norm: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(4 + vector.len() * 4);
    let norm = if with_norm {
        kernels::dot(vector, vector).sqrt()
    } else {
        0.0
    };
    out.extend_from_slice(&norm.to_le_bytes());
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Packs one bit per dimension: bit i of byte i / 8 is set when `is_one(component)`.
fn encode_bits(vector: &[f32], is_one: impl Fn(f32) -> bool, out: &mut Vec<u8>) {
    out.clear();
    out.resize(vector.len().div_ceil(32) * 4, 0);
    for (i, &x) in vector.iter().enumerate() {
        if is_one(x) {
            out[i / 8] |= 1 << (i % 8);
        }
    }
}

/// Decodes a stored vector back to floats, as `getVector` returns it.
pub fn decode(kind: MetricKind, stored: &[u8], dimensions: usize) -> Vec<f32> {
    if kind.is_binary() {
        let (one, zero) = if kind == MetricKind::Hamming {
            (1.0, 0.0)
        } else {
            (1.0, -1.0)
        };
        (0..dimensions)
            .map(|i| match stored.get(i / 8) {
                Some(byte) if byte & (1 << (i % 8)) != 0 => one,
                _ => zero,
            })
            .collect()
    } else {
        float_components(stored).into_owned()
    }
}

/// Runs `f` on the components of two stored float vectors. Stored vectors are 4-byte aligned
/// in practice (LMDB keeps them so, and queries are encoded into fresh allocations), so the hot
/// path borrows both; anything else is copied first, out of line.
#[inline(always)]
fn with_floats<R>(a: &[u8], b: &[u8], f: impl FnOnce(&[f32], &[f32]) -> R) -> R {
    match (float_body(a), float_body(b)) {
        (Some(x), Some(y)) => f(x, y),
        _ => with_copies(a, b, f),
    }
}

/// The components of a stored float vector when its bytes are 4-byte aligned.
#[inline(always)]
fn float_body(stored: &[u8]) -> Option<&[f32]> {
    bytemuck::try_cast_slice::<u8, f32>(stored.get(4..).unwrap_or(&[])).ok()
}

/// `f` on the query's components and those of the stored vector `b` when both are borrowed
/// in place; `D::distance` on the bytes otherwise.
#[inline(always)]
fn with_query_floats<D: Distance>(
    query: &Query<'_>,
    b: &[u8],
    f: impl FnOnce(&[f32], &[f32]) -> f32,
) -> f32 {
    match (query.floats, float_body(b)) {
        (Some(x), Some(y)) => f(x, y),
        _ => D::distance(query.bytes, b),
    }
}

#[cold]
#[inline(never)]
fn with_copies<R>(a: &[u8], b: &[u8], f: impl FnOnce(&[f32], &[f32]) -> R) -> R {
    f(&float_components(a), &float_components(b))
}

#[derive(Debug, Clone, Copy)]
pub struct Euclidean;
#[derive(Debug, Clone, Copy)]
pub struct Cosine;
#[derive(Debug, Clone, Copy)]
pub struct Manhattan;
#[derive(Debug, Clone, Copy)]
pub struct Hamming;
#[derive(Debug, Clone, Copy)]
pub struct BqEuclidean;
#[derive(Debug, Clone, Copy)]
pub struct BqCosine;
#[derive(Debug, Clone, Copy)]
pub struct BqManhattan;

impl Distance for Euclidean {
    const KIND: MetricKind = MetricKind::Euclidean;
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        with_floats(a, b, kernels::l2_squared)
    }
    #[inline]
    fn distance_to(query: &Query<'_>, b: &[u8]) -> f32 {
        with_query_floats::<Self>(query, b, kernels::l2_squared)
    }
    fn finalize(internal: f32, _: usize) -> f32 {
        internal.max(0.0).sqrt()
    }
}

impl Distance for Cosine {
    const KIND: MetricKind = MetricKind::Cosine;
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        cosine(float_norm(a), float_norm(b), || {
            with_floats(a, b, kernels::dot)
        })
    }
    #[inline]
    fn distance_to(query: &Query<'_>, b: &[u8]) -> f32 {
        with_query_floats::<Self>(query, b, |x, y| {
            cosine(query.norm, float_norm(b), || kernels::dot(x, y))
        })
    }
}

/// Cosine distance from the two norms and the dot product (computed only when both norms are
/// non-zero).
#[inline(always)]
fn cosine(na: f32, nb: f32, dot: impl FnOnce() -> f32) -> f32 {
    if na == 0.0 || nb == 0.0 {
        // A zero vector has no direction: it is at distance 0 from another zero vector and
        // at distance 1 (orthogonal) from everything else, never NaN.
        return if na == nb { 0.0 } else { 1.0 };
    }
    let d = 1.0 - dot() / (na * nb);
    // A vector and its copy (or a multiple of it) are at distance 0, which rounding in the dot
    // product and the norms misses by a few ulps of 1.
    if d <= 4.0 * f32::EPSILON {
        0.0
    } else {
        d.min(2.0)
    }
}

impl Distance for Manhattan {
    const KIND: MetricKind = MetricKind::Manhattan;
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        with_floats(a, b, kernels::l1)
    }
    #[inline]
    fn distance_to(query: &Query<'_>, b: &[u8]) -> f32 {
        with_query_floats::<Self>(query, b, kernels::l1)
    }
}

impl Distance for Hamming {
    const KIND: MetricKind = MetricKind::Hamming;
    fn encode(vector: &[f32], out: &mut Vec<u8>) {
        encode_bits(vector, |x| x != 0.0, out)
    }
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        kernels::hamming(a, b) as f32
    }
}

/// Binary quantization: a component is +1 when positive and −1 otherwise; `h` differing bits
/// between two such vectors give a squared euclidean distance of 4h, an L1 distance of 2h and a
/// cosine similarity of (d − 2h) / d.
impl Distance for BqEuclidean {
    const KIND: MetricKind = MetricKind::BqEuclidean;
    fn encode(vector: &[f32], out: &mut Vec<u8>) {
        encode_bits(vector, |x| x > 0.0, out)
    }
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        kernels::hamming(a, b) as f32
    }
    fn finalize(internal: f32, _: usize) -> f32 {
        2.0 * internal.sqrt()
    }
}

impl Distance for BqCosine {
    const KIND: MetricKind = MetricKind::BqCosine;
    fn encode(vector: &[f32], out: &mut Vec<u8>) {
        encode_bits(vector, |x| x > 0.0, out)
    }
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        kernels::hamming(a, b) as f32
    }
    fn finalize(internal: f32, dimensions: usize) -> f32 {
        2.0 * internal / dimensions.max(1) as f32
    }
}

impl Distance for BqManhattan {
    const KIND: MetricKind = MetricKind::BqManhattan;
    fn encode(vector: &[f32], out: &mut Vec<u8>) {
        encode_bits(vector, |x| x > 0.0, out)
    }
    #[inline]
    fn distance(a: &[u8], b: &[u8]) -> f32 {
        kernels::hamming(a, b) as f32
    }
    fn finalize(internal: f32, _: usize) -> f32 {
        2.0 * internal
    }
}

/// Runs `$body` with `$D` bound to the distance type of `$kind`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_metric {
    ($kind:expr, $D:ident => $body:expr) => {
        match $kind {
            $crate::MetricKind::Euclidean => {
                type $D = $crate::metric::Euclidean;
                $body
            }
            $crate::MetricKind::Cosine => {
                type $D = $crate::metric::Cosine;
                $body
            }
            $crate::MetricKind::Manhattan => {
                type $D = $crate::metric::Manhattan;
                $body
            }
            $crate::MetricKind::Hamming => {
                type $D = $crate::metric::Hamming;
                $body
            }
            $crate::MetricKind::BqEuclidean => {
                type $D = $crate::metric::BqEuclidean;
                $body
            }
            $crate::MetricKind::BqCosine => {
                type $D = $crate::metric::BqCosine;
                $body
            }
            $crate::MetricKind::BqManhattan => {
                type $D = $crate::metric::BqManhattan;
                $body
            }
        }
    };
}
