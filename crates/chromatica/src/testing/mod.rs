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

pub mod data;
pub mod files;
pub mod layout;
pub mod model;
pub mod reference;
pub mod repair;
pub mod rng;
pub mod tiny;

pub use crate::storage::MemStorage;
pub use rng::Rng;
