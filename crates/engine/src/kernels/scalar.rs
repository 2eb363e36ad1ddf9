//! Portable kernels, used directly on architectures without a SIMD path, as
//! the fallback on x86-64 CPUs without AVX2/FMA, and for the short tails of the
//! SIMD kernels.
//!
//! The `f32` loops keep 8 independent accumulators (one per lane) so that the
//! compiler can keep them in vector registers without reassociating floating
//! point additions.

/// Number of independent accumulators of the `f32` kernels.
const LANES: usize = 8;

/// Dot product of two equal-length `f32` slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "scalar::dot: length mismatch");
    let (a, b) = same_len(a, b);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = dot_tail(ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    reduce(acc) + tail
}

/// Squared euclidean distance between two equal-length `f32` slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "scalar::l2_squared: length mismatch");
    let (a, b) = same_len(a, b);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = l2_tail(ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *s += d * d;
        }
    }
    reduce(acc) + tail
}

/// Manhattan (L1) distance between two equal-length `f32` slices.
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "scalar::l1: length mismatch");
    let (a, b) = same_len(a, b);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = l1_tail(ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += (x - y).abs();
        }
    }
    reduce(acc) + tail
}

/// Number of differing bits between two equal-length byte slices.
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    debug_assert_eq!(a.len(), b.len(), "scalar::hamming: length mismatch");
    hamming_words(a, b)
}

/// Body of [`hamming`]: 64-bit popcounts of unaligned words, four
/// independent counters per 32-byte block.
///
/// `inline(always)` so that the x86 `popcnt` kernel can compile this same
/// body with the `popcnt` target feature enabled.
#[inline(always)]
pub(super) fn hamming_words(a: &[u8], b: &[u8]) -> u32 {
    let (a, b) = same_len(a, b);
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0u32; 4];
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x.chunks_exact(8)).zip(y.chunks_exact(8)) {
            *s += (load_u64(x) ^ load_u64(y)).count_ones();
        }
    }
    let mut total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let (wa, wb) = (ra.chunks_exact(8), rb.chunks_exact(8));
    let (ta, tb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        total += (load_u64(x) ^ load_u64(y)).count_ones();
    }
    for (x, y) in ta.iter().zip(tb) {
        total += (x ^ y).count_ones();
    }
    total
}

/// Reads up to 8 bytes as a native-endian `u64` (missing bytes are zero).
/// Called with exactly 8 bytes, it compiles to one unaligned load.
#[inline(always)]
fn load_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_ne_bytes(word)
}

/// Both slices cut to the shorter length.
#[inline(always)]
pub(super) fn same_len<'a, 'b, T>(a: &'a [T], b: &'b [T]) -> (&'a [T], &'b [T]) {
    let n = a.len().min(b.len());
    (&a[..n], &b[..n])
}

#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Plain dot product, for short tails of the vector kernels.
#[inline(always)]
pub(super) fn dot_tail(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Plain squared euclidean distance, for short tails.
#[inline(always)]
pub(super) fn l2_tail(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x - y;
            d * d
        })
        .sum()
}

/// Plain L1 distance, for short tails.
#[inline(always)]
pub(super) fn l1_tail(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Squared euclidean distance between a float query `a` and a scalar-quantized
/// code `c` with per-dimension scales `s`: `Σ (a[i] - s[i] * c[i])²`.
#[inline]
pub fn u8_l2_affine(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    debug_assert!(
        a.len() == s.len() && a.len() == c.len(),
        "scalar::u8_l2_affine: length mismatch"
    );
    let n = a.len().min(s.len()).min(c.len());
    let (a, s, c) = (&a[..n], &s[..n], &c[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cs, cc) = (
        a.chunks_exact(LANES),
        s.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    let tail = u8_l2_affine_tail(ca.remainder(), cs.remainder(), cc.remainder());
    for ((a, s), c) in ca.zip(cs).zip(cc) {
        for (((acc, &a), &s), &c) in acc.iter_mut().zip(a).zip(s).zip(c) {
            let d = a - s * f32::from(c);
            *acc += d * d;
        }
    }
    reduce(acc) + tail
}

/// Weighted squared euclidean distance between two byte codes:
/// `Σ w[i] * (x[i] - y[i])²`.
#[inline]
pub fn u8_l2_weighted(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    debug_assert!(
        w.len() == x.len() && w.len() == y.len(),
        "scalar::u8_l2_weighted: length mismatch"
    );
    let n = w.len().min(x.len()).min(y.len());
    let (w, x, y) = (&w[..n], &x[..n], &y[..n]);
    let mut acc = [0.0f32; LANES];
    let (cw, cx, cy) = (
        w.chunks_exact(LANES),
        x.chunks_exact(LANES),
        y.chunks_exact(LANES),
    );
    let tail = u8_l2_weighted_tail(cw.remainder(), cx.remainder(), cy.remainder());
    for ((w, x), y) in cw.zip(cx).zip(cy) {
        for (((acc, &w), &x), &y) in acc.iter_mut().zip(w).zip(x).zip(y) {
            let d = f32::from(x) - f32::from(y);
            *acc += w * (d * d);
        }
    }
    reduce(acc) + tail
}

/// Dot product of a binary code with a `B`-bit query stored as `B` bit planes
/// of `code.len()` bytes each (plane 0 least significant):
/// `Σ_j 2^j * popcount(code & plane_j)`, wrapping modulo 2³².
#[inline]
pub fn bit_planes_dot(code: &[u8], planes: &[u8]) -> u32 {
    debug_assert!(
        planes.len().is_multiple_of(code.len()),
        "scalar::bit_planes_dot: planes.len() must be a multiple of code.len()"
    );
    let n = code.len();
    if n == 0 {
        return 0;
    }
    bit_planes_words(code, planes, n, planes.len() / n)
}

/// Number of set bits in a byte slice.
#[inline]
pub fn popcount(bytes: &[u8]) -> u32 {
    popcount_words(bytes)
}

/// In-place unnormalised fast Walsh–Hadamard transform. `x.len()` must be a
/// power of two; otherwise (in release builds) the largest power-of-two
/// prefix is transformed and the rest left alone.
#[inline]
pub fn fwht(x: &mut [f32]) {
    debug_assert!(
        x.is_empty() || x.len().is_power_of_two(),
        "scalar::fwht: length {} is not a power of two",
        x.len()
    );
    fwht_pow2(pow2_prefix(x));
}

/// Body of [`popcount`]: 64-bit popcounts of unaligned words, four
/// independent counters per 32-byte block (as [`hamming_words`]).
#[inline(always)]
pub(super) fn popcount_words(a: &[u8]) -> u32 {
    let ca = a.chunks_exact(32);
    let ra = ca.remainder();
    let mut acc = [0u32; 4];
    for x in ca {
        for (s, x) in acc.iter_mut().zip(x.chunks_exact(8)) {
            *s += load_u64(x).count_ones();
        }
    }
    let mut total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let wa = ra.chunks_exact(8);
    let ta = wa.remainder();
    for x in wa {
        total += load_u64(x).count_ones();
    }
    for x in ta {
        total += x.count_ones();
    }
    total
}

/// `popcount(a & b)` of two equal-length byte slices, as [`hamming_words`].
#[inline(always)]
fn and_popcount_words(a: &[u8], b: &[u8]) -> u32 {
    let (a, b) = same_len(a, b);
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0u32; 4];
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x.chunks_exact(8)).zip(y.chunks_exact(8)) {
            *s += (load_u64(x) & load_u64(y)).count_ones();
        }
    }
    let mut total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let (wa, wb) = (ra.chunks_exact(8), rb.chunks_exact(8));
    let (ta, tb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        total += (load_u64(x) & load_u64(y)).count_ones();
    }
    for (x, y) in ta.iter().zip(tb) {
        total += (x & y).count_ones();
    }
    total
}

/// Body of [`bit_planes_dot`], also the tail of the SIMD kernels:
/// `Σ_{j < b} 2^j * popcount(code & planes[j * stride..][..code.len()])`,
/// wrapping modulo 2³² (Horner's rule from the most significant plane).
///
/// Planes that would end past `planes.len()` are skipped (callers never pass
/// any: `planes.len() >= (b - 1) * stride + code.len()`).
///
/// `inline(always)` so that the x86 `popcnt` kernel can compile this same
/// body with the `popcnt` target feature enabled.
#[inline(always)]
pub(super) fn bit_planes_words(code: &[u8], planes: &[u8], stride: usize, b: usize) -> u32 {
    let mut total = 0u32;
    for j in (0..b).rev() {
        let count = match planes.get(j * stride..j * stride + code.len()) {
            Some(plane) => and_popcount_words(code, plane),
            None => 0,
        };
        total = total.wrapping_mul(2).wrapping_add(count);
    }
    total
}

/// The longest prefix of `x` whose length is a power of two (empty if `x` is).
#[inline(always)]
pub(super) fn pow2_prefix(x: &mut [f32]) -> &mut [f32] {
    let n = match x.len() {
        0 => 0,
        len => 1 << (usize::BITS - 1 - len.leading_zeros()),
    };
    &mut x[..n]
}

/// Body of [`fwht`] on a slice whose length is a power of two: the
/// butterfly stages `h = 1, 2, 4, …, x.len() / 2` in place, each pair
/// becoming `(u + v, u - v)`. The SIMD kernels use it for short slices.
#[inline(always)]
pub(super) fn fwht_pow2(x: &mut [f32]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for block in x.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi) {
                let (u, v) = (*a, *b);
                *a = u + v;
                *b = u - v;
            }
        }
        h *= 2;
    }
}

/// Plain affine-code squared distance, for short tails.
#[inline(always)]
pub(super) fn u8_l2_affine_tail(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    a.iter()
        .zip(s)
        .zip(c)
        .map(|((&a, &s), &c)| {
            let d = a - s * f32::from(c);
            d * d
        })
        .sum()
}

/// Plain weighted code distance, for short tails.
#[inline(always)]
pub(super) fn u8_l2_weighted_tail(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    w.iter()
        .zip(x)
        .zip(y)
        .map(|((&w, &x), &y)| {
            let d = f32::from(x) - f32::from(y);
            w * (d * d)
        })
        .sum()
}

/// Dot product of two `i8` slices, exact in `i32` (for fewer than 2^17 elements).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = [0i32; LANES];
    for (i, (&x, &y)) in a[..n].iter().zip(&b[..n]).enumerate() {
        acc[i % LANES] += i32::from(x) * i32::from(y);
    }
    acc.iter().sum()
}
