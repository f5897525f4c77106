//! The object-storage backend (feature `object-store`): an index under a
//! prefix of a bucket (S3 or any S3-compatible server, through the
//! `object_store` crate), read through a local cache directory.
//!
//! How the directory model of [`Storage`] maps onto objects (FORMAT.md,
//! "Commit protocol on object storage"):
//! - a data file (`.seg`, `.qnt`, `.del`) is written to a local staging file
//!   and uploaded once, when it is synced, with a conditional put that fails
//!   if the name exists (`PutMode::Create`): it is never rewritten;
//! - a manifest temporary file (`MANIFEST-<gen>.tmp`) never leaves the
//!   machine; "renaming" it to `MANIFEST-<gen>` is the commit: a conditional
//!   put of its bytes that fails if that generation exists, so of two writers
//!   racing for a generation exactly one wins and the other gets
//!   [`Error::Conflict`];
//! - a put whose response was lost (or that was repeated by a retry and so
//!   reports "already exists") is resolved by reading the object back: if it
//!   holds our bytes, the put happened;
//! - a put is durable when it is acknowledged, so `sync_dir` has nothing to
//!   do; there is no writer lock (the conditional put replaces it), and a
//!   writer keeps leftovers that may be a concurrent writer's work in
//!   progress (see [`Storage::may_remove_leftover`]);
//! - `map` downloads a data file once into the cache directory (checked
//!   against the CRC-32 recorded with the object at upload, named by that
//!   CRC so a stale copy is never used), evicts least-recently-used files
//!   beyond the cache's size bound, and memory-maps the cached copy.
//!   Manifests are small and always read from the store.
//!
//! The async client runs on a small runtime owned by the backend: callers
//! stay synchronous, and may even call from inside another async runtime.

use super::{Bytes, Storage, StorageFile};
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The object attribute (user metadata) holding a file's CRC-32, as 8 hex digits.
const CRC_ATTRIBUTE: &str = "chromatica-crc32";

/// Default bound on the cache directory's size: 4 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 30;

/// Default age after which a writer removes an unreferenced data file
/// numbered at or above its state's `next_file` (younger ones may be a
/// concurrent writer's uncommitted work).
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Where an object-storage index keeps its local copies, and how much.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// The cache directory (made if missing). One per index is simplest;
    /// several processes may share one (files are immutable, downloads are
    /// renamed into place).
    pub dir: PathBuf,
    /// Bound on the bytes of cached files; least-recently-used files beyond
    /// it are removed (a file this process still maps keeps its pages).
    pub max_bytes: u64,
}

/// An index's storage under a prefix of an object store (S3 or compatible),
/// with a local cache directory. Data files are uploaded once with a
/// conditional create; a commit is a conditional put of the next manifest,
/// so concurrent writers never both win a generation (the loser gets
/// [`Error::Conflict`]); reads go through the CRC-checked, LRU-bounded cache.
/// FORMAT.md, "Commit protocol on object storage", has the protocol. Open an
/// index on it with [`Index::open_object`](crate::Index::open_object).
#[derive(Debug)]
pub struct ObjectStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// How names are shown in messages: `s3://bucket/prefix/`.
    display: String,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    cache: Cache,
    staging: PathBuf,
    /// Files created and not uploaded yet (data files before their sync,
    /// manifest temporaries always): name → local staging path.
    pending: Mutex<HashMap<String, PathBuf>>,
    /// Last-modified times seen by the latest `list`.
    listed: Mutex<HashMap<String, SystemTime>>,
    orphan_grace: Duration,
    /// Set when a manifest put's outcome could not be determined: nothing
    /// more is removed or published through this handle.
    uncertain: AtomicBool,
    counter: AtomicU64,
}

impl ObjectStorage {
    /// A backend over `store`, with the index's objects under `prefix`
    /// (`""` for the bucket's root). `display` names the location in
    /// messages (e.g. `s3://bucket/prefix`).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, display: &str, cache: CacheOptions) -> Result<ObjectStorage> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chromatica-object-store")
            .enable_all()
            .build()
            .map_err(|e| Error::io(display, e))?;
        let handle = runtime.handle().clone();
        std::fs::create_dir_all(&cache.dir).map_err(|e| Error::io(&cache.dir, e))?;
        let staging = cache.dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        remove_stale_staging(&staging);
        let prefix = prefix.trim_matches('/');
        let display = format!("{}/", display.trim_end_matches('/'));
        Ok(ObjectStorage {
            inner: Arc::new(Inner {
                store,
                prefix: ObjectPath::from(prefix),
                display,
                runtime: Mutex::new(Some(runtime)),
                handle,
                cache: Cache::open(cache)?,
                staging,
                pending: Mutex::new(HashMap::new()),
                listed: Mutex::new(HashMap::new()),
                orphan_grace: DEFAULT_ORPHAN_GRACE,
                uncertain: AtomicBool::new(false),
                counter: AtomicU64::new(0),
            }),
        })
    }

    /// Sets the age after which an unreferenced data file that may be a
    /// concurrent writer's work in progress is removed anyway (default
    /// [`DEFAULT_ORPHAN_GRACE`]). Zero for a store with one writer only.
    pub fn with_orphan_grace(mut self, grace: Duration) -> ObjectStorage {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.orphan_grace = grace;
        }
        self
    }

    /// Bytes in the cache directory's files now.
    pub fn cache_bytes(&self) -> u64 {
        self.inner.cache.state.lock().total
    }

    /// Opens `s3://bucket/prefix`, configured from the environment the way
    /// the AWS SDKs are (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`; plain `http://`
    /// endpoints are allowed for a local server). The cache directory is
    /// `$CHROMATICA_CACHE_DIR` (else `$XDG_CACHE_HOME/chromatica`, else
    /// `~/.cache/chromatica`) plus the bucket and prefix; its bound is
    /// `$CHROMATICA_CACHE_BYTES` (default [`DEFAULT_CACHE_BYTES`]).
    pub fn from_s3_uri(uri: &str) -> Result<ObjectStorage> {
        let (bucket, prefix) = parse_s3_uri(uri)?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty()) {
            let http = endpoint.starts_with("http://");
            builder = builder.with_endpoint(endpoint).with_allow_http(http);
        }
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_some() {
            if let Ok(r) = std::env::var("AWS_DEFAULT_REGION") {
                builder = builder.with_region(r);
            }
        }
        let store = builder.build().map_err(|e| Error::invalid_argument("uri", format!("{uri}: {e}")))?;
        let max_bytes = match std::env::var("CHROMATICA_CACHE_BYTES") {
            Ok(v) => v.trim().parse().map_err(|_| {
                Error::invalid_argument(
                    "CHROMATICA_CACHE_BYTES",
                    format!("CHROMATICA_CACHE_BYTES={v:?} is not a byte count"),
                )
            })?,
            Err(_) => DEFAULT_CACHE_BYTES,
        };
        let dir = default_cache_root()?.join(sanitize(bucket)).join(sanitize(prefix));
        ObjectStorage::new(Arc::new(store), prefix, uri, CacheOptions { dir, max_bytes })
    }
}

/// Splits `s3://bucket/prefix` into bucket and prefix (without slashes at
/// either end).
pub fn parse_s3_uri(uri: &str) -> Result<(&str, &str)> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| Error::invalid_argument("uri", format!("{uri}: not an s3://bucket/prefix address")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        return Err(Error::invalid_argument("uri", format!("{uri}: {bucket:?} is not a valid bucket name")));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
        return Err(Error::invalid_argument("uri", format!("{uri}: the prefix has empty, '.' or '..' parts")));
    }
    Ok((bucket, prefix))
}

fn default_cache_root() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CHROMATICA_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("chromatica"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("chromatica")),
        None => Err(Error::Config("no cache directory: set CHROMATICA_CACHE_DIR".into())),
    }
}

/// A path component from a bucket or prefix: `/` becomes `_`, and an empty
/// prefix is `_root`.
fn sanitize(s: &str) -> String {
    if s.is_empty() {
        return "_root".into();
    }
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// Staging files older than a day are a crashed process's.
fn remove_stale_staging(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(86400));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn is_manifest(name: &str) -> bool {
    crate::format::parse_manifest_name(name).is_some()
}

fn is_temp(name: &str) -> bool {
    crate::format::parse_manifest_temp_name(name).is_some() || name.ends_with(".tmp")
}

fn io_kind(e: &object_store::Error) -> std::io::ErrorKind {
    match e {
        object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            std::io::ErrorKind::AlreadyExists
        }
        _ => std::io::ErrorKind::Other,
    }
}

fn crc_attributes(crc: u32) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::Metadata(CRC_ATTRIBUTE.into()), AttributeValue::from(format!("{crc:08x}")));
    a
}

fn crc_of(attributes: &Attributes) -> Option<u32> {
    attributes.get(&Attribute::Metadata(CRC_ATTRIBUTE.into())).and_then(|v| u32::from_str_radix(v.as_ref(), 16).ok())
}

impl Inner {
    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    fn describe(&self, name: &str) -> String {
        format!("{}{name}", self.display)
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::io(self.describe(name), std::io::Error::new(io_kind(&e), e.to_string()))
    }

    /// Runs `f` on the backend's runtime and waits for it. Spawned rather
    /// than `block_on`, so that a caller inside another runtime does not panic.
    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> object_store::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "chromatica",
                source: "the object-store runtime stopped before the request finished".into(),
            })
        })
    }

    fn staging_path(&self, name: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.staging.join(format!("{}-{n}-{name}", std::process::id()))
    }

    /// The object's CRC attribute and size, or `None` if it does not exist.
    fn head(&self, name: &str) -> Result<Option<(Option<u32>, u64)>> {
        let store = self.store.clone();
        let path = self.path(name);
        let got = self.run(async move {
            let r = store.get_opts(&path, GetOptions { head: true, ..Default::default() }).await?;
            Ok((crc_of(&r.attributes), r.meta.size))
        });
        match got {
            Ok(v) => Ok(Some(v)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Reads a whole (small) object into memory, with its CRC attribute.
    fn get_all(&self, name: &str) -> Result<(Vec<u8>, Option<u32>)> {
        let store = self.store.clone();
        let path = self.path(name);
        self.run(async move {
            let r = store.get(&path).await?;
            let crc = crc_of(&r.attributes);
            Ok((r.bytes().await?.to_vec(), crc))
        })
        .map_err(|e| self.err(name, e))
    }

    /// Uploads `payload` to `name` if no object has that name. A lost or
    /// repeated response is resolved by reading the object back: returns
    /// `Ok` if it holds these bytes (same CRC and size; for manifests the
    /// same bytes), [`Error::Conflict`] if it holds another writer's.
    fn put_new(&self, name: &str, payload: bytes::Bytes, crc: u32) -> Result<()> {
        let mut last = None;
        for _attempt in 0..3 {
            let store = self.store.clone();
            let path = self.path(name);
            let body = PutPayload::from_bytes(payload.clone());
            let opts = PutOptions { mode: PutMode::Create, attributes: crc_attributes(crc), ..Default::default() };
            let put = self.run(async move { store.put_opts(&path, body, opts).await.map(|_| ()) });
            match put {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Whatever the error, the object may hold our bytes (a
                    // retried put whose first attempt landed says "exists";
                    // a lost response says anything): look.
                    let ours = if is_manifest(name) {
                        match self.get_all(name) {
                            Ok((remote, _)) => Some(remote[..] == payload[..]),
                            Err(ref g) if crate::recovery::is_not_found(g) => None,
                            Err(g) => return Err(self.uncertain(name, &e, &g)),
                        }
                    } else {
                        match self.head(name) {
                            Ok(Some((remote_crc, size))) => {
                                Some(remote_crc == Some(crc) && size == payload.len() as u64)
                            }
                            Ok(None) => None,
                            Err(g) => return Err(self.uncertain(name, &e, &g)),
                        }
                    };
                    match ours {
                        Some(true) => return Ok(()),
                        Some(false) => {
                            let what = if is_manifest(name) { "committed this generation" } else { "wrote this file" };
                            return Err(Error::Conflict(format!(
                                "{}: another writer {what} first; nothing was committed (reopen the index and retry)",
                                self.describe(name)
                            )));
                        }
                        // Not there: the put did not happen; try again.
                        None => last = Some(self.err(name, e)),
                    }
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// A put failed and reading back failed too. For a data file this is
    /// harmless (no manifest names it yet); for a manifest the commit's
    /// outcome is unknown, and this handle stops removing anything.
    fn uncertain(&self, name: &str, put: &object_store::Error, get: &Error) -> Error {
        if is_manifest(name) {
            self.uncertain.store(true, Ordering::SeqCst);
            return Error::Poisoned(format!(
                "{}: put failed ({put}) and reading it back failed ({get})",
                self.describe(name)
            ));
        }
        self.err(name, object_store::Error::Generic { store: "chromatica", source: format!("{put}; {get}").into() })
    }

    fn check_certain(&self) -> Result<()> {
        if self.uncertain.load(Ordering::SeqCst) {
            return Err(Error::Poisoned(format!(
                "{}: an earlier commit's outcome is unknown; nothing more is changed through this handle",
                self.display
            )));
        }
        Ok(())
    }

    /// Uploads a staged data file, then moves it into the cache.
    fn upload(&self, name: &str, staged: &Path, crc: u32) -> Result<()> {
        let file = crate::fsutil::open_regular(staged)?;
        let len = file.metadata().map_err(|e| Error::io(staged, e))?.len();
        let payload = if len == 0 {
            bytes::Bytes::new()
        } else {
            // SAFETY: a read-only map of this process's own staging file,
            // which nothing writes or truncates once its writer is synced.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(staged, e))?;
            bytes::Bytes::from_owner(map)
        };
        self.put_new(name, payload, crc)?;
        self.pending.lock().remove(name);
        self.cache.insert_file(name, crc, staged, len);
        Ok(())
    }

    /// Downloads `name` into the cache (checked against `crc` when known).
    fn download(&self, name: &str, crc: Option<u32>) -> Result<PathBuf> {
        let part = self.cache.dir.join(format!(
            ".{}-{}-{name}.part",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = crate::fsutil::create_new(&part)?;
        let store = self.store.clone();
        let path = self.path(name);
        let (tx, rx) = std::sync::mpsc::sync_channel::<object_store::Result<bytes::Bytes>>(4);
        self.handle.spawn(async move {
            match store.get(&path).await {
                Ok(r) => {
                    let mut s = r.into_stream();
                    while let Some(chunk) = s.next().await {
                        let stop = chunk.is_err();
                        if tx.send(chunk).is_err() || stop {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let mut hasher = crc32fast::Hasher::new();
        let mut len = 0u64;
        let received = (|| -> Result<()> {
            for chunk in rx {
                let chunk = chunk.map_err(|e| self.err(name, e))?;
                hasher.update(&chunk);
                len += chunk.len() as u64;
                file.write_all(&chunk).map_err(|e| Error::io(&part, e))?;
            }
            Ok(())
        })();
        drop(file);
        if let Err(e) = received {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        let got = hasher.finalize();
        if let Some(want) = crc.filter(|&w| w != got) {
            let _ = std::fs::remove_file(&part);
            return Err(Error::corrupt(
                self.describe(name),
                0,
                format!("downloaded bytes have CRC {got:08x}, the object records {want:08x}"),
            ));
        }
        Ok(self.cache.insert_file(name, got, &part, len))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without blocking, so that dropping an index inside another async
        // runtime does not panic.
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
        for path in self.pending.lock().values() {
            let _ = std::fs::remove_file(path);
        }
    }
}

struct ObjectFile {
    inner: Arc<Inner>,
    name: String,
    staged: PathBuf,
    file: Option<File>,
    hasher: crc32fast::Hasher,
    uploaded: bool,
}

impl StorageFile for ObjectFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let f = match (&mut self.file, self.uploaded) {
            (Some(f), false) => f,
            _ => {
                return Err(Error::io(
                    self.inner.describe(&self.name),
                    std::io::Error::other("written after it was uploaded (objects are immutable)"),
                ))
            }
        };
        self.hasher.update(buf);
        f.write_all(buf).map_err(|e| Error::io(&self.staged, e))
    }

    fn sync(&mut self) -> Result<()> {
        if self.uploaded {
            return Ok(());
        }
        if let Some(f) = &mut self.file {
            f.flush().map_err(|e| Error::io(&self.staged, e))?;
        }
        if is_temp(&self.name) {
            // A manifest temporary lives only here; its "rename" uploads it.
            return Ok(());
        }
        self.file = None;
        let crc = self.hasher.clone().finalize();
        self.inner.upload(&self.name, &self.staged, crc)?;
        self.uploaded = true;
        Ok(())
    }
}

impl Drop for ObjectFile {
    fn drop(&mut self) {
        // A file dropped before its upload was never made durable: as with
        // a crash, it is gone (its name too, as no one can sync it now).
        if !self.uploaded && !is_temp(&self.name) {
            self.inner.pending.lock().remove(&self.name);
            let _ = std::fs::remove_file(&self.staged);
        }
    }
}

impl Storage for ObjectStorage {
    fn create(&self, name: &str) -> Result<Box<dyn StorageFile>> {
        let inner = &self.inner;
        inner.check_certain()?;
        let exists = || Error::io(inner.describe(name), std::io::ErrorKind::AlreadyExists.into());
        if inner.pending.lock().contains_key(name) {
            return Err(exists());
        }
        if !is_temp(name) && inner.head(name)?.is_some() {
            return Err(exists());
        }
        let staged = inner.staging_path(name);
        let file = crate::fsutil::create_new(&staged)?;
        {
            let mut pending = inner.pending.lock();
            if pending.contains_key(name) {
                drop(pending);
                let _ = std::fs::remove_file(&staged);
                return Err(exists());
            }
            pending.insert(name.to_owned(), staged.clone());
        }
        Ok(Box::new(ObjectFile {
            inner: inner.clone(),
            name: name.to_owned(),
            staged,
            file: Some(file),
            hasher: crc32fast::Hasher::new(),
            uploaded: false,
        }))
    }

    fn map(&self, name: &str) -> Result<Bytes> {
        let inner = &self.inner;
        if let Some(staged) = inner.pending.lock().get(name).cloned() {
            return std::fs::read(&staged).map(|v| Bytes::Owned(Arc::new(v))).map_err(|e| Error::io(&staged, e));
        }
        if is_manifest(name) || is_temp(name) {
            let (bytes, crc) = inner.get_all(name)?;
            if let Some(want) = crc.filter(|&w| w != crc32fast::hash(&bytes)) {
                return Err(Error::corrupt(
                    inner.describe(name),
                    0,
                    format!("bytes do not match the recorded CRC {want:08x}"),
                ));
            }
            return Ok(Bytes::Owned(Arc::new(bytes)));
        }
        let (crc, size) =
            inner.head(name)?.ok_or_else(|| Error::io(inner.describe(name), std::io::ErrorKind::NotFound.into()))?;
        let path = match crc.and_then(|c| inner.cache.lookup(name, c, size)) {
            Some(p) => p,
            None => inner.download(name, crc)?,
        };
        crate::fsutil::map_file(&path)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let inner = &self.inner;
        inner.check_certain()?;
        let staged = inner.pending.lock().get(from).cloned();
        match staged {
            Some(staged) => {
                if !is_manifest(to) {
                    return Err(Error::io(
                        inner.describe(to),
                        std::io::Error::other("object storage renames only a manifest temporary into place"),
                    ));
                }
                let bytes = std::fs::read(&staged).map_err(|e| Error::io(&staged, e))?;
                let crc = crc32fast::hash(&bytes);
                inner.put_new(to, bytes::Bytes::from(bytes), crc)?;
                inner.pending.lock().remove(from);
                let _ = std::fs::remove_file(&staged);
                Ok(())
            }
            None => {
                // `recover` moves damaged files aside: copy (refusing to
                // overwrite), then delete. Not atomic, and not meant to run
                // beside a writer.
                let store = inner.store.clone();
                let (f, t) = (inner.path(from), inner.path(to));
                inner
                    .run(async move {
                        store.copy_if_not_exists(&f, &t).await?;
                        store.delete(&f).await
                    })
                    .map_err(|e| inner.err(from, e))
            }
        }
    }

    fn remove(&self, name: &str) -> Result<()> {
        let inner = &self.inner;
        if let Some(staged) = inner.pending.lock().remove(name) {
            let _ = std::fs::remove_file(&staged);
            return Ok(());
        }
        inner.check_certain()?;
        let store = inner.store.clone();
        let path = inner.path(name);
        inner.run(async move { store.delete(&path).await }).map_err(|e| inner.err(name, e))?;
        inner.cache.forget(name);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let inner = &self.inner;
        let store = inner.store.clone();
        let prefix = inner.prefix.clone();
        let listed = inner
            .run(async move {
                let p = if prefix.as_ref().is_empty() { None } else { Some(prefix) };
                store.list_with_delimiter(p.as_ref()).await
            })
            .map_err(|e| inner.err("", e))?;
        let mut times = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for o in listed.objects {
            if let Some(n) = o.location.filename() {
                times.insert(n.to_owned(), SystemTime::from(o.last_modified));
                names.push(n.to_owned());
            }
        }
        *inner.listed.lock() = times;
        let known: HashSet<String> = names.iter().cloned().collect();
        names.extend(inner.pending.lock().keys().filter(|n| !known.contains(*n)).cloned());
        Ok(names)
    }

    fn sync_dir(&self) -> Result<()> {
        // Every put is durable once acknowledged: names need no sync.
        self.inner.check_certain()
    }

    fn lock_writer(&self) -> Result<Box<dyn Send + Sync>> {
        // No lock: a commit is a conditional put, so concurrent writers are
        // safe (one wins each generation) and a crashed one holds nothing.
        Ok(Box::new(()))
    }

    fn describe(&self, name: &str) -> String {
        self.inner.describe(name)
    }

    fn may_remove_leftover(&self, name: &str, current: &Manifest) -> bool {
        // A newer manifest is a concurrent writer's commit; a data file
        // numbered at or above our `next_file` may be one in progress. Only
        // old enough ones are taken for a crashed writer's.
        if crate::format::parse_manifest_name(name).is_some_and(|g| g > current.generation) {
            return false;
        }
        match crate::format::parse_numbered_name(name) {
            Some((n, _)) if n >= current.next_file => {
                let modified = self.inner.listed.lock().get(name).copied();
                modified.and_then(|t| t.elapsed().ok()).is_some_and(|age| age >= self.inner.orphan_grace)
            }
            _ => true,
        }
    }
}

/// The local cache of downloaded (and uploaded) data files: one file per
/// object version, named `<name>.<crc>`, evicted least recently used first.
#[derive(Debug)]
struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Cache file name → (bytes, last use).
    entries: HashMap<String, (u64, u64)>,
    total: u64,
    clock: u64,
}

impl Cache {
    fn open(o: CacheOptions) -> Result<Cache> {
        let mut found = Vec::new();
        for e in std::fs::read_dir(&o.dir).map_err(|e| Error::io(&o.dir, e))?.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
            if !meta.is_file() || name.starts_with('.') {
                continue;
            }
            found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), name, meta.len()));
        }
        found.sort();
        let mut s = CacheState::default();
        for (_, name, len) in found {
            s.clock += 1;
            s.total += len;
            s.entries.insert(name, (len, s.clock));
        }
        let cache = Cache { dir: o.dir, max_bytes: o.max_bytes, state: Mutex::new(s) };
        cache.evict(None);
        Ok(cache)
    }

    fn key(name: &str, crc: u32) -> String {
        format!("{name}.{crc:08x}")
    }

    /// The cached copy of `name` with this CRC and size, marked used.
    fn lookup(&self, name: &str, crc: u32, size: u64) -> Option<PathBuf> {
        let key = Cache::key(name, crc);
        let path = self.dir.join(&key);
        let mut s = self.state.lock();
        let on_disk = std::fs::metadata(&path).ok().filter(|m| m.is_file()).map(|m| m.len());
        if on_disk != Some(size) {
            if let Some((len, _)) = s.entries.remove(&key) {
                s.total -= len;
            }
            return None;
        }
        s.clock += 1;
        let clock = s.clock;
        if let Some(e) = s.entries.get_mut(&key) {
            e.1 = clock;
        } else {
            s.entries.insert(key, (size, clock));
            s.total += size;
        }
        Some(path)
    }

    /// Moves `from` (a complete, checked file) into the cache; returns its path.
    fn insert_file(&self, name: &str, crc: u32, from: &Path, len: u64) -> PathBuf {
        let key = Cache::key(name, crc);
        let path = self.dir.join(&key);
        if std::fs::rename(from, &path).is_err() {
            // Cannot rename (e.g. another process's copy is in place): use
            // the staged file itself if it is still there.
            if !path.exists() {
                return from.to_owned();
            }
            let _ = std::fs::remove_file(from);
        }
        {
            let mut s = self.state.lock();
            s.clock += 1;
            let clock = s.clock;
            if let Some((old, _)) = s.entries.insert(key.clone(), (len, clock)) {
                s.total -= old;
            }
            s.total += len;
        }
        self.evict(Some(&key));
        path
    }

    /// Removes least-recently-used files until the cache fits its bound
    /// (never `keep`, the file just added).
    fn evict(&self, keep: Option<&str>) {
        let mut s = self.state.lock();
        while s.total > self.max_bytes {
            let victim = s
                .entries
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != keep)
                .min_by_key(|(_, v)| v.1)
                .map(|(k, v)| (k.clone(), v.0));
            let Some((k, len)) = victim else { break };
            // Unlinking a mapped file is safe: the map keeps its pages.
            let _ = std::fs::remove_file(self.dir.join(&k));
            s.entries.remove(&k);
            s.total -= len;
        }
    }

    /// Drops cached copies of a removed object.
    fn forget(&self, name: &str) {
        let mut s = self.state.lock();
        let prefix = format!("{name}.");
        let keys: Vec<String> =
            s.entries.keys().filter(|k| k.starts_with(&prefix) && k.len() == prefix.len() + 8).cloned().collect();
        for k in keys {
            let _ = std::fs::remove_file(self.dir.join(&k));
            if let Some((len, _)) = s.entries.remove(&k) {
                s.total -= len;
            }
        }
    }
}
