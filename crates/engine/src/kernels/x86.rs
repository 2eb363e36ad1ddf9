//! x86-64 kernels: AVX2 + FMA for `f32`, the byte-code distances and the
//! Walsh–Hadamard transform; `popcnt` / AVX2 for hamming, popcount and the
//! bit-plane dot product. On CPUs with AVX-512 the `f32` distances, the
//! byte-code distances and the build's `dot_i8` dispatch to `avx512.rs` instead,
//! and with VPOPCNTDQ so do hamming and popcount from 16 bytes on.

use super::avx512::*;
use super::scalar;
use std::arch::x86_64::*;
use std::sync::atomic::{AtomicU8, Ordering};

/// Feature bits cached in [`FEATURES`]. `READY` marks a completed
/// detection so that a CPU without any of the features is not re-probed.
const READY: u8 = 1;
const AVX2_FMA: u8 = 1 << 1;
const POPCNT: u8 = 1 << 2;
const AVX2_POPCNT: u8 = 1 << 3;
const AVX512: u8 = 1 << 5;
const AVX512_POPCNT: u8 = 1 << 6;

/// 0 until the first call detects the CPU features. Relaxed ordering is
/// enough: the value is a pure function of the CPU, so a racing thread at
/// worst runs the detection a second time and stores the same bits.
static FEATURES: AtomicU8 = AtomicU8::new(0);

/// From this many bytes on the AVX2 nibble-lookup popcount beats the
/// 64-bit `popcnt` loop (measured on an AVX-512 era Xeon: at 64 bytes
/// `popcnt` is ~10% faster, at 128 bytes AVX2 is ~8% faster, at 1 KiB
/// ~30% faster).
const HAMMING_AVX2_MIN_BYTES: usize = 128;

/// From this many bytes on the AVX2 nibble-lookup popcount beats the
/// 64-bit `popcnt` loop in [`popcount`] (as for hamming).
const POPCOUNT_AVX2_MIN_BYTES: usize = 128;

/// From this many code bytes on [`bit_planes_dot`] uses the AVX2 kernel
/// rather than the 64-bit `popcnt` loop.
const BIT_PLANES_AVX2_MIN_BYTES: usize = 16;

/// From this many bytes on hamming and popcount use the AVX-512 popcount
/// (measured with `crates/kernel-bench` on a Xeon with VPOPCNTDQ: 64 bits
/// 3.3 ns with `popcnt` against 4.2 ns, 384 bits 5.7 against 4.7 ns, 1,536
/// bits 10.5 against 5.9 ns; 16 bytes lies between, not measured).
const VPOPCNT_MIN_BYTES: usize = 16;

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
    let avx512 =
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw");
    if avx2 && std::is_x86_feature_detected!("fma") {
        f |= AVX2_FMA;
        if avx512 && std::is_x86_feature_detected!("avx512vl") {
            f |= AVX512;
        }
    }
    if popcnt {
        f |= POPCNT;
    }
    if avx512 && std::is_x86_feature_detected!("avx512vpopcntdq") {
        f |= AVX512_POPCNT;
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
    cfg!(all(target_feature = "avx2", target_feature = "popcnt")) || features() & AVX2_POPCNT != 0
}

/// Whether the CPU supports AVX-512 F, BW and VL besides AVX2 and FMA (cached after the first
/// call).
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl"
    )) || features() & AVX512 != 0
}

/// Whether the CPU supports AVX-512 F, BW and VPOPCNTDQ (cached after the first call).
#[inline(always)]
pub(crate) fn has_avx512_popcnt() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vpopcntdq"
    )) || features() & AVX512_POPCNT != 0
}

pub(super) fn implementation() -> &'static str {
    if has_avx512() {
        "avx512"
    } else if has_avx2_fma() {
        "avx2+fma"
    } else {
        "scalar"
    }
}

#[inline]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports
        // AVX-512 F, the only precondition of `dot_avx512`.
        unsafe { dot_avx512(a, b) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `dot_avx2`.
        unsafe { dot_avx2(a, b) }
    } else {
        scalar::dot(a, b)
    }
}

#[inline]
pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports
        // AVX-512 F, the only precondition of `l2_squared_avx512`.
        unsafe { l2_squared_avx512(a, b) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `l2_squared_avx2`.
        unsafe { l2_squared_avx2(a, b) }
    } else {
        scalar::l2_squared(a, b)
    }
}

#[inline]
pub(super) fn l1(a: &[f32], b: &[f32]) -> f32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports
        // AVX-512 F, the only precondition of `l1_avx512`.
        unsafe { l1_avx512(a, b) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `l1_avx2`.
        unsafe { l1_avx2(a, b) }
    } else {
        scalar::l1(a, b)
    }
}

#[inline]
pub(super) fn hamming(a: &[u8], b: &[u8]) -> u32 {
    if a.len() >= VPOPCNT_MIN_BYTES && has_avx512_popcnt() {
        // SAFETY: `has_avx512_popcnt` confirmed that the running CPU
        // supports AVX-512 F, BW and VPOPCNTDQ, the only precondition of
        // `hamming_vpopcnt`.
        unsafe { hamming_vpopcnt(a, b) }
    } else if a.len() >= HAMMING_AVX2_MIN_BYTES && has_avx2_popcnt() {
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

#[inline]
pub(super) fn u8_l2_affine(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports
        // AVX-512 F, BW and VL, the only precondition of `u8_l2_affine_avx512`.
        unsafe { u8_l2_affine_avx512(a, s, c) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `u8_l2_affine_avx2`.
        unsafe { u8_l2_affine_avx2(a, s, c) }
    } else {
        scalar::u8_l2_affine(a, s, c)
    }
}

#[inline]
pub(super) fn u8_l2_weighted(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports
        // AVX-512 F, BW and VL, the only precondition of `u8_l2_weighted_avx512`.
        unsafe { u8_l2_weighted_avx512(w, x, y) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `u8_l2_weighted_avx2`.
        unsafe { u8_l2_weighted_avx2(w, x, y) }
    } else {
        scalar::u8_l2_weighted(w, x, y)
    }
}

#[inline]
pub(super) fn bit_planes_dot(code: &[u8], planes: &[u8]) -> u32 {
    if code.len() >= BIT_PLANES_AVX2_MIN_BYTES && has_avx2_popcnt() {
        // SAFETY: `has_avx2_popcnt` confirmed that the running CPU
        // supports AVX2 and POPCNT, the only precondition of
        // `bit_planes_dot_avx2`.
        unsafe { bit_planes_dot_avx2(code, planes) }
    } else if has_popcnt() {
        // SAFETY: `has_popcnt` confirmed that the running CPU supports
        // POPCNT, the only precondition of `bit_planes_dot_popcnt`.
        unsafe { bit_planes_dot_popcnt(code, planes) }
    } else {
        scalar::bit_planes_dot(code, planes)
    }
}

#[inline]
pub(super) fn popcount(bytes: &[u8]) -> u32 {
    if bytes.len() >= VPOPCNT_MIN_BYTES && has_avx512_popcnt() {
        // SAFETY: `has_avx512_popcnt` confirmed that the running CPU
        // supports AVX-512 F, BW and VPOPCNTDQ, the only precondition of
        // `popcount_vpopcnt`.
        unsafe { popcount_vpopcnt(bytes) }
    } else if bytes.len() >= POPCOUNT_AVX2_MIN_BYTES && has_avx2_popcnt() {
        // SAFETY: `has_avx2_popcnt` confirmed that the running CPU
        // supports AVX2 and POPCNT, the only precondition of
        // `popcount_avx2`.
        unsafe { popcount_avx2(bytes) }
    } else if has_popcnt() {
        // SAFETY: `has_popcnt` confirmed that the running CPU supports
        // POPCNT, the only precondition of `popcount_popcnt`.
        unsafe { popcount_popcnt(bytes) }
    } else {
        scalar::popcount(bytes)
    }
}

#[inline]
pub(super) fn fwht(x: &mut [f32]) {
    if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports
        // AVX2 and FMA, the only precondition of `fwht_avx2`.
        unsafe { fwht_avx2(x) }
    } else {
        scalar::fwht(x)
    }
}

#[inline]
pub(super) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    if has_avx512() {
        // SAFETY: `has_avx512` confirmed that the running CPU supports AVX-512 F, BW and VL,
        // the only precondition of `dot_i8_avx512`.
        unsafe { dot_i8_avx512(a, b) }
    } else if has_avx2_fma() {
        // SAFETY: `has_avx2_fma` confirmed that the running CPU supports AVX2, the only
        // precondition of `dot_i8_avx2`.
        unsafe { dot_i8_avx2(a, b) }
    } else {
        scalar::dot_i8(a, b)
    }
}

/// Whether [`dot_i8`] runs on SIMD (AVX2, or AVX-512 BW, which comes with it) rather than the
/// portable code.
#[inline(always)]
pub(super) fn has_fast_i8() -> bool {
    has_avx2_fma()
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

/// Dot product of two `i8` slices: 16 bytes at a time widened to `i16`, multiplied and
/// summed in pairs into 8 `i32` lanes (exact, like the portable sum), the tail in scalar code.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX2. Every load reads the 16 bytes at `j..j + 16` with
    // `j + 16 <= n` by the loop conditions (`i + 32 <= n` covers the loads at `i + 16`), `n`
    // being the shorter length, so all reads are in bounds of both slices; `loadu` has no
    // alignment requirement.
    let sum = unsafe {
        let wide = |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i));
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        while i + 32 <= n {
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(wide(pa.add(i)), wide(pb.add(i))));
            acc1 = _mm256_add_epi32(
                acc1,
                _mm256_madd_epi16(wide(pa.add(i + 16)), wide(pb.add(i + 16))),
            );
            i += 32;
        }
        if i + 16 <= n {
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(wide(pa.add(i)), wide(pb.add(i))));
            i += 16;
        }
        let acc = _mm256_add_epi32(acc0, acc1);
        let half = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let quarter = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
        _mm_cvtsi128_si32(_mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, 0b01)))
    };
    if i < n {
        sum + scalar::dot_i8(&a[i..n], &b[i..n])
    } else {
        sum
    }
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

/// The 8 bytes at `p` converted to floats.
///
/// # Safety
/// The CPU must support AVX2, and 8 bytes must be readable at `p` (no
/// alignment needed).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load_u8x8_ps(p: *const u8) -> __m256 {
    // SAFETY: AVX2 support and 8 readable bytes at `p` are guaranteed by the
    // caller; `_mm_loadl_epi64` reads exactly 8 bytes, unaligned.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast::<__m128i>()))) }
}

/// AVX2 + FMA `Σ (a[i] - s[i] * c[i])²`, 4 accumulators of 8 lanes; the
/// difference is one fused `a - s * c`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn u8_l2_affine_avx2(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = a.len().min(s.len()).min(c.len());
    let (pa, ps, pc) = (a.as_ptr(), s.as_ptr(), c.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX2 + FMA. Every load reads the 8
    // floats (resp. 8 bytes) at `j..j + 8` with `j + 8 <= n` by the loop
    // conditions (`i + 32 <= n` covers the loads at `i + 24`), and `n` is the
    // shortest of the three lengths, so all reads are in bounds. The loads
    // are unaligned.
    let sum = unsafe {
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut acc2 = _mm256_setzero_ps();
        let mut acc3 = _mm256_setzero_ps();
        while i + 32 <= n {
            let d0 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i)),
                load_u8x8_ps(pc.add(i)),
                _mm256_loadu_ps(pa.add(i)),
            );
            let d1 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 8)),
                load_u8x8_ps(pc.add(i + 8)),
                _mm256_loadu_ps(pa.add(i + 8)),
            );
            let d2 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 16)),
                load_u8x8_ps(pc.add(i + 16)),
                _mm256_loadu_ps(pa.add(i + 16)),
            );
            let d3 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 24)),
                load_u8x8_ps(pc.add(i + 24)),
                _mm256_loadu_ps(pa.add(i + 24)),
            );
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            acc2 = _mm256_fmadd_ps(d2, d2, acc2);
            acc3 = _mm256_fmadd_ps(d3, d3, acc3);
            i += 32;
        }
        while i + 8 <= n {
            let d = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i)),
                load_u8x8_ps(pc.add(i)),
                _mm256_loadu_ps(pa.add(i)),
            );
            acc0 = _mm256_fmadd_ps(d, d, acc0);
            i += 8;
        }
        hsum_ps(_mm256_add_ps(
            _mm256_add_ps(acc0, acc1),
            _mm256_add_ps(acc2, acc3),
        ))
    };
    sum + scalar::u8_l2_affine_tail(&a[i..n], &s[i..n], &c[i..n])
}

/// AVX2 + FMA `Σ w[i] * (x[i] - y[i])²`, 4 accumulators of 8 lanes: the
/// byte differences `|x - y|` (`max - min`) of 32 dimensions at a time are
/// widened to 32-bit lanes 8 by 8, converted to `f32` and squared exactly
/// (at most 255²), then multiplied-added to the weights.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn u8_l2_weighted_avx2(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    let n = w.len().min(x.len()).min(y.len());
    let (pw, px, py) = (w.as_ptr(), x.as_ptr(), y.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX2 + FMA. Every load reads the 32
    // bytes at `i..i + 32` with `i + 32 <= n`, or 8 floats or 8 bytes at
    // `j..j + 8` with `j + 8 <= n`, by the loop conditions (`i + 32 <= n`
    // covers the float loads at `i + 24`), and `n` is the shortest of the
    // three lengths, so all reads are in bounds. The loads are unaligned.
    let sum = unsafe {
        // The squares of the 8 byte differences in the low half of `d`.
        let squares = |d: __m128i| {
            let d = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(d));
            _mm256_mul_ps(d, d)
        };
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut acc2 = _mm256_setzero_ps();
        let mut acc3 = _mm256_setzero_ps();
        while i + 32 <= n {
            let vx = _mm256_loadu_si256(px.add(i).cast::<__m256i>());
            let vy = _mm256_loadu_si256(py.add(i).cast::<__m256i>());
            let d = _mm256_sub_epi8(_mm256_max_epu8(vx, vy), _mm256_min_epu8(vx, vy));
            let (lo, hi) = (_mm256_castsi256_si128(d), _mm256_extracti128_si256::<1>(d));
            let q0 = squares(lo);
            let q1 = squares(_mm_unpackhi_epi64(lo, lo));
            let q2 = squares(hi);
            let q3 = squares(_mm_unpackhi_epi64(hi, hi));
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), q0, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 8)), q1, acc1);
            acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 16)), q2, acc2);
            acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 24)), q3, acc3);
            i += 32;
        }
        while i + 8 <= n {
            let vx = _mm_loadl_epi64(px.add(i).cast::<__m128i>());
            let vy = _mm_loadl_epi64(py.add(i).cast::<__m128i>());
            let d = _mm_sub_epi8(_mm_max_epu8(vx, vy), _mm_min_epu8(vx, vy));
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), squares(d), acc0);
            i += 8;
        }
        hsum_ps(_mm256_add_ps(
            _mm256_add_ps(acc0, acc1),
            _mm256_add_ps(acc2, acc3),
        ))
    };
    sum + scalar::u8_l2_weighted_tail(&w[i..n], &x[i..n], &y[i..n])
}

/// Sum of the four 64-bit lanes of `v` (wrapping).
#[target_feature(enable = "avx2")]
#[inline]
fn hsum_epi64(v: __m256i) -> u64 {
    let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    (_mm_cvtsi128_si64(s) as u64).wrapping_add(_mm_extract_epi64::<1>(s) as u64)
}

/// Bit count (0..=8) of every byte of `v`, with `lookup` the per-nibble
/// bit-count table (as in [`byte_popcounts`]).
#[target_feature(enable = "avx2")]
#[inline]
fn nibble_popcounts(v: __m256i, lookup: __m256i) -> __m256i {
    let low = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(v, low);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
    _mm256_add_epi8(
        _mm256_shuffle_epi8(lookup, lo),
        _mm256_shuffle_epi8(lookup, hi),
    )
}

/// The per-nibble bit-count table of [`nibble_popcounts`].
#[target_feature(enable = "avx2")]
#[inline]
fn nibble_lookup() -> __m256i {
    #[rustfmt::skip]
    let lookup = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    lookup
}

/// Population count with the hardware `popcnt` instruction on unaligned
/// 64-bit words (the portable body compiled with `popcnt` enabled).
///
/// # Safety
/// The CPU must support POPCNT.
#[target_feature(enable = "popcnt")]
pub(crate) unsafe fn popcount_popcnt(bytes: &[u8]) -> u32 {
    scalar::popcount_words(bytes)
}

/// Population count with the AVX2 nibble-lookup popcount, as
/// [`hamming_avx2`] without the xor. The tail (< 32 bytes) uses `popcnt` on
/// 64-bit words.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
pub(crate) unsafe fn popcount_avx2(bytes: &[u8]) -> u32 {
    let n = bytes.len();
    let p = bytes.as_ptr();
    let mut i = 0;
    // SAFETY: the caller guarantees AVX2. Every 32-byte unaligned load at
    // offset `j` satisfies `j + 32 <= n` by the loop conditions
    // (`i + 128 <= n` covers the loads at `i + 96`).
    let total = unsafe {
        let lookup = nibble_lookup();
        let zero = _mm256_setzero_si256();
        let load = |j: usize| _mm256_loadu_si256(p.add(j).cast::<__m256i>());
        let mut acc = _mm256_setzero_si256();
        while i + 128 <= n {
            let s = _mm256_add_epi8(
                _mm256_add_epi8(
                    nibble_popcounts(load(i), lookup),
                    nibble_popcounts(load(i + 32), lookup),
                ),
                _mm256_add_epi8(
                    nibble_popcounts(load(i + 64), lookup),
                    nibble_popcounts(load(i + 96), lookup),
                ),
            );
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(s, zero));
            i += 128;
        }
        while i + 32 <= n {
            acc = _mm256_add_epi64(
                acc,
                _mm256_sad_epu8(nibble_popcounts(load(i), lookup), zero),
            );
            i += 32;
        }
        hsum_epi64(acc)
    };
    total as u32 + scalar::popcount_words(&bytes[i..n])
}

/// Bit-plane dot product with the hardware `popcnt` instruction on
/// unaligned 64-bit words (the portable body compiled with `popcnt`
/// enabled), one plane after the other.
///
/// # Safety
/// The CPU must support POPCNT.
#[target_feature(enable = "popcnt")]
pub(crate) unsafe fn bit_planes_dot_popcnt(code: &[u8], planes: &[u8]) -> u32 {
    let n = code.len();
    if n == 0 {
        return 0;
    }
    scalar::bit_planes_words(code, planes, n, planes.len() / n)
}

/// Bit-plane dot product with the AVX2 nibble-lookup popcount. For every 32
/// (then 16) code bytes and every group of up to 4 planes, the per-byte
/// counts of `code & plane`, times the plane's weight within the group, add
/// up inside the bytes (at most 8 · 15 = 120) and are summed into 64-bit
/// lanes with `vpsadbw` ([`bit_planes_group`]); the group's sum is shifted by
/// its first plane. The tail (< 16 bytes) uses `popcnt` on 64-bit words.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
pub(crate) unsafe fn bit_planes_dot_avx2(code: &[u8], planes: &[u8]) -> u32 {
    let n = code.len();
    if n == 0 || planes.len() < n {
        return 0;
    }
    let b = planes.len() / n;
    let end = n & !15;
    let (pc, pp) = (code.as_ptr(), planes.as_ptr());
    let mut total = 0u32;
    let mut j0 = 0;
    while j0 < b {
        // SAFETY: the caller guarantees AVX2. The group's planes
        // `j0..j0 + g` (g = min(b - j0, 4)) start at `j0 * n` and the last
        // ends at `(j0 + g) * n <= b * n <= planes.len()`; the kernel reads
        // the first `end <= n` bytes of each and of `code`.
        let sum = unsafe {
            let p = pp.add(j0 * n);
            match b - j0 {
                1 => bit_planes_group::<1>(pc, p, n, end),
                2 => bit_planes_group::<2>(pc, p, n, end),
                3 => bit_planes_group::<3>(pc, p, n, end),
                _ => bit_planes_group::<4>(pc, p, n, end),
            }
        };
        if j0 < 32 {
            total = total.wrapping_add((sum as u32) << j0);
        }
        j0 += 4;
    }
    if end < n {
        total = total.wrapping_add(scalar::bit_planes_words(&code[end..], &planes[end..], n, b));
    }
    total
}

/// `Σ_{k < G} 2^k * popcount(code[..end] & plane_k[..end])` with `code` at
/// `pc` and plane `k` at `pp + k * stride`, `end` a multiple of 16.
///
/// Per code block, the low nibbles (`code & 0x0f`) and high nibbles
/// (`code & 0xf0`) of the code are split once; per plane, `plane & low` is
/// already a lookup index and `plane & high` becomes one with a 16-bit shift
/// (no bits cross into the neighbouring byte, whose low nibble is masked
/// off). The lookup table of plane `k` holds the nibble bit counts times
/// `2^k`, so the weighted counts add up directly.
///
/// # Safety
/// The CPU must support AVX2; `end` bytes must be readable at `pc` and at
/// `pp + k * stride` for every `k < G` (no alignment needed). `G <= 4`, so
/// that the weighted byte counts (at most 8 · (2^G - 1)) fit in a byte.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn bit_planes_group<const G: usize>(
    pc: *const u8,
    pp: *const u8,
    stride: usize,
    end: usize,
) -> u64 {
    // SAFETY: AVX2 support and the readable ranges are guaranteed by the
    // caller: every 32-byte (resp. 16-byte) load at offset `i` satisfies
    // `i + 32 <= end` (resp. `i + 16 <= end`). The loads are unaligned.
    unsafe {
        let mut tables = [nibble_lookup(); G];
        for k in 1..G {
            tables[k] = _mm256_add_epi8(tables[k - 1], tables[k - 1]);
        }
        let low = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i + 32 <= end {
            let c = _mm256_loadu_si256(pc.add(i).cast::<__m256i>());
            let (c_lo, c_hi) = (_mm256_and_si256(c, low), _mm256_andnot_si256(low, c));
            let mut s = _mm256_setzero_si256();
            for (k, &table) in tables.iter().enumerate() {
                let p = _mm256_loadu_si256(pp.add(k * stride + i).cast::<__m256i>());
                let lo = _mm256_and_si256(p, c_lo);
                let hi = _mm256_srli_epi16::<4>(_mm256_and_si256(p, c_hi));
                s = _mm256_add_epi8(
                    s,
                    _mm256_add_epi8(
                        _mm256_shuffle_epi8(table, lo),
                        _mm256_shuffle_epi8(table, hi),
                    ),
                );
            }
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(s, zero));
            i += 32;
        }
        let mut total = hsum_epi64(acc);
        if i + 16 <= end {
            let low = _mm256_castsi256_si128(low);
            let c = _mm_loadu_si128(pc.add(i).cast::<__m128i>());
            let (c_lo, c_hi) = (_mm_and_si128(c, low), _mm_andnot_si128(low, c));
            let mut s = _mm_setzero_si128();
            for (k, &table) in tables.iter().enumerate() {
                let table = _mm256_castsi256_si128(table);
                let p = _mm_loadu_si128(pp.add(k * stride + i).cast::<__m128i>());
                let lo = _mm_and_si128(p, c_lo);
                let hi = _mm_srli_epi16::<4>(_mm_and_si128(p, c_hi));
                s = _mm_add_epi8(
                    s,
                    _mm_add_epi8(_mm_shuffle_epi8(table, lo), _mm_shuffle_epi8(table, hi)),
                );
            }
            let s = _mm_sad_epu8(s, _mm_setzero_si128());
            total = total
                .wrapping_add(_mm_cvtsi128_si64(s) as u64)
                .wrapping_add(_mm_extract_epi64::<1>(s) as u64);
        }
        total
    }
}

/// Stages `h = 1, 2, 4` of the Walsh–Hadamard transform of the 8 lanes of
/// `v`: each stage adds `v` with the sign of its upper partners flipped to
/// `v` with the partners swapped, the same `u + v` and `u - v` as the
/// scalar butterflies.
#[target_feature(enable = "avx2")]
#[inline]
fn fwht8(v: __m256) -> __m256 {
    let s1 = _mm256_setr_ps(0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0);
    let s2 = _mm256_setr_ps(0.0, 0.0, -0.0, -0.0, 0.0, 0.0, -0.0, -0.0);
    let s4 = _mm256_setr_ps(0.0, 0.0, 0.0, 0.0, -0.0, -0.0, -0.0, -0.0);
    // [x1, x0, x3, x2, …] + [x0, -x1, x2, -x3, …]
    let v = _mm256_add_ps(_mm256_permute_ps::<0b10_11_00_01>(v), _mm256_xor_ps(v, s1));
    // [x2, x3, x0, x1, …] + [x0, x1, -x2, -x3, …]
    let v = _mm256_add_ps(_mm256_permute_ps::<0b01_00_11_10>(v), _mm256_xor_ps(v, s2));
    // [x4..x7, x0..x3] + [x0..x3, -x4..-x7]
    _mm256_add_ps(_mm256_permute2f128_ps::<0x01>(v, v), _mm256_xor_ps(v, s4))
}

/// AVX2 fast Walsh–Hadamard transform: stages 1, 2 and 4 inside 8-float
/// vectors ([`fwht8`]), fused with stages 8 and 16 when `n >= 32`; then the
/// remaining stages two at a time (radix 4: one load and one store per
/// element for two stages), the last one alone if their count is odd. Every
/// element sees the same additions in the same order as in the scalar
/// kernel, so the results are identical.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn fwht_avx2(x: &mut [f32]) {
    let x = scalar::pow2_prefix(x);
    let n = x.len();
    if n < 8 {
        scalar::fwht_pow2(x);
        return;
    }
    let p = x.as_mut_ptr();
    // SAFETY: the caller guarantees AVX2. `n` is a power of two >= 8, so
    // every block `base..base + 4 * h` (resp. `2 * h`, `8`) of a pass lies in
    // `0..n`, and each 8-float access at `j + m * h` with `j + 8 <= base + h`
    // stays inside its block. The loads and stores are unaligned and go
    // through the one pointer `p` to the exclusively borrowed `x`.
    unsafe {
        let load = |j: usize| _mm256_loadu_ps(p.add(j));
        let store = |j: usize, v: __m256| _mm256_storeu_ps(p.add(j), v);
        let mut h;
        if n >= 32 {
            let mut base = 0;
            while base < n {
                let a0 = fwht8(load(base));
                let a1 = fwht8(load(base + 8));
                let a2 = fwht8(load(base + 16));
                let a3 = fwht8(load(base + 24));
                let (b0, b1) = (_mm256_add_ps(a0, a1), _mm256_sub_ps(a0, a1));
                let (b2, b3) = (_mm256_add_ps(a2, a3), _mm256_sub_ps(a2, a3));
                store(base, _mm256_add_ps(b0, b2));
                store(base + 8, _mm256_add_ps(b1, b3));
                store(base + 16, _mm256_sub_ps(b0, b2));
                store(base + 24, _mm256_sub_ps(b1, b3));
                base += 32;
            }
            h = 32;
        } else {
            let mut base = 0;
            while base < n {
                store(base, fwht8(load(base)));
                base += 8;
            }
            h = 8;
        }
        while 4 * h <= n {
            let mut base = 0;
            while base < n {
                let mut j = base;
                while j < base + h {
                    let (a0, a1) = (load(j), load(j + h));
                    let (a2, a3) = (load(j + 2 * h), load(j + 3 * h));
                    let (b0, b1) = (_mm256_add_ps(a0, a1), _mm256_sub_ps(a0, a1));
                    let (b2, b3) = (_mm256_add_ps(a2, a3), _mm256_sub_ps(a2, a3));
                    store(j, _mm256_add_ps(b0, b2));
                    store(j + h, _mm256_add_ps(b1, b3));
                    store(j + 2 * h, _mm256_sub_ps(b0, b2));
                    store(j + 3 * h, _mm256_sub_ps(b1, b3));
                    j += 8;
                }
                base += 4 * h;
            }
            h *= 4;
        }
        if h < n {
            // One stage left: h = n / 2.
            let mut j = 0;
            while j < h {
                let (a, b) = (load(j), load(j + h));
                store(j, _mm256_add_ps(a, b));
                store(j + h, _mm256_sub_ps(a, b));
                j += 8;
            }
        }
    }
}
