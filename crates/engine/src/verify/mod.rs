//! Whole-file checks for `Database::verify` and `OpenOptions::verify`: LMDB's own structure,
//! read from the raw file with bounds-checked reads (`crate::file`: never through the map, where
//! a bad page number would fault), then hannoy's records through LMDB.

use std::collections::HashSet;
use std::ops::Bound;
use std::time::Instant;

use crate::dbs::ReadTxn;
use crate::error::{Error, Result};
use crate::file;
use crate::header::Header;
use crate::keys;
use crate::keys::node_range;
use crate::links;
use crate::records::{in_index, load_quantizer, load_set};
use crate::store::{Database, Shared};

/// What a whole-file check found: the file and every index it holds, all sound.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Bytes in `data.mdb`.
    pub file_bytes: u64,
    /// Pages in use (LMDB's last page number + 1) and their size.
    pub pages: u64,
    pub page_size: usize,
    /// Pages the structural check read through its trees.
    pub pages_checked: u64,
    /// Pages LMDB lists as free (reused by later writes; a compacting copy leaves them out).
    pub free_pages: u64,
    pub indexes: Vec<IndexReport>,
    /// Time the whole check took.
    pub seconds: f64,
}

/// One index as the check found it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexReport {
    pub index: u16,
    /// Stored vectors (live, plus deleted ones the next build removes).
    pub vectors: u64,
    /// Nodes in the graph (items with level-0 links).
    pub nodes: u64,
}

/// The most links a list can hold (m0 is at most 512, m at most 256); a build with a smaller m
/// may leave longer upper-level lists than its m, so the bound is the format's, not the header's.
const MAX_LINKS: u16 = 512;

impl Database {
    /// Checks the whole environment: LMDB's structure on the raw file, then every hannoy record
    /// (metadata, vectors, link lists, entry points, links pointing at existing items). A fault
    /// is `Error::Corrupt` naming what is wrong and where.
    pub fn verify(&self) -> Result<VerifyReport> {
        let start = Instant::now();
        let s = &*self.shared;
        let file = file::data_file(s.env.path());
        // A read transaction pins the state the raw check sees: LMDB reuses no page that a
        // reader's state (or a newer one) can reach while the reader lives.
        let (structure, indexes) = self.read(|txn| {
            let structure = file::check_structure(&file)?;
            let indexes = check_records(s, txn)?;
            Ok((structure, indexes))
        })?;
        Ok(VerifyReport {
            file_bytes: structure.file_bytes,
            pages: structure.pages,
            page_size: structure.page_size,
            pages_checked: structure.pages_checked,
            free_pages: structure.free_pages,
            indexes,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

impl Database {
    /// Checks hannoy's records of every index, for an open with `verify` (whose raw structural
    /// check ran before LMDB opened the file).
    pub(crate) fn verify_records(&self) -> Result<()> {
        let s = &*self.shared;
        self.read(|txn| check_records(s, txn)).map(|_| ())
    }
}

/// Checks hannoy's records of every index (LMDB's structure is known to be sound).
fn check_records(s: &Shared, txn: &ReadTxn<'_>) -> Result<Vec<IndexReport>> {
    let mut headers = Vec::new();
    for entry in s.meta.iter(txn)? {
        let (key, value) = entry?;
        if key.len() != 3 {
            return Err(Error::Corrupt(format!(
                "a metadata key of {} bytes (expected 3)",
                key.len()
            )));
        }
        let index = u16::from_be_bytes([key[0], key[1]]);
        match key[2] {
            keys::META_HEADER => headers.push((
                index,
                Header::decode(value).map_err(|e| in_index(index, e))?,
            )),
            keys::META_UPDATED | keys::META_DELETED => {
                load_set(s, txn, index, key[2])?;
            }
            // Decoded with its index's header, below.
            keys::META_QUANTIZER => {}
            other => {
                return Err(Error::Corrupt(format!(
                    "index {index}: unknown metadata record kind {other}"
                )))
            }
        }
    }
    let mut reports = Vec::with_capacity(headers.len());
    for (index, header) in headers {
        reports.push(check_index(s, txn, index, &header).map_err(|e| in_index(index, e))?);
    }
    Ok(reports)
}

fn check_index(s: &Shared, txn: &ReadTxn<'_>, index: u16, header: &Header) -> Result<IndexReport> {
    let (start, end) = node_range(index);
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    let stored_len = header.metric.stored_len(header.dimensions as usize);
    if !header.quantization.supports(header.metric) {
        return Err(Error::Corrupt(format!(
            "the header says quantization '{}' with metric '{}', which do not go together",
            header.quantization.name(),
            header.metric.name()
        )));
    }
    let quantizer = load_quantizer(s, txn, index, header)?;
    let code_len = quantizer.as_ref().map_or(0, |q| q.code_len());
    let mut ids = HashSet::new();
    for entry in s.nodes.range(txn, &range)? {
        let (key, value) = entry?;
        let id = node_key(key, "nodes")?;
        links::check_vector(value, stored_len, id)?;
        ids.insert(id);
    }
    let deleted = load_set(s, txn, index, keys::META_DELETED)?;
    let live = ids.iter().filter(|id| !deleted.contains(**id)).count() as u64;
    if live != header.items {
        return Err(Error::Corrupt(format!(
            "the header counts {} live items, the index stores {live}",
            header.items
        )));
    }
    let mut list = Vec::new();
    let mut nodes = HashSet::new();
    for entry in s.links.range(txn, &range)? {
        let (key, value) = entry?;
        let id = node_key(key, "links")?;
        if !ids.contains(&id) {
            return Err(Error::Corrupt(format!("item {id} has links but no vector")));
        }
        let (code, value) = value.split_at_checked(code_len).ok_or_else(|| {
            Error::Corrupt(format!(
                "item {id}: a level-0 record of {} bytes, shorter than its {code_len}-byte code",
                value.len()
            ))
        })?;
        if let Some(q) = &quantizer {
            q.check_code(code)
                .map_err(|what| Error::Corrupt(format!("item {id}: {what}")))?;
        }
        links::decode_into(value, id, &mut list)?;
        check_targets(&list, &ids, id, 0, MAX_LINKS)?;
        nodes.insert(id);
    }
    for entry in s.upper.range(txn, &range)? {
        let (key, value) = entry?;
        let id = node_key(key, "upper")?;
        let level = match keys::level_of(key) {
            Some(level) if key.len() == 9 => level,
            _ => {
                return Err(Error::Corrupt(format!(
                    "item {id}: a malformed upper-level key"
                )))
            }
        };
        if level == 0 || level > header.top_level {
            return Err(Error::Corrupt(format!(
                "item {id} has links on level {level}, the graph's levels are 1 to {}",
                header.top_level
            )));
        }
        if !nodes.contains(&id) {
            return Err(Error::Corrupt(format!(
                "item {id} has links on level {level} but none on level 0"
            )));
        }
        links::decode_into(value, id, &mut list)?;
        check_targets(&list, &ids, id, level, MAX_LINKS)?;
    }
    for &entry in &header.entry_points {
        if !nodes.contains(&entry) {
            return Err(Error::Corrupt(format!(
                "entry point {entry} is not in the graph"
            )));
        }
    }
    if header.built && !nodes.is_empty() && header.entry_points.is_empty() {
        return Err(Error::Corrupt(
            "the graph has nodes but no entry point".into(),
        ));
    }
    Ok(IndexReport {
        index,
        vectors: ids.len() as u64,
        nodes: nodes.len() as u64,
    })
}

fn node_key(key: &[u8], db: &str) -> Result<u32> {
    match keys::id_of(key) {
        Some(id) if key.len() >= 8 => Ok(id),
        _ => Err(Error::Corrupt(format!("a short key in '{db}'"))),
    }
}

fn check_targets(list: &[u32], ids: &HashSet<u32>, id: u32, level: u8, max: u16) -> Result<()> {
    if list.len() > max.max(1) as usize {
        return Err(Error::Corrupt(format!(
            "item {id} has {} links on level {level}, at most {max} are allowed",
            list.len()
        )));
    }
    match list.iter().find(|target| !ids.contains(target)) {
        Some(target) => Err(Error::Corrupt(format!(
            "item {id} links to item {target} on level {level}, which does not exist"
        ))),
        None => Ok(()),
    }
}
