//! hannoy-engine: an approximate-nearest-neighbour index (HNSW) stored in LMDB.
//!
//! One LMDB environment holds up to 65,536 independent indexes. Items are added and deleted
//! with cheap writes; `build` inserts what changed into the graph in parallel, in one write
//! transaction. Searches read the graph straight from the memory map.

pub mod build;
mod copy;
mod dbs;
mod disk_wait;
pub mod error;
mod fault;
mod file;
mod graph;
pub mod header;
mod items;
pub mod kernels;
mod keys;
mod level0;
mod links;
pub mod metric;
mod quant;
mod records;
#[doc(hidden)]
pub mod scratch;
pub mod search;
mod space;
mod store;
mod sweep;
mod verify;
mod view;
mod warm;

pub use build::{BuildOptions, BuildStats, Control, Progress};
pub use copy::CopyStats;
pub use error::{Error, Result};
pub use items::IndexInfo;
pub use metric::MetricKind;
pub use quant::Quantization;
pub use search::{exact_scan_limit, BatchResult, Neighbor, SearchOptions, WALK_TO_SCAN};
pub use store::{Database, OpenOptions, DEFAULT_MAP_SIZE};
pub use verify::{IndexReport, VerifyReport};
pub use warm::{lower_thread_priority, WarmStats};

#[cfg(test)]
mod corrupt_tests;
