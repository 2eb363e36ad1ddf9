//! The cheap writes and reads of items: adding, deleting and reading them back (the index
//! metadata they update is in `records`).

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::header::Header;
use crate::keys;
use crate::keys::node_range;
use crate::links::check_vector;
use crate::metric::{self, MetricKind};
use crate::quant::{self, Quantization};
use crate::records::{load_header, load_set, put_header, put_set};
use crate::store::{Appender, Database};
use crate::with_metric;

/// What `indexes()` lists about one index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub index: u16,
    pub dimensions: usize,
    pub metric: MetricKind,
    pub quantization: Quantization,
    /// Live items, built or not.
    pub items: u64,
    /// Whether the index was ever built.
    pub built: bool,
}

impl IndexInfo {
    pub(crate) fn new(index: u16, header: &Header) -> IndexInfo {
        IndexInfo {
            index,
            dimensions: header.dimensions as usize,
            metric: header.metric,
            quantization: header.quantization,
            items: header.items,
            built: header.built,
        }
    }
}

pub(crate) fn check_dimensions(expected: usize, received: usize) -> Result<()> {
    if expected != received {
        return Err(Error::DimensionMismatch { expected, received });
    }
    Ok(())
}

fn check_finite(vectors: &[f32], dimensions: usize) -> Result<()> {
    if let Some(i) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "vector {} has a NaN or infinite component at position {}",
            i / dimensions.max(1),
            i % dimensions.max(1)
        )));
    }
    Ok(())
}

/// Checks that a writer's parameters agree with what is stored.
fn check_header(
    header: &Header,
    dimensions: usize,
    metric: MetricKind,
    quantization: Quantization,
) -> Result<()> {
    if header.dimensions as usize != dimensions {
        return Err(Error::DimensionMismatch {
            expected: header.dimensions as usize,
            received: dimensions,
        });
    }
    if header.metric != metric {
        return Err(Error::MetricMismatch {
            stored: header.metric.name(),
            requested: metric.name(),
        });
    }
    if header.quantization != quantization {
        return Err(Error::QuantizationMismatch {
            stored: header.quantization.name(),
            requested: quantization.name(),
        });
    }
    Ok(())
}

impl Database {
    /// Every index that has metadata, in index order.
    pub fn indexes(&self) -> Result<Vec<IndexInfo>> {
        let s = &*self.shared;
        self.read(|txn| {
            let mut out = Vec::new();
            for entry in s.meta.iter(txn)? {
                let (key, value) = entry?;
                if key.len() == 3 && key[2] == keys::META_HEADER {
                    let index = u16::from_be_bytes([key[0], key[1]]);
                    out.push(IndexInfo::new(index, &Header::decode(value)?));
                }
            }
            Ok(out)
        })
    }

    /// What is stored about `index`, if anything.
    pub fn info(&self, index: u16) -> Result<Option<IndexInfo>> {
        let s = &*self.shared;
        self.read(|txn| Ok(load_header(s, txn, index)?.map(|h| IndexInfo::new(index, &h))))
    }

    /// Checks that a writer for `index` with these parameters agrees with the stored index.
    pub fn check_writer(&self, index: u16, dimensions: usize, metric: MetricKind) -> Result<()> {
        self.check_quantized_writer(index, dimensions, metric, Quantization::None)
    }

    /// [`Database::check_writer`] for an index with `quantization`.
    pub fn check_quantized_writer(
        &self,
        index: u16,
        dimensions: usize,
        metric: MetricKind,
        quantization: Quantization,
    ) -> Result<()> {
        quant::check_supported(quantization, metric)?;
        if dimensions == 0 || dimensions > u32::MAX as usize {
            return Err(Error::InvalidArgument(
                "dimensions must be an integer from 1 to 4294967295".into(),
            ));
        }
        match self.info(index)? {
            Some(info) => check_header(
                &Header::quantized(info.dimensions as u32, info.metric, info.quantization),
                dimensions,
                metric,
                quantization,
            ),
            None => Ok(()),
        }
    }

    /// Stores `ids.len()` vectors (`vectors` is row-major, `ids.len() × dimensions`). They become
    /// searchable at the next build. Re-adding an id replaces its vector.
    pub fn add_items(
        &self,
        index: u16,
        dimensions: usize,
        metric: MetricKind,
        ids: &[u32],
        vectors: &[f32],
    ) -> Result<()> {
        self.add_quantized_items(index, dimensions, metric, Quantization::None, ids, vectors)
    }

    /// [`Database::add_items`] for an index with `quantization` (fixed when the index is
    /// created: a later call with another one fails with `Error::QuantizationMismatch`).
    pub fn add_quantized_items(
        &self,
        index: u16,
        dimensions: usize,
        metric: MetricKind,
        quantization: Quantization,
        ids: &[u32],
        vectors: &[f32],
    ) -> Result<()> {
        quant::check_supported(quantization, metric)?;
        if dimensions == 0 {
            return Err(Error::InvalidArgument(
                "dimensions must be at least 1".into(),
            ));
        }
        if vectors.len() != ids.len() * dimensions {
            return Err(Error::InvalidArgument(format!(
                "{} ids need {} × {dimensions} = {} components, received {}",
                ids.len(),
                ids.len(),
                ids.len() * dimensions,
                vectors.len()
            )));
        }
        check_finite(vectors, dimensions)?;
        if ids.is_empty() {
            return Ok(());
        }
        let s = &*self.shared;
        // Quantized indexes keep full f32 vectors (for rescoring and `getVector`).
        let stored_len = metric.stored_len(dimensions);
        let estimate = ids.len() * (stored_len + 64);
        self.write(estimate, |txn| {
            let mut header = match load_header(s, txn, index)? {
                Some(h) => {
                    check_header(&h, dimensions, metric, quantization)?;
                    h
                }
                None => Header::quantized(dimensions as u32, metric, quantization),
            };
            let mut updated = load_set(s, txn, index, keys::META_UPDATED)?;
            let mut deleted = load_set(s, txn, index, keys::META_DELETED)?;
            // In id order, so new ids append to the end of the table; the last of repeated ids
            // wins, as if they had been added one after the other.
            let mut order: Vec<usize> = (0..ids.len()).collect();
            order.sort_by_key(|&i| ids[i]);
            let mut nodes = Appender::new(s.nodes, txn)?;
            let mut value = Vec::with_capacity(stored_len);
            for (n, &i) in order.iter().enumerate() {
                let id = ids[i];
                if order.get(n + 1).is_some_and(|&next| ids[next] == id) {
                    continue;
                }
                let key = keys::node(index, id);
                // The links (if the item is in the graph) stay until the build: the graph stays
                // navigable through this node, and the build re-inserts it with its new vector.
                let live_before = s.nodes.get(txn, &key)?.is_some() && !deleted.contains(id);
                let vector = &vectors[i * dimensions..(i + 1) * dimensions];
                with_metric!(metric, D => <D as metric::Distance>::encode(vector, &mut value));
                nodes.put(txn, &key, &value)?;
                if !live_before {
                    header.items += 1;
                }
                deleted.remove(id);
                updated.insert(id);
            }
            put_set(s, txn, index, keys::META_UPDATED, &updated)?;
            put_set(s, txn, index, keys::META_DELETED, &deleted)?;
            put_header(s, txn, index, &header)
        })
    }

    /// Deletes items; returns how many existed. Deleted items are never returned by a search
    /// from now on; the next build repairs the links that pointed at them.
    pub fn delete_items(&self, index: u16, ids: &[u32]) -> Result<u64> {
        if ids.is_empty() || self.info(index)?.is_none() {
            if self.is_read_only() {
                return Err(Error::ReadOnly);
            }
            return Ok(0);
        }
        let s = &*self.shared;
        self.write(ids.len() * 16, |txn| {
            let Some(mut header) = load_header(s, txn, index)? else {
                return Ok(0);
            };
            let mut updated = load_set(s, txn, index, keys::META_UPDATED)?;
            let mut deleted = load_set(s, txn, index, keys::META_DELETED)?;
            let mut existed = 0u64;
            for &id in ids {
                let key = keys::node(index, id);
                if deleted.contains(id) || s.nodes.get(txn, &key)?.is_none() {
                    continue;
                }
                let in_graph = s.links.get(txn, &key)?.is_some();
                existed += 1;
                header.items = header.items.saturating_sub(1);
                updated.remove(id);
                if in_graph {
                    // Kept until the build so searches can still walk through it.
                    deleted.insert(id);
                } else {
                    s.nodes.delete(txn, &key)?;
                }
            }
            put_set(s, txn, index, keys::META_UPDATED, &updated)?;
            put_set(s, txn, index, keys::META_DELETED, &deleted)?;
            put_header(s, txn, index, &header)?;
            Ok(existed)
        })
    }

    /// Removes every item and the graph of `index`.
    pub fn clear(&self, index: u16) -> Result<()> {
        let s = &*self.shared;
        self.write(0, |txn| {
            let (start, end) = node_range(index);
            let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
            s.nodes.delete_range(txn, &range)?;
            s.links.delete_range(txn, &range)?;
            s.upper.delete_range(txn, &range)?;
            for kind in [
                keys::META_HEADER,
                keys::META_UPDATED,
                keys::META_DELETED,
                keys::META_QUANTIZER,
            ] {
                s.meta.delete(txn, &keys::meta(index, kind))?;
            }
            Ok(())
        })?;
        // Its searches' view (and the memory of its table) is no longer of use.
        s.views.forget(index);
        Ok(())
    }

    /// The vector of a live item (as stored: the `bq-*` metrics keep only the signs; quantized
    /// indexes keep the original vectors).
    pub fn get_vector(&self, index: u16, id: u32) -> Result<Option<Vec<f32>>> {
        let s = &*self.shared;
        self.read(|txn| {
            let Some(header) = load_header(s, txn, index)? else {
                return Ok(None);
            };
            let dimensions = header.dimensions as usize;
            let stored_len = header.metric.stored_len(dimensions);
            let Some(bytes) = s.nodes.get(txn, &keys::node(index, id))? else {
                return Ok(None);
            };
            if load_set(s, txn, index, keys::META_DELETED)?.contains(id) {
                return Ok(None);
            }
            let vector = check_vector(bytes, stored_len, id)?;
            Ok(Some(metric::decode(header.metric, vector, dimensions)))
        })
    }

    /// Live items of `index` (0 when it does not exist).
    pub fn count(&self, index: u16) -> Result<u64> {
        Ok(self.info(index)?.map_or(0, |i| i.items))
    }
}
