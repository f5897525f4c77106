"""Build and search one Chromatica index with Ray (``pip install "ray[data]"``).

The index lives on storage every Ray worker reaches: an ``s3://bucket/prefix``
(configured by the AWS environment variables, ``AWS_ENDPOINT_URL`` for a local
server) or a directory shared by all nodes (on one machine, any directory).

:func:`build` — train on a sample on the driver and commit the quantizers; put
the build plan (the index, the quantizer file the codes must be made with, the
first free file number) in Ray's object store; encode with ``ray.data``
``map_batches`` tasks, each of which opens the index read-only (the quantizer
file is downloaded once per node cache and mapped) and writes one segment file
that no manifest names yet (``Index.stage_segment``); then one commit on the
driver names them all (``Index.commit_staged``). Readers see all of the build
or none of it. A task that fails or is retried leaves a file no manifest names,
which the next writer to open the index removes as a leftover. The codes are
the ones one process would write for the same rows with the same quantizers.

:class:`ShardedSearcher` — Ray actors each open the index read-only and search
a group of the segments of one agreed generation (``Index.search_candidates``):
stage 1's ``max(k, candidates)`` best with their exact distances. The driver
merges the groups (``chromatica.merge_candidates``): the result is exactly what
``Index.search`` on the whole index returns, bit for bit, because a code's PQ
distance does not depend on which other segments are scanned and the merge uses
the same orders as one search. ``refresh()`` moves every actor to the newest
commit together.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional, Sequence

import numpy as np

import ray

from ._native import HIST_DIM, Index, hellinger, histogram, merge_candidates

__all__ = ["build", "ShardedSearcher"]

#: Rows per segment a worker writes (one ``map_batches`` batch).
DEFAULT_BATCH_ROWS = 20_000
#: Rows the driver trains on (a seeded random sample, or the first rows of a Dataset).
DEFAULT_TRAIN_ROWS = 50_000


@ray.remote(num_cpus=0)
class _FileNumbers:
    """Hands out file numbers, one per staged segment, from the build's first
    free number: a retried task gets a new one, so no two attempts share a
    name, and every number the commit does not name ends up below its
    ``next_file`` (a leftover the next writer removes)."""

    def __init__(self, first: int):
        self._next = first

    def take(self) -> int:
        n = self._next
        self._next += 1
        return n


def _open_for_plan(plan: dict) -> Index:
    index = Index.open(plan["uri"], read_only=True)
    state = index.state()
    if state["quantizer_file"] != plan["quantizer_file"]:
        raise RuntimeError(
            f"{plan['uri']}: the index was trained again during the build "
            f"(quantizer file {state['quantizer_file']}, the build encodes with {plan['quantizer_file']})"
        )
    return index


def _encode_rows(batch: dict, plan: dict, numbers, rows=None, fault: Optional[str] = None) -> dict:
    """One ``map_batches`` task: encode the batch's rows and stage them as one
    segment. The rows are ``rows[batch["row"]]`` (an array in the object
    store), ``batch["vector"]`` with ``batch["id"]`` (a Dataset), or decoded
    here from ``batch["path"]`` (images; an undecodable file is reported,
    not fatal)."""
    started = time.perf_counter()
    index = _open_for_plan(plan)
    failed, paths = [], None
    if "vector" in batch:
        x = np.ascontiguousarray(np.stack(list(batch["vector"])), dtype=np.float32)
        ids = np.asarray(batch["id"], dtype=np.int64)
        first_row = False
    else:
        pos = np.asarray(batch["row"], dtype=np.int64)
        first_row = bool((pos == 0).any())
        if rows is not None:
            x = np.ascontiguousarray(rows[pos], dtype=np.float32)
        else:
            decoded, keep, paths = [], [], []
            for p, path in zip(pos, batch["path"]):
                try:
                    decoded.append(histogram(str(path)))
                except (OSError, ValueError) as e:
                    failed.append(f"{path}: {e}")
                    continue
                keep.append(p)
                paths.append(os.path.realpath(str(path)))  # as ImageLibrary.index records them
            pos = np.asarray(keep, dtype=np.int64)
            x = hellinger(np.asarray(decoded, dtype=np.float32).reshape(-1, HIST_DIM))
        ids = plan["first_id"] + pos if plan["ids"] is None else plan["ids"][pos]
    out = {"file": -1, "vectors": 0, "bytes": 0, "quantizer_file": -1}
    if len(ids):
        out = index.stage_segment(x, ids.astype(np.int64), ray.get(numbers.take.remote()), paths=paths)
        if fault is not None and first_row and not os.path.exists(fault):
            # Test hook: the worker dies after staging, once, so that the
            # task is retried and this attempt's file is left behind.
            open(fault, "w").close()
            os._exit(1)
    return {
        **{k: np.asarray([out[k]], dtype=np.int64) for k in ("file", "vectors", "bytes", "quantizer_file")},
        "seconds": np.asarray([time.perf_counter() - started]),
        "failed": np.asarray(["\n".join(failed)], dtype=object),
    }


def build(
    uri: str,
    data: Any,
    *,
    ids: Optional[Sequence[int]] = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    train_rows: int = DEFAULT_TRAIN_ROWS,
    seed: int = 1234,
    workers: Optional[int] = None,
    **config: Any,
) -> dict:
    """Builds (or adds to) the index at ``uri`` with Ray workers; returns a
    report (a dict: vectors, segments, ids, failed, seconds and bytes by step,
    per-task throughput).

    ``data``: a float32 numpy array (n × dim); a ``ray.data.Dataset`` with a
    ``vector`` column (and optionally ``id``); or a list of image paths (each
    decoded on a worker into its colour histogram, recorded with path, size
    and mtime so that ``ImageLibrary`` searches the result). Without ``ids``
    (or an ``id`` column), ids continue from the index's next id in input
    order. ``config``: ``Index.create``'s keywords for a new index (images:
    dim 1152 and ``refine=True`` unless given). An untrained index is trained
    on ``train_rows`` rows first (a seeded sample; a Dataset's first rows).
    ``batch_rows``: rows per task, each task one segment file; ``workers``:
    at most this many tasks at once (Ray's ``concurrency``; default: as
    many as Ray schedules).
    """
    if not ray.is_initialized():
        raise RuntimeError("chromatica.ray.build needs Ray: call ray.init() first")
    if batch_rows < 1 or train_rows < 1:
        raise ValueError("batch_rows and train_rows must be at least 1")
    times = {}
    t0 = time.perf_counter()
    images = isinstance(data, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in data)
    dataset = isinstance(data, ray.data.Dataset)
    if not (images or dataset or isinstance(data, np.ndarray)):
        raise TypeError(
            f"data must be a numpy array, a ray.data.Dataset or a list of image paths, not {type(data).__name__}"
        )
    if dataset:
        # A Dataset has no row order a worker can see: its rows carry their ids.
        columns = data.columns()
        if "vector" not in columns or "id" not in columns:
            raise ValueError(f"the Dataset needs 'vector' and 'id' columns (it has {columns})")
        if ids is not None:
            raise ValueError("ids come from the Dataset's 'id' column")
        n = data.count()
        first = np.stack(list(data.take_batch(1, batch_format="numpy")["vector"]))
        config.setdefault("dim", first.shape[1])
    elif images:
        config.setdefault("dim", HIST_DIM)
        config.setdefault("refine", True)
        n = len(data)
    else:
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D (n × dim), got shape {data.shape}")
        config.setdefault("dim", data.shape[1])
        n = data.shape[0]
    if n == 0:
        raise ValueError("no vectors given")
    if ids is not None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape != (n,):
            raise ValueError(f"{ids.size} ids for {n} rows")
    fault = config.pop("_fault", None)
    try:
        index = Index.open(uri)
    except FileNotFoundError:
        index = Index.create(uri, **config)
    with index:
        if not index.is_trained:
            if dataset:
                sample = np.stack(list(data.take_batch(min(train_rows, n), batch_format="numpy")["vector"]))
            else:
                pick = np.sort(np.random.default_rng(seed).choice(n, size=min(train_rows, n), replace=False))
                sample = _decode_sample([str(data[i]) for i in pick]) if images else data[pick]
            index.train(np.ascontiguousarray(sample, dtype=np.float32), seed=seed)
        times["train"] = time.perf_counter() - t0
        state = index.state()
        plan = {
            "uri": str(uri),
            "quantizer_file": state["quantizer_file"],
            "ids": ids,
            "first_id": int(index.state()["next_id"]),
        }
        numbers = _FileNumbers.remote(state["next_file"])
        t1 = time.perf_counter()
        # A task's own error (bad ids, a retrained index) reaches the caller
        # as itself: Ray Data reads this when the Dataset is made.
        ctx = ray.data.DataContext.get_current()
        saved = ctx.raise_original_map_exception
        ctx.raise_original_map_exception = True
        try:
            # One block per task and one segment per block: ceil(n / batch_rows)
            # segments of near-equal size.
            rows_ref, blocks = None, -(-n // batch_rows)
            if dataset:
                ds = data.repartition(blocks)
            elif images:
                ds = ray.data.from_items(
                    [{"row": i, "path": str(p)} for i, p in enumerate(data)], override_num_blocks=blocks
                )
            else:
                ds = ray.data.range(n, override_num_blocks=blocks).rename_columns({"id": "row"})
                rows_ref = ray.put(np.ascontiguousarray(data, dtype=np.float32))
            staged_ds = ds.map_batches(
                _encode_task,
                batch_size=None,
                batch_format="numpy",
                fn_kwargs={"plan": ray.put(plan), "numbers": numbers, "rows": rows_ref, "fault": fault},
                concurrency=workers,
            )
            results = staged_ds.take_all()
        except ray.exceptions.RayError as e:
            # A task's own error (bad ids, a retrained index) is the caller's
            # to see as itself, not wrapped in Ray's layers.
            raise _cause(e) from e
        finally:
            # Restored, and the numbering actor stopped, however the encode ended.
            ctx.raise_original_map_exception = saved
            ray.kill(numbers)
        times["encode"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        staged = [
            {k: int(r[k]) for k in ("file", "vectors", "bytes", "quantizer_file")} for r in results if int(r["file"]) >= 0
        ]
        failed = [line for r in results for line in str(r["failed"]).splitlines() if line]
        report = index.commit_staged(staged) if staged else {"ids": None, "segments": []}
        times["commit"] = time.perf_counter() - t2
    per_task = [int(r["vectors"]) / float(r["seconds"]) for r in results if int(r["vectors"]) and float(r["seconds"]) > 0]
    return {
        "vectors": int(sum(s["vectors"] for s in staged)),
        "segments": report["segments"],
        "ids": report["ids"],
        "failed": failed,
        "seconds": {**times, "total": time.perf_counter() - t0},
        "bytes_written": int(sum(s["bytes"] for s in staged)),
        "tasks": len(results),
        "rows_per_second_per_task": float(np.median(per_task)) if per_task else 0.0,
    }


def _cause(e: BaseException) -> BaseException:
    """The task's own exception under Ray's RayTaskError."""
    while isinstance(e, ray.exceptions.RayTaskError) and isinstance(getattr(e, "cause", None), BaseException):
        e = e.cause
    return e


def _encode_task(batch, plan, numbers, rows, fault):
    # fn_kwargs travel as given: the plan and the rows are fetched from the
    # object store here (zero-copy for the array on this node).
    plan = ray.get(plan)
    rows = ray.get(rows) if rows is not None else None
    return _encode_rows(batch, plan, numbers, rows=rows, fault=fault)


def _decode_sample(paths):
    """The training sample of an image build: histograms decoded by Ray tasks."""
    ds = ray.data.from_items([{"path": p} for p in paths])

    def decode(batch):
        out = []
        for p in batch["path"]:
            try:
                out.append(histogram(str(p)))
            except (OSError, ValueError):
                pass
        return {"h": np.asarray(out, dtype=np.float32).reshape(-1, HIST_DIM)}

    hs = [np.asarray(r["h"], dtype=np.float32) for r in ds.map_batches(decode, batch_format="numpy").take_all()]
    return hellinger(np.ascontiguousarray(np.stack(hs))) if hs else np.zeros((0, HIST_DIM), np.float32)


@ray.remote
class _Shard:
    """One actor: the index opened read-only, searching the segments it is given."""

    def __init__(self, uri: str):
        self._index = Index.open(uri, read_only=True)

    def refresh(self) -> dict:
        self._index.refresh()
        return self._index.state()

    def search(self, x, k, nprobe, rerank, candidates, segments, generation):
        state = self._index.state()
        if state["generation"] != generation:
            raise RuntimeError(f"shard at generation {state['generation']}, the search planned {generation}: refresh()")
        return self._index.search_candidates(
            x, k, nprobe=nprobe, rerank=rerank, candidates=candidates, segments=list(segments)
        )


class ShardedSearcher:
    """Searches the index at ``uri`` across ``shards`` Ray actors (each opens
    it read-only from the shared storage), with exactly the answers of
    ``Index.search`` on the whole index. Segments are grouped by live vectors
    (largest first onto the least loaded actor). ``refresh()`` picks up new
    commits. Use as a context manager, or call ``close()``, to stop the actors."""

    def __init__(self, uri: str, shards: int = 2):
        if not ray.is_initialized():
            raise RuntimeError("chromatica.ray.ShardedSearcher needs Ray: call ray.init() first")
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.uri = str(uri)
        self._actors = [_Shard.remote(self.uri) for _ in range(shards)]
        self.generation = None
        self.groups: list = []
        self.refresh()

    def refresh(self, attempts: int = 20) -> int:
        """Moves every actor to the newest commit (all to the same one: a
        commit landing in between makes them all look again). Returns the
        generation."""
        for _ in range(attempts):
            states = ray.get([a.refresh.remote() for a in self._actors])
            if len({s["generation"] for s in states}) == 1:
                break
        else:
            raise RuntimeError(f"{self.uri}: the shards could not agree on a generation in {attempts} tries")
        self.generation = states[0]["generation"]
        # The merge needs the candidates each shard used: the index's stored
        # default when the caller gives none.
        self.candidates = states[0]["candidates"]
        self.dim = None
        load = [0] * len(self._actors)
        self.groups = [[] for _ in self._actors]
        for seg in sorted(states[0]["segments"], key=lambda s: (-s["vectors"], s["file"])):
            g = load.index(min(load))
            self.groups[g].append(seg["file"])
            load[g] += seg["vectors"]
        return self.generation

    def search(self, x, k: int, nprobe=None, rerank=None, candidates=None):
        """``(D, I)`` for the rows of ``x``, as ``Index.search`` returns them
        (same arguments; ``rerank`` None, "l2" or "none")."""
        x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float32)))
        # A batch goes to the object store once for all actors; a few
        # queries travel inline with each call (cheaper than a put).
        xref = ray.put(x) if x.nbytes > 256 * 1024 else x
        calls = [
            a.search.remote(xref, k, nprobe, rerank, candidates, group, self.generation)
            for a, group in zip(self._actors, self.groups)
            if group
        ]
        parts = ray.get(calls)
        if not parts:
            return np.full((len(x), k), np.inf, np.float32), np.full((len(x), k), -1, np.int64)
        return merge_candidates(parts, k, self.candidates if candidates is None else candidates)

    def close(self):
        for a in self._actors:
            ray.kill(a)
        self._actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
