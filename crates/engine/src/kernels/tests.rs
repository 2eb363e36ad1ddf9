use super::*;

// Around every width and unrolling of the SIMD kernels (8, 16, 32, 64 lanes) and the usual sizes.
const LENGTHS: [usize; 18] = [
    0, 1, 3, 7, 8, 15, 16, 17, 33, 50, 63, 64, 65, 80, 127, 384, 1000, 1536,
];

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
type AffineFn = Box<dyn Fn(&[f32], &[f32], &[u8]) -> f32>;
type WeightedFn = Box<dyn Fn(&[f32], &[u8], &[u8]) -> f32>;
type CountFn = Box<dyn Fn(&[u8]) -> u32>;
type FwhtFn = Box<dyn Fn(&mut [f32])>;

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
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        v.push(F32Kernels {
            name: "avx512",
            // SAFETY: AVX-512 F support was just checked.
            dot: Box::new(|a: &[f32], b: &[f32]| unsafe { avx512::dot_avx512(a, b) }),
            // SAFETY: AVX-512 F support was just checked.
            l2: Box::new(|a: &[f32], b: &[f32]| unsafe { avx512::l2_squared_avx512(a, b) }),
            // SAFETY: AVX-512 F support was just checked.
            l1: Box::new(|a: &[f32], b: &[f32]| unsafe { avx512::l1_avx512(a, b) }),
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
        if x86::has_avx512_popcnt() {
            // SAFETY: AVX-512 F, BW and VPOPCNTDQ support was just checked.
            let f = |a: &[u8], b: &[u8]| unsafe { avx512::hamming_vpopcnt(a, b) };
            v.push(("avx512", Box::new(f)));
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
    assert!(
        ["avx512", "avx2+fma", "neon", "scalar"].contains(&name),
        "{name}"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("fma")
    {
        assert_eq!(name, "avx512");
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
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
    // Every variant directly (the dispatch above takes one), past the unrolled loops.
    let (a, b) = (rng.f32s(200), rng.f32s(130));
    for k in f32_kernels() {
        let name = k.name;
        assert_close(
            name,
            130,
            (k.dot)(&a, &b),
            scalar::dot(&a[..130], &b),
            300.0,
        );
        assert_close(
            name,
            130,
            (k.l2)(&b, &a),
            scalar::l2_squared(&b, &a[..130]),
            300.0,
        );
        assert_close(name, 130, (k.l1)(&a, &b), scalar::l1(&a[..130], &b), 300.0);
    }
    for (name, k) in bit_kernels() {
        assert_eq!(k(&x, &y), ref_hamming(&x[..259], &y), "{name}");
        assert_eq!(k(&y, &x), ref_hamming(&y, &x[..259]), "{name}");
    }
}

/// Lengths of the tests of the kernels added with the quantized codes.
const CODE_LENGTHS: [usize; 25] = [
    0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 128, 192, 255, 384, 1000,
    1536, 4099,
];

/// Byte patterns for the code kernels: random, the extremes 0 and 255 and
/// alternations of them.
fn byte_patterns(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    vec![
        rng.bytes(n),
        rng.bytes(n),
        vec![0; n],
        vec![255; n],
        (0..n).map(|i| if i % 2 == 0 { 0 } else { 255 }).collect(),
        (0..n)
            .map(|_| match rng.next_u64() % 3 {
                0 => 0,
                1 => 255,
                _ => rng.next_u64() as u8,
            })
            .collect(),
    ]
}

fn affine_kernels() -> Vec<(&'static str, AffineFn)> {
    #[allow(unused_mut)] // only extended on architectures with a SIMD path
    let mut v: Vec<(&'static str, AffineFn)> = vec![("dispatch", Box::new(u8_l2_affine))];
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx2_fma() {
        // SAFETY: AVX2 + FMA support was just checked.
        let f = |a: &[f32], s: &[f32], c: &[u8]| unsafe { x86::u8_l2_affine_avx2(a, s, c) };
        v.push(("avx2", Box::new(f)));
    }
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        // SAFETY: AVX-512 F, BW and VL support was just checked.
        let f = |a: &[f32], s: &[f32], c: &[u8]| unsafe { avx512::u8_l2_affine_avx512(a, s, c) };
        v.push(("avx512", Box::new(f)));
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    v.push(("neon", Box::new(neon::u8_l2_affine)));
    v
}

fn weighted_kernels() -> Vec<(&'static str, WeightedFn)> {
    #[allow(unused_mut)] // only extended on architectures with a SIMD path
    let mut v: Vec<(&'static str, WeightedFn)> = vec![("dispatch", Box::new(u8_l2_weighted))];
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx2_fma() {
        // SAFETY: AVX2 + FMA support was just checked.
        let f = |w: &[f32], x: &[u8], y: &[u8]| unsafe { x86::u8_l2_weighted_avx2(w, x, y) };
        v.push(("avx2", Box::new(f)));
    }
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        // SAFETY: AVX-512 F, BW and VL support was just checked.
        let f = |w: &[f32], x: &[u8], y: &[u8]| unsafe { avx512::u8_l2_weighted_avx512(w, x, y) };
        v.push(("avx512", Box::new(f)));
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    v.push(("neon", Box::new(neon::u8_l2_weighted)));
    v
}

fn planes_kernels() -> Vec<(&'static str, BitFn)> {
    #[allow(unused_mut)] // only extended on architectures with a SIMD path
    let mut v: Vec<(&'static str, BitFn)> = vec![
        ("dispatch", Box::new(bit_planes_dot)),
        ("scalar", Box::new(scalar::bit_planes_dot)),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_popcnt() {
            // SAFETY: POPCNT support was just checked.
            let f = |c: &[u8], p: &[u8]| unsafe { x86::bit_planes_dot_popcnt(c, p) };
            v.push(("popcnt", Box::new(f)));
        }
        if x86::has_avx2_popcnt() {
            // SAFETY: AVX2 + POPCNT support was just checked.
            let f = |c: &[u8], p: &[u8]| unsafe { x86::bit_planes_dot_avx2(c, p) };
            v.push(("avx2", Box::new(f)));
        }
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    v.push(("neon", Box::new(neon::bit_planes_dot)));
    v
}

fn popcount_kernels() -> Vec<(&'static str, CountFn)> {
    #[allow(unused_mut)] // only extended on architectures with a SIMD path
    let mut v: Vec<(&'static str, CountFn)> = vec![
        ("dispatch", Box::new(popcount)),
        ("scalar", Box::new(scalar::popcount)),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_popcnt() {
            // SAFETY: POPCNT support was just checked.
            let f = |a: &[u8]| unsafe { x86::popcount_popcnt(a) };
            v.push(("popcnt", Box::new(f)));
        }
        if x86::has_avx2_popcnt() {
            // SAFETY: AVX2 + POPCNT support was just checked.
            let f = |a: &[u8]| unsafe { x86::popcount_avx2(a) };
            v.push(("avx2", Box::new(f)));
        }
        if x86::has_avx512_popcnt() {
            // SAFETY: AVX-512 F, BW and VPOPCNTDQ support was just checked.
            let f = |a: &[u8]| unsafe { avx512::popcount_vpopcnt(a) };
            v.push(("avx512", Box::new(f)));
        }
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    v.push(("neon", Box::new(neon::popcount)));
    v
}

/// The SIMD transforms (and the dispatched one); the scalar one is the
/// reference.
fn fwht_kernels() -> Vec<(&'static str, FwhtFn)> {
    #[allow(unused_mut)] // only extended on architectures with a SIMD path
    let mut v: Vec<(&'static str, FwhtFn)> = vec![("dispatch", Box::new(fwht))];
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx2_fma() {
        // SAFETY: AVX2 + FMA support was just checked.
        let f = |x: &mut [f32]| unsafe { x86::fwht_avx2(x) };
        v.push(("avx2", Box::new(f)));
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    v.push(("neon", Box::new(neon::fwht)));
    v
}

/// Naive f64 `Σ (a - s c)²` and the sum of `(|a| + |s c|)²`, which bounds
/// the rounding error.
fn ref_affine(a: &[f32], s: &[f32], c: &[u8]) -> (f64, f64) {
    let mut sum = 0.0;
    let mut scale = 0.0;
    for ((&a, &s), &c) in a.iter().zip(s).zip(c) {
        let (a, sc) = (f64::from(a), f64::from(s) * f64::from(c));
        sum += (a - sc).powi(2);
        scale += (a.abs() + sc.abs()).powi(2);
    }
    (sum, scale)
}

/// Naive f64 `Σ w (x - y)²` and `Σ |w| (x - y)²`.
fn ref_weighted(w: &[f32], x: &[u8], y: &[u8]) -> (f64, f64) {
    let terms = w
        .iter()
        .zip(x)
        .zip(y)
        .map(|((&w, &x), &y)| f64::from(w) * (f64::from(x) - f64::from(y)).powi(2));
    (terms.clone().sum(), terms.map(f64::abs).sum())
}

/// Naive `Σ_j 2^j popcount(code & plane_j)` over the whole planes, modulo
/// 2³² (exact in `u128` for up to 64 planes of up to 2⁵⁰ bytes).
fn ref_planes(code: &[u8], planes: &[u8]) -> u32 {
    if code.is_empty() {
        return 0;
    }
    let b = planes.len() / code.len();
    let mut total = 0u128;
    for j in 0..b.min(64) {
        let plane = &planes[j * code.len()..(j + 1) * code.len()];
        let count: u32 = code
            .iter()
            .zip(plane)
            .map(|(c, p)| (c & p).count_ones())
            .sum();
        total += u128::from(count) << j;
    }
    total as u32
}

fn ref_popcount(a: &[u8]) -> u32 {
    a.iter().map(|x| x.count_ones()).sum()
}

/// Naive `H x` in f64, with `H[i][j] = (-1)^popcount(i & j)`.
fn ref_hadamard(x: &[f32]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            x.iter()
                .enumerate()
                .map(|(j, &v)| {
                    let v = f64::from(v);
                    if (i & j).count_ones() % 2 == 0 {
                        v
                    } else {
                        -v
                    }
                })
                .sum()
        })
        .collect()
}

#[test]
fn u8_l2_affine_matches_scalar() {
    let mut rng = Rng(11);
    let kernels = affine_kernels();
    for &len in &CODE_LENGTHS {
        // Offsets 0, 1 and 3 put the slices off the usual alignments.
        let a_rand: Vec<f32> = rng.f32s(len + 3).iter().map(|x| x * 200.0).collect();
        let s_buf: Vec<f32> = rng.f32s(len + 3).iter().map(|x| x + 1.5).collect();
        for c_buf in byte_patterns(&mut rng, len + 3) {
            // A random query, and one close to the decoded code (the usual
            // case, where `a - s c` cancels).
            let a_near: Vec<f32> = (0..len + 3)
                .map(|i| s_buf[i] * f32::from(c_buf[i]) + 0.1 * rng.next_f32())
                .collect();
            for a_buf in [&a_rand, &a_near] {
                for (oa, os, oc) in [(0, 0, 0), (1, 1, 1), (3, 0, 1), (0, 3, 2), (1, 2, 3)] {
                    let a = &a_buf[oa..oa + len];
                    let s = &s_buf[os..os + len];
                    let c = &c_buf[oc..oc + len];
                    let (want, scale) = ref_affine(a, s, c);
                    let want_scalar = scalar::u8_l2_affine(a, s, c);
                    assert_close(
                        "scalar u8_l2_affine",
                        len,
                        want_scalar,
                        want as f32,
                        1e-2 * scale as f32,
                    );
                    for (name, k) in &kernels {
                        assert_close(
                            &format!("{name} u8_l2_affine"),
                            len,
                            k(a, s, c),
                            want_scalar,
                            1e-2 * scale as f32,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn u8_l2_affine_known_values() {
    // (1 - 0.5·2)² + (2 - 1·0)² + (3 - 0.25·255)² + 8 × (0 - 1·1)², the last
    // 8 reaching the vector loops.
    let mut a = vec![1.0f32, 2.0, 3.0];
    let mut s = vec![0.5f32, 1.0, 0.25];
    let mut c = vec![2u8, 0, 255];
    a.extend([0.0; 8]);
    s.extend([1.0; 8]);
    c.extend([1; 8]);
    let want = 0.0 + 4.0 + (3.0f32 - 63.75).powi(2) + 8.0;
    assert_eq!(scalar::u8_l2_affine(&a, &s, &c), want);
    for (name, k) in &affine_kernels() {
        assert_eq!(k(&a, &s, &c), want, "{name}");
        assert_eq!(k(&[], &[], &[]), 0.0, "{name}");
    }
}

#[test]
fn u8_l2_weighted_matches_scalar() {
    let mut rng = Rng(12);
    let kernels = weighted_kernels();
    for &len in &CODE_LENGTHS {
        let w_pos: Vec<f32> = rng.f32s(len + 3).iter().map(|x| 0.5 * (x + 1.0)).collect();
        let w_mixed: Vec<f32> = rng.f32s(len + 3).iter().map(|x| x * 1e-3).collect();
        let xs = byte_patterns(&mut rng, len + 3);
        let ys = byte_patterns(&mut rng, len + 3);
        for (x_buf, y_buf) in xs.iter().zip(ys.iter().rev()) {
            for w_buf in [&w_pos, &w_mixed] {
                for (ow, ox, oy) in [(0, 0, 0), (1, 1, 1), (3, 0, 1), (0, 3, 2), (2, 1, 3)] {
                    let w = &w_buf[ow..ow + len];
                    let x = &x_buf[ox..ox + len];
                    let y = &y_buf[oy..oy + len];
                    let (want, scale) = ref_weighted(w, x, y);
                    let want_scalar = scalar::u8_l2_weighted(w, x, y);
                    assert_close(
                        "scalar u8_l2_weighted",
                        len,
                        want_scalar,
                        want as f32,
                        scale as f32,
                    );
                    for (name, k) in &kernels {
                        assert_close(
                            &format!("{name} u8_l2_weighted"),
                            len,
                            k(w, x, y),
                            want_scalar,
                            scale as f32,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn u8_l2_weighted_extremes() {
    // Every difference is ±255 and the weights are 1: exact in f32 while
    // the sums stay below 2^24 (up to 258 dimensions).
    for &len in &CODE_LENGTHS {
        let w = vec![1.0f32; len];
        let x = vec![0u8; len];
        let y = vec![255u8; len];
        let want = (255.0f32 * 255.0) * len as f32;
        let check = |what: &str, got: f32| {
            if len <= 258 {
                assert_eq!(got, want, "{what} len={len}");
            } else {
                assert_close(what, len, got, want, want);
            }
        };
        check("scalar", scalar::u8_l2_weighted(&w, &x, &y));
        for (name, k) in &weighted_kernels() {
            check(name, k(&w, &x, &y));
            check(name, k(&w, &y, &x));
            assert_eq!(k(&w, &y, &y), 0.0, "{name} len={len}");
        }
    }
}

#[test]
fn bit_planes_dot_matches_reference_exactly() {
    let mut rng = Rng(13);
    let kernels = planes_kernels();
    for &len in &CODE_LENGTHS {
        for b in [1, 2, 3, 4, 5, 7, 8, 9] {
            let code_buf = rng.bytes(len + 7);
            let plane_buf = rng.bytes(b * len + 7);
            // Byte offsets misalign both slices for every load width.
            for (oc, op) in [(0, 0), (1, 1), (3, 5), (7, 2)] {
                let code = &code_buf[oc..oc + len];
                let planes = &plane_buf[op..op + b * len];
                let want = ref_planes(code, planes);
                for (name, k) in &kernels {
                    assert_eq!(
                        k(code, planes),
                        want,
                        "{name} len={len} b={b} offsets=({oc},{op})"
                    );
                }
            }
        }
    }
}

#[test]
fn bit_planes_dot_extremes() {
    // All bits set: the largest per-byte weighted counts (8 · 15 per group of
    // 4 planes) and 16-bit lane sums of the SIMD kernels.
    let kernels = planes_kernels();
    for len in [1, 16, 48, 64, 192, 4096, 4112, 70_000] {
        for b in [1, 4, 6, 8] {
            let code = vec![0xffu8; len];
            let planes = vec![0xffu8; b * len];
            let want = 8 * len as u32 * ((1u32 << b) - 1);
            assert_eq!(ref_planes(&code, &planes), want);
            let zero = vec![0u8; len];
            for (name, k) in &kernels {
                assert_eq!(k(&code, &planes), want, "{name} len={len} b={b}");
                assert_eq!(k(&zero, &planes), 0, "{name} len={len} b={b}");
            }
        }
    }
    // Plane j alone: 2^j times the code's bit count, up to planes whose
    // weight wraps to 0 modulo 2^32.
    let mut rng = Rng(14);
    for len in [5, 48, 100] {
        let b = 40;
        let code = rng.bytes(len);
        for j in [0, 3, 4, 17, 31, 32, 39] {
            let mut planes = vec![0u8; b * len];
            planes[j * len..(j + 1) * len].fill(0xff);
            let want = ref_popcount(&code).wrapping_shl(j as u32) * u32::from(j < 32);
            assert_eq!(ref_planes(&code, &planes), want, "len={len} j={j}");
            for (name, k) in &kernels {
                assert_eq!(k(&code, &planes), want, "{name} len={len} j={j}");
            }
        }
        let planes = rng.bytes(b * len);
        let want = ref_planes(&code, &planes);
        for (name, k) in &kernels {
            assert_eq!(k(&code, &planes), want, "{name} len={len} b={b}");
        }
    }
}

#[test]
fn bit_planes_dot_known_values() {
    // code 0b1011, query components (4 bits) 5, 3, 0, 15 on bits 0..4 of the
    // one code byte: 5 + 3 + 15 = 23.
    let code = [0b1011u8];
    // plane j holds bit j of each component: 5 = 0101, 3 = 0011, 15 = 1111.
    let planes = [0b1011u8, 0b1010, 0b1001, 0b1000];
    assert_eq!(ref_planes(&code, &planes), 23);
    for (name, k) in &planes_kernels() {
        assert_eq!(k(&code, &planes), 23, "{name}");
        assert_eq!(k(&[], &[]), 0, "{name}");
    }
}

#[test]
fn popcount_matches_reference_exactly() {
    let mut rng = Rng(15);
    let kernels = popcount_kernels();
    let lengths = CODE_LENGTHS
        .iter()
        .copied()
        .chain([127, 129, 256, 257, 70_000]);
    for len in lengths {
        let buf = rng.bytes(len + 7);
        for o in [0, 1, 3, 7] {
            let a = &buf[o..o + len];
            let want = ref_popcount(a);
            for (name, k) in &kernels {
                assert_eq!(k(a), want, "{name} len={len} offset={o}");
            }
        }
        let ones = vec![0xffu8; len];
        for (name, k) in &kernels {
            assert_eq!(k(&ones), 8 * len as u32, "{name} len={len} all ones");
            assert_eq!(k(&ones[..0]), 0, "{name}");
        }
    }
}

#[test]
fn fwht_matches_naive_hadamard() {
    let mut rng = Rng(16);
    for n in [0, 1, 2, 4, 8, 16, 32, 64] {
        let x = rng.f32s(n);
        let want = ref_hadamard(&x);
        let scale: f32 = x.iter().map(|v| v.abs()).sum();
        let mut y = x.clone();
        scalar::fwht(&mut y);
        for (name, k) in fwht_kernels()
            .iter()
            .map(|(name, k)| (*name, k.as_ref()))
            .chain([("scalar", &scalar::fwht as &dyn Fn(&mut [f32]))])
        {
            let mut y = x.clone();
            k(&mut y);
            for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                assert_close(&format!("{name} fwht[{i}]"), n, got, want as f32, scale);
            }
        }
    }
}

#[test]
fn fwht_kernels_match_scalar() {
    let mut rng = Rng(17);
    let kernels = fwht_kernels();
    for shift in 0..=13 {
        let n = 1usize << shift;
        let buf: Vec<f32> = rng.f32s(n + 3).iter().map(|x| x * 10.0).collect();
        for o in [0, 1, 3] {
            let x = &buf[o..o + n];
            let scale: f32 = x.iter().map(|v| v.abs()).sum();
            let mut want = x.to_vec();
            scalar::fwht(&mut want);
            for (name, k) in &kernels {
                let mut y = x.to_vec();
                k(&mut y);
                for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                    assert_close(&format!("{name} fwht[{i}]"), n, got, want, scale);
                }
                // Twice is n times the identity.
                k(&mut y);
                for (i, (&got, &v)) in y.iter().zip(x).enumerate() {
                    let want = n as f32 * v;
                    assert_close(&format!("{name} fwht²[{i}]"), n, got, want, scale);
                }
            }
        }
    }
}

/// The AVX2 transform does the scalar kernel's additions in the same order:
/// its results are bit for bit the same.
#[test]
#[cfg(target_arch = "x86_64")]
fn fwht_avx2_is_exact() {
    if !x86::has_avx2_fma() {
        return;
    }
    let mut rng = Rng(18);
    for shift in 0..=12 {
        let x = rng.f32s(1 << shift);
        let mut want = x.clone();
        scalar::fwht(&mut want);
        let mut got = x;
        // SAFETY: AVX2 + FMA support was just checked.
        unsafe { x86::fwht_avx2(&mut got) };
        assert_eq!(got, want, "n={}", 1 << shift);
    }
}

/// In release builds mismatched lengths use the shortest one, bit planes
/// beyond the last whole one are ignored and a transform of a
/// non-power-of-two length leaves the tail after the largest power-of-two
/// prefix alone.
#[test]
#[cfg(not(debug_assertions))]
fn code_kernels_mismatched_lengths() {
    let mut rng = Rng(19);
    let a = rng.f32s(100);
    let s = rng.f32s(90);
    let c = rng.bytes(70);
    let want = scalar::u8_l2_affine(&a[..70], &s[..70], &c);
    for (name, k) in &affine_kernels() {
        assert_close(name, 70, k(&a, &s, &c), want, want);
        assert_close(name, 70, k(&a[..80], &s, &c), want, want);
    }
    let (x, y) = (rng.bytes(81), rng.bytes(95));
    let want = scalar::u8_l2_weighted(&a[..81], &x, &y[..81]);
    for (name, k) in &weighted_kernels() {
        assert_close(name, 81, k(&a, &x, &y), want, want);
    }
    let code = rng.bytes(48);
    let planes = rng.bytes(4 * 48 + 47);
    let want = ref_planes(&code, &planes[..4 * 48]);
    for (name, k) in &planes_kernels() {
        assert_eq!(k(&code, &planes), want, "{name}");
        assert_eq!(k(&code, &planes[..47]), 0, "{name}");
        assert_eq!(k(&[], &planes), 0, "{name}");
    }
    let x = rng.f32s(100);
    let mut want = x.clone();
    scalar::fwht(&mut want[..64]);
    for (name, k) in &fwht_kernels() {
        let mut y = x.clone();
        k(&mut y);
        assert_eq!(&y[64..], &x[64..], "{name}");
        for (i, (&got, &w)) in y.iter().zip(&want).enumerate() {
            assert_close(&format!("{name} fwht[{i}]"), 100, got, w, 64.0);
        }
    }
    let mut y = x.clone();
    scalar::fwht(&mut y);
    assert_eq!(y, want);
}

#[test]
fn i8_dot_matches_the_exact_sum() {
    let mut rng = Rng(0x18);
    let codes =
        |rng: &mut Rng, n: usize| -> Vec<i8> { rng.bytes(n).iter().map(|&b| b as i8).collect() };
    for &len in LENGTHS.iter().chain(&[384, 1_000, 4_096]) {
        let (a, b) = (codes(&mut rng, len), codes(&mut rng, len));
        let want: i64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum();
        assert_eq!(i64::from(dot_i8(&a, &b)), want, "dot_i8 len={len}");
        assert_eq!(
            i64::from(scalar::dot_i8(&a, &b)),
            want,
            "scalar::dot_i8 len={len}"
        );
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2_fma() {
            // SAFETY: AVX2 support was just checked.
            let got = unsafe { x86::dot_i8_avx2(&a, &b) };
            assert_eq!(i64::from(got), want, "dot_i8_avx2 len={len}");
        }
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx512() {
            // SAFETY: AVX-512 F, BW and VL support was just checked.
            let got = unsafe { avx512::dot_i8_avx512(&a, &b) };
            assert_eq!(i64::from(got), want, "dot_i8_avx512 len={len}");
        }
    }
    // The extremes: every product 127², and alternating signs.
    let top = vec![127i8; 4_096];
    assert_eq!(dot_i8(&top, &top), 4_096 * 127 * 127);
    let low = vec![-127i8; 4_096];
    assert_eq!(dot_i8(&top, &low), -(4_096 * 127 * 127));
    // The documented bound: fewer than 2^17 products of -128 · -128 stay exact in i32.
    let most = vec![-128i8; (1 << 17) - 1];
    assert_eq!(dot_i8(&most, &most), ((1 << 17) - 1) * 128 * 128);
    // Unequal lengths: the shorter one counts.
    assert_eq!(scalar::dot_i8(&top[..3], &top[..5]), 3 * 127 * 127);
}
