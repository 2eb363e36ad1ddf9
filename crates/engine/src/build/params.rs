//! The build's settings, resolved from the options and the stored header, and the level
//! assignment of new nodes.

use super::BuildOptions;
use crate::error::{Error, Result};
use crate::header::Header;

/// The neighbour-selection heuristic's relaxation when the options give none: a candidate is
/// kept unless it is closer, by this factor, to a neighbour already kept than to the node (the
/// distances compared are the metrics' internal ones, squared for euclidean and cosine). From
/// `RELAXED_FROM_DIMENSIONS` on it is `RELAXED_ALPHA`, below that 1 (the strict heuristic).
///
/// A little above 1 keeps a few more of the links that cross between clusters, which the strict
/// heuristic drops. Measured with `search_speed`, two builds each: on 100k clustered 384-d
/// vectors recall@10 at ef 40 0.918-0.919 with 1.0, 0.932-0.938 with 1.05, at ef 60
/// 0.944-0.945 against 0.954-0.958, for the same time per query and a build 4-9 % longer
/// (128-d and 768-d sets and the int8 and binary codes gain alike; 1.08 and 1.1 no better, 1.2
/// worse than 1.0); on 100k real MiniLM-384 sentence embeddings +1 point at ef 10-20, +0.1-0.3
/// from ef 40 on, 0-5 % more time per query. On 50-d GloVe it loses: +0.15 points at ef 80 for a
/// query 25 % slower (122-126 against 96-98 µs; more links a node), so fewer queries a second at
/// every recall.
const RELAXED_ALPHA: f32 = 1.05;

/// The dimension from which the default relaxation is `RELAXED_ALPHA` (see there).
const RELAXED_FROM_DIMENSIONS: u32 = 128;

fn default_alpha(dimensions: u32) -> f32 {
    if dimensions >= RELAXED_FROM_DIMENSIONS {
        RELAXED_ALPHA
    } else {
        1.0
    }
}

/// Highest level a node can get (levels above this are clamped).
pub(super) const MAX_LEVEL: u8 = 16;

pub(super) struct Params {
    pub(super) m: usize,
    pub(super) m0: usize,
    pub(super) ef_construction: usize,
    seed: u64,
    pub(super) alpha: f32,
}

impl Params {
    pub(super) fn resolve(options: &BuildOptions, header: &Header) -> Result<Params> {
        let stored = header.built.then_some((header.m, header.m0));
        let m = options.m.or(stored.map(|s| s.0)).unwrap_or(16) as usize;
        if !(2..=256).contains(&m) {
            return Err(Error::InvalidArgument(format!(
                "m must be from 2 to 256, received {m}"
            )));
        }
        let m0 = match (options.m0, options.m, stored) {
            (Some(m0), _, _) => m0 as usize,
            (None, None, Some((_, m0))) => m0 as usize,
            _ => 2 * m,
        };
        if m0 < m || m0 > 512 {
            return Err(Error::InvalidArgument(format!(
                "m0 must be from m ({m}) to 512, received {m0}"
            )));
        }
        let ef_construction = options.ef_construction.unwrap_or(100);
        if !(1..=10_000).contains(&ef_construction) {
            return Err(Error::InvalidArgument(format!(
                "efConstruction must be from 1 to 10000, received {ef_construction}"
            )));
        }
        let alpha = options
            .alpha
            .unwrap_or_else(|| default_alpha(header.dimensions));
        if !(1.0..=2.0).contains(&alpha) {
            return Err(Error::InvalidArgument(format!(
                "alpha must be from 1 to 2, received {alpha}"
            )));
        }
        Ok(Params {
            m,
            m0,
            ef_construction: ef_construction.max(m0),
            seed: options.seed.unwrap_or(0),
            alpha,
        })
    }

    pub(super) fn capacity(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// The level of `id`: geometric with factor 1/ln(m), a pure function of the seed and id.
    pub(super) fn level_of(&self, id: u32) -> u8 {
        let mut x = self.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        // Uniform in (0, 1].
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let level = (-u.ln() / (self.m as f64).ln()).floor();
        level.min(MAX_LEVEL as f64) as u8
    }
}
