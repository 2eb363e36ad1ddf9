//! Reading: the file, and native-endian numbers at byte offsets.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data.mdb".into())
}

pub(super) fn file_len(file: &File, path: &Path) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| Error::Io(format!("cannot read the size of {}: {e}", path.display())))
}

pub(super) fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Corrupt(format!("{n} does not fit in memory")))
}

/// Reads up to `len` bytes at `offset`; fewer at the end of the file.
pub(super) fn read_at(mut file: &File, offset: u64, len: usize) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

pub(super) fn get<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

pub(super) fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    get(bytes, offset).map(u16::from_ne_bytes)
}

pub(super) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    get(bytes, offset).map(u32::from_ne_bytes)
}

pub(super) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    get(bytes, offset).map(u64::from_ne_bytes)
}
