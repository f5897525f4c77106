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
use crate::input::check_vectors;
use crate::quantizer::{Quantizers, TrainOptions, TrainReport, TrainStep};
use crate::read::{Neighbor, SearchParams, Snapshot};
use crate::storage::{FsStorage, Storage};
use crate::write;
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open index. `Send + Sync`: share it between threads with an `Arc`;
/// searches run concurrently, writes are serialised.
pub struct Index {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    current: RwLock<Arc<Snapshot>>,
    /// The writer lock guard; `None` when opened read-only. The mutex
    /// serialises writers within this process.
    writer: Option<Mutex<Box<dyn Send + Sync>>>,
}

/// What `add` did.
#[derive(Clone, Debug)]
pub struct AddReport {
    /// The ids given to the batch when the caller gave none (else the span
    /// from the smallest to one past the largest given id).
    pub ids: std::ops::Range<u64>,
    /// File number of the new segment.
    pub segment: u64,
}

impl Index {
    /// Creates a new, empty, untrained index in `path` (created if missing).
    pub fn create(path: impl AsRef<Path>, config: Config) -> Result<Index> {
        let path = path.as_ref();
        config.validate()?;
        if path.exists() && !path.is_dir() {
            return Err(Error::InvalidInput(format!("{}: exists and is not a directory", path.display())));
        }
        let existed = path.exists();
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        if !existed {
            // Make the new directory's own name durable.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                FsStorage::new(parent).sync_dir()?;
            }
        }
        Index::create_in(path.to_owned(), Arc::new(FsStorage::new(path)), config)
    }

    /// [`Index::create`] over any storage backend (tests use `MemStorage`).
    pub fn create_in(path: PathBuf, storage: Arc<dyn Storage>, config: Config) -> Result<Index> {
        config.validate()?;
        let guard = storage.lock_writer()?;
        if write::latest_manifest(&*storage).is_ok_and(|m| m.is_some()) {
            return Err(Error::AlreadyExists(path));
        }
        let manifest = write::create(&*storage, config)?;
        let snapshot = Snapshot::load(&*storage, manifest, None)?;
        Ok(Index { path, storage, current: RwLock::new(Arc::new(snapshot)), writer: Some(Mutex::new(guard)) })
    }

    /// Opens an existing index for reading and writing. Fails at once with
    /// [`Error::Locked`] if another writer has it open. Removes what an
    /// interrupted write left behind.
    pub fn open(path: impl AsRef<Path>) -> Result<Index> {
        let path = path.as_ref();
        check_dir(path)?;
        Index::open_in(path.to_owned(), Arc::new(FsStorage::new(path)), true)
    }

    /// Opens an existing index read-only; works while a writer is active.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Index> {
        let path = path.as_ref();
        check_dir(path)?;
        Index::open_in(path.to_owned(), Arc::new(FsStorage::new(path)), false)
    }

    /// [`Index::open`] or [`Index::open_read_only`] over any storage backend.
    pub fn open_in(path: PathBuf, storage: Arc<dyn Storage>, writable: bool) -> Result<Index> {
        let guard = if writable { Some(storage.lock_writer()?) } else { None };
        let manifest = write::latest_manifest(&*storage)?.ok_or_else(|| Error::NotAnIndex(path.clone()))?;
        if writable {
            write::remove_leftovers(&*storage, &manifest)?;
        }
        let snapshot = Snapshot::load(&*storage, manifest, None)?;
        Ok(Index { path, storage, current: RwLock::new(Arc::new(snapshot)), writer: guard.map(Mutex::new) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_trained(&self) -> bool {
        self.snapshot().quantizers.is_some()
    }

    /// Re-reads the newest committed manifest (for read-only handles that
    /// want to see another process's writes).
    pub fn refresh(&self) -> Result<()> {
        let previous = self.snapshot();
        let manifest = write::latest_manifest(&*self.storage)?.ok_or_else(|| Error::NotAnIndex(self.path.clone()))?;
        if manifest.generation != previous.manifest.generation {
            let next = Snapshot::load(&*self.storage, manifest, Some(&previous))?;
            *self.current.write() = Arc::new(next);
        }
        Ok(())
    }

    fn writer(&self) -> Result<parking_lot::MutexGuard<'_, Box<dyn Send + Sync>>> {
        match &self.writer {
            Some(w) => Ok(w.lock()),
            None => Err(Error::InvalidInput(format!("{}: index is open read-only", self.path.display()))),
        }
    }

    /// Trains the coarse and product quantizers on `data` (n × dim) and
    /// commits them. `progress` sees each step.
    pub fn train(&self, data: &[f32], opts: &TrainOptions, progress: &mut dyn FnMut(TrainStep)) -> Result<TrainReport> {
        let _w = self.writer()?;
        let snap = self.snapshot();
        if snap.quantizers.is_some() {
            return Err(Error::AlreadyTrained);
        }
        let c = snap.manifest.config;
        check_vectors(data, c.dim, "training vectors")?;
        let (q, report) = Quantizers::train(&c, data, opts, progress)?;
        let manifest = write::commit_quantizers(&*self.storage, &snap.manifest, &q)?;
        let next = Snapshot::load(&*self.storage, manifest, Some(&snap))?;
        *self.current.write() = Arc::new(next);
        Ok(report)
    }

    /// Encodes and appends `data` (n × dim) as one new segment, durable when
    /// this returns. Without `ids`, ids continue from one past the largest id
    /// ever added (0 for a new index).
    pub fn add(&self, data: &[f32], ids: Option<&[u64]>) -> Result<AddReport> {
        let _w = self.writer()?;
        let snap = self.snapshot();
        let q = snap.quantizers.as_deref().ok_or(Error::NotTrained)?;
        let c = snap.manifest.config;
        let n = check_vectors(data, c.dim, "vectors")?;
        let ids: Vec<u64> = match ids {
            Some(ids) => {
                check_ids(ids, n)?;
                ids.to_vec()
            }
            None => {
                let start = snap.manifest.next_id;
                start.checked_add(n as u64).ok_or_else(|| Error::InvalidInput("id space exhausted".into()))?;
                (start..start + n as u64).collect()
            }
        };
        let (lists, codes) = q.encode(data);
        let manifest = write::commit_segment(&*self.storage, &snap.manifest, &lists, &codes, &ids)?;
        let segment = manifest.segments.last().expect("just added").file;
        let next = Snapshot::load(&*self.storage, manifest, Some(&snap))?;
        *self.current.write() = Arc::new(next);
        let lo = *ids.iter().min().expect("non-empty");
        let hi = *ids.iter().max().expect("non-empty");
        Ok(AddReport { ids: lo..hi + 1, segment })
    }

    /// The `k` nearest stored vectors of each query (rows of `queries`).
    pub fn search(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<Neighbor>>> {
        self.snapshot().search(queries, params)
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.storage
    }
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
