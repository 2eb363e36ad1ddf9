//! The HNSW primitives shared by the build (an in-memory graph over the memory map) and the
//! searches (a graph read from LMDB): the beam search on one level and neighbour selection.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::Result;
use crate::space::Scorer;

/// A graph the beam search can walk. Node ids are whatever the implementation uses (item ids for
/// the stored graph, dense positions for the build).
pub(crate) trait Graph {
    /// The stored vector of `node`, or `None` when it has none (skipped).
    fn vector(&self, node: u32) -> Result<Option<&[u8]>>;
    /// Writes the neighbours of `node` on `level` into `out` (cleared first).
    fn neighbors(&self, node: u32, level: u8, out: &mut Vec<u32>) -> Result<()>;
    /// Hints that `vector(node)` comes soon (a graph that looks vectors up can fetch the entry).
    fn prefetch_entry(&self, _node: u32) {}
    /// Hints that `neighbors(node, level)` comes soon.
    fn prefetch_links(&self, _node: u32, _level: u8) {}
    /// Hints that `vector(node)` comes soon for each of `nodes`, whose pages may still be on the
    /// disk: a graph over a memory map can start reading them all at once. Returns whether the
    /// walk should time those lookups and report them (`note_lookups`).
    fn page_in(&self, _nodes: &[u32]) -> bool {
        false
    }
    /// How long looking up and scoring the vectors of `count` new neighbours took.
    fn note_lookups(&self, _count: usize, _nanos: u64) {}
}

/// Remembers which nodes a search has seen.
pub(crate) trait Visited {
    /// Marks `node`; returns whether it was new.
    fn insert(&mut self, node: u32) -> bool;

    /// Marks each of `nodes` and writes those that were new into `out` (cleared first), in
    /// their order.
    fn keep_new(&mut self, nodes: &[u32], out: &mut Vec<u32>) {
        out.clear();
        out.extend(nodes.iter().copied().filter(|&node| self.insert(node)));
    }
}

/// A visited set over dense positions `0..n`: one bit per node (100,000 nodes take 12.5 KB, which
/// stays in the CPU's first-level cache), cleared by zeroing only the words a search touched.
#[derive(Default)]
pub(crate) struct Marks {
    words: Vec<u64>,
    touched: Vec<u32>,
}

impl Marks {
    /// Empties the set and makes room for nodes `0..n`.
    pub(crate) fn reset(&mut self, n: usize) {
        if self.touched.len() > self.words.len() / 8 {
            self.words.fill(0);
        } else {
            for &node in &self.touched {
                if let Some(word) = self.words.get_mut(node as usize >> 6) {
                    *word = 0;
                }
            }
        }
        self.touched.clear();
        let needed = n.div_ceil(64);
        if self.words.len() < needed {
            self.words.resize(needed, 0);
        }
    }
}

impl Visited for Marks {
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let bit = 1u64 << (node & 63);
        match self.words.get_mut(node as usize >> 6) {
            Some(word) if *word & bit == 0 => {
                *word |= bit;
                self.touched.push(node);
                true
            }
            _ => false,
        }
    }

    /// Without a branch on whether a node is new: every node in range is written to `out` (and
    /// to `touched`) and the count of kept ones moves on only for new ones. About half the
    /// neighbours of a hop were seen before, at random, so a branch on it is mispredicted about
    /// every other time.
    #[inline]
    fn keep_new(&mut self, nodes: &[u32], out: &mut Vec<u32>) {
        out.clear();
        out.resize(nodes.len(), 0);
        let start = self.touched.len();
        self.touched.resize(start + nodes.len(), 0);
        let mut kept = 0;
        for &node in nodes {
            let bit = 1u64 << (node & 63);
            let Some(word) = self.words.get_mut(node as usize >> 6) else {
                continue;
            };
            let new = *word & bit == 0;
            *word |= bit;
            out[kept] = node;
            self.touched[start + kept] = node;
            kept += usize::from(new);
        }
        out.truncate(kept);
        self.touched.truncate(start + kept);
    }
}

/// A fast hasher for u32 ids (Fibonacci hashing); ids are not attacker-chosen keys of a
/// long-lived table, only a search's visited set and a view's upper-level links.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (n as u64 ^ 0x5555_5555).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        // Fold the well-mixed high half down: tables index buckets by the low bits.
        let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
}

pub(crate) type IdSet = std::collections::HashSet<u32, BuildHasherDefault<IdHasher>>;

impl Visited for IdSet {
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        std::collections::HashSet::insert(self, node)
    }
}

/// A distance with a total order (NaN never occurs: inputs are finite and metrics clamp).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dist(pub f32);

impl Eq for Dist {}
impl PartialOrd for Dist {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dist {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Hints the CPU to load the cache lines of `bytes` (a vector about to be scored).
#[inline(always)]
pub(crate) fn prefetch(bytes: &[u8]) {
    prefetch_raw(bytes.as_ptr(), bytes.len());
}

/// Vectors of at most this many cache lines (1 KiB: 256 floats) are prefetched whole.
const WHOLE_LINES: usize = 16;

/// Of a longer vector, only this many first lines are prefetched with the rest of its hop's
/// vectors; [`prefetch_tail`] asks for the others just before it is scored.
const HEAD_LINES: usize = 2;

/// The beam search asks for the tail of a long vector this many vectors before it scores it.
const TAIL_AHEAD: usize = 3;

/// Hints the CPU to load the `len` bytes at `p`: all their cache lines when they span at most
/// `WHOLE_LINES`, else the first `HEAD_LINES`. Asking for all the lines of a hop's vectors at
/// once lets their loads overlap, where the hardware prefetcher would only start after the first
/// misses. Long vectors are different: prefetching all of their lines at once (24 at 384
/// dimensions, 20 vectors a hop) stalls the walk until the CPU has room for more loads in
/// flight, so their other lines are asked for a few vectors ahead of the scoring
/// ([`prefetch_tail`]). Measured on 100k vectors, one thread, µs a query at ef 80, all lines
/// against head lines only: 128-d the same (all lines), 384-d 291 → 270, 768-d 564-589 →
/// 445-452. Takes a pointer, not a slice, so that memory other threads write (atomics) can be
/// prefetched without making a reference to it.
#[inline(always)]
pub(crate) fn prefetch_raw(p: *const u8, len: usize) {
    let (first, lines) = lines_of(p, len);
    let head = if lines > WHOLE_LINES {
        HEAD_LINES
    } else {
        lines
    };
    prefetch_lines(first, 0..head);
}

/// Hints the CPU to load the lines of a long vector that [`prefetch`] left out (none of a short
/// one). The beam search calls it `TAIL_AHEAD` vectors before it scores a vector, so that the
/// lines arrive about when the scoring reaches them, instead of waiting for the hardware
/// prefetcher to pick up the vector's order. Measured on 384-d vectors, one thread, µs a query
/// (alternating runs): 100k at ef 25 72.6-75.8 → 58.6-59.8, 600k at ef 64 187-192 → 157-159;
/// on 60k 768-d vectors (the 384-d set beside a permuted copy) at ef 80 186-194 → 171-181.
/// A hop's first `TAIL_AHEAD` vectors are left to the hardware prefetcher: asking for their
/// tails too before the scoring starts measured no faster (63.0-68.5 against 62.7-64.3 µs).
#[inline(always)]
fn prefetch_tail(bytes: &[u8]) {
    let (first, lines) = lines_of(bytes.as_ptr(), bytes.len());
    if lines > WHOLE_LINES {
        prefetch_lines(first, HEAD_LINES..lines);
    }
}

/// Of a vector read alone, at most this many lines (2 KiB: 512 floats) are prefetched: the
/// hardware prefetcher follows the rest, and more would fill the CPU's loads in flight.
const ALONE_LINES: usize = 2 * WHOLE_LINES;

/// Hints the CPU to load the `len` bytes at `p`, up to `ALONE_LINES` lines: for a vector read
/// alone (rescoring) rather than with a hop's others. Measured at 384 dimensions (25 lines)
/// only. Takes a pointer, as [`prefetch_raw`] does.
#[inline(always)]
pub(crate) fn prefetch_whole(p: *const u8, len: usize) {
    let (first, lines) = lines_of(p, len);
    prefetch_lines(first, 0..lines.min(ALONE_LINES));
}

/// Whether `bytes` may span more than `WHOLE_LINES` lines (so [`prefetch`] leaves a tail).
#[inline(always)]
fn has_tail(bytes: &[u8]) -> bool {
    bytes.len() + LINE - 1 > WHOLE_LINES * LINE
}

const LINE: usize = 64;

/// The first cache line of the `len` bytes at `p` and how many lines they span.
#[inline(always)]
fn lines_of(p: *const u8, len: usize) -> (*const u8, usize) {
    let skew = p as usize % LINE;
    (p.wrapping_sub(skew), (skew + len).div_ceil(LINE))
}

/// Hints the CPU to load the cache lines `lines` counted from the line at `first`.
#[inline(always)]
fn prefetch_lines(first: *const u8, lines: std::ops::Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    for line in lines {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching is a hint that never faults, whatever the address; SSE is part
        // of the x86-64 baseline. `wrapping_add` computes the line addresses without asserting
        // anything about the allocation, and nothing is read.
        unsafe { _mm_prefetch(first.wrapping_add(line * LINE) as *const i8, _MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (first, lines);
}

/// Asks the kernel to read the pages of `bytes` (in the memory map) ahead, without waiting: a
/// page fault on them later finds them read, and many such reads run in parallel.
pub(crate) fn will_need(bytes: &[u8]) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
        let start = bytes.as_ptr() as usize & !(PAGE - 1);
        let end = bytes.as_ptr() as usize + bytes.len();
        // SAFETY: madvise only gives the kernel a hint about a range of this process's address
        // space; MADV_WILLNEED never changes memory contents, and a range that is not mapped
        // makes it fail with ENOMEM, which is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_WILLNEED);
        }
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

/// A scored node: (distance to the query, node).
pub(crate) type Scored = (Dist, u32);

/// A scored node packed into one integer that orders like `Scored`: the distance's bits, mapped
/// so that unsigned order is `f32::total_cmp` order, above the node. The search's heaps compare
/// these with one instruction instead of a float order and a tie-break.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64);

impl Key {
    #[inline]
    fn new(dist: Dist, node: u32) -> Key {
        Key(((Key::order(dist) as u64) << 32) | node as u64)
    }

    /// The distance as an unsigned integer in `total_cmp` order: negatives (sign bit set) count
    /// down from zero, the rest count up from 2^31.
    #[inline]
    fn order(dist: Dist) -> u32 {
        let bits = dist.0.to_bits();
        if bits >> 31 == 1 {
            !bits
        } else {
            bits | 0x8000_0000
        }
    }

    /// The distance part, comparable with `order`.
    #[inline]
    fn dist_order(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn scored(self) -> Scored {
        let order = self.dist_order();
        let bits = if order >> 31 == 1 {
            order & 0x7fff_ffff
        } else {
            !order
        };
        (Dist(f32::from_bits(bits)), self.0 as u32)
    }
}

/// Beam search on one level from `entries`: returns up to `ef` nodes for which `accept` holds,
/// nearest first. Rejected nodes are still walked through, so a filter narrows the answer, not
/// the graph.
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_level<S: Scorer, G: Graph, V: Visited>(
    graph: &G,
    query: &S,
    entries: &[Scored],
    level: u8,
    ef: usize,
    visited: &mut V,
    accept: &dyn Fn(u32) -> bool,
    scratch: &mut Vec<u32>,
) -> Result<Vec<Scored>> {
    // Capacities are hints: a huge `ef` grows the heaps as they fill instead of up front.
    let mut candidates: BinaryHeap<Reverse<Key>> =
        BinaryHeap::with_capacity(ef.saturating_mul(4).min(1 << 14));
    let mut results: BinaryHeap<Key> = BinaryHeap::with_capacity(ef.min(1 << 12) + 1);
    for &(dist, node) in entries {
        visited.insert(node);
        candidates.push(Reverse(Key::new(dist, node)));
        if accept(node) {
            results.push(Key::new(dist, node));
            if results.len() > ef {
                results.pop();
            }
        }
    }
    let mut fresh: Vec<u32> = Vec::with_capacity(64);
    let mut pending: Vec<(u32, &[u8])> = Vec::with_capacity(64);
    while let Some(Reverse(nearest)) = candidates.pop() {
        if results.len() >= ef
            && results
                .peek()
                .is_some_and(|worst| nearest.dist_order() > worst.dist_order())
        {
            break;
        }
        let node = nearest.0 as u32;
        // The next candidate is likely the nearest one left: start loading its links.
        if let Some(&Reverse(next)) = candidates.peek() {
            graph.prefetch_links(next.0 as u32, level);
        }
        graph.neighbors(node, level, scratch)?;
        // Three passes over the new neighbours, so their scattered memory loads overlap instead
        // of stalling one after the other: find them (and start loading where their vectors
        // are), find their vectors (and start loading those), then score them (loading the
        // rest of long vectors a few ahead).
        visited.keep_new(scratch, &mut fresh);
        for &next in &fresh {
            graph.prefetch_entry(next);
        }
        let started = graph.page_in(&fresh).then(std::time::Instant::now);
        pending.clear();
        for &next in &fresh {
            if let Some(vector) = graph.vector(next)? {
                prefetch(vector);
                pending.push((next, vector));
            }
        }
        // A graph's vectors are all alike long: the first tells whether they have tails.
        let tails = pending.first().is_some_and(|&(_, v)| has_tail(v));
        for (j, &(next, vector)) in pending.iter().enumerate() {
            if let Some(&(_, later)) = pending.get(j + TAIL_AHEAD).filter(|_| tails) {
                prefetch_tail(later);
            }
            let d = Dist(query.score(vector));
            let full = results.len() >= ef;
            if full
                && results
                    .peek()
                    .is_some_and(|worst| Key::order(d) >= worst.dist_order())
            {
                continue;
            }
            let key = Key::new(d, next);
            candidates.push(Reverse(key));
            if accept(next) {
                results.push(key);
                if results.len() > ef {
                    results.pop();
                }
            }
        }
        // Timed through the scoring: where the graph knows where the vectors are, finding them
        // reads nothing, and the page faults (if any) come when they are scored.
        if let Some(started) = started.filter(|_| !fresh.is_empty()) {
            graph.note_lookups(fresh.len(), started.elapsed().as_nanos() as u64);
        }
    }
    Ok(results
        .into_sorted_vec()
        .into_iter()
        .map(Key::scored)
        .collect())
}

/// The neighbour-selection heuristic of HNSW: walking `candidates` nearest first, keep one only
/// if it is no farther from the base node than from every neighbour already kept (relaxed by
/// `alpha`), up to `m`. `distance(a, b)` compares two candidates.
pub(crate) fn select_neighbors(
    candidates: &[Scored],
    m: usize,
    alpha: f32,
    distance: impl Fn(u32, u32) -> f32,
) -> Vec<Scored> {
    let mut kept: Vec<Scored> = Vec::with_capacity(m);
    for &(dist, node) in candidates {
        if kept.len() >= m {
            break;
        }
        if kept.iter().any(|&(_, k)| k == node) {
            continue;
        }
        // Vectors equal to the base (distance 0; for binary metrics, every vector with the
        // same bits) fill half the list at most: copies keeping only each other would close
        // off from the rest of the graph.
        if dist.0 <= 0.0 && kept.iter().filter(|&&(d, _)| d.0 <= 0.0).count() >= (m / 2).max(1) {
            continue;
        }
        // `>=`, not `>`: a candidate as far from a kept neighbour as from the base node stays.
        // Only exact ties differ, and equal vectors make them: with `>` and alpha 1, a node
        // with a twin keeps the twin alone, and the two form an island that a search entering
        // it cannot leave. Integer distances (binary metrics) tie often too: keeping ties
        // measured better recall there.
        if kept
            .iter()
            .all(|&(_, k)| alpha * distance(node, k) >= dist.0)
        {
            kept.push((dist, node));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Scorer;
    use std::cell::RefCell;
    use std::time::Duration;

    /// A path 0 - 1 - … - 7 whose values are found at once but are slow to score, as a value
    /// whose place is known but whose page is on the disk: the fault comes when it is read.
    struct SlowPages {
        values: Vec<[u8; 1]>,
        noted: RefCell<Vec<(usize, u64)>>,
    }

    impl Graph for SlowPages {
        fn vector(&self, node: u32) -> Result<Option<&[u8]>> {
            Ok(self.values.get(node as usize).map(|v| &v[..]))
        }
        fn neighbors(&self, node: u32, _level: u8, out: &mut Vec<u32>) -> Result<()> {
            out.clear();
            out.extend(
                [node.wrapping_sub(1), node + 1]
                    .into_iter()
                    .filter(|&n| n < 8),
            );
            Ok(())
        }
        fn page_in(&self, _nodes: &[u32]) -> bool {
            true
        }
        fn note_lookups(&self, count: usize, nanos: u64) {
            self.noted.borrow_mut().push((count, nanos));
        }
    }

    struct Faulting;

    impl Scorer for Faulting {
        fn score(&self, value: &[u8]) -> f32 {
            std::thread::sleep(Duration::from_micros(300));
            (7 - value[0]) as f32
        }
    }

    #[test]
    fn a_hop_is_timed_through_the_scoring_of_its_new_neighbours() {
        let graph = SlowPages {
            values: (0..8).map(|i| [i as u8]).collect(),
            noted: RefCell::new(Vec::new()),
        };
        let mut visited = IdSet::default();
        let found = search_level(
            &graph,
            &Faulting,
            &[(Dist(7.0), 0)],
            0,
            1,
            &mut visited,
            &|_| true,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(found.first().map(|&(_, n)| n), Some(7));
        let noted = graph.noted.borrow();
        assert!(!noted.is_empty());
        // Each new neighbour took at least its 300 µs to score: the timing must show it (a
        // walk that timed the finding only would see these hops as fast and stop reading ahead).
        for &(count, nanos) in noted.iter() {
            assert!(
                nanos / count as u64 >= 300_000,
                "{count} lookups in {nanos} ns"
            );
        }
    }

    #[test]
    fn keys_order_and_unpack_like_scored_pairs() {
        let dists = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-7,
            -0.0,
            0.0,
            1e-30,
            1e-7,
            0.5,
            1.0,
            2.0,
            1e30,
            f32::INFINITY,
        ];
        let mut pairs: Vec<Scored> = Vec::new();
        for (i, &d) in dists.iter().enumerate() {
            for node in [0, 7, u32::MAX] {
                pairs.push((Dist(d), node ^ i as u32));
            }
        }
        for &a in &pairs {
            let key = Key::new(a.0, a.1);
            let (d, node) = key.scored();
            assert_eq!((d.0.to_bits(), node), (a.0 .0.to_bits(), a.1));
            for &b in &pairs {
                let other = Key::new(b.0, b.1);
                assert_eq!(key.cmp(&other), a.cmp(&b), "{a:?} vs {b:?}");
                assert_eq!(
                    Key::order(a.0).cmp(&Key::order(b.0)),
                    a.0.cmp(&b.0),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn marks_keep_new_nodes_like_one_insert_at_a_time() {
        const N: u32 = 1 << 16;
        // Lists with repeats, nodes already seen, and nodes past the set's range (never new).
        let lists: [&[u32]; 5] = [
            &[3, 64, 3, 65, N + 999, 127],
            &[64, 0, 1, 2, 63, 0],
            &[],
            &[200, 201, N, 128, 3, N - 1],
            &[5, 5, 5],
        ];
        let mut marks = Marks::default();
        // Round 0 leaves few nodes marked, so the next reset zeroes the words of the touched
        // ones; round 1 marks many, so the reset after it zeroes every word.
        for round in 0..2 {
            marks.reset(N as usize);
            assert!(marks.touched.is_empty() && marks.words.iter().all(|&w| w == 0));
            let mut one_by_one = IdSet::default();
            let mut out = vec![42];
            for list in lists {
                marks.keep_new(list, &mut out);
                let expected: Vec<u32> = list
                    .iter()
                    .copied()
                    .filter(|&n| n < N && one_by_one.insert(n))
                    .collect();
                assert_eq!(out, expected, "round {round}, list {list:?}");
            }
            let mut touched = marks.touched.clone();
            touched.sort_unstable();
            let mut seen: Vec<u32> = one_by_one.iter().copied().collect();
            seen.sort_unstable();
            assert_eq!(touched, seen, "round {round}: touched is what was marked");
            for n in 0..N {
                let marked = marks.words[n as usize >> 6] & (1 << (n & 63)) != 0;
                assert_eq!(marked, one_by_one.contains(&n), "round {round}, node {n}");
            }
            if round == 1 {
                let mut many = Vec::new();
                marks.keep_new(&(0..N / 4).collect::<Vec<u32>>(), &mut many);
                assert!(marks.touched.len() > marks.words.len() / 8);
            }
        }
        marks.reset(N as usize);
        assert!(marks.touched.is_empty() && marks.words.iter().all(|&w| w == 0));
    }
}
