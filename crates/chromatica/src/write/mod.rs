//! The write path. Every change follows the same commit protocol (FORMAT.md,
//! "Commit protocol"): write new immutable files and sync them, sync the
//! directory, then publish a new manifest by temp file + sync + rename +
//! directory sync. Nothing is ever modified in place, so a crash at any
//! point leaves the previous manifest and everything it names intact.

mod merge;

pub use merge::{commit_merge, commit_retrain, MergePolicy};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::manifest::{Manifest, SegmentMeta, TombstoneMeta};
use crate::format::segment::{Record, SegmentInput, Sparse};
use crate::format::{
    manifest_name, manifest_temp_name, quantizer_name, segment, segment_name, tombstone_file, tombstone_name,
};
use crate::quantizer::Quantizers;
use crate::read::Snapshot;
use crate::storage::{Storage, StorageFile};

/// Publishes `next` as the current manifest, then drops the one it replaces.
pub fn commit(storage: &dyn Storage, next: &Manifest, replaces: Option<u64>) -> Result<()> {
    let name = manifest_name(next.generation);
    let published = write_manifest_temp(storage, next).and_then(|tmp| {
        storage.rename(&tmp, &name).inspect_err(|_| {
            // Nothing is visible yet: the new manifest never got its name.
            let _ = storage.remove(&tmp);
        })
    });
    published?;
    if let Err(e) = storage.sync_dir() {
        // The new manifest is visible but may not be durable: the outcome is
        // unknown. Withdraw it; if even that cannot be made durable, only a
        // reopen can tell which state the disk holds.
        return match storage.remove(&name).and_then(|()| storage.sync_dir()) {
            Ok(()) => Err(e),
            Err(undo) => Err(Error::Poisoned(format!("{e}; withdrawing the new manifest failed too: {undo}"))),
        };
    }
    if let Some(g) = replaces.filter(|&g| g != next.generation) {
        // Best effort: a leftover older manifest is ignored and removed at
        // the next open.
        let _ = storage.remove(&manifest_name(g));
    }
    Ok(())
}

/// Writes `next` to a new temporary file, synced; returns its name. The
/// writer lock is held, so an entry of the usual name is not another
/// writer's: a leftover, unlinked (which never touches a link's target), or
/// something planted that will not go (a directory), passed over for the
/// next temporary name.
fn write_manifest_temp(storage: &dyn Storage, next: &Manifest) -> Result<String> {
    let bytes = next.encode();
    let (mut k, mut unlinked) = (0, false);
    loop {
        let tmp = manifest_temp_name(next.generation, k);
        match storage.create(&tmp) {
            Err(e) if crate::fsutil::is_already_exists(&e) && k < 16 => {
                // Unlink once (only when the name is taken, so a normal
                // commit makes no extra call); if it stays, the next name.
                if !unlinked && storage.remove(&tmp).is_ok() {
                    unlinked = true;
                } else {
                    (k, unlinked) = (k + 1, false);
                }
            }
            Err(e) => return Err(e),
            Ok(mut f) => {
                return match f.write_all(&bytes).and_then(|()| f.sync()) {
                    Ok(()) => Ok(tmp),
                    Err(e) => {
                        let _ = storage.remove(&tmp);
                        Err(e)
                    }
                };
            }
        }
    }
}

/// Numbers skipped at most per new file when their names are taken.
const MAX_TAKEN_NUMBERS: u64 = 64;

/// Writes a new file with the next file number and makes it and its name
/// durable. Returns the number. A number whose name is already taken in the
/// directory (a link or directory planted after the writer opened, or a
/// leftover) is skipped, never written through: numbers only need to be
/// unused, not consecutive.
pub(crate) fn write_numbered(
    storage: &dyn Storage,
    manifest: &mut Manifest,
    name: fn(u64) -> String,
    bytes: &[u8],
) -> Result<u64> {
    write_numbered_with(storage, manifest, name, &mut |f| f.write_all(bytes))
}

/// [`write_numbered`] with the contents written by `write` (a streamed
/// segment), which may append to the file any number of times.
pub(crate) fn write_numbered_with(
    storage: &dyn Storage,
    manifest: &mut Manifest,
    name: fn(u64) -> String,
    write: &mut dyn FnMut(&mut dyn StorageFile) -> Result<()>,
) -> Result<u64> {
    let mut skipped = 0;
    loop {
        let number = manifest.next_file;
        manifest.next_file = number
            .checked_add(1)
            .ok_or_else(|| Error::InvalidInput("file numbers exhausted (next_file is at 2^64)".into()))?;
        let file = name(number);
        let created = storage.create(&file);
        let mut f = match created {
            Err(e) if crate::fsutil::is_already_exists(&e) && skipped < MAX_TAKEN_NUMBERS => {
                skipped += 1;
                continue;
            }
            other => other?,
        };
        let written = write(&mut *f).and_then(|()| f.sync()).and_then(|()| storage.sync_dir());
        if let Err(e) = written {
            let _ = storage.remove(&file);
            return Err(e);
        }
        return Ok(number);
    }
}

/// Commits trained quantizers. Returns the new state.
pub fn commit_quantizers(storage: &dyn Storage, current: &Snapshot, q: &Quantizers) -> Result<Snapshot> {
    let mut next = current.manifest.successor()?;
    let number = write_numbered(storage, &mut next, quantizer_name, &q.to_data().encode())?;
    next.quantizer_file = Some(number);
    commit_or_clean(storage, current, next, &[quantizer_name(number)])
}

/// Commits quantizers made elsewhere together with vectors already encoded
/// with them (an import) in one manifest: a crash leaves the index as it
/// was, or holding both. Returns the new state.
pub fn commit_encoded(storage: &dyn Storage, current: &Snapshot, q: &Quantizers, batch: Batch) -> Result<Snapshot> {
    let mut pending = Pending::new(storage, current)?;
    let number = write_numbered(storage, &mut pending.next, quantizer_name, &q.to_data().encode())?;
    pending.next.quantizer_file = Some(number);
    pending.files.push(quantizer_name(number));
    if !batch.is_empty() {
        pending.add_segment(batch)?;
    }
    pending.publish()
}

/// Vectors on their way into a segment, in any list order.
#[derive(Default)]
pub struct Batch {
    /// Inverted list of each vector (all 0 in an untrained index).
    pub lists: Vec<u32>,
    /// code_size bytes per vector (nothing in an untrained index).
    pub codes: Vec<u8>,
    pub ids: Vec<u64>,
    pub refine: Option<Vec<Sparse>>,
    pub records: Option<Vec<Record>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Reorders the batch by list (stable) and counts each list.
    fn grouped(self, nlist: usize) -> (Vec<u32>, Batch) {
        let n = self.len();
        let cs = self.codes.len().checked_div(n).unwrap_or(0);
        let mut counts = vec![0u32; nlist];
        for &l in &self.lists {
            counts[l as usize] += 1;
        }
        // A merge's batch comes list by list already: no second copy.
        if self.lists.is_sorted() {
            return (counts, self);
        }
        let mut slot: Vec<usize> = counts
            .iter()
            .scan(0usize, |acc, &c| {
                let s = *acc;
                *acc += c as usize;
                Some(s)
            })
            .collect();
        let mut order = vec![0usize; n];
        for (i, &l) in self.lists.iter().enumerate() {
            order[slot[l as usize]] = i;
            slot[l as usize] += 1;
        }
        let mut codes = Vec::with_capacity(self.codes.len());
        for &i in &order {
            codes.extend_from_slice(&self.codes[i * cs..(i + 1) * cs]);
        }
        // The batch is ours: move each vector's refine values and record into
        // place rather than copying them.
        fn permute<T>(v: Option<Vec<T>>, order: &[usize]) -> Option<Vec<T>> {
            v.map(|v| {
                let mut slots: Vec<Option<T>> = v.into_iter().map(Some).collect();
                order.iter().map(|&i| slots[i].take().expect("order is a permutation")).collect()
            })
        }
        let grouped = Batch {
            lists: order.iter().map(|&i| self.lists[i]).collect(),
            codes,
            ids: order.iter().map(|&i| self.ids[i]).collect(),
            refine: permute(self.refine, &order),
            records: permute(self.records, &order),
        };
        (counts, grouped)
    }
}

/// A commit being prepared: the next manifest, and the new files written
/// for it under names no manifest names yet. Dropped unpublished (an error
/// on the way), it removes those files: nothing was visible.
pub struct Pending<'a> {
    storage: &'a dyn Storage,
    current: &'a Snapshot,
    next: Manifest,
    files: Vec<String>,
}

impl<'a> Pending<'a> {
    pub fn new(storage: &'a dyn Storage, current: &'a Snapshot) -> Result<Pending<'a>> {
        Ok(Pending { storage, current, next: current.manifest.successor()?, files: Vec::new() })
    }

    /// Writes one batch (vectors in input order) as a new durable segment
    /// that the commit will name. Returns its file number.
    pub fn add_segment(&mut self, batch: Batch) -> Result<u64> {
        let max_id = batch.ids.iter().copied().max().expect("non-empty batch");
        let name = write_segment(self.storage, &mut self.next, batch)?;
        self.files.push(name);
        self.next.next_id = self.next.next_id.max(max_id.saturating_add(1));
        Ok(self.next.segments.last().expect("just added").file)
    }

    /// Publishes the manifest naming every file written (see
    /// [`commit_or_clean`]). Returns the new state.
    pub fn publish(mut self) -> Result<Snapshot> {
        let files = std::mem::take(&mut self.files);
        commit_or_clean(self.storage, self.current, self.next.clone(), &files)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = self.storage.remove(f);
        }
    }
}

/// Commits one batch (vectors in input order) as a new segment.
#[cfg(any(test, feature = "testing"))]
pub fn commit_segment(storage: &dyn Storage, current: &Snapshot, batch: Batch) -> Result<Snapshot> {
    let mut pending = Pending::new(storage, current)?;
    pending.add_segment(batch)?;
    pending.publish()
}

/// Writes a segment as a new durable file and lists it in `next`, the
/// manifest being prepared: the segment takes its generation, and has codes
/// exactly when `next` names quantizers. Returns the file name.
pub(crate) fn write_segment(storage: &dyn Storage, next: &mut Manifest, batch: Batch) -> Result<String> {
    let (name, meta) = write_segment_file(storage, next, batch)?;
    next.segments.push(meta);
    Ok(name)
}

/// [`write_segment`] without listing the file in `next` (a retrain's
/// scratch segments): returns its name and the entry it would have.
pub(crate) fn write_segment_file(
    storage: &dyn Storage,
    next: &mut Manifest,
    batch: Batch,
) -> Result<(String, SegmentMeta)> {
    let (counts, b) = batch.grouped(next.config.nlist);
    let (code_size, q) = match next.quantizer_file {
        Some(q) => (next.config.code_size(), q),
        None => (0, 0),
    };
    let bytes = segment::encode(&SegmentInput {
        code_size,
        quantizer_file: q,
        counts: &counts,
        codes: &b.codes,
        ids: &b.ids,
        refine: b.refine.as_deref(),
        records: b.records.as_deref(),
        fast_scan: next.config.fast_scan,
    });
    let number = write_numbered(storage, next, segment_name, &bytes)?;
    let meta = SegmentMeta {
        file: number,
        vectors: b.len() as u64,
        bytes: bytes.len() as u64,
        generation: next.generation,
        deleted: 0,
    };
    Ok((segment_name(number), meta))
}

/// Checks that `next` would open (see [`check_opens`]), then publishes it
/// in place of `current`'s manifest. On failure the new files are removed
/// (unless the outcome is unknown) and the state stays `current`. Returns
/// the new state, already loaded.
pub(crate) fn commit_or_clean(
    storage: &dyn Storage,
    current: &Snapshot,
    next: Manifest,
    new_files: &[String],
) -> Result<Snapshot> {
    let clean = || {
        for f in new_files {
            let _ = storage.remove(f);
        }
    };
    let state = check_opens(storage, current, next).inspect_err(|_| clean())?;
    commit(storage, &state.manifest, Some(current.manifest.generation)).inspect_err(|e| {
        // After a poisoned commit the new manifest may be the durable state:
        // its files must stay.
        if !matches!(e, Error::Poisoned(_)) {
            clean();
        }
    })?;
    Ok(state)
}

/// The backstop of "no command may commit a state that open would
/// reject": before its manifest gets a name, the new state is decoded as
/// open decodes it — the manifest from its encoded bytes, then every file it
/// names by [`Snapshot::load`], the decoders open uses (quantizer values
/// finite, segment header and list directory, tombstones). Files `current`
/// has open are shared, not decoded again; the new ones are read back from
/// what was just written (the page cache). Opening an index costs O(nlist)
/// per segment, never O(vectors), so neither does this check.
fn check_opens(storage: &dyn Storage, current: &Snapshot, next: Manifest) -> Result<Snapshot> {
    let name = storage.describe(&manifest_name(next.generation));
    let refuse = |e: Error| Error::WouldNotOpen(Box::new(e));
    let decoded = Manifest::decode(&next.encode(), &name).map_err(refuse)?;
    if decoded != next {
        return Err(refuse(Error::corrupt(name, 0, "the manifest does not decode to what was encoded")));
    }
    Snapshot::load(storage, decoded, Some(current)).map_err(refuse)
}

/// Commits a tombstone file deleting `ids` (sorted, unique, all live);
/// `per_segment[i]` of them are stored in segment i.
pub fn commit_tombstones(
    storage: &dyn Storage,
    current: &Snapshot,
    ids: &[u64],
    per_segment: &[u64],
) -> Result<Snapshot> {
    let mut next = current.manifest.successor()?;
    for (s, &n) in next.segments.iter_mut().zip(per_segment) {
        s.deleted += n;
    }
    let number = write_numbered(storage, &mut next, tombstone_name, &tombstone_file::encode(ids))?;
    next.tombstones.push(TombstoneMeta { file: number, ids: ids.len() as u64, generation: next.generation });
    commit_or_clean(storage, current, next, &[tombstone_name(number)])
}

/// Creates the first manifest of a new index.
pub fn create(storage: &dyn Storage, config: Config) -> Result<Manifest> {
    let m = Manifest::new(config);
    commit(storage, &m, None)?;
    Ok(m)
}
