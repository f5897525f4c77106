//! Merging segments: the live vectors of several segments, regrouped by
//! list into one new segment. Codes are copied as they are (all segments of a
//! snapshot share its quantizers), deleted vectors are dropped, and the
//! tombstones that no longer hide anything are retired.

use super::{commit_or_clean, write_numbered, write_numbered_with, write_segment_file, Batch};
use crate::error::{Error, Result};
use crate::format::manifest::{Manifest, SegmentMeta, TombstoneMeta};
use crate::format::segment::stream::{self, Part, Row, RowSource, StreamSpec};
use crate::format::segment::{Expect, Record, SegmentView, Sparse};
use crate::format::{quantizer_name, segment_name, tombstone_name};
use crate::quantizer::Quantizers;
use crate::read::{Hider, Snapshot};
use crate::storage::Storage;
use std::borrow::Cow;

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
/// already removed (best effort). The merged segment is streamed
/// ([`write_streamed`]): memory is bounded by a list, not by the segments.
pub fn commit_merge(storage: &dyn Storage, snap: &Snapshot, victims: &[usize]) -> Result<Snapshot> {
    let current = &snap.manifest;
    let c = current.config;
    let rows = ViewRows {
        parts: victims.iter().map(|&i| (&*snap.segments[i], Some(snap.hider(i)))).collect(),
        code_size: if snap.quantizers.is_some() { c.code_size() } else { 0 },
    };
    let mut next = current.successor()?;
    let retired: Vec<u64> = victims.iter().map(|&i| current.segments[i].file).collect();
    next.segments.retain(|s| !retired.contains(&s.file));
    // The merged segment is as new as this commit: every tombstone that
    // could hide one of its vectors has been applied.
    let new_files: Vec<String> = write_streamed(storage, &mut next, &rows)?.into_iter().collect();
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
///
/// Bounded memory: the live vectors are encoded [`DENSE_ROWS`] at a time,
/// each batch written as a scratch segment (a numbered file no manifest
/// names, so a crash leaves only what the next writer open removes), and
/// the scratch segments are then merged, streamed, into the one segment the
/// commit names. Peak disk use is twice the re-encoded data.
pub fn commit_retrain(storage: &dyn Storage, snap: &Snapshot, q: &Quantizers) -> Result<Snapshot> {
    retrain_in_batches(storage, snap, q, DENSE_ROWS)
}

/// [`commit_retrain`] with scratch segments of `batch_rows` vectors.
fn retrain_in_batches(storage: &dyn Storage, snap: &Snapshot, q: &Quantizers, batch_rows: usize) -> Result<Snapshot> {
    let current = &snap.manifest;
    if snap.vectors() > 0 && !current.config.refine {
        return Err(Error::Config("re-training needs the refine store".into()));
    }
    let mut next = current.successor()?;
    next.config = q.config;
    let qnum = write_numbered(storage, &mut next, quantizer_name, &q.to_data().encode())?;
    next.quantizer_file = Some(qnum);
    next.trained_vectors = snap.vectors();
    next.segments.clear();
    let mut new_files = Scratch { storage, names: vec![quantizer_name(qnum)] };
    {
        let scratch = encode_scratch(storage, snap, q, &mut next, batch_rows)?;
        let views = scratch.open(storage, &next)?;
        let rows = ViewRows { parts: views.iter().map(|v| (v, None)).collect(), code_size: q.config.code_size() };
        new_files.names.extend(write_streamed(storage, &mut next, &rows)?);
        // The scratch segments go here, before the commit: no manifest names them.
    }
    let dropped = std::mem::take(&mut next.tombstones);
    let state = commit_or_clean(storage, snap, next, &std::mem::take(&mut new_files.names))?;
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
/// threads 64 chunks to share. Each batch becomes one scratch segment.
const DENSE_ROWS: usize = 8192;

/// Files written for a commit that is not published yet, removed when
/// dropped (an error on the way; on success the list is emptied first).
struct Scratch<'a> {
    storage: &'a dyn Storage,
    names: Vec<String>,
}

impl Scratch<'_> {
    /// The scratch segments, opened as open would (header and directory
    /// checked; each list's checksum when it is merged).
    fn open(&self, storage: &dyn Storage, next: &Manifest) -> Result<Vec<SegmentView>> {
        let c = next.config;
        let expect = Expect {
            nlist: c.nlist,
            dim: c.dim,
            code_size: c.code_size(),
            quantizer_file: next.quantizer_file.unwrap_or(0),
            refine: c.refine,
            fast_scan: c.fast_scan,
        };
        self.names.iter().map(|n| SegmentView::open(storage.map(n)?, storage.describe(n), expect)).collect()
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        for f in &self.names {
            let _ = self.storage.remove(f);
        }
    }
}

/// Re-encodes the live vectors of `snap` under `q`, in the order a merge of
/// all its segments visits them, as scratch segments of [`DENSE_ROWS`]
/// vectors (`batch_rows`) each (numbered in `next`, not listed in it).
fn encode_scratch<'a>(
    storage: &'a dyn Storage,
    snap: &Snapshot,
    q: &Quantizers,
    next: &mut Manifest,
    batch_rows: usize,
) -> Result<Scratch<'a>> {
    let mut scratch = Scratch { storage, names: Vec::new() };
    let records = snap.segments.iter().any(|s| s.has_records());
    let empty = || Batch { refine: Some(Vec::new()), records: records.then(Vec::new), ..Batch::default() };
    let mut batch = empty();
    let mut flush = |batch: &mut Batch, next: &mut Manifest| -> Result<()> {
        let mut b = std::mem::replace(batch, empty());
        (b.lists, b.codes) = q.encode(&densify(b.refine.as_deref().unwrap_or(&[]), q.config.dim));
        let (name, _) = write_segment_file(storage, next, b)?;
        scratch.names.push(name);
        Ok(())
    };
    for l in 0..snap.manifest.config.nlist {
        for (si, seg) in snap.segments.iter().enumerate() {
            let hide = snap.hider(si);
            let (_, ids) = seg.list(l)?;
            for (i, id) in ids.iter().enumerate() {
                if hide.hides(id) {
                    continue;
                }
                let p = seg.list_start(l) + i;
                batch.ids.push(id);
                batch.refine.as_mut().expect("re-training keeps refine values").push(seg.refine(p)?.to_sparse());
                if let Some(r) = &mut batch.records {
                    r.push(seg.record(p)?.map(|r| r.to_record()).unwrap_or_else(empty_record));
                }
                if batch.len() >= batch_rows {
                    flush(&mut batch, next)?;
                }
            }
            seg.release_pages();
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, next)?;
    }
    Ok(scratch)
}

fn empty_record() -> Record {
    Record { path: Default::default(), size: 0, mtime_ns: 0 }
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

/// The live rows of some segments, list by list (segment by segment within
/// a list), as a merge copies them: codes as stored, deleted ids skipped.
struct ViewRows<'a> {
    parts: Vec<(&'a SegmentView, Option<Hider<'a>>)>,
    code_size: usize,
}

impl RowSource for ViewRows<'_> {
    fn list_rows(&self, l: usize, part: Part, f: &mut dyn FnMut(&Row<'_>) -> Result<()>) -> Result<()> {
        for &(seg, hide) in &self.parts {
            let (_, ids) = seg.list(l)?;
            // Only the codes sweep needs codes (with fast-scan, a copy).
            let codes = if part == Part::Codes { seg.plain_codes(l)? } else { Cow::Borrowed(&[][..]) };
            let start = seg.list_start(l);
            for (i, id) in ids.iter().enumerate() {
                if hide.is_some_and(|h| h.hides(id)) {
                    continue;
                }
                let p = start + i;
                let cs = self.code_size;
                f(&Row {
                    code: if part == Part::Codes { &codes[i * cs..(i + 1) * cs] } else { &[] },
                    id,
                    refine: if part == Part::Refine { Some(seg.refine(p)?) } else { None },
                    record: if part == Part::Records { seg.record(p)? } else { None },
                })?;
            }
            // Each list is read once per sweep: keep the merge's resident
            // memory to one list, not the segments it reads.
            seg.release_pages();
        }
        Ok(())
    }
}

/// Streams `rows` into a new segment of the state `next` is preparing
/// (listed in it, with its generation), unless there are none. Returns the
/// file's name.
fn write_streamed(storage: &dyn Storage, next: &mut Manifest, rows: &ViewRows<'_>) -> Result<Option<String>> {
    let c = next.config;
    let spec = StreamSpec {
        nlist: c.nlist,
        code_size: if next.quantizer_file.is_some() { c.code_size() } else { 0 },
        quantizer_file: next.quantizer_file.unwrap_or(0),
        refine: c.refine,
        records: rows.parts.iter().any(|(s, _)| s.has_records()),
        fast_scan: c.fast_scan,
    };
    let plan = stream::plan(spec, rows)?;
    if plan.vectors() == 0 {
        return Ok(None);
    }
    let number = write_numbered_with(storage, next, segment_name, &mut |f| stream::write(&plan, rows, f))?;
    next.segments.push(SegmentMeta {
        file: number,
        vectors: plan.vectors(),
        bytes: plan.file_bytes(),
        generation: next.generation,
        deleted: 0,
    });
    Ok(Some(segment_name(number)))
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
mod stream_tests;

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
