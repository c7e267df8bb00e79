"""Runs, collections and planner sweeps on a Ray cluster (``pip install "telic[ray]"``).

The episodes of a run are split into shards of consecutive episode indices;
each shard is one Ray task that calls :func:`telic.run` (or
:func:`telic.collect`) with ``indices=`` -- planning in Rust with the
interpreter lock released -- and the driver gathers the shards in episode
order. Episode ``i`` depends only on the seed and ``i``, so the results are
the local run's, bit for bit (wall-clock latencies aside), on any number of
workers and nodes; a task lost with its worker is run again (``max_retries``)
and gives the same result, so nothing is lost or counted twice.

Where: ``address`` if given, else ``$RAY_ADDRESS``, else a local Ray with two
CPUs (``ray.init(num_cpus=2)``); a Ray already initialised in this process is
used as it is. Every node needs the same ``telic`` package (with its shipped
scenes and models, or the files a scenario names) and ``ray``; results come
back through Ray's object store (a collection's shard files as bytes, merged
on the driver by :func:`telic.merge_shards`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import telic
from telic.errors import ConfigError

__all__ = ["run", "collect", "sweep", "connect", "shard_indices"]

Progress = Optional[Callable[[int, int], object]]
#: ``hook(shard, done)``, called in the worker before a shard's first
#: episode (``done`` 0) and after each (fault injection for tests).
Hook = Optional[Callable[[int, int], None]]


def connect(address: Optional[str] = None, num_cpus: int = 2) -> None:
    """Connects to Ray unless this process already is: ``address``, else
    ``$RAY_ADDRESS``, else a new local Ray of ``num_cpus`` CPUs."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus)


def shard_indices(episodes: int, shards: int) -> list[list[int]]:
    """Episodes ``0..episodes`` in ``shards`` runs of consecutive indices
    (sizes differing by at most one; no empty shard)."""
    if not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
    if not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"shards must be a positive integer, got {shards!r}")
    shards = min(shards, episodes)
    size, extra = divmod(episodes, shards)
    out, start = [], 0
    for k in range(shards):
        end = start + size + (1 if k < extra else 0)
        out.append(list(range(start, end)))
        start = end
    return out


def _default_shards(episodes: int) -> int:
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(episodes, 4 * cpus))


def _watched(hook: Hook, shard: int) -> Progress:
    """The progress callback that hands ``hook`` the shard's episodes done
    (after calling it once before the first)."""
    if hook is None:
        return None
    call = hook
    call(shard, 0)
    return lambda done, _total: call(shard, done)


def _run_shard(scenario: str, episodes: int, seed: int, indices: list[int],
               options: dict[str, Any], hook: Hook, shard: int) -> dict[str, Any]:
    """One task of :func:`run`: the episodes ``indices`` of the run."""
    out = telic.run(scenario, episodes, seed, indices=indices,
                    progress=_watched(hook, shard), **options)
    return {k: out[k] for k in ("scenario", "model", "episodes")}


def _collect_shard(scenario: str, episodes: int, seed: int, indices: list[int],
                   options: dict[str, Any], hook: Hook, shard: int) -> dict[str, bytes]:
    """One task of :func:`collect`: the shard ``indices`` of the
    collection, written on the worker and sent back as its files' bytes
    (the driver may be on another machine)."""
    with tempfile.TemporaryDirectory(prefix="telic-shard-") as tmp:
        telic.collect(scenario, tmp, episodes, seed, indices=indices,
                      progress=_watched(hook, shard), **options)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def _gather(refs: list[Any], sizes: list[int], progress: Progress,
            keep: Optional[Callable[[int, Any], Any]] = None) -> list[Any]:
    """The tasks' values in the order of ``refs`` (task ``k``'s passed
    through ``keep(k, value)`` if given, as soon as it is done: the driver
    need not hold every value at once), calling ``progress(done, total)``
    (episodes) as each task ends. Ctrl-C or an exception, a task's
    included, cancels the tasks not yet done."""
    import ray

    total = sum(sizes)
    index = {ref: k for k, ref in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending, done = list(refs), 0
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in ready:
                k = index[ref]
                value = ray.get(ref)  # raises the task's error
                out[k] = value if keep is None else keep(k, value)
                done += sizes[k]
                if progress is not None:
                    progress(done, total)
        return out
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _check_progress(progress: Progress) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total), got {type(progress).__name__}")


def _submit_run(scenario: str, episodes: int, seed: int, shards: Optional[int],
                max_retries: int, options: dict[str, Any],
                hook: Hook) -> tuple[list[Any], list[int]]:
    import ray

    if "indices" in options or "progress" in options:
        raise TypeError("telic.ray.run() takes no indices= (it shards the run) and its own progress=")
    chunks = shard_indices(episodes, shards if shards is not None else _default_shards(episodes))
    task = ray.remote(_run_shard).options(max_retries=max_retries, num_cpus=1)
    refs = [task.remote(scenario, episodes, seed, c, options, hook, k) for k, c in enumerate(chunks)]
    return refs, [len(c) for c in chunks]


def run(scenario: str, episodes: int = 20, seed: int = 1, *, address: Optional[str] = None,
        shards: Optional[int] = None, max_retries: int = 3, progress: Progress = None,
        _worker_hook: Hook = None, **options: Any) -> dict[str, Any]:
    """:func:`telic.run` on a Ray cluster: the same answer (``"scenario"``,
    ``"model"``, ``"seed"``, ``"episodes"`` in episode order, ``"summary"``),
    each episode's result identical to the local run's but for its latencies.

    ``shards``: tasks to split the episodes into (default: four per CPU of
    the cluster, at most one per episode); ``max_retries``: how often Ray
    runs a task again whose worker died; ``progress(done, total)``: called on
    this thread as shards end (episodes done). The other keywords are those
    of :func:`telic.run` (``model``, ``planner``, ``max_time``, ``jobs`` per
    task, ``obs``, ``perturb``). ``_worker_hook`` (:data:`Hook`) is for
    tests that kill a worker."""
    _check_progress(progress)
    connect(address)
    refs, sizes = _submit_run(scenario, episodes, seed, shards, max_retries, options, _worker_hook)
    parts = _gather(refs, sizes, progress)
    results = [e for part in parts for e in part["episodes"]]
    return {
        "scenario": parts[0]["scenario"],
        "model": parts[0]["model"],
        "seed": seed,
        "episodes": results,
        "summary": telic.summarize(results),
    }


def collect(scenario: str, out: Union[str, "os.PathLike[str]"], episodes: int = 100, seed: int = 1,
            *, address: Optional[str] = None, shards: Optional[int] = None, max_retries: int = 3,
            progress: Progress = None, _worker_hook: Hook = None,
            **options: Any) -> dict[str, Any]:
    """:func:`telic.collect` on a Ray cluster: each task records a shard of
    episodes on its worker and sends its files back; the driver writes each
    shard under ``out/.shards`` as it arrives and merges them into ``out``
    (:func:`telic.merge_shards`): byte for byte the local collection with the
    same seed and settings. Returns its meta.json. Keywords as :func:`run`
    and :func:`telic.collect` (``obs``, ``perturb``, collection settings)."""
    import ray

    _check_progress(progress)
    if "indices" in options or "progress" in options:
        raise TypeError("telic.ray.collect() takes no indices= (it shards the collection)")
    connect(address)
    chunks = shard_indices(episodes, shards if shards is not None else _default_shards(episodes))
    task = ray.remote(_collect_shard).options(max_retries=max_retries, num_cpus=1)
    refs = [task.remote(scenario, episodes, seed, c, options, _worker_hook, k)
            for k, c in enumerate(chunks)]
    staging = Path(out) / ".shards"
    shutil.rmtree(staging, ignore_errors=True)

    def write(k: int, files: dict[str, bytes]) -> Path:
        folder = staging / f"{k:05d}"
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return folder

    try:
        folders = _gather(refs, [len(c) for c in chunks], progress, keep=write)
        return telic.merge_shards(folders, scenario, out, episodes, seed, **options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _settings(grid: Any) -> list[dict[str, Any]]:
    """Every setting of ``grid`` (a dict of planner keys to lists of values)."""
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(f"sweep(): grid must be a non-empty dict of planner setting -> values, got {grid!r}")
    keys = list(grid)
    values: list[Sequence[Any]] = []
    for k in keys:
        if not isinstance(k, str):
            raise ConfigError(f"sweep(): grid keys must be planner setting names, got {k!r}")
        v = grid[k]
        if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
            raise ConfigError(f"sweep(): grid[{k!r}] must be a list of values, got {v!r}")
        v = list(v)
        if not v:
            raise ConfigError(f"sweep(): grid[{k!r}] has no value")
        values.append(v)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def sweep(scenario: str, grid: Mapping[str, Iterable[Any]], episodes: int = 20, seed: int = 1, *,
          address: Optional[str] = None, shards: Optional[int] = None, max_retries: int = 3,
          progress: Progress = None, **options: Any) -> list[dict[str, Any]]:
    """Runs ``episodes`` episodes from ``seed`` for every setting of ``grid``
    (planner keys to lists of values, e.g. ``{"samples": [64, 256],
    "horizon": [10, 20]}``, merged over ``planner=`` if given) on a Ray
    cluster, all settings' shards at once. Returns one row per setting, in
    grid order: ``{"setting": {...}, "summary": {...}}``, the summary of
    :func:`telic.run` with that planner. A grid that is not a dict of
    non-empty lists is a :class:`telic.ConfigError` before any task starts;
    a bad planner key or value is the :class:`telic.ConfigError` of its
    first task (Ray's ``RayTaskError`` is an instance of it)."""
    _check_progress(progress)
    settings = _settings(grid)
    base = options.pop("planner", None) or {}
    if not isinstance(base, Mapping):
        raise ConfigError("sweep(): planner must be a dict")
    planners = [{**base, **s} for s in settings]
    connect(address)
    refs, sizes = [], []
    for p in planners:
        r, s = _submit_run(scenario, episodes, seed, shards, max_retries,
                           {**options, "planner": p}, None)
        refs += r
        sizes.append(s)
    parts = _gather(refs, [n for s in sizes for n in s], progress)
    rows, at = [], 0
    for setting, s in zip(settings, sizes):
        results = [e for part in parts[at:at + len(s)] for e in part["episodes"]]
        at += len(s)
        rows.append({"setting": setting, "summary": telic.summarize(results)})
    return rows
