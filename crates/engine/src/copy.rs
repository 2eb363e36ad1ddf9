//! `Database::copy`: a consistent copy of the whole environment into a new directory, which
//! appears under its name only when it is complete and on disk.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use heed::CompactionOption;

use crate::error::{Error, Result};
use crate::store::Database;

/// What a copy wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStats {
    /// Bytes of the copy's `data.mdb`.
    pub bytes: u64,
    pub seconds: f64,
}

impl Database {
    /// Copies the environment (every index) into the directory `dest`, which must not exist
    /// and whose parent must. The copy is written under a temporary name beside `dest`, synced,
    /// and renamed into place, so a directory named `dest` is always a complete index.
    ///
    /// `compact` writes only the pages in use, renumbered (smaller; it never waits for a
    /// writer, and copies the state committed when it starts; the binding's default). A plain
    /// copy writes the file's pages as they are; LMDB makes it wait for a write transaction in
    /// progress (in any process) to end, and it copies the state committed then.
    pub fn copy(&self, dest: &Path, compact: bool) -> Result<CopyStats> {
        let start = std::time::Instant::now();
        let s = &*self.shared;
        let source = s.env.path().to_path_buf();
        let (parent, name) = check_dest(&source, dest)?;
        let temp = temporary_dir(&parent, &name)?;
        let written = (|| -> Result<u64> {
            let path = temp.join("data.mdb");
            let option = if compact {
                CompactionOption::Enabled
            } else {
                CompactionOption::Disabled
            };
            // Under the gate's read side like every transaction, so the map is not resized
            // while LMDB's copy reads it.
            let file: File = self.with_gate(|| {
                s.env
                    .copy_to_path(&path, option)
                    .map_err(|e| Error::Io(format!("cannot copy to {}: {e}", path.display())))
            })?;
            file.sync_all()
                .map_err(|e| Error::Io(format!("cannot sync {}: {e}", path.display())))?;
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            drop(file);
            sync_dir(&temp)?;
            if dest.exists() {
                return Err(Error::InvalidArgument(format!(
                    "{} was created while the copy ran",
                    dest.display()
                )));
            }
            fs::rename(&temp, dest).map_err(|e| {
                Error::Io(format!(
                    "cannot rename {} to {}: {e}",
                    temp.display(),
                    dest.display()
                ))
            })?;
            sync_dir(&parent)?;
            Ok(bytes)
        })();
        match written {
            Ok(bytes) => Ok(CopyStats {
                bytes,
                seconds: start.elapsed().as_secs_f64(),
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                Err(e)
            }
        }
    }
}

/// Checks that `dest` can become a copy of `source`: it does not exist, its parent is a
/// directory, and it is not inside `source`. Returns the canonical parent and the name.
fn check_dest(source: &Path, dest: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    if dest.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("dest must not be empty".into()));
    }
    if fs::symlink_metadata(dest).is_ok() {
        return Err(Error::InvalidArgument(format!(
            "{} already exists: a copy goes into a new directory",
            dest.display()
        )));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| {
            Error::InvalidArgument(format!("{} does not name a directory", dest.display()))
        })?
        .to_os_string();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = fs::canonicalize(&parent).map_err(|e| {
        Error::Io(format!(
            "cannot copy into {}: its parent directory {}: {e}",
            dest.display(),
            parent.display()
        ))
    })?;
    if !parent.is_dir() {
        return Err(Error::Io(format!(
            "{} is not a directory",
            parent.display()
        )));
    }
    let source = fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    if parent.starts_with(&source) {
        return Err(Error::InvalidArgument(format!(
            "{} is inside the database directory {}: copy it elsewhere",
            dest.display(),
            source.display()
        )));
    }
    Ok((parent, name))
}

/// A new directory beside the destination, named so that it is plainly not an index.
fn temporary_dir(parent: &Path, name: &std::ffi::OsStr) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".partial-{}-{n}", std::process::id()));
        let temp = parent.join(temp_name);
        match fs::create_dir(&temp) {
            Ok(()) => return Ok(temp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Io(format!("cannot create {}: {e}", temp.display()))),
        }
    }
}

/// Makes a directory's entries durable (a no-op where directories cannot be opened: Windows).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Io(format!("cannot sync {}: {e}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
