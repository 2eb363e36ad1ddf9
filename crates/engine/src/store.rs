//! The LMDB environment: opening (shared per path within a process), transactions, and growing
//! the memory map when a write needs more room.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};

use heed::types::Bytes;
use heed::{CommitOrAbort, EnvFlags, EnvOpenOptions, PutFlags, RwTxn, WithoutTls};

use crate::dbs::{Db, Dbs, ReadTxn};
use crate::error::{Error, Result};

pub(crate) type Env = heed::Env<WithoutTls>;

/// The initial map size when the caller gives none. The map grows by itself, so this only
/// bounds address space, which on Windows is also the file's size.
#[cfg(windows)]
pub const DEFAULT_MAP_SIZE: usize = 64 << 20;
#[cfg(not(windows))]
pub const DEFAULT_MAP_SIZE: usize = 1 << 30;

const MAX_READERS: u32 = 1022;

/// How to open a database directory.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The initial size of the memory map in bytes (it grows when needed).
    pub map_size: Option<usize>,
    /// Open for reading only: writes fail with `Error::ReadOnly`, and the directory may be
    /// read-only (then LMDB's lock file is not used, which is safe only with no writer around).
    pub read_only: bool,
    /// Check the whole file (LMDB's structure and every hannoy record) before using it; a fault
    /// fails the open with `Error::Corrupt`. It costs about one sequential read of the file.
    pub verify: bool,
}

pub(crate) struct Shared {
    pub(crate) env: Env,
    /// The environment's databases (`s.nodes` and so on, through `Deref`).
    dbs: Dbs,
    /// Searches' per-commit tables (see `view.rs`); emptied when the map moves.
    pub(crate) views: crate::view::Views,
    /// Every transaction of this process is opened under the read side; resizing the map takes
    /// the write side, which LMDB requires to happen with no transaction active in the process.
    gate: RwLock<()>,
    /// Whether the environment itself was opened writable.
    writable: bool,
}

impl Shared {
    /// Runs `f` in a fresh read transaction under the gate's read side, as every transaction
    /// is; `None` when none could be opened (the map moved: a helper's read just gives up).
    pub(crate) fn with_read_txn<T>(&self, f: impl FnOnce(&ReadTxn<'_>) -> T) -> Option<T> {
        let _guard = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let txn = self.env.read_txn().ok()?;
        Some(f(&txn))
    }

    /// The environment's LMDB data file.
    pub(crate) fn data_file(&self) -> std::path::PathBuf {
        crate::file::data_file(self.env.path())
    }

    /// The leaves of the named database `name` that hold `index`'s records, to read ahead of a
    /// pass over them in key order ([`Leaves`](crate::file::Leaves)); `None` when the file
    /// cannot tell (the pass then reads as it goes).
    pub(crate) fn leaves_ahead(&self, name: &[u8], index: u16) -> Option<crate::file::Leaves> {
        let (start, end) = crate::keys::node_range(index);
        crate::file::Leaves::find(&self.data_file(), name, &start, &end).ok()
    }
}

impl std::ops::Deref for Shared {
    type Target = Dbs;
    fn deref(&self) -> &Dbs {
        &self.dbs
    }
}

/// LMDB's errors as the engine's. Here, with the environment, rather than in `error`: the version
/// it reports is the index format's (`header`), which `error` does not depend on.
impl From<heed::Error> for Error {
    fn from(error: heed::Error) -> Self {
        match error {
            heed::Error::Mdb(heed::MdbError::Corrupted) => {
                Error::Corrupt("LMDB reports a corrupted page".into())
            }
            heed::Error::Mdb(heed::MdbError::PageNotFound) => {
                Error::Corrupt("LMDB reports a missing page".into())
            }
            heed::Error::Mdb(heed::MdbError::Invalid) => {
                Error::Corrupt("the file is not an LMDB environment".into())
            }
            heed::Error::Mdb(heed::MdbError::VersionMismatch) => Error::Version {
                found: 0,
                supported: crate::header::FORMAT_VERSION,
            },
            heed::Error::Mdb(heed::MdbError::MapFull) => Error::MapFull,
            heed::Error::Mdb(heed::MdbError::MapResized) => Error::MapResized,
            heed::Error::Io(io) => Error::Io(io.to_string()),
            other => Error::Io(other.to_string()),
        }
    }
}

/// A handle on one database directory. Handles on the same directory in one process share one
/// LMDB environment (LMDB forbids opening it twice); the environment closes with its last handle.
#[derive(Clone)]
pub struct Database {
    pub(crate) shared: Arc<Shared>,
    read_only: bool,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Shared>>> {
    static REGISTRY: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn page_size() -> usize {
    4096
}

fn round_to_page(size: usize) -> usize {
    // Page sizes are powers of two up to 64 KiB; rounding to 64 KiB suits every platform.
    let unit = 64 << 10;
    size.div_ceil(unit) * unit
}

impl Database {
    /// Opens (creating when writable and missing) the database directory at `path`.
    pub fn open(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Database> {
        let path = path.as_ref();
        if !options.read_only {
            std::fs::create_dir_all(path).map_err(|e| {
                Error::Io(format!(
                    "cannot create the directory {}: {e}",
                    path.display()
                ))
            })?;
        }
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
        if !canonical.is_dir() {
            return Err(Error::Io(format!(
                "{} is not a directory",
                canonical.display()
            )));
        }

        let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        registry.retain(|_, weak| weak.strong_count() > 0);
        if let Some(shared) = registry.get(&canonical).and_then(Weak::upgrade) {
            drop(registry);
            if !options.read_only && !shared.writable {
                return Err(Error::InvalidArgument(format!(
                    "{} is already open read-only in this process: close it before opening it for writing",
                    canonical.display()
                )));
            }
            let db = Database {
                shared,
                read_only: options.read_only,
            };
            if options.verify {
                db.verify()?;
            }
            return Ok(db);
        }
        // Before LMDB maps the file: a file shorter than its meta page says would fault on
        // the first read past its end (SIGBUS), and a damaged tree on the first bad pointer.
        let file = crate::file::data_file(&canonical);
        crate::file::check_size(&file, !options.read_only)?;
        if options.verify && file.exists() {
            crate::file::check_structure(&file)?;
        }
        let shared = Arc::new(open_shared(&canonical, options)?);
        let db = Database {
            shared,
            read_only: options.read_only,
        };
        if options.verify {
            // The structure was checked above; the records are read now that LMDB can.
            db.verify_records()?;
        }
        registry.insert(canonical, Arc::downgrade(&db.shared));
        Ok(db)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The current size of the memory map in bytes.
    pub fn map_size(&self) -> usize {
        self.shared.env.info().map_size
    }

    /// Runs `f` under the gate's read side, as every transaction is (LMDB's own copy opens one).
    pub(crate) fn with_gate<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _guard = self.shared.gate.read().unwrap_or_else(|p| p.into_inner());
        f()
    }

    /// Runs `f` in a fresh read transaction (the latest committed state).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTxn<'_>) -> Result<T>) -> Result<T> {
        let shared = &*self.shared;
        loop {
            let guard = shared.gate.read().unwrap_or_else(|p| p.into_inner());
            match shared.env.read_txn() {
                Ok(txn) => {
                    let out = f(&txn);
                    drop(txn);
                    drop(guard);
                    return out;
                }
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.resize(0)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `f` in a write transaction and commits it. `extra_bytes` estimates what the write
    /// adds, so the map can grow before rather than after; a write that still fills the map is
    /// rolled back, the map grows, and `f` runs again.
    pub(crate) fn write<T>(
        &self,
        extra_bytes: usize,
        mut f: impl FnMut(&mut RwTxn<'_>) -> Result<T>,
    ) -> Result<T> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.ensure_room(extra_bytes)?;
        let shared = &*self.shared;
        loop {
            let guard = shared.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut txn = match shared.env.write_txn() {
                Ok(txn) => txn,
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.resize(0)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let result =
                f(&mut txn).and_then(|value| txn.commit().map(|_| value).map_err(Error::from));
            drop(guard);
            match result {
                Err(Error::MapFull) => {
                    let size = self.map_size();
                    self.resize(round_to_page(size.saturating_mul(2)))?;
                }
                Err(Error::MapResized) => self.resize(0)?,
                other => return other,
            }
        }
    }

    /// Grows the map ahead of a write of about `extra_bytes`.
    fn ensure_room(&self, extra_bytes: usize) -> Result<()> {
        let info = self.shared.env.info();
        let used = (info.last_page_number + 1) * page_size();
        // Copy-on-write needs room for the new pages while the old ones are still live.
        let needed = used
            .saturating_add(extra_bytes.saturating_mul(2))
            .saturating_add(16 << 20);
        if needed > info.map_size {
            self.resize(round_to_page(needed.max(info.map_size.saturating_mul(2))))?;
        }
        Ok(())
    }

    /// Sets the map size (0 adopts the size another process set).
    fn resize(&self, size: usize) -> Result<()> {
        let shared = &*self.shared;
        let _exclusive = exclusive(&shared.gate);
        if size != 0 && size <= shared.env.info().map_size {
            return Ok(()); // another thread grew it meanwhile
        }
        // The views hold pointers into the map, which may move.
        shared.views.clear();
        // SAFETY: LMDB allows changing the map size when no transaction is active in this
        // process. Every transaction is opened while holding the gate's read side (`read`,
        // `write` and `with_gate` above and `Shared::with_read_txn`, for the fault threads, are
        // the only places that open them), and we hold its write side.
        unsafe { shared.env.resize(size) }.map_err(|e| match e {
            heed::Error::Mdb(heed::MdbError::Other(_)) | heed::Error::Io(_) => {
                Error::Io(format!("cannot grow the memory map to {size} bytes: {e}"))
            }
            other => other.into(),
        })
    }
}

/// The gate's write side, for a resize. Waiting on it would queue in front of every new read
/// (the lock favours writers), so a long holder of the read side (a copy or a whole-file check
/// holds one transaction throughout) would stall every search until it ends. It is taken
/// between reads instead, polling for up to a second, and waited for only after that (so a
/// resize is not starved by reads that keep overlapping).
fn exclusive(gate: &RwLock<()>) -> std::sync::RwLockWriteGuard<'_, ()> {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(1) {
        match gate.try_write() {
            Ok(guard) => return guard,
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_micros(200))
            }
        }
    }
    gate.write().unwrap_or_else(|p| p.into_inner())
}

fn open_shared(path: &Path, options: &OpenOptions) -> Result<Shared> {
    let map_size = round_to_page(options.map_size.unwrap_or(DEFAULT_MAP_SIZE).max(1 << 20));
    let open = |extra: EnvFlags| -> std::result::Result<Env, heed::Error> {
        let mut builder = EnvOpenOptions::new().read_txn_without_tls();
        builder
            .map_size(map_size)
            .max_dbs(8)
            .max_readers(MAX_READERS);
        let mut flags = EnvFlags::NO_READ_AHEAD | extra;
        if options.read_only {
            flags |= EnvFlags::READ_ONLY;
        }
        // SAFETY: `flags` sets NO_READ_AHEAD (random access suits HNSW), READ_ONLY and, for
        // read-only directories, NO_LOCK; none of them weakens the memory safety of the map.
        unsafe { builder.flags(flags) };
        // SAFETY: heed's requirement is that the environment is not opened twice in this
        // process, which the registry in `Database::open` guarantees, and that the files are not
        // truncated or modified by anything but LMDB, which is the contract of the directory.
        unsafe { builder.open(path) }
    };
    let env = match open(EnvFlags::empty()) {
        Ok(env) => env,
        Err(heed::Error::Io(e))
            if options.read_only
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
        {
            // A read-only directory (a serverless bundle): LMDB cannot create its lock file.
            open(EnvFlags::NO_LOCK).map_err(|e| io_error(path, e))?
        }
        Err(e) => return Err(io_error(path, e)),
    };

    // Existing databases are opened in a read transaction, so opening a directory never waits
    // for LMDB's write lock (another process may hold it for a whole build). Only a directory
    // that has none yet takes a write transaction to create them.
    let (meta, nodes, links, upper) = match open_existing(&env)? {
        Some(dbs) => dbs,
        None if options.read_only => {
            return Err(Error::Io(format!(
                "{} holds no hannoy database",
                path.display()
            )))
        }
        None => {
            let txn = env.write_txn()?;
            let created = env.create_databases_and_commit(txn, |opener, txn| -> Result<_> {
                // Refuse a format-1 directory before creating anything in it (also checked by
                // `open_existing`; another process may have written one meanwhile).
                let old_meta = opener.open_database::<Bytes, Bytes>(txn, Some("meta"))?;
                let links = opener.open_database::<Bytes, Bytes>(txn, Some("links"))?;
                refuse_format_1(old_meta, links, txn)?;
                let meta = opener.create_database::<Bytes, Bytes>(txn, Some("meta"))?;
                let nodes = opener.create_database::<Bytes, Bytes>(txn, Some("nodes"))?;
                let links = opener.create_database::<Bytes, Bytes>(txn, Some("links"))?;
                let upper = opener.create_database::<Bytes, Bytes>(txn, Some("upper"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((meta, nodes, links, upper)))
            })?;
            created
                .commit()
                .ok_or_else(|| Error::Io("creating the databases was aborted".into()))?
        }
    };
    Ok(Shared {
        env,
        dbs: Dbs {
            meta,
            nodes,
            links,
            upper,
        },
        views: crate::view::Views::new(crate::file::data_file(path)),
        gate: RwLock::new(()),
        writable: !options.read_only,
    })
}

/// Format 1 kept the links inside `nodes`: its directories have indexes (a non-empty `meta`)
/// but no `links` database. They are refused, never converted.
fn refuse_format_1(
    meta: Option<heed::Database<'_, Bytes, Bytes>>,
    links: Option<heed::Database<'_, Bytes, Bytes>>,
    txn: &heed::RoTxn,
) -> Result<()> {
    if let (Some(meta), None) = (meta, links) {
        if !meta.is_empty(txn)? {
            return Err(Error::Version {
                found: 1,
                supported: crate::header::FORMAT_VERSION,
            });
        }
    }
    Ok(())
}

/// The databases of a directory that has them all, opened in a read transaction; `None` when
/// some are missing (a new directory); an error for a directory of format 1, which has indexes
/// but no `links` database.
fn open_existing(env: &Env) -> Result<Option<(Db, Db, Db, Db)>> {
    let txn = env.read_txn()?;
    let opened = env.open_databases_and_commit(txn, |opener, txn| -> Result<_> {
        let get = |name: &str| opener.open_database::<Bytes, Bytes>(txn, Some(name));
        let (meta, nodes, links, upper) =
            (get("meta")?, get("nodes")?, get("links")?, get("upper")?);
        refuse_format_1(meta, links, txn)?;
        let all = match (meta, nodes, links, upper) {
            (Some(meta), Some(nodes), Some(links), Some(upper)) => {
                Some((meta, nodes, links, upper))
            }
            _ => None,
        };
        Ok(CommitOrAbort::<_, ()>::Commit(all))
    })?;
    opened
        .commit()
        .ok_or_else(|| Error::Io("opening the databases was aborted".into()))
}

fn io_error(path: &Path, error: heed::Error) -> Error {
    match error {
        heed::Error::Io(e) => Error::Io(format!("cannot open {}: {e}", path.display())),
        other => other.into(),
    }
}

/// Writes keys into one database, with `MDB_APPEND` while each key sorts after every key already
/// there (new items with growing ids, a first build): LMDB then fills pages completely instead of
/// splitting them in half. Other keys take a normal put.
pub(crate) struct Appender {
    db: Db,
    last: Option<Vec<u8>>,
}

impl Appender {
    pub(crate) fn new(db: Db, txn: &RwTxn<'_>) -> Result<Appender> {
        let last = db.last(txn)?.map(|(key, _)| key.to_vec());
        Ok(Appender { db, last })
    }

    pub(crate) fn put(&mut self, txn: &mut RwTxn<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        if self.last.as_deref().is_none_or(|last| key > last) {
            self.db.put_with_flags(txn, PutFlags::APPEND, key, value)?;
            let last = self.last.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(key);
        } else {
            self.db.put(txn, key, value)?;
        }
        Ok(())
    }
}
