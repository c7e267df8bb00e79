"""Swing Pendulum-v1 up with Telic planning through a learned world model.

    python3 examples/pendulum/swing_up.py                  # 20 episodes, seeds 0..19, every controller
    python3 examples/pendulum/swing_up.py --controllers telic --episodes 3

Controllers, each for the same episodes (``env.reset(seed=i)``, 200 steps):

- ``telic``: ``telic.Planner`` (MPPI) through the bundle ``models/pendulum``,
  objective = the environment's cost on the bundle's readouts;
- ``mppi-learned``: pytorch_mppi 0.9.1 through the *same* network (the
  bundle's ONNX graphs run as PyTorch code), planning in its latent space
  with the same cost on its readouts, the same samples × horizon;
- ``mppi-true``: pytorch_mppi with the true pendulum dynamics and the
  settings of its own pendulum example (100 samples × 15 steps, σ² = 10,
  λ = 1), the reference a learned model is measured against.

Prints the return (sum of rewards) of each episode and mean ± std per
controller; Pendulum-v1 returns: about −1200 for random torques, −150 to −200
for a good swing-up controller over random initial states.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SAMPLES, HORIZON = 1000, 30
#: Telic's MPPI: noise 0.5 of the half range (σ = 1 N·m) with smooth
#: (1/f²) noise across the horizon, one sampling iteration per control step.
TELIC_CONFIG = {"kind": "mppi", "samples": SAMPLES, "horizon": HORIZON, "iterations": 1,
                "noise": 0.5, "colored_noise_beta": 2.0, "temperature": 0.1, "seed": 0}
#: pytorch_mppi through the learned network: white noise of the same σ.
MPPI_LEARNED = {"num_samples": SAMPLES, "horizon": HORIZON, "noise_variance": 1.0, "lambda_": 1.0}
#: pytorch_mppi's own pendulum example (tests/pendulum.py).
MPPI_TRUE = {"num_samples": 100, "horizon": 15, "noise_variance": 10.0, "lambda_": 1.0}


class TelicController:
    name = "telic"

    def __init__(self, bundle: str, config: dict):
        import telic

        self.model = telic.WorldModel.load(bundle)
        self.planner = telic.Planner(self.model, common.OBJECTIVE, config)
        self.config = config

    def reset(self, seed: int) -> None:
        self.planner.reseed(seed)  # a fresh warm start and noise seed per episode

    def act(self, env, obs) -> np.ndarray:
        return np.asarray(self.planner.plan(np.asarray(obs, np.float64)).action, np.float32)


def learned_mppi(bundle: str, settings: dict, dtype=None):
    """pytorch_mppi planning in the bundle's latent space: dynamics = predict,
    running cost = the environment's cost on the readouts of the predicted
    latent and the action (as Telic's objective)."""
    import torch
    from pytorch_mppi import MPPI

    from telic.torch_model import TorchBundle

    net = TorchBundle(bundle, dtype=dtype or torch.float32)

    def dynamics(z, u):
        return net.predict(z, u)

    def running_cost(z, u):
        y = net.readout(z)  # cos, sin, thetadot, angle
        return y[:, 3] ** 2 + 0.1 * y[:, 2] ** 2 + 0.001 * u[:, 0] ** 2

    s = dict(settings)
    sigma = torch.tensor(s.pop("noise_variance"), dtype=net.dtype)
    mppi = MPPI(dynamics, running_cost, net.manifest["latent_dim"], sigma, device="cpu",
                u_min=torch.tensor([-2.0], dtype=net.dtype), u_max=torch.tensor([2.0], dtype=net.dtype), **s)
    return mppi, net


class _PytorchMppiController:
    """What both pytorch_mppi controllers share: a fresh seed and warm start
    per episode."""

    mppi = None

    def reset(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.mppi.reset()


class LearnedMppiController(_PytorchMppiController):
    name = "mppi-learned"

    def __init__(self, bundle: str, settings: dict):
        self.mppi, self.net = learned_mppi(bundle, settings)
        self.settings = settings

    def act(self, env, obs) -> np.ndarray:
        import torch

        with torch.no_grad():
            z = self.net.encode(torch.as_tensor(np.asarray(obs, np.float32)).reshape(1, -1))[0]
            return self.mppi.command(z).numpy().astype(np.float32).reshape(1)


class TrueMppiController(_PytorchMppiController):
    name = "mppi-true"

    def __init__(self, settings: dict):
        import torch
        from pytorch_mppi import MPPI

        s = dict(settings)
        sigma = torch.tensor(s.pop("noise_variance"), dtype=torch.float64)
        self.mppi = MPPI(common.true_dynamics, common.true_running_cost, 2, sigma, device="cpu",
                         u_min=torch.tensor([-2.0], dtype=torch.float64),
                         u_max=torch.tensor([2.0], dtype=torch.float64), **s)
        self.settings = settings

    def act(self, env, obs) -> np.ndarray:
        import torch

        with torch.no_grad():
            state = torch.as_tensor(common.state_of(env))
            return self.mppi.command(state).numpy().astype(np.float32).reshape(1)


def run(controller, seeds, steps: int = 200, log=print) -> dict:
    import gymnasium as gym

    env = gym.make(common.ENV_ID)
    returns, plan_times = [], []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        controller.reset(int(seed))
        total = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            u = controller.act(env, obs)
            plan_times.append(time.perf_counter() - t0)
            obs, reward, terminated, truncated, _ = env.step(np.clip(u, -2.0, 2.0))
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
        log(f"  {controller.name:13s} seed {seed:2d}: return {total:8.1f}  "
            f"final |θ| {abs(common.angle_normalize(common.state_of(env)[0])):.3f} rad")
    env.close()
    r = np.asarray(returns)
    return {"controller": controller.name, "returns": returns, "mean": float(r.mean()), "std": float(r.std()),
            "ms_per_step": 1e3 * float(np.mean(plan_times))}


def main() -> int:
    import torch

    torch.set_num_threads(1)
    common.keep_freed_memory()  # PyTorch's best speed (see there); returns do not depend on it
    p = argparse.ArgumentParser(description="Pendulum-v1 swing-up: Telic vs pytorch_mppi")
    p.add_argument("--bundle", default=common.BUNDLE)
    p.add_argument("--episodes", type=int, default=20, help="seeds 0..N-1")
    p.add_argument("--controllers", default="telic,mppi-learned,mppi-true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    seeds = list(range(args.episodes))
    results = []
    for name in [c.strip() for c in args.controllers.split(",") if c.strip()]:
        if name == "telic":
            ctl = TelicController(args.bundle, TELIC_CONFIG)
            desc = json.dumps(TELIC_CONFIG)
        elif name == "mppi-learned":
            ctl = LearnedMppiController(args.bundle, MPPI_LEARNED)
            desc = json.dumps(MPPI_LEARNED)
        elif name == "mppi-true":
            ctl = TrueMppiController(MPPI_TRUE)
            desc = json.dumps(MPPI_TRUE)
        else:
            p.error(f"unknown controller {name!r}")
        print(f"{name}: {desc}", flush=True)
        res = run(ctl, seeds, log=lambda *a: print(*a, flush=True))
        res["settings"] = desc
        results.append(res)
    print(f"\nPendulum-v1, {len(seeds)} episodes (seeds 0..{len(seeds) - 1}), 200 steps each:")
    for r in results:
        print(f"  {r['controller']:13s} return {r['mean']:8.1f} ± {r['std']:6.1f}   "
              f"({r['ms_per_step']:.1f} ms per control step)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
