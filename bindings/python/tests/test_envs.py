"""Telic scenes from Python: gymnasium environments, headless runs and data
collection, and the same episodes from Python as from the `telic` program."""

from __future__ import annotations

import json
import subprocess

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import telic
from telic.errors import ConfigError, InputError, SimError

from conftest import ROOT, telic_cmd


# Box spaces of physical units (radians, m/s) and unbounded observations are
# what these scenes are; gymnasium's advice to normalise them is not an error.
@pytest.mark.filterwarnings("ignore:.*Box.*:UserWarning")
@pytest.mark.parametrize("scene", ["reach", "navigate", "push"])
def test_every_scene_passes_gymnasiums_checks(scene):
    env = telic.make(scene, seed=3)
    assert env.spec is not None and env.spec.id == f"telic/{scene.capitalize()}-v0"
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=11)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"seed", "success", "margins", "goal_error", "targets"}
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and not terminated and not truncated
    assert {"violated", "worst_margin", "cost"} <= set(info)
    assert reward == -info["cost"]


def test_seeded_resets_repeat_and_unseeded_ones_differ():
    env = gymnasium.make("telic/Navigate-v0")
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    c, _ = env.reset()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    first, _ = telic.make("navigate", seed=5).reset()
    np.testing.assert_array_equal(first, a)


def test_an_episode_ends_and_bad_actions_are_refused():
    env = telic.envs.TelicEnv("navigate")
    obs, _ = env.reset(seed=2)
    with pytest.raises(InputError, match=r"action must have shape \(2,\) or \(1, 2\)"):
        env.step(np.zeros(3))
    with pytest.raises(SimError, match="non-finite"):
        env.step(np.array([np.nan, 0.0]))
    steps, truncated, terminated = 0, False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, _ = env.step(np.zeros(2))
        steps += 1
    assert truncated and not terminated
    assert steps == round(env.scene.max_time / env.dt)
    with pytest.raises(SimError, match="ended"):
        env.step(np.zeros(2))
    with pytest.raises(ConfigError, match="no such scene"):
        telic.envs.TelicEnv("warp")


def test_the_episode_planner_reaches_the_goal_safely():
    env = telic.make("navigate", seed=4)
    obs, _ = env.reset()
    planner = env.unwrapped.planner("analytic")
    assert "clearance" in planner.guardrail_names
    terminated = truncated = False
    worst = np.inf
    while not (terminated or truncated):
        plan = planner.plan(obs)
        obs, _, terminated, truncated, info = env.step(plan.action)
        worst = min(worst, info["worst_margin"])
    assert terminated, "navigate with the analytic model succeeds"
    assert worst >= 0, "and keeps every guardrail in the true physics"


def drive(scene: str, seed: int, model: str, config: dict) -> tuple[float, int, bool]:
    """One episode through the Python scene API, as `telic run` plays it."""
    env = telic.Scene(scene)
    obs = env.reset(seed)
    planner = env.planner(model, config)
    cost, steps = 0.0, 0
    while True:
        obs, c, success, truncated, _, _ = env.step(planner.plan(obs).action)
        cost += c
        steps += 1
        if success or truncated:
            return cost, steps, success


@pytest.mark.parametrize(
    "scene, model, args, config",
    [
        ("navigate", "analytic", ["--episodes", "2"], {}),
        ("reach", "default", ["--episodes", "1", "--samples", "48"], {"samples": 48}),
    ],
)
def test_python_episodes_are_the_rust_programs_episodes(tmp_path, scene, model, args, config):
    out = tmp_path / "run.json"
    cmd = telic_cmd() + ["run", scene, "--model", model, "--seed", "9", "--jobs", "1", "--quiet",
                         "--json", str(out), *args]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1200, capture_output=True)
    rust = json.loads(out.read_text())["episodes"]
    for r in rust:
        cost, steps, success = drive(scene, r["seed"], model, config)
        assert (steps, success) == (r["control_steps"], r["success"])
        assert cost == r["task_cost"], "bit-identical closed loop"
    via_run = telic.run(scene, len(rust), 9, model=model, planner=config or None)
    for a, b in zip(via_run["episodes"], rust):
        a.pop("plan_latency_ms"), b.pop("plan_latency_ms")
        assert a == b


def test_run_summarises_and_rejects_bad_settings():
    out = telic.run("navigate", episodes=2, seed=1, model="analytic", max_time=2.0, jobs=2)
    assert out["scenario"] == "navigate" and out["model"] == "analytic"
    assert len(out["episodes"]) == 2
    assert out["summary"]["episodes"] == 2
    assert [e["seed"] for e in out["episodes"]] == [telic.episode_seed(1, i) for i in range(2)]
    with pytest.raises(ConfigError, match="unknown field `smaples`"):
        telic.run("navigate", 1, planner={"smaples": 3})
    with pytest.raises(ConfigError, match="max_time"):
        telic.run("navigate", 1, max_time=-1.0)
    with pytest.raises(ConfigError, match="episodes"):
        telic.run("navigate", 0)
    with pytest.raises(ConfigError, match="no such scene"):
        telic.run("warp", 1)


def test_collect_writes_a_training_data_set(tmp_path):
    from telic.train import load_dataset

    meta = telic.collect("navigate", tmp_path / "data", episodes=3, seed=2, steps_per_episode=20,
                         planner_fraction=0.0, jobs=1)
    assert meta["episodes"] == 3 and meta["transitions"] == 60
    data = load_dataset(str(tmp_path / "data"))
    assert data.obs.shape == (60, len(meta["observations"]))
    with pytest.raises(ConfigError, match="planner_fraction"):
        telic.collect("navigate", tmp_path / "x", episodes=1, planner_fraction=2.0)
    with pytest.raises(ConfigError, match="unknown field"):
        telic.collect("navigate", tmp_path / "y", episodes=1, colour="red")


def test_runs_and_collections_take_a_perturbation(tmp_path):
    from telic.train import load_dataset

    nominal = telic.run("navigate", 2, 3, model="analytic", max_time=1.0)
    mild = telic.run("navigate", 2, 3, model="analytic", max_time=1.0, perturb="mild")
    delayed = telic.run("navigate", 2, 3, model="analytic", max_time=1.0,
                        perturb={"level": "moderate", "delay": 2})
    assert all("perturbation" not in e for e in nominal["episodes"])
    draws = [e["perturbation"] for e in delayed["episodes"]]
    assert all(d["delay"] in (0, 1, 2) and len(d["actuator"]) == 2 for d in draws), draws
    # The shipped planner identifies the delay; told it may be 2, it finds
    # each world's.
    identified = telic.run("navigate", 3, 3, model="analytic", max_time=1.0,
                           planner={"delay_steps": 2}, perturb={"delay": 2})
    found = [(e["perturbation"]["delay"], e["delay_identified"]) for e in identified["episodes"]]
    assert all(drawn == seen for drawn, seen in found), found
    assert {drawn for drawn, _ in found} != {0}, found
    costs = lambda out: [e["task_cost"] for e in out["episodes"]]  # noqa: E731
    assert costs(mild) != costs(nominal)
    with pytest.raises(ConfigError, match="unknown perturbation level"):
        telic.run("navigate", 1, perturb="hard")
    with pytest.raises(ConfigError, match="unknown field `wind`"):
        telic.run("navigate", 1, perturb={"wind": 1.0})
    with pytest.raises(ConfigError, match="perturb.dropout"):
        telic.run("navigate", 1, perturb={"dropout": 1.5})

    # The gymnasium environment: the same worlds, stepped by the caller.
    env = telic.make("navigate", seed=3, perturb={"obs_noise": 0.05})
    exact_env = telic.make("navigate", seed=3)
    o1, _ = env.reset()
    o2, _ = exact_env.reset()
    assert o1.shape == o2.shape and (o1 != o2).all()
    with pytest.raises(ConfigError, match="perturb.actuator"):
        telic.make("navigate", perturb={"actuator": 2.0})

    kw = dict(episodes=2, seed=2, steps_per_episode=10, planner_fraction=0.0, jobs=1)
    telic.collect("navigate", tmp_path / "a", **kw)
    telic.collect("navigate", tmp_path / "b", perturb={"obs_noise": 0.1}, **kw)
    exact, noisy = (load_dataset(str(tmp_path / d)) for d in "ab")
    assert exact.obs.shape == noisy.obs.shape
    assert not (exact.obs == noisy.obs).any(), "every observation entry is noisy"


def test_scenarios_are_plain_data_the_planner_takes():
    spec = telic.scenario("navigate")
    assert spec["scene"]["kind"] == "navigate"
    model = telic.WorldModel.analytic("navigate")
    planner = telic.Planner(model, spec["objective"], spec["planner"])
    assert planner.term_names == [t["name"] for t in spec["objective"]["terms"]]
