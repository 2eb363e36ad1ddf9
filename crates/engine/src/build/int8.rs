//! Unit vectors in 8 bits for the build of an unquantized cosine index.
//!
//! A build spends most of its time waiting for vectors to arrive from memory: inserting a node
//! scores a few thousand others, each a random read of a whole value. The graph only needs
//! those scores to rank neighbours, and a unit vector rounded to 8 bits per component (with
//! its own scale) ranks them about as well as full precision does (recall within the half
//! point one build differs from the next by, on GloVe and the 384-d benchmark set), in a
//! quarter of the bytes. So a
//! cosine build walks such copies (`values::Packing::Int8`), and the index still stores, and
//! searches, the full vectors. Cosine only: its unit vectors are bounded, so one scale per
//! vector keeps every component to within 1/254 of the largest; euclidean and manhattan
//! distances depend on the norms as well.

use std::borrow::Cow;

use crate::kernels;
use crate::metric::{float_components, Cosine, Distance};
use crate::space::{Scorer, Space};

/// The largest code: components lie in −127 ..= 127, symmetric about 0 (a vector and its
/// opposite code as opposites).
const TOP: f32 = 127.0;

/// Bytes in front of the codes: the scale (an `f32`, little-endian).
const HEAD: usize = 4;

/// The most dimensions the codes serve: their integer dot product is exact in `i32` below
/// 2^17 components (`kernels::dot_i8`); larger vectors are copied as they are stored.
pub(super) const MAX_DIMENSIONS: usize = 1 << 16;

/// Node values: the scale `s`, then one `i8` code `c` per component (unit component ≈ `s · c`,
/// `s` = 1 / |c| so that the copy is a unit vector too), padded with zeros to a multiple of 4; a
/// zero vector has scale 0 and zero codes.
pub(super) struct Int8Cosine;

/// Bytes of a node value of `dimensions` components.
pub(super) fn value_len(dimensions: usize) -> usize {
    HEAD + dimensions.next_multiple_of(4)
}

/// Writes the unit vector of `stored` (a cosine index's stored form: norm, then components)
/// into `out` (`value_len` bytes) as a scale and codes.
pub(super) fn encode(stored: &[u8], out: &mut [u8]) {
    out.fill(0);
    let components = float_components(stored);
    let norm = stored
        .get(..4)
        .map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let largest = components.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if !(norm > 0.0 && largest > 0.0 && largest.is_finite()) {
        return; // a zero vector: scale 0
    }
    let Some((head, codes)) = out.split_at_mut_checked(HEAD) else {
        return;
    };
    // Component x as code round(x / largest · TOP): the largest at ±TOP. The scale comes from
    // the codes themselves (not from the stored norm, which may have overflowed to infinity).
    let to_code = TOP / largest;
    let mut squares = 0.0f64;
    for (code, &x) in codes.iter_mut().zip(components.iter()) {
        let c = (x * to_code).round().clamp(-TOP, TOP);
        squares += f64::from(c) * f64::from(c);
        *code = c as i8 as u8;
    }
    // At least the largest component codes as ±TOP, so `squares` ≥ TOP².
    let scale = (1.0 / squares.sqrt()) as f32;
    head.copy_from_slice(&scale.to_le_bytes());
}

/// The scale and codes of a node value; anything shorter than the scale reads as a zero vector.
#[inline(always)]
fn parts(value: &[u8]) -> (f32, &[i8]) {
    match value.split_first_chunk::<HEAD>() {
        Some((head, codes)) => (f32::from_le_bytes(*head), bytemuck::cast_slice(codes)),
        None => (0.0, &[]),
    }
}

/// Cosine distance of two coded unit vectors. Two zero vectors are at 0 from each other (and 1
/// from everything else), as in the stored metric. Rounding leaves a copy of a vector a little
/// off 0 from it, like two very near vectors: the graph ranks them the same.
#[inline(always)]
fn distance(a: &[u8], b: &[u8]) -> f32 {
    let ((sa, ca), (sb, cb)) = (parts(a), parts(b));
    if sa == 0.0 && sb == 0.0 {
        return 0.0;
    }
    let dot = kernels::dot_i8(ca, cb) as f32 * sa * sb;
    (1.0 - dot).clamp(0.0, 2.0)
}

pub(super) struct Int8Scorer<'a> {
    query: Cow<'a, [u8]>,
}

impl Scorer for Int8Scorer<'_> {
    #[inline]
    fn score(&self, value: &[u8]) -> f32 {
        distance(&self.query, value)
    }
}

impl Space for Int8Cosine {
    type Scorer<'a> = Int8Scorer<'a>;

    fn value_scorer<'a>(&'a self, value: &'a [u8]) -> Int8Scorer<'a> {
        Int8Scorer {
            query: Cow::Borrowed(value),
        }
    }

    fn vector_scorer<'a>(&'a self, stored: &'a [u8]) -> Int8Scorer<'a> {
        let dimensions = stored.len().saturating_sub(4) / 4;
        let mut query = vec![0u8; value_len(dimensions)];
        encode(stored, &mut query);
        Int8Scorer {
            query: Cow::Owned(query),
        }
    }

    #[inline]
    fn pair(&self, a: &[u8], b: &[u8]) -> f32 {
        distance(a, b)
    }

    const CODED: bool = false;

    fn finalize(&self, internal: f32, dimensions: usize) -> f32 {
        Cosine::finalize(internal, dimensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(vector: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        Cosine::encode(vector, &mut out);
        out
    }

    fn value(vector: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; value_len(vector.len())];
        encode(&stored(vector), &mut out);
        out
    }

    /// Uniform in [-0.5, 0.5), deterministic from `seed`.
    fn uniform(mut seed: u64) -> impl FnMut() -> f32 {
        move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    fn random_vectors() -> Vec<Vec<f32>> {
        let mut next = uniform(7);
        (0..30)
            .map(|i| (0..[384, 50, 3][i % 3]).map(|_| next() * 3.0).collect())
            .collect()
    }

    #[test]
    fn coded_distances_are_within_a_hundredth_of_the_full_ones() {
        let vectors = random_vectors();
        let space = Int8Cosine;
        let mut worst: f32 = 0.0;
        for a in &vectors {
            let (sa, va) = (stored(a), value(a));
            assert_eq!(va.len(), value_len(a.len()));
            let scorer = space.vector_scorer(&sa);
            for b in vectors.iter().filter(|b| b.len() == a.len()) {
                let (sb, vb) = (stored(b), value(b));
                let full = Cosine::distance(&sa, &sb);
                let pair = space.pair(&va, &vb);
                let scored = scorer.score(&vb);
                assert!((pair - full).abs() < 1e-2, "pair {pair} vs {full}");
                assert_eq!(pair, scored, "the query's own code scores as the pair does");
                worst = worst.max((pair - full).abs());
            }
        }
        assert!(
            worst > 0.0,
            "rounding shows: the test compares codes, not the floats"
        );
    }

    #[test]
    fn coded_distances_rank_neighbours_as_the_full_ones_do() {
        // 1,000 base vectors of 384 dimensions in 20 tight clusters (neighbours at nearly equal
        // distances, where rounding matters most): the 10 nearest by coded distance are, on
        // average over 20 queries, at least 9 of the 10 nearest by the full ones.
        let mut next = uniform(11);
        let centers: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..384).map(|_| next()).collect())
            .collect();
        let mut near = |c: &[f32]| -> Vec<f32> { c.iter().map(|&x| x + next() * 0.3).collect() };
        let base: Vec<Vec<f32>> = (0..1000).map(|i| near(&centers[i % 20])).collect();
        let queries: Vec<Vec<f32>> = (0..20).map(|i| near(&centers[i])).collect();
        let space = Int8Cosine;
        let coded: Vec<Vec<u8>> = base.iter().map(|v| value(v)).collect();
        let stored_base: Vec<Vec<u8>> = base.iter().map(|v| stored(v)).collect();
        let top10 = |d: &dyn Fn(usize) -> f32| {
            let mut order: Vec<usize> = (0..base.len()).collect();
            order.sort_by(|&i, &j| d(i).total_cmp(&d(j)));
            order.truncate(10);
            order
        };
        let mut shared = 0;
        for query in &queries {
            let (sq, cq) = (stored(query), value(query));
            let full = top10(&|i| Cosine::distance(&sq, &stored_base[i]));
            let code = top10(&|i| space.pair(&cq, &coded[i]));
            shared += code.iter().filter(|i| full.contains(i)).count();
        }
        let overlap = shared as f64 / (10 * queries.len()) as f64;
        assert!(overlap >= 0.9, "top-10 overlap {overlap}");
    }

    #[test]
    fn a_zero_vector_is_orthogonal_to_everything_but_zero_vectors() {
        let zero = value(&[0.0; 16]);
        let other = value(&[1.0; 16]);
        let space = Int8Cosine;
        assert_eq!(zero, vec![0u8; value_len(16)]);
        assert_eq!(
            value_len(5),
            12,
            "codes padded to a multiple of 4, after the scale"
        );
        assert_eq!(space.pair(&zero, &other), 1.0);
        assert_eq!(space.pair(&zero, &value(&[0.0; 16])), 0.0);
        assert_eq!(
            Cosine::distance(&stored(&[0.0; 16]), &stored(&[0.0; 16])),
            0.0
        );
        // A vector at 0 from itself, within rounding.
        assert!(space.pair(&other, &other) < 1e-4);
        // Opposite vectors at 2.
        assert!((space.pair(&other, &value(&[-1.0; 16])) - 2.0).abs() < 1e-4);
    }
}
