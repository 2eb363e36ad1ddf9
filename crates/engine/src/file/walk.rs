//! Walking the trees: the walker, which tree owns each page, and the pages it reaches.

use super::layout::NUM_METAS;
use super::pages::{parse_page, PageInfo, Store};
use super::read::{read_at, to_usize};
use super::show::thousands;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;

/// Owner id marking a page listed in the free-page DB.
pub(super) const FREE_MARK: u16 = u16::MAX;
pub(super) const FREE_TREE: u16 = 1;
pub(super) const MAIN_TREE: u16 = 2;

/// Where a page was reached from, for messages.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reached {
    Root,
    Child { parent: u64, node: u16 },
    Value { leaf: u64, node: u16 },
    Run { start: u64 },
}

impl Reached {
    pub(super) fn describe(self, pgno: u64) -> String {
        match self {
            Reached::Root => format!("root page {pgno}"),
            Reached::Child { parent, node } => {
                format!("page {pgno} (child {node} of branch page {parent})")
            }
            Reached::Value { leaf, node } => {
                format!("overflow page {pgno} (the value of node {node} of leaf page {leaf})")
            }
            Reached::Run { start } => {
                format!("page {pgno} (inside the overflow run that starts at page {start})")
            }
        }
    }
}

#[derive(Default)]
pub(super) struct Owners {
    pub(super) dense: Vec<u16>,
    sparse: HashMap<u64, u16>,
}

impl Owners {
    pub(super) fn get(&self, pgno: u64) -> u16 {
        match usize::try_from(pgno).ok().and_then(|i| self.dense.get(i)) {
            Some(&owner) => owner,
            None => self.sparse.get(&pgno).copied().unwrap_or(0),
        }
    }

    pub(super) fn set(&mut self, pgno: u64, owner: u16) {
        match usize::try_from(pgno)
            .ok()
            .and_then(|i| self.dense.get_mut(i))
        {
            Some(slot) => *slot = owner,
            None => {
                self.sparse.insert(pgno, owner);
            }
        }
    }
}

pub(super) fn owner_name(names: &[String], owner: u16) -> String {
    match owner {
        FREE_MARK => "the free-page list".into(),
        _ => names
            .get(usize::from(owner).wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| format!("tree {owner}")),
    }
}

pub(super) struct Walk<'f> {
    pub(super) file: &'f File,
    pub(super) name: String,
    pub(super) psize: usize,
    pub(super) file_pages: u64,
    pub(super) last_pg: u64,
    pub(super) store: Store,
    pub(super) owners: Owners,
    /// Names of the trees by owner id − 1.
    pub(super) tree_names: Vec<String>,
    pub(super) reached: u64,
}

impl<'f> Walk<'f> {
    pub(super) fn new(
        file: &'f File,
        name: &str,
        psize: usize,
        file_pages: u64,
        last_pg: u64,
        store: Store,
    ) -> Walk<'f> {
        Walk {
            file,
            name: name.to_string(),
            psize,
            file_pages,
            last_pg,
            store,
            owners: Owners::default(),
            tree_names: vec!["the free-page DB".into(), "the main DB".into()],
            reached: 0,
        }
    }

    fn tree_name(&self, tree: u16) -> String {
        owner_name(&self.tree_names, tree)
    }

    pub(super) fn fault(&self, tree: u16, what: String) -> Error {
        Error::Corrupt(format!("{}: {}: {what}", self.name, self.tree_name(tree)))
    }

    /// Marks `pgno` as used by `tree`, after checking it is a page of the snapshot, inside the
    /// file and not used yet.
    pub(super) fn claim(&mut self, tree: u16, pgno: u64, from: Reached) -> Result<()> {
        let place = || from.describe(pgno);
        if pgno < NUM_METAS {
            return Err(self.fault(tree, format!("{} is a meta page", place())));
        }
        if pgno > self.last_pg {
            return Err(self.fault(
                tree,
                format!(
                    "{} is past the last page {} of the snapshot",
                    place(),
                    self.last_pg
                ),
            ));
        }
        if pgno >= self.file_pages {
            return Err(self.fault(
                tree,
                format!(
                    "{} is beyond the end of the file ({} whole pages)",
                    place(),
                    thousands(self.file_pages)
                ),
            ));
        }
        match self.owners.get(pgno) {
            0 => {}
            owner if owner == tree => {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} is reached a second time (a cycle or a shared page)",
                        place()
                    ),
                ))
            }
            owner => {
                return Err(self.fault(
                    tree,
                    format!("{} is already used by {}", place(), self.tree_name(owner)),
                ))
            }
        }
        self.owners.set(pgno, tree);
        self.reached += 1;
        Ok(())
    }

    /// Claims `pgno` for `tree` (see `claim`) and returns its summary, after checking that the
    /// page's header names it.
    pub(super) fn claim_page(&mut self, tree: u16, pgno: u64, from: Reached) -> Result<PageInfo> {
        self.claim(tree, pgno, from)?;
        let info = self.page(pgno)?;
        if info.stored_pgno != pgno {
            return Err(self.fault(
                tree,
                format!(
                    "{} holds the header of page {} (its stored page number is wrong)",
                    from.describe(pgno),
                    info.stored_pgno
                ),
            ));
        }
        Ok(info)
    }

    /// The summary of `pgno` (in the file, checked by `claim`).
    pub(super) fn page(&mut self, pgno: u64) -> Result<PageInfo> {
        if pgno < self.store.dense {
            if let Some(info) = self.store.info.get(to_usize(pgno)?) {
                return Ok(*info);
            }
        }
        if let Some(&i) = self.store.sparse.get(&pgno) {
            if let Some(info) = self.store.info.get(i) {
                return Ok(*info);
            }
        }
        let bytes = self.read_page(pgno)?;
        let info = parse_page(&bytes, &mut self.store);
        self.store.sparse.insert(pgno, self.store.info.len());
        self.store.info.push(info);
        Ok(info)
    }

    pub(super) fn read_page(&self, pgno: u64) -> Result<Vec<u8>> {
        let offset = pgno
            .checked_mul(self.psize as u64)
            .filter(|_| pgno < self.file_pages)
            .ok_or_else(|| {
                Error::Corrupt(format!("{}: page {pgno} is beyond the file", self.name))
            })?;
        let bytes = read_at(self.file, offset, self.psize)?;
        if bytes.len() != self.psize {
            return Err(Error::Io(format!(
                "{}: page {pgno} could not be read whole (did the file shrink?)",
                self.name
            )));
        }
        Ok(bytes)
    }
}
