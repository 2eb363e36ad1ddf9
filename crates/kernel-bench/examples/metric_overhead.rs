// How much the metric layer (stored bytes → floats, norms) adds to the bare kernel.
use std::hint::black_box;
use std::time::Instant;

use hannoy_engine::kernels;
use hannoy_engine::metric::{Cosine, Distance};

fn main() {
    let dims = 50;
    let n = 4096;
    let mut seed = 1u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let raw: Vec<Vec<f32>> = (0..n).map(|_| (0..dims).map(|_| next()).collect()).collect();
    let stored: Vec<Vec<u8>> = raw
        .iter()
        .map(|v| {
            let mut out = Vec::new();
            Cosine::encode(v, &mut out);
            out
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = 0.0;
        for rep in 0..200 {
            for i in 0..n {
                s += kernels::dot(&raw[i], &raw[(i + rep + 1) % n]);
            }
        }
        black_box(s);
        let kernel = t.elapsed().as_nanos() as f64 / (200 * n) as f64;
        let t = Instant::now();
        let mut s = 0.0;
        for rep in 0..200 {
            for i in 0..n {
                s += Cosine::distance(&stored[i], &stored[(i + rep + 1) % n]);
            }
        }
        black_box(s);
        let metric = t.elapsed().as_nanos() as f64 / (200 * n) as f64;
        let t = Instant::now();
        let mut s = 0.0;
        for rep in 0..200 {
            for i in 0..n {
                let (a, b) = (&stored[i], &stored[(i + rep + 1) % n]);
                let fa: &[f32] = bytemuck::cast_slice(&a[4..]);
                let fb: &[f32] = bytemuck::cast_slice(&b[4..]);
                let na = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                let nb = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                s += (1.0 - kernels::dot(fa, fb) / (na * nb)).clamp(0.0, 2.0);
            }
        }
        black_box(s);
        let lean = t.elapsed().as_nanos() as f64 / (200 * n) as f64;
        let t = Instant::now();
        let mut s = 0.0;
        for rep in 0..200 {
            for i in 0..n {
                let (a, b) = (&stored[i], &stored[(i + rep + 1) % n]);
                let fa = hannoy_engine::metric::float_components(a);
                let fb = hannoy_engine::metric::float_components(b);
                s += kernels::dot(&fa, &fb);
            }
        }
        black_box(s);
        let cow = t.elapsed().as_nanos() as f64 / (200 * n) as f64;
        println!("dot kernel {kernel:.1} ns, Cosine::distance {metric:.1} ns, lean {lean:.1} ns, cow {cow:.1} ns");
    }
}
