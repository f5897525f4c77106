"""A drop-in for the original Chromatica service's ``AnnIndex``.

The original wrapped ``faiss.IndexIVFPQ``: raw colour histograms went in,
the Hellinger transform (element-wise square root) was applied inside
``add`` and ``search`` -- but not inside ``train``, so the quantizers were
trained on different vectors from those they encoded. This class keeps the
constructor, attributes and methods, applies the transform everywhere
(training too), stores the index as a crash-safe Chromatica directory, and
reports memory honestly (every byte, not only the PQ codes)::

    from chromatica.compat import AnnIndex     # was: from chromatica.indexing.store import AnnIndex

    index = AnnIndex(dimension=1152, nlist=100, M=8, nbits=8)
    index.train(training_histograms)
    index.add(histograms)
    distances, ids = index.search(query_histogram, k=10)
    index.save("colours.idx")                  # an index directory
    index.load("colours.idx")                  # or a faiss .bin file, imported

Differences a caller may notice: ``save``/``load`` take an index
*directory* (``load`` also imports a faiss ``.bin`` written by the
original); errors are the package's kinds (``ValueError`` for bad data and
arguments, ``FileNotFoundError``, ...), not ``RuntimeError``; and with
``use_simple_index=True`` search is exact over the stored vectors instead of
an HNSW graph.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from ._native import Index

logger = logging.getLogger(__name__)

__all__ = ["AnnIndex"]

_PathLike = Union[str, "os.PathLike[str]"]


def _histograms(x: Any, what: str, dimension: int, *, one_row: bool = False) -> np.ndarray:
    """Checks raw histograms the way the original did and returns their
    Hellinger transform as a C-contiguous float32 (n, dimension) array."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what} must be numpy array, got {type(x)}")
    if one_row:
        if x.ndim == 1:
            x = x.reshape(1, -1)
        elif x.ndim != 2 or x.shape[0] != 1:
            raise ValueError(f"{what} must be 1D or (1, dimension), got shape {x.shape}")
    elif x.ndim != 2:
        raise ValueError(f"{what} must be 2D array, got shape {x.shape}")
    if x.shape[1] != dimension:
        raise ValueError(f"{what} dimension {x.shape[1]} doesn't match index dimension {dimension}")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{what} must be float32 or float64, got {x.dtype}")
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x) | (x < 0)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"{what}[{row}, {col}] is {x[row, col]}: histograms must be finite and non-negative"
        )
    return np.ascontiguousarray(np.sqrt(x))


class AnnIndex:
    """The original ``AnnIndex`` over a Chromatica index.

    Args:
        dimension: vector dimension (1152 for Chromatica's histograms).
        use_simple_index: True for exact search over the stored vectors
            (the original used HNSW); no training needed.
        index_path: an existing index directory, or a faiss ``.bin`` file,
            to load; a path that does not exist is ignored (as the original).
        nlist, M, nbits: IVF lists, PQ sub-quantizers and bits per code (the
            original's defaults; ``nlist`` needs at least that many training
            vectors).
        nprobe: lists probed per search (default ``min(10, nlist)``).
        refine: also keep each vector exactly (~400 bytes per histogram,
            sparse) and re-rank search candidates by exact L2.

    Until :meth:`save`, the index lives in a temporary directory removed
    when the object is closed or garbage collected.
    """

    def __init__(
        self,
        dimension: int,
        use_simple_index: bool = False,
        index_path: Optional[str] = None,
        nlist: int = 16384,
        M: int = 32,
        nbits: int = 8,
        *,
        nprobe: Optional[int] = None,
        refine: bool = False,
    ) -> None:
        self.dimension = int(dimension)
        self.use_simple_index = bool(use_simple_index)
        self.nlist = int(nlist)
        self.M = int(M)
        self.nbits = int(nbits)
        self.nprobe = int(nprobe) if nprobe is not None else min(10, self.nlist)
        self.refine = bool(refine)
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        self.index: Optional[Index] = None
        if index_path and os.path.exists(index_path):
            self.load(index_path)
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="chromatica-annindex-")
        where = os.path.join(self._tmp.name, "index")
        if self.use_simple_index:
            # Untrained with the refine store: search is exact.
            self.index = Index.create(where, dim=self.dimension, nlist=1, m=1, nbits=8, nprobe=1, refine=True)
            self.index_type = "Flat"
        else:
            self.index = Index.create(
                where,
                dim=self.dimension,
                nlist=self.nlist,
                m=self.M,
                nbits=self.nbits,
                nprobe=self.nprobe,
                refine=self.refine,
            )
            self.index_type = "IndexIVFPQ"
        logger.info("Created new Chromatica %s index", self.index_type)

    def _live(self) -> Index:
        if self.index is None:
            raise ValueError("the index is closed")
        return self.index

    @property
    def is_trained(self) -> bool:
        """True once trained (always for ``use_simple_index``)."""
        return self.use_simple_index or self._live().is_trained

    @property
    def total_vectors(self) -> int:
        """Vectors in the index."""
        return self._live().ntotal

    def train(self, data: np.ndarray) -> None:
        """Trains on raw histograms ``data`` (N, dimension), Hellinger-transformed
        first (the original trained on untransformed data). Already trained,
        or ``use_simple_index``: nothing to do."""
        if self.is_trained:
            logger.info("%s does not require training or is already trained.", self.index_type)
            return
        x = _histograms(data, "Training data", self.dimension)
        logger.info("Training %s with %d vectors...", self.index_type, len(x))
        report = self._live().train(x)
        logger.info(
            "Trained on %d points (reconstruction MSE %.6f)", report["train_points"], report["reconstruction_mse"]
        )

    def add(self, vectors: np.ndarray) -> int:
        """Adds raw histograms (n, dimension), float32 or float64, after the
        Hellinger transform; durable when it returns. Returns the count."""
        if not self.is_trained:
            raise ValueError("Index must be trained before adding vectors. Call train() first.")
        x = _histograms(vectors, "Vectors", self.dimension)
        self._live().add(x)
        logger.info("Added %d vectors to %s (total: %d)", len(x), self.index_type, self.get_total_vectors())
        return int(x.shape[0])

    def search(self, query_vector: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """The k nearest neighbours of one raw histogram, shape (dimension,) or
        (1, dimension): ``(distances, indices)``, each of shape (1, k), squared
        L2 between Hellinger vectors (as faiss reports them)."""
        q = _histograms(query_vector, "Query vector", self.dimension, one_row=True)
        total = self.total_vectors
        if not isinstance(k, (int, np.integer)) or k <= 0 or k > total:
            raise ValueError(f"k must be positive and <= {total}, got {k}")
        return self._live().search(q, int(k))

    def get_total_vectors(self) -> int:
        """Vectors in the index."""
        return 0 if self.index is None else self.index.ntotal

    def get_memory_usage_estimate(self) -> Dict[str, Any]:
        """Memory of the index, every byte counted (the original counted the
        PQ codes only): codes, ids, coarse centroids and codebooks, the
        precomputed table, list directories, file headers and, with
        ``refine``, the exact vectors. ``total_memory`` is the heap the open
        index holds plus every byte of its memory-mapped segment files (the
        most it occupies once all pages are read); ``memory_per_vector`` is
        that divided by the vectors (0 when empty), and ``compression_ratio``
        is ``full_vector_memory / memory_per_vector``. ``details`` is the
        library's full report (:meth:`chromatica.Index.memory_usage_estimate`)."""
        r = self._live().memory_usage_estimate()
        n = int(r["vectors"])
        total = int(r["resident_heap_bytes"]) + int(r["mapped_bytes"])
        per_vector = total / n if n else 0.0
        full = self.dimension * 4
        return {
            "total_vectors": n,
            "memory_per_vector": per_vector,
            "total_memory": total,
            "compression_ratio": full / per_vector if per_vector else 0.0,
            "full_vector_memory": full,
            "details": r,
        }

    def save(self, filepath: _PathLike) -> None:
        """Copies the index to the directory ``filepath`` (missing or empty),
        then checks the copy (every checksum). The index already is on disk:
        each add is durable when it returns; ``save`` makes a copy elsewhere."""
        index = self._live()
        src, dst = Path(index.path), Path(filepath)
        if dst.exists() and dst.resolve() == src.resolve():
            return
        if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
            raise FileExistsError(f"{dst}: exists and is not an empty directory")
        dst.mkdir(parents=True, exist_ok=True)
        try:
            for f in sorted(src.iterdir()):
                # The lock belongs to this process's open handle; leftovers of
                # interrupted writes are not part of the state.
                if f.name == "LOCK" or f.name.endswith(".tmp") or not f.is_file():
                    continue
                shutil.copyfile(f, dst / f.name)
            with Index.open(dst, read_only=True) as copy:
                copy.verify()
        except BaseException:
            shutil.rmtree(dst, ignore_errors=True)
            raise
        logger.info("%s saved to %s", self.index_type, dst)

    def load(self, filepath: _PathLike) -> None:
        """Opens the index directory ``filepath`` (for writing; changes are
        durable there at once), or imports the faiss ``IndexIVFPQ`` file
        ``filepath`` (``faiss.write_index``) into a temporary directory."""
        path = Path(filepath)
        if not path.exists():
            raise FileNotFoundError(f"IndexIVFPQ file not found: {filepath}")
        if path.is_dir():
            new = Index.open(path)
            tmp = None
        else:
            tmp = tempfile.TemporaryDirectory(prefix="chromatica-annindex-")
            try:
                new = Index.import_faiss(path, os.path.join(tmp.name, "index"))
            except BaseException:
                tmp.cleanup()
                raise
        self.close()
        self.index, self._tmp = new, tmp
        c = new.config
        self.dimension, self.nlist, self.M, self.nbits, self.nprobe = (
            c["dim"],
            c["nlist"],
            c["m"],
            c["nbits"],
            c["nprobe"],
        )
        self.refine = bool(c["refine"])
        self.use_simple_index = False
        self.index_type = "IndexIVFPQ"
        logger.info("IndexIVFPQ loaded from %s with %d vectors", filepath, self.get_total_vectors())

    def close(self) -> None:
        """Closes the index and removes the temporary directory, if any."""
        if self.index is not None:
            self.index.close()
            self.index = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "AnnIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
