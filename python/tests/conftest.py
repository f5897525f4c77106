"""Shared data for the chromatica package tests: clustered float32 vectors
and a numpy brute-force reference."""

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request

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


@contextlib.contextmanager
def moto_server(bucket):
    """moto's S3 server on a free loopback port with `bucket` created; yields
    its endpoint. Skips the test, saying so, without ``moto_server``."""
    if shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed: pip install 'moto[server]'")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Creating the bucket is the readiness check, retried: a server that
        # has just started listening may still refuse a first connection.
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/{bucket}", method="PUT")
                urllib.request.urlopen(req, timeout=30).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not answer within 60 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def aws_env(endpoint):
    """The AWS SDK variables that point the package at a local S3 server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
