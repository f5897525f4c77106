//! `chromatica._native`: the Python extension over the `chromatica` crate's
//! public API. The Python package (`python/chromatica/`) re-exports it and
//! adds `chromatica.compat`; the type stubs (`_native.pyi`) document every
//! item for Python users.
//!
//! Conventions (faiss's): vectors are C-contiguous float32 numpy arrays of
//! shape (n, dim), used in place without a copy; results are (D, I) with D
//! float32 and I int64, padded with inf and -1. Every call that computes
//! (train, add, search, compact, retrain, indexing) releases the GIL.

// Python keyword signatures (faiss's and the issue's) have many parameters.
#![allow(clippy::too_many_arguments)]

use chromatica::color::{self, DominantColor};
use chromatica::images::{self, ImageIndex, Query, SearchOptions, SyncEvent, SyncOptions, SyncSummary};
use chromatica::{
    Candidate, CompactReport, Config, Error, HealthOptions, Index as CoreIndex, Preset, Record, Rerank, Rows,
    SearchParams, StagedSegment, TrainOptions, TrainReport, VectorSource,
};
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

create_exception!(_native, ChromaticaError, PyException, "Base class of the errors that have no closer built-in kind.");
create_exception!(
    _native,
    CorruptIndexError,
    ChromaticaError,
    "A file of the index fails a checksum or structural check, or the newest manifest is damaged."
);
create_exception!(_native, LockedError, ChromaticaError, "Another writer holds the index's lock.");

/// Rows of one `add` call that become one segment: a long add checks for
/// Ctrl-C between batches (and is abandoned whole, as one commit).
const ADD_BATCH_ROWS: usize = 65_536;

/// Result entries (nq × k) one search may return: 2^28 (3 GiB of D and I).
const MAX_RESULT_ENTRIES: usize = 1 << 28;

/// Maps a library error to the Python exception of its kind.
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Config(_)
        | Error::InvalidInput(_)
        | Error::InvalidArgument { .. }
        | Error::NotTrained
        | Error::AlreadyTrained
        | Error::BadFile { .. }
        | Error::Unsupported { .. }
        | Error::WouldNotOpen(_) => PyValueError::new_err(msg),
        Error::ReadOnly(_) => PyPermissionError::new_err(msg),
        Error::DirectoryNotEmpty(_) | Error::AlreadyExists(_) => PyFileExistsError::new_err(msg),
        Error::NotAnIndex(_) => PyFileNotFoundError::new_err(msg),
        Error::Locked(_) => LockedError::new_err(msg),
        Error::Corrupt { .. } | Error::DamagedManifest { .. } => CorruptIndexError::new_err(msg),
        Error::Io { ref source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        _ => ChromaticaError::new_err(msg),
    }
}

/// `json.loads` of a serialisable report: the same fields as the CLI's
/// `--json`, which prints the same types with serde_json.
fn to_json_obj<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| ChromaticaError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// A float32 matrix borrowed from a numpy array, checked: rows × dim.
struct Matrix<'py> {
    array: numpy::PyReadonlyArrayDyn<'py, f32>,
    rows: usize,
    cols: usize,
}

impl Matrix<'_> {
    fn slice(&self) -> &[f32] {
        // Checked C-contiguous and aligned in `matrix`.
        self.array.as_slice().expect("checked contiguous")
    }
}

/// Checks `x` the way the vector API promises: a numpy array (TypeError),
/// of float32 (TypeError), 2-D or, with `allow_1d`, 1-D as one row
/// (ValueError), C-contiguous and aligned (ValueError), with `dim`
/// columns (ValueError). No copy is made.
fn matrix<'py>(x: &Bound<'py, PyAny>, name: &str, dim: usize, allow_1d: bool) -> PyResult<Matrix<'py>> {
    let py = x.py();
    let Ok(untyped) = x.cast::<PyUntypedArray>() else {
        let ty = x.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of float32, got {ty} (use np.asarray({name}, dtype=np.float32))"
        )));
    };
    let dtype = untyped.dtype();
    if !dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        return Err(PyTypeError::new_err(format!(
            "{name} must have dtype float32, got {} (use {name}.astype(np.float32))",
            dtype.str()?
        )));
    }
    let shape = untyped.shape().to_vec();
    let (rows, cols) = match shape.as_slice() {
        [r, c] => (*r, *c),
        [c] if allow_1d => (1, *c),
        _ => {
            let want = if allow_1d { "1-D (dim,) or 2-D (n, dim)" } else { "2-D (n, dim)" };
            // Python's spelling of a shape: (3,), (2, 5), ().
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
            return Err(PyValueError::new_err(format!("{name} must be {want}, got shape {shape}")));
        }
    };
    if !untyped.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} is not C-contiguous (a slice or transpose?): use np.ascontiguousarray({name})"
        )));
    }
    let typed = untyped.cast::<PyArrayDyn<f32>>()?;
    if !(typed.data() as usize).is_multiple_of(std::mem::align_of::<f32>()) {
        return Err(PyValueError::new_err(format!("{name} is not aligned to 4 bytes: use {name}.copy()")));
    }
    if cols != dim {
        return Err(PyValueError::new_err(format!("{name} has {cols} columns, the index has dimension {dim}")));
    }
    let array = typed.try_readonly()?;
    Ok(Matrix { array, rows, cols })
}

/// Ids from a numpy integer array or a sequence of ints; negative ids are
/// a ValueError (ids are int64 ≥ 0, as faiss's).
fn ids_arg(ids: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let py = ids.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (ids,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(PyValueError::new_err(format!("ids must be 1-D, got {ndim} dimensions")));
    }
    if kind != "i" && kind != "u" {
        if arr.getattr("size")?.extract::<usize>()? == 0 {
            return Ok(Vec::new());
        }
        return Err(PyTypeError::new_err(format!("ids must be integers, got dtype {}", arr.getattr("dtype")?.str()?)));
    }
    let as_i64 = np.call_method1("ascontiguousarray", (arr.call_method1("astype", ("int64",))?,))?;
    if kind == "u" {
        let max: u64 =
            if arr.getattr("size")?.extract::<usize>()? == 0 { 0 } else { arr.call_method0("max")?.extract()? };
        if max > i64::MAX as u64 {
            return Err(PyValueError::new_err(format!("ids must be below 2**63, got {max}")));
        }
    }
    let typed = as_i64.cast::<PyArray1<i64>>()?.try_readonly()?;
    let s = typed.as_slice()?;
    if let Some(pos) = s.iter().position(|&i| i < 0) {
        return Err(PyValueError::new_err(format!("ids must be non-negative: ids[{pos}] is {}", s[pos])));
    }
    Ok(s.iter().map(|&i| i as u64).collect())
}

/// The library reports an unreadable image as a bad file (ValueError); a
/// missing or forbidden one is told apart here, by kind, before decoding.
fn check_image_path(path: &std::path::Path) -> PyResult<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(PyFileNotFoundError::new_err(format!("{}: no such file", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(PyPermissionError::new_err(format!("{}: permission denied", path.display())))
        }
        _ => Ok(()),
    }
}

/// A positive count argument (k, nprobe, candidates): ValueError naming it.
fn positive(name: &str, v: i64) -> PyResult<usize> {
    if v < 1 {
        return Err(PyValueError::new_err(format!("{name} must be at least 1, got {v}")));
    }
    usize::try_from(v).map_err(|_| PyValueError::new_err(format!("{name} is too large: {v}")))
}

/// The search keywords every `ImageLibrary.search_*` takes.
struct Knobs<'a> {
    k: i64,
    nprobe: Option<i64>,
    candidates: Option<i64>,
    rerank: Option<&'a str>,
    fuzz: Option<f64>,
    fast: bool,
    exclude: Option<Vec<String>>,
    exclude_radius: Option<f64>,
}

impl Knobs<'_> {
    /// The library's options; each bad value is a ValueError naming it (the
    /// library checks the combinations when it searches).
    fn options(&self) -> PyResult<SearchOptions> {
        let mut opts = SearchOptions::default().k(positive("k", self.k)?).fast(self.fast);
        if let Some(n) = self.nprobe {
            opts = opts.nprobe(positive("nprobe", n)?);
        }
        if let Some(c) = self.candidates {
            opts = opts.candidates(positive("candidates", c)?);
        }
        if let Some(r) = rerank_arg(self.rerank)? {
            opts = opts.rerank(r);
        }
        if let Some(f) = self.fuzz {
            opts = opts.fuzz(f as f32);
        }
        let radius = self.exclude_radius.map_or(color::DEFAULT_EXCLUDE_RADIUS, |r| r as f32);
        match &self.exclude {
            Some(colors) if !colors.is_empty() => {
                opts = opts.exclude(color::parse_excluded(&colors.join(","), radius).map_err(to_py)?);
            }
            Some(_) => return Err(PyValueError::new_err("exclude must hold at least one hex colour")),
            None if self.exclude_radius.is_some() => {
                return Err(PyValueError::new_err("exclude_radius needs exclude"));
            }
            None => {}
        }
        Ok(opts)
    }
}

fn rerank_arg(rerank: Option<&str>) -> PyResult<Option<Rerank>> {
    rerank
        .map(|name| {
            Rerank::from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "rerank must be None, \"exact\", \"l2\", \"emd\" or \"none\", got {name:?}"
                ))
            })
        })
        .transpose()
}

fn train_report(py: Python<'_>, r: &TrainReport) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("train_points", r.train_points)?;
    d.set_item("coarse_mse", r.coarse_mse)?;
    d.set_item("reconstruction_mse", r.reconstruction_mse)?;
    d.set_item("warnings", r.warnings.clone())?;
    for w in &r.warnings {
        PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &std::ffi::CString::new(w.as_str())?, 1)?;
    }
    Ok(d.into_any().unbind())
}

fn compact_report(py: Python<'_>, r: &CompactReport) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("segments_before", r.segments_before)?;
    d.set_item("segments_after", r.segments_after)?;
    d.set_item("dropped", r.dropped)?;
    Ok(d.into_any().unbind())
}

/// The rows of an `add`, handed to the library a batch at a time. The add
/// runs on a worker thread while the calling thread waits with the GIL
/// released, waking every 50 ms to run Python's signal handlers: Ctrl-C
/// (KeyboardInterrupt) sets `cancel`, the next batch read fails, and the
/// library removes the batches written, so the index stays at its last
/// commit.
struct Interruptible<'a> {
    rows: Rows<'a>,
    cancel: &'a AtomicBool,
}

impl VectorSource for Interruptible<'_> {
    fn dim(&self) -> usize {
        self.rows.dim()
    }
    fn rows(&self) -> usize {
        self.rows.rows()
    }
    fn read<'a>(&'a self, start: usize, count: usize, buf: &'a mut Vec<f32>) -> chromatica::Result<&'a [f32]> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::InvalidInput("interrupted".into()));
        }
        self.rows.read(start, count, buf)
    }
}

/// Threads per computing call set by `set_num_threads` (0: rayon's global
/// pool, one thread per core).
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This Python thread's pool of `NUM_THREADS` threads. Each calling
    /// thread has its own, as each OpenMP caller of faiss has its own team:
    /// four Python threads searching with one thread each use four cores.
    static POOL: RefCell<Option<(usize, Arc<rayon::ThreadPool>)>> = const { RefCell::new(None) };
}

/// The pool computing calls of this thread run on (`None`: the global one).
fn pool() -> PyResult<Option<Arc<rayon::ThreadPool>>> {
    let n = NUM_THREADS.load(Ordering::Relaxed);
    if n == 0 {
        return Ok(None);
    }
    POOL.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some((size, p)) = cell.as_ref() {
            if *size == n {
                return Ok(Some(p.clone()));
            }
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| ChromaticaError::new_err(format!("cannot start {n} threads: {e}")))?;
        let p = Arc::new(p);
        *cell = Some((n, p.clone()));
        Ok(Some(p))
    })
}

/// Runs `f` with the GIL released, on the pool `set_num_threads` chose.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let pool = pool()?;
    Ok(py.detach(move || match pool {
        Some(p) => p.install(f),
        None => f(),
    }))
}

/// Runs `f` on a scoped thread (on the chosen pool) while this thread waits
/// with the GIL released, checking Python's signals every 50 ms; a signal
/// handler's exception (KeyboardInterrupt) sets `cancel` and is returned
/// once `f` has stopped.
fn run_interruptible<T: Send>(py: Python<'_>, cancel: &AtomicBool, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let pool = pool()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            let r = match pool {
                Some(p) => p.install(f),
                None => f(),
            };
            let _ = tx.send(r);
        });
        let mut interrupted = None;
        let mut rx = rx;
        loop {
            // The receiver is Send but not Sync: it goes into the closure and back.
            let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(50)), rx));
            rx = back;
            match got {
                Ok(r) => break interrupted.map_or(Ok(r), Err),
                Err(RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.store(true, Ordering::Relaxed);
                            interrupted = Some(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(ChromaticaError::new_err("the worker thread stopped without a result"))
                }
            }
        }
    })
}

/// Sets the threads each computing call (train, add, search, compact,
/// retrain, indexing) uses, as `faiss.omp_set_num_threads`: each calling
/// Python thread gets a pool of `n` threads. 0 restores the default: one
/// shared pool of a thread per core (or `RAYON_NUM_THREADS`).
#[pyfunction]
fn set_num_threads(n: usize) {
    NUM_THREADS.store(n, Ordering::Relaxed);
}

/// The threads a computing call of this thread uses now.
#[pyfunction]
fn get_num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

/// An IVF-PQ index directory (faiss conventions: float32 numpy arrays in,
/// ``(D, I)`` out). Safe to share between threads: searches run in
/// parallel with the GIL released, writes are serialised.
#[pyclass(frozen, module = "chromatica")]
struct Index {
    inner: RwLock<Option<Arc<CoreIndex>>>,
    path: PathBuf,
    read_only: bool,
}

impl Index {
    fn get(&self) -> PyResult<Arc<CoreIndex>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PyValueError::new_err(format!("{}: the index is closed", self.path.display())))
    }

    fn wrap(index: CoreIndex, path: PathBuf, read_only: bool) -> Index {
        Index { inner: RwLock::new(Some(Arc::new(index))), path, read_only }
    }
}

#[pymethods]
impl Index {
    /// Creates a new, empty, untrained index in `path` (missing or an empty
    /// directory). Unset shape arguments come from `preset` ("memory", the
    /// default: dim 1152, nlist 100, m 8, nbits 8, nprobe 10; "accuracy";
    /// "speed"); an unset nprobe is also capped at nlist.
    #[staticmethod]
    #[pyo3(signature = (path, dim=None, nlist=None, m=None, nbits=None, nprobe=None, preset=None, refine=false, fast_scan=false))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        dim: Option<usize>,
        nlist: Option<usize>,
        m: Option<usize>,
        nbits: Option<usize>,
        nprobe: Option<usize>,
        preset: Option<&str>,
        refine: bool,
        fast_scan: bool,
    ) -> PyResult<Index> {
        let preset = match preset {
            None => Preset::Memory,
            Some(p) => p.parse::<Preset>().map_err(to_py)?,
        };
        let mut c = Config::preset(preset);
        c.dim = dim.unwrap_or(c.dim);
        c.nlist = nlist.unwrap_or(c.nlist);
        c.m = m.unwrap_or(c.m);
        c.nbits = nbits.unwrap_or(c.nbits);
        // An unset nprobe is the preset's, capped at nlist.
        c.nprobe = nprobe.unwrap_or(c.nprobe.min(c.nlist));
        c.refine = refine;
        c.fast_scan = fast_scan;
        let p = path.clone();
        let index = py.detach(move || CoreIndex::create(&p, c)).map_err(to_py)?;
        Ok(Index::wrap(index, path, false))
    }

    /// Opens the index in `path`: for writing (one writer per directory;
    /// another gets LockedError), or with `read_only=True` alongside one.
    #[staticmethod]
    #[pyo3(signature = (path, read_only=false))]
    fn open(py: Python<'_>, path: PathBuf, read_only: bool) -> PyResult<Index> {
        let p = path.clone();
        let index = py
            .detach(move || if read_only { CoreIndex::open_read_only(&p) } else { CoreIndex::open(&p) })
            .map_err(to_py)?;
        Ok(Index::wrap(index, path, read_only))
    }

    /// Imports a faiss `IndexIVFPQ` file (written by `faiss.write_index`)
    /// as a new index in `path`, keeping faiss's quantizers, codes and ids.
    #[staticmethod]
    fn import_faiss(py: Python<'_>, file: PathBuf, path: PathBuf) -> PyResult<Index> {
        let p = path.clone();
        let (index, _) = py.detach(move || chromatica::faiss_import::import(&file, &p)).map_err(to_py)?;
        Ok(Index::wrap(index, path, false))
    }

    /// Trains the coarse and product quantizers on `x` (n × dim float32)
    /// and commits them. Returns the training report (a dict).
    #[pyo3(signature = (x, seed=1234))]
    fn train(&self, py: Python<'_>, x: &Bound<'_, PyAny>, seed: u64) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let m = matrix(x, "x", index.config().dim, false)?;
        let data = m.slice();
        let opts = TrainOptions { seed, ..TrainOptions::default() };
        let report = run(py, || index.train(data, &opts, &mut |_| ()))?.map_err(to_py)?;
        train_report(py, &report)
    }

    /// Adds the rows of `x` (n × dim float32), durable when this returns,
    /// all or nothing. Without `ids`, ids continue from one past the
    /// largest so far. Returns the ids given (int64). Ctrl-C during a long
    /// add raises KeyboardInterrupt and leaves the index at its last commit.
    #[pyo3(signature = (x, ids=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let index = self.get()?;
        let dim = index.config().dim;
        let m = matrix(x, "x", dim, false)?;
        let ids = ids.map(ids_arg).transpose()?;
        if let Some(ids) = &ids {
            if ids.len() != m.rows {
                return Err(PyValueError::new_err(format!("{} ids for {} rows of x", ids.len(), m.rows)));
            }
        }
        let cancel = AtomicBool::new(false);
        let source = Interruptible { rows: Rows { data: m.slice(), dim: m.cols }, cancel: &cancel };
        let report = run_interruptible(py, &cancel, || index.add_from(&source, ids.as_deref(), ADD_BATCH_ROWS))?
            .map_err(to_py)?;
        if let Some(w) = &report.merge_error {
            PyErr::warn(
                py,
                &py.get_type::<pyo3::exceptions::PyUserWarning>(),
                &std::ffi::CString::new(w.as_str())?,
                1,
            )?;
        }
        let out: Vec<i64> = match ids {
            Some(ids) => ids.into_iter().map(|i| i as i64).collect(),
            None => (report.ids.start..report.ids.end).map(|i| i as i64).collect(),
        };
        Ok(out.into_pyarray(py))
    }

    /// Searches the k nearest neighbours of each row of `x` (a 1-D `x` is
    /// one query). Returns `(D, I)`: float32 squared distances and int64
    /// ids of shape (nq, k), padded with inf and -1 where fewer than k
    /// exist. `rerank`: None (the index's default: exact L2 with a refine
    /// store), "l2", "emd" or "none".
    #[pyo3(signature = (x, k, nprobe=None, rerank=None, candidates=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: i64,
        nprobe: Option<i64>,
        rerank: Option<&str>,
        candidates: Option<i64>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let index = self.get()?;
        let dim = index.config().dim;
        let m = matrix(x, "x", dim, true)?;
        let params = search_params(k, nprobe, rerank, candidates)?;
        let k = params.k;
        let nq = m.rows;
        let entries = nq.checked_mul(k).filter(|&e| e <= MAX_RESULT_ENTRIES).ok_or_else(|| {
            PyValueError::new_err(format!(
                "k = {k} for {nq} queries asks for more than {MAX_RESULT_ENTRIES} results at once: search in smaller batches"
            ))
        })?;
        let data = m.slice();
        let work = || -> chromatica::Result<(Vec<f32>, Vec<i64>)> {
            let mut d = vec![f32::INFINITY; entries];
            let mut i = vec![-1i64; entries];
            if nq > 0 {
                // The library checks the queries (dimension, NaN/Inf) itself.
                let hits = index.search(data, &params)?;
                for (q, row) in hits.iter().enumerate() {
                    for (j, n) in row.iter().take(k).enumerate() {
                        d[q * k + j] = n.distance;
                        i[q * k + j] = n.id as i64;
                    }
                }
            }
            Ok((d, i))
        };
        // The library runs a single query on the calling thread: handing it
        // to a pool would only add a thread switch (~15 µs) to each call.
        let (d, i) = if nq == 1 { py.detach(work) } else { run(py, work)? }.map_err(to_py)?;
        let d = Array2::from_shape_vec((nq, k), d).expect("nq × k").into_pyarray(py);
        let i = Array2::from_shape_vec((nq, k), i).expect("nq × k").into_pyarray(py);
        Ok((d.into_any(), i.into_any()))
    }

    /// Stage 1 of `search` over the segments numbered `segments` (all of
    /// them when None) of the current state: `(A, E, I)` of shape
    /// (nq, max(k, candidates)) — k without re-ranking —, nearest first by
    /// A (the PQ distance), E the exact squared L2 of each candidate (None
    /// without re-ranking), padded with inf, inf and -1. What a shard of
    /// `chromatica.ray.ShardedSearcher` answers; `merge_candidates` merges
    /// shards into exactly what `search` on the whole index returns.
    /// `rerank`: None (the default), "l2" or "none".
    #[pyo3(signature = (x, k, nprobe=None, rerank=None, candidates=None, segments=None))]
    fn search_candidates<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: i64,
        nprobe: Option<i64>,
        rerank: Option<&str>,
        candidates: Option<i64>,
        segments: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let index = self.get()?;
        let m = matrix(x, "x", index.config().dim, true)?;
        let params = search_params(k, nprobe, rerank, candidates)?;
        let data = m.slice();
        let work = || -> chromatica::Result<Vec<Vec<Candidate>>> {
            let snap = index.snapshot();
            match &segments {
                Some(files) => snap.subset(files)?.search_candidates(data, &params),
                None => snap.search_candidates(data, &params),
            }
        };
        // One query runs on the calling thread, as in `search`.
        let rows = if m.rows == 1 { py.detach(work) } else { run(py, work)? }.map_err(to_py)?;
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let entries = m.rows * width;
        let (mut a, mut e, mut i) = (vec![f32::INFINITY; entries], vec![f32::INFINITY; entries], vec![-1i64; entries]);
        let exact = rows.iter().flatten().any(|c| c.exact.is_some());
        for (q, row) in rows.iter().enumerate() {
            for (j, c) in row.iter().enumerate() {
                a[q * width + j] = c.approx;
                e[q * width + j] = c.exact.unwrap_or(f32::INFINITY);
                i[q * width + j] = c.id as i64;
            }
        }
        let shape = (m.rows, width);
        let a = Array2::from_shape_vec(shape, a).expect("shape").into_pyarray(py).into_any();
        let e = if exact {
            Array2::from_shape_vec(shape, e).expect("shape").into_pyarray(py).into_any()
        } else {
            py.None().into_bound(py)
        };
        let i = Array2::from_shape_vec(shape, i).expect("shape").into_pyarray(py).into_any();
        Ok(pyo3::types::PyTuple::new(py, [a, e, i])?.into_any())
    }

    /// Encodes the rows of `x` (n × dim float32, one id each in `ids`) with
    /// the committed quantizers into a new segment file that no manifest
    /// names yet, numbered from `first_file` (at least the index's
    /// `state()["next_file"]`), durable when this returns. Works on a
    /// read-only handle (a Ray worker's). `paths`: one image file per row,
    /// recorded (path, size, mtime) as `ImageLibrary.index` records them.
    /// Returns the staged segment (a dict) for `commit_staged`.
    #[pyo3(signature = (x, ids, first_file, paths=None))]
    fn stage_segment(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
        first_file: u64,
        paths: Option<Vec<PathBuf>>,
    ) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let m = matrix(x, "x", index.config().dim, false)?;
        let ids = ids_arg(ids)?;
        let records = paths
            .map(|paths| {
                paths
                    .into_iter()
                    .map(|path| {
                        let meta = std::fs::metadata(&path)
                            .map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
                        let mtime_ns = Record::modified_ns(&meta);
                        Ok(Record { path, size: meta.len(), mtime_ns })
                    })
                    .collect::<PyResult<Vec<Record>>>()
            })
            .transpose()?;
        let data = m.slice();
        let s = run(py, || index.stage_segment(first_file, data, &ids, records.as_deref()))?.map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("file", s.file)?;
        d.set_item("vectors", s.vectors)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("quantizer_file", s.quantizer_file)?;
        Ok(d.into_any().unbind())
    }

    /// Commits segments staged by `stage_segment` (in any process) as one
    /// new generation, all or nothing; needs the writer. Returns
    /// ``{"ids": (lo, hi), "segments": [file, ...]}``.
    fn commit_staged(&self, py: Python<'_>, staged: Vec<Bound<'_, PyDict>>) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let field = |d: &Bound<'_, PyDict>, key: &str| -> PyResult<u64> {
            d.get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("staged segment without {key:?}: {d}")))?
                .extract::<u64>()
        };
        let staged = staged
            .iter()
            .map(|d| {
                Ok(StagedSegment {
                    file: field(d, "file")?,
                    vectors: field(d, "vectors")?,
                    bytes: field(d, "bytes")?,
                    quantizer_file: field(d, "quantizer_file")?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let r = py.detach(|| index.commit_staged(&staged)).map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("ids", (r.ids.start, r.ids.end))?;
        d.set_item("segments", r.segments)?;
        Ok(d.into_any().unbind())
    }

    /// The committed state this handle sees: ``{"generation", "next_file",
    /// "next_id", "quantizer_file" (None untrained), "nprobe", "candidates"
    /// (an L2 search's defaults), "segments": [{"file", "vectors"
    /// (live)}, ...]}`` (file numbers as `search_candidates` and
    /// `stage_segment` take them).
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let snap = index.snapshot();
        let d = PyDict::new(py);
        d.set_item("generation", snap.generation())?;
        d.set_item("next_file", snap.next_file())?;
        d.set_item("next_id", snap.next_id())?;
        d.set_item("quantizer_file", snap.quantizer_file())?;
        // What an L2 search that does not say uses (stored by `tune`):
        // a merge of sharded candidates needs the same number.
        let (nprobe, candidates) = snap.search_defaults(Rerank::L2);
        d.set_item("nprobe", nprobe)?;
        d.set_item("candidates", candidates)?;
        let segments = PyList::empty(py);
        for (file, live) in snap.segment_files() {
            let e = PyDict::new(py);
            e.set_item("file", file)?;
            e.set_item("vectors", live)?;
            segments.append(e)?;
        }
        d.set_item("segments", segments)?;
        Ok(d.into_any().unbind())
    }

    /// Deletes `ids` (all must be live; else nothing is deleted and
    /// ValueError names one). Returns the number deleted.
    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let index = self.get()?;
        let ids = ids_arg(ids)?;
        let r = run(py, || index.delete(&ids))?.map_err(to_py)?;
        Ok(r.deleted)
    }

    /// Merges every segment into one and drops deleted vectors.
    fn compact(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let r = run(py, || index.compact())?.map_err(to_py)?;
        compact_report(py, &r)
    }

    /// Re-trains the quantizers on the stored vectors (needs `refine=True`)
    /// and re-encodes every vector, in one crash-safe commit.
    #[pyo3(signature = (seed=1234))]
    fn retrain(&self, py: Python<'_>, seed: u64) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let opts = TrainOptions { seed, ..TrainOptions::default() };
        let r = run(py, || index.retrain(&opts))?.map_err(to_py)?;
        train_report(py, &r)
    }

    /// Moves the handle to the newest committed state (for a read-only
    /// handle beside a writer in another process).
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.get()?;
        py.detach(|| index.refresh()).map_err(to_py)
    }

    /// Bytes the index uses on disk and in memory (everything counted),
    /// the fields of `chromatica inspect --json`'s "memory".
    fn memory_usage_estimate(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        to_json_obj(py, &index.memory_estimate())
    }

    /// The fields of `chromatica inspect --json`.
    fn inspect(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        to_json_obj(py, &index.inspect())
    }

    /// Drift since training (against the baseline stored at training),
    /// errors of a seeded sample of stored vectors, estimated stage-1
    /// recall@10 and advice: the fields of `chromatica inspect --health
    /// --json`. Read-only; `queries` sampled vectors each cost one exact scan.
    #[pyo3(signature = (sample=2000, queries=100, seed=1234))]
    fn health(&self, py: Python<'_>, sample: i64, queries: i64, seed: u64) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let mut opts = HealthOptions::default();
        opts.sample = positive("sample", sample)?;
        opts.queries = usize::try_from(queries).map_err(|_| PyValueError::new_err("queries must be at least 0"))?;
        opts.seed = seed;
        let r = py.detach(|| index.health(&opts)).map_err(to_py)?;
        to_json_obj(py, &r)
    }

    /// Measures recall@10 against exact L2 over the refine store (on
    /// `queries` stored vectors) and speed over a grid of nprobe ×
    /// candidates, and picks the cheapest setting meeting `recall`: the
    /// fields of `chromatica tune --json`, with "stored". With `store=True`
    /// the choice becomes the index's defaults (one commit, as
    /// `set_search_defaults`).
    #[pyo3(signature = (recall, queries=200, seed=1234, store=false))]
    fn tune(&self, py: Python<'_>, recall: f64, queries: i64, seed: u64, store: bool) -> PyResult<Py<PyAny>> {
        let index = self.get()?;
        let queries = positive("queries", queries)?;
        let r = py.detach(|| index.tune(recall, queries, seed)).map_err(to_py)?;
        let stored = match (&r.chosen, store) {
            (Some(c), true) => {
                py.detach(|| index.set_search_defaults(r.rerank(), c.nprobe, c.candidates)).map_err(to_py)?;
                true
            }
            _ => false,
        };
        let out = to_json_obj(py, &r)?;
        out.bind(py).set_item("stored", stored)?;
        Ok(out)
    }

    /// Stores `nprobe` and `candidates` as the defaults of searches
    /// re-ranked like `rerank` ("l2" or "none": vector searches; "exact" or
    /// "emd": colour searches), in one commit; searches that do not say
    /// otherwise use them.
    #[pyo3(signature = (nprobe, candidates, rerank="l2"))]
    fn set_search_defaults(&self, py: Python<'_>, nprobe: i64, candidates: i64, rerank: &str) -> PyResult<()> {
        let index = self.get()?;
        let (nprobe, candidates) = (positive("nprobe", nprobe)?, positive("candidates", candidates)?);
        let rerank = rerank_arg(Some(rerank))?.expect("given");
        py.detach(|| index.set_search_defaults(rerank, nprobe, candidates)).map_err(to_py)
    }

    /// Reads every byte of the index and checks every checksum; returns the
    /// fields of `chromatica verify --json`, or raises CorruptIndexError.
    fn verify(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let path = self.get()?.path().to_owned();
        let r = py.detach(|| CoreIndex::verify(&path)).map_err(to_py)?;
        to_json_obj(py, &r)
    }

    /// Warnings of opening (a damaged newest manifest skipped read-only).
    fn warnings(&self) -> PyResult<Vec<String>> {
        Ok(self.get()?.warnings())
    }

    /// Whether the quantizers are trained.
    #[getter]
    fn is_trained(&self) -> PyResult<bool> {
        Ok(self.get()?.is_trained())
    }

    /// Live vectors.
    #[getter]
    fn ntotal(&self) -> PyResult<u64> {
        Ok(self.get()?.len())
    }

    /// Vector dimension.
    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.get()?.config().dim)
    }

    /// Faiss's name for the dimension.
    #[getter]
    fn d(&self) -> PyResult<usize> {
        self.dim()
    }

    /// The configuration: dim, nlist, m, nbits, nprobe, metric, refine,
    /// auto_train, fast_scan.
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_json_obj(py, &self.get()?.config())
    }

    /// The index directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether the handle was opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Releases the handle (and the writer lock once calls in flight end).
    /// Later calls raise ValueError. Closing twice is allowed.
    fn close(&self) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.get()?.len() as usize)
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(i) => {
                let c = i.config();
                format!(
                    "chromatica.Index({:?}, dim={}, nlist={}, m={}, nbits={}, ntotal={}, trained={})",
                    self.path.display().to_string(),
                    c.dim,
                    c.nlist,
                    c.m,
                    c.nbits,
                    i.len(),
                    i.is_trained()
                )
            }
            Err(_) => format!("chromatica.Index({:?}, closed)", self.path.display().to_string()),
        }
    }
}

fn colors_list(colors: &[DominantColor]) -> Vec<(String, f64)> {
    colors.iter().map(|c| (c.hex(), c.share)).collect()
}

fn sync_summary(py: Python<'_>, s: &SyncSummary) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("added", s.added)?;
    d.set_item("updated", s.updated)?;
    d.set_item("unchanged", s.unchanged)?;
    d.set_item("removed", s.removed.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>())?;
    let problems = |v: &[images::SyncProblem]| -> Vec<(String, String)> {
        v.iter().map(|p| (p.path.to_string_lossy().into_owned(), p.error.to_string())).collect()
    };
    d.set_item("failed", problems(&s.failed))?;
    d.set_item("warnings", problems(&s.warnings))?;
    d.set_item("trained_now", s.trained_now)?;
    d.set_item("seconds", s.seconds)?;
    d.set_item("images_per_second", s.images_per_second)?;
    Ok(d.into_any().unbind())
}

/// A progress display for `ImageLibrary.index`: a tqdm bar when tqdm is
/// installed (and progress=True), or the caller's function.
enum Progress {
    None,
    Tqdm { class: Py<PyAny>, bar: Mutex<Option<Py<PyAny>>> },
    Callback(Py<PyAny>),
}

impl Progress {
    fn new(py: Python<'_>, progress: &Bound<'_, PyAny>) -> PyResult<Progress> {
        if progress.is_callable() {
            return Ok(Progress::Callback(progress.clone().unbind()));
        }
        if !progress.is_truthy()? {
            return Ok(Progress::None);
        }
        match py.import("tqdm.auto") {
            Ok(m) => Ok(Progress::Tqdm { class: m.getattr("tqdm")?.unbind(), bar: Mutex::new(None) }),
            Err(_) => Ok(Progress::None),
        }
    }

    /// Called from the library's worker threads; errors of the display are
    /// ignored (they must not stop indexing).
    fn event(&self, e: &SyncEvent<'_>) {
        let (name, n) = match e {
            SyncEvent::Planned { to_decode } => ("planned", *to_decode),
            SyncEvent::Decoded => ("decoded", 1),
            SyncEvent::Problem(_) => ("problem", 1),
            _ => return,
        };
        match self {
            Progress::None => {}
            Progress::Callback(f) => Python::attach(|py| {
                let _ = f.call1(py, (name, n));
            }),
            Progress::Tqdm { class, bar } => Python::attach(|py| {
                let mut bar = bar.lock().unwrap_or_else(|p| p.into_inner());
                match name {
                    "planned" => {
                        let kw = PyDict::new(py);
                        let _ = kw.set_item("total", n);
                        let _ = kw.set_item("unit", "image");
                        let _ = kw.set_item("desc", "indexing");
                        *bar = class.call(py, (), Some(&kw)).ok();
                    }
                    "decoded" => {
                        if let Some(b) = bar.as_ref() {
                            let _ = b.call_method1(py, "update", (1,));
                        }
                    }
                    _ => {}
                }
            }),
        }
    }

    fn finish(&self, py: Python<'_>) {
        if let Progress::Tqdm { bar, .. } = self {
            if let Some(b) = bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = b.call_method0(py, "close");
            }
        }
    }
}

/// A colour-searchable index of image files (opened for writing, created
/// when `path` is missing or empty).
#[pyclass(frozen, module = "chromatica")]
struct ImageLibrary {
    inner: RwLock<Option<Arc<ImageIndex>>>,
    path: PathBuf,
}

impl ImageLibrary {
    fn get(&self) -> PyResult<Arc<ImageIndex>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PyValueError::new_err(format!("{}: the library is closed", self.path.display())))
    }

    fn run_search(&self, py: Python<'_>, query: Query, knobs: Knobs<'_>) -> PyResult<Py<PyAny>> {
        let lib = self.get()?;
        let opts = knobs.options()?;
        let found = run(py, || lib.search(&query, &opts))?.map_err(to_py)?;
        let out = PyList::empty(py);
        for h in &found.hits {
            let d = PyDict::new(py);
            d.set_item("id", h.id)?;
            d.set_item("path", h.path.as_ref().map(|p| p.to_string_lossy().into_owned()))?;
            d.set_item("distance", h.distance)?;
            d.set_item("dominant_colors", colors_list(&h.colors))?;
            out.append(d)?;
        }
        Ok(out.into_any().unbind())
    }
}

#[pymethods]
impl ImageLibrary {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<ImageLibrary> {
        let p = path.clone();
        let lib = py.detach(move || ImageIndex::open_or_create(&p)).map_err(to_py)?;
        Ok(ImageLibrary { inner: RwLock::new(Some(Arc::new(lib))), path })
    }

    /// Brings the index in step with `folders` (or image files): adds new
    /// images, re-indexes changed ones, removes deleted ones. `progress`:
    /// True for a tqdm bar when tqdm is installed, False for none, or a
    /// function `f(event, n)` ("planned", files to decode; "decoded", 1;
    /// "problem", 1). Returns the summary (a dict).
    #[pyo3(signature = (folders, progress=None, follow_links=true))]
    fn index(
        &self,
        py: Python<'_>,
        folders: &Bound<'_, PyAny>,
        progress: Option<&Bound<'_, PyAny>>,
        follow_links: bool,
    ) -> PyResult<Py<PyAny>> {
        let lib = self.get()?;
        let folders: Vec<PathBuf> =
            if folders.is_instance_of::<PyString>() { vec![folders.extract()?] } else { folders.extract()? };
        let progress = match progress {
            Some(p) => Progress::new(py, p)?,
            None => Progress::new(py, pyo3::types::PyBool::new(py, true).as_any())?,
        };
        let opts = SyncOptions::default().follow_links(follow_links);
        let result = run(py, || lib.sync(&folders, &opts, &|e| progress.event(&e)))?;
        progress.finish(py);
        sync_summary(py, &result.map_err(to_py)?)
    }

    /// Images whose colours are closest to `colors` (hex strings such as
    /// "ea6a81" or "#f6d727"), with optional `weights` (normalised; equal
    /// when absent). Returns a list of dicts: id, path, distance,
    /// dominant_colors [(hex, share)].
    ///
    /// `fuzz` (ΔE, 0 to 100): how far a colour may stray at no cost.
    /// `fast`: stage 1 only (no re-rank; not with fuzz or exclude).
    /// `exclude`: colours the results must not hold ("ff0000" or
    /// "ff0000:0.1", the largest share allowed, default 0.05) within
    /// `exclude_radius` ΔE (default 20).
    #[pyo3(signature = (colors, weights=None, k=10, nprobe=None, candidates=None, rerank=None,
                        fuzz=None, fast=false, exclude=None, exclude_radius=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each optional
    fn search_colors(
        &self,
        py: Python<'_>,
        colors: Vec<String>,
        weights: Option<Vec<f64>>,
        k: i64,
        nprobe: Option<i64>,
        candidates: Option<i64>,
        rerank: Option<&str>,
        fuzz: Option<f64>,
        fast: bool,
        exclude: Option<Vec<String>>,
        exclude_radius: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let knobs = Knobs { k, nprobe, candidates, rerank, fuzz, fast, exclude, exclude_radius };
        if colors.is_empty() {
            return Err(PyValueError::new_err("colors must hold at least one hex colour"));
        }
        if let Some(c) = colors.iter().find(|c| c.contains([',', ':'])) {
            return Err(PyValueError::new_err(format!(
                "colour {c:?} must be one hex colour (give weights separately)"
            )));
        }
        let spec = match &weights {
            None => colors.join(","),
            Some(w) if w.len() != colors.len() => {
                return Err(PyValueError::new_err(format!("{} weights for {} colours", w.len(), colors.len())));
            }
            Some(w) => {
                if let Some(x) = w.iter().find(|x| !x.is_finite()) {
                    return Err(PyValueError::new_err(format!("weights must be finite, got {x}")));
                }
                colors.iter().zip(w).map(|(c, w)| format!("{c}:{w}")).collect::<Vec<_>>().join(",")
            }
        };
        let query = Query::colors(&spec).map_err(to_py)?;
        self.run_search(py, query, knobs)
    }

    /// Images whose colours are closest to the image file `path`'s.
    /// Takes the same `fuzz`, `fast` and `exclude` as `search_colors`.
    #[pyo3(signature = (path, k=10, nprobe=None, candidates=None, rerank=None,
                        fuzz=None, fast=false, exclude=None, exclude_radius=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each optional
    fn search_image(
        &self,
        py: Python<'_>,
        path: PathBuf,
        k: i64,
        nprobe: Option<i64>,
        candidates: Option<i64>,
        rerank: Option<&str>,
        fuzz: Option<f64>,
        fast: bool,
        exclude: Option<Vec<String>>,
        exclude_radius: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let knobs = Knobs { k, nprobe, candidates, rerank, fuzz, fast, exclude, exclude_radius };
        check_image_path(&path)?;
        self.run_search(py, Query::Image(path), knobs)
    }

    /// Images whose colours are closest to a histogram of 1152 non-negative
    /// bins (as `chromatica.histogram` gives; any scale).
    /// Takes the same `fuzz`, `fast` and `exclude` as `search_colors`.
    #[pyo3(signature = (histogram, k=10, nprobe=None, candidates=None, rerank=None,
                        fuzz=None, fast=false, exclude=None, exclude_radius=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each optional
    fn search_histogram(
        &self,
        py: Python<'_>,
        histogram: &Bound<'_, PyAny>,
        k: i64,
        nprobe: Option<i64>,
        candidates: Option<i64>,
        rerank: Option<&str>,
        fuzz: Option<f64>,
        fast: bool,
        exclude: Option<Vec<String>>,
        exclude_radius: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let knobs = Knobs { k, nprobe, candidates, rerank, fuzz, fast, exclude, exclude_radius };
        let m = matrix(histogram, "histogram", color::HIST_DIM, true)?;
        if m.rows != 1 {
            return Err(PyValueError::new_err(format!("histogram must be one row, got {}", m.rows)));
        }
        let h = m.slice().to_vec();
        self.run_search(py, Query::Histogram(h), knobs)
    }

    /// Images in the library.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.get()?.len() as usize)
    }

    /// The library's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The vector index underneath (read-only statistics: inspect, verify,
    /// memory_usage_estimate).
    fn inspect(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_json_obj(py, &self.get()?.index().inspect())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Releases the library (and its writer lock). Closing twice is allowed.
    fn close(&self) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(l) => format!("chromatica.ImageLibrary({:?}, images={})", self.path.display().to_string(), l.len()),
            Err(_) => format!("chromatica.ImageLibrary({:?}, closed)", self.path.display().to_string()),
        }
    }
}

/// The 1152-bin CIE Lab colour histogram of an image file (sums to 1;
/// not Hellinger-transformed), as float32 of shape (1152,).
#[pyfunction]
fn histogram<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyArray1<f32>>> {
    check_image_path(&path)?;
    let h = py.detach(move || images::histogram(&path)).map_err(to_py)?;
    Ok(h.into_pyarray(py))
}

/// The Hellinger transform of histograms (1-D or 2-D float32): the square
/// root of every element (histograms that sum to 1 then have unit norm, and
/// L2 distance between them is the Hellinger distance). Returns a new array.
#[pyfunction]
fn hellinger<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let dim = match x.cast::<PyUntypedArray>() {
        Ok(a) => a.shape().last().copied().unwrap_or(0),
        Err(_) => 0,
    };
    let m = matrix(x, "x", dim, true)?;
    let mut out = m.slice().to_vec();
    if let Some(i) = out.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(PyValueError::new_err(format!(
            "x[{}, {}] is {}: histograms must be finite and non-negative",
            i / dim.max(1),
            i % dim.max(1),
            out[i]
        )));
    }
    if dim > 0 {
        for row in out.chunks_exact_mut(dim) {
            color::hellinger(row);
        }
    }
    let arr = out.into_pyarray(py);
    let shape: Vec<usize> = x.cast::<PyUntypedArray>()?.shape().to_vec();
    Ok(arr.reshape(shape)?.into_any())
}

/// The `n` dominant colours of a 1152-bin histogram: [(hex, share)].
#[pyfunction]
#[pyo3(signature = (histogram, n=5))]
fn dominant_colors(histogram: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<(String, f64)>> {
    let m = matrix(histogram, "histogram", color::HIST_DIM, true)?;
    if m.rows != 1 {
        return Err(PyValueError::new_err(format!("histogram must be one row, got {}", m.rows)));
    }
    Ok(colors_list(&images::dominant_colors(m.slice(), n)))
}

/// Search settings from Python's keyword arguments, each checked.
fn search_params(k: i64, nprobe: Option<i64>, rerank: Option<&str>, candidates: Option<i64>) -> PyResult<SearchParams> {
    let mut params = SearchParams::new(positive("k", k)?);
    if let Some(n) = nprobe {
        params = params.nprobe(positive("nprobe", n)?);
    }
    if let Some(r) = rerank_arg(rerank)? {
        params = params.rerank(r);
    }
    if let Some(c) = candidates {
        params = params.candidates(positive("candidates", c)?);
    }
    Ok(params)
}

/// One shard's `(A, E, I)` from `Index.search_candidates`.
type Part<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>, Bound<'py, PyAny>);

/// Merges what `Index.search_candidates` returned for disjoint groups of
/// one state's segments (a list of `(A, E, I)`, with the same k and
/// candidates) into `(D, I)` of shape (nq, k): exactly what `search` on the
/// whole state returns, padded with inf and -1.
#[pyfunction]
#[pyo3(signature = (parts, k, candidates=None))]
fn merge_candidates<'py>(
    py: Python<'py>,
    parts: Vec<Part<'py>>,
    k: i64,
    candidates: Option<i64>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let params = search_params(k, None, None, candidates)?;
    let mut all = Vec::with_capacity(parts.len());
    for (n, (a, e, i)) in parts.iter().enumerate() {
        let a: numpy::PyReadonlyArray2<'_, f32> = a.extract().map_err(|_| {
            PyTypeError::new_err(format!("part {n}: A must be a 2-D float32 array (from search_candidates)"))
        })?;
        let i: numpy::PyReadonlyArray2<'_, i64> = i.extract().map_err(|_| {
            PyTypeError::new_err(format!("part {n}: I must be a 2-D int64 array (from search_candidates)"))
        })?;
        let e: Option<numpy::PyReadonlyArray2<'_, f32>> = e
            .as_ref()
            .map(|e| e.extract())
            .transpose()
            .map_err(|_| PyTypeError::new_err(format!("part {n}: E must be None or a 2-D float32 array")))?;
        let (a, i) = (a.as_array(), i.as_array());
        if a.shape() != i.shape() || e.as_ref().is_some_and(|e| e.as_array().shape() != a.shape()) {
            return Err(PyValueError::new_err(format!("part {n}: A, E and I differ in shape")));
        }
        let rows: Vec<Vec<Candidate>> = (0..a.nrows())
            .map(|q| {
                (0..a.ncols())
                    .filter(|&j| i[[q, j]] >= 0)
                    .map(|j| Candidate {
                        id: i[[q, j]] as u64,
                        approx: a[[q, j]],
                        exact: e.as_ref().map(|e| e.as_array()[[q, j]]),
                    })
                    .collect()
            })
            .collect();
        all.push(rows);
    }
    let merged = chromatica::merge_candidates(&all, &params).map_err(to_py)?;
    let k = params.k;
    let nq = merged.len();
    let (mut d, mut ids) = (vec![f32::INFINITY; nq * k], vec![-1i64; nq * k]);
    for (q, row) in merged.iter().enumerate() {
        for (j, &(id, dist)) in row.iter().enumerate() {
            d[q * k + j] = dist;
            ids[q * k + j] = id as i64;
        }
    }
    let d = Array2::from_shape_vec((nq, k), d).expect("nq × k").into_pyarray(py);
    let ids = Array2::from_shape_vec((nq, k), ids).expect("nq × k").into_pyarray(py);
    Ok((d.into_any(), ids.into_any()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Index>()?;
    m.add_class::<ImageLibrary>()?;
    m.add_function(wrap_pyfunction!(histogram, m)?)?;
    m.add_function(wrap_pyfunction!(merge_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(hellinger, m)?)?;
    m.add_function(wrap_pyfunction!(dominant_colors, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add("Error", py.get_type::<ChromaticaError>())?;
    m.add("CorruptIndexError", py.get_type::<CorruptIndexError>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add("HIST_DIM", color::HIST_DIM)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
