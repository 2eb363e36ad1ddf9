//! Recall against brute force, for every metric, on data shaped like real embeddings.

mod common;

use common::*;
use hannoy_engine::{MetricKind, SearchOptions};

/// Mean recall@10 of `queries` against brute force over `data`, checking the returned distances.
fn measure_on(metric: MetricKind, dims: usize, data: &[f32], queries: &[f32], ef: usize) -> f64 {
    let n = data.len() / dims;
    let (_dir, db) = temp_db();
    let all = ids(n);
    db.add_items(0, dims, metric, &all, data).unwrap();
    build(&db, 0);
    let mut total = 0.0;
    for q in queries.chunks_exact(dims) {
        let found = db
            .search(
                0,
                q,
                &SearchOptions {
                    ef: Some(ef),
                    ..SearchOptions::new(10)
                },
            )
            .unwrap();
        let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
        let truth = brute_force(metric, data, dims, &all, q, 10);
        // The engine's distances are the true ones.
        for (id, d) in &found {
            let expected = reference_distance(
                metric,
                &data[*id as usize * dims..(*id as usize + 1) * dims],
                q,
            );
            assert!(
                (*d as f64 - expected).abs() <= 1e-3 * expected.abs().max(1.0),
                "{metric:?}: {d} vs {expected}"
            );
        }
        total += recall(&found, &truth);
    }
    total / (queries.len() / dims) as f64
}

/// Mean recall@10 at `ef` of `queries` against brute force over the `all` items of `data`,
/// searched in index 0 of `db`.
fn mean_recall(
    db: &hannoy_engine::Database,
    metric: MetricKind,
    dims: usize,
    data: &[f32],
    queries: &[f32],
    ef: usize,
) -> f64 {
    let all = ids(data.len() / dims);
    let options = SearchOptions {
        ef: Some(ef),
        ..SearchOptions::new(10)
    };
    let mut total = 0.0;
    for q in queries.chunks_exact(dims) {
        let found = db.search(0, q, &options).unwrap();
        let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
        total += recall(&found, &brute_force(metric, data, dims, &all, q, 10));
    }
    total / (queries.len() / dims) as f64
}

fn measure(metric: MetricKind, n: usize, dims: usize, ef: usize) -> f64 {
    measure_on(
        metric,
        dims,
        &clustered(n, dims, 7),
        &clustered(100, dims, 99),
        ef,
    )
}

/// Real embeddings (GloVe, 50-d): 8,000 words indexed, 200 others as queries. On the synthetic
/// clustered data below, hnswlib with the same M and efConstruction lands at the same recall as
/// this engine (0.944 at ef 64, measured with hnswlib-node 3.0), which is why the 0.95 bar is
/// held on real data and the synthetic data gets a bound that still catches a broken graph.
#[test]
fn float_metrics_reach_095_at_ef_64_on_glove() {
    let (rows, dims, data) = glove();
    let base = &data[..8000 * dims];
    let queries = &data[(rows - 200) * dims..];
    for metric in [
        MetricKind::Euclidean,
        MetricKind::Cosine,
        MetricKind::Manhattan,
    ] {
        let r = measure_on(metric, dims, base, queries, 64);
        eprintln!("GloVe 8k {metric:?}: recall@10 = {r:.4}");
        assert!(r >= 0.95, "{metric:?}: recall@10 {r:.4} < 0.95");
    }
}

#[test]
fn float_metrics_on_clustered_subspaces() {
    for metric in [
        MetricKind::Euclidean,
        MetricKind::Cosine,
        MetricKind::Manhattan,
    ] {
        let r = measure(metric, 6000, 64, 64);
        eprintln!("clustered {metric:?}: recall@10 = {r:.4}");
        // Measured over many runs (builds are parallel, so graphs differ a little): euclidean
        // and cosine 0.936-0.951, manhattan 0.89-0.913. A broken graph lands far below.
        let bound = if metric == MetricKind::Manhattan {
            0.85
        } else {
            0.90
        };
        assert!(r >= bound, "{metric:?}: recall@10 {r:.4} < {bound}");
    }
}

#[test]
fn binary_metrics_find_the_nearest_codes() {
    // Tie-aware recall under the quantized distance itself.
    for metric in [
        MetricKind::Hamming,
        MetricKind::BqEuclidean,
        MetricKind::BqCosine,
        MetricKind::BqManhattan,
    ] {
        let r = measure(metric, 4000, 128, 64);
        eprintln!("{metric:?}: recall@10 = {r:.4}");
        assert!(r >= 0.9, "{metric:?}: recall@10 {r:.4} < 0.9");
    }
    // Few bits: 4,000 items share about 1,000 codes, so most have equal neighbours.
    let r = measure(MetricKind::Hamming, 4000, 10, 64);
    eprintln!("Hamming, 10 bits: recall@10 = {r:.4}");
    assert!(r >= 0.9, "Hamming, 10 bits: recall@10 {r:.4} < 0.9");
}

#[test]
fn glove_recall_and_build_time() {
    let (rows, dims, data) = glove();
    let (dir, db) = temp_db();
    let all = ids(rows);
    // Hold out the last 200 words as queries.
    let base = rows - 200;
    db.add_items(
        0,
        dims,
        MetricKind::Cosine,
        &all[..base],
        &data[..base * dims],
    )
    .unwrap();
    let stats = build(&db, 0);
    eprintln!(
        "GloVe {base} × {dims}: build {:.2} s on {} threads",
        stats.seconds,
        rayon::current_num_threads()
    );
    // Disk: the vectors, plus at most 120 bytes per item for links and LMDB's pages (the
    // benchmark's goal at M = 16). Windows' data file takes the whole map, so it is not measured.
    if cfg!(not(windows)) {
        let bytes = std::fs::metadata(dir.path().join("data.mdb"))
            .unwrap()
            .len() as f64;
        let per_item = bytes / base as f64;
        let stored = (4 + 4 * dims) as f64;
        eprintln!("GloVe disk: {bytes} bytes, {per_item:.1} per item ({stored} stored)");
        assert!(
            per_item <= stored + 120.0,
            "{per_item:.1} bytes per item on disk"
        );
    }
    let truths: Vec<_> = data[base * dims..]
        .chunks_exact(dims)
        .map(|q| brute_force(MetricKind::Cosine, &data, dims, &all[..base], q, 10))
        .collect();
    for ef in [16, 32, 64, 128] {
        let mut total = 0.0;
        for (q, truth) in data[base * dims..].chunks_exact(dims).zip(&truths) {
            let found = db
                .search(
                    0,
                    q,
                    &SearchOptions {
                        ef: Some(ef),
                        ..SearchOptions::new(10)
                    },
                )
                .unwrap();
            let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
            total += recall(&found, truth);
        }
        let r = total / 200.0;
        eprintln!("GloVe ef {ef}: recall@10 = {r:.4}");
        if ef == 64 {
            assert!(r >= 0.95, "GloVe recall@10 at ef 64 = {r:.4}");
        }
    }
}

#[test]
fn cosine_zero_vectors_do_not_produce_nan() {
    let (_dir, db) = temp_db();
    let data = [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    db.add_items(0, 3, MetricKind::Cosine, &[0, 1, 2], &data)
        .unwrap();
    build(&db, 0);
    for q in [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]] {
        let found = db.search(0, &q, &SearchOptions::new(3)).unwrap();
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|n| n.distance.is_finite()), "{found:?}");
    }
}

/// A relaxed heuristic (alpha > 1) keeps more links per node: the graph stays as good, and an
/// alpha outside 1 … 2 is refused.
#[test]
fn alpha_above_one_keeps_recall() {
    let (rows, dims, data) = glove();
    let n = 5_000.min(rows - 100);
    let all = ids(n);
    let queries = &data[n * dims..(n + 100) * dims];
    let mut recalls = Vec::new();
    for alpha in [1.0f32, 1.2] {
        let (_dir, db) = temp_db();
        db.add_items(0, dims, MetricKind::Euclidean, &all, &data[..n * dims])
            .unwrap();
        let options = hannoy_engine::BuildOptions {
            alpha: Some(alpha),
            ..Default::default()
        };
        build_with(&db, 0, &options);
        let base = &data[..n * dims];
        recalls.push(mean_recall(
            &db,
            MetricKind::Euclidean,
            dims,
            base,
            queries,
            32,
        ));
    }
    eprintln!("alpha 1.0 / 1.2: recall@10 at ef 32 = {recalls:?}");
    assert!(recalls[1] >= 0.95, "{recalls:?}");
    assert!(recalls[1] >= recalls[0] - 0.02, "{recalls:?}");
    let (_dir, db) = temp_db();
    db.add_items(0, 2, MetricKind::Euclidean, &[1], &[0.0, 0.0])
        .unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = |_| {};
    for alpha in [0.5f32, 2.5] {
        let built = db.build(
            0,
            &hannoy_engine::BuildOptions {
                alpha: Some(alpha),
                ..Default::default()
            },
            &hannoy_engine::Control {
                progress: &progress,
                cancel: &cancel,
            },
        );
        assert!(
            matches!(built, Err(hannoy_engine::Error::InvalidArgument(_))),
            "{built:?}"
        );
    }
}

/// Pruning can drop a node from every list that linked to it: of two equal vectors the
/// heuristic used to keep one in a list and drop the other. A search with ef as large as the
/// index must reach every item, duplicates included. Before the heuristic kept ties and the
/// build relinked unreachable nodes, 1,000 vectors stored twice left 10 to 80 copies
/// unreachable per build (1 or 2 with the ties kept but no relinking).
#[test]
fn every_item_is_reachable_even_duplicates() {
    let (distinct, dims) = (1000, 8);
    let mut rng = Rng::new(5);
    let once: Vec<f32> = (0..distinct * dims).map(|_| rng.uniform() as f32).collect();
    let data = [once.clone(), once].concat(); // item i + 1000 equals item i
    let n = 2 * distinct;
    for build_round in 0..3 {
        let (_dir, db) = temp_db();
        db.add_items(0, dims, MetricKind::Euclidean, &ids(n), &data)
            .unwrap();
        build(&db, 0);
        let options = SearchOptions {
            ef: Some(n),
            ..SearchOptions::new(2)
        };
        let unreachable: Vec<usize> = (0..distinct)
            .filter(|&i| {
                let found = db.search(0, &data[i * dims..(i + 1) * dims], &options);
                let mut ids: Vec<u32> = found.unwrap().iter().map(|f| f.id).collect();
                ids.sort_unstable();
                ids != [i as u32, (i + distinct) as u32]
            })
            .collect();
        eprintln!(
            "build {build_round}: {} pairs not both found",
            unreachable.len()
        );
        assert!(
            unreachable.is_empty(),
            "build {build_round}: {unreachable:?}"
        );
    }
}

/// More copies of one vector than a list holds (60 > m0 = 32) must not close into a clique
/// that a search entering it cannot leave: every item stays reachable, a search for the copied
/// vector finds all the copies, then the other items, and each copy comes first by id. For
/// cosine the copies are multiples of the vector (the same direction), whose distances rounding
/// would make a few ulps above 0.
#[test]
fn many_copies_of_one_vector_stay_connected() {
    let (distinct, copies, dims) = (1500, 60, 8);
    for metric in [MetricKind::Euclidean, MetricKind::Cosine] {
        let mut rng = Rng::new(9);
        let mut data: Vec<f32> = (0..distinct * dims).map(|_| rng.uniform() as f32).collect();
        let copied: Vec<f32> = data[..dims].to_vec();
        for c in 0..copies {
            let scale = match metric {
                MetricKind::Cosine => 1.0 + 0.37 * c as f32,
                _ => 1.0,
            };
            data.extend(copied.iter().map(|x| x * scale)); // ids 1500.. equal item 0
        }
        let n = distinct + copies;
        for build_round in 0..2 {
            let (_dir, db) = temp_db();
            db.add_items(0, dims, metric, &ids(n), &data).unwrap();
            build(&db, 0);
            let exhaustive = |k: usize| SearchOptions {
                ef: Some(n),
                ..SearchOptions::new(k)
            };
            let round = format!("{metric:?}, build {build_round}");
            let found = db.search(0, &copied, &exhaustive(copies + 11)).unwrap();
            let zero = found.iter().filter(|f| f.distance == 0.0).count();
            assert_eq!(zero, copies + 1, "{round}: copies found");
            assert_eq!(found.len(), copies + 11, "{round}: the rest reached");
            let missing: Vec<usize> = (1..distinct)
                .filter(|&i| {
                    let q = &data[i * dims..(i + 1) * dims];
                    db.search(0, q, &exhaustive(1)).unwrap()[0].id != i as u32
                })
                .collect();
            assert!(missing.is_empty(), "{round}: {missing:?}");
            // By id, an item comes first even when more than k equal vectors have lower ids.
            for id in [0, 1530, 1559] {
                let by_id = db.search_by_id(0, id, &SearchOptions::new(5)).unwrap();
                assert_eq!(by_id.len(), 5);
                assert_eq!((by_id[0].id, by_id[0].distance), (id, 0.0), "{round}");
                assert!(
                    by_id.iter().all(|f| f.distance == 0.0),
                    "{round}: {by_id:?}"
                );
            }
        }
    }
}

/// From 128 dimensions on, the default relaxation of the heuristic (1.05) finds more of the true
/// neighbours at a small ef than the strict heuristic (1.0) on clustered data, where the strict
/// one drops the links between clusters: averaged over three seeds of the level assignment, so
/// that one graph's luck decides nothing.
#[test]
fn the_default_relaxation_finds_more_than_the_strict_heuristic_on_clustered_data() {
    let dims = 128;
    let n = 6_000;
    let data = clustered(n, dims, 11);
    let queries = clustered(200, dims, 12);
    let strict = recall_over_seeds(dims, &data, &queries, Some(1.0));
    let default = recall_over_seeds(dims, &data, &queries, None);
    eprintln!("recall@10 at ef 12: strict {strict:.4}, default {default:.4}");
    assert!(default > strict, "strict {strict:.4}, default {default:.4}");
}

/// Below 128 dimensions the default is the strict heuristic: the same graph as alpha 1.0, so
/// the same answers to every query.
#[test]
fn below_128_dimensions_the_default_is_the_strict_heuristic() {
    let dims = 64;
    let n = 3_000;
    let data = clustered(n, dims, 21);
    let queries = clustered(50, dims, 22);
    let answers = |alpha: Option<f32>| {
        let options = hannoy_engine::BuildOptions {
            alpha,
            ..Default::default()
        };
        // One thread: the same seed and items then give the same graph.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (_dir, db) = one.install(|| cosine_graph(dims, &data, &options));
        let search = SearchOptions {
            ef: Some(16),
            ..SearchOptions::new(10)
        };
        queries
            .chunks_exact(dims)
            .map(|q| {
                let found = db.search(0, q, &search).unwrap();
                found.iter().map(|n| n.id).collect::<Vec<u32>>()
            })
            .collect::<Vec<_>>()
    };
    let default = answers(None);
    assert_eq!(default, answers(Some(1.0)));
    assert_ne!(
        default,
        answers(Some(1.2)),
        "the relaxation must change the graph"
    );
}

/// Mean recall@10 at ef 12 of cosine graphs built with `alpha` over three level seeds.
fn recall_over_seeds(dims: usize, data: &[f32], queries: &[f32], alpha: Option<f32>) -> f64 {
    let mut total = 0.0;
    for seed in 0..3u64 {
        let options = hannoy_engine::BuildOptions {
            alpha,
            seed: Some(seed),
            ..Default::default()
        };
        let (_dir, db) = cosine_graph(dims, data, &options);
        total += mean_recall(&db, MetricKind::Cosine, dims, data, queries, 12);
    }
    total / 3.0
}

/// A cosine index 0 of every row of `data`, built with `options`.
fn cosine_graph(
    dims: usize,
    data: &[f32],
    options: &hannoy_engine::BuildOptions,
) -> (hannoy_engine::scratch::ScratchDir, hannoy_engine::Database) {
    let (dir, db) = temp_db();
    db.add_items(0, dims, MetricKind::Cosine, &ids(data.len() / dims), data)
        .unwrap();
    build_with(&db, 0, options);
    (dir, db)
}
