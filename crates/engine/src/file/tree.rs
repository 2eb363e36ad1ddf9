//! Walking one tree: page kinds and levels, key order, separators, overflow runs and the
//! record's counts.

use super::keys::{compare, Cmp, KeyPrefix};
use super::layout::{DbRec, MAX_DEPTH, PAGE_HEADER, P_INVALID};
use super::pages::{Big, Child, Kind, Sub};
use super::show::thousands;
use super::walk::{Reached, Walk};
use super::TreeStats;
use crate::error::Result;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Free,
    Main,
    Sub,
}

pub(super) struct TreeOut {
    pub(super) stats: TreeStats,
    pub(super) subs: Vec<Sub>,
    /// Free-page DB: its leaf pages, whose records are read afterwards.
    pub(super) leaves: Vec<u64>,
}

struct Frame {
    pgno: u64,
    level: u16,
    from: Reached,
    low: Option<KeyPrefix>,
    high: Option<KeyPrefix>,
}

impl Walk<'_> {
    /// Walks one tree from its root, checking every page and the record's counts.
    pub(super) fn tree(&mut self, tree: u16, rec: &DbRec, cmp: Cmp, role: Role) -> Result<TreeOut> {
        let mut stats = TreeStats {
            name: match role {
                Role::Free => "(free pages)".into(),
                Role::Main => "(main)".into(),
                Role::Sub => String::new(),
            },
            depth: rec.depth,
            branch_pages: 0,
            leaf_pages: 0,
            overflow_pages: 0,
            entries: 0,
        };
        let mut out_subs = Vec::new();
        let mut leaves = Vec::new();
        if rec.root == P_INVALID {
            if rec.depth != 0
                || rec.branch_pages != 0
                || rec.leaf_pages != 0
                || rec.overflow_pages != 0
                || rec.entries != 0
            {
                return Err(self.fault(
                    tree,
                    format!(
                        "it has no root page, but its record says depth {}, {} branch, {} leaf and {} overflow pages, {} entries",
                        rec.depth, rec.branch_pages, rec.leaf_pages, rec.overflow_pages, rec.entries
                    ),
                ));
            }
            return Ok(TreeOut {
                stats,
                subs: out_subs,
                leaves,
            });
        }
        if rec.depth == 0 || rec.depth > MAX_DEPTH {
            return Err(self.fault(
                tree,
                format!(
                    "its record says depth {}, expected 1 to {MAX_DEPTH} for a tree with a root",
                    rec.depth
                ),
            ));
        }
        let mut stack = vec![Frame {
            pgno: rec.root,
            level: 1,
            from: Reached::Root,
            low: None,
            high: None,
        }];
        while let Some(frame) = stack.pop() {
            let pgno = frame.pgno;
            let info = self.claim_page(tree, pgno, frame.from)?;
            let place = || frame.from.describe(pgno);
            let want_leaf = frame.level == rec.depth;
            match (info.kind, want_leaf) {
                (Kind::Branch, false) | (Kind::Leaf, true) => {}
                (Kind::Branch, true) | (Kind::Leaf, false) => {
                    return Err(self.fault(
                        tree,
                        format!(
                            "{} is a {} page at level {} of a tree of depth {}: all leaves must be at depth {}",
                            place(),
                            if info.kind == Kind::Leaf { "leaf" } else { "branch" },
                            frame.level,
                            rec.depth,
                            rec.depth
                        ),
                    ))
                }
                _ => {
                    return Err(self.fault(
                        tree,
                        format!(
                            "{} has page flags 0x{:04x}, where a {} page belongs",
                            place(),
                            info.flags,
                            if want_leaf { "leaf" } else { "branch" }
                        ),
                    ))
                }
            }
            if let Some(fault) = info.fault {
                return Err(
                    self.fault(tree, format!("{}: {}", place(), fault.describe(self.psize)))
                );
            }
            let unsorted = match cmp {
                Cmp::Bytes => info.bytes_unsorted,
                Cmp::Int => info.int_unsorted,
            };
            if unsorted != u16::MAX {
                return Err(self.fault(
                    tree,
                    format!(
                        "{}: the key of node {unsorted} {}",
                        place(),
                        match cmp {
                            Cmp::Bytes => "is not above the key of the node before it",
                            Cmp::Int => "is not an integer key above the key of the node before it",
                        }
                    ),
                ));
            }
            let n = usize::from(info.nkeys);
            if info.kind == Kind::Branch {
                stats.branch_pages += 1;
                if n == 0 {
                    return Err(self.fault(
                        tree,
                        format!("{} is a branch page without children", place()),
                    ));
                }
                let children: Vec<Child> = self
                    .store
                    .children
                    .get(info.side..info.side + n)
                    .map(<[Child]>::to_vec)
                    .unwrap_or_default();
                if children.len() != n {
                    return Err(self.fault(tree, format!("{}: its summary is incomplete", place())));
                }
                if n >= 2 {
                    self.check_range(tree, &frame, &children[1].key, &children[n - 1].key, cmp)?;
                }
                for (i, child) in children.iter().enumerate().rev() {
                    stack.push(Frame {
                        pgno: child.pgno,
                        level: frame.level + 1,
                        from: Reached::Child {
                            parent: pgno,
                            node: i as u16,
                        },
                        low: if i == 0 { frame.low } else { Some(child.key) },
                        high: match children.get(i + 1) {
                            Some(next) => Some(next.key),
                            None => frame.high,
                        },
                    });
                }
            } else {
                stats.leaf_pages += 1;
                stats.entries += n as u64;
                let side = self.store.leaves.get(info.side).copied().ok_or_else(|| {
                    self.fault(tree, format!("{}: its summary is incomplete", place()))
                })?;
                if let (Some(first), Some(last)) = (&side.first, &side.last) {
                    self.check_range(tree, &frame, first, last, cmp)?;
                }
                let subs = self
                    .store
                    .subs
                    .get(side.subs.0..side.subs.1)
                    .unwrap_or_default();
                if let Some(sub) = subs.first() {
                    if role != Role::Main {
                        return Err(self.fault(
                            tree,
                            format!(
                                "{}: the node of key {} is a named database (F_SUBDATA), which only the main DB holds",
                                place(),
                                KeyPrefix::of(&sub.name).show()
                            ),
                        ));
                    }
                    out_subs.extend_from_slice(subs);
                }
                let bigs: Vec<Big> = self
                    .store
                    .bigs
                    .get(side.bigs.0..side.bigs.1)
                    .map(<[Big]>::to_vec)
                    .unwrap_or_default();
                for big in bigs {
                    stats.overflow_pages += self.overflow(tree, pgno, big)?;
                }
                if role == Role::Free {
                    leaves.push(pgno);
                }
            }
        }
        let counts = [
            ("branch pages", rec.branch_pages, stats.branch_pages),
            ("leaf pages", rec.leaf_pages, stats.leaf_pages),
            ("overflow pages", rec.overflow_pages, stats.overflow_pages),
            ("entries", rec.entries, stats.entries),
        ];
        for (what, recorded, found) in counts {
            if recorded != found {
                return Err(self.fault(
                    tree,
                    format!(
                        "its record says {} {what}, the tree has {}",
                        thousands(recorded),
                        thousands(found)
                    ),
                ));
            }
        }
        Ok(TreeOut {
            stats,
            subs: out_subs,
            leaves,
        })
    }

    /// The keys of a page lie between the separators its parent gives it.
    fn check_range(
        &self,
        tree: u16,
        frame: &Frame,
        first: &KeyPrefix,
        last: &KeyPrefix,
        cmp: Cmp,
    ) -> Result<()> {
        let place = || frame.from.describe(frame.pgno);
        if let Some(low) = &frame.low {
            if compare(first, low, cmp) == Some(Ordering::Less) {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} starts with key {}, below the separator {} its parent gives it",
                        place(),
                        first.show(),
                        low.show()
                    ),
                ));
            }
        }
        if let Some(high) = &frame.high {
            if matches!(
                compare(last, high, cmp),
                Some(Ordering::Greater | Ordering::Equal)
            ) {
                return Err(self.fault(
                    tree,
                    format!(
                        "{} ends with key {}, not below the separator {} of the next page",
                        place(),
                        last.show(),
                        high.show()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the overflow run of a value and claims its pages; returns its length in pages.
    fn overflow(&mut self, tree: u16, leaf: u64, big: Big) -> Result<u64> {
        let start = big.pgno;
        let from = Reached::Value {
            leaf,
            node: big.node,
        };
        let info = self.claim_page(tree, start, from)?;
        let place = || from.describe(start);
        if info.kind != Kind::Overflow {
            return Err(self.fault(
                tree,
                format!(
                    "{} has page flags 0x{:04x}, not an overflow page's",
                    place(),
                    info.flags
                ),
            ));
        }
        let pages = u64::from(info.ov_pages);
        let end = start.saturating_add(pages);
        if pages == 0 {
            return Err(self.fault(tree, format!("{} says its run has 0 pages", place())));
        }
        if end > self.file_pages || end > self.last_pg + 1 {
            return Err(self.fault(
                tree,
                format!(
                    "{} starts a run of {} pages, which does not fit in the file ({} whole pages) and the snapshot ({} pages)",
                    place(),
                    thousands(pages),
                    thousands(self.file_pages),
                    thousands(self.last_pg + 1)
                ),
            ));
        }
        if u64::from(big.size) + PAGE_HEADER as u64 > pages * self.psize as u64 {
            return Err(self.fault(
                tree,
                format!(
                    "{} holds a value of {} bytes, which does not fit in its run of {} page(s)",
                    place(),
                    thousands(u64::from(big.size)),
                    pages
                ),
            ));
        }
        for pgno in start + 1..end {
            self.claim(tree, pgno, Reached::Run { start })?;
        }
        Ok(pages)
    }
}
