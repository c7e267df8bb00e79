#!/usr/bin/env python3
"""Throughput of one run on this machine: episodes per second locally with
jobs=1 and jobs=2 against telic.ray with one and two workers (a local Ray of
that many CPUs), in one run; Ray's overhead per episode is the difference of
the seconds per episode of Ray with one worker and the local jobs=1.

    python3 scripts/bench_ray.py [--scene reach] [--episodes 40] [--max-time 2]
"""

from __future__ import annotations

import argparse
import time

import ray

import telic
import telic.ray as tray


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="reach")
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-time", type=float, default=2.0)
    ap.add_argument("--model", default="analytic")
    a = ap.parse_args()
    opts = dict(model=a.model, max_time=a.max_time)
    n = a.episodes
    rows = []
    for jobs in (1, 2):
        s = timed(lambda: telic.run(a.scene, n, a.seed, jobs=jobs, **opts))
        rows.append((f"local jobs={jobs}", s))
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            tray.run(a.scene, workers, a.seed, shards=workers, **opts)  # start the workers
            s = timed(lambda: tray.run(a.scene, n, a.seed, shards=4 * workers, **opts))
        finally:
            ray.shutdown()
        rows.append((f"ray workers={workers}", s))
    print(f"{a.scene}, {n} episodes of {a.max_time} s, model {a.model}")
    for name, s in rows:
        print(f"  {name:<16} {n / s:8.2f} episodes/s  ({s:6.2f} s)")
    overhead = (rows[2][1] - rows[0][1]) / n
    print(f"  Ray overhead per episode (1 worker vs jobs=1): {overhead * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
