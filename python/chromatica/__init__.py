"""Chromatica: an embedded IVF-PQ storage engine for colour search.

Vectors (faiss conventions)::

    import numpy as np, chromatica
    index = chromatica.Index.create("vectors.idx", dim=128, nlist=64, m=16)
    index.train(xt)                      # float32 (n, 128), used without a copy
    ids = index.add(xb)                  # int64 ids, durable when add returns
    D, I = index.search(xq, k=10)        # float32 / int64 (nq, 10), inf / -1 padding

Colours::

    lib = chromatica.ImageLibrary("photos.idx")
    lib.index(["~/Pictures"])            # tqdm progress when tqdm is installed
    hits = lib.search_colors(["ea6a81", "f6d727"], weights=[0.49, 0.51], k=10)

The original service's ``AnnIndex``: ``from chromatica.compat import AnnIndex``.

Beyond one machine (``pip install "ray[data]"``): ``chromatica.ray.build``
and ``chromatica.ray.ShardedSearcher``; Ray is imported only by that module.

Errors: ``ValueError`` / ``TypeError`` for bad arguments and data,
``FileNotFoundError``, ``FileExistsError``, ``PermissionError`` (a write on a
read-only handle), :class:`CorruptIndexError`, :class:`LockedError` (another
writer holds the index), all other failures :class:`Error`.
"""

from ._native import (
    HIST_DIM,
    CorruptIndexError,
    Error,
    ImageLibrary,
    Index,
    LockedError,
    __version__,
    dominant_colors,
    get_num_threads,
    hellinger,
    histogram,
    merge_candidates,
    set_num_threads,
)

__all__ = [
    "HIST_DIM",
    "CorruptIndexError",
    "Error",
    "ImageLibrary",
    "Index",
    "LockedError",
    "__version__",
    "dominant_colors",
    "get_num_threads",
    "hellinger",
    "histogram",
    "merge_candidates",
    "set_num_threads",
]
