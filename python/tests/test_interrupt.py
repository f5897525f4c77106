"""A long add interrupted (KeyboardInterrupt, or the process killed) leaves
the index at its last commit."""

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import chromatica
from conftest import clustered


def test_keyboard_interrupt_during_add_keeps_the_last_commit(tmp_path):
    xb = clustered(20000, 32, seed=5)
    with chromatica.Index.create(tmp_path / "idx", dim=32, nlist=16, m=8, nprobe=4) as ix:
        ix.train(xb)
        ix.add(xb)
        big = clustered(1_500_000, 32, seed=6)  # 23 batches of 65,536 rows
        # How long a whole add takes here, to interrupt one early.
        with chromatica.Index.create(tmp_path / "probe", dim=32, nlist=16, m=8, nprobe=4) as probe:
            probe.train(xb)
            t0 = time.perf_counter()
            probe.add(big)
            full = time.perf_counter() - t0
        timer = threading.Timer(full / 5, _thread.interrupt_main)
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            ix.add(big)
            time.sleep(full)  # were the add not interrupted, the signal lands here
        waited = time.perf_counter() - t0
        timer.cancel()
        assert waited < full, "the add stopped early"
        assert ix.ntotal == len(xb)
        assert ix.verify()["vectors"] == len(xb)
        ix.add(xb[:10], ids=np.arange(10) + 10**6)  # the handle still writes
    with chromatica.Index.open(tmp_path / "idx") as again:
        assert again.ntotal == len(xb) + 10
        assert again.verify()["leftovers"] == []


CHILD = textwrap.dedent(
    """
    import sys, numpy as np, chromatica
    path = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.random((50000, 32), dtype=np.float32)
    ix = chromatica.Index.create(path, dim=32, nlist=16, m=8, nprobe=4)
    ix.train(x[:20000])
    while True:
        ix.add(x)
        print(ix.ntotal, flush=True)
    """
)


def test_process_killed_mid_add_leaves_a_valid_index(tmp_path):
    path = tmp_path / "idx"
    acknowledged = 0
    for round_ in range(3):
        if round_ > 0:
            path_arg = str(tmp_path / f"idx{round_}")
        else:
            path_arg = str(path)
        child = subprocess.Popen([sys.executable, "-c", CHILD, path_arg], stdout=subprocess.PIPE, text=True)
        try:
            # Wait for two acknowledged adds, then kill at a moment inside a later one.
            lines = [child.stdout.readline() for _ in range(2)]
            acknowledged = int(lines[-1])
            time.sleep(0.05 * (round_ + 1))
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
        with chromatica.Index.open(path_arg) as ix:
            report = ix.verify()
            n = ix.ntotal
            assert n >= acknowledged and n % 50000 == 0, (n, acknowledged)
            assert report["vectors"] == n
            D, I = ix.search(np.zeros((1, 32), np.float32), 3)
            assert (I >= 0).all()
