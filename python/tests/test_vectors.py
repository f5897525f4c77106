"""The vector API against numpy brute force, faiss conventions, reports and
errors by kind."""

import os

import numpy as np
import pytest

import chromatica
from conftest import brute_force, clustered, recall


def make(tmp_path, xb, refine=False, **kw):
    cfg = dict(dim=xb.shape[1], nlist=16, m=8, nbits=8, nprobe=4)
    cfg.update(kw)
    index = chromatica.Index.create(tmp_path / "idx", refine=refine, **cfg)
    index.train(xb)
    return index


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_stage_over_all_candidates_is_exact(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb, refine=True, nprobe=16) as index:
        ids = index.add(xb)
        assert ids.dtype == np.int64 and (ids == np.arange(len(xb))).all()
        D, I = index.search(xq, 10, candidates=len(xb), rerank="l2")
        tD, tI = brute_force(xb, xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (50, 10)
        assert recall(I, tI) == 1.0
        np.testing.assert_allclose(D, tD, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pq_stage_recall_and_nprobe(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb) as index:
        index.add(xb)
        _, tI = brute_force(xb, xq, 10)
        _, I1 = index.search(xq, 10, nprobe=1)
        _, I16 = index.search(xq, 10, nprobe=16)
        # PQ codes of 8 bytes for 32 clustered dimensions find most true neighbours.
        assert recall(I16, tI) > 0.5
        assert recall(I16, tI) >= recall(I1, tI)
        D, _ = index.search(xq, 10, rerank="none")
        assert (np.diff(D, axis=1) >= 0).all(), "distances ascend"


def test_untrained_refine_index_searches_exactly(tmp_path, data):
    xb, xq = data
    with chromatica.Index.create(tmp_path / "idx", dim=32, nlist=4, m=8, refine=True) as index:
        assert not index.is_trained
        index.add(xb[:300])
        D, I = index.search(xq, 5)
        tD, tI = brute_force(xb[:300], xq, 5)
        assert (I == tI).all()
        np.testing.assert_allclose(D, tD, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_padding_ids_one_d_query_and_len(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb) as index:
        given = np.array([7, 3, 1000, 2**40], dtype=np.int64)
        assert (index.add(xb[:4], ids=given) == given).all()
        assert len(index) == index.ntotal == 4
        D, I = index.search(xq[0], 6, nprobe=16)
        assert D.shape == (1, 6)
        assert set(I[0, :4]) == set(given) and (I[0, 4:] == -1).all()
        assert np.isinf(D[0, 4:]).all() and np.isfinite(D[0, :4]).all()
        # Without ids, ids continue from one past the largest.
        assert index.add(xb[4:6])[0] == 2**40 + 1
        empty_d, empty_i = index.search(np.zeros((0, 32), np.float32), 3)
        assert empty_d.shape == empty_i.shape == (0, 3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_delete_compact_retrain_refresh(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb, refine=True) as index:
        index.add(xb)
        reader = chromatica.Index.open(tmp_path / "idx", read_only=True)
        assert reader.read_only and reader.ntotal == len(xb)
        _, I = index.search(xb[:20], 1)
        assert (I[:, 0] == np.arange(20)).all()
        assert index.delete(np.arange(20)) == 20
        _, I = index.search(xb[:20], 5)
        assert not np.isin(I, np.arange(20)).any()
        with pytest.raises(ValueError, match="19"):
            index.delete([19])
        assert index.compact()["dropped"] == 20
        report = index.retrain(seed=7)
        assert report["train_points"] > 0
        assert index.ntotal == len(xb) - 20
        assert reader.ntotal == len(xb)
        reader.refresh()
        assert reader.ntotal == len(xb) - 20
        reader.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_reports_have_the_cli_json_fields(tmp_path, data):
    xb, _ = data
    with make(tmp_path, xb) as index:
        index.add(xb)
        i = index.inspect()
        assert {"format_version", "generation", "config", "code_size", "trained", "vectors", "segments",
                "tombstones", "lists", "memory", "disk_bytes"} <= set(i)
        m = index.memory_usage_estimate()
        assert m == i["memory"]
        assert m["vectors"] == len(xb) and m["code_bytes"] == 8 * len(xb)
        assert m["disk_bytes"] == i["disk_bytes"]["total"]
        v = index.verify()
        assert v["vectors"] == len(xb) and v["leftovers"] == []
        assert index.config == {**i["config"]}
        # The defaults an L2 search uses (what a sharded merge needs), as inspect states them.
        s = index.state()
        assert (s["nprobe"], s["candidates"]) == (i["config"]["nprobe"], i["default_candidates"]) == (
            index.config["nprobe"], 200)
        assert i["format_version"] == 2
        assert index.config["nlist"] == 16 and index.dim == index.d == 32 and index.is_trained


def test_presets(tmp_path):
    with chromatica.Index.create(tmp_path / "a", preset="accuracy") as a:
        assert (a.config["m"], a.config["nlist"], a.dim) == (16, 200, 1152)
    with chromatica.Index.create(tmp_path / "b", preset="speed", nlist=7) as b:
        assert (b.config["m"], b.config["nbits"], b.config["nlist"]) == (4, 6, 7)
    with pytest.raises(ValueError, match="preset"):
        chromatica.Index.create(tmp_path / "c", preset="fastest")
    with pytest.raises(ValueError, match="divide"):
        chromatica.Index.create(tmp_path / "d", dim=30, m=8)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bad_inputs_name_the_problem(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb) as index:
        index.add(xb[:100])
        before = index.inspect()["generation"]
        with pytest.raises(TypeError, match="float32.*float64"):
            index.search(xq.astype(np.float64), 1)
        with pytest.raises(TypeError, match="numpy.ndarray.*list"):
            index.add(xq.tolist())
        with pytest.raises(ValueError, match="C-contiguous"):
            index.search(np.asfortranarray(xq), 1)
        with pytest.raises(ValueError, match="C-contiguous"):
            index.add(xb[::2])
        with pytest.raises(ValueError, match="31 columns.*dimension 32"):
            index.search(np.ascontiguousarray(xq[:, :31]), 1)
        with pytest.raises(ValueError, match=r"2-D \(n, dim\), got shape \(32,\)"):
            index.add(xq[0])
        with pytest.raises(ValueError, match="shape"):
            index.search(xq.reshape(5, 10, 32), 1)
        bad = xq.copy()
        bad[3, 5] = np.nan
        with pytest.raises(ValueError, match="row 3.*NaN.*column 5"):
            index.add(bad)
        with pytest.raises(ValueError, match="row 3"):
            index.search(bad, 1)
        bad[3, 5] = np.inf
        with pytest.raises(ValueError, match="row 3"):
            index.add(bad)
        with pytest.raises(ValueError, match="k must be at least 1"):
            index.search(xq, 0)
        with pytest.raises(ValueError, match="nprobe"):
            index.search(xq, 1, nprobe=17)
        with pytest.raises(ValueError, match="rerank"):
            index.search(xq, 1, rerank="cosine")
        with pytest.raises(ValueError, match="non-negative"):
            index.add(xq, ids=-np.arange(50))
        with pytest.raises(ValueError, match="ids for"):
            index.add(xq, ids=np.arange(3))
        with pytest.raises(ValueError, match="already"):
            index.add(xq[:1], ids=[5])
        with pytest.raises(TypeError, match="integers"):
            index.add(xq[:1], ids=[0.5])
        with pytest.raises(ValueError, match="already trained"):
            index.train(xb)
        with pytest.raises(ValueError, match="smaller batches"):
            index.search(xq, 2**40)
        # Nothing was written by any of them.
        assert index.inspect()["generation"] == before and index.ntotal == 100
        # A read-only array needs no copy and is accepted.
        ro = xq.copy()
        ro.flags.writeable = False
        assert index.search(ro, 2)[1].shape == (50, 2)


def test_not_trained_and_errors_by_kind(tmp_path, data):
    xb, _ = data
    index = chromatica.Index.create(tmp_path / "idx", dim=32, nlist=16, m=8)
    with pytest.raises(ValueError, match="not trained"):
        index.add(xb)
    with pytest.raises(chromatica.LockedError, match="locked"):
        chromatica.Index.open(tmp_path / "idx")
    with pytest.raises(FileExistsError):
        chromatica.Index.create(tmp_path / "idx", dim=32, nlist=16, m=8)
    with pytest.raises(FileNotFoundError):
        chromatica.Index.open(tmp_path / "missing")
    ro = chromatica.Index.open(tmp_path / "idx", read_only=True)
    with pytest.raises(PermissionError, match="read-only"):
        ro.train(xb)
    index.close()
    assert index.closed
    index.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        index.search(xb, 1)
    # Closing released the lock: a new writer can open it.
    chromatica.Index.open(tmp_path / "idx").close()
    ro.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_corruption_is_corrupt_index_error(tmp_path, data):
    xb, _ = data
    with make(tmp_path, xb) as index:
        index.add(xb)
    seg = next(p for p in os.listdir(tmp_path / "idx") if p.endswith(".seg"))
    path = tmp_path / "idx" / seg
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with chromatica.Index.open(tmp_path / "idx", read_only=True) as index:
        with pytest.raises(chromatica.CorruptIndexError, match=seg):
            index.verify()
    assert issubclass(chromatica.CorruptIndexError, chromatica.Error)


def test_clustered_helper_is_contiguous_float32():
    x = clustered(10, 4)
    assert x.dtype == np.float32 and x.flags.c_contiguous


def _hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_contiguous_float32_is_read_in_place(tmp_path):
    """A 276 MB query array: the search's peak memory grows by far less than
    one copy of it (the peak is reset just before the call)."""
    x = np.ones((60000, 1152), np.float32)
    with chromatica.Index.create(tmp_path / "idx", dim=1152, nlist=1, m=8, refine=True) as index:
        index.add(x[:10] * np.arange(10, dtype=np.float32)[:, None])
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = _hwm_bytes()
        D, I = index.search(x, 1)
        grown = _hwm_bytes() - before
        assert (I[:, 0] == 1).all()
        assert grown < x.nbytes / 3, (grown, x.nbytes)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_health_and_tune_store_search_defaults(tmp_path, data):
    xb, xq = data
    with make(tmp_path, xb, refine=True) as index:
        index.add(xb)
        h = index.health(sample=500, queries=20)
        b = h["baseline"]
        assert b["points"] == len(xb) and b["reconstruction_error"] > 0
        assert h["reconstruction_growth"] == pytest.approx(h["reconstruction_error"] / b["reconstruction_error"])
        assert not [a for a in h["advice"] if "grew" in a["message"]]
        # Shifted vectors grow the errors past the threshold, and the advice says so.
        index.add(xb[:2000] + 0.5)
        h = index.health(sample=2000, queries=5)
        assert h["reconstruction_growth"] >= 1.25
        assert [a for a in h["advice"] if a["message"].startswith("retrain: reconstruction error grew")]
        with pytest.raises(ValueError, match="sample"):
            index.health(sample=0)

        before = index.state()["generation"]
        r = index.tune(0.9, queries=50)
        assert r["stored"] is False and r["truth"] == "exact L2" and index.state()["generation"] == before
        r = index.tune(0.9, queries=50, store=True)
        c = r["chosen"]
        assert r["stored"] and c["recall_at_10"] >= 0.9 and index.state()["generation"] == before + 1
        s = index.state()
        assert (s["nprobe"], s["candidates"]) == (c["nprobe"], c["candidates"])
        D, I = index.search(xq, 10)
        D2, I2 = index.search(xq, 10, nprobe=c["nprobe"], candidates=c["candidates"])
        assert (I == I2).all() and (D == D2).all()
        index.set_search_defaults(3, 40)
        assert (index.state()["nprobe"], index.state()["candidates"]) == (3, 40)
        index.set_search_defaults(2, 60, rerank="exact")  # colour searches only
        assert (index.state()["nprobe"], index.state()["candidates"]) == (3, 40)
        assert (index.inspect()["emd_nprobe"], index.inspect()["emd_candidates"]) == (2, 60)
        for bad in [dict(nprobe=0, candidates=5), dict(nprobe=99, candidates=5), dict(nprobe=2, candidates=0)]:
            with pytest.raises(ValueError):
                index.set_search_defaults(**bad)
        with pytest.raises(ValueError, match="rerank"):
            index.set_search_defaults(2, 5, rerank="cosine")
        with pytest.raises(ValueError, match="recall"):
            index.tune(1.5)
