//! What the measuring examples share: the benchmark's matrix files and a built index.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use hannoy_engine::{BuildOptions, Control, Database, MetricKind, OpenOptions, Quantization};

/// A matrix file of the benchmark: u32 rows, u32 columns (little-endian), then the f32 values
/// row-major.
pub fn read_matrix(path: &str) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
    let (rows, cols) = (word(0), word(4));
    let data = bytes[8..8 + rows * cols * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (rows, cols, data)
}

/// The rows and columns of a matrix file, read from its header only.
pub fn matrix_shape(path: &str) -> (usize, usize) {
    use std::io::Read;
    let mut header = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap()) as usize;
    (word(0), word(4))
}

/// Builds (or finds already built) index 0 of `dir`: the rows of `base` under cosine, ids 0…n,
/// with the quantization named by `QUANT` (none, int8, binary; default none).
/// Returns the database and the number of dimensions.
pub fn open_or_build(dir: &Path, base: &str) -> (Database, usize) {
    let db = Database::open(dir, &OpenOptions::default()).unwrap();
    let (rows, dims) = matrix_shape(base);
    if db.count(0).unwrap() != rows as u64 {
        let (_, _, data) = read_matrix(base);
        let ids: Vec<u32> = (0..rows as u32).collect();
        let quantization = std::env::var("QUANT")
            .ok()
            .and_then(|q| Quantization::from_name(&q))
            .unwrap_or_default();
        // METRIC=<name> builds with another metric than cosine.
        let metric = std::env::var("METRIC")
            .ok()
            .and_then(|m| MetricKind::from_name(&m))
            .unwrap_or(MetricKind::Cosine);
        db.add_quantized_items(0, dims, metric, quantization, &ids, &data)
            .unwrap();
        let cancel = AtomicBool::new(false);
        // PHASES=1 prints when each phase of the build starts.
        let started = std::time::Instant::now();
        let phase = std::sync::Mutex::new("");
        let show = std::env::var("PHASES").is_ok();
        let progress = |p: hannoy_engine::Progress| {
            let mut current = phase.lock().unwrap();
            if show && *current != p.phase {
                eprintln!("{:8.3} s  {}", started.elapsed().as_secs_f64(), p.phase);
                *current = p.phase;
            }
        };
        let control = Control {
            progress: &progress,
            cancel: &cancel,
        };
        // ALPHA=<x> builds with another neighbour-selection relaxation (for experiments).
        let options = BuildOptions {
            alpha: std::env::var("ALPHA").ok().and_then(|a| a.parse().ok()),
            ..BuildOptions::default()
        };
        let stats = db.build(0, &options, &control).unwrap();
        eprintln!("built {rows} × {dims} in {:.2} s", stats.seconds);
    }
    (db, dims)
}
