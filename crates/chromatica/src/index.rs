//! The public face of the engine: an [`Index`] directory, opened for writing
//! (one writer per directory, enforced with a lock file) or read-only.
//!
//! ```
//! use chromatica::{Config, Index, SearchParams, TrainOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! let config = Config { dim: 8, nlist: 4, m: 2, nbits: 4, nprobe: 2, ..Config::default() };
//! let index = Index::create(dir.path().join("idx"), config).unwrap();
//! // 500 vectors of 8 dimensions.
//! let data: Vec<f32> = (0..500 * 8).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
//! index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
//! let added = index.add(&data, None).unwrap();
//! assert_eq!(added.ids.start, 0);
//! let hits = index.search(&data[..8], &SearchParams::new(3)).unwrap();
//! assert_eq!(hits[0].len(), 3);
//! ```

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::segment::{Record, Sparse};
use crate::input::{check_rows, check_vectors, Rows, VectorSource};
use crate::quantizer::{Quantizers, TrainOptions, TrainReport, TrainStep};
use crate::read::{Neighbor, Rerank, SearchParams, Snapshot};
use crate::recovery::{self, RecoverReport};
use crate::storage::{FsStorage, Storage};
use crate::write::{self, MergePolicy};
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod staged;
pub use staged::StagedSegment;

/// An open index. `Send + Sync`: share it between threads with an `Arc`;
/// searches run concurrently, writes are serialised.
pub struct Index {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    current: RwLock<Arc<Snapshot>>,
    /// `None` when opened read-only. The mutex serialises writers within
    /// this process; the lock guard inside excludes other processes.
    writer: Option<Mutex<Writer>>,
    /// See [`Index::warnings`].
    warnings: Mutex<Vec<String>>,
}

struct Writer {
    _lock: Box<dyn Send + Sync>,
    policy: MergePolicy,
    /// Set when a commit's outcome became unknown (see [`Error::Poisoned`]).
    poisoned: Option<String>,
}

/// What `delete` did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeleteReport {
    /// Ids that were live and are now deleted.
    pub deleted: usize,
    /// File number of the tombstone file.
    pub tombstones: u64,
}

/// What `compact` (or an automatic merge) did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CompactReport {
    /// Segment files before the merge.
    pub segments_before: usize,
    /// Segment files after it.
    pub segments_after: usize,
    /// Deleted vectors physically dropped.
    pub dropped: u64,
}

/// What `add` did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AddReport {
    /// The ids given to the batch when the caller gave none (else the span
    /// from the smallest to one past the largest given id).
    pub ids: std::ops::Range<u64>,
    /// File numbers of the new segments, all committed together (one per
    /// batch of [`Index::add_from`]; one for [`Index::add`]).
    pub segments: Vec<u64>,
    /// Automatic merges run after the add (see [`MergePolicy`]).
    pub merged: Option<CompactReport>,
    /// An automatic merge or training that failed. The add itself is
    /// committed; the step is tried again after the next add.
    pub merge_error: Option<String>,
    /// Automatic training that ran after the add (`auto_train` indexes).
    pub trained: Option<TrainReport>,
}

/// Vectors already encoded with given quantizers (e.g. read from a faiss
/// index), for [`Index::create_encoded`].
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// Inverted list of each vector.
    pub lists: Vec<u32>,
    /// code_size bytes per vector.
    pub codes: Vec<u8>,
    pub ids: Vec<u64>,
}

/// Live vectors from which an `auto_train` index trains itself: below this,
/// search is exact over the refine store. 39 points for each of the 256
/// centroids of an 8-bit product quantizer (faiss's minimum).
pub const AUTO_TRAIN_MIN: u64 = 39 * 256;

/// `compact` re-trains an `auto_train` index whose collection grew this many
/// times since it was trained.
pub const RETRAIN_GROWTH: u64 = 4;

/// `nlist` for a collection of `n` vectors: about √n lists, never fewer than
/// 39 vectors per list.
pub fn adaptive_nlist(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(1, (n / 39).max(1))
}

/// The non-zero entries of a vector.
/// Encodes checked rows (n × dim) with the snapshot's quantizers, if
/// trained, into a batch for one segment: what `add` and
/// [`Index::stage_segment`] write.
fn encode_batch(snap: &Snapshot, data: &[f32], ids: &[u64], records: Option<&[Record]>) -> write::Batch {
    let c = snap.manifest.config;
    let (lists, codes) = match snap.quantizers.as_deref() {
        Some(q) => q.encode(data),
        None => (vec![0; ids.len()], Vec::new()),
    };
    write::Batch {
        lists,
        codes,
        ids: ids.to_vec(),
        refine: c.refine.then(|| data.chunks_exact(c.dim).map(sparse).collect()),
        records: records.map(<[Record]>::to_vec),
    }
}

fn sparse(v: &[f32]) -> Sparse {
    v.iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(i, &x)| (i as u16, x)).collect()
}

impl Index {
    /// Creates a new, empty, untrained index in `path`, which must be missing
    /// or an empty directory: a directory holding anything else (an index,
    /// or a user's files) is refused, and nothing is written there.
    pub fn create(path: impl AsRef<Path>, config: Config) -> Result<Index> {
        Index::create_fs(path.as_ref(), config).map(|(index, _)| index)
    }

    /// [`Index::create`], saying whether it made the directory. If it fails
    /// after making it, it removes the directory again (when empty), never
    /// anything it did not create.
    fn create_fs(path: &Path, config: Config) -> Result<(Index, bool)> {
        config.validate()?;
        if let Some(storage) = remote_storage(path)? {
            return Index::create_in(path.to_owned(), storage, config).map(|index| (index, false));
        }
        let made = make_dir(path)?;
        // Checked before locking too, so that no lock file appears in a
        // user's folder; `create_in` checks again under the lock.
        let checked = if made { Ok(()) } else { refuse_non_empty(path) };
        let created = checked.and_then(|()| Index::create_in(path.to_owned(), Arc::new(FsStorage::new(path)), config));
        match created {
            Ok(index) => Ok((index, made)),
            Err(e) => {
                if made {
                    // Only the directory this call made, and only if it is
                    // still empty (`remove_dir` refuses otherwise).
                    let _ = std::fs::remove_dir(path);
                }
                Err(e)
            }
        }
    }

    /// [`Index::create`] over any storage backend (tests use `testing::MemStorage`).
    /// The emptiness check runs with the writer lock held: of two processes
    /// creating (or importing) into one directory at once, one gets the
    /// index and the other an error, and neither removes the other's files.
    pub(crate) fn create_in(path: PathBuf, storage: Arc<dyn Storage>, config: Config) -> Result<Index> {
        config.validate()?;
        let guard = storage.lock_writer()?;
        let names = storage.list()?;
        if names.iter().any(|n| crate::format::parse_manifest_name(n).is_some()) {
            return Err(Error::AlreadyExists(path));
        }
        if names.iter().any(|n| n != crate::storage::LOCK_FILE) {
            return Err(not_empty(&path));
        }
        let manifest = write::create(&*storage, config)?;
        let snapshot = Snapshot::load(&*storage, manifest, None)?;
        Ok(Index::assemble(path, storage, snapshot, Some(guard)))
    }

    /// Creates a new index in `path` from quantizers made elsewhere and
    /// vectors already encoded with them: no training, no encoding. The
    /// quantizers and one segment holding every vector are committed
    /// together. Everything is checked before anything is written. Without
    /// the exact vectors there is no refine store, so the quantizers' config
    /// must have neither `refine` nor `auto_train`.
    pub(crate) fn create_encoded(path: impl AsRef<Path>, quantizers: Quantizers, vectors: Encoded) -> Result<Index> {
        let c = quantizers.config;
        c.validate()?;
        if c.refine || c.auto_train {
            return Err(Error::Config(
                "an index made from encoded vectors has no exact values: refine and auto_train must be off".into(),
            ));
        }
        let n = vectors.ids.len();
        if vectors.lists.len() != n || vectors.codes.len() != n * c.code_size() {
            return Err(Error::InvalidInput(format!(
                "{n} ids, {} lists and {} code bytes do not describe the same vectors ({} bytes per code)",
                vectors.lists.len(),
                vectors.codes.len(),
                c.code_size()
            )));
        }
        if let Some(l) = vectors.lists.iter().find(|&&l| l as usize >= c.nlist) {
            return Err(Error::InvalidInput(format!("list {l} is beyond nlist = {}", c.nlist)));
        }
        crate::input::check_unique_ids(&vectors.ids)?;
        let path = path.as_ref();
        let (index, made) = Index::create_fs(path, c)?;
        let filled = index.write(|_| {
            let snap = index.snapshot();
            let batch =
                write::Batch { lists: vectors.lists, codes: vectors.codes, ids: vectors.ids, ..Default::default() };
            index.install(write::commit_encoded(&*index.storage, &snap, &quantizers, batch)?);
            Ok(())
        });
        match filled {
            Ok(()) => Ok(index),
            Err(e) => {
                // The directory was empty when the lock was taken and the
                // lock is still held, so every file of ours in it is this
                // call's: remove them (user files, if any appeared, stay).
                if let Ok(names) = index.storage.list() {
                    for n in names.iter().filter(|n| crate::format::is_format_name(n)) {
                        let _ = index.storage.remove(n);
                    }
                }
                drop(index);
                if made {
                    let _ = std::fs::remove_file(path.join(crate::storage::LOCK_FILE));
                    let _ = std::fs::remove_dir(path);
                }
                Err(e)
            }
        }
    }

    /// Opens an existing index for reading and writing. Fails at once with
    /// [`Error::Locked`] if another writer has it open. Removes what an
    /// interrupted write left behind.
    pub fn open(path: impl AsRef<Path>) -> Result<Index> {
        let path = path.as_ref();
        if let Some(storage) = remote_storage(path)? {
            return Index::open_in(path.to_owned(), storage, true);
        }
        check_dir(path)?;
        Index::open_in(path.to_owned(), Arc::new(FsStorage::new(path)), true)
    }

    /// Opens an existing index read-only; works while a writer is active.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Index> {
        let path = path.as_ref();
        if let Some(storage) = remote_storage(path)? {
            return Index::open_in(path.to_owned(), storage, false);
        }
        check_dir(path)?;
        Index::open_in(path.to_owned(), Arc::new(FsStorage::new(path)), false)
    }

    /// [`Index::open`] or [`Index::open_read_only`] over any storage backend.
    pub(crate) fn open_in(path: PathBuf, storage: Arc<dyn Storage>, writable: bool) -> Result<Index> {
        // Look before locking: the lock file must not appear in a directory
        // that holds no index.
        if recovery::latest_manifest(&*storage)?.is_none() {
            return Err(Error::NotAnIndex(path));
        }
        let guard = if writable { Some(storage.lock_writer()?) } else { None };
        let loaded = load_latest(&*storage, &path, None)?;
        if writable {
            // A damaged newest manifest: committing on the older state would
            // reuse the lost generation's file numbers. Refuse until an
            // explicit `recover`.
            if let Some(e) = loaded.refusal {
                return Err(e);
            }
            // Only once the state loaded in full: its files are then known
            // to exist, and everything else of ours is a leftover.
            recovery::remove_leftovers(&*storage, &loaded.snapshot.manifest)?;
        }
        let index = Index::assemble(path, storage, loaded.snapshot, guard);
        *index.warnings.lock() = loaded.warnings;
        Ok(index)
    }

    /// Problems a read-only open (or [`Index::refresh`]) passed over: a
    /// damaged newest manifest, with the older generation shown instead.
    /// One line each, for the caller to show its user.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().clone()
    }

    /// Rolls the index at `path` back past a damaged newest manifest, the
    /// explicit recovery that writers refuse to do on their own: the damaged
    /// manifests and every file newer than the last good generation are
    /// renamed to `<name>.damaged` (kept, never deleted), after which the
    /// index opens at that generation. Takes the writer lock; with nothing
    /// damaged it changes nothing. See FORMAT.md, "Damage and recovery".
    pub fn recover(path: impl AsRef<Path>) -> Result<RecoverReport> {
        let path = path.as_ref();
        if let Some(storage) = remote_storage(path)? {
            return Index::recover_in(&*storage);
        }
        check_dir(path)?;
        Index::recover_in(&FsStorage::new(path))
    }

    /// [`Index::recover`] over any storage backend.
    pub(crate) fn recover_in(storage: &dyn Storage) -> Result<RecoverReport> {
        if recovery::latest_manifest(storage)?.is_none() {
            return Err(Error::NotAnIndex(storage.describe("").into()));
        }
        let _lock = storage.lock_writer()?;
        recovery::recover(storage)
    }

    fn assemble(
        path: PathBuf,
        storage: Arc<dyn Storage>,
        snap: Snapshot,
        guard: Option<Box<dyn Send + Sync>>,
    ) -> Index {
        let writer = guard.map(|g| Mutex::new(Writer { _lock: g, policy: MergePolicy::default(), poisoned: None }));
        Index { path, storage, current: RwLock::new(Arc::new(snap)), writer, warnings: Mutex::new(Vec::new()) }
    }

    /// Sets when segments are merged automatically after `add`.
    pub fn set_merge_policy(&self, policy: MergePolicy) -> Result<()> {
        self.writer()?.policy = policy;
        Ok(())
    }

    /// Makes `state` (just committed, loaded before its manifest was
    /// published) the current snapshot.
    fn install(&self, state: Snapshot) -> Arc<Snapshot> {
        let next = Arc::new(state);
        *self.current.write() = next.clone();
        next
    }

    /// The directory the index lives in, as given to open or create.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration the index was created with (fixed for its life).
    pub fn config(&self) -> Config {
        self.snapshot().manifest.config
    }

    /// The current committed state. Searches on it are unaffected by later
    /// writes.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Live vectors.
    pub fn len(&self) -> u64 {
        self.snapshot().vectors()
    }

    /// Whether the index holds no live vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether quantizers exist; until then search is exact (with a refine store) or fails with [`Error::NotTrained`].
    pub fn is_trained(&self) -> bool {
        self.snapshot().quantizers.is_some()
    }

    /// Re-reads the newest committed manifest (for read-only handles that
    /// want to see another process's writes).
    pub fn refresh(&self) -> Result<()> {
        let previous = self.snapshot();
        let loaded = load_latest(&*self.storage, &self.path, Some(&previous))?;
        *self.warnings.lock() = loaded.warnings;
        if loaded.snapshot.manifest.generation != previous.manifest.generation {
            *self.current.write() = Arc::new(loaded.snapshot);
        }
        Ok(())
    }

    fn writer(&self) -> Result<parking_lot::MutexGuard<'_, Writer>> {
        match &self.writer {
            Some(w) => {
                let w = w.lock();
                match &w.poisoned {
                    Some(cause) => Err(Error::Poisoned(cause.clone())),
                    None => Ok(w),
                }
            }
            None => Err(Error::ReadOnly(self.path.clone())),
        }
    }

    /// Runs a write with the writer lock held; a poisoned outcome poisons
    /// the handle.
    fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let mut w = self.writer()?;
        let r = f(&mut w);
        if let Err(Error::Poisoned(cause)) = &r {
            w.poisoned = Some(cause.clone());
        }
        r
    }

    /// Trains the coarse and product quantizers on `data` (n × dim) and
    /// commits them. `progress` sees each step.
    pub fn train(&self, data: &[f32], opts: &TrainOptions, progress: &mut dyn FnMut(TrainStep)) -> Result<TrainReport> {
        self.write(|_| self.train_locked(data, opts, progress))
    }

    fn train_locked(
        &self,
        data: &[f32],
        opts: &TrainOptions,
        progress: &mut dyn FnMut(TrainStep),
    ) -> Result<TrainReport> {
        let snap = self.snapshot();
        if snap.quantizers.is_some() {
            return Err(Error::AlreadyTrained);
        }
        let c = snap.manifest.config;
        check_vectors(data, c.dim, "training vectors")?;
        let (q, report) = Quantizers::train(&c, data, opts, progress)?;
        self.install(write::commit_quantizers(&*self.storage, &snap, &q)?);
        Ok(report)
    }

    /// Encodes and appends `data` (n × dim) as one new segment, durable when
    /// this returns. Without `ids`, ids continue from one past the largest id
    /// ever added (0 for a new index).
    pub fn add(&self, data: &[f32], ids: Option<&[u64]>) -> Result<AddReport> {
        self.add_slice(data, ids, None)
    }

    /// [`Index::add`] with a record (path, size, mtime) per vector, stored
    /// in the same segment and committed with it.
    pub fn add_records(&self, data: &[f32], ids: Option<&[u64]>, records: &[Record]) -> Result<AddReport> {
        self.add_slice(data, ids, Some(records))
    }

    /// [`Index::add`] for an input read `batch_rows` rows at a time (a
    /// vector file larger than memory). Every row (dimension, NaN/Inf,
    /// [`crate::MAX_ABS_VALUE`]) and every id (repeats, live ids) is checked
    /// before anything is written; then each batch becomes a segment, and
    /// all of them are committed together by one manifest, durable when
    /// this returns. A bad row or id anywhere leaves the index unchanged.
    pub fn add_from(&self, source: &dyn VectorSource, ids: Option<&[u64]>, batch_rows: usize) -> Result<AddReport> {
        self.write(|w| self.add_locked(w, source, ids, None, batch_rows))
    }

    fn add_slice(&self, data: &[f32], ids: Option<&[u64]>, records: Option<&[Record]>) -> Result<AddReport> {
        let dim = self.config().dim;
        crate::input::check_shape(data.len(), dim, "vectors")?;
        self.write(|w| self.add_locked(w, &Rows { data, dim }, ids, records, usize::MAX))
    }

    fn add_locked(
        &self,
        w: &mut Writer,
        source: &dyn VectorSource,
        ids: Option<&[u64]>,
        records: Option<&[Record]>,
        batch_rows: usize,
    ) -> Result<AddReport> {
        let snap = self.snapshot();
        let c = snap.manifest.config;
        // Without quantizers, vectors can still be kept exactly (refine store).
        if snap.quantizers.is_none() && !c.refine {
            return Err(Error::NotTrained);
        }
        crate::input::check_dim(source.dim(), c.dim, "vectors")?;
        let n = source.rows();
        if n == 0 {
            return Err(Error::InvalidInput("no vectors given".into()));
        }
        let step = batch_rows.clamp(1, n);
        let batches = || (0..n).step_by(step).map(move |start| (start, step.min(n - start)));
        // The whole input is checked before anything is written.
        let mut buf = Vec::new();
        for (start, count) in batches() {
            check_rows(source.read(start, count, &mut buf)?, c.dim, "vectors", start)?;
        }
        if let Some(r) = records.filter(|r| r.len() != n) {
            return Err(Error::InvalidInput(format!("{} records for {n} vectors", r.len())));
        }
        let ids: Vec<u64> = match ids {
            Some(ids) => {
                check_ids(ids, n)?;
                reject_live_ids(&snap, ids)?;
                ids.to_vec()
            }
            None => {
                let start = snap.manifest.next_id;
                start.checked_add(n as u64).ok_or_else(|| Error::InvalidInput("id space exhausted".into()))?;
                (start..start + n as u64).collect()
            }
        };
        // One segment per batch, written durably but named by no manifest
        // until all are: the add is one commit.
        let mut pending = write::Pending::new(&*self.storage, &snap)?;
        let mut segments = Vec::new();
        for (start, count) in batches() {
            let data = source.read(start, count, &mut buf)?;
            let rows = start..start + count;
            let batch = encode_batch(&snap, data, &ids[rows.clone()], records.map(|r| &r[rows]));
            segments.push(pending.add_segment(batch)?);
        }
        let mut snap = self.install(pending.publish()?);
        let (mut merged, mut merge_error) = (None, None);
        while let Some(victims) = w.policy.candidates(&snap.manifest.segments) {
            match self.merge(&snap, &victims) {
                Ok((next, report)) => {
                    snap = next;
                    let total = merged
                        .get_or_insert(CompactReport { segments_before: report.segments_before, ..Default::default() });
                    total.segments_after = report.segments_after;
                    total.dropped += report.dropped;
                }
                Err(e) => {
                    if let Error::Poisoned(cause) = &e {
                        w.poisoned = Some(cause.clone());
                    }
                    merge_error = Some(e.to_string());
                    break;
                }
            }
        }
        let mut trained = None;
        if c.auto_train && merge_error.is_none() {
            match self.auto_train(&snap) {
                Ok(r) => trained = r,
                Err(e) => {
                    if let Error::Poisoned(cause) = &e {
                        w.poisoned = Some(cause.clone());
                    }
                    merge_error = Some(format!("automatic training failed: {e}"));
                }
            }
        }
        let lo = *ids.iter().min().expect("non-empty");
        let hi = *ids.iter().max().expect("non-empty");
        Ok(AddReport { ids: lo..hi + 1, segments, merged, merge_error, trained })
    }

    /// Trains an auto-training index once it holds enough vectors.
    fn auto_train(&self, snap: &Arc<Snapshot>) -> Result<Option<TrainReport>> {
        if snap.quantizers.is_some() || snap.vectors() < AUTO_TRAIN_MIN {
            return Ok(None);
        }
        self.retrain_from(snap, &TrainOptions::default()).map(Some)
    }

    /// Re-trains the quantizers on the stored vectors and re-encodes every
    /// live vector from the refine store, in one crash-safe commit. Indexes
    /// with `auto_train` also choose `nlist` from the collection size.
    pub fn retrain(&self, opts: &TrainOptions) -> Result<TrainReport> {
        self.write(|_| {
            let snap = self.snapshot();
            self.retrain_from(&snap, opts)
        })
    }

    fn retrain_from(&self, snap: &Arc<Snapshot>, opts: &TrainOptions) -> Result<TrainReport> {
        let mut c = snap.manifest.config;
        if !c.refine {
            return Err(Error::Config("re-training needs the refine store (create the index with --refine)".into()));
        }
        let n = snap.vectors() as usize;
        if c.auto_train {
            c.nlist = adaptive_nlist(n);
            // At least a tenth of the lists, never more than there are.
            c.nprobe = c.nprobe.max(c.nlist / 10).clamp(1, c.nlist);
        }
        let sample = snap.sample_live(256 * c.nlist.max(c.ksub()), opts.seed)?;
        // The sample touched pages all over the refine store: drop them from
        // this process's resident set (re-encoding reads each list once).
        snap.segments.iter().for_each(|s| s.release_pages());
        // Vectors stored before values were limited may be out of range:
        // say so rather than train quantizers that would not open.
        if !sample.is_empty() {
            check_vectors(&sample, c.dim, "stored vectors (training sample)")?;
        }
        let (q, report) = Quantizers::train(&c, &sample, opts, &mut |_| ())?;
        self.install(write::commit_retrain(&*self.storage, snap, &q)?);
        Ok(report)
    }

    /// Marks `ids` deleted with one durable tombstone file. Every id must be
    /// live; otherwise nothing is written and the error names the first
    /// unknown ids. A deleted id may be added again later.
    pub fn delete(&self, ids: &[u64]) -> Result<DeleteReport> {
        self.write(|_| self.delete_locked(ids))
    }

    fn delete_locked(&self, ids: &[u64]) -> Result<DeleteReport> {
        let snap = self.snapshot();
        if ids.is_empty() {
            return Err(Error::InvalidInput("no ids to delete".into()));
        }
        crate::input::check_unique_ids(ids)?;
        let wanted: HashSet<u64> = ids.iter().copied().collect();
        let mut found = HashSet::with_capacity(ids.len());
        let mut per_segment = vec![0u64; snap.segments.len()];
        snap.for_each_live(|si, _, id| {
            if wanted.contains(&id) {
                found.insert(id);
                per_segment[si] += 1;
            }
        })?;
        if found.len() < wanted.len() {
            let mut unknown: Vec<u64> = wanted.difference(&found).copied().collect();
            unknown.sort_unstable();
            let shown: Vec<String> = unknown.iter().take(5).map(u64::to_string).collect();
            return Err(Error::InvalidInput(format!(
                "{} of {} ids are not in the index ({}{}); nothing was deleted",
                unknown.len(),
                ids.len(),
                shown.join(", "),
                if unknown.len() > 5 { ", …" } else { "" }
            )));
        }
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let state = write::commit_tombstones(&*self.storage, &snap, &sorted, &per_segment)?;
        let tombstones = state.manifest.tombstones.last().expect("just added").file;
        self.install(state);
        Ok(DeleteReport { deleted: ids.len(), tombstones })
    }

    /// Merges every segment into one and drops deleted vectors. Searches
    /// keep running on their snapshots meanwhile; a crash leaves the old or
    /// the new state.
    pub fn compact(&self) -> Result<CompactReport> {
        self.write(|_| self.compact_locked())
    }

    fn compact_locked(&self) -> Result<CompactReport> {
        let snap = self.snapshot();
        if snap.segments.len() <= 1 && snap.manifest.tombstones.is_empty() {
            let n = snap.segments.len();
            return Ok(CompactReport { segments_before: n, segments_after: n, dropped: 0 });
        }
        let before = snap.segments.len();
        // A collection that grew several-fold since training is re-trained
        // (which also merges everything) rather than just merged.
        let c = snap.manifest.config;
        if c.auto_train && snap.quantizers.is_some() && snap.vectors() >= RETRAIN_GROWTH * snap.manifest.trained_vectors
        {
            let stored = snap.manifest.stored_vectors();
            self.retrain_from(&snap, &TrainOptions::default())?;
            let next = self.snapshot();
            return Ok(CompactReport {
                segments_before: before,
                segments_after: next.segments.len(),
                dropped: stored - next.manifest.stored_vectors(),
            });
        }
        let all: Vec<usize> = (0..before).collect();
        Ok(self.merge(&snap, &all)?.1)
    }

    /// Merges `victims` of `snap` (the writer lock is held by the caller).
    fn merge(&self, snap: &Arc<Snapshot>, victims: &[usize]) -> Result<(Arc<Snapshot>, CompactReport)> {
        let before = snap.manifest.segments.len();
        let next = self.install(write::commit_merge(&*self.storage, snap, victims)?);
        // Not asserted to be at most the manifest's deleted count: a damaged
        // manifest whose counts disagree with its tombstones still opens for
        // writing (only `verify` counts what tombstones hide), and must not
        // make a merge panic.
        let dropped = snap.manifest.stored_vectors() - next.manifest.stored_vectors();
        Ok((next.clone(), CompactReport { segments_before: before, segments_after: next.segments.len(), dropped }))
    }

    /// The `k` nearest stored vectors of each query (rows of `queries`).
    pub fn search(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<Neighbor>>> {
        self.snapshot().search(queries, params)
    }

    /// Reads every byte of the index at `path` and checks every checksum and
    /// invariant of its files, and lists leftovers. Takes no lock and changes nothing.
    pub fn verify(path: impl AsRef<Path>) -> Result<crate::VerifyReport> {
        let path = path.as_ref();
        if let Some(storage) = remote_storage(path)? {
            return crate::verify::verify(&*storage);
        }
        check_dir(path)?;
        crate::verify::verify(&FsStorage::new(path))
    }

    /// Like [`Index::verify`], but lists every problem in every file (with
    /// file and byte offset) instead of stopping at the first, and what
    /// remains readable: lists and vectors per segment. Takes no lock and
    /// changes nothing; a damaged index is a report, not an error.
    pub fn verify_all(path: impl AsRef<Path>) -> Result<crate::DamageReport> {
        let path = path.as_ref();
        check_dir(path)?;
        crate::verify::verify_all(&FsStorage::new(path))
    }

    /// Stores `nprobe` and `candidates` as the defaults of searches
    /// re-ranked like `rerank`, in one commit (what `chromatica tune`
    /// stores): [`Rerank::L2`] or [`Rerank::Off`] sets the index's nprobe
    /// and the candidates of L2 re-ranking; [`Rerank::ExactEmd`] or
    /// [`Rerank::Emd`] sets both for EMD re-ranking (colour searches)
    /// only, so that a setting tuned against one truth never governs the
    /// other. A search that says otherwise uses what it says.
    pub fn set_search_defaults(&self, rerank: Rerank, nprobe: usize, candidates: usize) -> Result<()> {
        self.write(|_| {
            let snap = self.snapshot();
            let nlist = snap.manifest.config.nlist;
            if nprobe == 0 || nprobe > nlist {
                return Err(Error::invalid_argument(
                    "nprobe",
                    format!("nprobe must be between 1 and nlist ({nlist}), got {nprobe}"),
                ));
            }
            if candidates == 0 || candidates > u32::MAX as usize {
                return Err(Error::invalid_argument(
                    "candidates",
                    format!("candidates must be between 1 and {}, got {candidates}", u32::MAX),
                ));
            }
            let mut next = snap.manifest.successor()?;
            match rerank {
                Rerank::Emd(_) | Rerank::ExactEmd => {
                    next.defaults.emd_nprobe = Some(nprobe);
                    next.defaults.emd_candidates = Some(candidates);
                }
                _ => {
                    next.config.nprobe = nprobe;
                    next.defaults.candidates = Some(candidates);
                }
            }
            let state = write::commit_or_clean(&*self.storage, &snap, next, &[])?;
            self.install(state);
            Ok(())
        })
    }

    /// Creates a new index on an object-storage backend built by the caller
    /// (a custom store, cache or orphan grace); `label` names it in
    /// messages and is what [`Index::path`] returns. `Index::create` with an
    /// `s3://bucket/prefix` path does the same from the environment.
    #[cfg(feature = "object-store")]
    pub fn create_object(label: impl Into<PathBuf>, storage: crate::ObjectStorage, config: Config) -> Result<Index> {
        Index::create_in(label.into(), Arc::new(storage), config)
    }

    /// Opens an index on an object-storage backend built by the caller, for
    /// writing or read-only (see [`Index::create_object`]).
    #[cfg(feature = "object-store")]
    pub fn open_object(label: impl Into<PathBuf>, storage: crate::ObjectStorage, writable: bool) -> Result<Index> {
        Index::open_in(label.into(), Arc::new(storage), writable)
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.storage
    }
}

/// What [`load_latest`] found.
struct Loaded {
    snapshot: Snapshot,
    /// For read-only handles: a damaged newer manifest was passed over.
    warnings: Vec<String>,
    /// For writers: the error that refuses them, if so.
    refusal: Option<Error>,
}

/// Loads the newest manifest and what it names. A reader can race a writer
/// that retires files right after publishing a newer manifest: a file that
/// vanished means "look again".
fn load_latest(storage: &dyn Storage, path: &Path, previous: Option<&Snapshot>) -> Result<Loaded> {
    let mut attempt = 0;
    loop {
        let found = recovery::find_manifest(storage)?.ok_or_else(|| Error::NotAnIndex(path.to_owned()))?;
        let warnings = found.warnings(&path.display().to_string());
        let refusal = found.refuse_writers().err();
        match Snapshot::load(storage, found.manifest, previous) {
            Err(e) if recovery::is_not_found(&e) && attempt < 100 => attempt += 1,
            other => return other.map(|snapshot| Loaded { snapshot, warnings, refusal }),
        }
    }
}

/// Explicit ids must not name live vectors: adding an existing id rejects
/// the whole batch (delete it first). Ids at or above `next_id` were never
/// used, so the scan is skipped when the batch lies entirely above it.
fn reject_live_ids(snap: &Snapshot, ids: &[u64]) -> Result<()> {
    if ids.iter().all(|&id| id >= snap.manifest.next_id) {
        return Ok(());
    }
    let batch: HashSet<u64> = ids.iter().copied().collect();
    let mut clash = None;
    snap.for_each_live(|_, _, id| {
        if batch.contains(&id) {
            clash = Some(clash.map_or(id, |c: u64| c.min(id)));
        }
    })?;
    match clash {
        Some(id) => Err(Error::InvalidInput(format!(
            "id {id} is already in the index; the batch was rejected (delete the id first to replace its vector)"
        ))),
        None => Ok(()),
    }
}

/// Makes `path` (and missing parents), durably. Returns whether this call
/// made `path` itself; an existing directory is fine, anything else there is
/// an error.
fn make_dir(path: &Path) -> Result<bool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => {
            // Make the new directory's own name durable.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                FsStorage::new(parent).sync_dir()?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(false),
            _ => Err(Error::invalid_argument("path", format!("{}: exists and is not a directory", path.display()))),
        },
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Refuses a directory holding anything but a lock file: an index there is
/// [`Error::AlreadyExists`]; anything else is probably a folder of the
/// user's given in the wrong place.
fn refuse_non_empty(path: &Path) -> Result<()> {
    let mut others = false;
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let name = entry.map_err(|e| Error::io(path, e))?.file_name();
        if name.to_str().is_some_and(|n| crate::format::parse_manifest_name(n).is_some()) {
            return Err(Error::AlreadyExists(path.to_owned()));
        }
        others |= name != crate::storage::LOCK_FILE;
    }
    if others {
        return Err(not_empty(path));
    }
    Ok(())
}

fn not_empty(path: &Path) -> Error {
    Error::DirectoryNotEmpty(path.to_owned())
}

/// Whether `path` is an object-storage address (`s3://bucket/prefix`)
/// rather than a directory.
pub(crate) fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// The backend for an object-storage address, `None` for a directory.
fn remote_storage(path: &Path) -> Result<Option<Arc<dyn Storage>>> {
    if !is_remote(path) {
        return Ok(None);
    }
    #[cfg(feature = "object-store")]
    {
        let uri = path.to_str().unwrap_or_default();
        Ok(Some(Arc::new(crate::ObjectStorage::from_s3_uri(uri)?)))
    }
    #[cfg(not(feature = "object-store"))]
    Err(Error::Unsupported {
        path: path.to_owned(),
        what: "object storage (s3://) needs a build with the `object-store` feature".into(),
    })
}

fn check_dir(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotAnIndex(path.to_owned())),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Ids given by the caller: one per vector, no repeats within the batch.
fn check_ids(ids: &[u64], n: usize) -> Result<()> {
    if ids.len() != n {
        return Err(Error::InvalidInput(format!("{} ids for {n} vectors", ids.len())));
    }
    crate::input::check_unique_ids(ids)
}
