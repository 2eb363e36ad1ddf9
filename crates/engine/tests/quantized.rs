//! Quantized indexes ('int8', 'binary'): recall against brute force, exact rescored distances,
//! incremental updates, the original vectors, persistence, format 2, retraining.

mod common;

use common::*;
use hannoy_engine::{
    BuildOptions, Database, Error, MetricKind, OpenOptions, Quantization, SearchOptions,
};
use roaring::RoaringBitmap;

const QUANTIZED: [Quantization; 2] = [Quantization::Int8, Quantization::Binary];
const METRICS: [MetricKind; 2] = [MetricKind::Euclidean, MetricKind::Cosine];

/// Adds `data` to a new index 0 with `quantization` and builds it.
fn quantized_db(
    metric: MetricKind,
    quantization: Quantization,
    dims: usize,
    data: &[f32],
) -> (hannoy_engine::scratch::ScratchDir, Database) {
    let (dir, db) = temp_db();
    let n = data.len() / dims;
    db.add_quantized_items(0, dims, metric, quantization, &ids(n), data)
        .unwrap();
    build(&db, 0);
    (dir, db)
}

/// Mean recall@10 of `queries` (searched with `options`) against brute force over `live`, and
/// checks on every answer: nearest first, and (when rescored) exact distances.
fn recall_of(
    db: &Database,
    metric: MetricKind,
    dims: usize,
    data: &[f32],
    live: &[u32],
    queries: &[f32],
    options: &SearchOptions<'_>,
) -> f64 {
    let mut total = 0.0;
    for q in queries.chunks_exact(dims) {
        let found = db.search(0, q, options).unwrap();
        assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance));
        if options.rescore {
            for n in &found {
                let v = &data[n.id as usize * dims..(n.id as usize + 1) * dims];
                let exact = reference_distance(metric, v, q);
                assert!(
                    (n.distance as f64 - exact).abs() <= 1e-4 * exact.abs().max(1.0),
                    "item {}: {} reported, {exact} exact",
                    n.id,
                    n.distance
                );
            }
        }
        let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
        let truth = brute_force(metric, data, dims, live, q, 10);
        total += recall(&found, &truth);
    }
    total / (queries.len() / dims) as f64
}

fn options(ef: usize) -> SearchOptions<'static> {
    SearchOptions {
        ef: Some(ef),
        ..SearchOptions::new(10)
    }
}

/// `n` embedding-like vectors and 40 queries from the same clusters.
fn embeddings(n: usize, dims: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let all = lowrank(n + 40, dims, seed, 0);
    let (data, queries) = all.split_at(n * dims);
    (data.to_vec(), queries.to_vec())
}

/// Recall of each quantization with its default oversampling against the unquantized index on
/// the same data, for both metrics.
fn compare_with_unquantized(dims: usize, n: usize, data: &[f32], queries: &[f32], ef: usize) {
    let live = ids(n);
    for metric in METRICS {
        let (_d, plain) = quantized_db(metric, Quantization::None, dims, data);
        let base = recall_of(&plain, metric, dims, data, &live, queries, &options(ef));
        for q in QUANTIZED {
            let (_d, db) = quantized_db(metric, q, dims, data);
            assert_eq!(db.info(0).unwrap().unwrap().quantization, q);
            let got = recall_of(&db, metric, dims, data, &live, queries, &options(ef));
            eprintln!("d {dims} {metric:?} {q:?}: recall {got:.3} (unquantized {base:.3})");
            assert!(
                got >= 0.9 && got >= base - 0.03,
                "{metric:?} {q:?}: {got} vs {base}"
            );
        }
    }
}

#[test]
fn recall_on_embedding_like_data_is_close_to_unquantized() {
    for dims in [128, 384] {
        let (data, queries) = embeddings(3000, dims, 7);
        compare_with_unquantized(dims, 3000, &data, &queries, 64);
    }
}

#[test]
fn recall_on_glove() {
    let (rows, dims, data) = glove();
    let n = rows.min(10_000);
    let data = &data[..n * dims];
    let queries: Vec<f32> = (0..40)
        .flat_map(|i| data[(i * 241 + 5) * dims..][..dims].iter().copied())
        .collect();
    let live = ids(n);
    let (_d, plain) = quantized_db(MetricKind::Cosine, Quantization::None, dims, data);
    let base = recall_of(
        &plain,
        MetricKind::Cosine,
        dims,
        data,
        &live,
        &queries,
        &options(64),
    );
    let (_d, int8) = quantized_db(MetricKind::Cosine, Quantization::Int8, dims, data);
    let got = recall_of(
        &int8,
        MetricKind::Cosine,
        dims,
        data,
        &live,
        &queries,
        &options(64),
    );
    eprintln!("GloVe int8: recall {got:.3} (unquantized {base:.3})");
    assert!(got >= base - 0.03, "{got} vs {base}");
    // 50 dimensions are 64 bits: binary codes need a much larger oversampling there.
    let (_d, binary) = quantized_db(MetricKind::Cosine, Quantization::Binary, dims, data);
    let wide = SearchOptions {
        oversampling: 32,
        ..options(64)
    };
    let got = recall_of(
        &binary,
        MetricKind::Cosine,
        dims,
        data,
        &live,
        &queries,
        &wide,
    );
    eprintln!("GloVe binary, oversampling 32: recall {got:.3} (unquantized {base:.3})");
    assert!(got >= base - 0.03, "{got} vs {base}");
}

#[test]
fn estimates_without_rescoring_rank_roughly_and_never_read_past_the_codes() {
    let dims = 96;
    let (data, queries) = embeddings(2000, dims, 3);
    for metric in METRICS {
        for q in QUANTIZED {
            let (_d, db) = quantized_db(metric, q, dims, &data);
            let estimate = SearchOptions {
                rescore: false,
                ..options(64)
            };
            let got = recall_of(&db, metric, dims, &data, &ids(2000), &queries, &estimate);
            assert!(got >= 0.5, "{metric:?} {q:?}: {got}");
            // The estimates are near the exact distances, not equal to them.
            let query = &queries[..dims];
            let found = db.search(0, query, &estimate).unwrap();
            let exact: Vec<f64> = found
                .iter()
                .map(|n| reference_distance(metric, &data[n.id as usize * dims..][..dims], query))
                .collect();
            let off = found
                .iter()
                .zip(&exact)
                .filter(|(n, e)| (n.distance as f64 - **e).abs() > 1e-4)
                .count();
            assert!(
                off > 0,
                "{metric:?} {q:?}: estimates equal to exact distances"
            );
            for (n, e) in found.iter().zip(&exact) {
                assert!(
                    (n.distance as f64 - e).abs() < 0.5 * e.max(0.1),
                    "{metric:?} {q:?}"
                );
            }
        }
    }
}

#[test]
fn incremental_batches_and_deletes() {
    let dims = 128;
    let n = 3000;
    let (data, queries) = embeddings(n, dims, 11);
    for q in QUANTIZED {
        let (_d, db) = temp_db();
        for chunk in 0..3 {
            let range = chunk * 1000..(chunk + 1) * 1000;
            let ids: Vec<u32> = range.clone().map(|i| i as u32).collect();
            db.add_quantized_items(
                0,
                dims,
                MetricKind::Cosine,
                q,
                &ids,
                &data[range.start * dims..range.end * dims],
            )
            .unwrap();
            build(&db, 0);
        }
        let deleted: Vec<u32> = (0..n as u32).step_by(7).collect();
        assert_eq!(db.delete_items(0, &deleted).unwrap(), deleted.len() as u64);
        build(&db, 0);
        let live: Vec<u32> = (0..n as u32).filter(|i| i % 7 != 0).collect();
        let got = recall_of(
            &db,
            MetricKind::Cosine,
            dims,
            &data,
            &live,
            &queries,
            &options(64),
        );
        let (_d2, once) = temp_db();
        let live_data: Vec<f32> = live
            .iter()
            .flat_map(|&i| {
                data[i as usize * dims..(i as usize + 1) * dims]
                    .iter()
                    .copied()
            })
            .collect();
        once.add_quantized_items(0, dims, MetricKind::Cosine, q, &live, &live_data)
            .unwrap();
        build(&once, 0);
        let one_shot = recall_of(
            &once,
            MetricKind::Cosine,
            dims,
            &data,
            &live,
            &queries,
            &options(64),
        );
        eprintln!("{q:?}: incremental {got:.3}, one shot {one_shot:.3}");
        assert!(got >= one_shot - 0.02, "{q:?}: {got} vs {one_shot}");
        for query in queries.chunks_exact(dims) {
            for hit in db.search(0, query, &options(200)).unwrap() {
                assert!(hit.id % 7 != 0, "deleted item {} came back", hit.id);
            }
        }
        // re-added items come back, with their (new) vectors
        db.add_quantized_items(
            0,
            dims,
            MetricKind::Cosine,
            q,
            &[7],
            &data[8 * dims..9 * dims],
        )
        .unwrap();
        build(&db, 0);
        let v = db.get_vector(0, 7).unwrap().unwrap();
        assert_eq!(v, &data[8 * dims..9 * dims]);
        let found = db.search_by_id(0, 7, &options(64)).unwrap();
        assert_eq!(found[0].id, 7);
    }
}

#[test]
fn get_vector_returns_the_originals_and_answers_persist() {
    let dims = 40;
    let (data, queries) = embeddings(1500, dims, 21);
    for metric in METRICS {
        for q in QUANTIZED {
            let dir = hannoy_engine::scratch::ScratchDir::new("hannoy-quant").unwrap();
            let before: Vec<_> = {
                let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
                db.add_quantized_items(0, dims, metric, q, &ids(1500), &data)
                    .unwrap();
                build(&db, 0);
                for id in [0u32, 1, 777, 1499] {
                    let v = db.get_vector(0, id).unwrap().unwrap();
                    assert_eq!(v, &data[id as usize * dims..(id as usize + 1) * dims]);
                }
                queries
                    .chunks_exact(dims)
                    .map(|query| db.search(0, query, &options(64)).unwrap())
                    .collect()
            };
            let db = Database::open(
                dir.path(),
                &OpenOptions {
                    read_only: true,
                    verify: true,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(db.info(0).unwrap().unwrap().quantization, q);
            let after: Vec<_> = queries
                .chunks_exact(dims)
                .map(|query| db.search(0, query, &options(64)).unwrap())
                .collect();
            assert_eq!(before, after, "{metric:?} {q:?}");
            let report = db.verify().unwrap();
            assert_eq!(report.indexes[0].nodes, 1500);
        }
    }
}

#[test]
fn the_quantization_is_fixed_at_creation_and_checked() {
    let (_d, db) = temp_db();
    let v = [0.5f32; 8];
    db.add_quantized_items(0, 8, MetricKind::Cosine, Quantization::Int8, &[1], &v)
        .unwrap();
    for other in [Quantization::None, Quantization::Binary] {
        assert!(matches!(
            db.add_quantized_items(0, 8, MetricKind::Cosine, other, &[2], &v),
            Err(Error::QuantizationMismatch { .. })
        ));
        assert!(matches!(
            db.check_quantized_writer(0, 8, MetricKind::Cosine, other),
            Err(Error::QuantizationMismatch { .. })
        ));
    }
    db.check_quantized_writer(0, 8, MetricKind::Cosine, Quantization::Int8)
        .unwrap();
    for metric in [
        MetricKind::Manhattan,
        MetricKind::Hamming,
        MetricKind::BqCosine,
    ] {
        for q in QUANTIZED {
            assert!(matches!(
                db.add_quantized_items(1, 8, metric, q, &[1], &v),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}

#[test]
fn retraining_recodes_every_item_and_keeps_recall() {
    let dims = 128;
    let (data, queries) = embeddings(3000, dims, 31);
    for q in QUANTIZED {
        let (_d, db) = temp_db();
        // the first build learns from a narrow slice of the data, later items differ
        db.add_quantized_items(
            0,
            dims,
            MetricKind::Euclidean,
            q,
            &ids(200),
            &data[..200 * dims],
        )
        .unwrap();
        build(&db, 0);
        let rest: Vec<u32> = (200..3000).collect();
        db.add_quantized_items(
            0,
            dims,
            MetricKind::Euclidean,
            q,
            &rest,
            &data[200 * dims..],
        )
        .unwrap();
        build(&db, 0);
        let live = ids(3000);
        let before = recall_of(
            &db,
            MetricKind::Euclidean,
            dims,
            &data,
            &live,
            &queries,
            &options(64),
        );
        let stats = build_with(
            &db,
            0,
            &BuildOptions {
                retrain: true,
                ..BuildOptions::default()
            },
        );
        assert_eq!(stats.items, 3000);
        let after = recall_of(
            &db,
            MetricKind::Euclidean,
            dims,
            &data,
            &live,
            &queries,
            &options(64),
        );
        eprintln!("{q:?}: before retraining {before:.3}, after {after:.3}");
        assert!(after >= 0.9, "{q:?}: {after}");
        db.verify().unwrap();
    }
}

#[test]
fn filters_small_and_large() {
    let dims = 128;
    let n = 3000;
    let (data, queries) = embeddings(n, dims, 41);
    let query = &queries[..dims];
    for q in QUANTIZED {
        let (_d, db) = quantized_db(MetricKind::Cosine, q, dims, &data);
        for allowed in [50u32, 2500] {
            let filter: RoaringBitmap = (0..allowed).map(|i| i * (n as u32 / allowed)).collect();
            let opts = SearchOptions {
                filter: Some(&filter),
                ..options(64)
            };
            let found = db.search(0, query, &opts).unwrap();
            assert_eq!(found.len(), 10);
            assert!(found.iter().all(|h| filter.contains(h.id)));
            let live: Vec<u32> = filter.iter().collect();
            let truth = brute_force(MetricKind::Cosine, &data, dims, &live, query, 10);
            let found: Vec<(u32, f32)> = found.iter().map(|h| (h.id, h.distance)).collect();
            assert!(recall(&found, &truth) >= 0.8, "{q:?} {allowed}");
        }
        let batch = db.search_batch(0, &data[..5 * dims], &options(64)).unwrap();
        for row in 0..5 {
            assert_eq!(
                batch.ids[row * 10],
                row as u32,
                "{q:?}: an item finds itself first"
            );
        }
    }
}

#[test]
fn format_2_directories_open_as_unquantized_indexes() {
    use heed::types::Bytes;
    let dir = hannoy_engine::scratch::ScratchDir::new("hannoy-format2").unwrap();
    let dims = 16;
    let (data, queries) = embeddings(500, dims, 51);
    let before = {
        let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
        db.add_items(0, dims, MetricKind::Euclidean, &ids(500), &data)
            .unwrap();
        build(&db, 0);
        db.search(0, &queries[..dims], &options(64)).unwrap()
    };
    {
        // Rewrite the header as format 2 wrote it: version 2, the quantization byte zero.
        // SAFETY: the engine's handles on the directory are closed; nothing else opens it.
        let env = unsafe { heed::EnvOpenOptions::new().max_dbs(8).open(dir.path()) }.unwrap();
        let txn = env.write_txn().unwrap();
        let done = env
            .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
                let meta = opener
                    .open_database::<Bytes, Bytes>(txn, Some("meta"))?
                    .expect("a meta database");
                let header = meta.get(txn, &[0, 0, 0])?.expect("a header").to_vec();
                // Unquantized indexes are written as format 2 already.
                assert_eq!(&header[4..6], &2u16.to_le_bytes());
                assert_eq!(header[17], 0);
                meta.put(txn, &[0, 0, 0], &header)?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(()))
            })
            .unwrap();
        assert!(done.commit().is_some());
    }
    let db = Database::open(dir.path(), &OpenOptions::default()).unwrap();
    let info = db.info(0).unwrap().unwrap();
    assert_eq!(info.quantization, Quantization::None);
    assert_eq!(
        db.search(0, &queries[..dims], &options(64)).unwrap(),
        before
    );
    // Writes go on as an unquantized index.
    assert!(matches!(
        db.add_quantized_items(
            0,
            dims,
            MetricKind::Euclidean,
            Quantization::Int8,
            &[9],
            &data[..dims]
        ),
        Err(Error::QuantizationMismatch { .. })
    ));
    db.add_items(0, dims, MetricKind::Euclidean, &[1000], &data[..dims])
        .unwrap();
    build(&db, 0);
    assert_eq!(db.count(0).unwrap(), 501);
    db.verify().unwrap();
}

#[test]
fn a_first_build_of_a_few_items_does_not_fix_the_codes_of_all_later_ones() {
    let dims = 64;
    let (data, queries) = embeddings(3000, dims, 61);
    for q in QUANTIZED {
        let (_d, db) = temp_db();
        // Ten copies of one vector: its ranges (int8) or centroid (binary) say nothing about
        // the rest of the data.
        let same: Vec<f32> = data[..dims].repeat(10);
        db.add_quantized_items(0, dims, MetricKind::Cosine, q, &ids(10), &same)
            .unwrap();
        build(&db, 0);
        let rest: Vec<u32> = (10..3000).collect();
        db.add_quantized_items(0, dims, MetricKind::Cosine, q, &rest, &data[10 * dims..])
            .unwrap();
        build(&db, 0);
        let mut all = same.clone();
        all.extend_from_slice(&data[10 * dims..]);
        let got = recall_of(
            &db,
            MetricKind::Cosine,
            dims,
            &all,
            &ids(3000),
            &queries,
            &options(64),
        );
        eprintln!("{q:?}: recall {got:.3} after a first build of 10 equal items");
        assert!(got >= 0.9, "{q:?}: {got}");
    }
}
