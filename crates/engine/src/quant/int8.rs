//! Scalar quantization: one byte per dimension, `x ≈ lo + step × code`, with `lo` and `step`
//! learned per dimension from the data (its minimum and range).

use super::{estimate_units, prepared, report, write_floats, Reader};
use crate::kernels;
use crate::space::{Scorer, Space};

/// The share of each side of a dimension's values left out of its range (clamped to it).
const CLIP: f64 = 0.001;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Int8 {
    dimensions: usize,
    normalize: bool,
    /// How many vectors the ranges were learned from.
    pub(super) trained: u32,
    lo: Vec<f32>,
    step: Vec<f32>,
    /// `step²`, the weights of the distance between two codes.
    weights: Vec<f32>,
}

impl Int8 {
    pub(crate) fn train(dimensions: usize, normalize: bool, sample: &[f32]) -> Int8 {
        let rows = sample.len() / dimensions.max(1);
        let mut columns = vec![Vec::with_capacity(rows); dimensions];
        let mut row = Vec::with_capacity(dimensions);
        for vector in sample.chunks_exact(dimensions.max(1)) {
            prepared(vector, normalize, &mut row);
            for (column, &x) in columns.iter_mut().zip(&row) {
                column.push(x);
            }
        }
        let mut lo = Vec::with_capacity(dimensions);
        let mut step = Vec::with_capacity(dimensions);
        for column in &mut columns {
            let (min, max) = if column.is_empty() {
                (-1.0, 1.0) // no sample: a range that suits unit vectors
            } else {
                column.sort_unstable_by(f32::total_cmp);
                // The range keeps all but the most extreme CLIP of each side: a few outliers
                // would otherwise coarsen the steps of every other value.
                let cut = (column.len() as f64 * CLIP) as usize;
                (column[cut], column[column.len() - 1 - cut])
            };
            lo.push(min);
            step.push(((max - min) / 255.0).max(1e-12));
        }
        Int8::new(dimensions, normalize, rows as u32, lo, step)
    }

    fn new(dimensions: usize, normalize: bool, trained: u32, lo: Vec<f32>, step: Vec<f32>) -> Int8 {
        let weights = step.iter().map(|s| s * s).collect();
        Int8 {
            dimensions,
            normalize,
            trained,
            lo,
            step,
            weights,
        }
    }

    pub(crate) fn code_len(&self) -> usize {
        self.dimensions
    }

    pub(crate) fn encode(&self, vector: &[f32], out: &mut Vec<u8>) {
        let mut row = Vec::with_capacity(self.dimensions);
        prepared(vector, self.normalize, &mut row);
        for ((&x, &lo), &step) in row.iter().zip(&self.lo).zip(&self.step) {
            out.push(((x - lo) / step).round().clamp(0.0, 255.0) as u8);
        }
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.normalize as u8);
        out.extend_from_slice(&(self.dimensions as u32).to_le_bytes());
        write_floats(out, &self.lo);
        write_floats(out, &self.step);
    }

    pub(super) fn read(bytes: &mut Reader<'_>, dimensions: usize, trained: u32) -> Option<Int8> {
        let normalize = bytes.u8()? != 0;
        if bytes.u32()? as usize != dimensions {
            return None;
        }
        let lo = bytes.floats(dimensions)?;
        let step = bytes.floats(dimensions)?;
        if step.iter().any(|&s| s <= 0.0) {
            return None;
        }
        Some(Int8::new(dimensions, normalize, trained, lo, step))
    }
}

#[cfg(test)]
impl Int8 {
    pub(crate) fn step_for_test(&self, i: usize) -> f32 {
        self.step[i]
    }
}

/// A query against int8 codes: its components minus `lo` (asymmetric: the query is not
/// quantized), or another code.
pub(crate) enum Int8Scorer<'a> {
    Vector { shifted: Vec<f32>, q: &'a Int8 },
    Code { code: &'a [u8], q: &'a Int8 },
}

impl Scorer for Int8Scorer<'_> {
    #[inline]
    fn score(&self, value: &[u8]) -> f32 {
        match self {
            Int8Scorer::Vector { shifted, q } => kernels::u8_l2_affine(shifted, &q.step, value),
            Int8Scorer::Code { code, q } => kernels::u8_l2_weighted(&q.weights, code, value),
        }
    }
}

impl Space for Int8 {
    type Scorer<'a> = Int8Scorer<'a>;

    fn value_scorer<'a>(&'a self, value: &'a [u8]) -> Int8Scorer<'a> {
        Int8Scorer::Code {
            code: value,
            q: self,
        }
    }

    fn vector_scorer<'a>(&'a self, stored: &'a [u8]) -> Int8Scorer<'a> {
        let mut shifted = Vec::with_capacity(self.dimensions);
        prepared(
            &crate::metric::float_components(stored),
            self.normalize,
            &mut shifted,
        );
        for (x, &lo) in shifted.iter_mut().zip(&self.lo) {
            *x -= lo;
        }
        Int8Scorer::Vector { shifted, q: self }
    }

    #[inline]
    fn pair(&self, a: &[u8], b: &[u8]) -> f32 {
        kernels::u8_l2_weighted(&self.weights, a, b)
    }

    const CODED: bool = true;

    fn finalize(&self, internal: f32, _dimensions: usize) -> f32 {
        report(internal, self.normalize)
    }

    fn in_estimate_units(&self, exact: f32) -> f32 {
        estimate_units(exact, self.normalize)
    }
}
