"""Collect Pendulum-v1 transitions into a Telic data set and train a world model on them.

    python3 examples/pendulum/collect_and_train.py            # data/pendulum, then models/pendulum
    python3 examples/pendulum/collect_and_train.py --collect-only

Pendulum-v1 is gymnasium's, not Telic's: this is the path for any environment.
Exploration knows nothing of the task: every episode starts from gymnasium's
own random reset (θ uniform on the circle; θ̇ uniform in ±1 rad/s, or ±6 rad/s
for half of the episodes, through the reset's ``options``) and applies
colored-noise torques (1/f^β noise, β and amplitude drawn per episode, so
some episodes are white and jittery, others slow and pumping), clipped into
[−2, 2]. ``telic.dataset.Recorder`` writes the transitions in the format
``python -m telic.train`` reads; the readouts are the observation plus
``angle`` = |θ|, so the objective can be the environment's own cost.
Everything is seeded: the same command writes the same data and bundle.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from telic.dataset import Recorder  # noqa: E402

#: Trainer settings for this small system (3 observations, 1 action): a
#: narrower network than the default keeps training under 3 minutes on one
#: thread and planning cheap (every sample × horizon step runs `predict`).
TRAIN_ARGS = ["--epochs", "30", "--latent-dim", "16", "--hidden", "128", "--layers", "2",
              "--readout-hidden", "64", "--readout-layers", "2", "--horizon", "8", "--probe-epochs", "20",
              "--quantile-horizon", "30", "--threads", "1"]


def collect(episodes: int, steps: int, seed: int, out: str) -> Recorder:
    import gymnasium as gym

    env = gym.make(common.ENV_ID)
    rng = np.random.default_rng(seed)
    policy = {"kind": "colored_noise", "beta": [0.0, 2.0], "scale": [0.3, 1.5],
              "reset_thetadot": [1.0, 6.0], "steps": steps,
              "description": "gymnasium reset, θ̇ range 1 or 6 rad/s; torque 2·clip(scale·ε_t, −1, 1), "
                             "ε colored 1/f^β noise, β and scale uniform per episode"}
    rec = Recorder(common.OBSERVATIONS, common.ACTIONS, common.READOUTS,
                   action_lower=common.ACTION_LOWER, action_upper=common.ACTION_UPPER, dt=common.DT,
                   readout_fn=common.readouts_of, scene="pendulum", seed=seed, policy=policy)
    for episode in range(episodes):
        beta = rng.uniform(0.0, 2.0)
        scale = rng.uniform(0.3, 1.5)
        y_init = 6.0 if episode % 2 else 1.0
        obs, _ = env.reset(seed=int(seed * 100_000 + episode), options={"x_init": math.pi, "y_init": y_init})
        torque = 2.0 * np.clip(scale * common.colored_noise(rng, beta, steps), -1.0, 1.0)
        for t in range(steps):
            u = np.array([torque[t]], np.float32)
            next_obs, _, terminated, truncated, _ = env.step(u)
            rec.add(obs, u, next_obs, done=terminated or truncated or t + 1 == steps)
            obs = next_obs
            if terminated or truncated:
                break
    env.close()
    rec.save(out)
    return rec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=400)
    p.add_argument("--steps", type=int, default=100, help="steps per episode (Pendulum-v1 stops at 200)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", default=common.DATA)
    p.add_argument("--out", default=common.BUNDLE)
    p.add_argument("--collect-only", action="store_true")
    p.add_argument("--train-only", action="store_true", help="train on an existing --data folder")
    args, extra = p.parse_known_args()
    if not args.train_only:
        t0 = time.perf_counter()
        rec = collect(args.episodes, args.steps, args.seed, args.data)
        print(f"collected {len(rec)} transitions in {rec.episodes} episodes into {args.data} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.collect_only:
        return 0
    data, out = (os.path.relpath(os.path.abspath(x), common.ROOT) for x in (args.data, args.out))
    cmd = [sys.executable, "-m", "telic.train", "--data", data, "--out", out,
           "--name", "pendulum_jepa", *TRAIN_ARGS, *extra]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(common.ROOT, "bindings", "python"),
                                                      env.get("PYTHONPATH")]))
    print("$ cd", common.ROOT, "&&", "PYTHONPATH=bindings/python python3", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, env=env, cwd=common.ROOT)
    print(f"training took {time.perf_counter() - t0:.0f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
