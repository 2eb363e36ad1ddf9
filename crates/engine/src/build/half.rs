//! Half precision for the build of an unquantized cosine index.
//!
//! A build spends most of its time waiting for vectors to arrive from memory: inserting a node
//! scores a few thousand others, each a random read of the whole vector. The graph only needs
//! those scores to rank neighbours, and half precision (11 significant bits) ranks them as
//! well as full precision does, in half the bytes. So a cosine build walks unit vectors copied
//! to half precision (`values::Arena::half`), and the index still stores, and searches, the
//! full vectors. Cosine only: its unit vectors have components in [−1, 1], which half
//! precision holds to within 2^-12; euclidean and manhattan vectors have no such bound.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::kernels;
use crate::metric::{float_components, Cosine, Distance};
use crate::space::{Scorer, Space};

/// Node values are the unit vectors in half precision, padded with zeros to a multiple of 8
/// components (the kernel's width: no tail to finish one at a time), a zero vector as zeros.
pub(super) struct HalfCosine;

/// Bytes of a node value of `dimensions` components.
pub(super) fn value_len(dimensions: usize) -> usize {
    2 * dimensions.next_multiple_of(8)
}

/// Writes the unit vector of `stored` (a cosine index's stored form: norm, then components)
/// into `out` in half precision, zeros past its components.
pub(super) fn encode(stored: &[u8], out: &mut [u16]) {
    SCRATCH.with(|scratch| encode_with(stored, &mut scratch.borrow_mut(), out))
}

thread_local! {
    /// The floats of a vector on their way to half precision.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn encode_with(stored: &[u8], scratch: &mut Vec<f32>, out: &mut [u16]) {
    scratch.clear();
    scratch.extend_from_slice(&float_components(stored));
    let norm = stored
        .get(..4)
        .map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if norm > 0.0 {
        let inverse = 1.0 / norm;
        for x in scratch.iter_mut() {
            *x *= inverse;
        }
    } else {
        scratch.fill(0.0);
    }
    scratch.resize(out.len(), 0.0);
    kernels::to_f16(scratch, out);
}

/// The halves of a node value. Values come from the build's own copy, which keeps them
/// aligned; anything else reads as no components (a distance of 1).
#[inline(always)]
fn halves(value: &[u8]) -> &[u16] {
    let halves = bytemuck::try_cast_slice(value);
    debug_assert!(halves.is_ok(), "a half-precision value off its alignment");
    halves.unwrap_or(&[])
}

/// Cosine distance of two unit vectors from their dot product. Rounding to half precision
/// leaves a copy of a vector a few thousandths from it rather than at 0, like two very near
/// vectors: the graph ranks them the same. Two zero vectors are at 0 from each other (and 1
/// from everything else), as in the stored metric.
#[inline(always)]
fn distance(a: &[u16], b: &[u16]) -> f32 {
    let dot = kernels::dot_f16(a, b);
    if dot == 0.0 && is_zero(a) && is_zero(b) {
        return 0.0;
    }
    (1.0 - dot).clamp(0.0, 2.0)
}

/// Whether every component is +0 or −0.
#[cold]
fn is_zero(halves: &[u16]) -> bool {
    halves.iter().all(|&h| h & 0x7fff == 0)
}

pub(super) struct HalfScorer<'a> {
    query: Cow<'a, [u16]>,
}

impl Scorer for HalfScorer<'_> {
    #[inline]
    fn score(&self, value: &[u8]) -> f32 {
        distance(&self.query, halves(value))
    }
}

impl Space for HalfCosine {
    type Scorer<'a> = HalfScorer<'a>;

    fn value_scorer<'a>(&'a self, value: &'a [u8]) -> HalfScorer<'a> {
        HalfScorer {
            query: Cow::Borrowed(halves(value)),
        }
    }

    fn vector_scorer<'a>(&'a self, stored: &'a [u8]) -> HalfScorer<'a> {
        let dimensions = stored.len().saturating_sub(4) / 4;
        let mut query = vec![0u16; value_len(dimensions) / 2];
        encode(stored, &mut query);
        HalfScorer {
            query: Cow::Owned(query),
        }
    }

    #[inline]
    fn pair(&self, a: &[u8], b: &[u8]) -> f32 {
        distance(halves(a), halves(b))
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

    fn value(vector: &[f32]) -> Vec<u16> {
        let mut out = vec![0u16; value_len(vector.len()) / 2];
        encode(&stored(vector), &mut out);
        out
    }

    #[test]
    fn half_distances_are_within_a_thousandth_of_the_full_ones() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let vectors: Vec<Vec<f32>> = (0..20)
            .map(|i| (0..[384, 50, 3][i % 3]).map(|_| next() * 3.0).collect())
            .collect();
        let space = HalfCosine;
        for a in &vectors {
            let (sa, ha) = (stored(a), value(a));
            assert_eq!(ha.len() % 8, 0);
            let scorer = space.vector_scorer(&sa);
            for b in vectors.iter().filter(|b| b.len() == a.len()) {
                let (sb, hb) = (stored(b), value(b));
                let full = Cosine::distance(&sa, &sb);
                let pair = space.pair(bytemuck::cast_slice(&ha), bytemuck::cast_slice(&hb));
                let scored = scorer.score(bytemuck::cast_slice(&hb));
                assert!((pair - full).abs() < 1e-3, "pair {pair} vs {full}");
                assert!((scored - full).abs() < 1e-3, "scored {scored} vs {full}");
            }
        }
    }

    #[test]
    fn a_zero_vector_is_orthogonal_to_everything_but_zero_vectors() {
        let zero = value(&[0.0; 16]);
        let other = value(&[1.0; 16]);
        let space = HalfCosine;
        assert_eq!(zero, vec![0u16; 16]);
        assert_eq!(value(&[1.0; 5]).len(), 8, "padded to 8 components");
        let d = space.pair(bytemuck::cast_slice(&zero), bytemuck::cast_slice(&other));
        assert_eq!(d, 1.0);
        let twin = value(&[0.0; 16]);
        let d = space.pair(bytemuck::cast_slice(&zero), bytemuck::cast_slice(&twin));
        assert_eq!(d, 0.0, "two zero vectors are at 0, as in the stored metric");
        assert_eq!(
            Cosine::distance(&stored(&[0.0; 16]), &stored(&[0.0; 16])),
            0.0
        );
    }
}
