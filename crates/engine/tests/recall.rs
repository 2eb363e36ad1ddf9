//! Recall against brute force, for every metric, on data shaped like real embeddings.

mod common;

use common::*;
use hannoy_engine::{MetricKind, SearchOptions};

fn measure(metric: MetricKind, n: usize, dims: usize, ef: usize) -> f64 {
    let data = clustered(n, dims, 7);
    let (_dir, db) = temp_db();
    let all = ids(n);
    db.add_items(0, dims, metric, &all, &data).unwrap();
    build(&db, 0);
    let queries = clustered(100, dims, 99);
    let mut total = 0.0;
    for q in queries.chunks_exact(dims) {
        let found = db.search(0, q, &SearchOptions { ef: Some(ef), ..SearchOptions::new(10) }).unwrap();
        let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
        let truth = brute_force(metric, &data, dims, &all, q, 10);
        // The engine's distances are the true ones.
        for (id, d) in &found {
            let expected = reference_distance(metric, &data[*id as usize * dims..(*id as usize + 1) * dims], q);
            assert!((*d as f64 - expected).abs() <= 1e-3 * expected.abs().max(1.0), "{metric:?}: {d} vs {expected}");
        }
        total += recall(&found, &truth);
    }
    total / 100.0
}

#[test]
fn float_metrics_reach_095_at_ef_64() {
    for metric in [MetricKind::Euclidean, MetricKind::Cosine, MetricKind::Manhattan] {
        let r = measure(metric, 6000, 64, 64);
        eprintln!("{metric:?}: recall@10 = {r:.4}");
        assert!(r >= 0.95, "{metric:?}: recall@10 {r:.4} < 0.95");
    }
}

#[test]
fn binary_metrics_find_the_nearest_codes() {
    // Tie-aware recall under the quantized distance itself.
    for metric in [MetricKind::Hamming, MetricKind::BqEuclidean, MetricKind::BqCosine, MetricKind::BqManhattan] {
        let r = measure(metric, 4000, 128, 64);
        eprintln!("{metric:?}: recall@10 = {r:.4}");
        assert!(r >= 0.9, "{metric:?}: recall@10 {r:.4} < 0.9");
    }
}

#[test]
fn glove_recall_and_build_time() {
    let (rows, dims, data) = glove();
    let (_dir, db) = temp_db();
    let all = ids(rows);
    // Hold out the last 200 words as queries.
    let base = rows - 200;
    db.add_items(0, dims, MetricKind::Cosine, &all[..base], &data[..base * dims]).unwrap();
    let stats = build(&db, 0);
    eprintln!("GloVe {base} × {dims}: build {:.2} s on {} threads", stats.seconds, rayon::current_num_threads());
    for ef in [16, 32, 64, 128] {
        let mut total = 0.0;
        for q in data[base * dims..].chunks_exact(dims) {
            let found = db.search(0, q, &SearchOptions { ef: Some(ef), ..SearchOptions::new(10) }).unwrap();
            let found: Vec<(u32, f32)> = found.iter().map(|n| (n.id, n.distance)).collect();
            total += recall(&found, &brute_force(MetricKind::Cosine, &data, dims, &all[..base], q, 10));
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
    db.add_items(0, 3, MetricKind::Cosine, &[0, 1, 2], &data).unwrap();
    build(&db, 0);
    for q in [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]] {
        let found = db.search(0, &q, &SearchOptions::new(3)).unwrap();
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|n| n.distance.is_finite()), "{found:?}");
    }
}
