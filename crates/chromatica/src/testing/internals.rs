//! The parts of [`Index`] and [`Snapshot`] that take or give the engine's
//! inside (a storage backend, quantizers, the manifest, segment views), as
//! extension traits: bring them into scope with `use chromatica::testing::*`
//! or by name.

use crate::faiss_import::FaissIvfPq;
use crate::format::manifest::Manifest;
use crate::format::segment::SegmentView;
use crate::index::Encoded;
use crate::quantizer::Quantizers;
use crate::storage::Storage;
use crate::{Index, RecoverReport, Result, Snapshot};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`Index`] over any storage backend, and from encoded vectors.
pub trait IndexInternals: Sized {
    /// `Index::create` over `storage` (e.g. a [`MemStorage`](crate::testing::MemStorage)).
    fn create_in(path: PathBuf, storage: Arc<dyn Storage>, config: crate::Config) -> Result<Self>;
    /// `Index::open` / `Index::open_read_only` over `storage`.
    fn open_in(path: PathBuf, storage: Arc<dyn Storage>, writable: bool) -> Result<Self>;
    /// `Index::recover` over `storage`.
    fn recover_in(storage: &dyn Storage) -> Result<RecoverReport>;
    /// A new index from quantizers made elsewhere and vectors encoded with them.
    fn create_encoded(path: impl AsRef<Path>, quantizers: Quantizers, vectors: Encoded) -> Result<Self>;
}

impl IndexInternals for Index {
    fn create_in(path: PathBuf, storage: Arc<dyn Storage>, config: crate::Config) -> Result<Index> {
        Index::create_in(path, storage, config)
    }
    fn open_in(path: PathBuf, storage: Arc<dyn Storage>, writable: bool) -> Result<Index> {
        Index::open_in(path, storage, writable)
    }
    fn recover_in(storage: &dyn Storage) -> Result<RecoverReport> {
        Index::recover_in(storage)
    }
    fn create_encoded(path: impl AsRef<Path>, quantizers: Quantizers, vectors: Encoded) -> Result<Index> {
        Index::create_encoded(path, quantizers, vectors)
    }
}

/// What a [`Snapshot`] is made of.
pub trait SnapshotInternals {
    /// The manifest this state was loaded from.
    fn manifest(&self) -> &Manifest;
    /// The quantizers, once trained.
    fn quantizers(&self) -> Option<&Quantizers>;
    /// The mapped segments, in manifest order.
    fn segments(&self) -> &[Arc<SegmentView>];
    /// Deleted id → generation of its newest tombstone.
    fn deleted(&self) -> &HashMap<u64, u64>;
    /// Decides, for segment `i`, whether a stored id is deleted.
    fn hider(&self, i: usize) -> crate::read::Hider<'_>;
    /// Every live vector: (segment, position, id).
    fn for_each_live(&self, f: impl FnMut(usize, usize, u64)) -> Result<()>;
    /// Up to `max` live vectors (exact values), chosen with `seed`.
    fn sample_live(&self, max: usize, seed: u64) -> Result<Vec<f32>>;
    /// Opens what `manifest` names, sharing files already open in `previous`.
    fn load(storage: &dyn Storage, manifest: Manifest, previous: Option<&Snapshot>) -> Result<Snapshot>;
    /// The exact-EMD search of the image layer: the k nearest by EMD to
    /// `query` among stage 1's `candidates` for `stage1` (then, with
    /// `scan`, every live vector by lower bounds), and the solves it took.
    #[allow(clippy::too_many_arguments)]
    fn emd_search(
        &self,
        stage1: &[f32],
        query: &mut crate::color::transport::EmdQuery,
        k: usize,
        nprobe: Option<usize>,
        candidates: usize,
        scan: bool,
        exclude: &[crate::color::Excluded],
    ) -> Result<(Vec<crate::Neighbor>, usize)>;
}

impl SnapshotInternals for Snapshot {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    fn quantizers(&self) -> Option<&Quantizers> {
        self.quantizers.as_deref()
    }
    fn segments(&self) -> &[Arc<SegmentView>] {
        &self.segments
    }
    fn deleted(&self) -> &HashMap<u64, u64> {
        &self.deleted
    }
    fn hider(&self, i: usize) -> crate::read::Hider<'_> {
        Snapshot::hider(self, i)
    }
    fn for_each_live(&self, f: impl FnMut(usize, usize, u64)) -> Result<()> {
        Snapshot::for_each_live(self, f)
    }
    fn sample_live(&self, max: usize, seed: u64) -> Result<Vec<f32>> {
        Snapshot::sample_live(self, max, seed)
    }
    fn load(storage: &dyn Storage, manifest: Manifest, previous: Option<&Snapshot>) -> Result<Snapshot> {
        Snapshot::load(storage, manifest, previous)
    }
    fn emd_search(
        &self,
        stage1: &[f32],
        query: &mut crate::color::transport::EmdQuery,
        k: usize,
        nprobe: Option<usize>,
        candidates: usize,
        scan: bool,
        exclude: &[crate::color::Excluded],
    ) -> Result<(Vec<crate::Neighbor>, usize)> {
        let s =
            crate::read::emd_search::EmdSearch { k, nprobe, candidates, scan, exclude, deadline: None, trace: None };
        let (found, stats) = Snapshot::emd_search(self, stage1, query, &s)?;
        Ok((found, stats.solves))
    }
}

/// A parsed faiss index as the engine's parts.
pub trait FaissInternals {
    /// The quantizers and the encoded vectors the import commits.
    fn into_parts(self) -> Result<(Quantizers, Encoded)>;
}

impl FaissInternals for FaissIvfPq {
    fn into_parts(self) -> Result<(Quantizers, Encoded)> {
        FaissIvfPq::into_parts(self)
    }
}
