//! Where an exact scan of a filter's ids stops beating a filtered graph walk.
//!
//! `cargo run --release --example filter_threshold -- <base.f32> <queries.f32> [db dir]` with the
//! benchmark's matrix files. For filters of random ids of growing size it prints the µs per query
//! of the exact scan and of the walk (ef 64, k 10) and the walk's recall against the scan.

use std::time::Instant;

use hannoy_engine::SearchOptions;
use roaring::RoaringBitmap;

mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scratch = hannoy_engine::scratch::ScratchDir::new("hannoy-filter").unwrap();
    let dir = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| scratch.path().into());
    let (db, dims) = common::open_or_build(&dir, &args[0]);
    let rows = db.count(0).unwrap() as usize;
    let (_, _, queries) = common::read_matrix(&args[1]);
    let queries: Vec<&[f32]> = queries.chunks_exact(dims).take(200).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    println!("{rows} items; filter of n random ids; µs per query (200 queries), walk at ef 64");
    println!("| allowed ids | exact scan µs | walk µs | walk recall@10 |");
    println!("| ---: | ---: | ---: | ---: |");
    for size in [256u32, 1024, 2048, 4096, 8192, 16384, 32768] {
        let mut filter = RoaringBitmap::new();
        while filter.len() < size as u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            filter.insert((seed % rows as u64) as u32);
        }
        let run = |max: u64| {
            let options = SearchOptions {
                ef: Some(64),
                filter: Some(&filter),
                exact_scan_max: Some(max),
                ..SearchOptions::new(10)
            };
            let start = Instant::now();
            let found: Vec<Vec<u32>> = queries
                .iter()
                .map(|q| {
                    db.search(0, q, &options)
                        .unwrap()
                        .iter()
                        .map(|n| n.id)
                        .collect()
                })
                .collect();
            (
                start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64,
                found,
            )
        };
        run(u64::MAX); // warm the page cache and the view
        let (scan_us, exact) = run(u64::MAX);
        let (walk_us, walked) = run(0);
        let hits: usize = exact
            .iter()
            .zip(&walked)
            .map(|(e, w)| w.iter().filter(|id| e.contains(id)).count())
            .sum();
        let recall = hits as f64 / exact.iter().map(Vec::len).sum::<usize>() as f64;
        println!("| {size} | {scan_us:.0} | {walk_us:.0} | {recall:.3} |");
    }
}
