//! The metadata records of an index in `meta` (its header, its quantizer, its sets of deleted
//! and updated items): read and written by the views, the cheap writes, the build and the file
//! check alike.

use heed::RwTxn;
use roaring::RoaringBitmap;

use crate::dbs::{Dbs, ReadTxn};
use crate::error::{Error, Result};
use crate::header::Header;
use crate::keys;
use crate::quant::{Quantization, Quantizer};

pub(crate) fn load_header(s: &Dbs, txn: &ReadTxn<'_>, index: u16) -> Result<Option<Header>> {
    match s.meta.get(txn, &keys::meta(index, keys::META_HEADER))? {
        Some(bytes) => Header::decode(bytes).map(Some),
        None => Ok(None),
    }
}

/// The quantizer of a quantized index, once a build has trained it.
pub(crate) fn load_quantizer(
    s: &Dbs,
    txn: &ReadTxn<'_>,
    index: u16,
    header: &Header,
) -> Result<Option<Quantizer>> {
    if header.quantization == Quantization::None {
        return Ok(None);
    }
    match s.meta.get(txn, &keys::meta(index, keys::META_QUANTIZER))? {
        Some(bytes) => {
            let q = Quantizer::from_bytes(bytes, header.dimensions as usize)
                .map_err(|e| in_index(index, e))?;
            if q.kind() != header.quantization {
                return Err(Error::Corrupt(format!(
                    "index {index}: the quantizer is '{}', the header says '{}'",
                    q.kind().name(),
                    header.quantization.name()
                )));
            }
            Ok(Some(q))
        }
        None if header.built && header.items > 0 => Err(Error::Corrupt(format!(
            "index {index}: a built '{}' index has no quantizer",
            header.quantization.name()
        ))),
        None => Ok(None),
    }
}

/// Names the index in a corruption message (once).
pub(crate) fn in_index(index: u16, error: Error) -> Error {
    match error {
        Error::Corrupt(msg) if !msg.starts_with("index ") => {
            Error::Corrupt(format!("index {index}: {msg}"))
        }
        other => other,
    }
}

pub(crate) fn put_header(s: &Dbs, txn: &mut RwTxn<'_>, index: u16, h: &Header) -> Result<()> {
    s.meta
        .put(txn, &keys::meta(index, keys::META_HEADER), &h.encode())?;
    Ok(())
}

pub(crate) fn load_set(s: &Dbs, txn: &ReadTxn<'_>, index: u16, kind: u8) -> Result<RoaringBitmap> {
    match s.meta.get(txn, &keys::meta(index, kind))? {
        Some(bytes) => RoaringBitmap::deserialize_from(bytes)
            .map_err(|e| Error::Corrupt(format!("index {index}: set {kind}: {e}"))),
        None => Ok(RoaringBitmap::new()),
    }
}

pub(crate) fn put_set(
    s: &Dbs,
    txn: &mut RwTxn<'_>,
    index: u16,
    kind: u8,
    set: &RoaringBitmap,
) -> Result<()> {
    let key = keys::meta(index, kind);
    if set.is_empty() {
        s.meta.delete(txn, &key)?;
    } else {
        let mut bytes = Vec::with_capacity(set.serialized_size());
        let _ = set.serialize_into(&mut bytes);
        s.meta.put(txn, &key, &bytes)?;
    }
    Ok(())
}
