//! Engine-only search speed: one thread, no Node, for profiling.
//!
//! `cargo run --release --example search_speed -- <base.f32> <queries.f32> [db dir]` with the
//! benchmark's matrix files (u32 rows, u32 columns, then f32 row-major). Builds the index in the
//! directory (kept when given, so later runs only search) and prints µs per query at several ef.

use std::time::Instant;

use hannoy_engine::SearchOptions;

mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, queries) = (&args[0], &args[1]);
    let scratch = hannoy_engine::scratch::ScratchDir::new("hannoy-search-speed").unwrap();
    let dir = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| scratch.path().into());
    let (db, dims) = common::open_or_build(&dir, base);
    // As the addon's readers do in the background: fill the reader's tables first, so that the
    // figures (and profiles) are of searches that look no node up in the B-trees.
    db.fill_tables(0).expect("fill the reader's tables");
    let (nq, _, queries) = common::read_matrix(queries);
    // Optional exact top-10 ids (the benchmark's ground-truth file: u32 rows, u32 columns, ids).
    let truth: Option<Vec<u32>> = std::env::var("TRUTH").ok().map(|path| {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        bytes[8..]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    });
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // OVERSAMPLING=<n> for quantized indexes (default: the quantization's).
    let oversampling = std::env::var("OVERSAMPLING")
        .ok()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    // EFS=<list> (comma-separated) measures other ef values.
    let efs: Vec<usize> = std::env::var("EFS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|e| e.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![10, 40, 80, 160]);
    for ef in efs {
        let options = SearchOptions {
            ef: Some(ef),
            oversampling,
            ..SearchOptions::new(10)
        };
        for q in queries.chunks_exact(dims) {
            db.search(0, q, &options).unwrap(); // warm
        }
        let reads = hannoy_engine::search::FULL_READS.load(std::sync::atomic::Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..reps {
            for q in queries.chunks_exact(dims) {
                std::hint::black_box(db.search(0, q, &options).unwrap());
            }
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / (reps * nq) as f64;
        let reads = (hannoy_engine::search::FULL_READS.load(std::sync::atomic::Ordering::Relaxed)
            - reads) as f64
            / (reps * nq) as f64;
        let recall = truth.as_ref().map_or(String::new(), |truth| {
            let mut hits = 0;
            for (i, q) in queries.chunks_exact(dims).enumerate() {
                let found = db.search(0, q, &options).unwrap();
                let want = &truth[i * 10..i * 10 + 10];
                hits += found.iter().filter(|n| want.contains(&n.id)).count();
            }
            format!(", recall@10 {:.4}", hits as f64 / (10 * nq) as f64)
        });
        println!("ef {ef:>3}: {us:.1} µs per query, {reads:.1} full vectors read{recall}");
    }
}
