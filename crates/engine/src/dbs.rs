//! The LMDB databases an environment holds, and the transaction type that reads them. The
//! lowest layer of the store: what the per-commit views and the record helpers read through,
//! without depending on how the environment is opened or shared (`store`).

use heed::types::Bytes;
use heed::{RoTxn, WithoutTls};

pub(crate) type Db = heed::Database<'static, Bytes, Bytes>;
pub(crate) type ReadTxn<'e> = RoTxn<'e, WithoutTls>;

/// The four databases of an environment (`keys` says what each one's keys are).
pub(crate) struct Dbs {
    /// Per index: its header, quantizer and item sets.
    pub(crate) meta: Db,
    /// Per item: its stored vector.
    pub(crate) nodes: Db,
    /// Per node: its level-0 links (a quantized index's code in front).
    pub(crate) links: Db,
    /// Per node and level above 0: its links there.
    pub(crate) upper: Db,
}
