"""Swing-up returns of Telic on the analytic pendulum with its default
colored sampling noise and with white noise (what pytorch_mppi samples), the
two settings ``bench_dynamics.py`` times in (b).

    python3 examples/pendulum/analytic_noise.py --episodes 20
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_dynamics  # noqa: E402
import common  # noqa: E402
import swing_up  # noqa: E402


class AnalyticTelic(swing_up.TelicController):
    def __init__(self, name: str, config: dict):
        import telic

        self.name = name
        self.model = telic.WorldModel.analytic("pendulum")
        self.planner = telic.Planner(self.model, common.OBJECTIVE, config)
        self.config = config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20, help="seeds 0..N-1")
    args = p.parse_args()
    print(f"Pendulum-v1, Telic MPPI on the analytic pendulum, {args.episodes} episodes of 200 steps:")
    for noise, settings in bench_dynamics.NOISES.items():
        ctl = AnalyticTelic(noise, dict(swing_up.TELIC_CONFIG, **settings))
        r = swing_up.run(ctl, range(args.episodes), log=lambda *a: None)
        print(f"  {noise:30s} return {r['mean']:8.1f} ± {r['std']:6.1f}   ({r['ms_per_step']:.2f} ms per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
