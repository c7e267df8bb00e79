"""Benchmark: Telic against pytorch_mppi 0.9.1 planning through the same
dynamics, on Pendulum-v1 with 1000 samples × 30 steps.

    python3 examples/pendulum/bench_dynamics.py
    python3 examples/pendulum/bench_dynamics.py --calls 60 --threads 2

One run measures two pairs, first with both planners on one thread, then on
two (this machine's cores; ``--threads`` chooses), each on the same observations (one Pendulum-v1
episode under random torques), one sampling iteration per plan (Telic
``iterations = 1``, pytorch_mppi's ``command``), warm-started from the
previous plan, the Pendulum-v1 cost ``angle² + 0.1·thetadot² + 0.001·u²``
summed over the 30 predicted states:

- **(a) the same 3-layer 256-wide tanh MLP** as the dynamics: Telic loads the
  bundle ``models/pendulum_mlp`` (written by ``mlp_dynamics.py``) and runs its
  ONNX graphs with ONNX Runtime (one intra-op thread, the engine's default);
  pytorch_mppi's ``dynamics`` is the same network as a ``torch.nn.Module``
  built from ``predict.onnx``'s own float32 weights
  (``mlp_dynamics.load_dynamics``), its cost the same readouts in torch.
- **(b) the analytic pendulum**: Telic's ``WorldModel.analytic("pendulum")``
  (Rust, float64) against pytorch_mppi with the vectorised torch dynamics of
  its own pendulum example (``common.true_dynamics``, float64 as there).
  Telic is timed twice: with its default sampling noise (colored across
  time, β = 2, which costs a 30-point transform per sample) and with white
  noise of the same σ, which is what pytorch_mppi samples.

Each timed call includes turning the observation into the planner's state
(Telic: ``encode``; pytorch_mppi: a tensor, and ``atan2`` in (b)). The two
planners of a pair are called alternately on the same observation, so that a
change of machine load hits both alike; warm-up calls come first, the first
call is reported apart, medians are compared. Threads are given alike:
with ``T`` threads, ``torch.set_num_threads(T)`` for pytorch_mppi, and for
Telic ``T`` ONNX Runtime intra-op threads in (a) (``WorldModel.load(...,
threads=T)``) and ``T`` rollout threads in (b) (the planner's ``threads``).

Then, after the timed calls, where the time goes, each part measured in turn
on the same observations: the network alone (ONNX Runtime on
``predict.onnx`` + ``readout.onnx`` against the torch MLP + readout, 30
batches of 1000 rows), Telic's plan, and pytorch_mppi's time inside its
``dynamics`` and ``running_cost`` against the rest of ``command``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

# NumPy's OpenBLAS (which neither planner uses here) otherwise keeps a thread
# per core that busy-waits after any BLAS call, taking a core from whichever
# planner runs next; set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import common  # noqa: E402
import mlp_dynamics  # noqa: E402
import swing_up  # noqa: E402

SAMPLES, HORIZON = 1000, 30

#: Telic's sampling noise in (b): colored across time (β = 2, the examples'
#: setting, ``swing_up.TELIC_CONFIG``), and white noise of the same σ, as
#: pytorch_mppi samples it and as Telic's default does (the like-for-like
#: comparison). On the analytic pendulum both swing up as well: mean return
#: over 20 episodes −157 (colored) and −142 (white), see the README.
NOISES = {"colored noise (β = 2)": {}, "white noise (as pytorch_mppi)": {"colored_noise_beta": 0.0}}


def mlp_cost(z, u):
    """The Pendulum-v1 cost on the readouts of states ``z`` (torch)."""
    y = mlp_dynamics.readout(z)
    return y[:, 3] ** 2 + 0.1 * y[:, 2] ** 2 + 0.001 * u[:, 0] ** 2


def make_mppi(dynamics, cost, nx: int, dtype):
    import torch
    from pytorch_mppi import MPPI

    s = dict(swing_up.MPPI_LEARNED, num_samples=SAMPLES, horizon=HORIZON)
    sigma = torch.tensor(s.pop("noise_variance"), dtype=dtype)
    torch.manual_seed(0)
    return MPPI(dynamics, cost, nx, sigma, device="cpu", u_min=torch.tensor([-2.0], dtype=dtype),
                u_max=torch.tensor([2.0], dtype=dtype), **s)


def telic_pair(model, threads: int = 1, **settings):
    return bench.make_telic(model, SAMPLES, HORIZON, threads=threads, **settings)


def torch_pair(mppi, state_of):
    import torch

    def plan(o):
        t0 = time.perf_counter()
        with torch.no_grad():
            mppi.command(state_of(o))
        return time.perf_counter() - t0

    return mppi, plan


def report(title: str, r: dict) -> float:
    t, p = np.median(r["telic"]), np.median(r["torch"])
    print(f"  telic plan()          {bench.stats(r['telic'])}   (first call {r['first'][0] * 1e3:.1f} ms)")
    print(f"    of which inside Rust {bench.stats(r['rust'])}")
    print(f"  pytorch_mppi command  {bench.stats(r['torch'])}   (first call {r['first'][1] * 1e3:.1f} ms)")
    print(f"  {title}: pytorch_mppi / telic = {p / t:.2f}  (medians {p * 1e3:.2f} ms / {t * 1e3:.2f} ms)")
    return p / t


def network_floor(bundle: str, dyn, threads: int = 1):
    """One plan's worth of network (30 × predict + readout on 1000 rows),
    as two callables: ONNX Runtime (``threads`` intra-op threads) on the
    bundle's graphs from Python, and the torch MLP + readout."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = {f: ort.InferenceSession(os.path.join(bundle, f"{f}.onnx"), opts, providers=["CPUExecutionProvider"])
            for f in ("predict", "readout")}
    rng = np.random.default_rng(0)
    th = rng.uniform(-np.pi, np.pi, SAMPLES)
    z0 = np.stack([np.cos(th), np.sin(th), rng.uniform(-8, 8, SAMPLES)], 1).astype(np.float32)
    u = rng.uniform(-2, 2, (HORIZON, SAMPLES, 1)).astype(np.float32)

    def run_ort():
        z = z0
        for t in range(HORIZON):
            z = sess["predict"].run(None, {"z": z, "u": u[t]})[0]
            sess["readout"].run(None, {"z": z})

    tz0, tu = torch.from_numpy(z0), torch.from_numpy(u)

    def run_torch():
        with torch.no_grad():
            z = tz0
            for t in range(HORIZON):
                z = dyn(z, tu[t])
                mlp_dynamics.readout(z)

    return run_ort, run_torch


class Instrumented:
    """pytorch_mppi's ``command`` with its time inside ``dynamics`` and
    ``running_cost`` measured (wrapping the functions its rollout calls)."""

    def __init__(self, mppi, state_of):
        self.mppi, self.state_of = mppi, state_of
        self.spent = {"dynamics": 0.0, "cost": 0.0}
        mppi._dynamics_fn = self._wrap("dynamics", mppi._dynamics_fn)
        mppi._running_cost_fn = self._wrap("cost", mppi._running_cost_fn)

    def _wrap(self, key, f):
        def g(*a):
            t0 = time.perf_counter()
            out = f(*a)
            self.spent[key] += time.perf_counter() - t0
            return out
        return g

    def __call__(self, o):
        import torch

        self.spent["dynamics"] = self.spent["cost"] = 0.0
        t0 = time.perf_counter()
        with torch.no_grad():
            self.mppi.command(self.state_of(o))
        return time.perf_counter() - t0, self.spent["dynamics"], self.spent["cost"]


def breakdown(calls: list, obs: np.ndarray, warmup: int) -> list:
    """Calls every function of ``calls`` on each observation in turn (after
    ``warmup`` rounds); per function, the median of each value it returns."""
    rows = [[] for _ in calls]
    for i, o in enumerate(list(obs[:warmup]) + list(obs)):
        for f, r in zip(calls, rows):
            out = f(o)
            if i >= warmup:
                r.append(np.atleast_1d(out))
    return [np.median(np.asarray(r), axis=0) for r in rows]


def timed(f):
    def g(_o):
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0
    return g


def main() -> int:
    p = argparse.ArgumentParser(description="Telic vs pytorch_mppi on the same pendulum dynamics, 1000 x 30")
    p.add_argument("--bundle", default=mlp_dynamics.OUT)
    p.add_argument("--calls", type=int, default=40, help="timed calls per planner, MLP pair")
    p.add_argument("--analytic-calls", type=int, default=200, help="timed calls per planner, analytic pair")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="thread counts to compare at, comma-separated")
    p.add_argument("--glibc-malloc-defaults", action="store_true",
                   help="do not tune glibc's malloc for PyTorch (see common.keep_freed_memory)")
    args = p.parse_args()
    tuned = False if args.glibc_malloc_defaults else common.keep_freed_memory()

    import pytorch_mppi
    import telic
    import torch

    thread_counts = [int(t) for t in args.threads.split(",")]
    obs = bench.observations(max(args.calls, args.analytic_calls))
    print(f"Pendulum-v1, {SAMPLES} samples x {HORIZON} steps, 1 iteration per plan, warm-started; "
          f"{args.warmup} warm-up calls, then planners called alternately on the same observations")
    print(f"python {platform.python_version()}, torch {torch.__version__}, pytorch_mppi "
          f"{getattr(pytorch_mppi, '__version__', '0.9.1')}, telic {telic.__version__}, "
          f"{platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; glibc malloc " + ("keeps freed memory (common.keep_freed_memory applied)"
                                                      if tuned else "defaults"))

    dyn = mlp_dynamics.load_dynamics(args.bundle)
    mppi_a = make_mppi(dyn, mlp_cost, 3, torch.float32)
    mppi_b = make_mppi(common.true_dynamics, common.true_running_cost, 2, torch.float64)

    def mlp_state(o):
        return torch.as_tensor(o, dtype=torch.float32)

    def true_state(o):
        o = torch.as_tensor(o, dtype=torch.float64)
        return torch.stack([torch.atan2(o[1], o[0]), o[2]])

    results = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        print(f"\n=== {threads} thread(s) each: torch.set_num_threads({threads}); Telic: {threads} ONNX Runtime "
              f"intra-op thread(s) in (a), planner threads = {threads} in (b)")
        # (a) the same MLP
        model = telic.WorldModel.load(args.bundle, threads=threads)
        rng = np.random.default_rng(1)
        z = obs[:64]
        u = rng.uniform(-2, 2, (len(z), 1))
        with torch.no_grad():
            diff = float(np.abs(dyn(torch.from_numpy(z).float(), torch.from_numpy(u).float()).numpy()
                                - model.predict(z, u)).max())
        params = sum(x.numel() for x in dyn.parameters())
        print(f"(a) the same MLP: {args.bundle} ({params} parameters), torch float32 vs Telic's ONNX Runtime: "
              f"max |diff| of predict {diff:.1e}")
        mppi_a.reset()
        ra = bench.interleaved(telic_pair(model, 1), torch_pair(mppi_a, mlp_state), obs[:args.calls], args.warmup)
        ratio_a = report("MLP dynamics", ra)

        # (b) the analytic pendulum, with Telic's default colored noise and
        # with white noise, which is what pytorch_mppi samples
        model_b = telic.WorldModel.analytic("pendulum")
        print("(b) the analytic pendulum: Telic WorldModel.analytic('pendulum') (Rust, float64) vs pytorch_mppi "
              "with its example's torch dynamics (float64)")
        rb = {}
        for noise, settings in NOISES.items():
            print(f"  Telic with {noise}:")
            mppi_b.reset()
            rb[noise] = bench.interleaved(telic_pair(model_b, threads, **settings), torch_pair(mppi_b, true_state),
                                          obs[:args.analytic_calls], args.warmup)
            report(f"analytic dynamics, {noise}", rb[noise])
        results.append((threads, ra, ratio_a, rb))

    torch.set_num_threads(thread_counts[0])
    model = telic.WorldModel.load(args.bundle, threads=thread_counts[0])
    model_b = telic.WorldModel.analytic("pendulum")
    # Where the time goes: not part of the comparison above; each part is
    # measured call by call in turn, so that they share the machine's load.
    n_a = max(10, args.calls // 2)
    print(f"\nwhere the time goes, at {thread_counts[0]} thread(s) (medians over {n_a} (a) and "
          f"{args.analytic_calls // 2} (b) rounds after the comparison, the parts measured in turn; "
          "pytorch_mppi's dynamics and running_cost timed by wrappers):")
    run_ort, run_torch = network_floor(args.bundle, dyn, thread_counts[0])
    _, telic_a = telic_pair(model)
    plan_a, ort_s, torch_s, (tot, d, c) = breakdown(
        [lambda o: telic_a(o)[1], timed(run_ort), timed(run_torch), Instrumented(mppi_a, mlp_state)],
        obs[:n_a], 2)
    print(f"  (a) the network alone, 30 x (predict + readout) on 1000 rows: ONNX Runtime {ort_s[0] * 1e3:.1f} ms "
          f"(from Python), torch {torch_s[0] * 1e3:.1f} ms: torch / ONNX Runtime = {torch_s[0] / ort_s[0]:.2f}")
    print(f"      telic plan inside Rust {plan_a[0] * 1e3:.1f} ms: the network {ort_s[0] / plan_a[0]:.0%} of it, "
          f"the rest (sampling, costs, float64<->float32) {(plan_a[0] - ort_s[0]) * 1e3:.1f} ms")
    print(f"      pytorch_mppi command {tot * 1e3:.1f} ms = dynamics {d * 1e3:.1f} + running_cost {c * 1e3:.1f} "
          f"+ the rest {(tot - d - c) * 1e3:.1f}")
    _, telic_b = telic_pair(model_b, thread_counts[0])
    plan_b, (tot, d, c) = breakdown([lambda o: telic_b(o), Instrumented(mppi_b, true_state)],
                                    obs[:args.analytic_calls // 2], 5)
    print(f"  (b) telic plan {plan_b[0] * 1e3:.2f} ms, of which {plan_b[1] * 1e3:.2f} ms inside Rust")
    print(f"      pytorch_mppi command {tot * 1e3:.2f} ms = dynamics {d * 1e3:.2f} + running_cost {c * 1e3:.2f} "
          f"+ the rest {(tot - d - c) * 1e3:.2f}")

    print("\nsummary (medians, one run):")
    for threads, ra, ratio_a, rb in results:
        print(f"  {threads} thread(s) each:")
        print(f"    (a) same 3x256 tanh MLP:  telic {np.median(ra['telic']) * 1e3:7.2f} ms, pytorch_mppi "
              f"{np.median(ra['torch']) * 1e3:7.2f} ms, ratio {ratio_a:5.2f}  (target >= 2)")
        for noise, r in rb.items():
            t, p = np.median(r["telic"]), np.median(r["torch"])
            print(f"    (b) analytic pendulum, Telic with {noise + ':':28s} telic {t * 1e3:5.2f} ms, "
                  f"pytorch_mppi {p * 1e3:5.2f} ms, ratio {p / t:5.2f}  (target >= 10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
