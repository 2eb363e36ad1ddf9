//! Scratch directories for tests, examples and benchmarks: a fresh directory under the system's
//! temporary directory, removed with everything in it when the value is dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A directory that exists for as long as this value lives.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> std::io::Result<ScratchDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{prefix}-{}-{nanos:08x}-{n}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory is not worth a panic in a destructor.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A database in a scratch directory holding index 0: 3,000 × 32-d euclidean vectors with
/// `quantization`, built with the default options. Returns the vectors too.
#[cfg(test)]
pub(crate) fn built_index(
    quantization: crate::Quantization,
) -> (ScratchDir, crate::store::Database, Vec<f32>) {
    use crate::{BuildOptions, Control, MetricKind, Progress};
    let dir = ScratchDir::new("hannoy-test").unwrap();
    let db =
        crate::store::Database::open(dir.path(), &crate::store::OpenOptions::default()).unwrap();
    let dims = 32;
    let data: Vec<f32> = (0..3000 * dims)
        .map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5)
        .collect();
    let ids: Vec<u32> = (0..3000).collect();
    db.add_quantized_items(0, dims, MetricKind::Euclidean, quantization, &ids, &data)
        .unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = |_: Progress| {};
    let control = Control {
        progress: &progress,
        cancel: &cancel,
    };
    db.build(0, &BuildOptions::default(), &control).unwrap();
    (dir, db, data)
}

#[cfg(test)]
mod tests {
    use super::ScratchDir;

    #[test]
    fn distinct_and_removed_on_drop() {
        let a = ScratchDir::new("hannoy-scratch-test").unwrap();
        let b = ScratchDir::new("hannoy-scratch-test").unwrap();
        assert_ne!(a.path(), b.path());
        let kept = a.path().to_path_buf();
        std::fs::write(kept.join("f"), b"x").unwrap();
        assert!(kept.is_dir());
        drop(a);
        assert!(!kept.exists());
    }
}
