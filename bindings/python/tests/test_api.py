"""The Python API of the engine: models, planners, plans, controllers, and
what happens with bad input."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import telic
from telic.errors import ConfigError, InputError, ModelError, TelicError

ROOT = Path(__file__).resolve().parents[3]

GOAL = {
    "terms": [
        {"name": "goal", "residual": {"kind": "readout", "readouts": ["pos.x", "pos.y"], "target": [1.0, 0.0]},
         "weight": 1.0},
        {"name": "effort", "residual": {"kind": "action"}, "weight": 0.01},
    ],
    "guardrails": [
        {"name": "wall", "kind": "readout_limit", "readouts": ["pos.y"], "lower": [-0.5], "upper": [0.5]},
    ],
}


def point_mass_planner(**config) -> telic.Planner:
    return telic.Planner(telic.WorldModel.analytic("point_mass"), GOAL, {"samples": 128, "seed": 7, **config})


def test_a_plan_is_numpy_arrays_with_names():
    planner = point_mass_planner(horizon=15)
    plan = planner.plan(np.zeros(4))
    assert plan.status == "completed" and plan.feasible
    assert plan.action.shape == (2,) and plan.action.dtype == np.float64
    assert plan.actions.shape == (15, 2)
    assert plan.readouts.shape == (15, len(planner.readout_names))
    np.testing.assert_array_equal(plan.action, plan.actions[0])
    assert planner.term_names == ["goal", "effort"]
    assert planner.guardrail_names == ["wall"]
    assert plan.term_costs.shape == (2,) and plan.margins.shape == (1,)
    assert plan.term_costs.sum() == pytest.approx(plan.cost, rel=1e-9)
    assert plan.margins[0] > 0 and plan.violation == 0
    assert plan.action[0] > 0, "accelerate towards x = 1"
    assert 0 < plan.elapsed < 10
    assert planner.config["samples"] == 128 and planner.config["horizon"] == 15


def test_the_plan_is_what_the_model_imagines():
    model = telic.WorldModel.analytic("point_mass")
    planner = telic.Planner(model, GOAL, {"samples": 64})
    obs = np.array([0.1, -0.2, 0.3, 0.0])
    plan = planner.plan(obs)
    np.testing.assert_allclose(model.rollout(obs, plan.actions), plan.readouts, rtol=0, atol=1e-12)


def test_same_seed_same_plan_and_converted_inputs_are_read_by_value():
    obs = np.array([0.25, -0.5, 0.0, 1.0])
    reference = point_mass_planner().plan(obs).actions
    wide = np.zeros((4, 3))
    wide[:, 1] = obs
    for variant in (obs.tolist(), obs.astype(np.float32).astype(np.float64), wide[:, 1], obs[::-1][::-1],
                    np.asfortranarray(obs)):
        assert not np.shares_memory(variant, reference) if isinstance(variant, np.ndarray) else True
        np.testing.assert_array_equal(point_mass_planner().plan(variant).actions, reference)
    # float32 and integer arrays are converted, not misread
    ints = np.array([1, 0, 0, 0], dtype=np.int32)
    np.testing.assert_array_equal(point_mass_planner().plan(ints).actions,
                                  point_mass_planner().plan(np.array([1.0, 0, 0, 0])).actions)
    assert not np.array_equal(point_mass_planner(seed=8).plan(obs).actions, reference)


def test_warm_start_reset_and_targets():
    planner = point_mass_planner()
    first = planner.plan(np.zeros(4)).actions
    planner.reseed(7)
    np.testing.assert_array_equal(planner.plan(np.zeros(4)).actions, first)
    planner.set_target("goal", [-1.0, 0.0])
    np.testing.assert_array_equal(planner.target("goal"), [-1.0, 0.0])
    planner.reset()
    assert planner.plan(np.zeros(4)).action[0] < 0, "now towards x = -1"
    with pytest.raises(ConfigError, match="no cost term 'nope'"):
        planner.target("nope")
    with pytest.raises(TelicError):
        planner.set_target("goal", [1.0, 2.0, 3.0])


def test_latent_goals_from_an_observation():
    spec = {"terms": [{"name": "goal", "residual": {"kind": "latent"}, "weight": 1.0}]}
    planner = telic.Planner(telic.WorldModel.analytic("point_mass"), spec, {"samples": 64})
    with pytest.raises(TelicError, match="goal"):
        planner.plan(np.zeros(4))
    planner.set_goal_observation("goal", [1.0, 0.0, 0.0, 0.0])
    assert planner.plan(np.zeros(4)).action[0] > 0
    with pytest.raises(InputError):
        planner.set_goal_observation("goal", [np.nan, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "obs, match",
    [
        (np.zeros(3), r"must have shape \(4,\) or \(1, 4\) .*got \[3\]"),
        (np.zeros((2, 4)), r"must have shape \(4,\) or \(1, 4\) .*got \[2, 4\]"),
        (np.zeros((4, 1)), r"must have shape \(4,\) or \(1, 4\) .*got \[4, 1\]"),
        ([0.0, np.nan, 0.0, 0.0], "non-finite"),
        ([0.0, np.inf, 0.0, 0.0], "non-finite"),
        (np.zeros(4, dtype=np.complex128), "real numbers"),
        (np.zeros(4, dtype=bool), "real numbers"),
        (["a", "b", "c", "d"], "real numbers"),
        ([[0.0, 1.0], [0.0]], "array of numbers"),
        (None, "real numbers"),
    ],
)
def test_bad_observations_are_input_errors_and_lose_nothing(obs, match):
    planner = point_mass_planner()
    before = planner.plan(np.zeros(4)).actions
    with pytest.raises(InputError, match=match) as err:
        planner.plan(obs)
    assert isinstance(err.value, ValueError) and isinstance(err.value, TelicError)
    # the planner is intact: the next plan continues from the same warm start
    again = point_mass_planner()
    again.plan(np.zeros(4))
    np.testing.assert_array_equal(planner.plan(np.zeros(4)).actions, again.plan(np.zeros(4)).actions)
    assert before.shape == (20, 2)


@pytest.mark.parametrize(
    "objective, config, match",
    [
        ({"terms": [{"nme": "goal"}]}, None, "unknown field `nme`"),
        ({"terms": [{"name": "g", "residual": {"kind": "readout", "readouts": ["tool.x"]}}]}, None, "tool.x"),
        ({"terms": [{"name": "g", "residual": {"kind": "warp"}}]}, None, "warp"),
        (GOAL, {"samples": 0}, "samples"),
        (GOAL, {"temperature": float("nan")}, "nan"),
        (GOAL, {"kind": "annealing"}, "annealing"),
        (GOAL, {"sample": 10}, "unknown field `sample`"),
        (GOAL, {"threads": 0}, "planner.threads"),
        ("terms", None, "objective"),
        ({"terms": [{"name": "g", "weight": object()}]}, None, "plain data"),
    ],
)
def test_impossible_objectives_and_configs_are_config_errors(objective, config, match):
    with pytest.raises(ConfigError, match=match):
        telic.Planner(telic.WorldModel.analytic("point_mass"), objective, config)


def test_models_batched_and_bad_model_files(tmp_path):
    model = telic.WorldModel.analytic("point_mass", dims=3, dt=0.05)
    assert model.observations[:3] == ["pos.x", "pos.y", "pos.z"] and model.dt == 0.05
    obs = np.random.default_rng(0).normal(size=(5, 6))
    z = model.encode(obs)
    assert z.shape == (5, model.latent_dim)
    assert model.encode(obs[0]).shape == (model.latent_dim,)
    z2 = model.predict(z, np.ones((5, 3)))
    assert z2.shape == z.shape and not np.allclose(z2, z)
    assert model.readout(z2).shape == (5, len(model.readouts))
    with pytest.raises(InputError, match="one action per latent"):
        model.predict(z, np.ones((4, 3)))
    with pytest.raises(ConfigError, match="unknown field `mass`"):
        telic.WorldModel.analytic("point_mass", mass=2.0)
    with pytest.raises(ConfigError, match="unknown analytic model 'warp'"):
        telic.WorldModel.analytic("warp")
    with pytest.raises(ModelError):
        telic.WorldModel.analytic("point_mass", dt=-1.0)
    with pytest.raises(ModelError, match="not a folder"):
        telic.WorldModel.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.toml").write_text("this is [not toml")
    with pytest.raises(ModelError):
        telic.WorldModel.load(tmp_path / "bad")


def test_rollout_threads_leave_plans_unchanged():
    obs = np.array([0.25, -0.1, 0.0, 0.5])
    one, two = point_mass_planner(samples=300), point_mass_planner(samples=300, threads=2)
    for _ in range(3):
        a, b = one.plan(obs), two.plan(obs)
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.cost == b.cost


def test_learned_bundles_take_onnx_runtime_threads():
    obs = np.zeros((64, 6))
    one = telic.WorldModel.load(ROOT / "models" / "reach")
    two = telic.WorldModel.load(ROOT / "models" / "reach", threads=2)
    assert len(one.observations) == 6
    np.testing.assert_allclose(two.encode(obs), one.encode(obs), rtol=0, atol=1e-6)
    with pytest.raises(OverflowError):
        telic.WorldModel.load(ROOT / "models" / "reach", threads=-1)


def test_learned_bundles_and_scene_models_load():
    learned = telic.WorldModel.load(ROOT / "models" / "reach")
    analytic = telic.WorldModel.analytic("reach")
    assert learned.observations == analytic.observations and learned.actions == analytic.actions
    obs = np.zeros(len(learned.observations))
    y = learned.readout(learned.encode(obs))
    assert y.shape == (len(learned.readouts),) and np.all(np.isfinite(y))


def test_planning_releases_the_interpreter_lock():
    planner = point_mass_planner(samples=4096, horizon=60, iterations=4)
    planner.plan(np.zeros(4))  # warm up
    done = threading.Event()
    elapsed = []

    def plan():
        t0 = time.perf_counter()
        for _ in range(3):
            planner.plan(np.zeros(4))
        elapsed.append(time.perf_counter() - t0)
        done.set()

    ticks = 0
    thread = threading.Thread(target=plan)
    thread.start()
    while not done.is_set():
        ticks += 1
    thread.join()
    # Holding the lock through a plan would leave this thread only the
    # moments between plans; released, it counts all along.
    assert elapsed[0] > 0.05, "the plans must take long enough to measure"
    assert ticks > 20_000 * elapsed[0], (ticks, elapsed)


def test_a_controller_plans_in_the_background():
    planner = point_mass_planner()
    controller = telic.Controller(planner, max_plan_age_ms=1000)
    action, source = controller.action()
    assert source == "no_plan_yet"
    np.testing.assert_array_equal(action, [0.0, 0.0])
    with pytest.raises(ConfigError, match="handed to a Controller"):
        planner.plan(np.zeros(4))
    with pytest.raises(InputError):
        controller.observe([0.0, np.nan, 0.0, 0.0])
    controller.observe(np.zeros(4))
    deadline = time.monotonic() + 10
    while source != "plan" and time.monotonic() < deadline:
        time.sleep(0.002)
        action, source = controller.action()
    assert source == "plan"
    np.testing.assert_array_equal(action, point_mass_planner().plan(np.zeros(4)).action)
    m = controller.metrics()
    assert m["plans_published"] >= 1 and m["planner_alive"]
    assert m["fallback_reads"]["no_plan_yet"] >= 1
    assert controller.predicted_readouts().shape == (20, 5)
    controller.restart(point_mass_planner(seed=9))
    assert controller.metrics()["planner_restarts"] == 1
    with pytest.raises(ConfigError, match="max_plan_age_ms"):
        telic.Controller(point_mass_planner(), max_plan_age_ms=-1)
