//! What an index costs and holds: the memory report and `inspect`.
//! Everything is counted — codes, ids, quantizers, the precomputed table,
//! file headers — not just the codes the design note's "576×" counts.

use crate::config::Config;
use crate::format::{manifest_name, quantizer_name, tombstone_name};
use crate::read::Snapshot;
use crate::storage::Storage;
use serde::Serialize;

/// Bytes an index uses, on disk and in memory.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct MemoryReport {
    /// Live vectors: stored minus those hidden by tombstones.
    pub vectors: u64,
    /// What the same vectors cost as flat float32 (dim × 4 bytes each).
    pub flat_f32_bytes: u64,
    /// PQ codes (code_size per vector, plus the zero padding of the last
    /// block of each list with fast-scan): the only part the "576×" counts.
    pub code_bytes: u64,
    /// Stored ids (4 bytes per vector where they fit, else 8).
    pub id_bytes: u64,
    /// Coarse centroids and PQ codebooks.
    pub quantizer_bytes: u64,
    /// The precomputed per-list table (nlist × m × 2^nbits floats).
    pub precomputed_table_bytes: u64,
    /// File headers, list directories, padding, tombstones and the manifest.
    pub metadata_bytes: u64,
    /// Exact vectors kept for re-ranking (the refine store).
    pub refine_bytes: u64,
    /// Records: path, size and modification time of each vector's source.
    pub record_bytes: u64,
    /// All index files.
    pub disk_bytes: u64,
    /// Per-vector Lab means kept in memory for exact EMD search (12 bytes a
    /// vector once an EMD search has run, else 0); part of
    /// `resident_heap_bytes`.
    pub lab_mean_bytes: u64,
    /// Heap memory held while open: quantizers, table, the transposed copy
    /// of the coarse centroids search uses, list directories, Lab means.
    /// Codes and ids are memory-mapped and come on top, as pages are touched.
    pub resident_heap_bytes: u64,
    /// Segment bytes mapped (resident only once read).
    pub mapped_bytes: u64,
    /// `code_bytes / vectors`.
    pub code_bytes_per_vector: f64,
    /// `disk_bytes / vectors`.
    pub disk_bytes_per_vector: f64,
    /// `resident_heap_bytes / vectors`.
    pub resident_bytes_per_vector: f64,
    /// flat_f32_bytes / code_bytes.
    pub compression_codes_only: f64,
    /// flat_f32_bytes / disk_bytes.
    pub compression_total: f64,
}

/// Size distribution of the inverted lists.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ListStats {
    /// Inverted lists in the index.
    pub nlist: usize,
    /// Lists that hold no live vector.
    pub empty: usize,
    /// Live vectors in the smallest list.
    pub min: u64,
    /// Live vectors in the largest list.
    pub max: u64,
    /// Mean live vectors per list.
    pub mean: f64,
    /// Median list size.
    pub p50: u64,
    /// 90th-percentile list size.
    pub p90: u64,
    /// 99th-percentile list size.
    pub p99: u64,
    /// n·Σ size² / (Σ size)²: 1 when lists are even (faiss's imbalance factor).
    pub imbalance: f64,
}

/// One segment file of the current state, as `inspect` lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// File name inside the index directory.
    pub file: String,
    /// Vectors stored in it, deleted ones included.
    pub vectors: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Manifest generation that added the segment.
    pub generation: u64,
    /// Vectors of this segment hidden by tombstones (dropped at the next merge).
    pub deleted: u64,
    /// Bytes per stored id: 4 when every id of the segment fits, else 8.
    pub id_width: usize,
}

/// One tombstone file (a committed delete), as `inspect` lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TombstoneInfo {
    /// File name inside the index directory.
    pub file: String,
    /// Ids it deletes.
    pub ids: u64,
    /// Manifest generation of the delete; it hides ids in older segments.
    pub generation: u64,
}

/// Disk bytes by kind.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct DiskBytes {
    /// PQ codes, fast-scan padding included.
    pub codes: u64,
    /// Stored ids.
    pub ids: u64,
    /// The quantizer file: coarse centroids and PQ codebooks.
    pub quantizers: u64,
    /// Exact vectors kept for re-ranking (the refine store).
    pub refine: u64,
    /// Paths, sizes and modification times of indexed files.
    pub records: u64,
    /// Headers, list directories, padding, tombstones and the manifest.
    pub metadata: u64,
    /// Every file of the index.
    pub total: u64,
}

/// Everything `chromatica inspect` shows.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Inspection {
    /// Format version of the manifest read (FORMAT.md): 1 for an index no
    /// build of version 2 has committed to since, else 2.
    pub format_version: u32,
    /// Manifest generation: one more with every commit.
    pub generation: u64,
    /// The configuration the index was created with.
    pub config: Config,
    /// Bytes per PQ code: `ceil(m × nbits / 8)`.
    pub code_size: usize,
    /// Whether quantizers exist (otherwise search is exact over the refine store).
    pub trained: bool,
    /// Vectors the quantizers were trained on.
    pub train_points: u64,
    /// Live vectors.
    pub vectors: u64,
    /// Stored vectors hidden by tombstones, until compaction drops them.
    pub deleted: u64,
    /// The id the next `add` without explicit ids gives its first vector.
    pub next_id: u64,
    /// Candidates an L2-re-ranked search uses when it does not say (its
    /// nprobe is `config.nprobe`); `tune` stores them.
    pub default_candidates: usize,
    /// nprobe of an EMD-re-ranked (colour) search that does not say.
    pub emd_nprobe: usize,
    /// Candidates of an EMD-re-ranked search that does not say.
    pub emd_candidates: usize,
    /// The segment files, in manifest order.
    pub segments: Vec<SegmentInfo>,
    /// The tombstone files, in manifest order.
    pub tombstones: Vec<TombstoneInfo>,
    /// How evenly the vectors spread over the lists.
    pub lists: ListStats,
    /// Bytes used on disk and in memory.
    pub memory: MemoryReport,
    /// Disk bytes by kind.
    pub disk_bytes: DiskBytes,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn file_len(storage: &dyn Storage, name: &str) -> u64 {
    storage.map(name).map(|b| b.len() as u64).unwrap_or(0)
}

impl Snapshot {
    pub(crate) fn memory_report(&self, storage: &dyn Storage) -> MemoryReport {
        let c = &self.manifest.config;
        let n = self.vectors();
        let code_bytes: u64 = self.segments.iter().map(|s| s.code_bytes() as u64).sum();
        let id_bytes: u64 = self.segments.iter().map(|s| s.vectors() * s.id_width() as u64).sum();
        let (quantizer_bytes, precomputed_table_bytes) = self.quantizers.as_ref().map_or((0, 0), |q| {
            let (a, b) = q.stored_bytes();
            (a as u64, b as u64)
        });
        let mapped_bytes: u64 = self.segments.iter().map(|s| s.file_bytes() as u64).sum();
        let qfile = self.manifest.quantizer_file.map_or(0, |q| file_len(storage, &quantizer_name(q)));
        let manifest = file_len(storage, &manifest_name(self.manifest.generation));
        let tombstones: u64 = self.manifest.tombstones.iter().map(|t| file_len(storage, &tombstone_name(t.file))).sum();
        let disk_bytes = mapped_bytes + qfile + manifest + tombstones;
        let refine_bytes: u64 = self.segments.iter().map(|s| s.refine_bytes() as u64).sum();
        let record_bytes: u64 = self.segments.iter().map(|s| s.record_bytes() as u64).sum();
        let metadata_bytes = disk_bytes
            - code_bytes
            - id_bytes
            - quantizer_bytes
            - precomputed_table_bytes
            - refine_bytes
            - record_bytes;
        // Per segment in memory: one (start, count, crc, code slot) and one
        // flag per list.
        let dirs = (self.segments.len() * c.nlist * (4 * 8 + 1)) as u64;
        let derived_bytes = self.quantizers.as_ref().map_or(0, |q| q.derived_bytes() as u64);
        let lab_mean_bytes: u64 = self.segments.iter().map(|s| s.lab_mean_bytes() as u64).sum();
        let resident_heap_bytes = quantizer_bytes + precomputed_table_bytes + derived_bytes + dirs + lab_mean_bytes;
        let flat = n * c.dim as u64 * 4;
        MemoryReport {
            vectors: n,
            flat_f32_bytes: flat,
            code_bytes,
            id_bytes,
            quantizer_bytes,
            precomputed_table_bytes,
            metadata_bytes,
            refine_bytes,
            record_bytes,
            disk_bytes,
            lab_mean_bytes,
            resident_heap_bytes,
            mapped_bytes,
            code_bytes_per_vector: ratio(code_bytes, n),
            disk_bytes_per_vector: ratio(disk_bytes, n),
            resident_bytes_per_vector: ratio(resident_heap_bytes, n),
            compression_codes_only: ratio(flat, code_bytes),
            compression_total: ratio(flat, disk_bytes),
        }
    }

    pub(crate) fn list_stats(&self) -> ListStats {
        let nlist = self.manifest.config.nlist;
        let mut sizes: Vec<u64> =
            (0..nlist).map(|l| self.segments.iter().map(|s| s.list_len(l) as u64).sum()).collect();
        let total: u64 = sizes.iter().sum();
        let imbalance = imbalance_factor(&sizes);
        sizes.sort_unstable();
        let pct = |p: f64| sizes[((nlist as f64 - 1.0) * p).round() as usize];
        ListStats {
            nlist,
            empty: sizes.iter().filter(|&&s| s == 0).count(),
            min: sizes[0],
            max: sizes[nlist - 1],
            mean: total as f64 / nlist as f64,
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            imbalance,
        }
    }

    pub(crate) fn inspect(&self, storage: &dyn Storage) -> Inspection {
        let memory = self.memory_report(storage);
        let segments = self
            .manifest
            .segments
            .iter()
            .zip(&self.segments)
            .map(|(m, v)| SegmentInfo {
                file: crate::format::segment_name(m.file),
                vectors: m.vectors,
                bytes: m.bytes,
                generation: m.generation,
                deleted: m.deleted,
                id_width: v.id_width(),
            })
            .collect();
        let tombstones = self
            .manifest
            .tombstones
            .iter()
            .map(|t| TombstoneInfo { file: tombstone_name(t.file), ids: t.ids, generation: t.generation })
            .collect();
        let quantizers = memory.quantizer_bytes + memory.precomputed_table_bytes;
        let default_candidates = self.search_defaults(crate::Rerank::L2).1;
        let (emd_nprobe, emd_candidates) = self.search_defaults(crate::Rerank::ExactEmd);
        Inspection {
            format_version: self.manifest.version,
            generation: self.manifest.generation,
            config: self.manifest.config,
            code_size: self.manifest.config.code_size(),
            trained: self.quantizers.is_some(),
            train_points: self.quantizers.as_ref().map_or(0, |q| q.train_points),
            vectors: memory.vectors,
            deleted: self.manifest.deleted_vectors(),
            next_id: self.manifest.next_id,
            default_candidates,
            emd_nprobe,
            emd_candidates,
            segments,
            tombstones,
            lists: self.list_stats(),
            disk_bytes: DiskBytes {
                codes: memory.code_bytes,
                ids: memory.id_bytes,
                quantizers,
                refine: memory.refine_bytes,
                records: memory.record_bytes,
                metadata: memory.metadata_bytes,
                total: memory.disk_bytes,
            },
            memory,
        }
    }
}

impl crate::Index {
    /// Bytes this index uses now, on disk and in memory.
    pub fn memory_estimate(&self) -> MemoryReport {
        self.snapshot().memory_report(self.storage())
    }

    /// Configuration, counts, segments, list sizes, memory and disk bytes.
    pub fn inspect(&self) -> Inspection {
        self.snapshot().inspect(self.storage())
    }
}

/// faiss's imbalance factor of list sizes, nlist·Σn²/(Σn)²: 1 when every
/// list holds as many, nlist when one holds all (0 when all are empty).
pub(crate) fn imbalance_factor(sizes: &[u64]) -> f64 {
    let total: u64 = sizes.iter().sum();
    let sq: f64 = sizes.iter().map(|&s| (s as f64).powi(2)).sum();
    if total == 0 {
        0.0
    } else {
        sizes.len() as f64 * sq / (total as f64).powi(2)
    }
}
