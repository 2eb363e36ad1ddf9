//! What a graph walk compares. An index without quantization compares stored vectors
//! ([`Plain`]); a quantized one compares compact codes (`quant`). The walk and the build see only
//! these two traits, so they are written once for both.

use std::marker::PhantomData;

use crate::metric::{Distance, Query};

/// Scores node values (stored vectors or codes) against one query; lower is nearer.
pub(crate) trait Scorer {
    fn score(&self, value: &[u8]) -> f32;
    /// A lower bound of the true distance of `value` (in the units of `score`), given its
    /// score `estimate`, that holds with high confidence; minus infinity when none is known.
    fn lower_bound(&self, _value: &[u8], _estimate: f32) -> f32 {
        f32::NEG_INFINITY
    }
}

/// The values a graph's nodes hold and how they compare.
pub(crate) trait Space: Sync {
    type Scorer<'a>: Scorer
    where
        Self: 'a;
    /// A query given as a node value of this space (a stored vector, or a code).
    fn value_scorer<'a>(&'a self, value: &'a [u8]) -> Self::Scorer<'a>;
    /// A query given as a full-precision vector in the metric's stored form.
    fn vector_scorer<'a>(&'a self, stored: &'a [u8]) -> Self::Scorer<'a>;
    /// The distance between two node values.
    fn pair(&self, a: &[u8], b: &[u8]) -> f32;
    /// Whether node values are codes (estimates, rescored with the full vectors) rather than
    /// the stored vectors themselves.
    const CODED: bool;
    /// A score of this space as the distance the API reports.
    fn finalize(&self, internal: f32, dimensions: usize) -> f32;
    /// An exact internal distance of the index's metric in the units of this space's scores.
    fn in_estimate_units(&self, exact: f32) -> f32 {
        exact
    }
}

/// Nodes hold the stored vectors of metric `D`.
pub(crate) struct Plain<D>(PhantomData<D>);

impl<D> Plain<D> {
    pub(crate) fn new() -> Plain<D> {
        Plain(PhantomData)
    }
}

/// A stored-form query of metric `D`, decoded once.
pub(crate) struct PlainScorer<'a, D> {
    query: Query<'a>,
    metric: PhantomData<D>,
}

impl<D: Distance> Scorer for PlainScorer<'_, D> {
    #[inline]
    fn score(&self, value: &[u8]) -> f32 {
        D::distance_to(&self.query, value)
    }
}

impl<D: Distance> Space for Plain<D> {
    type Scorer<'a> = PlainScorer<'a, D>;

    #[inline]
    fn value_scorer<'a>(&'a self, value: &'a [u8]) -> PlainScorer<'a, D> {
        PlainScorer {
            query: Query::new(value),
            metric: PhantomData,
        }
    }

    #[inline]
    fn vector_scorer<'a>(&'a self, stored: &'a [u8]) -> PlainScorer<'a, D> {
        self.value_scorer(stored)
    }

    #[inline]
    fn pair(&self, a: &[u8], b: &[u8]) -> f32 {
        D::distance(a, b)
    }

    const CODED: bool = false;

    fn finalize(&self, internal: f32, dimensions: usize) -> f32 {
        D::finalize(internal, dimensions)
    }
}
