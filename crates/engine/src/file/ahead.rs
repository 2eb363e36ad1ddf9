//! Reading a named database's leaf pages ahead, in file order, for a pass over them that would
//! otherwise fault them in one at a time (a fresh reader filling its tables from a file that is
//! not in the page cache).
//!
//! LMDB opens the map with read-ahead off (random access suits the graph walk), so a cursor pass
//! over a cold database waits for one disk read per leaf page, in key order. Its leaves mostly
//! lie in runs of neighbouring pages, though, and their numbers are all in the branch pages
//! above them, which are few (about one per 200 leaves). This module reads those branch pages
//! with ordinary reads (a damaged file is an error here, never a fault), keeps the leaves that
//! may hold keys of a range, and asks the kernel for them in runs, in file order
//! (`posix_fadvise` on Linux; elsewhere the branch pages are read and the rest does nothing).

use super::keys::{compare, Cmp, KeyPrefix};
use super::layout::{
    parse_db, DbRec, F_SUBDATA, MAX_DEPTH, P_BRANCH, P_DIRTY, P_INVALID, P_KEEP, P_LEAF, P_LOOSE,
};
use super::meta::read_metas;
use super::nodes::{node_at, node_count};
use super::read::{file_len, file_name, read_at};
use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::fs::File;
use std::path::Path;

/// Bytes a pass keeps asked for ahead of it (`Leaves::keep_ahead`, 8 to 12 MiB), read in a few
/// milliseconds on an SSD, so that a search's own reads beside the pass never queue behind much
/// more (asking for 85 MB at once made the search beside it wait 75 ms).
const WINDOW_BYTES: usize = 8 << 20;

/// The leaf pages of a named database that may hold the keys of a range, in key order, found
/// from its branch pages (which are read, so they are in the page cache afterwards); asked for
/// a window at a time ahead of a pass over them ([`follow`](Leaves::follow)).
pub(crate) struct Leaves {
    file: File,
    psize: u64,
    pages: u64,
    pub(super) leaves: Vec<u64>,
    /// Leaves `keep_ahead` has asked for: the first this many.
    pub(super) advised: usize,
    /// `follow`'s place: the page of the last value it saw, and the leaves passed so far.
    page: usize,
    passed: usize,
}

impl Leaves {
    /// The leaves of the named database `name` that may hold keys in `[start, end)` (byte
    /// order), for the current snapshot of `data_file`; none for a database that does not
    /// exist.
    pub(crate) fn find(data_file: &Path, name: &[u8], start: &[u8], end: &[u8]) -> Result<Leaves> {
        let file = File::open(data_file)
            .map_err(|e| Error::Io(format!("cannot open {}: {e}", data_file.display())))?;
        let tree = Tree::open(&file, data_file)?;
        let leaves = match tree.named(name)? {
            Some(rec) => tree.leaves(&rec, start, end)?,
            None => Vec::new(),
        };
        let (psize, pages) = (tree.psize as u64, tree.pages);
        Ok(Leaves {
            file,
            psize,
            pages,
            leaves,
            advised: 0,
            page: usize::MAX,
            passed: 0,
        })
    }

    /// For a pass over the database in key order that has just read `value` (a slice of the
    /// map LMDB returned): the pass reached a new leaf where the value's page changes (a value
    /// on overflow pages counts as one more leaf: the reads only run further ahead), and the
    /// reads are kept [`WINDOW_BYTES`] of leaves ahead of it.
    pub(crate) fn follow(&mut self, value: &[u8]) {
        let page = value.as_ptr() as usize / self.page_size().max(1);
        if page != self.page {
            (self.page, self.passed) = (page, self.passed + 1);
            self.keep_ahead(self.passed);
        }
    }

    /// Leaves in `WINDOW_BYTES`.
    pub(super) fn window(&self) -> usize {
        (WINDOW_BYTES / self.page_size().max(1)).max(2)
    }

    /// For a pass over the leaves in key order that has gone through `passed` of them: asks
    /// for the next ones, up to a window ahead of it.
    pub(crate) fn keep_ahead(&mut self, passed: usize) {
        let window = self.window();
        while self.advised < self.leaves.len() && self.advised < passed + window {
            let next = (self.advised + window / 2).min(self.leaves.len());
            self.advise(self.advised..next);
            self.advised = next;
        }
    }

    /// The file's page size.
    pub(super) fn page_size(&self) -> usize {
        self.psize as usize
    }

    /// Starts reading leaves `range` (in key order; clamped to those there are) into the page
    /// cache, in runs of neighbouring pages in file order: on Linux the reads are queued
    /// (`posix_fadvise(WILLNEED)`) and this returns before they complete; elsewhere it does
    /// nothing.
    fn advise(&self, range: std::ops::Range<usize>) {
        let end = range.end.min(self.leaves.len());
        let Some(part) = self.leaves.get(range.start.min(end)..end) else {
            return;
        };
        advise_runs(&self.file, part.to_vec(), self.psize, self.pages);
    }
}

/// Asks for pages `pgnos` of `file` (of `pages` pages of `psize` bytes; numbers past its end
/// are left out), in runs of neighbouring pages.
fn advise_runs(file: &File, mut pgnos: Vec<u64>, psize: u64, pages: u64) {
    pgnos.retain(|&p| p < pages);
    for (first, count) in runs(pgnos) {
        // Within the file, so neither product overflows.
        advise(file, first * psize, count * psize);
    }
}

/// A file open for reading pages of its current snapshot.
struct Tree<'f> {
    file: &'f File,
    name: String,
    psize: usize,
    /// Pages the file holds; no page number at or past it is read.
    pages: u64,
    main: DbRec,
}

/// A page to read, with the bounds of the keys below it (`None`: unbounded).
struct Pending {
    pgno: u64,
    low: Option<KeyPrefix>,
    high: Option<KeyPrefix>,
}

impl<'f> Tree<'f> {
    fn open(file: &'f File, path: &Path) -> Result<Tree<'f>> {
        let name = file_name(path);
        let len = file_len(file, path)?;
        let metas = read_metas(file, len, &name)?;
        Ok(Tree {
            file,
            pages: len / metas.psize as u64,
            psize: metas.psize,
            main: metas.current.main,
            name,
        })
    }

    fn corrupt(&self, what: String) -> Error {
        Error::Corrupt(format!("{}: {what}", self.name))
    }

    /// Reads page `pgno`, which must be a page of kind `kind` (`P_BRANCH` or `P_LEAF`).
    fn page(&self, pgno: u64, kind: u16) -> Result<Vec<u8>> {
        if pgno >= self.pages {
            return Err(self.corrupt(format!(
                "a branch page points to page {pgno}, past the end of the file ({} pages)",
                self.pages
            )));
        }
        let page = read_at(self.file, pgno * self.psize as u64, self.psize)?;
        let flags = super::read::u16_at(&page, 10).unwrap_or(0) & !(P_DIRTY | P_LOOSE | P_KEEP);
        let own = super::read::u64_at(&page, 0);
        if page.len() < self.psize || flags != kind || own != Some(pgno) {
            return Err(self.corrupt(format!(
                "page {pgno} is not the {} page its parent says it is",
                if kind == P_BRANCH { "branch" } else { "leaf" }
            )));
        }
        Ok(page)
    }

    /// The record of the named database `name`, looked up in the main DB.
    fn named(&self, name: &[u8]) -> Result<Option<DbRec>> {
        if self.main.root == P_INVALID {
            return Ok(None);
        }
        let key = KeyPrefix::of(name);
        let mut pgno = self.main.root;
        for level in 1..=self.main.depth.min(MAX_DEPTH) {
            let leaf = level == self.main.depth;
            let page = self.page(pgno, if leaf { P_LEAF } else { P_BRANCH })?;
            let (count, upper) =
                node_count(&page).map_err(|f| self.corrupt(f.describe(self.psize)))?;
            let bad = |f: super::nodes::Fault| self.corrupt(f.describe(self.psize));
            if leaf {
                for i in 0..count {
                    let node = node_at(&page, i, upper, true).map_err(bad)?;
                    if node.key == name && node.flags & F_SUBDATA != 0 {
                        return parse_db(node.data, 0)
                            .map(Some)
                            .ok_or_else(|| self.corrupt("a database record is cut short".into()));
                    }
                }
                return Ok(None);
            }
            // The last child whose first key is at most `name` (node 0's key is not stored).
            let mut next = None;
            for i in 0..count {
                let node = node_at(&page, i, upper, false).map_err(bad)?;
                if i == 0
                    || compare(&KeyPrefix::of(node.key), &key, Cmp::Bytes)
                        != Some(Ordering::Greater)
                {
                    next = Some(node.number);
                } else {
                    break;
                }
            }
            pgno = next.ok_or_else(|| self.corrupt(format!("branch page {pgno} is empty")))?;
        }
        Ok(None)
    }

    /// The leaf pages of the tree of `rec` that may hold keys in `[start, end)`, in key order,
    /// read from its branch pages one level at a time (each level's pages asked for at once
    /// before they are read).
    fn leaves(&self, rec: &DbRec, start: &[u8], end: &[u8]) -> Result<Vec<u64>> {
        if rec.root == P_INVALID || rec.depth == 0 {
            return Ok(Vec::new());
        }
        if rec.depth > MAX_DEPTH {
            return Err(self.corrupt(format!("a database is {} levels deep", rec.depth)));
        }
        let (start, end) = (KeyPrefix::of(start), KeyPrefix::of(end));
        let mut level = vec![Pending {
            pgno: rec.root,
            low: None,
            high: None,
        }];
        // A damaged file may count more pages than it has, or point a page at itself: no level
        // may list more pages than the file holds, nor the walk read more branch pages.
        let (mut read, most) = (0, rec.branch_pages.min(self.pages));
        for _ in 1..rec.depth {
            if read + level.len() as u64 > most {
                return Err(self.corrupt(format!(
                    "a database's branch pages lead to more than the {most} its record counts \
                     and the file holds"
                )));
            }
            let pgnos = level.iter().map(|p| p.pgno).collect();
            advise_runs(self.file, pgnos, self.psize as u64, self.pages);
            let mut below = Vec::new();
            for parent in &level {
                let page = self.page(parent.pgno, P_BRANCH)?;
                read += 1;
                let bad = |f: super::nodes::Fault| self.corrupt(f.describe(self.psize));
                let (count, upper) = node_count(&page).map_err(bad)?;
                let mut children = Vec::with_capacity(usize::from(count));
                for i in 0..count {
                    let node = node_at(&page, i, upper, false).map_err(bad)?;
                    let low = if i == 0 {
                        parent.low
                    } else {
                        Some(KeyPrefix::of(node.key))
                    };
                    children.push((node.number, low));
                }
                for (i, &(pgno, low)) in children.iter().enumerate() {
                    let high = children.get(i + 1).map_or(parent.high, |&(_, next)| next);
                    // Keys below this child are in [low, high): keep it if that may meet [start, end)
                    // (keys too long for their kept prefixes to order count as meeting it).
                    let before_end = low.is_none_or(|low| {
                        !matches!(
                            compare(&low, &end, Cmp::Bytes),
                            Some(Ordering::Greater | Ordering::Equal)
                        )
                    });
                    let after_start = high.is_none_or(|high| {
                        !matches!(
                            compare(&high, &start, Cmp::Bytes),
                            Some(Ordering::Less | Ordering::Equal)
                        )
                    });
                    if before_end && after_start {
                        if below.len() as u64 >= self.pages {
                            return Err(self.corrupt(
                                "a database's branch pages list more pages than the file holds"
                                    .into(),
                            ));
                        }
                        below.push(Pending { pgno, low, high });
                    }
                }
            }
            level = below;
        }
        Ok(level.into_iter().map(|p| p.pgno).collect())
    }
}

/// Page numbers (sorted or not) as runs of neighbouring pages: (first, count), in file order.
fn runs(mut pages: Vec<u64>) -> Vec<(u64, u64)> {
    pages.sort_unstable();
    pages.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for pgno in pages {
        match out.last_mut() {
            Some((first, count)) if *first + *count == pgno => *count += 1,
            _ => out.push((pgno, 1)),
        }
    }
    out
}

/// Starts reading `len` bytes of `file` at `offset` into the page cache.
#[cfg(target_os = "linux")]
fn advise(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise takes an open descriptor (the file outlives the call) and plain
    // integers, and writes no memory; it only queues reads into the page cache.
    let _ =
        unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED) };
}

/// Elsewhere a no-op: reading the pages here, on the pass's own thread, would not read them
/// ahead of it.
#[cfg(not(target_os = "linux"))]
fn advise(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn pages_group_into_runs_in_file_order() {
        assert_eq!(runs(vec![]), vec![]);
        assert_eq!(runs(vec![7]), vec![(7, 1)]);
        assert_eq!(
            runs(vec![9, 3, 4, 5, 10, 12, 4]),
            vec![(3, 3), (9, 2), (12, 1)]
        );
    }
}
