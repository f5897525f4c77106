"""Type stubs of the compiled extension ``chromatica._native`` (re-exported by ``chromatica``)."""

from os import PathLike
from types import TracebackType
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]
_Ids = Union[npt.NDArray[np.integer[Any]], Sequence[int]]
_Rerank = Optional[Literal["exact", "l2", "emd", "none", "off"]]

__version__: str
HIST_DIM: int
"""Bins of a colour histogram: 8 L* x 12 a* x 12 b* = 1152."""

class Error(Exception):
    """Base class of the errors that have no closer built-in kind."""

class CorruptIndexError(Error):
    """A file of the index fails a checksum or structural check, or the newest manifest is damaged."""

class LockedError(Error):
    """Another writer holds the index's lock (one writer per directory; read-only opens work beside it)."""

class Index:
    """An IVF-PQ index directory with faiss conventions.

    Vectors are C-contiguous float32 numpy arrays of shape ``(n, dim)``, used
    without a copy (other dtypes: ``TypeError``; other shapes, NaN/Inf,
    non-contiguous arrays: ``ValueError``, naming the problem). Searches
    return ``(D, I)``: float32 squared L2 distances and int64 ids of shape
    ``(nq, k)``, padded with ``inf`` and ``-1`` where fewer than k exist.

    The GIL is released during train, add, search, delete, compact, retrain
    and verify, so threads search one index in parallel while another thread
    writes. Do not modify an array from another thread while a call uses it.
    Use as a context manager, or call :meth:`close`.
    """

    @staticmethod
    def create(
        path: _Path,
        dim: Optional[int] = None,
        nlist: Optional[int] = None,
        m: Optional[int] = None,
        nbits: Optional[int] = None,
        nprobe: Optional[int] = None,
        preset: Optional[Literal["memory", "accuracy", "speed"]] = None,
        refine: bool = False,
        fast_scan: bool = False,
    ) -> "Index":
        """Creates a new, empty, untrained index in ``path`` (missing or an empty directory).

        Unset arguments come from ``preset``: "memory" (the default: dim 1152,
        nlist 100, m 8, nbits 8, nprobe 10), "accuracy" (m 16, nlist 200,
        nprobe 20) or "speed" (m 4, nbits 6, nlist 50, nprobe 5); an unset nprobe is capped at nlist. ``refine``
        keeps each vector's values (sparse, 16 bits each with a per-vector
        scale: within 1/32767 of its largest) to re-rank candidates by
        exact L2; ``fast_scan`` needs ``nbits=4``. ``FileExistsError`` if
        ``path`` holds an index or other files.
        """
    @staticmethod
    def open(path: _Path, read_only: bool = False) -> "Index":
        """Opens an existing index; ``FileNotFoundError`` if there is none, ``LockedError`` if another writer has it."""
    @staticmethod
    def import_faiss(file: _Path, path: _Path) -> "Index":
        """Imports a faiss ``IndexIVFPQ`` file (``faiss.write_index``) as a new index in ``path``.

        faiss's centroids, codebooks, codes and ids are kept as they are, so
        searches return faiss's neighbours and distances.
        """
    def train(self, x: npt.NDArray[np.float32], seed: int = 1234) -> Dict[str, Any]:
        """Trains the quantizers on ``x`` (n x dim) and commits them (faiss's k-means rules, reproducible by seed).

        Returns ``{"train_points", "coarse_mse", "reconstruction_mse", "warnings"}``;
        each warning is also issued as a ``UserWarning``.
        """
    def add(self, x: npt.NDArray[np.float32], ids: Optional[_Ids] = None) -> npt.NDArray[np.int64]:
        """Adds the rows of ``x`` (n x dim), durable when this returns, all or nothing.

        Without ``ids``, ids continue from one past the largest so far.
        Returns the ids given. A live id, a repeated id or a bad row raises
        ``ValueError`` and adds nothing. Ctrl-C during a long add raises
        ``KeyboardInterrupt`` and leaves the index at its last commit.
        """
    def search(
        self,
        x: npt.NDArray[np.float32],
        k: int,
        nprobe: Optional[int] = None,
        rerank: _Rerank = None,
        candidates: Optional[int] = None,
    ) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The ``k`` nearest neighbours of each row of ``x`` (a 1-D ``x`` is one query): ``(D, I)`` of shape (nq, k).

        ``nprobe``: lists probed (default the index's). ``rerank``: None (the
        index's default: exact L2 when it has a refine store), "l2", "emd"
        (Sinkhorn EMD between colour distributions) or "none".
        ``candidates``: stage-1 candidates handed to re-ranking (default 200).
        """
    def search_candidates(
        self,
        x: npt.NDArray[np.float32],
        k: int,
        nprobe: Optional[int] = None,
        rerank: _Rerank = None,
        candidates: Optional[int] = None,
        segments: Optional[Sequence[int]] = None,
    ) -> Tuple[npt.NDArray[np.float32], Optional[npt.NDArray[np.float32]], npt.NDArray[np.int64]]:
        """Stage 1 of ``search`` over the segments numbered ``segments`` (default all): ``(A, E, I)``.

        Shape (nq, max(k, candidates)) (k without re-ranking), nearest first
        by A (PQ distance); E: each candidate's exact squared L2 (None
        without re-ranking); padded with inf, inf, -1. ``rerank``: None,
        "l2" or "none". ``merge_candidates`` merges disjoint groups into
        exactly ``search``'s answer (what ``chromatica.ray.ShardedSearcher`` does).
        """
    def stage_segment(
        self, x: npt.NDArray[np.float32], ids: _Ids, first_file: int, paths: Optional[Sequence[_Path]] = None
    ) -> Dict[str, int]:
        """Encodes ``x`` with the committed quantizers into a segment file no manifest names yet.

        Numbered from ``first_file`` (at least ``state()["next_file"]``);
        durable when this returns; works on a read-only handle. ``paths``:
        one image file per row, recorded (path, size, mtime). Returns
        ``{"file", "vectors", "bytes", "quantizer_file"}`` for ``commit_staged``.
        """
    def commit_staged(self, staged: Sequence[Dict[str, int]]) -> Dict[str, Any]:
        """Commits staged segments (from any process) as one generation, all or nothing: ``{"ids": (lo, hi), "segments"}``."""
    def state(self) -> Dict[str, Any]:
        """The state this handle sees: ``{"generation", "next_file", "next_id", "quantizer_file", "nprobe", "candidates" (an L2 search's defaults), "segments": [{"file", "vectors"}]}``."""
    def delete(self, ids: _Ids) -> int:
        """Deletes ``ids`` (each must be live, else ``ValueError`` and nothing is deleted); returns how many."""
    def compact(self) -> Dict[str, int]:
        """Merges all segments into one, dropping deleted vectors: ``{"segments_before", "segments_after", "dropped"}``."""
    def retrain(self, seed: int = 1234) -> Dict[str, Any]:
        """Re-trains on the stored vectors and re-encodes them all in one crash-safe commit (needs ``refine=True``)."""
    def refresh(self) -> None:
        """Moves the handle to the newest committed state (a read-only handle beside a writer elsewhere)."""
    def memory_usage_estimate(self) -> Dict[str, Any]:
        """Bytes used, everything counted: the ``memory`` object of ``chromatica inspect --json``."""
    def inspect(self) -> Dict[str, Any]:
        """The fields of ``chromatica inspect --json``: config, counts, segments, tombstones, list sizes, memory, disk bytes."""
    def health(self, sample: int = 2000, queries: int = 100, seed: int = 1234) -> Dict[str, Any]:
        """Drift since training (against the stored training baseline), sampled errors, estimated recall@10 and advice: the fields of ``chromatica inspect --health --json``."""
    def tune(self, recall: float, queries: int = 200, seed: int = 1234, store: bool = False) -> Dict[str, Any]:
        """Recall@10 against exact L2 (refine store) and speed over nprobe × candidates; the cheapest setting meeting ``recall`` is ``"chosen"`` (the fields of ``chromatica tune --json``, with ``"stored"``); ``store=True`` makes it the index's defaults in one commit."""
    def set_search_defaults(self, nprobe: int, candidates: int, rerank: str = "l2") -> None:
        """Stores the nprobe and candidates of searches re-ranked like ``rerank`` ("l2"/"none": vector searches; "exact"/"emd": colour searches) in one commit."""
    def verify(self) -> Dict[str, Any]:
        """Reads and checks every byte: the fields of ``chromatica verify --json``, or ``CorruptIndexError``."""
    def warnings(self) -> List[str]:
        """Warnings of opening (e.g. a damaged newest manifest skipped by a read-only open)."""
    @property
    def is_trained(self) -> bool:
        """Whether the quantizers are trained."""
    @property
    def ntotal(self) -> int:
        """Live vectors (added minus deleted)."""
    @property
    def dim(self) -> int:
        """Vector dimension."""
    @property
    def d(self) -> int:
        """faiss's name for :attr:`dim`."""
    @property
    def config(self) -> Dict[str, Any]:
        """dim, nlist, m, nbits, nprobe, metric, refine, auto_train, fast_scan."""
    @property
    def path(self) -> str:
        """The index directory."""
    @property
    def read_only(self) -> bool:
        """Whether the handle was opened read-only."""
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
    def close(self) -> None:
        """Releases the handle and, once calls in flight end, the writer lock. Later calls raise ``ValueError``."""
    def __enter__(self) -> "Index": ...
    def __exit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def __len__(self) -> int:
        """Live vectors."""

class ImageLibrary:
    """A colour-searchable index of image files (CIE Lab histograms, Hellinger, IVF-PQ with exact re-ranking).

    ``ImageLibrary(path)`` opens the library in ``path`` for writing, or
    creates it when ``path`` is missing or empty.
    """

    def __init__(self, path: _Path) -> None: ...
    def index(
        self,
        folders: Union[_Path, Sequence[_Path]],
        progress: Union[bool, Callable[[str, int], Any], None] = None,
        follow_links: bool = True,
    ) -> Dict[str, Any]:
        """Brings the library in step with ``folders`` (recursively; JPEG, PNG, WebP, BMP, TIFF, GIF).

        Adds new images, re-indexes changed ones, removes deleted ones.
        ``progress``: True or None for a tqdm bar when tqdm is installed,
        False for none, or ``f(event, n)`` called with ("planned", files to
        decode), ("decoded", 1) and ("problem", 1). Returns ``{"added",
        "updated", "unchanged", "removed", "failed", "warnings",
        "trained_now", "seconds", "images_per_second"}``; ``failed`` and
        ``warnings`` are lists of ``(path, reason)``.
        """
    def search_colors(
        self,
        colors: Sequence[str],
        weights: Optional[Sequence[float]] = None,
        k: int = 10,
        nprobe: Optional[int] = None,
        candidates: Optional[int] = None,
        rerank: _Rerank = None,
        fuzz: Optional[float] = None,
        fast: bool = False,
        exclude: Optional[Sequence[str]] = None,
        exclude_radius: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Images closest to ``colors`` (hex, e.g. "ea6a81" or "#f6d727"; weights normalised, equal when absent).

        Each result: ``{"id", "path", "distance", "dominant_colors": [(hex, share), ...]}``, nearest first;
        ``distance`` is the Earth Mover's Distance in ΔE76 (exact, the default re-rank on an image index).
        ``fuzz`` (ΔE, 0-100): how far a colour may stray at no cost; ``fast``: stage 1 only (not with
        ``fuzz``/``exclude``); ``exclude``: colours results must not hold ("ff0000" or "ff0000:0.1", the
        largest share allowed, default 0.05) within ``exclude_radius`` ΔE (default 20).
        """
    def search_image(
        self,
        path: _Path,
        k: int = 10,
        nprobe: Optional[int] = None,
        candidates: Optional[int] = None,
        rerank: _Rerank = None,
        fuzz: Optional[float] = None,
        fast: bool = False,
        exclude: Optional[Sequence[str]] = None,
        exclude_radius: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Images whose colours are closest to the image file ``path``'s (results as :meth:`search_colors`)."""
    def search_histogram(
        self,
        histogram: npt.NDArray[np.float32],
        k: int = 10,
        nprobe: Optional[int] = None,
        candidates: Optional[int] = None,
        rerank: _Rerank = None,
        fuzz: Optional[float] = None,
        fast: bool = False,
        exclude: Optional[Sequence[str]] = None,
        exclude_radius: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Images closest to a 1152-bin histogram (as :func:`histogram` gives; any scale)."""
    def inspect(self) -> Dict[str, Any]:
        """The fields of ``chromatica inspect --json`` for the library's index."""
    @property
    def path(self) -> str:
        """The library's directory."""
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
    def close(self) -> None:
        """Releases the library and its writer lock. Later calls raise ``ValueError``."""
    def __enter__(self) -> "ImageLibrary": ...
    def __exit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def __len__(self) -> int:
        """Images in the library."""

def merge_candidates(
    parts: Sequence[Tuple[npt.NDArray[np.float32], Optional[npt.NDArray[np.float32]], npt.NDArray[np.int64]]],
    k: int,
    candidates: Optional[int] = None,
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Merges ``Index.search_candidates`` answers of disjoint segment groups of one state into ``(D, I)``.

    Exactly what ``Index.search`` on the whole state returns (same k and
    candidates), padded with inf and -1.
    """
def histogram(path: _Path) -> npt.NDArray[np.float32]:
    """The 1152-bin CIE Lab histogram of an image file, float32 of shape (1152,), summing to 1 (not Hellinger-transformed)."""

def hellinger(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The element-wise square root of non-negative histograms (1-D or 2-D float32), as a new array."""

def dominant_colors(histogram: npt.NDArray[np.float32], n: int = 5) -> List[Tuple[str, float]]:
    """The ``n`` dominant colours of a 1152-bin histogram: ``[("#rrggbb", share), ...]``."""

def set_num_threads(n: int) -> None:
    """Threads each computing call (train, add, search, compact, retrain, indexing) uses, as ``faiss.omp_set_num_threads``.

    Each calling Python thread gets its own pool of ``n`` threads (four
    threads searching with ``n=1`` use four cores). 0 restores the default:
    one shared pool of a thread per core (or ``RAYON_NUM_THREADS``).
    """

def get_num_threads() -> int:
    """Threads a computing call of this thread uses now."""
