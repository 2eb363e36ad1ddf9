//! The engine's distance kernels against simsimd's, on the vector sizes of common embeddings.
//! Prints ns per call (best of several timed passes over 4,096 random pairs, L1-resident).

use std::hint::black_box;
use std::time::Instant;

use hannoy_engine::kernels;
use simsimd::{BinarySimilarity, SpatialSimilarity};

fn random(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn time(pairs: usize, mut f: impl FnMut(usize) -> f64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let start = Instant::now();
        let mut sink = 0.0;
        for rep in 0..20 {
            for i in 0..pairs {
                sink += f((i + rep) % pairs);
            }
        }
        black_box(sink);
        best = best.min(start.elapsed().as_nanos() as f64 / (20 * pairs) as f64);
    }
    best
}

fn main() {
    println!("engine kernels: {}", kernels::implementation());
    println!("| dims | kernel | engine ns | simsimd ns |");
    println!("| ---: | --- | ---: | ---: |");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for dims in [50usize, 384, 768, 1536] {
        let pairs = (64 * 1024 / (dims * 4)).clamp(8, 512);
        let a: Vec<Vec<f32>> = (0..pairs).map(|_| random(dims, &mut seed)).collect();
        let b: Vec<Vec<f32>> = (0..pairs).map(|_| random(dims, &mut seed)).collect();
        let row = |name: &str, ours: f64, theirs: f64| {
            println!("| {dims} | {name} | {ours:.1} | {theirs:.1} |")
        };
        row(
            "dot",
            time(pairs, |i| kernels::dot(&a[i], &b[i]) as f64),
            time(pairs, |i| f32::dot(&a[i], &b[i]).unwrap_or(0.0)),
        );
        row(
            "squared euclidean",
            time(pairs, |i| kernels::l2_squared(&a[i], &b[i]) as f64),
            time(pairs, |i| f32::sqeuclidean(&a[i], &b[i]).unwrap_or(0.0)),
        );
        row(
            "manhattan (simsimd: none)",
            time(pairs, |i| kernels::l1(&a[i], &b[i]) as f64),
            f64::NAN,
        );
        // One bit per dimension, padded to whole 32-bit words as the engine stores them.
        let bits = |v: &Vec<f32>| -> Vec<u8> {
            let mut out = vec![0u8; v.len().div_ceil(32) * 4];
            for (i, &x) in v.iter().enumerate() {
                out[i / 8] |= ((x > 0.0) as u8) << (i % 8);
            }
            out
        };
        let (ba, bb): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            (a.iter().map(bits).collect(), b.iter().map(bits).collect());
        row(
            "hamming (bits)",
            time(pairs, |i| kernels::hamming(&ba[i], &bb[i]) as f64),
            time(pairs, |i| u8::hamming(&ba[i], &bb[i]).unwrap_or(0.0)),
        );
    }
}
