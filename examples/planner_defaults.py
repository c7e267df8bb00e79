"""Planner settings on two small tasks nobody tuned for: the measurement
behind the defaults of ``PlannerConfig`` (README, "Tuning for your own
environment").

    python3 examples/planner_defaults.py            # ~2 min on one core
    python3 examples/planner_defaults.py --episodes 5

Closed loop with the analytic model as the plant, 256 samples × 20 steps,
3 iterations, every other setting the default unless the row changes it:

- **point mass** (2-D, dt 0.1 s, |a| ≤ 2 m/s²) from rest at the origin to a
  goal at x ∈ [0.5, 1.5], y ∈ [−0.1, 0.1] (quadratic distance, weight 1),
  with an effort weight of 0.01 or 1, and no guardrail, a lane |y| ≤ 0.15,
  a speed limit of 0.5 m/s, or both. Reported: episodes within 5 cm of the
  goal at some step of 60, mean final distance, steps that found no feasible
  plan, mean feasible samples per plan;
- **pendulum** (gymnasium's Pendulum-v1 dynamics) swing-up from a random
  state, 200 steps, its own cost (``angle² + 0.1·thetadot² + e·torque²``)
  with e = 0.001 or 1. Reported: mean return and episodes ending within
  0.1 rad of upright.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import telic

SETTINGS = {
    "white, temperature 0.3 (default)": {},
    "white, temperature 0.1": {"temperature": 0.1},
    "smooth (β = 2), temperature 0.1": {"colored_noise_beta": 2.0, "temperature": 0.1},
    "smooth (β = 2), temperature 0.3": {"colored_noise_beta": 2.0},
    "iCEM, white": {"kind": "cem"},
    "iCEM, smooth (β = 2)": {"kind": "cem", "colored_noise_beta": 2.0},
}
BASE = {"samples": 256, "horizon": 20, "iterations": 3}


def point_mass_objective(goal, effort: float, guard: str) -> dict:
    guardrails = []
    if guard in ("lane", "both"):
        guardrails.append({"name": "lane", "kind": "readout_limit", "readouts": ["pos.y"],
                           "lower": [-0.15], "upper": [0.15]})
    if guard in ("speed", "both"):
        guardrails.append({"name": "speed", "kind": "speed", "readouts": ["vel.x", "vel.y"], "max": 0.5})
    return {"terms": [
        {"name": "goal", "residual": {"kind": "readout", "readouts": ["pos.x", "pos.y"], "target": list(goal)},
         "weight": 1.0},
        {"name": "effort", "residual": {"kind": "action"}, "weight": effort},
    ], "guardrails": guardrails}


def point_mass(config: dict, effort: float, guard: str, episodes: int, steps: int = 60) -> str:
    model = telic.WorldModel.analytic("point_mass")
    rng = np.random.default_rng(0)
    reached, finals, infeasible, feasible = 0, [], 0, []
    for episode in range(episodes):
        goal = np.array([rng.uniform(0.5, 1.5), rng.uniform(-0.1, 0.1)])
        planner = telic.Planner(model, point_mass_objective(goal, effort, guard), {**config, "seed": episode})
        x, hit = np.zeros(4), False
        for _ in range(steps):
            plan = planner.plan(x)
            infeasible += plan.status == "no_feasible_plan"
            feasible.append(plan.feasible_samples)
            x = model.predict(x, plan.action)
            hit = hit or np.linalg.norm(x[:2] - goal) < 0.05
        reached += hit
        finals.append(np.linalg.norm(x[:2] - goal))
    return (f"{reached:2d}/{episodes} reached, final {np.mean(finals):.3f} m, "
            f"{infeasible:3d} no-feasible steps, {np.mean(feasible):3.0f} feasible")


def pendulum(config: dict, effort: float, episodes: int, steps: int = 200) -> str:
    model = telic.WorldModel.analytic("pendulum")
    objective = {"terms": [
        {"name": "angle", "residual": {"kind": "readout", "readouts": ["angle"], "target": [0.0]}, "weight": 1.0},
        {"name": "spin", "residual": {"kind": "readout", "readouts": ["thetadot"], "target": [0.0]}, "weight": 0.1},
        {"name": "effort", "residual": {"kind": "action"}, "weight": effort},
    ]}
    rng = np.random.default_rng(0)
    returns, upright = [], 0
    for episode in range(episodes):
        planner = telic.Planner(model, objective, {**config, "seed": episode})
        theta, speed = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1)
        obs = np.array([np.cos(theta), np.sin(theta), speed])
        ret = 0.0
        for _ in range(steps):
            u = planner.plan(obs).action
            y = model.readout(model.encode(obs))  # cos, sin, thetadot, angle
            ret -= y[3] ** 2 + 0.1 * y[2] ** 2 + effort * float(u[0]) ** 2
            obs = model.rollout(obs, u.reshape(1, 1))[0][:3]
        returns.append(ret)
        upright += model.readout(model.encode(obs))[3] < 0.1
    return f"return {np.mean(returns):7.1f}, {upright:2d}/{episodes} upright"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    for name, change in SETTINGS.items():
        config = {**BASE, **change}
        t0 = time.perf_counter()
        print(f"{name}:")
        for effort in (0.01, 1.0):
            for guard in ("none", "lane", "speed", "both"):
                print(f"  point mass, effort {effort:<4}, {guard:5s}: {point_mass(config, effort, guard, args.episodes)}")
        for effort in (0.001, 1.0):
            print(f"  pendulum, effort {effort:<5}: {pendulum(config, effort, args.episodes)}")
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
