//! Test support: seeded data shaped like real embeddings, brute force, recall.
#![allow(dead_code)]

use std::path::PathBuf;

use hannoy_engine::{BuildOptions, Control, Database, MetricKind, OpenOptions, Progress};
use std::sync::atomic::AtomicBool;

/// SplitMix64: a small seeded generator, so the tests need no rand crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

/// `n` vectors of `dims` components: clusters of Zipf-distributed size, each on its own random
/// subspace of rank 16, plus noise, normalised — the shape of real embeddings, where uniform
/// noise would make every distance nearly equal.
pub fn clustered(n: usize, dims: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let clusters = 40;
    let rank = 16.min(dims);
    let weights: Vec<f64> = (1..=clusters).map(|i| 1.0 / i as f64).collect();
    let total: f64 = weights.iter().sum();
    let bases: Vec<(Vec<f64>, Vec<Vec<f64>>)> = (0..clusters)
        .map(|_| {
            let center: Vec<f64> = (0..dims).map(|_| rng.normal()).collect();
            let basis = (0..rank)
                .map(|_| {
                    (0..dims)
                        .map(|_| rng.normal() / (dims as f64).sqrt())
                        .collect()
                })
                .collect();
            (center, basis)
        })
        .collect();
    let mut out = Vec::with_capacity(n * dims);
    for _ in 0..n {
        let mut pick = rng.uniform() * total;
        let mut c = 0;
        while c + 1 < clusters && pick > weights[c] {
            pick -= weights[c];
            c += 1;
        }
        let (center, basis) = &bases[c];
        let mut v: Vec<f64> = center.iter().map(|x| x * 0.6).collect();
        for b in basis {
            let w = rng.normal() * 1.5;
            for (x, y) in v.iter_mut().zip(b) {
                *x += w * y;
            }
        }
        for x in v.iter_mut() {
            *x += rng.normal() * 0.05;
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        out.extend(v.iter().map(|x| (x / norm) as f32));
    }
    out
}

/// The GloVe fixture: (rows, dims, vectors).
pub fn glove() -> (usize, usize, Vec<f32>) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/glove-6b-50d-20k.f32");
    let bytes = std::fs::read(&path).expect("the GloVe fixture");
    let rows = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let dims = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let data = bytes[8..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(data.len(), rows * dims);
    (rows, dims, data)
}

/// The reference distance, computed independently of the engine (f64, no SIMD).
pub fn reference_distance(metric: MetricKind, a: &[f32], b: &[f32]) -> f64 {
    let bits = |v: &[f32], hamming: bool| -> Vec<bool> {
        v.iter()
            .map(|&x| if hamming { x != 0.0 } else { x > 0.0 })
            .collect()
    };
    let differing = |hamming: bool| -> f64 {
        bits(a, hamming)
            .iter()
            .zip(bits(b, hamming))
            .filter(|(x, y)| **x != *y)
            .count() as f64
    };
    match metric {
        MetricKind::Euclidean => a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
        MetricKind::Manhattan => a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum(),
        MetricKind::Cosine => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if na == 0.0 || nb == 0.0 {
                if na == nb {
                    0.0
                } else {
                    1.0
                }
            } else {
                1.0 - dot / (na * nb)
            }
        }
        MetricKind::Hamming => differing(true),
        MetricKind::BqEuclidean => 2.0 * differing(false).sqrt(),
        MetricKind::BqCosine => 2.0 * differing(false) / a.len() as f64,
        MetricKind::BqManhattan => 2.0 * differing(false),
    }
}

/// The exact k nearest (id, distance) among `ids` for `query`.
pub fn brute_force(
    metric: MetricKind,
    data: &[f32],
    dims: usize,
    ids: &[u32],
    query: &[f32],
    k: usize,
) -> Vec<(u32, f64)> {
    let mut all: Vec<(u32, f64)> = ids
        .iter()
        .map(|&id| {
            (
                id,
                reference_distance(
                    metric,
                    &data[id as usize * dims..(id as usize + 1) * dims],
                    query,
                ),
            )
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Recall that counts ties: a returned item is right when it is no farther than the k-th true
/// neighbour (discrete metrics have many equal distances).
pub fn recall(found: &[(u32, f32)], truth: &[(u32, f64)]) -> f64 {
    let Some(&(_, kth)) = truth.last() else {
        return 1.0;
    };
    let hits = found
        .iter()
        .filter(|(_, d)| (*d as f64) <= kth + 1e-4 * kth.abs().max(1.0))
        .count();
    hits.min(truth.len()) as f64 / truth.len() as f64
}

pub fn temp_db() -> (hannoy_engine::scratch::ScratchDir, Database) {
    let dir = hannoy_engine::scratch::ScratchDir::new("hannoy-test").unwrap();
    let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
    (dir, db)
}

pub fn build(db: &Database, index: u16) -> hannoy_engine::BuildStats {
    build_with(db, index, &BuildOptions::default())
}

pub fn build_with(db: &Database, index: u16, options: &BuildOptions) -> hannoy_engine::BuildStats {
    let cancel = AtomicBool::new(false);
    let progress = |_: Progress| {};
    db.build(
        index,
        options,
        &Control {
            progress: &progress,
            cancel: &cancel,
        },
    )
    .unwrap()
}

pub fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

/// `n` unit vectors like sentence embeddings (the shape of `shared/data/synth.py`'s
/// `clustered_lowrank`): clusters of Zipf-distributed size around random centres, each cluster
/// spread over its own random subspace of rank 20 with uneven axes, plus isotropic noise. Queries
/// drawn with the same `seed` and a higher `skip` come from the same clusters.
pub fn lowrank(n: usize, dims: usize, seed: u64, skip: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let (clusters, rank, noise, center_scale) = (100, 20.min(dims), 0.3, 0.2);
    let weights: Vec<f64> = (1..=clusters).map(|i| (i as f64).powf(-1.1)).collect();
    let total: f64 = weights.iter().sum();
    let scale = center_scale * 3.0 / (dims as f64).sqrt();
    // Per cluster: its centre, the basis of its subspace, the spread along each basis vector.
    type Shape = (Vec<f64>, Vec<Vec<f64>>, Vec<f64>);
    let shapes: Vec<Shape> = (0..clusters)
        .map(|_| {
            let center: Vec<f64> = (0..dims).map(|_| rng.normal() * scale).collect();
            // An orthonormal basis of the subspace (Gram–Schmidt).
            let mut basis: Vec<Vec<f64>> = Vec::with_capacity(rank);
            while basis.len() < rank {
                let mut v: Vec<f64> = (0..dims).map(|_| rng.normal()).collect();
                for b in &basis {
                    let d: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                    v.iter_mut().zip(b).for_each(|(x, y)| *x -= d * y);
                }
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm > 1e-9 {
                    basis.push(v.iter().map(|x| x / norm).collect());
                }
            }
            let spread = (0..rank).map(|_| 0.3 + 0.7 * rng.uniform()).collect();
            (center, basis, spread)
        })
        .collect();
    let mut out = Vec::with_capacity(n * dims);
    for i in 0..n + skip {
        let mut pick = rng.uniform() * total;
        let mut c = 0;
        while c + 1 < clusters && pick > weights[c] {
            pick -= weights[c];
            c += 1;
        }
        let (center, basis, spread) = &shapes[c];
        let mut v = center.clone();
        for (b, s) in basis.iter().zip(spread) {
            let w = rng.normal() * s / (rank as f64).sqrt();
            v.iter_mut().zip(b).for_each(|(x, y)| *x += w * y);
        }
        for x in v.iter_mut() {
            *x += rng.normal() * noise / (dims as f64).sqrt();
        }
        if i < skip {
            continue;
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        out.extend(v.iter().map(|x| (x / norm) as f32));
    }
    out
}
