//! What every handler shares: the index handle, the pool searches run on,
//! the limits, and the id → location table of the current snapshot.

use super::error::ApiError;
use super::indexing::SyncState;
use super::metrics::Metrics;
use super::thumbnail::ThumbCache;
use super::ServeArgs;
use chromatica::images::{ImageIndex, ImageLimits};
use chromatica::{Error, Location, Result, Snapshot};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Shared by every request (cheap to clone).
pub type Shared = Arc<AppState>;

/// Where each live id is stored, for one snapshot generation.
type LocationTable = Arc<HashMap<u64, Location>>;

/// See the module documentation.
pub struct AppState {
    /// The index. Each search takes its own snapshot of it, so a commit by
    /// a sync never blocks or disturbs a search in flight.
    pub index: ImageIndex,
    /// Whether this process holds the writer lock (another process may).
    pub writable: bool,
    /// Searches and decodes of queries run here, never on the I/O threads
    /// and never on the sync's pool.
    search_pool: rayon::ThreadPool,
    /// The threads of a sync, at the lowest scheduling priority.
    pub index_pool: rayon::ThreadPool,
    /// Search threads, as reported by `/stats`.
    pub search_threads: usize,
    /// What an uploaded or indexed image may cost to decode.
    pub limits: ImageLimits,
    /// How long a search's exact EMD scan may run (`None`: to the end).
    pub time_limit: Option<std::time::Duration>,
    /// Largest upload in bytes.
    pub max_upload: usize,
    /// Folders a sync covers.
    pub watch: Vec<PathBuf>,
    /// Seconds between syncs of `watch` (or refreshes of a read-only handle).
    pub watch_interval: u64,
    /// Uploaded images are written here (removed at exit).
    pub upload_dir: tempfile::TempDir,
    locations: Mutex<Option<(u64, LocationTable)>>,
    /// Request counts and latencies.
    pub metrics: Metrics,
    /// Thumbnails made.
    pub thumbs: ThumbCache,
    /// The background sync.
    pub sync: SyncState,
    /// When the server started.
    pub started: Instant,
}

/// Makes the calling thread the scheduler's last choice (nice 19), so that
/// a sync's decoding and merging take only the CPU that searches leave.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority on the calling thread; no memory is
    // passed. On Linux a thread id given to PRIO_PROCESS names that thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

impl AppState {
    /// Opens the index (for writing when no other process holds it, else
    /// read-only and refreshed in the background) and starts the pools.
    pub fn open(args: &ServeArgs, threads: usize) -> Result<Shared> {
        let (index, writable) = match ImageIndex::open_or_create(&args.dir) {
            Ok(index) => (index, true),
            Err(Error::Locked(_)) => {
                eprintln!(
                    "warning: {} is being written by another process: serving it read-only (POST /index refused)",
                    args.dir.display()
                );
                (ImageIndex::open_read_only(&args.dir)?, false)
            }
            Err(e) => return Err(e),
        };
        if !writable && !args.watch.is_empty() {
            return Err(Error::invalid_argument(
                "--watch",
                "--watch needs the writer lock, which another process holds",
            ));
        }
        for w in index.index().warnings() {
            eprintln!("warning: {w}");
        }
        let pool = |n: usize, name: &'static str, background: bool| {
            let mut b = rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(move |i| format!("{name}-{i}"));
            if background {
                b = b.start_handler(|_| lower_priority());
            }
            b.build().map_err(|e| Error::invalid_argument("--threads", format!("cannot start {n} threads: {e}")))
        };
        let upload_dir = tempfile::Builder::new()
            .prefix("chromatica-serve-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        Ok(Arc::new(AppState {
            index,
            writable,
            search_pool: pool(threads, "serve-search", false)?,
            index_pool: pool(args.index_threads, "serve-index", true)?,
            search_threads: threads,
            limits: ImageLimits::with_max_pixels(args.max_pixels),
            time_limit: args.search_time_limit.0,
            max_upload: args.max_upload,
            watch: args.watch.clone(),
            watch_interval: args.watch_interval,
            upload_dir,
            locations: Mutex::new(None),
            metrics: Metrics::default(),
            thumbs: ThumbCache::default(),
            sync: SyncState::default(),
            started: Instant::now(),
        }))
    }

    /// Runs `work` on the search pool and waits for it without holding an
    /// I/O thread.
    pub async fn on_search_pool<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&AppState) -> std::result::Result<T, ApiError> + Send + 'static,
    ) -> std::result::Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        self.search_pool.spawn(move || {
            let _ = tx.send(work(&me));
        });
        rx.await.map_err(|_| ApiError::internal("the search worker stopped"))?
    }

    /// Where `id` is stored in `snap`, from a table built once per
    /// snapshot generation (O(images), then O(1) per look-up).
    pub fn locate(&self, snap: &Snapshot, id: u64) -> std::result::Result<Location, ApiError> {
        let generation = snap.generation();
        let table = {
            let cached = self.locations.lock().expect("no panic holds this lock");
            match &*cached {
                Some((g, t)) if *g == generation => Some(t.clone()),
                _ => None,
            }
        };
        let table = match table {
            Some(t) => t,
            None => {
                let t: LocationTable = Arc::new(snap.live_locations()?.into_iter().collect());
                *self.locations.lock().expect("no panic holds this lock") = Some((generation, t.clone()));
                t
            }
        };
        table.get(&id).copied().ok_or_else(|| ApiError::not_found(format!("no image with id {id} in the index")))
    }
}
