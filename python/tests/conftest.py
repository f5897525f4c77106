"""Shared data for the chromatica package tests: clustered float32 vectors
and a numpy brute-force reference."""

import numpy as np
import pytest


def clustered(n, dim, seed=0, centers=32):
    """n float32 vectors around `centers` random centres (C-contiguous)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def brute_force(xb, xq, k, ids=None):
    """Exact squared-L2 k nearest neighbours: (D, I) as numpy computes them."""
    d = ((xq[:, None, :].astype(np.float64) - xb[None, :, :].astype(np.float64)) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = np.take_along_axis(d, order, axis=1)
    if ids is not None:
        order = np.asarray(ids)[order]
    return dist.astype(np.float32), order.astype(np.int64)


def recall(found, truth):
    """Share of the true neighbours among those found, over all queries."""
    hit = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth))
    return hit / truth.size


@pytest.fixture
def data():
    return clustered(4000, 32, seed=1), clustered(50, 32, seed=2)
