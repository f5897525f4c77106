//! Merging segments: the live vectors of several segments, regrouped by
//! list into one new segment. Codes are copied as they are (all segments of a
//! snapshot share its quantizers), deleted vectors are dropped, and the
//! tombstones that no longer hide anything are retired.

use super::{commit_or_clean, write_numbered, write_segment, Batch};
use crate::error::{Error, Result};
use crate::format::manifest::{SegmentMeta, TombstoneMeta};
use crate::format::segment::{Record, Sparse};
use crate::format::{quantizer_name, segment_name, tombstone_name};
use crate::quantizer::Quantizers;
use crate::read::Snapshot;
use crate::storage::Storage;

/// When to merge automatically: tantivy's log-structured policy. Segments
/// are grouped into levels by log₂ of their size (sizes below `min_level`
/// count as `min_level`, so all small appends share the bottom level); a
/// level holding `merge_factor` or more segments is merged into one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MergePolicy {
    /// Whether `add` merges at all (off: only `compact` merges).
    pub enabled: bool,
    /// Segments of one level that trigger its merge.
    pub merge_factor: usize,
    /// Segments smaller than this many vectors count as this size.
    pub min_level: u64,
    /// Segments within this many log₂ units of a level's largest share it.
    pub level_log_size: f64,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy { enabled: true, merge_factor: 10, min_level: 10_000, level_log_size: 0.75 }
    }
}

impl MergePolicy {
    /// Indexes (into `segments`) of one level due for merging, if any.
    pub fn candidates(&self, segments: &[SegmentMeta]) -> Option<Vec<usize>> {
        if !self.enabled || segments.len() < self.merge_factor.max(2) {
            return None;
        }
        let size = |i: usize| (segments[i].vectors.max(self.min_level) as f64).log2();
        let mut order: Vec<usize> = (0..segments.len()).collect();
        order.sort_by(|&a, &b| segments[b].vectors.cmp(&segments[a].vectors).then(a.cmp(&b)));
        let mut level: Vec<usize> = Vec::new();
        let mut top = f64::INFINITY;
        let mut due = None;
        for i in order {
            if size(i) < top - self.level_log_size {
                if level.len() >= self.merge_factor {
                    due = Some(std::mem::take(&mut level));
                }
                level.clear();
                top = size(i);
            }
            level.push(i);
        }
        if level.len() >= self.merge_factor {
            due = Some(level);
        }
        due.map(|mut v| {
            v.sort_unstable();
            v
        })
    }
}

/// Merges the segments at `victims` (indexes into `snap.segments`) and
/// commits the result. Returns the new state; the files it retired are
/// already removed (best effort).
pub fn commit_merge(storage: &dyn Storage, snap: &Snapshot, victims: &[usize]) -> Result<Snapshot> {
    let current = &snap.manifest;
    let batch = live_batch(snap, victims)?;
    let mut next = current.successor()?;
    let retired: Vec<u64> = victims.iter().map(|&i| current.segments[i].file).collect();
    next.segments.retain(|s| !retired.contains(&s.file));
    let mut new_files = Vec::new();
    if !batch.is_empty() {
        // The merged segment is as new as this commit: every tombstone that
        // could hide one of its vectors has been applied.
        new_files.push(write_segment(storage, &mut next, batch)?);
    }
    // A tombstone still matters only to segments older than itself.
    let oldest = next.segments.iter().map(|s| s.generation).min().unwrap_or(u64::MAX);
    let (kept, dropped): (Vec<_>, Vec<_>) = next.tombstones.iter().partition(|t| t.generation > oldest);
    next.tombstones = kept;
    let state = commit_or_clean(storage, snap, next, &new_files)?;
    retire(storage, &retired, &dropped);
    Ok(state)
}

/// Replaces the quantizers and re-encodes every live vector from the
/// refine store, all in one commit: the index moves from the old quantizers
/// and segments to the new ones, or (after a crash) stays where it was.
/// `config` may change `nlist` (adaptive training).
pub fn commit_retrain(storage: &dyn Storage, snap: &Snapshot, q: &Quantizers) -> Result<Snapshot> {
    let current = &snap.manifest;
    let all: Vec<usize> = (0..snap.segments.len()).collect();
    let mut batch = live_batch(snap, &all)?;
    if !batch.is_empty() {
        let refine = batch.refine.as_ref().ok_or_else(|| Error::Config("re-training needs the refine store".into()))?;
        (batch.lists, batch.codes) = encode_sparse(q, refine);
    }
    let mut next = current.successor()?;
    next.config = q.config;
    let qnum = write_numbered(storage, &mut next, quantizer_name, &q.to_data().encode())?;
    next.quantizer_file = Some(qnum);
    next.trained_vectors = batch.len() as u64;
    next.segments.clear();
    let mut new_files = vec![quantizer_name(qnum)];
    if !batch.is_empty() {
        new_files.push(write_segment(storage, &mut next, batch)?);
    }
    let dropped = std::mem::take(&mut next.tombstones);
    let state = commit_or_clean(storage, snap, next, &new_files)?;
    let retired: Vec<u64> = current.segments.iter().map(|s| s.file).collect();
    retire(storage, &retired, &dropped);
    if let Some(old) = current.quantizer_file {
        let _ = storage.remove(&quantizer_name(old));
    }
    Ok(state)
}

/// Rows densified per batch of re-encoding: a dense copy of every stored
/// vector would cost n × dim floats (4.6 GB for 1M colour histograms);
/// this many cost 38 MB at dimension 1152, and still give the encoder's
/// threads 64 chunks to share.
const DENSE_ROWS: usize = 8192;

/// Lists and codes of sparse rows under `q`, densified a batch at a time.
fn encode_sparse(q: &Quantizers, rows: &[Sparse]) -> (Vec<u32>, Vec<u8>) {
    let mut lists = Vec::with_capacity(rows.len());
    let mut codes = Vec::with_capacity(rows.len() * q.config.code_size());
    for chunk in rows.chunks(DENSE_ROWS) {
        let (l, c) = q.encode(&densify(chunk, q.config.dim));
        lists.extend_from_slice(&l);
        codes.extend_from_slice(&c);
    }
    (lists, codes)
}

/// Sparse rows as one dense n × dim matrix.
pub(crate) fn densify(rows: &[Sparse], dim: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows.len() * dim];
    for (row, r) in out.chunks_exact_mut(dim).zip(rows) {
        for &(k, v) in r {
            row[k as usize] = v;
        }
    }
    out
}

/// The live vectors of `segments` of `snap`, list by list, as stored: list,
/// code, id, refine values, record.
fn live_batch(snap: &Snapshot, segments: &[usize]) -> Result<Batch> {
    let c = snap.manifest.config;
    let cs = if snap.quantizers.is_some() { c.code_size() } else { 0 };
    let mut b = Batch {
        refine: c.refine.then(Vec::new),
        records: segments.iter().any(|&si| snap.segments[si].has_records()).then(Vec::new),
        ..Batch::default()
    };
    for l in 0..c.nlist {
        for &si in segments {
            let seg = &snap.segments[si];
            let hide = snap.hider(si);
            let (_, list_ids) = seg.list(l)?;
            // Batches hold plain codes; the segment writer lays them out.
            let list_codes = seg.plain_codes(l)?;
            for (i, id) in list_ids.iter().enumerate() {
                if hide.hides(id) {
                    continue;
                }
                let p = seg.list_start(l) + i;
                b.lists.push(l as u32);
                b.codes.extend_from_slice(&list_codes[i * cs..(i + 1) * cs]);
                b.ids.push(id);
                if let Some(r) = &mut b.refine {
                    r.push(seg.refine(p)?.to_sparse());
                }
                if let Some(r) = &mut b.records {
                    let rec = seg.record(p)?.map(|r| r.to_record()).unwrap_or_else(|| Record {
                        path: Default::default(),
                        size: 0,
                        mtime_ns: 0,
                    });
                    r.push(rec);
                }
            }
        }
    }
    Ok(b)
}

/// Removes files a commit dropped (best effort: the next writer open removes
/// what is left). Readers that mapped them keep their mappings.
fn retire(storage: &dyn Storage, segments: &[u64], tombstones: &[TombstoneMeta]) {
    for &f in segments {
        let _ = storage.remove(&segment_name(f));
    }
    for t in tombstones {
        let _ = storage.remove(&tombstone_name(t.file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(sizes: &[u64]) -> Vec<SegmentMeta> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &v)| SegmentMeta {
                file: i as u64 + 1,
                vectors: v,
                bytes: 0,
                generation: i as u64 + 1,
                deleted: 0,
            })
            .collect()
    }

    #[test]
    fn small_appends_share_the_bottom_level() {
        let p = MergePolicy::default();
        assert_eq!(p.candidates(&segs(&[100; 9])), None);
        assert_eq!(p.candidates(&segs(&[100; 10])), Some((0..10).collect()));
        // A large segment is its own level and is left alone.
        let mut s = vec![1_000_000];
        s.extend([100; 10]);
        assert_eq!(p.candidates(&segs(&s)), Some((1..11).collect()));
        assert_eq!(MergePolicy { enabled: false, ..p }.candidates(&segs(&[100; 50])), None);
    }

    #[test]
    fn levels_are_log_sized() {
        let p = MergePolicy::default();
        // Ten segments of ~1M (one level) and ten of ~50k (another).
        let mut s = vec![1_000_000; 10];
        s.extend([50_000; 10]);
        let c = p.candidates(&segs(&s)).unwrap();
        assert_eq!(c.len(), 10);
        let sizes: Vec<u64> = c.iter().map(|&i| s[i]).collect();
        assert!(sizes.iter().all(|&v| v == sizes[0]));
    }
}
