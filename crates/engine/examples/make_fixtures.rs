//! Writes the damaged directories that the JavaScript tests open to see `ERR_HANNOY_VERSION` and
//! `ERR_HANNOY_CORRUPT` (JavaScript cannot write such records through the API):
//! `cargo run --release -p hannoy-engine --example make_fixtures -- __test__/fixtures/dirs`.
//!
//! - `newer`: index 0's header claims format version 99.
//! - `format1`: the layout of format 1 (no `links` database), header version 1.
//! - `corrupt`: a built index 0 whose level-0 link lists are garbage.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use hannoy_engine::{BuildOptions, Control, Database, MetricKind, OpenOptions};
use heed::types::Bytes;
use heed::{CommitOrAbort, EnvOpenOptions};

const DIMS: usize = 4;
const ITEMS: u32 = 20;

fn meta_key(index: u16, kind: u8) -> [u8; 3] {
    let i = index.to_be_bytes();
    [i[0], i[1], kind]
}

fn node_key(index: u16, id: u32) -> [u8; 8] {
    (((index as u64) << 32) | id as u64).to_be_bytes()
}

/// A small built euclidean index 0 in `dir`.
fn built(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let db = Database::open(dir, &OpenOptions::default()).unwrap();
    let ids: Vec<u32> = (0..ITEMS).collect();
    let data: Vec<f32> = (0..ITEMS as usize * DIMS).map(|i| (i % 7) as f32).collect();
    db.add_items(0, DIMS, MetricKind::Euclidean, &ids, &data)
        .unwrap();
    let cancel = AtomicBool::new(false);
    let progress = |_| {};
    let control = Control {
        progress: &progress,
        cancel: &cancel,
    };
    db.build(0, &BuildOptions::default(), &control).unwrap();
}

type Raw<'e> = heed::Database<'e, Bytes, Bytes>;

/// Runs `f` in a write transaction on the raw databases of `dir` (by name; a missing one is
/// created when `create` lists it), after the engine's handles are gone.
fn with_raw(
    dir: &Path,
    create: &[&str],
    f: impl for<'e> FnOnce(&mut heed::RwTxn<'e>, &[(&str, Raw<'e>)]),
) {
    // SAFETY: the directory is opened once, by this program only, after the engine closed it.
    let env = unsafe { EnvOpenOptions::new().max_dbs(8).open(dir) }.unwrap();
    let txn = env.write_txn().unwrap();
    let done = env
        .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
            let mut dbs = Vec::new();
            for name in ["meta", "nodes", "links", "upper"] {
                let db = if create.contains(&name) {
                    Some(opener.create_database::<Bytes, Bytes>(txn, Some(name))?)
                } else {
                    opener.open_database::<Bytes, Bytes>(txn, Some(name))?
                };
                if let Some(db) = db {
                    dbs.push((name, db));
                }
            }
            f(txn, &dbs);
            Ok(CommitOrAbort::<_, ()>::Commit(()))
        })
        .unwrap();
    assert!(done.commit().is_some());
}

fn db<'e>(dbs: &[(&str, Raw<'e>)], name: &str) -> Raw<'e> {
    dbs.iter().find(|(n, _)| *n == name).unwrap().1
}

fn set_version(txn: &mut heed::RwTxn<'_>, meta: Raw<'_>, version: u16) {
    let mut header = meta.get(txn, &meta_key(0, 0)).unwrap().unwrap().to_vec();
    header[4..6].copy_from_slice(&version.to_le_bytes());
    meta.put(txn, &meta_key(0, 0), &header).unwrap();
}

fn entries(txn: &heed::RwTxn<'_>, db: Raw<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter(txn)
        .unwrap()
        .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: make_fixtures <output dir>");
    let out = Path::new(&out);
    // Only the directories this program writes: the output folder may hold other fixtures.
    for name in ["newer", "corrupt", "format1", "source"] {
        let _ = std::fs::remove_dir_all(out.join(name));
    }

    let newer = out.join("newer");
    built(&newer);
    with_raw(&newer, &[], |txn, dbs| {
        set_version(txn, db(dbs, "meta"), 99)
    });

    let corrupt = out.join("corrupt");
    built(&corrupt);
    with_raw(&corrupt, &[], |txn, dbs| {
        let links = db(dbs, "links");
        for id in 0..ITEMS {
            links
                .put(txn, &node_key(0, id), &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
                .unwrap();
        }
    });

    // Format 1: the header and vectors of a built index in a directory with no `links` database.
    let source = out.join("source");
    built(&source);
    let mut copied = (Vec::new(), Vec::new());
    with_raw(&source, &[], |txn, dbs| {
        copied = (
            entries(txn, db(dbs, "meta")),
            entries(txn, db(dbs, "nodes")),
        );
    });
    std::fs::remove_dir_all(&source).unwrap();
    let format1 = out.join("format1");
    std::fs::create_dir_all(&format1).unwrap();
    with_raw(&format1, &["meta", "nodes", "upper"], |txn, dbs| {
        for (name, rows) in [("meta", &copied.0), ("nodes", &copied.1)] {
            for (k, v) in rows {
                db(dbs, name).put(txn, k, v).unwrap();
            }
        }
        set_version(txn, db(dbs, "meta"), 1);
    });
    for dir in [&newer, &corrupt, &format1] {
        let _ = std::fs::remove_file(dir.join("lock.mdb"));
    }
    println!("wrote {}", out.display());
}
