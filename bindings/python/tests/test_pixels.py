"""Pixel observations from Python (issue 17): what a planner decoded from an
observation (``Plan.decoded``) and the observation modes of headless runs."""

from __future__ import annotations

import numpy as np
import pytest

import telic
from telic.errors import ConfigError


def test_bad_observation_modes_are_value_errors_naming_the_modes():
    with pytest.raises(ValueError, match=r"state, pixels or pixels\+proprio") as e:
        telic.run("push", 1, obs="video")
    assert isinstance(e.value, ConfigError)
    with pytest.raises(TypeError):
        telic.run("push", 1, obz="pixels")


def test_a_plan_carries_what_the_model_decoded_from_the_observation():
    model = telic.WorldModel.load("models/push")
    env = telic.make("push", seed=4)
    obs, _ = env.reset()
    planner = env.unwrapped.planner(model, {"samples": 16, "iterations": 1})
    plan = planner.plan(obs)
    np.testing.assert_allclose(plan.decoded, model.readout(model.encode(obs)), rtol=0, atol=1e-9)
    assert plan.decoded.shape == (len(planner.readout_names),)
    truth = env.unwrapped.state()["truth"]
    box_x = plan.decoded[planner.readout_names.index("box.x")]
    assert box_x == pytest.approx(truth["box.x"], abs=0.05), "the learned model sees the box about right"
