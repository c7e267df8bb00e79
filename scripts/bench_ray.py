#!/usr/bin/env python3
"""Throughput and identity of telic.ray against local runs, in one run:
episodes per second of one run locally with ``jobs=1`` and ``jobs=2`` and on
a local Ray with one and two workers (``ray.init(num_cpus=N)``, four shards
per worker, one episode at a time per task), and whether each run's
per-episode results are those of the local ``jobs=1`` run (bit for bit,
wall-clock latencies aside).

Ray's overhead per episode is the difference of the seconds per episode of
Ray with N workers and the local run with ``jobs=N``; each Ray is warmed up
first (its worker processes started and ``telic`` imported by a small run),
as a long-lived cluster would be. Ray starts its workers at nice 15; here
they run at the driver's priority (``RAY_worker_niceness=0`` unless set),
or on a machine shared with other work the comparison would measure the
scheduler, not Ray.

    python3 scripts/bench_ray.py [--scene reach] [--episodes 200] [--seed 1]
                                 [--max-time S] [--model analytic]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import ray

import telic
import telic.ray as tray


def timed(fn: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def per_episode(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's episode results without their wall-clock latencies."""
    return [{k: v for k, v in e.items() if k != "plan_latency_ms"} for e in run["episodes"]]


def summary(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run["summary"].items() if not k.startswith("plan_latency")}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scene", default="reach")
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-time", type=float, default=None,
                    help="simulated seconds per episode (default: the scenario's)")
    ap.add_argument("--model", default="analytic")
    a = ap.parse_args()
    os.environ.setdefault("RAY_worker_niceness", "0")
    load = os.getloadavg()[0]
    opts: dict[str, Any] = dict(model=a.model)
    if a.max_time is not None:
        opts["max_time"] = a.max_time
    n = a.episodes
    rows: list[tuple[str, float, dict[str, Any]]] = []
    for jobs in (1, 2):
        s, out = timed(lambda: telic.run(a.scene, n, a.seed, jobs=jobs, **opts))
        rows.append((f"local jobs={jobs}", s, out))
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            tray.run(a.scene, workers, a.seed, shards=workers, **opts)  # warm-up
            s, out = timed(lambda: tray.run(a.scene, n, a.seed, shards=4 * workers, **opts))
        finally:
            ray.shutdown()
        rows.append((f"ray workers={workers}", s, out))
    reference = rows[0][2]
    length = "the scenario's episode length" if a.max_time is None else f"{a.max_time} s each"
    print(f"{a.scene}, {n} episodes ({length}), seed {a.seed}, model {a.model}, "
          f"success rate {reference['summary']['success_rate']:.3f}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs")
    print(f"  {'':<16} {'episodes/s':>10} {'seconds':>8}  per-episode results == local jobs=1")
    for name, s, out in rows:
        same = per_episode(out) == per_episode(reference) and summary(out) == summary(reference)
        print(f"  {name:<16} {n / s:10.2f} {s:8.2f}  {'identical' if same else 'DIFFERENT'}")
    for k in (1, 2):
        local, remote = rows[k - 1][1], rows[k + 1][1]
        print(f"  Ray overhead per episode, {k} worker(s) vs jobs={k}: "
              f"{(remote - local) / n * 1000:+.1f} ms ({(remote / local - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
