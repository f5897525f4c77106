"""The GIL is released: readers search while a writer adds, and Python
runs while a search computes."""

import threading
import time

import numpy as np
import pytest

import chromatica
from conftest import clustered


@pytest.fixture
def index(tmp_path):
    xb = clustered(20000, 64, seed=3)
    ix = chromatica.Index.create(tmp_path / "idx", dim=64, nlist=32, m=8, nbits=8, nprobe=8)
    ix.train(xb[:10000])
    ix.add(xb)
    yield ix, xb
    ix.close()


def test_readers_search_while_a_writer_adds(index):
    ix, xb = index
    big = clustered(400000, 64, seed=4)
    q = xb[:1]
    window = {}
    done_during = []
    stop = threading.Event()

    def writer():
        window["start"] = time.perf_counter()
        ix.add(big)
        window["end"] = time.perf_counter()
        stop.set()

    def reader():
        # Bounded: stops when the writer is done, or after 60 s.
        deadline = time.perf_counter() + 60
        while not stop.is_set() and time.perf_counter() < deadline:
            _, I = ix.search(q, 5)
            assert I[0, 0] == 0
            done_during.append(time.perf_counter())

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert "end" in window, "the writer finished"
    inside = [t for t in done_during if window["start"] < t < window["end"]]
    # Had add held the GIL, no Python thread could have completed a search
    # while it ran.
    assert len(inside) >= 10, (len(inside), window["end"] - window["start"])
    assert ix.ntotal == len(xb) + len(big)


def test_python_runs_while_a_search_computes(index):
    # A long search call (every list probed, many queries) on one thread; a
    # second thread does nothing but take timestamps. Had search held the
    # GIL, the second thread could not run at all between the call's start
    # and its end; with the GIL released it runs throughout. Structural,
    # not timed: throughput with 1 and more threads is the in-process
    # benchmark's (crates/chromatica-bench/python/inprocess.py).
    ix, xb = index
    chromatica.set_num_threads(1)
    try:
        queries = np.ascontiguousarray(np.tile(xb[:2000], (4, 1)))
        ix.search(queries[:100], 10, nprobe=32)  # warm
        window = {}
        ticks = []
        stop = threading.Event()

        def searcher():
            window["start"] = time.perf_counter()
            ix.search(queries, 10, nprobe=32)
            window["end"] = time.perf_counter()
            stop.set()

        def ticker():
            deadline = time.perf_counter() + 60  # bounded
            while not stop.is_set() and time.perf_counter() < deadline:
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        threads = [threading.Thread(target=ticker), threading.Thread(target=searcher)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert "end" in window, "the search finished"
        span = window["end"] - window["start"]
        middle = [t for t in ticks if window["start"] + span / 4 < t < window["end"] - span / 4]
        assert span > 0.05 and len(middle) >= 5, (span, len(middle))
    finally:
        chromatica.set_num_threads(0)


def test_set_num_threads():
    chromatica.set_num_threads(3)
    assert chromatica.get_num_threads() == 3
    chromatica.set_num_threads(0)
    assert chromatica.get_num_threads() >= 1
