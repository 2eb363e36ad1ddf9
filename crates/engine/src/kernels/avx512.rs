//! x86-64 kernels for CPUs with AVX-512 (F, BW and VL: every AVX-512 CPU since Skylake-SP):
//! the `f32` distances and the byte-code distances of `int8` indexes, 16 lanes at a time, and
//! the build's `dot_i8`, 32 bytes at a time; with VPOPCNTDQ also hamming and popcount, 64
//! bytes at a time. A slice's last partial group is read with a masked load (the
//! lanes past the end read as zero and never fault), so no scalar tail is needed.
//!
//! `x86.rs` chooses these at run time when the CPU has the features. Measured with
//! `crates/kernel-bench` (L1-resident data, 2026-12-02, one recent Xeon with AVX-512; on older
//! ones, Skylake-SP's, 512-bit arithmetic lowers the clock and gains less): dot at 384
//! dimensions 38.0 → 30.7 ns, at 1,536 124 → 114 ns; hamming of 1,536 bits 10.5 → 5.9 ns. A
//! search's vectors mostly come from memory, not the cache, so whole searches gain less: at
//! 384 dimensions an unquantized search is unchanged, an `int8` one 5–7 % faster. The build's
//! `dot_i8` of 8-bit unit vectors, 32 bytes at a time, builds 100k × 384 in 3.69-3.76 s
//! against 3.92-4.60 s with AVX2's (AMD EPYC, 2026-12-05, alternating runs), GloVe's 50-d
//! 1.5 % faster.

use std::arch::x86_64::*;

/// The mask of the first `n` (< 16) lanes.
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    debug_assert!(n < 16);
    ((1u32 << n) - 1) as __mmask16
}

/// The sum of the lanes of four accumulators.
#[target_feature(enable = "avx512f")]
#[inline]
fn sum4(a: __m512, b: __m512, c: __m512, d: __m512) -> f32 {
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)))
}

/// Folds `step(acc, x, y)` over the 16-float groups `x` of `a` and `y` of `b` into 4
/// accumulators, and returns the sum of their lanes. The last partial group is read with a
/// masked load, its lanes past the end as zeros: `step` must leave an accumulator as it is for
/// `x = y = 0` (true of the distances below).
///
/// # Safety
/// The CPU must support AVX-512 F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn fold_pairs(a: &[f32], b: &[f32], step: impl Fn(__m512, __m512, __m512) -> __m512) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX-512 F. Every full load reads the 16 floats at
    // `j..j + 16` with `j + 16 <= n` by the loop conditions (`i + 64 <= n` covers the loads at
    // `i + 48`), `n` being the shorter length; the masked loads of the last `n - i < 16` floats
    // read only lanes below `n` (masked-out lanes are not accessed and cannot fault). The
    // loads are unaligned.
    unsafe {
        let pair = |j: usize| (_mm512_loadu_ps(pa.add(j)), _mm512_loadu_ps(pb.add(j)));
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut acc2 = _mm512_setzero_ps();
        let mut acc3 = _mm512_setzero_ps();
        while i + 64 <= n {
            let ((x0, y0), (x1, y1)) = (pair(i), pair(i + 16));
            let ((x2, y2), (x3, y3)) = (pair(i + 32), pair(i + 48));
            acc0 = step(acc0, x0, y0);
            acc1 = step(acc1, x1, y1);
            acc2 = step(acc2, x2, y2);
            acc3 = step(acc3, x3, y3);
            i += 64;
        }
        while i + 16 <= n {
            let (x, y) = pair(i);
            acc0 = step(acc0, x, y);
            i += 16;
        }
        if i < n {
            let k = first(n - i);
            let (x, y) = (
                _mm512_maskz_loadu_ps(k, pa.add(i)),
                _mm512_maskz_loadu_ps(k, pb.add(i)),
            );
            acc1 = step(acc1, x, y);
        }
        sum4(acc0, acc1, acc2, acc3)
    }
}

/// AVX-512 dot product, 4 accumulators of 16 lanes.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: the caller guarantees AVX-512 F, `fold_pairs`' only precondition.
    unsafe { fold_pairs(a, b, |acc, x, y| _mm512_fmadd_ps(x, y, acc)) }
}

/// AVX-512 squared euclidean distance, 4 accumulators of 16 lanes.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn l2_squared_avx512(a: &[f32], b: &[f32]) -> f32 {
    let step = |acc, x, y| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    };
    // SAFETY: the caller guarantees AVX-512 F, `fold_pairs`' only precondition.
    unsafe { fold_pairs(a, b, step) }
}

/// AVX-512 Manhattan distance, 4 accumulators of 16 lanes.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn l1_avx512(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: the caller guarantees AVX-512 F, `fold_pairs`' only precondition.
    unsafe {
        fold_pairs(a, b, |acc, x, y| {
            _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)))
        })
    }
}

/// `Σ (a[i] - s[i] * c[i])²`, 16 dimensions at a time: the bytes widened to floats, the
/// difference one fused `a - s * c`, 2 accumulators.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn u8_l2_affine_avx512(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = a.len().min(s.len()).min(c.len());
    let (pa, ps, pc) = (a.as_ptr(), s.as_ptr(), c.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX-512 F, BW and VL. Every full load reads 16 floats or 16
    // bytes at `j..j + 16` with `j + 16 <= n` by the loop conditions (`i + 32 <= n` covers the
    // loads at `i + 16`), `n` being the shortest length; the masked loads of the last
    // `n - i < 16` dimensions read only lanes below `n`. The loads are unaligned.
    unsafe {
        let diff = |j: usize| {
            let code = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                pc.add(j).cast::<__m128i>(),
            )));
            _mm512_fnmadd_ps(_mm512_loadu_ps(ps.add(j)), code, _mm512_loadu_ps(pa.add(j)))
        };
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        while i + 32 <= n {
            let (d0, d1) = (diff(i), diff(i + 16));
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            i += 32;
        }
        if i + 16 <= n {
            let d = diff(i);
            acc0 = _mm512_fmadd_ps(d, d, acc0);
            i += 16;
        }
        if i < n {
            let k = first(n - i);
            let code = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(
                k,
                pc.add(i).cast::<i8>(),
            )));
            let d = _mm512_fnmadd_ps(
                _mm512_maskz_loadu_ps(k, ps.add(i)),
                code,
                _mm512_maskz_loadu_ps(k, pa.add(i)),
            );
            acc1 = _mm512_fmadd_ps(d, d, acc1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }
}

/// `Σ w[i] * (x[i] - y[i])²`: the byte differences `|x - y|` (`max - min`) of 64 dimensions at
/// a time, widened to floats 16 by 16 and squared exactly (at most 255²), then multiplied-added
/// to the weights.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn u8_l2_weighted_avx512(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    let n = w.len().min(x.len()).min(y.len());
    let (pw, px, py) = (w.as_ptr(), x.as_ptr(), y.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX-512 F, BW and VL. Every full load reads 64 bytes at
    // `i..i + 64` with `i + 64 <= n`, or 16 floats or 16 bytes at `j..j + 16` with
    // `j + 16 <= n`, by the loop conditions, `n` being the shortest length; the masked loads of
    // the last `n - i < 16` dimensions read only lanes below `n`. The loads are unaligned.
    unsafe {
        // The squares of 16 byte differences, as floats.
        let squares = |d: __m128i| {
            let d = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(d));
            _mm512_mul_ps(d, d)
        };
        let diff16 =
            |vx: __m128i, vy: __m128i| _mm_sub_epi8(_mm_max_epu8(vx, vy), _mm_min_epu8(vx, vy));
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut acc2 = _mm512_setzero_ps();
        let mut acc3 = _mm512_setzero_ps();
        while i + 64 <= n {
            let vx = _mm512_loadu_si512(px.add(i).cast::<__m512i>());
            let vy = _mm512_loadu_si512(py.add(i).cast::<__m512i>());
            let d = _mm512_sub_epi8(_mm512_max_epu8(vx, vy), _mm512_min_epu8(vx, vy));
            let q0 = squares(_mm512_extracti32x4_epi32::<0>(d));
            let q1 = squares(_mm512_extracti32x4_epi32::<1>(d));
            let q2 = squares(_mm512_extracti32x4_epi32::<2>(d));
            let q3 = squares(_mm512_extracti32x4_epi32::<3>(d));
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), q0, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 16)), q1, acc1);
            acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 32)), q2, acc2);
            acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 48)), q3, acc3);
            i += 64;
        }
        while i + 16 <= n {
            let d = diff16(
                _mm_loadu_si128(px.add(i).cast::<__m128i>()),
                _mm_loadu_si128(py.add(i).cast::<__m128i>()),
            );
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), squares(d), acc0);
            i += 16;
        }
        if i < n {
            let k = first(n - i);
            let d = diff16(
                _mm_maskz_loadu_epi8(k, px.add(i).cast::<i8>()),
                _mm_maskz_loadu_epi8(k, py.add(i).cast::<i8>()),
            );
            acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, pw.add(i)), squares(d), acc1);
        }
        sum4(acc0, acc1, acc2, acc3)
    }
}

/// The mask of the first `n` (< 64) bytes.
#[inline(always)]
fn first_bytes(n: usize) -> __mmask64 {
    debug_assert!(n < 64);
    (1u64 << n) - 1
}

/// The 64 bytes at `p + i`, or the `n - i` (< 64) left before `n` with zeros after them.
///
/// # Safety
/// The CPU must support AVX-512 F and BW, `i < n`, and the bytes `p + i .. p + min(i + 64, n)`
/// must be readable (a masked load does not touch the lanes past `n`).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn load_bytes(p: *const u8, i: usize, n: usize) -> __m512i {
    // SAFETY: the caller's contract above; both loads are unaligned, and the masked one reads
    // only the lanes below `n - i`.
    unsafe {
        if i + 64 <= n {
            _mm512_loadu_si512(p.add(i).cast::<__m512i>())
        } else {
            _mm512_maskz_loadu_epi8(first_bytes(n - i), p.add(i).cast::<i8>())
        }
    }
}

/// Hamming distance with the AVX-512 64-bit-lane popcount, 64 bytes at a time.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq")]
pub(crate) unsafe fn hamming_vpopcnt(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees the features; every `load_bytes(p, i, n)` has `i < n`, `n`
    // the shorter length, so it reads only bytes of both slices.
    unsafe {
        let mut acc = _mm512_setzero_si512();
        while i < n {
            let x = _mm512_xor_si512(load_bytes(pa, i, n), load_bytes(pb, i, n));
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
            i += 64;
        }
        _mm512_reduce_add_epi64(acc) as u32
    }
}

/// Number of set bits with the AVX-512 64-bit-lane popcount, 64 bytes at a time.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq")]
pub(crate) unsafe fn popcount_vpopcnt(bytes: &[u8]) -> u32 {
    let (n, p) = (bytes.len(), bytes.as_ptr());
    let mut i = 0;
    // SAFETY: as in `hamming_vpopcnt`, with `n` the slice's length.
    unsafe {
        let mut acc = _mm512_setzero_si512();
        while i < n {
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(load_bytes(p, i, n)));
            i += 64;
        }
        _mm512_reduce_add_epi64(acc) as u32
    }
}

/// Dot product of two `i8` slices, 32 bytes at a time: widened to 16-bit lanes and multiplied
/// and summed in pairs into 32-bit lanes (`vpmaddwd`), 2 accumulators; the last partial group
/// is a masked load. Exact in `i32` below 2^17 elements, as the others.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn dot_i8_avx512(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees AVX-512 F, BW and VL. Every full load reads the 32 bytes
    // at `j..j + 32` with `j + 32 <= n` by the loop conditions (`i + 64 <= n` covers the loads
    // at `i + 32`), `n` being the shorter length; the masked loads of the last `n - i < 32`
    // bytes read only lanes below `n` (the others read as zero and never fault). The loads are
    // unaligned.
    unsafe {
        let wide = |v: __m256i| _mm512_cvtepi8_epi16(v);
        let load = |p: *const i8| wide(_mm256_loadu_si256(p.cast::<__m256i>()));
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        while i + 64 <= n {
            acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(load(pa.add(i)), load(pb.add(i))));
            acc1 = _mm512_add_epi32(
                acc1,
                _mm512_madd_epi16(load(pa.add(i + 32)), load(pb.add(i + 32))),
            );
            i += 64;
        }
        if i + 32 <= n {
            acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(load(pa.add(i)), load(pb.add(i))));
            i += 32;
        }
        if i < n {
            let mask = ((1u64 << (n - i)) - 1) as __mmask32;
            let x = wide(_mm256_maskz_loadu_epi8(mask, pa.add(i)));
            let y = wide(_mm256_maskz_loadu_epi8(mask, pb.add(i)));
            acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(x, y));
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
    }
}
