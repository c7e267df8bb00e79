"""Benchmark: Telic's plan() from Python against Rust, and against pytorch_mppi.

    python3 examples/pendulum/bench.py
    python3 examples/pendulum/bench.py --calls 50 --sizes 1000x30

For each samples × horizon size (default 1000×30, 256×20 and 32×5), one run prints:

- **Python overhead**: ``planner.plan(obs)`` timed from Python
  (``perf_counter`` around the call) against ``plan.elapsed``, the time the
  engine measures inside Rust around the same call (encode, sampling,
  rollouts, costs, the returned plan); the ratio is Python / Rust and the
  difference is what crossing into Python and back costs per call
  (argument checks, the GIL release, copying the plan into numpy arrays).
  It is a few microseconds for small plans and grows to tens of
  microseconds for large ones: after tens of milliseconds of rollouts the
  interpreter's own data is out of the CPU caches (any Python call right
  after a plan is ~10× slower than the next one), not more binding work.
- **Against pytorch_mppi 0.9.1**: wall time per plan of ``pytorch_mppi.MPPI``
  with the *same* network (the bundle's ONNX graphs run as PyTorch code, see
  ``telic.torch_model.TorchBundle``), the same samples × horizon and one sampling
  iteration per plan (pytorch_mppi's ``command``; Telic ``iterations = 1``),
  the same cost on the readouts, planning in the bundle's latent space; the
  timed call includes encoding the observation, as Telic's does. Ratio:
  pytorch_mppi / Telic.

Both run on one CPU thread (``torch.set_num_threads(1)``; Telic's ONNX
Runtime sessions use one intra-op thread) in float32 network arithmetic.
The observations are one Pendulum-v1 episode under random torques. The
overhead is measured on Telic alone, call after call; the comparison calls
both planners on the same observations alternating call by call, so that a
change of machine load hits both alike. Warm-up calls come first; the first
call of each planner is reported apart. Medians are compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import swing_up  # noqa: E402


def observations(n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations of a Pendulum-v1 episode under random torques."""
    import gymnasium as gym

    env = gym.make(common.ENV_ID, max_episode_steps=n + 1)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(np.asarray(obs, np.float64))
        obs, *_ = env.step(rng.uniform(-2, 2, 1).astype(np.float32))
    env.close()
    return np.stack(out)


def stats(x) -> str:
    x = np.asarray(x) * 1e3
    return f"median {np.median(x):8.3f} ms  mean {x.mean():8.3f} ms  p90 {np.quantile(x, 0.9):8.3f} ms"


def make_telic(model, samples: int, horizon: int, **settings):
    """A Telic planner with swing_up's settings (and ``settings``) and a
    ``plan(obs) -> (wall seconds, planner's own elapsed)`` that times it."""
    import telic

    config = dict(swing_up.TELIC_CONFIG, samples=samples, horizon=horizon, **settings)
    planner = telic.Planner(model, common.OBJECTIVE, config)

    def plan(o):
        t0 = time.perf_counter()
        p = planner.plan(o)
        return time.perf_counter() - t0, p.elapsed

    return planner, plan


def make_pytorch_mppi(bundle: str, samples: int, horizon: int):
    import torch

    settings = dict(swing_up.MPPI_LEARNED, num_samples=samples, horizon=horizon)
    torch.manual_seed(0)
    mppi, net = swing_up.learned_mppi(bundle, settings)

    def plan(o):
        t0 = time.perf_counter()
        with torch.no_grad():
            z = net.encode(torch.as_tensor(o, dtype=torch.float32).reshape(1, -1))[0]
            mppi.command(z)
        return time.perf_counter() - t0

    return mppi, plan


def overhead(model, samples: int, horizon: int, obs: np.ndarray, warmup: int) -> dict:
    """Telic alone, call after call: Python wall time and Rust's ``plan.elapsed``."""
    planner, telic_plan = make_telic(model, samples, horizon)
    for o in obs[:warmup]:
        telic_plan(o)
    planner.reset()
    wall, rust = zip(*(telic_plan(o) for o in obs))
    return {"wall": np.asarray(wall), "rust": np.asarray(rust)}


def interleaved(telic_side, torch_side, obs: np.ndarray, warmup: int) -> dict:
    """Times two planners, each a ``(planner, plan)`` pair, on the same
    observations, alternating call by call so that a change of machine load
    hits both alike: Telic's wall and Rust times and pytorch_mppi's wall
    times after ``warmup`` rounds, and the first call of each."""
    (planner, telic_plan), (mppi, torch_plan) = telic_side, torch_side
    first = (telic_plan(obs[0])[0], torch_plan(obs[0]))
    for o in obs[1:warmup + 1]:
        telic_plan(o)
        torch_plan(o)
    planner.reset()
    mppi.reset()
    wall, rust, tw = [], [], []
    for o in obs:
        w, r = telic_plan(o)
        wall.append(w)
        rust.append(r)
        tw.append(torch_plan(o))
    return {"telic": np.asarray(wall), "rust": np.asarray(rust), "torch": np.asarray(tw), "first": first}


def main() -> int:
    import torch

    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description="Telic plan() overhead and speed against pytorch_mppi")
    p.add_argument("--bundle", default=common.BUNDLE)
    p.add_argument("--sizes", default="1000x30,256x20,32x5", help="samples x horizon, comma-separated")
    p.add_argument("--calls", type=int, default=100, help="timed plan calls per planner and size")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--glibc-malloc-defaults", action="store_true",
                   help="do not tune glibc's malloc for PyTorch (see common.keep_freed_memory)")
    args = p.parse_args()
    tuned = False if args.glibc_malloc_defaults else common.keep_freed_memory()

    import pytorch_mppi
    import telic

    model = telic.WorldModel.load(args.bundle)
    obs = observations(args.calls)
    print(f"bundle {args.bundle}: {model.latent_dim}-dimensional latent; {args.calls} timed calls per planner "
          f"after {args.warmup} warm-up calls; one CPU thread each")
    print(f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} thread), "
          f"pytorch_mppi {getattr(pytorch_mppi, '__version__', '0.9.1')}, telic {telic.__version__}, "
          f"{platform.processor() or platform.machine()}; glibc malloc "
          + ("keeps freed memory (mallopt)" if tuned else "defaults"))
    from telic.torch_model import TorchBundle

    check = TorchBundle(args.bundle).check(obs[:64], np.random.default_rng(1).uniform(-2, 2, (64, 1)))
    print(f"the PyTorch copy of the network vs ONNX Runtime: max |diff| {check:.1e}")
    summary = []
    for size in args.sizes.split(","):
        samples, horizon = (int(x) for x in size.lower().split("x"))
        print(f"\n{samples} samples x {horizon} steps, 1 iteration per plan:")
        o = overhead(model, samples, horizon, obs, args.warmup)
        py, rs = np.median(o["wall"]), np.median(o["rust"])
        extra = np.median(o["wall"] - o["rust"]) * 1e6
        print(f"  telic alone, plan() from Python  {stats(o['wall'])}")
        print(f"  telic alone, plan() inside Rust  {stats(o['rust'])}")
        print(f"  Python-side overhead: {extra:.1f} us per call (median); ratio Python / Rust = {py / rs:.4f}")
        t = interleaved(make_telic(model, samples, horizon), make_pytorch_mppi(args.bundle, samples, horizon),
                        obs, args.warmup)
        tw, pm = np.median(t["telic"]), np.median(t["torch"])
        print(f"  alternating: telic plan()        {stats(t['telic'])}   "
              f"(first call {t['first'][0] * 1e3:.1f} ms)")
        print(f"  alternating: pytorch_mppi        {stats(t['torch'])}   "
              f"(first call {t['first'][1] * 1e3:.1f} ms)")
        print(f"  wall time per plan: pytorch_mppi / telic = {pm / tw:.2f}")
        summary.append((samples, horizon, py / rs, extra, pm / tw, tw * 1e3, pm * 1e3))
    print("\nsummary (medians):")
    print("  samples x horizon | Python/Rust | overhead us | telic ms | pytorch_mppi ms | pytorch_mppi/telic")
    for s, h, ratio, over, speed, tp, pp in summary:
        print(f"  {s:>7d} x {h:<7d} | {ratio:11.4f} | {over:11.1f} | {tp:8.2f} | {pp:15.2f} | {speed:18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
