"""chromatica.ray on a local Ray cluster (2 CPUs, bound to 127.0.0.1, started
here): a distributed build writes the codes one process writes for the same
rows and quantizers; a worker that dies after staging its segment is retried
and its file is a leftover the next writer removes; ShardedSearcher answers
exactly what one process answers on the whole index, and follows new
commits after refresh(); image paths become an index ImageLibrary searches;
and the README's S3 example: built by Ray workers on moto's S3 server,
searched from another process, matching a single-machine build. Skipped,
saying so, without ray (``pip install "ray[data]"``) or where the host has
interfaces besides loopback (Ray's servers listen on all of them): run it
with ``bash python/tests/ray_in_netns.sh`` (as root), as .ci/run does."""

import contextlib
import io
import os
import pathlib
import re
import socket

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'ray[data]'")

import chromatica  # noqa: E402
import chromatica.ray as cray  # noqa: E402
from conftest import aws_env, clustered, moto_server  # noqa: E402

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
DIM = 32
SHAPE = dict(dim=DIM, nlist=16, m=8, nbits=8, nprobe=4, refine=True)

# Small test sets train on fewer points than the PQ would like: expected.
pytestmark = pytest.mark.filterwarnings("ignore:.*training points are few:UserWarning")


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server, and a Ray cluster whose workers see its address.
    Ray's servers listen on every interface, so they start only where
    loopback is the only one (ray_in_netns.sh makes such a namespace)."""
    others = [name for _, name in socket.if_nameindex() if name != "lo"]
    if others:
        pytest.skip(
            f"Ray listens on every interface ({', '.join(others)} here): "
            "run bash python/tests/ray_in_netns.sh (as root; .ci/run does)"
        )
    with moto_server("raybucket") as endpoint:
        env = aws_env(endpoint)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": env},
            logging_level="WARNING",
        )
        try:
            yield endpoint
        finally:
            ray.shutdown()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def single_process(path, x, ids=None):
    """The same rows added by one process, trained as build trains (all rows
    when train_rows ≥ n: the sample is the input in order)."""
    index = chromatica.Index.create(path, **SHAPE)
    index.train(x, seed=1234)
    index.add(x, ids=ids)
    return index


def all_distances(index, xq):
    """Every vector's PQ distance to every query (all lists, no re-rank): equal
    arrays mean equal codes and lists."""
    return index.search(xq, k=index.ntotal, nprobe=16, rerank="none")


def test_a_ray_build_writes_what_one_process_writes(s3, tmp_path):
    x = clustered(3000, DIM, seed=1)
    xq = clustered(30, DIM, seed=2)
    report = cray.build(tmp_path / "ray", x, batch_rows=700, train_rows=10_000, **SHAPE)
    assert report["vectors"] == 3000 and report["tasks"] == 5 and len(report["segments"]) == 5
    assert tuple(report["ids"]) == (0, 3000)
    assert report["bytes_written"] > 3000 * 8 and report["rows_per_second_per_task"] > 0
    with chromatica.Index.open(tmp_path / "ray", read_only=True) as built, single_process(tmp_path / "one", x) as one:
        d1, i1 = all_distances(built, xq)
        d2, i2 = all_distances(one, xq)
        assert (i1 == i2).all() and (d1 == d2).all()
        r1, r2 = built.search(xq, 10), one.search(xq, 10)
        assert (r1[0] == r2[0]).all() and (r1[1] == r2[1]).all()
        assert built.verify()["vectors"] == 3000
    # Building again adds to the index with the same quantizers; ids continue.
    again = cray.build(tmp_path / "ray", x[:100], batch_rows=50)
    assert tuple(again["ids"]) == (3000, 3100)
    with chromatica.Index.open(tmp_path / "ray", read_only=True) as built:
        assert built.ntotal == 3100


def test_a_dataset_with_ids_and_explicit_ids(s3, tmp_path):
    x = clustered(1200, DIM, seed=3)
    ids = np.arange(1200, dtype=np.int64) * 7 + 1
    ds = ray.data.from_items([{"vector": x[i], "id": int(ids[i])} for i in range(1200)])
    cray.build(tmp_path / "ds", ds, batch_rows=400, train_rows=1200, **SHAPE)
    cray.build(tmp_path / "arr", x, ids=ids, batch_rows=400, train_rows=1200, **SHAPE)
    xq = clustered(10, DIM, seed=4)
    with chromatica.Index.open(tmp_path / "ds", read_only=True) as a, chromatica.Index.open(
        tmp_path / "arr", read_only=True
    ) as b:
        assert a.ntotal == b.ntotal == 1200
        assert a.state()["next_id"] == b.state()["next_id"] == int(ids.max()) + 1
        _, ia = a.search(xq, 5)
        _, ib = b.search(xq, 5)
        assert set(ia.ravel()) <= set(ids) and set(ib.ravel()) <= set(ids)
    with pytest.raises(ValueError, match="'vector' and 'id' columns"):
        cray.build(tmp_path / "bad", ray.data.from_items([{"vector": x[0]}]))
    with pytest.raises(TypeError, match="numpy array, a ray.data.Dataset or a list of image paths"):
        cray.build(tmp_path / "bad", {"x": 1})
    with pytest.raises(ValueError, match="already in the index"):
        cray.build(tmp_path / "arr", x[:10], ids=ids[:10])
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_a_worker_that_dies_after_staging_leaves_only_a_leftover(s3, tmp_path):
    x = clustered(2000, DIM, seed=5)
    path = tmp_path / "idx"
    marker = tmp_path / "died-once"
    report = cray.build(path, x, batch_rows=500, train_rows=2000, _fault=str(marker), **SHAPE)
    assert marker.exists(), "the fault fired"
    assert report["vectors"] == 2000 and len(report["segments"]) == 4
    segs = lambda: sorted(p.name for p in path.iterdir() if p.suffix == ".seg")  # noqa: E731
    named = {f"{n:016x}.seg" for n in report["segments"]}
    assert len(segs()) == 5 and set(segs()) - named, "the dead attempt's file is still there"
    with chromatica.Index.open(path) as w:  # the next writer
        assert w.ntotal == 2000
    assert set(segs()) == named
    with chromatica.Index.open(path, read_only=True) as r:
        _, i = r.search(x[:50], 1)
        assert (i[:, 0] == np.arange(50)).mean() > 0.9


def test_sharded_search_is_the_whole_index_search(s3, tmp_path):
    x = clustered(4000, DIM, seed=6)
    xq = clustered(40, DIM, seed=7)
    path = tmp_path / "idx"
    report = cray.build(path, x, batch_rows=450, train_rows=4000, **SHAPE)
    with chromatica.Index.open(path, read_only=True) as whole, cray.ShardedSearcher(path, shards=3) as sharded:
        assert sorted(f for g in sharded.groups for f in g) == sorted(report["segments"])
        assert len(report["segments"]) >= 9 and all(len(g) >= 3 for g in sharded.groups)
        for kw in [dict(k=10), dict(k=10, candidates=15), dict(k=1, nprobe=1), dict(k=30, rerank="none", nprobe=16)]:
            d1, i1 = sharded.search(xq, **kw)
            d2, i2 = whole.search(xq, **kw)
            assert (i1 == i2).all() and (d1 == d2).all(), kw
        # A new commit is invisible until refresh(), then searched too.
        with chromatica.Index.open(path) as w:
            w.add(xq + 0.001)
            w.delete(np.arange(0, 4000, 3))
        before = whole.search(xq, 10)
        d1, i1 = sharded.search(xq, 10)
        assert (i1 == before[1]).all()
        generation = sharded.refresh()
        whole.refresh()
        assert generation == whole.state()["generation"]
        d1, i1 = sharded.search(xq, 10)
        d2, i2 = whole.search(xq, 10)
        assert (i1 == i2).all() and (d1 == d2).all()
        assert (i1[:, 0] >= 4000).all(), "the new rows are found"
        one = sharded.search(xq[0], 5)
        assert one[1].shape == (1, 5) and (one[1] == i2[:1, :5]).all()


def test_image_paths_become_an_image_library(s3, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(8)
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(300):
        a = rng.integers(0, 256, (1, 1, 3))
        b = rng.integers(0, 256, (1, 1, 3))
        img = np.where(np.arange(24)[None, :, None] < rng.integers(4, 20), a, b).repeat(16, axis=0)
        p = folder / f"{i:03d}.png"
        Image.fromarray(img.astype(np.uint8)).save(p)
        paths.append(str(p))
    (folder / "broken.png").write_bytes(b"not a png")
    report = cray.build(tmp_path / "lib", paths + [str(folder / "broken.png")], batch_rows=100)
    assert report["vectors"] == 300 and len(report["failed"]) == 1 and "broken.png" in report["failed"][0]
    lib = chromatica.ImageLibrary(tmp_path / "lib")
    assert len(lib) == 300
    for i in [0, 7, 150, 299]:
        hits = lib.search_image(paths[i], k=1)
        assert hits[0]["path"] == paths[i]
    # A later ImageLibrary.index of the folder sees every file as indexed.
    summary = lib.index([str(folder)])
    assert summary["added"] == 0 and summary["updated"] == 0


def test_the_readme_example_on_s3(s3, tmp_path, monkeypatch):
    """README, "Beyond one machine": Ray workers build on S3, another process
    searches it, and the answer matches one process on a local directory
    and the sharded search. Run as printed (on this test's moto server)."""
    text = README.read_text()
    section = text[text.index("\n## Beyond one machine: building and searching with Ray\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHROMATICA_CACHE_DIR", str(tmp_path / "cache"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue().splitlines() == ["20000 vectors in 4 segments", "same results"]


def test_without_ray_initialised_the_calls_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="ray.init"):
        cray.build(tmp_path / "x", np.zeros((1, 4), np.float32))
    with pytest.raises(RuntimeError, match="ray.init"):
        cray.ShardedSearcher(tmp_path / "x")
