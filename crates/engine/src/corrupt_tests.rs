//! Damaged records are reported as errors, never a panic.

use crate::error::Error;
use crate::keys;
use crate::metric::MetricKind;
use crate::search::SearchOptions;
use crate::store::{Database, OpenOptions};
use crate::{BuildOptions, Control, Progress};
use std::sync::atomic::AtomicBool;

fn built_db() -> (crate::scratch::ScratchDir, Database) {
    let dir = crate::scratch::ScratchDir::new("hannoy-test").unwrap();
    let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
    let data: Vec<f32> = (0..200 * 4)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let ids: Vec<u32> = (0..200).collect();
    db.add_items(0, 4, MetricKind::Euclidean, &ids, &data)
        .unwrap();
    build(&db).unwrap();
    (dir, db)
}

/// Builds index 0 with the defaults, reporting nowhere.
fn build(db: &Database) -> Result<crate::BuildStats, Error> {
    let cancel = AtomicBool::new(false);
    let progress = |_: Progress| {};
    let control = Control {
        progress: &progress,
        cancel: &cancel,
    };
    db.build(0, &BuildOptions::default(), &control)
}

fn put(db: &Database, which: &str, key: &[u8], value: &[u8]) {
    let s = &*db.shared;
    let mut txn = s.env.write_txn().unwrap();
    let target = match which {
        "meta" => s.meta,
        "nodes" => s.nodes,
        "links" => s.links,
        _ => s.upper,
    };
    target.put(&mut txn, key, value).unwrap();
    txn.commit().unwrap();
}

fn search_all(db: &Database) -> Result<(), Error> {
    for i in 0..50 {
        let q = [i as f32 / 50.0, 0.5, -0.5, 0.1];
        db.search(
            0,
            &q,
            &SearchOptions {
                ef: Some(200),
                ..SearchOptions::new(10)
            },
        )?;
    }
    Ok(())
}

#[test]
fn truncated_header_is_corrupt() {
    let (_dir, db) = built_db();
    put(
        &db,
        "meta",
        &keys::meta(0, keys::META_HEADER),
        b"HNOY\x02\x00\x00",
    );
    assert!(matches!(db.info(0), Err(Error::Corrupt(_))));
    assert!(matches!(search_all(&db), Err(Error::Corrupt(_))));
    assert!(matches!(db.indexes(), Err(Error::Corrupt(_))));
}

#[test]
fn newer_format_version_is_refused() {
    let (_dir, db) = built_db();
    let s = &*db.shared;
    let txn = s.env.read_txn().unwrap();
    let mut header = s
        .meta
        .get(&txn, &keys::meta(0, keys::META_HEADER))
        .unwrap()
        .unwrap()
        .to_vec();
    drop(txn);
    header[4] = 99;
    put(&db, "meta", &keys::meta(0, keys::META_HEADER), &header);
    assert!(matches!(db.info(0), Err(Error::Version { found: 99, .. })));
}

#[test]
fn truncated_vector_is_corrupt() {
    let (_dir, db) = built_db();
    for id in 0..200 {
        put(&db, "nodes", &keys::node(0, id), &[1, 2, 3]);
    }
    assert!(matches!(search_all(&db), Err(Error::Corrupt(_))));
    assert!(matches!(db.get_vector(0, 5), Err(Error::Corrupt(_))));
}

#[test]
fn garbage_links_are_corrupt() {
    let (_dir, db) = built_db();
    let s = &*db.shared;
    let txn = s.env.read_txn().unwrap();
    let mut records = Vec::new();
    for id in 0..200u32 {
        assert!(s.links.get(&txn, &keys::node(0, id)).unwrap().is_some());
        records.push(id);
    }
    drop(txn);
    for id in records {
        put(
            &db,
            "links",
            &keys::node(0, id),
            &[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0x7f],
        );
    }
    assert!(matches!(search_all(&db), Err(Error::Corrupt(_))));
    db.add_items(0, 4, MetricKind::Euclidean, &[999], &[0.0; 4])
        .unwrap();
    let built = build(&db);
    assert!(matches!(built, Err(Error::Corrupt(_))), "{built:?}");
}

#[test]
fn garbage_sets_are_corrupt() {
    let (_dir, db) = built_db();
    put(&db, "meta", &keys::meta(0, keys::META_DELETED), &[9, 9, 9]);
    assert!(matches!(search_all(&db), Err(Error::Corrupt(_))));
}

#[test]
fn links_without_a_vector_are_corrupt() {
    let (_dir, db) = built_db();
    put(&db, "links", &keys::node(0, 5000), &[]);
    db.add_items(0, 4, MetricKind::Euclidean, &[999], &[0.0; 4])
        .unwrap();
    let built = build(&db);
    assert!(matches!(built, Err(Error::Corrupt(_))), "{built:?}");
}

#[test]
fn format_1_directories_are_refused_and_left_alone() {
    use heed::types::Bytes;
    let dir = crate::scratch::ScratchDir::new("hannoy-test").unwrap();
    {
        // What format 1 wrote: no `links` database, headers of version 1.
        // SAFETY: a fresh directory opened once, by this test only.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .read_txn_without_tls()
                .max_dbs(8)
                .open(dir.path())
        }
        .unwrap();
        let txn = env.write_txn().unwrap();
        let mut header = crate::header::Header::new(4, MetricKind::Euclidean).encode();
        header[4..6].copy_from_slice(&1u16.to_le_bytes());
        let made = env
            .create_databases_and_commit(txn, |opener, txn| -> Result<_, heed::Error> {
                let meta = opener.create_database::<Bytes, Bytes>(txn, Some("meta"))?;
                opener.create_database::<Bytes, Bytes>(txn, Some("nodes"))?;
                opener.create_database::<Bytes, Bytes>(txn, Some("upper"))?;
                meta.put(txn, &keys::meta(0, keys::META_HEADER), &header)?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(()))
            })
            .unwrap();
        assert!(made.commit().is_some());
    }
    for read_only in [false, true, false] {
        let options = OpenOptions {
            read_only,
            ..OpenOptions::default()
        };
        let opened = Database::open(dir.path(), &options);
        assert!(
            matches!(opened, Err(Error::Version { found: 1, .. })),
            "read_only {read_only}: {:?}",
            opened.err()
        );
    }
}
