//! How do many processes add to one index with one commit? A worker
//! encodes its rows with the committed quantizers into a segment file that
//! no manifest names ([`Index::stage_segment`]); one writer then commits all
//! the staged files in a single manifest ([`Index::commit_staged`]). This
//! is the distributed build of `chromatica.ray.build`: workers on other
//! machines write to the shared storage, the driver commits.
//!
//! Why it is safe. A staged file is written the way `add` writes its
//! segments (exclusive create, synced), under a number at or above the
//! `next_file` of the state the worker saw, so no committed file is ever
//! overwritten and a writer that opens meanwhile keeps it (object storage
//! keeps young files at or above `next_file` as possibly a concurrent
//! writer's; a directory's writer lock keeps other writers out while the
//! committing handle is open). The commit names only files it has checked
//! as open would (header, list directory, every list's checksum while the
//! ids are read for the duplicate check), raises `next_file` past them, and
//! is one manifest: readers see all the staged segments or none. A worker
//! that failed or was retried leaves a file no manifest names, below the
//! new `next_file` once the commit lands: the next writer to open removes
//! it as a leftover.

use super::{check_ids, encode_batch, reject_live_ids, AddReport, Index};
use crate::error::{Error, Result};
use crate::format::manifest::SegmentMeta;
use crate::format::segment::Record;
use crate::format::segment_name;
use crate::input::{check_rows, check_shape};
use crate::read::Snapshot;
use crate::write;

/// A segment file written by [`Index::stage_segment`] and named by no
/// manifest until [`Index::commit_staged`] names it. Plain data, so that
/// it can travel from the worker that wrote it to the process that commits
/// (the commit checks every field against the file itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedSegment {
    /// File number: the segment is `{file:016x}.seg`.
    pub file: u64,
    /// Vectors it holds.
    pub vectors: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Number of the quantizer file its codes were encoded with.
    pub quantizer_file: u64,
}

impl Index {
    /// Encodes `data` (n × dim, with one id and optionally one record per
    /// row) with this handle's current quantizers into a new segment file
    /// that no manifest names, durable when this returns, and says what it
    /// wrote. The file takes the first free number from `first_file`, which
    /// must be at least the `next_file` of this handle's state (a smaller
    /// number could be taken for a leftover and removed). Takes no lock and
    /// commits nothing, so it works on a read-only handle: many processes
    /// can stage at once, each from its own numbers. The index must be
    /// trained; the rows and ids are checked as `add` checks them (ids
    /// against this handle's live ids; the commit checks them again).
    pub fn stage_segment(
        &self,
        first_file: u64,
        data: &[f32],
        ids: &[u64],
        records: Option<&[Record]>,
    ) -> Result<StagedSegment> {
        let snap = self.snapshot();
        let c = snap.manifest.config;
        let quantizer_file = snap.manifest.quantizer_file.ok_or(Error::NotTrained)?;
        check_shape(data.len(), c.dim, "vectors")?;
        let n = data.len() / c.dim;
        if n == 0 {
            return Err(Error::InvalidInput("no vectors given".into()));
        }
        check_rows(data, c.dim, "vectors", 0)?;
        check_ids(ids, n)?;
        if let Some(r) = records.filter(|r| r.len() != n) {
            return Err(Error::InvalidInput(format!("{} records for {n} vectors", r.len())));
        }
        if first_file < snap.manifest.next_file {
            return Err(Error::invalid_argument(
                "first_file",
                format!(
                    "file number {first_file} is below the index's next file number {} (generation {}): \
                     a file there could be taken for a leftover",
                    snap.manifest.next_file, snap.manifest.generation
                ),
            ));
        }
        reject_live_ids(&snap, ids)?;
        let batch = encode_batch(&snap, data, ids, records);
        let mut numbering = snap.manifest.clone();
        numbering.next_file = first_file;
        let (_, meta) = write::write_segment_file(&*self.storage, &mut numbering, batch)?;
        // The commit refuses numbers below its next_file: nothing else can
        // have a file under this number then.
        Ok(StagedSegment { file: meta.file, vectors: meta.vectors, bytes: meta.bytes, quantizer_file })
    }

    /// Commits segments staged by [`Index::stage_segment`] (in this process
    /// or any other with the same storage) as one new generation, durable
    /// when this returns; nothing changes if any of them is refused. Each
    /// must have been encoded with the quantizers the index has now, be a
    /// file no manifest names, and hold what its [`StagedSegment`] says;
    /// their ids must be unique among them and not live in the index. The
    /// next `add` continues ids after the largest. No automatic merge runs
    /// (it would read every staged segment back here): the next `add` or
    /// `compact` merges. Needs the writer.
    pub fn commit_staged(&self, staged: &[StagedSegment]) -> Result<AddReport> {
        self.write(|_| {
            let snap = self.snapshot();
            if staged.is_empty() {
                return Err(Error::InvalidInput("no staged segments given".into()));
            }
            let quantizer_file = snap.manifest.quantizer_file.ok_or(Error::NotTrained)?;
            let named = snap.manifest.file_numbers();
            let mut next = snap.manifest.successor()?;
            let mut seen = std::collections::HashSet::new();
            for s in staged {
                let name = self.storage.describe(&segment_name(s.file));
                if s.quantizer_file != quantizer_file {
                    return Err(Error::InvalidInput(format!(
                        "{name} was encoded with quantizer file {}; the index now has {quantizer_file} \
                         (it was trained again): stage it again",
                        s.quantizer_file
                    )));
                }
                if s.file < snap.manifest.next_file && !named.contains(&s.file) {
                    return Err(Error::InvalidInput(format!(
                        "{name} is numbered below the index's next file number {} (a commit since it was \
                         staged took those numbers): stage it again",
                        snap.manifest.next_file
                    )));
                }
                if named.contains(&s.file) || !seen.insert(s.file) {
                    return Err(Error::InvalidInput(format!(
                        "{name} is {}: a staged segment is committed once",
                        if named.contains(&s.file) { "already part of the index" } else { "given twice" }
                    )));
                }
                next.segments.push(SegmentMeta {
                    file: s.file,
                    vectors: s.vectors,
                    bytes: s.bytes,
                    generation: next.generation,
                    deleted: 0,
                });
                let after =
                    s.file.checked_add(1).ok_or_else(|| Error::InvalidInput(format!("{name}: bad file number")))?;
                next.next_file = next.next_file.max(after);
            }
            // Open the new state as open would, then read the staged ids
            // (which checks each list's checksum on the way).
            let state = Snapshot::load(&*self.storage, next.clone(), Some(&snap))?;
            let ids = staged_ids(&state, staged.len())?;
            if ids.is_empty() {
                return Err(Error::InvalidInput("the staged segments hold no vectors".into()));
            }
            reject_live_ids(&snap, &ids)?;
            let (lo, hi) = (ids[0], ids[ids.len() - 1]);
            next.next_id = next.next_id.max(hi.saturating_add(1));
            drop(state);
            self.install(write::commit_or_clean(&*self.storage, &snap, next, &[])?);
            Ok(AddReport {
                ids: lo..hi + 1,
                segments: staged.iter().map(|s| s.file).collect(),
                merged: None,
                merge_error: None,
                trained: None,
            })
        })
    }
}

/// The ids of the last `count` segments of `state` (the staged ones),
/// sorted; an id in two of them (or twice in one) is refused.
fn staged_ids(state: &Snapshot, count: usize) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for seg in &state.segments[state.segments.len() - count..] {
        for l in 0..state.manifest.config.nlist {
            ids.extend(seg.list(l)?.1.iter());
        }
    }
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::InvalidInput(format!(
            "id {} is in more than one staged segment; nothing was committed",
            w[0]
        )));
    }
    Ok(ids)
}
