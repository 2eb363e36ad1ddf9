//! Distance kernels used by the HNSW engine in its hot loops.
//!
//! Written here rather than taken from simsimd: measured against it in `crates/kernel-bench`
//! (see its README), these are as fast or faster for every `f32` metric at 50 to 1536
//! dimensions, and hamming is level with simsimd's on AVX-512 CPUs (faster on short codes).
//!
//! Besides the `f32` distances and hamming, the kernels of the quantized
//! codes: [`u8_l2_affine`] and [`u8_l2_weighted`] (one byte per dimension),
//! [`bit_planes_dot`] and [`popcount`] (binary codes against a few-bit
//! query), the [`fwht`] that rotates vectors before they are coded, and the
//! [`dot_i8`] of the build's 8-bit copies of unit vectors.
//!
//! Every public function dispatches to the fastest implementation the running
//! CPU supports:
//!
//! * **x86-64**: AVX2 + FMA for the `f32` kernels, the byte-code distances
//!   and the Walsh–Hadamard transform, chosen at run time with
//!   `is_x86_feature_detected!`. The detection runs once and is cached in an
//!   [`AtomicU8`](std::sync::atomic::AtomicU8); afterwards each call costs one
//!   relaxed load and a well-predicted branch in front of a direct call.
//!   `dot_i8` widens 16 bytes at a time to 16-bit lanes (AVX2; 32 with AVX-512 BW).
//!   `hamming` and `popcount` use hardware `popcnt` on unaligned 64-bit
//!   words and, for long slices, an AVX2 nibble-lookup popcount;
//!   `bit_planes_dot` uses the nibble lookup from 16 bytes on. On CPUs with
//!   AVX-512 (F, BW, VL) the `f32` distances and the byte-code distances run
//!   16 lanes wide (`avx512.rs`), and with VPOPCNTDQ `hamming`
//!   and `popcount` count 64 bytes at a time from 16 bytes on.
//! * **aarch64**: NEON, which every aarch64 target with the `neon` target
//!   feature (all the usual ones) guarantees, so no run-time check is needed.
//!   `dot_i8` is the portable one there ([`has_fast_i8`] says so, and
//!   builds then keep full precision).
//! * **anything else**: the portable [`scalar`] kernels, written with separate
//!   lane accumulators so the compiler can auto-vectorise them.
//!
//! Callers must pass slices of the documented lengths (equal lengths for the
//! distances). This is checked with `debug_assert!`; in release builds the
//! kernels use the shortest length (and whole bit planes, a power-of-two
//! prefix for the transform) and never read out of bounds.
//!
//! The code is split by instruction set: the public dispatching functions
//! here, the portable reference in [`scalar`], the x86-64 kernels in
//! `x86.rs` (AVX2) and `avx512.rs`, the NEON ones in `neon.rs` and the tests that compare every
//! SIMD kernel with the scalar one in `tests.rs`.

/// Dot product of two equal-length `f32` slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::dot: length mismatch");
    arch::dot(a, b)
}

/// Squared euclidean distance between two equal-length `f32` slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::l2_squared: length mismatch");
    arch::l2_squared(a, b)
}

/// Manhattan (L1) distance between two equal-length `f32` slices.
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::l1: length mismatch");
    arch::l1(a, b)
}

/// Dot product of two equal-length `i8` slices, exact in `i32` (for fewer than 2^17 elements).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::dot_i8: length mismatch");
    arch::dot_i8(a, b)
}

/// Whether [`dot_i8`] runs on SIMD (x86-64 with AVX2) rather than the portable code.
#[inline]
pub fn has_fast_i8() -> bool {
    arch::has_fast_i8()
}

/// Number of differing bits between two equal-length byte slices (packed bit
/// vectors).
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::hamming: length mismatch");
    arch::hamming(a, b)
}

/// Squared euclidean distance between a float query and a code quantized per
/// dimension to one byte: `Σ_i (a[i] - s[i] * c[i])²`, where `s[i]` is the
/// scale of dimension `i` (any offset folded into the query beforehand).
///
/// `a`, `s` and `c` must have the same length `d` (checked with
/// `debug_assert!`; in release builds the shortest length is used).
#[inline]
pub fn u8_l2_affine(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    debug_assert!(
        a.len() == s.len() && a.len() == c.len(),
        "kernels::u8_l2_affine: length mismatch ({}, {}, {})",
        a.len(),
        s.len(),
        c.len()
    );
    arch::u8_l2_affine(a, s, c)
}

/// Weighted squared euclidean distance between two codes quantized per
/// dimension to one byte: `Σ_i w[i] * (x[i] - y[i])²` (with `w[i]` the
/// squared scale of dimension `i`, the euclidean distance of the decoded
/// vectors).
///
/// `w`, `x` and `y` must have the same length `d` (checked with
/// `debug_assert!`; in release builds the shortest length is used).
#[inline]
pub fn u8_l2_weighted(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    debug_assert!(
        w.len() == x.len() && w.len() == y.len(),
        "kernels::u8_l2_weighted: length mismatch ({}, {}, {})",
        w.len(),
        x.len(),
        y.len()
    );
    arch::u8_l2_weighted(w, x, y)
}

/// Dot product of a binary code with a `B`-bit quantized query given as `B`
/// bit planes: `Σ_j 2^j * popcount(code & plane_j)`.
///
/// `planes.len()` must be `B * code.len()` for some `B` (typically 4; any
/// `B >= 1`): plane `j` is `planes[j * code.len()..(j + 1) * code.len()]`,
/// plane 0 the least significant bit of every query component. This is
/// checked with `debug_assert!`; in release builds only the whole planes are
/// used (`B = planes.len() / code.len()`; an empty code gives 0). The sum
/// is at most `(2^B - 1) · 8 · code.len()` and wraps modulo 2³² beyond that,
/// which no realistic `B` reaches.
#[inline]
pub fn bit_planes_dot(code: &[u8], planes: &[u8]) -> u32 {
    debug_assert!(
        planes.len().is_multiple_of(code.len()),
        "kernels::bit_planes_dot: planes.len() = {} is not a multiple of code.len() = {}",
        planes.len(),
        code.len()
    );
    arch::bit_planes_dot(code, planes)
}

/// Number of set bits in a byte slice (a packed bit vector).
#[inline]
pub fn popcount(bytes: &[u8]) -> u32 {
    arch::popcount(bytes)
}

/// In-place unnormalised fast Walsh–Hadamard transform: `x` becomes `H x`
/// with `H` the `n × n` Hadamard matrix of ±1 entries
/// (`H[i][j] = (-1)^popcount(i & j)`), so applying it twice multiplies `x`
/// by `n`.
///
/// `x.len()` must be a power of two (or 0). This is checked with
/// `debug_assert!`; in release builds a slice of any other length has its
/// largest power-of-two prefix transformed and the rest left unchanged.
#[inline]
pub fn fwht(x: &mut [f32]) {
    debug_assert!(
        x.is_empty() || x.len().is_power_of_two(),
        "kernels::fwht: length {} is not a power of two",
        x.len()
    );
    arch::fwht(x)
}

/// Name of the implementation chosen at run time for the `f32` kernels:
/// `"avx512"`, `"avx2+fma"`, `"neon"` or `"scalar"`.
pub fn implementation() -> &'static str {
    arch::implementation()
}

#[cfg(target_arch = "x86_64")]
use x86 as arch;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use neon as arch;

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
use portable as arch;

pub mod scalar;

/// Dispatch target on architectures without a dedicated SIMD path.
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
mod portable {
    pub(super) use super::scalar::{
        bit_planes_dot, dot, dot_i8, fwht, hamming, l1, l2_squared, popcount, u8_l2_affine,
        u8_l2_weighted,
    };

    pub(super) fn has_fast_i8() -> bool {
        false
    }

    pub(super) fn implementation() -> &'static str {
        "scalar"
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) mod neon;

#[cfg(test)]
mod tests;
