//! Distance kernels used by the HNSW engine in its hot loops.
//!
//! Written here rather than taken from simsimd: measured against it in `crates/kernel-bench`
//! (see its README), these are as fast or faster for every `f32` metric at 50 to 1536
//! dimensions; simsimd's hamming is a few nanoseconds faster on long codes with AVX-512.
//!
//! Every public function dispatches to the fastest implementation the running
//! CPU supports:
//!
//! * **x86-64**: AVX2 + FMA for the `f32` kernels, chosen at run time with
//!   `is_x86_feature_detected!`. The detection runs once and is cached in an
//!   [`AtomicU8`](std::sync::atomic::AtomicU8); afterwards each call costs one
//!   relaxed load and a well-predicted branch in front of a direct call.
//!   `hamming` uses hardware `popcnt` on unaligned 64-bit words and, for long
//!   slices, an AVX2 nibble-lookup popcount.
//! * **aarch64**: NEON, which every aarch64 target with the `neon` target
//!   feature (all the usual ones) guarantees, so no run-time check is needed.
//! * **anything else**: the portable [`scalar`] kernels, written with separate
//!   lane accumulators so the compiler can auto-vectorise them.
//!
//! Callers must pass slices of equal length. This is checked with
//! `debug_assert_eq!`; in release builds the kernels use the shorter length
//! and never read out of bounds.

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

/// Number of differing bits between two equal-length byte slices (packed bit
/// vectors).
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    debug_assert_eq!(a.len(), b.len(), "kernels::hamming: length mismatch");
    arch::hamming(a, b)
}

/// Name of the implementation chosen at run time for the `f32` kernels:
/// `"avx2+fma"`, `"neon"` or `"scalar"`.
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

/// Portable kernels, used directly on architectures without a SIMD path, as
/// the fallback on x86-64 CPUs without AVX2/FMA, and for the short tails of the
/// SIMD kernels.
///
/// The `f32` loops keep 8 independent accumulators (one per lane) so that the
/// compiler can keep them in vector registers without reassociating floating
/// point additions.
pub mod scalar {
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
}

/// Dispatch target on architectures without a dedicated SIMD path.
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
mod portable {
    pub(super) use super::scalar::{dot, hamming, l1, l2_squared};

    pub(super) fn implementation() -> &'static str {
        "scalar"
    }
}

/// x86-64 kernels: AVX2 + FMA for `f32`, `popcnt` / AVX2 for hamming.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::scalar;
    use std::arch::x86_64::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Feature bits cached in [`FEATURES`]. `READY` marks a completed
    /// detection so that a CPU without any of the features is not re-probed.
    const READY: u8 = 1;
    const AVX2_FMA: u8 = 1 << 1;
    const POPCNT: u8 = 1 << 2;
    const AVX2_POPCNT: u8 = 1 << 3;

    /// 0 until the first call detects the CPU features. Relaxed ordering is
    /// enough: the value is a pure function of the CPU, so a racing thread at
    /// worst runs the detection a second time and stores the same bits.
    static FEATURES: AtomicU8 = AtomicU8::new(0);

    /// From this many bytes on the AVX2 nibble-lookup popcount beats the
    /// 64-bit `popcnt` loop (measured on an AVX-512 era Xeon: at 64 bytes
    /// `popcnt` is ~10% faster, at 128 bytes AVX2 is ~8% faster, at 1 KiB
    /// ~30% faster).
    const HAMMING_AVX2_MIN_BYTES: usize = 128;

    #[inline(always)]
    fn features() -> u8 {
        let f = FEATURES.load(Ordering::Relaxed);
        if f == 0 {
            detect()
        } else {
            f
        }
    }

    #[cold]
    #[inline(never)]
    fn detect() -> u8 {
        let mut f = READY;
        let avx2 = std::is_x86_feature_detected!("avx2");
        let popcnt = std::is_x86_feature_detected!("popcnt");
        if avx2 && std::is_x86_feature_detected!("fma") {
            f |= AVX2_FMA;
        }
        if popcnt {
            f |= POPCNT;
        }
        if avx2 && popcnt {
            f |= AVX2_POPCNT;
        }
        FEATURES.store(f, Ordering::Relaxed);
        f
    }

    /// Whether the CPU supports AVX2 and FMA (cached after the first call).
    #[inline(always)]
    pub(crate) fn has_avx2_fma() -> bool {
        // Built with e.g. `-C target-cpu=native`: no run-time check needed.
        cfg!(all(target_feature = "avx2", target_feature = "fma")) || features() & AVX2_FMA != 0
    }

    /// Whether the CPU supports `popcnt` (cached after the first call).
    #[inline(always)]
    pub(crate) fn has_popcnt() -> bool {
        cfg!(target_feature = "popcnt") || features() & POPCNT != 0
    }

    /// Whether the CPU supports AVX2 and `popcnt` (cached after the first call).
    #[inline(always)]
    pub(crate) fn has_avx2_popcnt() -> bool {
        cfg!(all(target_feature = "avx2", target_feature = "popcnt"))
            || features() & AVX2_POPCNT != 0
    }

    pub(super) fn implementation() -> &'static str {
        if has_avx2_fma() {
            "avx2+fma"
        } else {
            "scalar"
        }
    }

    #[inline]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        if has_avx2_fma() {
            // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
            // AVX2 and FMA, the only precondition of `dot_avx2`.
            unsafe { dot_avx2(a, b) }
        } else {
            scalar::dot(a, b)
        }
    }

    #[inline]
    pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        if has_avx2_fma() {
            // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
            // AVX2 and FMA, the only precondition of `l2_squared_avx2`.
            unsafe { l2_squared_avx2(a, b) }
        } else {
            scalar::l2_squared(a, b)
        }
    }

    #[inline]
    pub(super) fn l1(a: &[f32], b: &[f32]) -> f32 {
        if has_avx2_fma() {
            // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
            // AVX2 and FMA, the only precondition of `l1_avx2`.
            unsafe { l1_avx2(a, b) }
        } else {
            scalar::l1(a, b)
        }
    }

    #[inline]
    pub(super) fn hamming(a: &[u8], b: &[u8]) -> u32 {
        if a.len() >= HAMMING_AVX2_MIN_BYTES && has_avx2_popcnt() {
            // SAFETY: `has_avx2_popcnt` confirmed that the running CPU
            // supports AVX2 and POPCNT, the only precondition of
            // `hamming_avx2`.
            unsafe { hamming_avx2(a, b) }
        } else if has_popcnt() {
            // SAFETY: `has_popcnt` confirmed that the running CPU supports
            // POPCNT, the only precondition of `hamming_popcnt`.
            unsafe { hamming_popcnt(a, b) }
        } else {
            scalar::hamming(a, b)
        }
    }

    /// Horizontal sum of the 8 lanes of `v`.
    #[target_feature(enable = "avx")]
    #[inline]
    fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// AVX2 + FMA dot product, 4 accumulators of 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX2 + FMA. Every load reads the 8
        // floats at `i..i + 8`, and each loop condition ensures `i + 8 <= n`
        // (resp. `i + 32 <= n` for the four loads at `i, i+8, i+16, i+24`),
        // with `n` the length of the shorter slice, so all reads are in
        // bounds of both slices. `loadu` has no alignment requirement.
        let sum = unsafe {
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let mut acc2 = _mm256_setzero_ps();
            let mut acc3 = _mm256_setzero_ps();
            while i + 32 <= n {
                let x0 = _mm256_loadu_ps(pa.add(i));
                let x1 = _mm256_loadu_ps(pa.add(i + 8));
                let x2 = _mm256_loadu_ps(pa.add(i + 16));
                let x3 = _mm256_loadu_ps(pa.add(i + 24));
                acc0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(pb.add(i + 8)), acc1);
                acc2 = _mm256_fmadd_ps(x2, _mm256_loadu_ps(pb.add(i + 16)), acc2);
                acc3 = _mm256_fmadd_ps(x3, _mm256_loadu_ps(pb.add(i + 24)), acc3);
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pa.add(i));
                acc0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(pb.add(i)), acc0);
                i += 8;
            }
            hsum_ps(_mm256_add_ps(
                _mm256_add_ps(acc0, acc1),
                _mm256_add_ps(acc2, acc3),
            ))
        };
        sum + scalar::dot_tail(&a[i..n], &b[i..n])
    }

    /// AVX2 + FMA squared euclidean distance, 4 accumulators of 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `dot_avx2`: AVX2 + FMA guaranteed by the caller, and
        // every unaligned 8-float load at offset `j` satisfies
        // `j + 8 <= n <= min(a.len(), b.len())`.
        let sum = unsafe {
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let mut acc2 = _mm256_setzero_ps();
            let mut acc3 = _mm256_setzero_ps();
            while i + 32 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                let d2 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 16)),
                    _mm256_loadu_ps(pb.add(i + 16)),
                );
                let d3 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 24)),
                    _mm256_loadu_ps(pb.add(i + 24)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
                acc2 = _mm256_fmadd_ps(d2, d2, acc2);
                acc3 = _mm256_fmadd_ps(d3, d3, acc3);
                i += 32;
            }
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_fmadd_ps(d, d, acc0);
                i += 8;
            }
            hsum_ps(_mm256_add_ps(
                _mm256_add_ps(acc0, acc1),
                _mm256_add_ps(acc2, acc3),
            ))
        };
        sum + scalar::l2_tail(&a[i..n], &b[i..n])
    }

    /// AVX2 Manhattan distance, 4 accumulators of 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn l1_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `dot_avx2`: AVX2 guaranteed by the caller, and every
        // unaligned 8-float load at offset `j` satisfies
        // `j + 8 <= n <= min(a.len(), b.len())`.
        let sum = unsafe {
            // |x| = x with the sign bit cleared: andnot(-0.0, x).
            let sign = _mm256_set1_ps(-0.0);
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let mut acc2 = _mm256_setzero_ps();
            let mut acc3 = _mm256_setzero_ps();
            while i + 32 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                let d2 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 16)),
                    _mm256_loadu_ps(pb.add(i + 16)),
                );
                let d3 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 24)),
                    _mm256_loadu_ps(pb.add(i + 24)),
                );
                acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
                acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, d1));
                acc2 = _mm256_add_ps(acc2, _mm256_andnot_ps(sign, d2));
                acc3 = _mm256_add_ps(acc3, _mm256_andnot_ps(sign, d3));
                i += 32;
            }
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d));
                i += 8;
            }
            hsum_ps(_mm256_add_ps(
                _mm256_add_ps(acc0, acc1),
                _mm256_add_ps(acc2, acc3),
            ))
        };
        sum + scalar::l1_tail(&a[i..n], &b[i..n])
    }

    /// Hamming distance with the hardware `popcnt` instruction on unaligned
    /// 64-bit words (the portable body compiled with `popcnt` enabled).
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[target_feature(enable = "popcnt")]
    pub(crate) unsafe fn hamming_popcnt(a: &[u8], b: &[u8]) -> u32 {
        scalar::hamming_words(a, b)
    }

    /// Hamming distance with the AVX2 nibble-lookup popcount (Muła et al.):
    /// `vpshufb` counts the bits of each nibble, byte counts are summed for 4
    /// vectors (at most 32 per byte) and folded into 64-bit lanes with
    /// `vpsadbw`. The tail (< 32 bytes) uses `popcnt` on 64-bit words.
    ///
    /// # Safety
    /// The CPU must support AVX2 and POPCNT.
    #[target_feature(enable = "avx2,popcnt")]
    pub(crate) unsafe fn hamming_avx2(a: &[u8], b: &[u8]) -> u32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX2. Every 32-byte unaligned load at
        // offset `j` satisfies `j + 32 <= n <= min(a.len(), b.len())` by the
        // loop conditions (`i + 128 <= n` covers the loads at `i + 96`), so
        // all reads are in bounds; `loadu_si256` has no alignment
        // requirement.
        let total = unsafe {
            #[rustfmt::skip]
            let lookup = _mm256_setr_epi8(
                0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
            );
            let zero = _mm256_setzero_si256();
            let mut acc = _mm256_setzero_si256();
            while i + 128 <= n {
                let s = _mm256_add_epi8(
                    _mm256_add_epi8(
                        byte_popcounts(pa.add(i), pb.add(i), lookup),
                        byte_popcounts(pa.add(i + 32), pb.add(i + 32), lookup),
                    ),
                    _mm256_add_epi8(
                        byte_popcounts(pa.add(i + 64), pb.add(i + 64), lookup),
                        byte_popcounts(pa.add(i + 96), pb.add(i + 96), lookup),
                    ),
                );
                acc = _mm256_add_epi64(acc, _mm256_sad_epu8(s, zero));
                i += 128;
            }
            while i + 32 <= n {
                acc = _mm256_add_epi64(
                    acc,
                    _mm256_sad_epu8(byte_popcounts(pa.add(i), pb.add(i), lookup), zero),
                );
                i += 32;
            }
            let s = _mm_add_epi64(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            (_mm_cvtsi128_si64(s) as u64).wrapping_add(_mm_extract_epi64::<1>(s) as u64)
        };
        total as u32 + scalar::hamming_words(&a[i..n], &b[i..n])
    }

    /// Bit count (0..=8) of every byte of `*pa ^ *pb` (32 bytes each), with
    /// `lookup` the per-nibble bit-count table.
    ///
    /// # Safety
    /// The CPU must support AVX2, and 32 bytes must be readable at `pa` and
    /// at `pb` (no alignment needed).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn byte_popcounts(pa: *const u8, pb: *const u8, lookup: __m256i) -> __m256i {
        // SAFETY: AVX2 support and 32 readable bytes at both pointers are
        // guaranteed by the caller; `loadu_si256` has no alignment
        // requirement.
        unsafe {
            let low = _mm256_set1_epi8(0x0f);
            let x = _mm256_loadu_si256(pa.cast::<__m256i>());
            let y = _mm256_loadu_si256(pb.cast::<__m256i>());
            let v = _mm256_xor_si256(x, y);
            let lo = _mm256_and_si256(v, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
            _mm256_add_epi8(
                _mm256_shuffle_epi8(lookup, lo),
                _mm256_shuffle_epi8(lookup, hi),
            )
        }
    }
}

/// aarch64 NEON kernels. NEON is a baseline feature of the usual aarch64
/// targets; the module is gated on `target_feature = "neon"` so that a
/// soft-float target falls back to the scalar kernels instead.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) mod neon {
    use super::scalar;
    use std::arch::aarch64::*;

    pub(super) fn implementation() -> &'static str {
        "neon"
    }

    /// NEON dot product, 4 accumulators of 4 lanes.
    #[inline]
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: NEON is enabled at compile time (module cfg). Every load
        // reads the 4 floats at `j..j + 4` with `j + 4 <= n` guaranteed by the
        // loop conditions (`i + 16 <= n` covers the loads at `i + 12`), and
        // `n` is the length of the shorter slice, so all reads are in bounds.
        // `vld1q_f32` only needs `f32` alignment, which `&[f32]` provides.
        let sum = unsafe {
            let mut acc0 = vdupq_n_f32(0.0);
            let mut acc1 = vdupq_n_f32(0.0);
            let mut acc2 = vdupq_n_f32(0.0);
            let mut acc3 = vdupq_n_f32(0.0);
            while i + 16 <= n {
                acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                acc1 = vfmaq_f32(acc1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
                acc2 = vfmaq_f32(acc2, vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
                acc3 = vfmaq_f32(acc3, vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
                i += 16;
            }
            while i + 4 <= n {
                acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                i += 4;
            }
            vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)))
        };
        sum + scalar::dot_tail(&a[i..n], &b[i..n])
    }

    /// NEON squared euclidean distance, 4 accumulators of 4 lanes.
    #[inline]
    pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `dot`: NEON enabled at compile time, every 4-float
        // load at offset `j` satisfies `j + 4 <= n <= min(a.len(), b.len())`.
        let sum = unsafe {
            let mut acc0 = vdupq_n_f32(0.0);
            let mut acc1 = vdupq_n_f32(0.0);
            let mut acc2 = vdupq_n_f32(0.0);
            let mut acc3 = vdupq_n_f32(0.0);
            while i + 16 <= n {
                let d0 = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                let d1 = vsubq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
                let d2 = vsubq_f32(vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
                let d3 = vsubq_f32(vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
                acc0 = vfmaq_f32(acc0, d0, d0);
                acc1 = vfmaq_f32(acc1, d1, d1);
                acc2 = vfmaq_f32(acc2, d2, d2);
                acc3 = vfmaq_f32(acc3, d3, d3);
                i += 16;
            }
            while i + 4 <= n {
                let d = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                acc0 = vfmaq_f32(acc0, d, d);
                i += 4;
            }
            vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)))
        };
        sum + scalar::l2_tail(&a[i..n], &b[i..n])
    }

    /// NEON Manhattan distance (`vabdq_f32`), 4 accumulators of 4 lanes.
    #[inline]
    pub(crate) fn l1(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `dot`: NEON enabled at compile time, every 4-float
        // load at offset `j` satisfies `j + 4 <= n <= min(a.len(), b.len())`.
        let sum = unsafe {
            let mut acc0 = vdupq_n_f32(0.0);
            let mut acc1 = vdupq_n_f32(0.0);
            let mut acc2 = vdupq_n_f32(0.0);
            let mut acc3 = vdupq_n_f32(0.0);
            while i + 16 <= n {
                acc0 = vaddq_f32(acc0, vabdq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i))));
                acc1 = vaddq_f32(
                    acc1,
                    vabdq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4))),
                );
                acc2 = vaddq_f32(
                    acc2,
                    vabdq_f32(vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8))),
                );
                acc3 = vaddq_f32(
                    acc3,
                    vabdq_f32(vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12))),
                );
                i += 16;
            }
            while i + 4 <= n {
                acc0 = vaddq_f32(acc0, vabdq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i))));
                i += 4;
            }
            vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)))
        };
        sum + scalar::l1_tail(&a[i..n], &b[i..n])
    }

    /// NEON hamming distance: `vcntq_u8` per byte, 4 vectors summed per
    /// 64-byte block (at most 32 per byte), pairwise-accumulated into 16-bit
    /// lanes (at most 64 per lane per block) and folded into the `u32` total
    /// every [`BATCH`] blocks, well before a 16-bit lane could overflow.
    #[inline]
    pub(crate) fn hamming(a: &[u8], b: &[u8]) -> u32 {
        /// 64-byte blocks per 16-bit accumulator: 256 * 64 = 16384 < 65535.
        const BATCH: usize = 256;
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        let mut total: u32 = 0;
        // SAFETY: NEON enabled at compile time (module cfg). Every 16-byte
        // load at offset `j` satisfies `j + 16 <= n <= min(a.len(), b.len())`
        // by the loop conditions (`i + 64 <= n` covers the loads at
        // `i + 48`); `vld1q_u8` has no alignment requirement.
        unsafe {
            let count = |j: usize| vcntq_u8(veorq_u8(vld1q_u8(pa.add(j)), vld1q_u8(pb.add(j))));
            while i + 64 <= n {
                let end = n.min(i + 64 * BATCH);
                let mut acc = vdupq_n_u16(0);
                while i + 64 <= end {
                    let s = vaddq_u8(
                        vaddq_u8(count(i), count(i + 16)),
                        vaddq_u8(count(i + 32), count(i + 48)),
                    );
                    acc = vpadalq_u8(acc, s);
                    i += 64;
                }
                total += vaddlvq_u16(acc);
            }
            while i + 16 <= n {
                total += u32::from(vaddlvq_u8(count(i)));
                i += 16;
            }
        }
        total + scalar::hamming_words(&a[i..n], &b[i..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTHS: [usize; 11] = [0, 1, 3, 7, 8, 17, 33, 50, 384, 1000, 1536];

    /// splitmix64: small, deterministic, good enough for test data.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [-1, 1).
        fn next_f32(&mut self) -> f32 {
            ((self.next_u64() >> 40) as f32) / ((1u64 << 23) as f32) - 1.0
        }

        fn f32s(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.next_f32()).collect()
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next_u64() as u8).collect()
        }
    }

    type F32Fn = Box<dyn Fn(&[f32], &[f32]) -> f32>;
    type BitFn = Box<dyn Fn(&[u8], &[u8]) -> u32>;

    /// One implementation of the three `f32` kernels.
    struct F32Kernels {
        name: &'static str,
        dot: F32Fn,
        l2: F32Fn,
        l1: F32Fn,
    }

    /// `got` must be within a relative 1e-4 of `want`, scaled by `scale`
    /// (the sum of absolute terms, which bounds the rounding error).
    fn assert_close(what: &str, len: usize, got: f32, want: f32, scale: f32) {
        let tol = 1e-4 * scale.max(want.abs()).max(1.0);
        assert!(
            (got - want).abs() <= tol,
            "{what} len={len}: got {got}, want {want} (tol {tol})"
        );
    }

    /// Exact-ish f64 references, used to check the scalar kernels themselves.
    fn ref_dot(a: &[f32], b: &[f32]) -> (f64, f64) {
        let terms = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y));
        (terms.clone().sum(), terms.map(f64::abs).sum())
    }

    fn ref_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    fn ref_l1(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum()
    }

    fn ref_hamming(a: &[u8], b: &[u8]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    /// Every f32 kernel set available on this machine: the dispatched one
    /// and, when the CPU supports them, the SIMD functions called directly.
    fn f32_kernels() -> Vec<F32Kernels> {
        #[allow(unused_mut)] // only extended on architectures with a SIMD path
        let mut v = vec![F32Kernels {
            name: "dispatch",
            dot: Box::new(dot),
            l2: Box::new(l2_squared),
            l1: Box::new(l1),
        }];
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2_fma() {
            v.push(F32Kernels {
                name: "avx2",
                // SAFETY: AVX2 + FMA support was just checked.
                dot: Box::new(|a: &[f32], b: &[f32]| unsafe { x86::dot_avx2(a, b) }),
                // SAFETY: AVX2 + FMA support was just checked.
                l2: Box::new(|a: &[f32], b: &[f32]| unsafe { x86::l2_squared_avx2(a, b) }),
                // SAFETY: AVX2 + FMA support was just checked.
                l1: Box::new(|a: &[f32], b: &[f32]| unsafe { x86::l1_avx2(a, b) }),
            });
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        v.push(F32Kernels {
            name: "neon",
            dot: Box::new(neon::dot),
            l2: Box::new(neon::l2_squared),
            l1: Box::new(neon::l1),
        });
        v
    }

    fn bit_kernels() -> Vec<(&'static str, BitFn)> {
        #[allow(unused_mut)] // only extended on architectures with a SIMD path
        let mut v: Vec<(&'static str, BitFn)> = vec![("dispatch", Box::new(hamming))];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_popcnt() {
                // SAFETY: POPCNT support was just checked.
                let f = |a: &[u8], b: &[u8]| unsafe { x86::hamming_popcnt(a, b) };
                v.push(("popcnt", Box::new(f)));
            }
            if x86::has_avx2_popcnt() {
                // SAFETY: AVX2 + POPCNT support was just checked.
                let f = |a: &[u8], b: &[u8]| unsafe { x86::hamming_avx2(a, b) };
                v.push(("avx2", Box::new(f)));
            }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        v.push(("neon", Box::new(neon::hamming)));
        v
    }

    /// Checks every kernel set against the scalar kernels on `a`, `b`.
    fn check_f32(kernels: &[F32Kernels], a: &[f32], b: &[f32]) {
        let len = a.len();
        let (want_dot, abs) = (scalar::dot(a, b), ref_dot(a, b).1 as f32);
        let want_l2 = scalar::l2_squared(a, b);
        let want_l1 = scalar::l1(a, b);
        for k in kernels {
            assert_close(
                &format!("{} dot", k.name),
                len,
                (k.dot)(a, b),
                want_dot,
                abs,
            );
            assert_close(
                &format!("{} l2", k.name),
                len,
                (k.l2)(a, b),
                want_l2,
                want_l2,
            );
            assert_close(
                &format!("{} l1", k.name),
                len,
                (k.l1)(a, b),
                want_l1,
                want_l1,
            );
        }
    }

    #[test]
    fn implementation_name() {
        let name = implementation();
        assert!(["avx2+fma", "neon", "scalar"].contains(&name), "{name}");
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            assert_eq!(name, "avx2+fma");
        }
    }

    #[test]
    fn scalar_matches_f64_reference() {
        let mut rng = Rng(1);
        for &len in &LENGTHS {
            let a = rng.f32s(len);
            let b = rng.f32s(len);
            let (d, abs) = ref_dot(&a, &b);
            assert_close("scalar dot", len, scalar::dot(&a, &b), d as f32, abs as f32);
            let l2 = ref_l2(&a, &b) as f32;
            assert_close("scalar l2", len, scalar::l2_squared(&a, &b), l2, l2);
            let l1d = ref_l1(&a, &b) as f32;
            assert_close("scalar l1", len, scalar::l1(&a, &b), l1d, l1d);
        }
    }

    #[test]
    fn f32_kernels_match_scalar() {
        let mut rng = Rng(42);
        let kernels = f32_kernels();
        for &len in &LENGTHS {
            // Element offsets 0, 1 and 3 make the slices start off the
            // 16/32-byte boundaries the allocator tends to give.
            let a_buf = rng.f32s(len + 3);
            let b_buf = rng.f32s(len + 3);
            for (oa, ob) in [(0, 0), (1, 1), (3, 3), (1, 3), (3, 0)] {
                check_f32(&kernels, &a_buf[oa..oa + len], &b_buf[ob..ob + len]);
            }
        }
    }

    #[test]
    fn f32_kernels_large_magnitudes() {
        // Values around 1e3 and a few sign-alternating patterns.
        let mut rng = Rng(7);
        let kernels = f32_kernels();
        for &len in &LENGTHS {
            let a: Vec<f32> = rng.f32s(len).iter().map(|x| x * 1000.0).collect();
            let b: Vec<f32> = (0..len)
                .map(|i| if i % 2 == 0 { 3.5 } else { -2.25 })
                .collect();
            check_f32(&kernels, &a, &b);
        }
    }

    #[test]
    fn hamming_matches_scalar_exactly() {
        let mut rng = Rng(99);
        let kernels = bit_kernels();
        let lengths = LENGTHS
            .iter()
            .copied()
            .chain([31, 32, 63, 64, 127, 128, 255, 256, 257, 4099, 70_000]);
        for len in lengths {
            let a_buf = rng.bytes(len + 7);
            let b_buf = rng.bytes(len + 7);
            // Byte offsets 1, 3, 5, 7 give slices that are misaligned for
            // the 8/16/32-byte loads of every kernel.
            for (oa, ob) in [(0, 0), (1, 1), (3, 5), (7, 2), (5, 0)] {
                let a = &a_buf[oa..oa + len];
                let b = &b_buf[ob..ob + len];
                let want = ref_hamming(a, b);
                assert_eq!(scalar::hamming(a, b), want, "scalar len={len}");
                for (name, k) in &kernels {
                    assert_eq!(k(a, b), want, "{name} len={len} offsets=({oa},{ob})");
                }
            }
        }
    }

    #[test]
    fn hamming_all_ones() {
        // Maximal counts: every bit differs, which stresses the 8-bit and
        // 16-bit intermediate counters of the SIMD kernels.
        for len in [1, 31, 64, 128, 1000, 16_384, 16_448, 70_001] {
            let a = vec![0u8; len];
            let b = vec![0xffu8; len];
            let want = 8 * len as u32;
            assert_eq!(scalar::hamming(&a, &b), want, "scalar len={len}");
            for (name, k) in &bit_kernels() {
                assert_eq!(k(&a, &b), want, "{name} len={len}");
            }
        }
    }

    #[test]
    fn identical_vectors_have_zero_distance() {
        let mut rng = Rng(3);
        for &len in &LENGTHS {
            let a = rng.f32s(len);
            let bits = rng.bytes(len);
            for k in &f32_kernels() {
                assert_eq!((k.l2)(&a, &a), 0.0, "{} l2 len={len}", k.name);
                assert_eq!((k.l1)(&a, &a), 0.0, "{} l1 len={len}", k.name);
            }
            assert_eq!(scalar::l2_squared(&a, &a), 0.0);
            assert_eq!(scalar::l1(&a, &a), 0.0);
            assert_eq!(scalar::hamming(&bits, &bits), 0);
            for (name, k) in &bit_kernels() {
                assert_eq!(k(&bits, &bits), 0, "{name} len={len}");
            }
        }
    }

    #[test]
    fn known_values() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let b = [9.0f32, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        assert_eq!(dot(&a, &b), 165.0);
        assert_eq!(l2_squared(&a, &b), 240.0);
        assert_eq!(l1(&a, &b), 40.0);
        assert_eq!(
            hamming(&[0b1010_1010, 0xff, 0], &[0b0101_0101, 0x0f, 0]),
            12
        );
        assert_eq!(dot(&[], &[]), 0.0);
        assert_eq!(hamming(&[], &[]), 0);
    }

    /// In release builds mismatched lengths use the shorter one instead of
    /// reading out of bounds.
    #[test]
    #[cfg(not(debug_assertions))]
    fn mismatched_lengths_use_shorter() {
        let mut rng = Rng(5);
        let a = rng.f32s(100);
        let b = rng.f32s(61);
        assert_close("dot", 61, dot(&a, &b), scalar::dot(&a[..61], &b), 100.0);
        assert_close(
            "l2",
            61,
            l2_squared(&b, &a),
            scalar::l2_squared(&b, &a[..61]),
            100.0,
        );
        assert_close("l1", 61, l1(&a, &b), scalar::l1(&a[..61], &b), 100.0);
        let x = rng.bytes(300);
        let y = rng.bytes(259);
        assert_eq!(hamming(&x, &y), ref_hamming(&x[..259], &y));
        assert_eq!(hamming(&y, &x), ref_hamming(&y, &x[..259]));
    }
}
