"""Long batches from Python: Ctrl-C stops ``telic.run`` between episodes,
``progress=`` watches ``run`` and ``collect``, ``indices=`` runs some episodes
of a run exactly as the whole run runs them, and collection shards merge into
the whole data set byte for byte."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import telic

FAST = dict(model="analytic", max_time=0.5)


def without_latencies(episode: dict[str, Any]) -> dict[str, Any]:
    """An episode's result without its wall-clock figures."""
    return {k: v for k, v in episode.items() if k != "plan_latency_ms"}


def test_progress_is_called_after_each_episode_on_the_calling_thread():
    import threading

    seen: list[tuple[int, int, str]] = []
    out = telic.run(
        "reach", episodes=4, seed=2, jobs=2,
        progress=lambda done, total: seen.append((done, total, threading.current_thread().name)),
        **FAST,
    )
    assert len(out["episodes"]) == 4
    assert [(d, t) for d, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {name for _, _, name in seen} == {threading.current_thread().name}


def test_an_exception_in_progress_stops_the_run_and_propagates(tmp_path: Path):
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        telic.run("reach", episodes=200, seed=1, progress=progress, **FAST)
    assert calls == [1, 2]
    calls.clear()
    with pytest.raises(RuntimeError, match="enough"):
        telic.collect("reach", tmp_path / "d", episodes=500, steps_per_episode=5,
                      progress=progress)
    assert calls == [1, 2]
    assert not (tmp_path / "d" / "meta.json").exists()


def test_bad_progress_and_indices_are_clear_errors(tmp_path: Path):
    with pytest.raises(TypeError, match="progress must be a callable"):
        telic.run("reach", episodes=2, progress=3, **FAST)
    with pytest.raises(TypeError, match="progress must be a callable"):
        telic.collect("reach", tmp_path / "d", episodes=2, progress="x")
    for bad, match in [
        ([5], "episode 5 is not one of the run's 4"),
        ([1, 1], "episode 1 is selected twice"),
        ([], "no episode selected"),
        ([-1], "indices"),
        ("12", "indices"),
        ([0.5], "indices"),
    ]:
        with pytest.raises(telic.ConfigError, match=match):
            telic.run("reach", episodes=4, indices=bad, **FAST)
        with pytest.raises(telic.ConfigError, match=match):
            telic.collect("reach", tmp_path / "d", episodes=4, indices=bad)
    # A progress callback taking the wrong arguments: its TypeError.
    with pytest.raises(TypeError):
        telic.run("reach", episodes=2, progress=lambda: None, **FAST)


def test_ctrl_c_stops_a_long_run_promptly(tmp_path: Path):
    script = textwrap.dedent(
        """
        import sys, telic
        def progress(done, total):
            if done == 1:
                print("running", flush=True)
        telic.run("reach", episodes=100000, seed=1, model="analytic", max_time=0.5,
                  jobs=2, progress=progress)
        print("finished", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err, err
    assert proc.returncode != 0
    # An episode of 0.5 s simulated time plans in well under a second here;
    # the bound is loose for a loaded machine.
    assert took < 15, took


def test_selected_episodes_are_those_of_the_whole_run():
    whole = telic.run("reach", episodes=6, seed=3, jobs=2, **FAST)
    some = telic.run("reach", episodes=6, seed=3, indices=[4, 1, 5], **FAST)
    assert some["indices"] == [1, 4, 5]
    assert [without_latencies(e) for e in some["episodes"]] == [
        without_latencies(whole["episodes"][i]) for i in (1, 4, 5)
    ]
    assert "indices" not in whole


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_collection_shards_merge_into_the_whole_data_set(tmp_path: Path):
    settings = dict(episodes=5, seed=4, steps_per_episode=6)
    telic.collect("reach", tmp_path / "whole", **settings)
    done: list[int] = []
    a = telic.collect("reach", tmp_path / "a", indices=[0, 3],
                      progress=lambda d, t: done.append(t), **settings)
    assert a["shard"] == {"of_episodes": 5} and a["episodes"] == 2 and done == [2, 2]
    telic.collect("reach", tmp_path / "b", indices=range(1, 2), **settings)
    telic.collect("reach", tmp_path / "c", indices=[2, 4], **settings)
    shards = [tmp_path / "c", tmp_path / "a", str(tmp_path / "b")]
    meta = telic.merge_shards(shards, "reach", tmp_path / "merged", **settings)
    assert meta["episodes"] == 5 and "shard" not in meta
    assert files(tmp_path / "merged") == files(tmp_path / "whole")
    twice = [tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "a"]
    with pytest.raises(telic.ConfigError, match="in two shards"):
        telic.merge_shards(twice, "reach", tmp_path / "bad", **settings)
    with pytest.raises(telic.ConfigError, match="episode 2 is in no shard"):
        telic.merge_shards(shards[1:], "reach", tmp_path / "bad", **settings)
    with pytest.raises(telic.ConfigError, match="no shard"):
        telic.merge_shards([], "reach", tmp_path / "bad", **settings)
    # Shards of another collection (another seed): refused, nothing written.
    with pytest.raises(telic.ConfigError, match="not a shard of this collection"):
        telic.merge_shards(shards, "reach", tmp_path / "bad", episodes=5, seed=5,
                           steps_per_episode=6)
    assert not (tmp_path / "bad").exists()
