//! aarch64 NEON kernels. NEON is a baseline feature of the usual aarch64
//! targets; the module is gated on `target_feature = "neon"` so that a
//! soft-float target falls back to the scalar kernels instead.

use super::scalar;
use std::arch::aarch64::*;

// The `i8` dot product runs on the portable code here (not measured on aarch64 yet): the
// build then copies full-precision vectors instead of 8-bit ones.
pub(super) use super::scalar::dot_i8;

pub(super) fn has_fast_i8() -> bool {
    false
}

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

/// NEON `Σ (a[i] - s[i] * c[i])²`, 4 accumulators of 4 lanes: 16 codes
/// widened to `u16`, `u32` and converted to `f32`, the difference one fused
/// `a - s * c` (`vfmsq_f32`).
#[inline]
pub(crate) fn u8_l2_affine(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = a.len().min(s.len()).min(c.len());
    let (pa, ps, pc) = (a.as_ptr(), s.as_ptr(), c.as_ptr());
    let mut i = 0;
    // SAFETY: NEON enabled at compile time (module cfg). Every load reads
    // the 16 (resp. 8) bytes or the 4 floats at `j..` with the last index
    // below `i + 16 <= n` (resp. `i + 8 <= n`) by the loop conditions, and
    // `n` is the shortest of the three lengths, so all reads are in bounds.
    // `vld1q_u8` / `vld1_u8` need no alignment, `vld1q_f32` only `f32`
    // alignment, which `&[f32]` provides.
    let sum = unsafe {
        let diff = |j: usize, codes: float32x4_t| {
            vfmsq_f32(vld1q_f32(pa.add(j)), vld1q_f32(ps.add(j)), codes)
        };
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut acc2 = vdupq_n_f32(0.0);
        let mut acc3 = vdupq_n_f32(0.0);
        while i + 16 <= n {
            let codes = vld1q_u8(pc.add(i));
            let lo = vmovl_u8(vget_low_u8(codes));
            let hi = vmovl_high_u8(codes);
            let d0 = diff(i, vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))));
            let d1 = diff(i + 4, vcvtq_f32_u32(vmovl_high_u16(lo)));
            let d2 = diff(i + 8, vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))));
            let d3 = diff(i + 12, vcvtq_f32_u32(vmovl_high_u16(hi)));
            acc0 = vfmaq_f32(acc0, d0, d0);
            acc1 = vfmaq_f32(acc1, d1, d1);
            acc2 = vfmaq_f32(acc2, d2, d2);
            acc3 = vfmaq_f32(acc3, d3, d3);
            i += 16;
        }
        if i + 8 <= n {
            let lo = vmovl_u8(vld1_u8(pc.add(i)));
            let d0 = diff(i, vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))));
            let d1 = diff(i + 4, vcvtq_f32_u32(vmovl_high_u16(lo)));
            acc0 = vfmaq_f32(acc0, d0, d0);
            acc1 = vfmaq_f32(acc1, d1, d1);
            i += 8;
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)))
    };
    sum + scalar::u8_l2_affine_tail(&a[i..n], &s[i..n], &c[i..n])
}

/// NEON `Σ w[i] * (x[i] - y[i])²`, 4 accumulators of 4 lanes: the byte
/// differences `|x - y|` (`vabdq_u8`) squared exactly into `u16` lanes
/// (`vmull_u8`, at most 255²), widened to `u32`, converted to `f32` and
/// multiplied-added to the weights.
#[inline]
pub(crate) fn u8_l2_weighted(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    let n = w.len().min(x.len()).min(y.len());
    let (pw, px, py) = (w.as_ptr(), x.as_ptr(), y.as_ptr());
    let mut i = 0;
    // SAFETY: as in `u8_l2_affine`: NEON enabled at compile time, and every
    // load of 16 / 8 bytes or 4 floats ends at most at `i + 16 <= n`
    // (resp. `i + 8 <= n`), `n` the shortest of the three lengths.
    let sum = unsafe {
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut acc2 = vdupq_n_f32(0.0);
        let mut acc3 = vdupq_n_f32(0.0);
        while i + 16 <= n {
            let d = vabdq_u8(vld1q_u8(px.add(i)), vld1q_u8(py.add(i)));
            let lo = vmull_u8(vget_low_u8(d), vget_low_u8(d));
            let hi = vmull_high_u8(d, d);
            let q0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
            let q1 = vcvtq_f32_u32(vmovl_high_u16(lo));
            let q2 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
            let q3 = vcvtq_f32_u32(vmovl_high_u16(hi));
            acc0 = vfmaq_f32(acc0, vld1q_f32(pw.add(i)), q0);
            acc1 = vfmaq_f32(acc1, vld1q_f32(pw.add(i + 4)), q1);
            acc2 = vfmaq_f32(acc2, vld1q_f32(pw.add(i + 8)), q2);
            acc3 = vfmaq_f32(acc3, vld1q_f32(pw.add(i + 12)), q3);
            i += 16;
        }
        if i + 8 <= n {
            let d = vabd_u8(vld1_u8(px.add(i)), vld1_u8(py.add(i)));
            let sq = vmull_u8(d, d);
            let q0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(sq)));
            let q1 = vcvtq_f32_u32(vmovl_high_u16(sq));
            acc0 = vfmaq_f32(acc0, vld1q_f32(pw.add(i)), q0);
            acc1 = vfmaq_f32(acc1, vld1q_f32(pw.add(i + 4)), q1);
            i += 8;
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)))
    };
    sum + scalar::u8_l2_weighted_tail(&w[i..n], &x[i..n], &y[i..n])
}

/// NEON bit-plane dot product: the planes in groups of up to 4
/// ([`bit_planes_group`]), each group's sum shifted by its first plane. The
/// tail (< 16 bytes) uses the portable 64-bit word loop.
#[inline]
pub(crate) fn bit_planes_dot(code: &[u8], planes: &[u8]) -> u32 {
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
        // SAFETY: the group's planes `j0..j0 + g` (g = min(b - j0, 4))
        // start at `j0 * n` and the last ends at
        // `(j0 + g) * n <= b * n <= planes.len()`; the kernel reads the
        // first `end <= n` bytes of each and of `code`.
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
            total = total.wrapping_add(sum << j0);
        }
        j0 += 4;
    }
    if end < n {
        total = total.wrapping_add(scalar::bit_planes_words(&code[end..], &planes[end..], n, b));
    }
    total
}

/// `Σ_{k < G} 2^k * popcount(code[..end] & plane_k[..end])` (wrapping) with
/// `code` at `pc` and plane `k` at `pp + k * stride`, `end` a multiple of
/// 16. For every 16 code bytes, the per-byte counts of `code & plane_k`
/// (`vcntq_u8`) are combined by Horner's rule inside the bytes (at most
/// 8 · 15 = 120), pairwise-accumulated into 16-bit lanes (at most 240 per
/// lane per block) and folded into the `u32` sum every [`BATCH`] blocks.
///
/// # Safety
/// `end` bytes must be readable at `pc` and at `pp + k * stride` for every
/// `k < G` (no alignment needed). `G <= 4`, so that the weighted byte counts
/// (at most 8 · (2^G - 1)) fit in a byte.
#[inline(always)]
unsafe fn bit_planes_group<const G: usize>(
    pc: *const u8,
    pp: *const u8,
    stride: usize,
    end: usize,
) -> u32 {
    /// 16-byte blocks per 16-bit accumulator: 256 * 240 = 61440 < 65535.
    const BATCH: usize = 256;
    let mut sum = 0u32;
    // SAFETY: NEON enabled at compile time (module cfg). Every 16-byte load
    // at offset `i` of `code` or of a plane satisfies `i + 16 <= end` (`end`
    // and `i` are multiples of 16), within the ranges the caller guarantees
    // readable. `vld1q_u8` needs no alignment.
    unsafe {
        let mut i = 0;
        while i < end {
            let stop = end.min(i + 16 * BATCH);
            let mut acc = vdupq_n_u16(0);
            while i < stop {
                let c = vld1q_u8(pc.add(i));
                let mut s = vdupq_n_u8(0);
                for k in (0..G).rev() {
                    let counts = vcntq_u8(vandq_u8(c, vld1q_u8(pp.add(k * stride + i))));
                    s = vaddq_u8(vaddq_u8(s, s), counts);
                }
                acc = vpadalq_u8(acc, s);
                i += 16;
            }
            sum = sum.wrapping_add(vaddlvq_u16(acc));
        }
    }
    sum
}

/// NEON population count, as [`hamming`] without the xor.
#[inline]
pub(crate) fn popcount(bytes: &[u8]) -> u32 {
    /// 64-byte blocks per 16-bit accumulator: 256 * 64 = 16384 < 65535.
    const BATCH: usize = 256;
    let n = bytes.len();
    let p = bytes.as_ptr();
    let mut i = 0;
    let mut total: u32 = 0;
    // SAFETY: NEON enabled at compile time (module cfg). Every 16-byte
    // load at offset `j` satisfies `j + 16 <= n` by the loop conditions
    // (`i + 64 <= n` covers the loads at `i + 48`); `vld1q_u8` has no
    // alignment requirement.
    unsafe {
        let count = |j: usize| vcntq_u8(vld1q_u8(p.add(j)));
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
    total + scalar::popcount_words(&bytes[i..n])
}

/// NEON fast Walsh–Hadamard transform: stages 1, 2 and 4 inside blocks of 8
/// floats (two vectors; the first two stages add `v` with the sign of its
/// upper partners flipped, by multiplying with ±1, to `v` with the partners
/// swapped), then every further stage on 4 floats at a time. Every element
/// sees the same additions in the same order as in the scalar kernel.
#[inline]
pub(crate) fn fwht(x: &mut [f32]) {
    let x = scalar::pow2_prefix(x);
    let n = x.len();
    if n < 8 {
        scalar::fwht_pow2(x);
        return;
    }
    let p = x.as_mut_ptr();
    // SAFETY: NEON enabled at compile time (module cfg). `n` is a power of
    // two >= 8, so every block `base..base + 8` (resp. `base..base + 2 * h`)
    // lies in `0..n`, and each 4-float access at `j` or `j + h` with
    // `j + 4 <= base + h` stays inside its block. The loads and stores go
    // through the one pointer `p` to the exclusively borrowed `x` and need
    // only `f32` alignment. The sign vectors are loaded from local arrays.
    unsafe {
        let s1 = vld1q_f32([1.0f32, -1.0, 1.0, -1.0].as_ptr());
        let s2 = vld1q_f32([1.0f32, 1.0, -1.0, -1.0].as_ptr());
        let mut base = 0;
        while base < n {
            let mut v0 = vld1q_f32(p.add(base));
            let mut v1 = vld1q_f32(p.add(base + 4));
            // [x1, x0, x3, x2] + [x0, -x1, x2, -x3]
            v0 = vaddq_f32(vrev64q_f32(v0), vmulq_f32(v0, s1));
            v1 = vaddq_f32(vrev64q_f32(v1), vmulq_f32(v1, s1));
            // [x2, x3, x0, x1] + [x0, x1, -x2, -x3]
            v0 = vaddq_f32(vextq_f32::<2>(v0, v0), vmulq_f32(v0, s2));
            v1 = vaddq_f32(vextq_f32::<2>(v1, v1), vmulq_f32(v1, s2));
            vst1q_f32(p.add(base), vaddq_f32(v0, v1));
            vst1q_f32(p.add(base + 4), vsubq_f32(v0, v1));
            base += 8;
        }
        let mut h = 8;
        while h < n {
            let mut base = 0;
            while base < n {
                let mut j = base;
                while j < base + h {
                    let a = vld1q_f32(p.add(j));
                    let b = vld1q_f32(p.add(j + h));
                    vst1q_f32(p.add(j), vaddq_f32(a, b));
                    vst1q_f32(p.add(j + h), vsubq_f32(a, b));
                    j += 4;
                }
                base += 2 * h;
            }
            h *= 2;
        }
    }
}
