use super::layout::{
    F_BIGDATA, F_DUPDATA, NODE_HEADER, PAGE_HEADER, P_BRANCH, P_DIRTY, P_KEEP, P_LEAF, P_LOOSE,
    P_OVERFLOW,
};
use super::nodes::{node_at, node_count};
use super::read::{u16_at, u64_at};
use super::*;
use crate::metric::MetricKind;
use crate::scratch::ScratchDir;
use crate::store::{Database, OpenOptions};
use crate::{BuildOptions, Control, Progress};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// A seeded xorshift64.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn build(db: &Database) {
    build_index(db, 0);
}

fn build_index(db: &Database, index: u16) {
    let cancel = AtomicBool::new(false);
    let progress = |_: Progress| {};
    let control = Control {
        progress: &progress,
        cancel: &cancel,
    };
    db.build(index, &BuildOptions::default(), &control).unwrap();
}

/// Builds an index of `items` random vectors in `dir/env` over several transactions (adds in
/// batches, builds, deletes some and builds again, so the free-page DB has records), closes
/// the environment and returns the path of its `data.mdb`.
fn environment(dir: &ScratchDir, items: u32, dims: usize, seed: u64) -> PathBuf {
    let path = dir.path().join("env");
    let db = Database::open(&path, &OpenOptions::default()).unwrap();
    let mut rng = XorShift(seed);
    let batch = (items / 3).max(1);
    let mut start = 0;
    while start < items {
        let end = (start + batch).min(items);
        let ids: Vec<u32> = (start..end).collect();
        let vectors: Vec<f32> = (0..ids.len() * dims).map(|_| rng.unit()).collect();
        db.add_items(0, dims, MetricKind::Euclidean, &ids, &vectors)
            .unwrap();
        start = end;
    }
    build(&db);
    let gone: Vec<u32> = (0..items).step_by(7).collect();
    db.delete_items(0, &gone).unwrap();
    let vectors: Vec<f32> = (0..gone.len() * dims).map(|_| rng.unit()).collect();
    db.add_items(0, dims, MetricKind::Euclidean, &gone, &vectors)
        .unwrap();
    build(&db);
    drop(db);
    path.join("data.mdb")
}

/// Writes `bytes` as `dir/copies/data.mdb` and returns its path.
fn write_copy(dir: &ScratchDir, bytes: &[u8]) -> PathBuf {
    let copies = dir.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let path = copies.join("data.mdb");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn corrupt_message<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(Error::Corrupt(message)) => message,
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
}

fn flags_of(bytes: &[u8], psize: usize, pgno: u64) -> u16 {
    u16_at(bytes, pgno as usize * psize + 10).unwrap()
}

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_ne_bytes());
}

fn set_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

/// Pages reachable from the current snapshot whose base flags are `flags`, with at least
/// `min_keys` nodes (branch and leaf pages).
fn reachable(bytes: &[u8], owners: &[u16], psize: usize, flags: u16, min_keys: u16) -> Vec<u64> {
    (NUM_METAS..owners.len() as u64)
        .filter(|&p| owners[p as usize] != 0 && owners[p as usize] != FREE_MARK)
        .filter(|&p| flags_of(bytes, psize, p) & !(P_DIRTY | P_LOOSE | P_KEEP) == flags)
        .filter(|&p| {
            flags == P_OVERFLOW
                || node_count(&bytes[p as usize * psize..(p as usize + 1) * psize])
                    .is_ok_and(|(n, _)| n >= min_keys)
        })
        .collect()
}

fn node_offset(bytes: &[u8], psize: usize, pgno: u64, node: usize) -> usize {
    let base = pgno as usize * psize;
    base + usize::from(u16_at(bytes, base + PAGE_HEADER + 2 * node).unwrap())
}

fn database<'r>(report: &'r LmdbReport, name: &str) -> &'r TreeStats {
    report
        .trees
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no database {name} in {report:?}"))
}

#[test]
fn intact_environment_passes() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    assert!(check_size(&dir.path().join("missing").join("data.mdb"), false).is_ok());
    let data = environment(&dir, 3000, 8, 1);
    check_size(&data, false).unwrap();
    let report = check_structure(&data).unwrap();
    let names: Vec<&str> = report.databases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["links", "meta", "nodes", "upper"], "{report:?}");
    assert_eq!(database(&report, "nodes").entries, 3000);
    assert_eq!(database(&report, "links").entries, 3000);
    let meta = database(&report, "meta").entries;
    assert!((1..=3).contains(&meta), "{report:?}");
    let upper = database(&report, "upper").entries;
    assert!(upper > 50 && upper < 1500, "{report:?}");
    assert!(database(&report, "nodes").depth >= 2, "{report:?}");
    assert_eq!(report.trees[1].entries, 4, "{report:?}");
    assert!(
        report.trees[0].entries > 0,
        "no free-page records: {report:?}"
    );
    assert!(report.free_pages > 0, "{report:?}");
    assert_eq!(report.page_size, 4096);
    assert_eq!(report.file_bytes, std::fs::metadata(&data).unwrap().len());
    assert!(report.pages_checked + report.free_pages <= report.pages);
    assert!(report.txnid >= 5, "{report:?}");
    println!("{report:#?}");
}

#[test]
fn every_commit_of_a_changing_environment_passes() {
    // Many transactions that add, replace and delete (small and overflowing values), so
    // pages are freed, reused and the free-page DB grows and shrinks; the file is checked
    // after each one (no writer runs meanwhile).
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let path = dir.path().join("env");
    let db = Database::open(&path, &OpenOptions::default()).unwrap();
    let data = path.join("data.mdb");
    let mut rng = XorShift(10);
    let mut checked = 0;
    for (index, dims) in [(0u16, 16usize), (1, 700)] {
        for round in 0..12u32 {
            let ids: Vec<u32> = (0..400).map(|_| rng.below(3000) as u32).collect();
            let vectors: Vec<f32> = (0..ids.len() * dims).map(|_| rng.unit()).collect();
            db.add_items(index, dims, MetricKind::Euclidean, &ids, &vectors)
                .unwrap();
            check_size(&data, false).unwrap();
            check_structure(&data).unwrap();
            if round % 3 == 2 {
                let gone: Vec<u32> = (0..300).map(|_| rng.below(3000) as u32).collect();
                db.delete_items(index, &gone).unwrap();
                check_structure(&data).unwrap();
            }
            if round % 4 == 3 {
                build_index(&db, index);
            }
            let report = check_structure(&data).unwrap();
            check_size(&data, false).unwrap();
            checked += 1;
            if round == 11 {
                println!("{report:?}");
            }
        }
    }
    assert_eq!(checked, 24);
}

#[test]
fn intact_environment_with_overflow_values_passes() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    // 600 dimensions: 2,404-byte vectors, too big for a node of a 4 KiB page (400 would
    // still fit inline).
    let data = environment(&dir, 1500, 600, 2);
    check_size(&data, false).unwrap();
    let report = check_structure(&data).unwrap();
    let nodes = database(&report, "nodes");
    assert_eq!(nodes.entries, 1500);
    assert!(nodes.overflow_pages >= 1500, "{report:?}");
    assert!(report.pages_checked > 1500, "{report:?}");
    println!("{report:#?}");
}

#[test]
fn truncated_files_are_reported() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let data = environment(&dir, 3000, 8, 3);
    let bytes = std::fs::read(&data).unwrap();
    let (report, owners) = check_structure_inner(&data).unwrap();
    let psize = report.page_size;
    let len = bytes.len();
    assert_eq!(len % psize, 0);
    let mut cuts = vec![
        0,
        1,
        100,
        psize - 1,
        psize,
        psize + 200,
        2 * psize - 1,
        2 * psize,
        3 * psize,
        len / 2,
        len / 2 + 1,
        len - psize,
        len - psize + 1,
        len - 1,
    ];
    let mut rng = XorShift(33);
    cuts.extend((0..20).map(|_| rng.below(len as u64) as usize));
    for cut in cuts {
        let path = write_copy(&dir, &bytes[..cut]);
        // Cutting whole pages that are all free is what LMDB itself may leave behind.
        let only_free = cut % psize == 0
            && cut >= 2 * psize
            && (cut / psize..len / psize).all(|p| owners[p] == FREE_MARK);
        if only_free {
            check_size(&path, false).unwrap();
            check_structure(&path).unwrap();
            continue;
        }
        let message = corrupt_message(check_size(&path, false));
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
        assert!(message.starts_with("data.mdb is truncated"), "{message}");
        let message = corrupt_message(check_structure(&path));
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
    }
    let message = corrupt_message(check_size(&write_copy(&dir, &bytes[..len - psize]), false));
    println!("{message}");
    let message = corrupt_message(check_size(&write_copy(&dir, &bytes[..0]), false));
    println!("{message}");
}

#[test]
fn a_tail_of_free_pages_may_be_missing() {
    // LMDB does not write pages a transaction allocated and freed again: the file may end
    // before `last_pg` when the pages after its end are listed as free. Made here by listing
    // pages past the end in a free-page record of the current snapshot: raising `last_pg`
    // alone must be reported, with the pages listed it must pass.
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let data = environment(&dir, 3000, 8, 4);
    let bytes = std::fs::read(&data).unwrap();
    let (report, owners) = check_structure_inner(&data).unwrap();
    let psize = report.page_size;
    let metas = read_metas(&File::open(&data).unwrap(), bytes.len() as u64, "data.mdb").unwrap();
    let meta = metas.current;
    let meta_at = meta.slot as usize * psize;
    let file_pages = (bytes.len() / psize) as u64;
    assert_eq!(
        meta.last_pg + 1,
        file_pages,
        "the file has no missing tail already"
    );

    let mut raised = bytes.clone();
    set_u64(&mut raised, meta_at + 136, meta.last_pg + 2);
    let path = write_copy(&dir, &raised);
    let message = corrupt_message(check_size(&path, false));
    assert!(
        message.contains("truncated") && message.contains("not all free"),
        "{message}"
    );
    corrupt_message(check_structure(&path));

    // Find a free-page record stored inline whose list can take two more page numbers by
    // overwriting two listed ones: they become unlisted (unaccounted, which is allowed).
    let free_leaves = reachable(&bytes, &owners, psize, P_LEAF, 1)
        .into_iter()
        .filter(|&p| owners[p as usize] == FREE_TREE)
        .collect::<Vec<_>>();
    let mut patched = None;
    'find: for leaf in free_leaves {
        let page = &bytes[leaf as usize * psize..(leaf as usize + 1) * psize];
        let (n, upper) = node_count(page).unwrap();
        for i in 0..n {
            let node = node_at(page, i, upper, true).unwrap();
            if node.flags & F_BIGDATA != 0 || u64_at(node.data, 0).unwrap() < 2 {
                continue;
            }
            let data_at = node.data.as_ptr() as usize - page.as_ptr() as usize;
            let mut copy = raised.clone();
            let at = leaf as usize * psize + data_at;
            set_u64(&mut copy, at + 8, meta.last_pg + 2);
            set_u64(&mut copy, at + 16, meta.last_pg + 1);
            patched = Some(copy);
            break 'find;
        }
    }
    let patched = patched.expect("an inline free-page record with two pages");
    let path = write_copy(&dir, &patched);
    check_size(&path, false).unwrap();
    let report = check_structure(&path).unwrap();
    assert_eq!(report.pages, file_pages + 2);
}

#[test]
fn random_damage_never_panics() {
    for (dims, items, seed) in [(8usize, 3000u32, 5u64), (600, 600, 6)] {
        let dir = ScratchDir::new("hannoy-lmdb").unwrap();
        let data = environment(&dir, items, dims, seed);
        let bytes = std::fs::read(&data).unwrap();
        let (report, owners) = check_structure_inner(&data).unwrap();
        let psize = report.page_size;
        // Branch and leaf pages, and the first page of each overflow run (its header only).
        let mut tree_pages = reachable(&bytes, &owners, psize, P_BRANCH, 0);
        tree_pages.extend(reachable(&bytes, &owners, psize, P_LEAF, 0));
        let overflow_runs = reachable(&bytes, &owners, psize, P_OVERFLOW, 0);
        let mut rng = XorShift(seed * 7919 + 17);
        let (mut caught, mut runs) = (0, 0);
        for round in 0..600 {
            let mut copy = bytes.clone();
            let count = 1 + rng.below(8) as usize;
            let at = match round % 3 {
                // Anywhere in the file.
                0 => rng.below(bytes.len() as u64) as usize,
                // The meta pages.
                1 if round % 2 == 0 => rng.below(2 * psize as u64) as usize,
                // The header of an overflow run.
                2 if round % 5 == 0 && !overflow_runs.is_empty() => {
                    let page = overflow_runs[rng.below(overflow_runs.len() as u64) as usize];
                    page as usize * psize + rng.below(PAGE_HEADER as u64) as usize
                }
                // The header, node offsets or first nodes of a branch or leaf page.
                _ => {
                    let page = tree_pages[rng.below(tree_pages.len() as u64) as usize];
                    page as usize * psize + rng.below(96) as usize
                }
            };
            for b in copy.iter_mut().skip(at).take(count) {
                *b = rng.next() as u8;
            }
            if copy == bytes {
                continue;
            }
            let path = write_copy(&dir, &copy);
            let ahead = Leaves::find(&path, b"links", &[], &[0xff; 16]).map(|_| ());
            for result in [
                check_size(&path, false),
                check_structure(&path).map(|_| ()),
                ahead,
            ] {
                match result {
                    Ok(()) | Err(Error::Corrupt(_)) => {}
                    Err(e) => panic!("round {round}, {count} bytes at {at}: {e:?}"),
                }
            }
            runs += 1;
            if check_structure(&path).is_err() {
                caught += 1;
            }
        }
        println!("{dims} dimensions: {caught} of {runs} damaged copies reported");
        assert!(caught > runs / 4, "{caught} of {runs}");
    }
}

#[test]
fn targeted_damage_is_caught() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let data = environment(&dir, 3000, 8, 7);
    let bytes = std::fs::read(&data).unwrap();
    let (report, owners) = check_structure_inner(&data).unwrap();
    let psize = report.page_size;
    let branches = reachable(&bytes, &owners, psize, P_BRANCH, 3);
    let leaves = reachable(&bytes, &owners, psize, P_LEAF, 2);
    assert!(!branches.is_empty() && !leaves.is_empty());
    let check = |copy: &[u8], expected: &[&str]| {
        let path = write_copy(&dir, copy);
        let message = corrupt_message(check_structure(&path));
        for part in expected {
            assert!(message.contains(part), "expected '{part}' in: {message}");
        }
        println!("{message}");
        message
    };

    // A page's stored page number changed, on a branch page and on a leaf.
    for &page in [branches[0], leaves[leaves.len() / 2]].iter() {
        let mut copy = bytes.clone();
        set_u64(&mut copy, page as usize * psize, page + 1);
        check(&copy, &["stored page number", &format!("page {page}")]);
    }

    // mp_lower beyond mp_upper.
    let leaf = leaves[0];
    let mut copy = bytes.clone();
    let upper = u16_at(&bytes, leaf as usize * psize + 14).unwrap();
    set_u16(&mut copy, leaf as usize * psize + 12, upper + 2);
    check(&copy, &["free-space bounds", &format!("page {leaf}")]);

    // mp_upper beyond the page.
    let mut copy = bytes.clone();
    set_u16(&mut copy, leaf as usize * psize + 14, psize as u16 + 8);
    check(&copy, &["free-space bounds"]);

    // A node offset outside the node area.
    let mut copy = bytes.clone();
    set_u16(&mut copy, leaf as usize * psize + PAGE_HEADER, 20);
    check(&copy, &["node 0 is at offset 20"]);

    // A key size that runs past the page.
    let mut copy = bytes.clone();
    let node = node_offset(&bytes, psize, leaf, 0);
    set_u16(&mut copy, node + 6, 60000);
    check(&copy, &["runs past the end of the page"]);

    // A branch's child pointed past the end of the file.
    let branch = branches[0];
    let mut copy = bytes.clone();
    let node = node_offset(&bytes, psize, branch, 1);
    let far = report.pages + 1000;
    set_u16(&mut copy, node, far as u16);
    set_u16(&mut copy, node + 2, (far >> 16) as u16);
    set_u16(&mut copy, node + 4, (far >> 32) as u16);
    check(
        &copy,
        &["past the last page", &format!("branch page {branch}")],
    );

    // A branch's child pointed at a meta page.
    let mut copy = bytes.clone();
    set_u16(&mut copy, node, 1);
    set_u16(&mut copy, node + 2, 0);
    set_u16(&mut copy, node + 4, 0);
    check(&copy, &["is a meta page"]);

    // Two children of a branch pointing at the same page.
    let mut copy = bytes.clone();
    let first = node_offset(&bytes, psize, branch, 0);
    copy.copy_within(first..first + 6, node);
    check(&copy, &["second time"]);

    // Two children swapped: the keys of each are outside the separators.
    let mut copy = bytes.clone();
    let second = node_offset(&bytes, psize, branch, 2);
    let (a, b) = (
        bytes[node..node + 6].to_vec(),
        bytes[second..second + 6].to_vec(),
    );
    copy[node..node + 6].copy_from_slice(&b);
    copy[second..second + 6].copy_from_slice(&a);
    check(&copy, &["separator"]);

    // Two keys of a leaf swapped (their node offsets exchanged).
    let mut copy = bytes.clone();
    let ptrs = leaf as usize * psize + PAGE_HEADER;
    copy.copy_within(ptrs..ptrs + 2, ptrs + 2);
    copy[ptrs..ptrs + 2].copy_from_slice(&bytes[ptrs + 2..ptrs + 4]);
    check(&copy, &["the key of node 1 is not above"]);

    // A leaf turned into a branch page, and into an unknown page type.
    let mut copy = bytes.clone();
    set_u16(&mut copy, leaf as usize * psize + 10, P_BRANCH);
    check(&copy, &["branch page at level"]);
    let mut copy = bytes.clone();
    set_u16(&mut copy, leaf as usize * psize + 10, 0x0300);
    check(&copy, &["page flags 0x0300"]);

    // A leaf node flagged as sorted duplicates, or as a named database outside the main DB.
    let node = node_offset(&bytes, psize, leaf, 0);
    let mut copy = bytes.clone();
    set_u16(&mut copy, node + 4, F_DUPDATA);
    check(&copy, &["F_DUPDATA"]);

    // The record counts of the main DB, in the current meta page.
    let metas = read_metas(&File::open(&data).unwrap(), bytes.len() as u64, "data.mdb").unwrap();
    let meta_at = metas.current.slot as usize * psize;
    let mut copy = bytes.clone();
    set_u64(&mut copy, meta_at + 88 + 32, 5);
    check(&copy, &["the main DB", "5 entries"]);
    let mut copy = bytes.clone();
    set_u64(&mut copy, meta_at + 88 + 40, report.pages + 5);
    check(&copy, &["the main DB", "outside pages"]);
    let mut copy = bytes.clone();
    set_u16(&mut copy, meta_at + 88 + 6, 7);
    check(&copy, &["the main DB", "level"]);

    // A named database's record: its entry count.
    let main_root = metas.current.main.root;
    let main_leaf = &bytes[main_root as usize * psize..(main_root as usize + 1) * psize];
    let (n, upper) = node_count(main_leaf).unwrap();
    let node = (0..n)
        .map(|i| node_at(main_leaf, i, upper, true).unwrap())
        .find(|node| node.key == b"links")
        .unwrap();
    let at =
        main_root as usize * psize + (node.data.as_ptr() as usize - main_leaf.as_ptr() as usize);
    let mut copy = bytes.clone();
    set_u64(&mut copy, at + 32, 12345);
    check(&copy, &["database 'links'", "12,345 entries"]);

    // Damage inside a named database names it.
    let leaf_owner = owners[leaf as usize];
    let owner = owner_name(
        &[
            "the free-page DB".into(),
            "the main DB".into(),
            "database 'links'".into(),
            "database 'meta'".into(),
            "database 'nodes'".into(),
            "database 'upper'".into(),
        ],
        leaf_owner,
    );
    let mut copy = bytes.clone();
    set_u64(&mut copy, leaf as usize * psize, 3);
    check(&copy, &[&owner]);

    // The meta pages: one broken is reported by the full check (LMDB refuses such a file),
    // check_size still reads the other; both broken is not an LMDB file.
    for slot in 0..2 {
        let mut copy = bytes.clone();
        copy[slot * psize + 16] ^= 0xff;
        let path = write_copy(&dir, &copy);
        check_size(&path, false).unwrap();
        check(&copy, &[&format!("meta page {slot} is damaged"), "magic"]);
    }
    let mut copy = bytes.clone();
    copy[16] ^= 0xff;
    copy[psize + 16] ^= 0xff;
    let path = write_copy(&dir, &copy);
    let message = corrupt_message(check_size(&path, false));
    assert!(message.contains("not an LMDB file"), "{message}");
    check(&copy, &["not an LMDB file"]);
    // A meta page that says it is the other one, a bad version, a bad page size.
    for (at, value, expected) in [
        (0usize, 1u64, "says it is page 1"),
        (20, 7, "version 7"),
        (40, 1000, "page size of 1000"),
    ] {
        let mut copy = bytes.clone();
        copy[at..at + 4].copy_from_slice(&(value as u32).to_ne_bytes());
        check(&copy, &["meta page 0 is damaged", expected]);
    }
    // Meta page 0 records another power of two as the page size.
    let mut copy = bytes.clone();
    copy[40..44].copy_from_slice(&8192u32.to_ne_bytes());
    let path = write_copy(&dir, &copy);
    let message = corrupt_message(check_size(&path, false));
    assert!(message.contains("disagree on the page size"), "{message}");
    check(&copy, &["disagree on the page size", "8192"]);
}

#[test]
fn overflow_damage_is_caught() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let data = environment(&dir, 600, 600, 8);
    let bytes = std::fs::read(&data).unwrap();
    let (report, owners) = check_structure_inner(&data).unwrap();
    let psize = report.page_size;
    let runs = reachable(&bytes, &owners, psize, P_OVERFLOW, 0);
    assert!(runs.len() >= 600, "{}", runs.len());
    let run = runs[runs.len() / 2];
    let check = |copy: &[u8], expected: &str| {
        let message = corrupt_message(check_structure(&write_copy(&dir, copy)));
        assert!(
            message.contains(expected),
            "expected '{expected}' in: {message}"
        );
        assert!(message.contains("database 'nodes'"), "{message}");
        println!("{message}");
    };
    let mut copy = bytes.clone();
    set_u16(&mut copy, run as usize * psize + 10, P_LEAF);
    check(&copy, "not an overflow page");
    let mut copy = bytes.clone();
    copy[run as usize * psize + 12..run as usize * psize + 16]
        .copy_from_slice(&100_000u32.to_ne_bytes());
    check(&copy, "does not fit in the file");
    let mut copy = bytes.clone();
    copy[run as usize * psize + 12..run as usize * psize + 16].copy_from_slice(&0u32.to_ne_bytes());
    check(&copy, "its run has 0 pages");
    let mut copy = bytes.clone();
    set_u64(&mut copy, run as usize * psize, run + 1);
    check(&copy, "stored page number");
    // A value size too big for its run: find the leaf node that points at `run`.
    let leaves = reachable(&bytes, &owners, psize, P_LEAF, 1);
    let mut done = false;
    for leaf in leaves {
        let page = &bytes[leaf as usize * psize..(leaf as usize + 1) * psize];
        let (n, upper) = node_count(page).unwrap();
        for i in 0..n {
            let node = node_at(page, i, upper, true).unwrap();
            if node.flags & F_BIGDATA != 0 && u64_at(node.data, 0) == Some(run) {
                let at = node_offset(&bytes, psize, leaf, i as usize);
                let mut copy = bytes.clone();
                set_u16(&mut copy, at + 2, 1);
                check(&copy, "does not fit in its run");
                let mut copy = bytes.clone();
                let other = runs[0];
                let data = at + NODE_HEADER + node.key.len();
                set_u64(&mut copy, data, other);
                check(&copy, "second time");
                done = true;
            }
        }
    }
    assert!(done);
}

/// `cargo test --release -p hannoy-engine file::tests::speed -- --ignored --nocapture`
#[test]
#[ignore]
fn speed() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let path = dir.path().join("env");
    let db = Database::open(&path, &OpenOptions::default()).unwrap();
    let mut rng = XorShift(9);
    let (items, dims) = (100_000u32, 50usize);
    let ids: Vec<u32> = (0..items).collect();
    let vectors: Vec<f32> = (0..items as usize * dims).map(|_| rng.unit()).collect();
    db.add_items(0, dims, MetricKind::Euclidean, &ids, &vectors)
        .unwrap();
    build(&db);
    drop(db);
    let data = path.join("data.mdb");
    let started = std::time::Instant::now();
    check_size(&data, false).unwrap();
    let size = started.elapsed();
    let mut best = std::time::Duration::MAX;
    let mut report = None;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        report = Some(check_structure(&data).unwrap());
        best = best.min(started.elapsed());
    }
    let report = report.unwrap();
    println!(
        "{} bytes, {} pages checked: check_size {size:?}, check_structure best of 5 {best:?}\n{report:#?}",
        report.file_bytes, report.pages_checked
    );
}

/// The keys of leaf page `pgno`.
fn leaf_keys(bytes: &[u8], psize: usize, pgno: u64) -> Vec<Vec<u8>> {
    let page = &bytes[pgno as usize * psize..(pgno as usize + 1) * psize];
    let (count, upper) = node_count(page).unwrap();
    (0..count)
        .map(|i| node_at(page, i, upper, true).unwrap().key.to_vec())
        .collect()
}

#[test]
fn the_leaves_read_ahead_are_those_holding_the_range() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let path = dir.path().join("env");
    let db = Database::open(&path, &OpenOptions::default()).unwrap();
    let mut rng = XorShift(11);
    for (index, items) in [(0u16, 3000u32), (1, 2000), (2, 1)] {
        let ids: Vec<u32> = (0..items).collect();
        let vectors: Vec<f32> = (0..items as usize * 8).map(|_| rng.unit()).collect();
        db.add_items(index, 8, MetricKind::Euclidean, &ids, &vectors)
            .unwrap();
        build_index(&db, index);
    }
    drop(db);
    let data = path.join("data.mdb");
    let bytes = std::fs::read(&data).unwrap();
    let (report, owners) = check_structure_inner(&data).unwrap();
    let psize = report.page_size;
    let leaves = reachable(&bytes, &owners, psize, P_LEAF, 0);
    let names: Vec<&str> = report.databases.iter().map(|(n, _)| n.as_str()).collect();
    let found = |name: &str, start: &[u8], end: &[u8]| -> Vec<u64> {
        Leaves::find(&data, name.as_bytes(), start, end)
            .unwrap()
            .leaves
    };
    for name in ["links", "nodes", "upper"] {
        // Tree ids: the free-page DB, the main DB, then the named databases in key order.
        let tree = 3 + names.iter().position(|&n| n == name).unwrap() as u16;
        let mut all: Vec<u64> = leaves
            .iter()
            .copied()
            .filter(|&p| owners[p as usize] == tree)
            .collect();
        assert!(all.len() > 3, "{name}: {} leaves", all.len());
        let mut everything = found(name, &[], &[0xff; 16]);
        // In key order: the first keys of the leaves ascend.
        let firsts: Vec<Vec<u8>> = everything
            .iter()
            .map(|&p| leaf_keys(&bytes, psize, p)[0].clone())
            .collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{name}");
        everything.sort_unstable();
        all.sort_unstable();
        assert_eq!(everything, all, "{name}");
        let mut union = Vec::new();
        for index in 0..3u16 {
            let (start, end) = crate::keys::node_range(index);
            let mine = found(name, &start, &end);
            assert!(mine.len() < all.len(), "{name} {index}");
            // Every leaf holding a key of the index is among them, and each of them holds a
            // key of the range or borders it (a leaf's bounds come from its neighbours' keys).
            let mut holding = 0;
            for &p in &all {
                let holds = leaf_keys(&bytes, psize, p)
                    .iter()
                    .any(|k| k[..] >= start[..] && k[..] < end[..]);
                if holds {
                    holding += 1;
                    assert!(mine.contains(&p), "{name} {index}: leaf {p}");
                }
            }
            assert!(
                mine.len() <= holding + 2,
                "{name} {index}: {} of {holding}",
                mine.len()
            );
            union.extend(mine);
        }
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, all, "{name}");
    }
    assert!(found("missing", &[], &[0xff; 16]).is_empty());
    // An index with no records in the range of another: nothing is read for index 9.
    let (start, end) = crate::keys::node_range(9);
    assert!(found("links", &start, &end).len() <= 1);
}

#[test]
fn a_pass_keeps_its_reads_a_window_ahead() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    let data = environment(&dir, 3000, 8, 3);
    let mut leaves = Leaves::find(&data, b"nodes", &[], &[0xff; 16]).unwrap();
    let count = leaves.leaves.len();
    assert!(count > 10, "{count}");
    // A fake list of many leaves (the real pages repeated): only how far it asks matters.
    leaves.leaves = leaves.leaves.iter().copied().cycle().take(10_000).collect();
    let window = leaves.window();
    assert_eq!(window * leaves.page_size(), 8 << 20, "8 MiB of pages");
    for passed in (0..12_000).step_by(97) {
        leaves.keep_ahead(passed);
        let want = (passed + window).min(10_000);
        assert!(leaves.advised >= want, "{passed}: {}", leaves.advised);
        assert!(
            leaves.advised <= (want + window / 2).min(10_000),
            "{passed}: {}",
            leaves.advised
        );
    }
}

#[test]
fn the_read_ahead_reports_damage_to_the_trees_it_walks() {
    let dir = ScratchDir::new("hannoy-lmdb").unwrap();
    // 300-d vectors, three to a leaf: the vectors' tree is at least three levels deep.
    let data = environment(&dir, 3000, 300, 9);
    let bytes = std::fs::read(&data).unwrap();
    let report = check_structure(&data).unwrap();
    assert!(database(&report, "nodes").depth >= 3, "{report:?}");
    let psize = report.page_size;
    let all = |path: &std::path::Path, name: &[u8]| Leaves::find(path, name, &[], &[0xff; 16]);
    // Intact, at depth 3: every leaf once, and a range's leaves hold it.
    let leaves = all(&data, b"nodes").unwrap().leaves;
    assert_eq!(leaves.len() as u64, database(&report, "nodes").leaf_pages);
    let (start, end) = crate::keys::node_range(0);
    assert_eq!(
        Leaves::find(&data, b"nodes", &start, &end).unwrap().leaves,
        leaves
    );
    let (start, end) = crate::keys::node_range(1);
    assert!(
        Leaves::find(&data, b"nodes", &start, &end)
            .unwrap()
            .leaves
            .len()
            <= 1
    );

    // The record of 'nodes' in the main DB (a single leaf page).
    let metas = read_metas(&File::open(&data).unwrap(), bytes.len() as u64, "data.mdb").unwrap();
    let main_root = metas.current.main.root as usize;
    let main_leaf = &bytes[main_root * psize..(main_root + 1) * psize];
    let (n, upper) = node_count(main_leaf).unwrap();
    let node = (0..n)
        .map(|i| node_at(main_leaf, i, upper, true).unwrap())
        .find(|node| node.key == b"nodes")
        .unwrap();
    let rec = main_root * psize + (node.data.as_ptr() as usize - main_leaf.as_ptr() as usize);
    let root = u64_at(&bytes, rec + 40).unwrap();
    let damaged = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut copy = bytes.clone();
        change(&mut copy);
        let path = write_copy(&dir, &copy);
        all(&path, b"nodes").map(|l| l.leaves.len())
    };
    let corrupt = |result: Result<usize>, what: &str| match result {
        Err(Error::Corrupt(_)) => {}
        other => panic!("{what}: {other:?}"),
    };
    // A root past the end of the file, at the largest page number, or a leaf.
    corrupt(
        damaged(&|c| set_u64(c, rec + 40, report.pages + 10)),
        "root past the end",
    );
    corrupt(
        damaged(&|c| set_u64(c, rec + 40, u64::MAX - 1)),
        "root at u64::MAX - 1",
    );
    corrupt(
        damaged(&|c| set_u64(c, rec + 40, leaves[0])),
        "root is a leaf",
    );
    // Deeper than LMDB allows, or than the tree is.
    corrupt(damaged(&|c| set_u16(c, rec + 6, 40)), "depth 40");
    corrupt(damaged(&|c| set_u16(c, rec + 6, 6)), "depth 6");
    // A branch page count far above the file's, with the root's children all pointing back at
    // the root: each level would list ~250 times the last without the bounds.
    let loops = |c: &mut Vec<u8>| {
        set_u64(c, rec + 8, u64::MAX / 2);
        set_u16(c, rec + 6, 32);
        let page = &c[root as usize * psize..(root as usize + 1) * psize].to_vec();
        let (count, _) = node_count(page).unwrap();
        for i in 0..count as usize {
            let at = node_offset(c, psize, root, i);
            // lo, hi, flags: the child's page number, 48 bits
            set_u16(c, at, (root & 0xffff) as u16);
            set_u16(c, at + 2, (root >> 16 & 0xffff) as u16);
            set_u16(c, at + 4, (root >> 32 & 0xffff) as u16);
        }
    };
    corrupt(damaged(&loops), "a root whose children are itself");
    // A branch page's own number wrong (a torn or reused page).
    corrupt(
        damaged(&|c| set_u64(c, root as usize * psize, root + 1)),
        "page number",
    );
}
