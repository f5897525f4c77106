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
    manifest_name, parse_manifest_name, quantizer_name, segment, segment_name, tombstone_file, tombstone_name,
    TEMP_SUFFIX,
};
use crate::quantizer::Quantizers;
use crate::read::Snapshot;
use crate::storage::{write_file, Storage};

/// Publishes `next` as the current manifest, then drops the one it replaces.
pub fn commit(storage: &dyn Storage, next: &Manifest, replaces: Option<u64>) -> Result<()> {
    let name = manifest_name(next.generation);
    let tmp = format!("{name}{TEMP_SUFFIX}");
    if let Err(e) = write_file(storage, &tmp, &next.encode()).and_then(|()| storage.rename(&tmp, &name)) {
        // Nothing is visible yet: the new manifest never got its name.
        let _ = storage.remove(&tmp);
        return Err(e);
    }
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

/// Writes a new file with the next file number and makes it and its name
/// durable. Returns the number.
pub(crate) fn write_numbered(
    storage: &dyn Storage,
    manifest: &mut Manifest,
    name: fn(u64) -> String,
    bytes: &[u8],
) -> Result<u64> {
    let number = manifest.next_file;
    manifest.next_file += 1;
    let file = name(number);
    let written = write_file(storage, &file, bytes).and_then(|()| storage.sync_dir());
    if let Err(e) = written {
        let _ = storage.remove(&file);
        return Err(e);
    }
    Ok(number)
}

/// Commits trained quantizers. Returns the new state.
pub fn commit_quantizers(storage: &dyn Storage, current: &Snapshot, q: &Quantizers) -> Result<Snapshot> {
    let mut next = current.manifest.clone();
    next.generation += 1;
    let number = write_numbered(storage, &mut next, quantizer_name, &q.to_data().encode())?;
    next.quantizer_file = Some(number);
    commit_or_clean(storage, current, next, &[quantizer_name(number)])
}

/// Commits quantizers made elsewhere together with vectors already encoded
/// with them (an import) in one manifest: a crash leaves the index as it
/// was, or holding both. Returns the new state.
pub fn commit_encoded(storage: &dyn Storage, current: &Snapshot, q: &Quantizers, batch: Batch) -> Result<Snapshot> {
    let mut pending = Pending::new(storage, current);
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
    pub fn new(storage: &'a dyn Storage, current: &'a Snapshot) -> Pending<'a> {
        let mut next = current.manifest.clone();
        next.generation += 1;
        Pending { storage, current, next, files: Vec::new() }
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
pub fn commit_segment(storage: &dyn Storage, current: &Snapshot, batch: Batch) -> Result<Snapshot> {
    let mut pending = Pending::new(storage, current);
    pending.add_segment(batch)?;
    pending.publish()
}

/// Writes a segment as a new durable file and lists it in `next`, the
/// manifest being prepared: the segment takes its generation, and has codes
/// exactly when `next` names quantizers. Returns the file name.
pub(crate) fn write_segment(storage: &dyn Storage, next: &mut Manifest, batch: Batch) -> Result<String> {
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
    next.segments.push(SegmentMeta {
        file: number,
        vectors: b.len() as u64,
        bytes: bytes.len() as u64,
        generation: next.generation,
        deleted: 0,
    });
    Ok(segment_name(number))
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
    let mut next = current.manifest.clone();
    for (s, &n) in next.segments.iter_mut().zip(per_segment) {
        s.deleted += n;
    }
    next.generation += 1;
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

/// The newest manifest that decodes, or `None` if there is no manifest at
/// all. A newer manifest that fails its checks (torn or damaged) is skipped
/// in favour of the newest valid one; if none is valid, the newest one's
/// error is returned.
pub fn latest_manifest(storage: &dyn Storage) -> Result<Option<Manifest>> {
    Ok(find_manifest(storage)?.map(|f| f.manifest))
}

/// What [`find_manifest`] found.
pub struct Found {
    pub manifest: Manifest,
    /// A newer manifest failed its checks and was passed over: its files
    /// must not be treated as leftovers.
    pub skipped_damaged: bool,
}

/// [`latest_manifest`], saying whether a damaged newer manifest was skipped.
/// A manifest that vanishes between listing and reading was retired by a
/// writer that just published a newer one: the directory is listed again.
pub fn find_manifest(storage: &dyn Storage) -> Result<Option<Found>> {
    let mut attempt = 0;
    'list: loop {
        let mut gens: Vec<u64> = storage.list()?.iter().filter_map(|n| parse_manifest_name(n)).collect();
        gens.sort_unstable_by(|a, b| b.cmp(a));
        let mut first_err = None;
        for g in gens {
            let name = manifest_name(g);
            let decoded = storage.map(&name).and_then(|b| Manifest::decode(&b, &storage.describe(&name)));
            match decoded {
                Ok(m) if m.generation == g => {
                    return Ok(Some(Found { manifest: m, skipped_damaged: first_err.is_some() }));
                }
                Ok(_) => {
                    first_err.get_or_insert(Error::corrupt(
                        storage.describe(&name),
                        16,
                        "generation differs from file name",
                    ));
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 100 => {
                    attempt += 1;
                    continue 'list;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        return first_err.map_or(Ok(None), Err);
    }
}

/// Removes what a crash may have left behind: temporary files, manifests
/// other than `current`, and numbered files `current` does not name. Files
/// with names the engine does not use are left alone. Returns what it removed.
pub fn remove_leftovers(storage: &dyn Storage, current: &Manifest) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in current.leftovers(storage.list()?) {
        storage.remove(&name)?;
        removed.push(name);
    }
    if !removed.is_empty() {
        storage.sync_dir()?;
    }
    Ok(removed)
}
