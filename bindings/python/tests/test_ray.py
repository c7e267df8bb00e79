"""Runs, collections and sweeps on a Ray cluster (telic.ray). The per-episode
results equal the local run's (latencies aside), also when a worker process
is killed in the middle of its shard; a collection over two workers is the
local one byte for byte; a 3x3 sweep returns its table.

The cluster is one local Ray of two CPUs (``ray.init(num_cpus=2)``) shared
by the module, not ``ray.cluster_utils.Cluster`` with two nodes: the tasks
run in separate worker processes either way (what sharding, the object
store and retries go through), and a second raylet would add start-up time
and memory on a two-core CI machine without exercising any path of
telic.ray (it never places tasks on nodes). Nothing here is timed.

Ray is optional: without it these tests are skipped, unless
``TELIC_REQUIRE_RAY=1`` (scripts/test sets it), which makes a missing Ray
a failure."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("TELIC_REQUIRE_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray")

import telic  # noqa: E402
import telic.ray as tray  # noqa: E402

FAST = dict(model="analytic", max_time=0.5)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def without_latencies(episode: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in episode.items() if k != "plan_latency_ms"}


def same_summary(a: dict[str, Any], b: dict[str, Any]) -> None:
    strip = lambda s: {k: v for k, v in s.items() if not k.startswith("plan_latency")}  # noqa: E731
    assert strip(a) == strip(b)


def test_a_run_on_ray_is_the_local_run_per_episode():
    local = telic.run("reach", episodes=12, seed=7, **FAST)
    done: list[tuple[int, int]] = []
    remote = tray.run("reach", episodes=12, seed=7, shards=5,
                      progress=lambda d, t: done.append((d, t)), **FAST)
    assert (remote["scenario"], remote["model"], remote["seed"]) == (
        local["scenario"], local["model"], local["seed"])
    assert [without_latencies(e) for e in remote["episodes"]] == [
        without_latencies(e) for e in local["episodes"]]
    same_summary(remote["summary"], local["summary"])
    assert done[-1] == (12, 12) and len(done) == 5
    assert [d for d, _ in done] == sorted(d for d, _ in done)


def kill_once(marker: Path, shard: int, after: int) -> Any:
    """A worker hook that kills its worker process (SIGKILL) once: in
    ``shard``, after its ``after``-th episode (0: before the first)."""

    def hook(k: int, done: int) -> None:
        if k == shard and done == after and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def test_a_worker_killed_mid_shard_loses_and_repeats_no_episode(tmp_path: Path):
    marker = tmp_path / "killed"
    local = telic.run("reach", episodes=10, seed=5, **FAST)
    remote = tray.run("reach", episodes=10, seed=5, shards=4,
                      _worker_hook=kill_once(marker, shard=2, after=1), **FAST)
    assert marker.exists(), "the worker was not killed"
    assert [e["seed"] for e in remote["episodes"]] == [telic.episode_seed(5, i) for i in range(10)]
    assert [without_latencies(e) for e in remote["episodes"]] == [
        without_latencies(e) for e in local["episodes"]]
    same_summary(remote["summary"], local["summary"])


def test_a_killed_worker_without_retries_is_an_error(tmp_path: Path):
    marker = tmp_path / "killed"
    with pytest.raises(ray.exceptions.RayError):
        tray.run("reach", episodes=4, seed=5, shards=2, max_retries=0,
                 _worker_hook=kill_once(marker, shard=0, after=1), **FAST)
    assert marker.exists()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_collection_over_two_workers_is_the_local_one_byte_for_byte(tmp_path: Path):
    settings = dict(episodes=6, seed=9, steps_per_episode=8)
    telic.collect("reach", tmp_path / "local", **settings)
    done: list[tuple[int, int]] = []
    meta = tray.collect("reach", tmp_path / "ray", shards=3,
                        progress=lambda d, t: done.append((d, t)), **settings)
    assert meta["episodes"] == 6 and "shard" not in meta
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert sorted(done) == [(2, 6), (4, 6), (6, 6)]


def test_a_collection_with_a_killed_worker_is_still_the_local_one(tmp_path: Path):
    settings = dict(episodes=4, seed=2, steps_per_episode=5)
    telic.collect("reach", tmp_path / "local", **settings)
    marker = tmp_path / "killed"
    tray.collect("reach", tmp_path / "ray", shards=2,
                 _worker_hook=kill_once(marker, shard=1, after=1), **settings)
    assert marker.exists()
    assert files(tmp_path / "ray") == files(tmp_path / "local")


def test_a_3x3_sweep_returns_its_table():
    grid = {"samples": [32, 64, 128], "horizon": [5, 10, 15]}
    rows = tray.sweep("reach", grid, episodes=2, seed=3, shards=1, **FAST)
    assert [r["setting"] for r in rows] == [
        {"samples": s, "horizon": h} for s in (32, 64, 128) for h in (5, 10, 15)]
    for r in rows:
        assert r["summary"]["episodes"] == 2
    # Each row is the local run with that planner.
    local = telic.run("reach", episodes=2, seed=3, planner=rows[4]["setting"], **FAST)
    same_summary(rows[4]["summary"], local["summary"])


@pytest.mark.parametrize("grid", [{}, [1, 2], {"samples": []}, {"samples": 5}, {"samples": "ab"}])
def test_bad_grids_are_config_errors(grid: Any):
    with pytest.raises(telic.ConfigError, match="sweep"):
        tray.sweep("reach", grid, episodes=1, **FAST)


def test_bad_planner_settings_and_shards_are_config_errors():
    with pytest.raises(telic.ConfigError):
        tray.sweep("reach", {"no_such_setting": [1]}, episodes=1, **FAST)
    with pytest.raises(telic.ConfigError, match="shards"):
        tray.run("reach", episodes=2, shards=0, **FAST)
