use super::*;
use crate::space::{Scorer, Space};

/// Seeded normal-ish vectors (sum of uniforms) for the quantizer tests.
fn vectors(n: usize, dims: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n * dims)
        .map(|_| (0..4).map(|_| next()).sum::<f32>() + 0.3)
        .collect()
}

/// The stored form of a float metric (`[norm][components]`), which scorers take.
fn stored(vector: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    <crate::metric::Euclidean as crate::metric::Distance>::encode(vector, &mut out);
    out
}

fn squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[test]
fn quantizers_round_trip_through_their_record_and_refuse_damaged_ones() {
    let dims = 70;
    let sample = vectors(300, dims, 1);
    for kind in [Quantization::Int8, Quantization::Binary] {
        for normalize in [false, true] {
            let q = Quantizer::train(kind, dims, normalize, &sample, 9).unwrap();
            let bytes = q.to_bytes();
            assert_eq!(Quantizer::from_bytes(&bytes, dims).unwrap(), q);
            assert!(Quantizer::from_bytes(&bytes, dims + 1).is_err());
            for cut in 0..bytes.len() {
                assert!(
                    Quantizer::from_bytes(&bytes[..cut], dims).is_err(),
                    "{kind:?} {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Quantizer::from_bytes(&longer, dims).is_err());
            let mut nan = bytes.clone();
            let at = nan.len() - 4;
            nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
            assert!(Quantizer::from_bytes(&nan, dims).is_err());
            let mut code = Vec::new();
            q.encode(&sample[..dims], &mut code);
            assert_eq!(code.len(), q.code_len());
        }
    }
    assert!(Quantizer::from_bytes(&[9, 0, 0], 3).is_err());
    assert!(Quantizer::train(Quantization::None, 3, false, &[], 0).is_none());
}

#[test]
fn int8_estimates_err_by_at_most_half_a_step_per_dimension() {
    let dims = 48;
    let data = vectors(500, dims, 2);
    let q = Int8::train(dims, false, &data);
    let query = &vectors(1, dims, 3)[..];
    let store = stored(query);
    let scorer = q.vector_scorer(&store);
    for x in data.chunks_exact(dims) {
        let mut code = Vec::new();
        q.encode(x, &mut code);
        let estimate = scorer.score(&code);
        let exact = squared(query, x);
        // each component is off by at most half a step (clipped outliers by more)
        let slack: f32 = (0..dims)
            .map(|i| {
                let e = q.step_for_test(i) / 2.0;
                2.0 * (query[i] - x[i]).abs() * e + e * e
            })
            .sum();
        assert!(
            (estimate - exact).abs() <= slack * 1.5 + 1e-4,
            "{estimate} vs {exact}"
        );
    }
}

#[test]
fn binary_rotation_keeps_lengths_and_the_estimates_are_unbiased_within_their_bound() {
    for dims in [64, 100, 384] {
        let data = vectors(400, dims, 4);
        let q = Binary::train(dims, false, &data, 5);
        let queries = vectors(20, dims, 6);
        let (mut errors, mut outside, mut count) = (0f64, 0usize, 0usize);
        for query in queries.chunks_exact(dims) {
            let store = stored(query);
            let scorer = q.vector_scorer(&store);
            for x in data.chunks_exact(dims) {
                let mut code = Vec::new();
                q.encode(x, &mut code);
                // r is |x − c|: the rotation keeps lengths
                let centred: f32 = x
                    .iter()
                    .zip(q.centroid_for_test())
                    .map(|(a, c)| (a - c) * (a - c))
                    .sum::<f32>()
                    .sqrt();
                let r = f32::from_le_bytes([code[0], code[1], code[2], code[3]]);
                assert!(
                    (r - centred).abs() <= 1e-3 * centred.max(1.0),
                    "{r} vs {centred}"
                );
                let estimate = scorer.score(&code);
                let exact = squared(query, x);
                errors += (estimate - exact) as f64;
                if scorer.lower_bound(&code, estimate) > exact {
                    outside += 1;
                }
                count += 1;
            }
        }
        let mean_error = errors / count as f64;
        let mean_exact: f64 = queries
            .chunks_exact(dims)
            .flat_map(|query| {
                data.chunks_exact(dims)
                    .map(move |x| squared(query, x) as f64)
            })
            .sum::<f64>()
            / count as f64;
        assert!(
            mean_error.abs() < 0.02 * mean_exact,
            "d {dims}: bias {mean_error} of {mean_exact}"
        );
        // The bound (1.9 standard deviations, one-sided) fails for a few percent at most.
        assert!(
            outside * 100 <= count * 5,
            "d {dims}: {outside} of {count} outside the bound"
        );
    }
}

#[test]
fn binary_code_to_code_estimates_rank_like_exact_distances() {
    let dims = 256;
    let data = vectors(300, dims, 7);
    let q = Binary::train(dims, false, &data, 8);
    let codes: Vec<Vec<u8>> = data
        .chunks_exact(dims)
        .map(|x| {
            let mut c = Vec::new();
            q.encode(x, &mut c);
            c
        })
        .collect();
    // Spearman-like check: of random pairs of pairs, the estimates order most like the truth.
    let (mut agree, mut total) = (0, 0);
    for i in 0..100 {
        let (a, b, c) = (i, (i * 7 + 1) % 300, (i * 13 + 2) % 300);
        let exact_ab = squared(&data[a * dims..][..dims], &data[b * dims..][..dims]);
        let exact_ac = squared(&data[a * dims..][..dims], &data[c * dims..][..dims]);
        let est_ab = q.pair(&codes[a], &codes[b]);
        let est_ac = q.pair(&codes[a], &codes[c]);
        assert_eq!(est_ab, q.value_scorer(&codes[a]).score(&codes[b]));
        if (exact_ab - exact_ac).abs() > 0.05 * exact_ab {
            total += 1;
            if (exact_ab < exact_ac) == (est_ab < est_ac) {
                agree += 1;
            }
        }
    }
    assert!(agree * 10 >= total * 8, "{agree} of {total}");
}

#[test]
fn a_quantizer_learned_from_few_vectors_is_outgrown() {
    let dims = 8;
    let q = Quantizer::train(Quantization::Int8, dims, false, &vectors(10, dims, 1), 0).unwrap();
    assert_eq!(q.trained_on(), 10);
    assert!(!q.outgrown(20));
    assert!(q.outgrown(21));
    let back = Quantizer::from_bytes(&q.to_bytes(), dims).unwrap();
    assert_eq!(back.trained_on(), 10);
    let full = vectors(TRAINING_SAMPLE, dims, 2);
    let q = Quantizer::train(Quantization::Binary, dims, true, &full, 0).unwrap();
    assert!(!q.outgrown(u64::MAX));
}
