"""Issue 15, "sizes without limits", from Python: dict configs and
``telic.run`` go through the same limits as scenario files and the ``telic``
program, and a size above its limit is a ``ConfigError`` naming the key,
the value and the limit (a planner with 10⁸ samples tried to allocate
gigabytes on 311fd4f)."""

from __future__ import annotations

import pytest

import telic
from telic.errors import ConfigError

GOAL = {
    "terms": [
        {"name": "goal", "residual": {"kind": "readout", "readouts": ["pos.x", "pos.y"], "target": [1.0, 0.0]},
         "weight": 1.0},
    ],
}


@pytest.mark.parametrize(
    "config, match",
    [
        ({"samples": 100_000_000}, r"planner\.samples = 100000000 is above its limit of 1048576"),
        ({"horizon": 10_000_000}, r"planner\.horizon = 10000000 is above its limit of 10000"),
        ({"iterations": 1_000_000_000}, r"planner\.iterations = 1000000000 is above its limit of 10000"),
        ({"samples": 1_000_000, "horizon": 1000}, r"model steps per plan"),
        ({"samples": 1 << 20, "horizon": 1000, "iterations": 1}, r"rollout workspace"),
    ],
)
def test_planner_sizes_above_their_limits_are_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        telic.Planner(telic.WorldModel.analytic("point_mass"), GOAL, config)


def test_run_jobs_and_episodes_above_their_limits_are_config_errors():
    with pytest.raises(ConfigError, match=r"jobs = 3000 is above its limit of 256"):
        telic.run("navigate", episodes=1, model="analytic", jobs=3000)
    with pytest.raises(ConfigError, match=r"episodes = 1000000000 is above its limit of 1000000"):
        telic.run("navigate", episodes=1_000_000_000, model="analytic")
