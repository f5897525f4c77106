//! What the test suites and fuzz targets need from inside the engine, behind
//! the off-by-default `testing` feature, so that they share one copy of it.
//!
//! Enable it only from dev-dependencies (`chromatica = { workspace = true,
//! features = ["testing"] }`) or from a fuzz crate: nothing here is part of
//! the library's stable surface, and a normal build does not contain it.
//!
//! - [`MemStorage`]: the in-memory [`Storage`](crate::storage::Storage) that
//!   keeps apart what was written from what is durable, so a test can crash
//!   it at any point ([`MemStorage::crash`], [`MemStorage::crash_at_sync`])
//!   or fail any write or sync ([`MemStorage::fail_at`]).
//! - [`rng`]: the one deterministic PRNG of the tests (SplitMix64).
//! - [`data`]: deterministic vectors (clustered, or a fixed stream) and records.
//! - [`files`]: small `.npy`/`.ivecs` writers and readers, written apart
//!   from the engine's own, and a directory's contents.
//! - [`reference`]: brute-force answers to check search against (exact k
//!   nearest, recall, distances within a tolerance).
//! - [`model`]: the reference model of a sequence of writes, random
//!   workloads over it, and checks of what a directory holds after them.
//! - [`layout`]: where the checksums and shape fields of every file kind lie.
//! - [`repair`]: recomputes those checksums after a byte was changed on
//!   purpose, so a corruption reaches the checks behind them.
//! - [`tiny`]: genuine tiny indexes in a `MemStorage`, and their files.
//! - [`IndexInternals`], [`SnapshotInternals`]: an index over any storage,
//!   and what a snapshot is made of.
//! - [`format`], [`storage`], [`quantizer`], [`read`], [`write`], … : the
//!   engine's modules, re-exported under the paths they have inside.

pub mod data;
#[cfg(feature = "object-store")]
pub mod faulty_store;
pub mod files;
mod internals;
pub mod layout;
pub mod model;
pub mod moto;
pub mod reference;
pub mod repair;
pub mod rng;
pub mod tiny;

pub use crate::storage::MemStorage;
pub use internals::{FaissInternals, IndexInternals, SnapshotInternals};
pub use rng::Rng;

// The engine's inside, under the paths it has in the crate, for the test
// suites, the benchmarks and the fuzz targets. Not part of the stable API.

/// The distance kernels (dot products, squared L2, matrix products).
pub mod distance {
    pub use crate::distance::*;
}
/// The on-disk formats: file headers, the manifest, quantizer, segment and
/// tombstone files, and the file names.
pub mod format {
    pub use crate::format::*;
}
/// The crate's file helpers: no-follow opens, the one memory map, atomic writes.
pub mod fsutil {
    pub use crate::fsutil::*;
}
/// The checks every input vector passes before it is written.
pub mod input {
    pub use crate::input::*;
}
/// The quantizers: coarse k-means, product quantization, code packing.
pub mod quantizer {
    pub use crate::quantizer::*;
}
/// The read path: snapshots, search, the fast scan and the top-k heap.
pub mod read {
    pub use crate::read::*;
}
/// Where the files of an index live: the file system or memory.
pub mod storage {
    pub use crate::storage::*;
}
/// The full check of an index directory.
pub mod verify {
    pub use crate::verify::*;
}
/// The write path: commits of segments, quantizers and tombstones.
pub mod write {
    pub use crate::write::*;
}
/// The colour internals beside the public [`crate::color`]: exact and
/// entropic EMD, the query sharpening and the swatch layout.
pub mod color {
    #[cfg(feature = "images")]
    pub use crate::color::decode::*;
    #[cfg(feature = "images")]
    pub use crate::color::downscale::*;
    pub use crate::color::emd::*;
    pub use crate::color::histogram::*;
    #[cfg(feature = "images")]
    pub use crate::color::jpeg_dc::decode_eighth;
    pub use crate::color::palette::*;
    pub use crate::color::query::*;
    pub use crate::color::spread::*;
    pub use crate::color::transport::*;
    pub use crate::color::*;
}
pub use crate::index::{adaptive_nlist, Encoded, RETRAIN_GROWTH};
