//! The read path: a [`Snapshot`] is one committed state of the index (its
//! manifest, quantizers and mapped segments), immutable and shared by
//! reference count, so searches never wait for writers.

// The exact-EMD search serves the image layer (and the benchmarks).
#[cfg_attr(not(feature = "images"), allow(dead_code))]
pub(crate) mod emd_search;
pub mod fastscan;
pub mod search;
pub mod shard;
pub mod topk;

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::quantizer_file::QuantizerData;
use crate::format::segment::{Expect, SegmentView};
use crate::format::{quantizer_name, segment_name, tombstone_file, tombstone_name};
use crate::quantizer::Quantizers;
use crate::storage::Storage;
use std::collections::HashMap;
use std::sync::Arc;

pub use search::{Location, Neighbor, Rerank, SearchParams, DEFAULT_CANDIDATES};
pub use shard::{merge_candidates, Candidate};

/// One committed state of an index, from [`Index::snapshot`](crate::Index::snapshot):
/// searching it gives the same answers however the index is written to
/// afterwards, and holding it keeps its files mapped.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) manifest: Manifest,
    pub(crate) quantizers: Option<Arc<Quantizers>>,
    pub(crate) segments: Vec<Arc<SegmentView>>,
    /// Deleted id → generation of its newest tombstone. A stored vector is
    /// hidden when its id's tombstone is newer than its segment.
    pub(crate) deleted: HashMap<u64, u64>,
}

/// Decides, for one segment, whether a stored id is deleted.
#[derive(Clone, Copy)]
pub struct Hider<'a> {
    deleted: Option<&'a HashMap<u64, u64>>,
    segment_generation: u64,
}

impl Hider<'_> {
    #[inline]
    pub fn hides(&self, id: u64) -> bool {
        self.deleted.is_some_and(|d| d.get(&id).is_some_and(|&g| g > self.segment_generation))
    }
}

impl Snapshot {
    /// Opens what `manifest` names. Files already open in `previous` are
    /// shared rather than opened again. Cost: O(nlist) per segment, never
    /// O(vectors).
    pub(crate) fn load(storage: &dyn Storage, manifest: Manifest, previous: Option<&Snapshot>) -> Result<Snapshot> {
        let c = manifest.config;
        let quantizers = match (manifest.quantizer_file, previous) {
            (None, _) => None,
            (Some(q), Some(p)) if p.manifest.quantizer_file == Some(q) => p.quantizers.clone(),
            (Some(q), _) => {
                let name = quantizer_name(q);
                let bytes = storage.map(&name)?;
                let data = QuantizerData::decode(&bytes, &storage.describe(&name), (c.dim, c.nlist, c.m, c.nbits))?;
                Some(Arc::new(Quantizers::from_data(&c, data)))
            }
        };
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for s in &manifest.segments {
            let name = storage.describe(&segment_name(s.file));
            let reused = previous.and_then(|p| p.segments.iter().find(|v| v.name() == name).cloned());
            let view = match reused {
                Some(v) => v,
                None => {
                    let expect = Expect {
                        nlist: c.nlist,
                        dim: c.dim,
                        code_size: c.code_size(),
                        quantizer_file: manifest.quantizer_file.unwrap_or(0),
                        refine: c.refine,
                        fast_scan: c.fast_scan,
                    };
                    let bytes = storage.map(&segment_name(s.file))?;
                    Arc::new(SegmentView::open(bytes, name.clone(), expect)?)
                }
            };
            if view.has_codes() != manifest.quantizer_file.is_some() {
                return Err(Error::corrupt(&name, 40, "segment codes do not match the index's training state"));
            }
            if view.vectors() != s.vectors || view.file_bytes() as u64 != s.bytes {
                return Err(Error::corrupt(
                    &name,
                    0,
                    format!(
                        "segment holds {} vectors in {} bytes, the manifest says {} in {}",
                        view.vectors(),
                        view.file_bytes(),
                        s.vectors,
                        s.bytes
                    ),
                ));
            }
            segments.push(view);
        }
        let mut deleted = HashMap::new();
        for t in &manifest.tombstones {
            let name = tombstone_name(t.file);
            let bytes = storage.map(&name)?;
            let ids = tombstone_file::decode(&bytes, &storage.describe(&name))?;
            if ids.len() as u64 != t.ids {
                return Err(Error::corrupt(
                    storage.describe(&name),
                    16,
                    format!("holds {} ids, the manifest says {}", ids.len(), t.ids),
                ));
            }
            for id in ids {
                let g = deleted.entry(id).or_insert(t.generation);
                *g = (*g).max(t.generation);
            }
        }
        Ok(Snapshot { manifest, quantizers, segments, deleted })
    }

    /// Live vectors: stored minus deleted.
    /// The generation of this state: the number of its manifest, one more
    /// with every commit.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// How many segment files this state reads (compaction makes it one).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Each segment this state reads, in its order: (file number, live
    /// vectors). The numbers are what [`subset`](Self::subset) takes.
    pub fn segment_files(&self) -> Vec<(u64, u64)> {
        self.manifest.segments.iter().map(|s| (s.file, s.vectors - s.deleted)).collect()
    }

    /// The smallest file number this state has not used: where
    /// [`Index::stage_segment`](crate::Index::stage_segment) numbering may start.
    pub fn next_file(&self) -> u64 {
        self.manifest.next_file
    }

    /// One past the largest id ever added (0 when none): where
    /// [`Index::add`](crate::Index::add)'s default ids, and a staged
    /// build's ids, start.
    pub fn next_id(&self) -> u64 {
        self.manifest.next_id
    }

    /// The nprobe and candidates a search re-ranked by `rerank` uses when
    /// it does not say: those [`Index::set_search_defaults`](crate::Index::set_search_defaults)
    /// (`chromatica tune`) stored for that kind of re-rank, else the
    /// configuration's nprobe and [`DEFAULT_CANDIDATES`]. A caller that
    /// merges parts ([`merge_candidates`]) passes these candidates.
    pub fn search_defaults(&self, rerank: Rerank) -> (usize, usize) {
        let (c, stored) = (&self.manifest.config, &self.manifest.defaults);
        let (nprobe, candidates) = match rerank {
            Rerank::Emd(_) | Rerank::ExactEmd => (stored.emd_nprobe, stored.emd_candidates),
            Rerank::L2 | Rerank::Off => (None, stored.candidates),
        };
        (nprobe.unwrap_or(c.nprobe), candidates.unwrap_or(DEFAULT_CANDIDATES))
    }

    /// The number of the quantizer file, if trained.
    pub fn quantizer_file(&self) -> Option<u64> {
        self.manifest.quantizer_file
    }

    /// Live vectors: stored minus those hidden by tombstones.
    pub fn vectors(&self) -> u64 {
        self.manifest.stored_vectors() - self.manifest.deleted_vectors()
    }

    /// The deletion filter for segment `i` (an index into `segments`).
    pub(crate) fn hider(&self, i: usize) -> Hider<'_> {
        Hider {
            deleted: (!self.deleted.is_empty()).then_some(&self.deleted),
            segment_generation: self.manifest.segments[i].generation,
        }
    }

    /// Calls `f(segment index, position, id)` for every live vector, list
    /// by list.
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(usize, usize, u64)) -> Result<()> {
        for (si, seg) in self.segments.iter().enumerate() {
            let hide = self.hider(si);
            for l in 0..self.manifest.config.nlist {
                let (_, ids) = seg.list(l)?;
                let start = seg.list_start(l);
                for (i, id) in ids.iter().enumerate() {
                    if !hide.hides(id) {
                        f(si, start + i, id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Up to `max` live vectors (dense, n × dim) drawn at random (seeded)
    /// from the refine store: the training sample for re-training.
    pub(crate) fn sample_live(&self, max: usize, seed: u64) -> Result<Vec<f32>> {
        use rand::SeedableRng;
        let mut at = Vec::with_capacity(self.vectors() as usize);
        self.for_each_live(|si, p, _| at.push((si, p)))?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pick = rand::seq::index::sample(&mut rng, at.len(), max.min(at.len())).into_vec();
        pick.sort_unstable();
        let d = self.manifest.config.dim;
        let mut out = vec![0f32; pick.len() * d];
        for (row, &i) in out.chunks_exact_mut(d).zip(&pick) {
            let (si, p) = at[i];
            for (k, v) in self.segments[si].refine(p)?.iter() {
                row[k] = v;
            }
        }
        Ok(out)
    }

    /// Every live id with where it is stored in this snapshot, ascending by
    /// id: what an application keeps to turn an id back into its record
    /// ([`record`](Self::record)) or exact vector ([`vector`](Self::vector))
    /// without searching. O(live vectors); the locations are valid for this
    /// snapshot only.
    pub fn live_locations(&self) -> Result<Vec<(u64, search::Location)>> {
        let mut out = Vec::with_capacity(self.vectors() as usize);
        self.for_each_live(|si, p, id| out.push((id, search::Location { segment: si as u32, position: p as u32 })))?;
        out.sort_unstable_by_key(|&(id, _)| id);
        Ok(out)
    }

    /// Every live id, ascending.
    pub fn live_ids(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::with_capacity(self.vectors() as usize);
        self.for_each_live(|_, _, id| ids.push(id))?;
        ids.sort_unstable();
        Ok(ids)
    }
}
