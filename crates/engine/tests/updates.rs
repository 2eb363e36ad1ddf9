//! Incremental builds, deletes, persistence, isolation, cancellation and progress.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use common::*;
use hannoy_engine::{
    BuildOptions, Control, Database, Error, MetricKind, OpenOptions, Progress, SearchOptions,
};

const DIMS: usize = 32;

fn average_recall(db: &Database, data: &[f32], live: &[u32], queries: &[f32]) -> f64 {
    let mut total = 0.0;
    let n = queries.len() / DIMS;
    for q in queries.chunks_exact(DIMS) {
        let found = db
            .search(
                0,
                q,
                &SearchOptions {
                    ef: Some(64),
                    ..SearchOptions::new(10)
                },
            )
            .unwrap();
        let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
        total += recall(
            &found,
            &brute_force(MetricKind::Euclidean, data, DIMS, live, q, 10),
        );
    }
    total / n as f64
}

fn rows(data: &[f32], ids: &[u32]) -> Vec<f32> {
    ids.iter()
        .flat_map(|&id| {
            data[id as usize * DIMS..(id as usize + 1) * DIMS]
                .iter()
                .copied()
        })
        .collect()
}

#[test]
fn incremental_builds_match_a_one_shot_build() {
    let n = 6000;
    let data = clustered(n, DIMS, 3);
    let queries = clustered(300, DIMS, 4);
    let all = ids(n);
    let deleted: Vec<u32> = (0..n as u32).filter(|i| i % 7 == 3).collect();
    let live: Vec<u32> = all.iter().copied().filter(|i| i % 7 != 3).collect();

    // One shot: only the live items.
    let (_d1, once) = temp_db();
    once.add_items(0, DIMS, MetricKind::Euclidean, &live, &rows(&data, &live))
        .unwrap();
    build(&once, 0);
    let one_shot = average_recall(&once, &data, &live, &queries);

    // Incremental: three batches, each built, then a batch of deletes, built.
    let (_d2, inc) = temp_db();
    for batch in all.chunks(n / 3) {
        inc.add_items(0, DIMS, MetricKind::Euclidean, batch, &rows(&data, batch))
            .unwrap();
        let stats = build(&inc, 0);
        assert_eq!(stats.inserted, batch.len() as u64);
    }
    assert_eq!(inc.delete_items(0, &deleted).unwrap(), deleted.len() as u64);
    // Deleted ids never come back, even before the build.
    for q in queries.chunks_exact(DIMS).take(20) {
        let found = inc
            .search(
                0,
                q,
                &SearchOptions {
                    ef: Some(64),
                    ..SearchOptions::new(20)
                },
            )
            .unwrap();
        assert!(
            found.iter().all(|n| n.id % 7 != 3),
            "a deleted id came back before the build"
        );
    }
    let tombstoned = average_recall(&inc, &data, &live, &queries);
    let stats = build(&inc, 0);
    assert_eq!(stats.deleted, deleted.len() as u64);
    assert_eq!(stats.items, live.len() as u64);
    let incremental = average_recall(&inc, &data, &live, &queries);
    eprintln!("one-shot recall {one_shot:.4}, before the delete build {tombstoned:.4}, incremental {incremental:.4}");
    assert!(
        incremental >= one_shot - 0.01,
        "incremental {incremental:.4} vs one-shot {one_shot:.4}"
    );
    for q in queries.chunks_exact(DIMS) {
        let found = inc
            .search(
                0,
                q,
                &SearchOptions {
                    ef: Some(64),
                    ..SearchOptions::new(20)
                },
            )
            .unwrap();
        assert!(
            found.iter().all(|n| n.id % 7 != 3),
            "a deleted id came back"
        );
    }

    // Re-adding a deleted id works: it is found at distance 0 after the next build.
    let back = deleted[5];
    inc.add_items(
        0,
        DIMS,
        MetricKind::Euclidean,
        &[back],
        &rows(&data, &[back]),
    )
    .unwrap();
    build(&inc, 0);
    let query = &data[back as usize * DIMS..(back as usize + 1) * DIMS];
    let found = inc.search(0, query, &SearchOptions::new(1)).unwrap();
    assert_eq!(found[0].id, back);
    assert!(found[0].distance.abs() < 1e-5);
    assert_eq!(inc.count(0).unwrap(), live.len() as u64 + 1);
}

#[test]
fn deleting_everything_then_adding_works() {
    let data = clustered(500, DIMS, 5);
    let (_dir, db) = temp_db();
    let all = ids(500);
    db.add_items(0, DIMS, MetricKind::Euclidean, &all, &data)
        .unwrap();
    build(&db, 0);
    assert_eq!(db.delete_items(0, &all).unwrap(), 500);
    assert_eq!(
        db.delete_items(0, &all).unwrap(),
        0,
        "a second delete finds nothing"
    );
    build(&db, 0);
    assert_eq!(db.count(0).unwrap(), 0);
    assert!(db
        .search(0, &data[..DIMS], &SearchOptions::new(5))
        .unwrap()
        .is_empty());
    let fresh: Vec<u32> = (1000..1100).collect();
    db.add_items(0, DIMS, MetricKind::Euclidean, &fresh, &data[..100 * DIMS])
        .unwrap();
    build(&db, 0);
    let found = db.search(0, &data[..DIMS], &SearchOptions::new(5)).unwrap();
    assert_eq!(found[0].id, 1000);
    assert!(found.iter().all(|n| n.id >= 1000));
}

#[test]
fn unbuilt_items_are_not_searchable_until_built() {
    let data = clustered(300, DIMS, 6);
    let (_dir, db) = temp_db();
    db.add_items(
        0,
        DIMS,
        MetricKind::Euclidean,
        &ids(200),
        &data[..200 * DIMS],
    )
    .unwrap();
    assert!(matches!(
        db.search(0, &data[..DIMS], &SearchOptions::new(5)),
        Err(Error::NeedsBuild(0))
    ));
    build(&db, 0);
    let late: Vec<u32> = (200..300).collect();
    db.add_items(0, DIMS, MetricKind::Euclidean, &late, &data[200 * DIMS..])
        .unwrap();
    let q = &data[250 * DIMS..251 * DIMS];
    let found = db.search(0, q, &SearchOptions::new(10)).unwrap();
    assert!(
        found.iter().all(|n| n.id < 200),
        "unbuilt items were returned"
    );
    assert_eq!(db.count(0).unwrap(), 300, "count includes unbuilt items");
    build(&db, 0);
    assert_eq!(db.search(0, q, &SearchOptions::new(1)).unwrap()[0].id, 250);
}

#[test]
fn persistence_and_isolation() {
    let dir = hannoy_engine::scratch::ScratchDir::new("hannoy-test").unwrap();
    let a = clustered(400, 16, 8);
    let b = clustered(300, 40, 9);
    {
        let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
        db.add_items(3, 16, MetricKind::Cosine, &ids(400), &a)
            .unwrap();
        db.add_items(9, 40, MetricKind::Manhattan, &ids(300), &b)
            .unwrap();
        build(&db, 3);
        build(&db, 9);
    }
    let db = Database::open(
        dir.path(),
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let list = db.indexes().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (
            list[0].index,
            list[0].dimensions,
            list[0].metric,
            list[0].items
        ),
        (3, 16, MetricKind::Cosine, 400)
    );
    assert_eq!(
        (
            list[1].index,
            list[1].dimensions,
            list[1].metric,
            list[1].items
        ),
        (9, 40, MetricKind::Manhattan, 300)
    );
    let found = db
        .search(3, &a[16 * 17..16 * 18], &SearchOptions::new(3))
        .unwrap();
    assert_eq!(found[0].id, 17);
    let found = db
        .search(9, &b[40 * 5..40 * 6], &SearchOptions::new(300))
        .unwrap();
    assert_eq!(found[0].id, 5);
    assert!(found.iter().all(|n| n.id < 300));
    assert_eq!(
        db.get_vector(3, 17).unwrap().unwrap(),
        a[16 * 17..16 * 18].to_vec()
    );
    assert!(matches!(
        db.search(9, &a[..16], &SearchOptions::new(3)),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        db.add_items(3, 16, MetricKind::Cosine, &[1], &a[..16]),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        db.search(4, &a[..16], &SearchOptions::new(3)),
        Err(Error::IndexNotFound(4))
    ));
}

#[test]
fn writer_parameters_must_match_the_stored_index() {
    let (_dir, db) = temp_db();
    db.add_items(0, 4, MetricKind::Cosine, &[1], &[1.0, 0.0, 0.0, 0.0])
        .unwrap();
    assert!(matches!(
        db.check_writer(0, 5, MetricKind::Cosine),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        db.check_writer(0, 4, MetricKind::Euclidean),
        Err(Error::MetricMismatch { .. })
    ));
    assert!(db.check_writer(1, 5, MetricKind::Euclidean).is_ok());
    assert!(matches!(
        db.add_items(0, 4, MetricKind::Cosine, &[2], &[f32::NAN, 0.0, 0.0, 0.0]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.add_items(0, 4, MetricKind::Cosine, &[2, 3], &[0.0; 4]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.count(0).unwrap(), 1, "rejected writes stored nothing");
}

#[test]
fn cancelling_a_build_changes_nothing_and_progress_reaches_total() {
    let n = 20_000;
    let data = clustered(n, DIMS, 10);
    let (_dir, db) = temp_db();
    db.add_items(
        0,
        DIMS,
        MetricKind::Euclidean,
        &ids(1000),
        &data[..1000 * DIMS],
    )
    .unwrap();
    build(&db, 0);
    let q = &data[5000 * DIMS..5001 * DIMS];
    let before = db.search(0, q, &SearchOptions::new(10)).unwrap();
    let rest: Vec<u32> = (1000..n as u32).collect();
    db.add_items(0, DIMS, MetricKind::Euclidean, &rest, &data[1000 * DIMS..])
        .unwrap();

    // Cancel once the insertion is under way.
    let cancel = AtomicBool::new(false);
    let progress = |p: Progress| {
        if p.phase == "insert" && p.done >= 2000 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let result = db.build(
        0,
        &BuildOptions::default(),
        &Control {
            progress: &progress,
            cancel: &cancel,
        },
    );
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(
        db.search(0, q, &SearchOptions::new(10)).unwrap(),
        before,
        "the cancelled build changed the index"
    );

    // A full build reports every phase up to its total.
    let seen = Mutex::new(Vec::<Progress>::new());
    let progress = |p: Progress| seen.lock().unwrap().push(p);
    let cancel = AtomicBool::new(false);
    let stats = db
        .build(
            0,
            &BuildOptions::default(),
            &Control {
                progress: &progress,
                cancel: &cancel,
            },
        )
        .unwrap();
    assert_eq!(stats.inserted, rest.len() as u64);
    let seen = seen.into_inner().unwrap();
    let last_insert = seen.iter().rev().find(|p| p.phase == "insert").unwrap();
    assert_eq!(
        (last_insert.done, last_insert.total),
        (rest.len() as u64, rest.len() as u64)
    );
    assert!(seen.iter().all(|p| p.done <= p.total));
    assert_eq!(db.search(0, q, &SearchOptions::new(1)).unwrap()[0].id, 5000);
}

#[test]
fn filters_return_only_allowed_ids_and_small_ones_are_exact() {
    let n = 5000;
    let data = clustered(n, DIMS, 11);
    let (_dir, db) = temp_db();
    db.add_items(0, DIMS, MetricKind::Euclidean, &ids(n), &data)
        .unwrap();
    build(&db, 0);
    let q = &data[..DIMS];
    // Small filter: exact.
    let allowed: Vec<u32> = (0..n as u32).filter(|i| i % 50 == 7).collect();
    let bitmap: roaring::RoaringBitmap = allowed.iter().copied().collect();
    let found = db
        .search(
            0,
            q,
            &SearchOptions {
                filter: Some(&bitmap),
                ..SearchOptions::new(10)
            },
        )
        .unwrap();
    let truth = brute_force(MetricKind::Euclidean, &data, DIMS, &allowed, q, 10);
    assert_eq!(
        found.iter().map(|n| n.id).collect::<Vec<_>>(),
        truth.iter().map(|t| t.0).collect::<Vec<_>>()
    );
    // Large filter: graph walk, only allowed ids.
    let half: roaring::RoaringBitmap = (0..n as u32).filter(|i| i % 2 == 0).collect();
    let found = db
        .search(
            0,
            q,
            &SearchOptions {
                filter: Some(&half),
                ..SearchOptions::new(10)
            },
        )
        .unwrap();
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|n| n.id % 2 == 0));
}

#[test]
fn batch_search_pads_short_rows_and_matches_single_searches() {
    let data = clustered(50, 8, 12);
    let (_dir, db) = temp_db();
    db.add_items(0, 8, MetricKind::Euclidean, &ids(5), &data[..40])
        .unwrap();
    build(&db, 0);
    let batch = db
        .search_batch(0, &data[..8 * 20], &SearchOptions::new(8))
        .unwrap();
    assert_eq!(batch.k, 8);
    assert_eq!(batch.ids.len(), 20 * 8);
    for (row, q) in data[..8 * 20].chunks_exact(8).enumerate() {
        let single = db.search(0, q, &SearchOptions::new(8)).unwrap();
        assert_eq!(single.len(), 5);
        for (j, n) in single.iter().enumerate() {
            assert_eq!(batch.ids[row * 8 + j], n.id);
        }
        for j in 5..8 {
            assert_eq!(batch.ids[row * 8 + j], u32::MAX);
            assert_eq!(batch.distances[row * 8 + j], f32::INFINITY);
        }
    }
    // By id: the item itself first.
    let found = db.search_by_id(0, 3, &SearchOptions::new(2)).unwrap();
    assert_eq!(found[0].id, 3);
    assert!(found[0].distance.abs() < 1e-6);
    assert!(matches!(
        db.search_by_id(0, 77, &SearchOptions::new(2)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.search(0, &data[..8], &SearchOptions::new(0)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_map_grows_by_itself() {
    let dir = hannoy_engine::scratch::ScratchDir::new("hannoy-test").unwrap();
    let db = Database::open(
        dir.path(),
        &OpenOptions {
            map_size: Some(1 << 20),
            ..Default::default()
        },
    )
    .unwrap();
    let n = 20_000;
    let data = clustered(n, 64, 13);
    for chunk in ids(n).chunks(5000) {
        let rows: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| data[i as usize * 64..(i as usize + 1) * 64].iter().copied())
            .collect();
        db.add_items(0, 64, MetricKind::Euclidean, chunk, &rows)
            .unwrap();
    }
    build(&db, 0);
    assert!(db.map_size() > 1 << 20);
    assert_eq!(db.count(0).unwrap(), n as u64);
    assert_eq!(
        db.search(0, &data[64 * 42..64 * 43], &SearchOptions::new(1))
            .unwrap()[0]
            .id,
        42
    );
}

#[test]
fn repeated_ids_in_a_batch_and_re_adds_of_built_items() {
    let (_dir, db) = temp_db();
    let metric = MetricKind::Euclidean;
    // In one batch, the last vector of a repeated id wins, and the id counts once.
    db.add_items(
        0,
        2,
        metric,
        &[7, 3, 7, 9],
        &[1.0, 1.0, 3.0, 3.0, 2.0, 2.0, 9.0, 9.0],
    )
    .unwrap();
    assert_eq!(db.count(0).unwrap(), 3);
    assert_eq!(db.get_vector(0, 7).unwrap(), Some(vec![2.0, 2.0]));
    build(&db, 0);
    let first = db.search(0, &[2.0, 2.0], &SearchOptions::new(1)).unwrap();
    assert_eq!(first[0].id, 7);
    assert_eq!(first[0].distance, 0.0);

    // Re-adding a built item moves it at the next build, and never duplicates it.
    db.add_items(0, 2, metric, &[7], &[8.5, 8.5]).unwrap();
    assert_eq!(db.count(0).unwrap(), 3);
    build(&db, 0);
    let near = db.search(0, &[8.5, 8.5], &SearchOptions::new(3)).unwrap();
    assert_eq!(near.iter().map(|n| n.id).collect::<Vec<_>>(), vec![7, 9, 3]);
    assert_eq!(near[0].distance, 0.0);

    // Re-add then delete before building: gone for good, the others intact.
    db.add_items(0, 2, metric, &[3], &[0.0, 0.0]).unwrap();
    assert_eq!(db.delete_items(0, &[3]).unwrap(), 1);
    assert_eq!(db.count(0).unwrap(), 2);
    build(&db, 0);
    let all = db.search(0, &[0.0, 0.0], &SearchOptions::new(10)).unwrap();
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), vec![7, 9]);
    assert_eq!(db.get_vector(0, 3).unwrap(), None);
}

#[test]
fn a_smaller_m0_in_a_later_build_prunes_the_longer_stored_lists_and_keeps_recall() {
    let n = 3000;
    let data = clustered(n, DIMS, 11);
    let queries = clustered(200, DIMS, 12);
    let all = ids(n);
    let (first, second) = all.split_at(2000);
    let (_dir, db) = temp_db();
    db.add_items(0, DIMS, MetricKind::Euclidean, first, &rows(&data, first))
        .unwrap();
    let wide = BuildOptions {
        m: Some(24),
        m0: Some(96),
        ..BuildOptions::default()
    };
    build_with(&db, 0, &wide);
    let before = average_recall(&db, &data, first, &queries);
    // The next build loads lists of up to 96 links while its own capacity is 16: it cuts them.
    db.add_items(0, DIMS, MetricKind::Euclidean, second, &rows(&data, second))
        .unwrap();
    let narrow = BuildOptions {
        m: Some(8),
        m0: Some(16),
        ..BuildOptions::default()
    };
    let stats = build_with(&db, 0, &narrow);
    assert_eq!(stats.inserted, second.len() as u64);
    let after = average_recall(&db, &data, &all, &queries);
    eprintln!("m0 96: recall {before:.4}; after adding a third with m0 16: {after:.4}");
    assert!(after >= 0.9, "recall {after:.4} after the narrower build");
    // Items find themselves. Cutting lists of 96 links to 16 can leave an odd node with no link
    // to it left (seen: 0 to 3 of these 3,000, as in any HNSW graph whose lists are pruned);
    // a load that lost the stored lists would miss most of them.
    let mut missed = Vec::new();
    for &id in &all {
        let q = &data[id as usize * DIMS..(id as usize + 1) * DIMS];
        let options = SearchOptions {
            ef: Some(64),
            ..SearchOptions::new(1)
        };
        if db.search(0, q, &options).unwrap()[0].id != id {
            missed.push(id);
        }
    }
    eprintln!("items that did not find themselves: {missed:?}");
    assert!(missed.len() <= n / 200, "{} of {n} items", missed.len());
}
