//! Quantized indexes: the quantizer a build codes with, and the codes of every node.

use std::ops::Bound;

use heed::RwTxn;
use roaring::RoaringBitmap;

use super::{BuildOptions, Control};
use crate::error::{Error, Result};
use crate::header::Header;
use crate::keys;
use crate::keys::node_range;
use crate::links::check_vector;
use crate::metric::{float_components, MetricKind};
use crate::quant::{Quantizer, TRAINING_SAMPLE};
use crate::records::load_quantizer;
use crate::store::Shared;

/// The quantizer a build of a quantized index codes with: the stored one, or one learned now
/// from the stored items (the first build, or `retrain`). Returns it and whether it is new (every
/// item is then coded again); a new one is written to the metadata.
pub(super) fn quantizer_for(
    s: &Shared,
    txn: &mut RwTxn<'_>,
    index: u16,
    header: &Header,
    deleted: &RoaringBitmap,
    options: &BuildOptions,
    control: &Control<'_>,
) -> Result<(Quantizer, bool)> {
    if !options.retrain {
        if let Some(q) = load_quantizer(s, txn, index, header)? {
            if !q.outgrown(header.items) {
                return Ok((q, false));
            }
        }
    }
    control.report("train", 0, 1);
    let dimensions = header.dimensions as usize;
    let stored_len = header.metric.stored_len(dimensions);
    // Every `every`-th live item, up to the sample's size.
    let every = (header.items as usize).div_ceil(TRAINING_SAMPLE).max(1);
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let mut sample = Vec::new();
    let mut live = 0usize;
    // The pass reads every leaf of the vectors: from a file not in the page cache, one disk
    // read each in turn unless they are asked for ahead of it (24.6 s against 1.1 s for 600k ×
    // 384 in a 700 MiB memory limit).
    let mut ahead = s.leaves_ahead(b"nodes", index);
    for entry in s.nodes.range(txn, &range)? {
        let (key, value) = entry?;
        if let Some(ahead) = ahead.as_mut() {
            ahead.follow(value);
        }
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short node key".into()))?;
        if deleted.contains(id) {
            continue;
        }
        if live.is_multiple_of(every) {
            sample.extend_from_slice(&float_components(check_vector(value, stored_len, id)?));
        }
        live += 1;
        if live.is_multiple_of(65_536) {
            control.check()?;
        }
    }
    let normalize = header.metric == MetricKind::Cosine;
    let seed = options.seed.unwrap_or(0);
    let quantizer = Quantizer::train(header.quantization, dimensions, normalize, &sample, seed)
        .ok_or_else(|| Error::InvalidArgument("this index is not quantized".into()))?;
    s.meta.put(
        txn,
        &keys::meta(index, keys::META_QUANTIZER),
        &quantizer.to_bytes(),
    )?;
    control.report("train", 1, 1);
    Ok((quantizer, true))
}

/// The nodes of a quantized index for its build: every item in the graph or waiting for it, in
/// id order, with its code (taken from its level-0 record, or made from its full vector when it
/// is new or `recode`) and, for the items to insert, the full vector they are inserted with.
pub(super) struct CodedNodes<'t> {
    pub(super) ids: Vec<u32>,
    pub(super) codes: Vec<u8>,
    pub(super) full: Vec<Option<&'t [u8]>>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn coded_nodes<'t>(
    s: &Shared,
    txn: &'t RwTxn<'_>,
    index: u16,
    stored_len: usize,
    quantizer: &Quantizer,
    updated: &RoaringBitmap,
    recode: bool,
    control: &Control<'_>,
) -> Result<CodedNodes<'t>> {
    let code_len = quantizer.code_len();
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let mut graph_ids = Vec::new();
    let mut graph_codes = Vec::new();
    for entry in s.links.range(txn, &range)? {
        let (key, value) = entry?;
        let id = keys::id_of(key).ok_or_else(|| Error::Corrupt("short link key".into()))?;
        let code = value.get(..code_len).ok_or_else(|| {
            Error::Corrupt(format!("item {id}: a level-0 record shorter than its code"))
        })?;
        graph_ids.push(id);
        graph_codes.extend_from_slice(code);
    }
    let mut ids: Vec<u32> = Vec::with_capacity(graph_ids.len() + updated.len() as usize);
    {
        // Merge the two sorted id lists.
        let (mut a, mut b) = (graph_ids.iter().peekable(), updated.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&y)) if x == y => {
                    b.next();
                    a.next().copied()
                }
                (Some(&&x), Some(&y)) if x < y => a.next().copied(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next().copied(),
                (None, None) => None,
            };
            match next {
                Some(id) => ids.push(id),
                None => break,
            }
        }
    }
    let n = ids.len();
    control.report("code", 0, n as u64);
    let mut codes = Vec::with_capacity(n * code_len);
    let mut full = vec![None; n];
    let mut from_graph = 0usize;
    // The vectors read below, in key order: all of them on a first build or a recode, then
    // worth asking for ahead of the reads (as in `quantizer_for`); a few new items among many
    // are not (the read-ahead would bring in every leaf).
    let reads = if recode {
        n
    } else {
        n - graph_ids.len().min(n)
    }
    .max(updated.len() as usize);
    let mut ahead = if reads >= n / 4 {
        s.leaves_ahead(b"nodes", index)
    } else {
        None
    };
    for (p, &id) in ids.iter().enumerate() {
        let in_graph = graph_ids.get(from_graph) == Some(&id);
        let new = updated.contains(id);
        if new || recode || !in_graph {
            let Some(value) = s.nodes.get(txn, &keys::node(index, id))? else {
                return Err(Error::Corrupt(format!("item {id} has links but no vector")));
            };
            if let Some(ahead) = ahead.as_mut() {
                ahead.follow(value);
            }
            let vector = check_vector(value, stored_len, id)?;
            quantizer.encode(&float_components(vector), &mut codes);
            if new {
                full[p] = Some(vector);
            }
        } else {
            codes.extend_from_slice(
                &graph_codes[from_graph * code_len..(from_graph + 1) * code_len],
            );
        }
        if in_graph {
            from_graph += 1;
        }
        if p % 65_536 == 65_535 {
            control.check()?;
            control.report("code", p as u64 + 1, n as u64);
        }
    }
    control.report("code", n as u64, n as u64);
    Ok(CodedNodes { ids, codes, full })
}
