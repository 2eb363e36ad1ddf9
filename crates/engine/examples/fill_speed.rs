//! How long a fresh reader's table fill takes (`Database::fill_tables`), for profiling cold
//! starts: `cargo run --release --example fill_speed -- <db dir> [index]`. Run it in a fresh
//! process after reading the directory's files through (page cache warm) or after dropping the
//! page cache.

use std::time::Instant;

use hannoy_engine::{Database, OpenOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let index: u16 = args.get(1).and_then(|i| i.parse().ok()).unwrap_or(0);
    let options = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    let start = Instant::now();
    let db = Database::open(&args[0], &options).expect("open");
    let opened = start.elapsed();
    let start = Instant::now();
    db.fill_tables(index).expect("fill");
    println!(
        "open {:.1} ms, fill {:.1} ms",
        opened.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
}
