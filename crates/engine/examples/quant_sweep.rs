//! Recall of quantized indexes against oversampling, on seeded clustered data of several
//! dimensions (engine only): how the defaults of `Quantization::default_oversampling` were
//! chosen. `cargo run --release --example quant_sweep [n]`.

#[path = "../tests/common/mod.rs"]
mod data;

use data::*;
use hannoy_engine::{MetricKind, Quantization, SearchOptions};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    for dims in [50, 128, 384, 768] {
        // LOWRANK=1: the sentence-embedding-like generator instead of tight clusters.
        let (data, queries) = if std::env::var("LOWRANK").is_ok() {
            let all = lowrank(n + 50, dims, 5, 0);
            (all[..n * dims].to_vec(), all[n * dims..].to_vec())
        } else {
            (clustered(n, dims, 5), clustered(50, dims, 6))
        };
        let live = ids(n);
        let truth: Vec<_> = queries
            .chunks_exact(dims)
            .map(|q| brute_force(MetricKind::Cosine, &data, dims, &live, q, 10))
            .collect();
        for q in [Quantization::None, Quantization::Int8, Quantization::Binary] {
            let (_dir, db) = temp_db();
            db.add_quantized_items(0, dims, MetricKind::Cosine, q, &live, &data)
                .unwrap();
            build(&db, 0);
            let mut line = format!("d {dims:>4} {:>6}:", q.name());
            for os in [1, 2, 4, 8, 16, 32] {
                if q == Quantization::None && os > 1 {
                    break;
                }
                let options = SearchOptions {
                    ef: Some(64),
                    oversampling: os,
                    ..SearchOptions::new(10)
                };
                let mut total = 0.0;
                for (query, truth) in queries.chunks_exact(dims).zip(&truth) {
                    let found: Vec<(u32, f32)> = db
                        .search(0, query, &options)
                        .unwrap()
                        .iter()
                        .map(|h| (h.id, h.distance))
                        .collect();
                    total += recall(&found, truth);
                }
                line += &format!("  os {os}: {:.3}", total / truth.len() as f64);
            }
            println!("{line}");
        }
    }
}
