"""Issue 15, "bringing your own environment": what a newcomer ran into on an
external task, each a test that failed on 311fd4f.

- a single observation is ``(O,)`` or ``(1, O)`` everywhere (``Planner.plan``
  refused ``(1, O)`` that ``Recorder.add`` accepted), other shapes are refused
  naming the expected one;
- a normal feasible plan reports ``"completed"``, not ``"iteration_limit"``;
- ``Recorder`` records environments without a clock (``dt=None``), and the
  trainer asks for ``--dt`` when it writes the bundle;
- the trainer reports readout errors per readout, never averaged across units;
- the ONNX-graphs-as-torch helper ships as ``telic.torch_model``;
- the README's API list names every method of the compiled classes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import telic
from conftest import ROOT
from telic.dataset import Recorder, RecordError
from telic.errors import InputError

GOAL = {
    "terms": [
        {"name": "goal", "residual": {"kind": "readout", "readouts": ["pos.x", "pos.y"], "target": [1.0, 0.0]},
         "weight": 1.0, "norm": {"kind": "l2"}},
        {"name": "effort", "residual": {"kind": "action"}, "weight": 0.01},
    ],
    "guardrails": [
        {"name": "wall", "kind": "readout_limit", "readouts": ["pos.y"], "lower": [-0.5], "upper": [0.5]},
    ],
}
LATENT_GOAL = {"terms": [{"name": "goal", "residual": {"kind": "latent"}, "weight": 1.0}]}


def planner(objective=GOAL, **config) -> telic.Planner:
    return telic.Planner(telic.WorldModel.analytic("point_mass"), objective, {"samples": 64, "seed": 3, **config})


# --- one rule for a single observation ---------------------------------------------------------------

def test_a_batch_of_one_observation_plans_as_the_observation_itself():
    obs = np.array([0.1, -0.2, 0.3, 0.0])
    flat, batch = planner(), planner()
    for _ in range(3):  # the warm start carries over the same way
        a, b = flat.plan(obs), batch.plan(obs.reshape(1, 4))
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.cost == b.cost


@pytest.mark.parametrize("shape", [(2, 4), (4, 1), (1, 1, 4), (3,), (1, 3)])
def test_other_shapes_are_refused_naming_the_expected_one(shape):
    p = planner()
    expected = r"obs must have shape \(4,\) or \(1, 4\) \[pos\.x, pos\.y, vel\.x, vel\.y\], got "
    with pytest.raises(InputError, match=expected):
        p.plan(np.zeros(shape))
    with pytest.raises(InputError, match=expected):
        planner(LATENT_GOAL).set_goal_observation("goal", np.zeros(shape))
    with pytest.raises(InputError, match=expected):
        telic.WorldModel.analytic("point_mass").rollout(np.zeros(shape), np.zeros((5, 2)))


def test_goal_observations_and_rollouts_take_a_batch_of_one():
    model = telic.WorldModel.analytic("point_mass")
    goal = np.array([1.0, 0.0, 0.0, 0.0])
    a, b = planner(LATENT_GOAL), planner(LATENT_GOAL)
    a.set_goal_observation("goal", goal)
    b.set_goal_observation("goal", goal.reshape(1, 4))
    np.testing.assert_array_equal(a.plan(np.zeros(4)).actions, b.plan(np.zeros((1, 4))).actions)
    u = np.full((6, 2), 0.5)
    np.testing.assert_array_equal(model.rollout(goal, u), model.rollout(goal[None], u))


def test_a_controller_observes_a_batch_of_one():
    controller = telic.Controller(planner(), max_plan_age_ms=60_000)
    controller.observe(np.zeros((1, 4)))
    with pytest.raises(InputError, match=r"obs must have shape \(4,\) or \(1, 4\)"):
        controller.observe(np.zeros((2, 4)))


def test_a_scene_steps_on_a_batch_of_one_action():
    flat, batch = telic.Scene("navigate"), telic.Scene("navigate")
    np.testing.assert_array_equal(flat.reset(4), batch.reset(4))
    for u in ([0.3, 0.1], [0.5, -0.2]):
        a, b = flat.step(np.array(u)), batch.step(np.array([u]))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    with pytest.raises(InputError, match=r"action must have shape \(2,\) or \(1, 2\) \[v_cmd, omega_cmd\], got \[2, 2\]"):
        flat.step(np.zeros((2, 2)))


def test_the_recorder_follows_the_same_rule():
    rec = Recorder(["x", "v"], ["force"], action_lower=[-1.0], action_upper=[1.0])
    rec.add(np.zeros((1, 2)), np.zeros((1, 1)), np.zeros((1, 2)))
    with pytest.raises(RecordError, match=r"obs has shape \(2, 1\), expected \(2,\) or \(1, 2\)"):
        rec.add(np.zeros((2, 1)), [0.0], [0.0, 0.0])


# --- the status of a normal plan ----------------------------------------------------------------------

def test_a_normal_feasible_plan_is_completed_and_failures_stay_distinct():
    plan = planner().plan(np.zeros(4))
    assert plan.status == "completed" and plan.feasible
    assert "completed" in repr(plan)
    boxed_in = dict(GOAL, guardrails=[
        {"name": "away", "kind": "readout_limit", "readouts": ["pos.y"], "lower": [0.5], "upper": [0.6]}])
    plan = planner(boxed_in).plan(np.zeros(4))
    assert plan.status == "no_feasible_plan" and not plan.feasible
    np.testing.assert_array_equal(plan.action, [0.0, 0.0])  # the safe fallback


# --- Recorder without dt, the trainer's --dt, per-readout errors --------------------------------------

def step(obs, u):
    """A damped point on a line: position in metres, velocity in m/s."""
    x, v = obs
    v = 0.9 * v + 0.1 * u
    return np.array([x + 0.1 * v, v])


def clockless_recording(path, episodes=12, steps=40):
    rec = Recorder(["x", "v"], ["force"], action_lower=[-1.0], action_upper=[1.0], scene="clockless", seed=4)
    assert rec.dt is None
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        obs = rng.uniform(-1, 1, 2)
        for t in range(steps):
            u = rng.uniform(-1, 1, 1)
            nxt = step(obs, float(u[0]))
            rec.add(obs, u, nxt, done=t + 1 == steps)
            obs = nxt
    assert rec.meta()["dt"] is None
    rec.save(path)
    return path


def test_the_recorder_takes_no_dt_and_checks_a_given_one(tmp_path):
    clockless_recording(tmp_path / "data", episodes=2, steps=3)
    assert json.loads((tmp_path / "data" / "meta.json").read_text())["dt"] is None
    for bad in (0.0, -1.0, float("nan"), "fast"):
        with pytest.raises(RecordError, match="dt must be a positive number of seconds or None"):
            Recorder(["x"], ["u"], action_lower=[-1.0], action_upper=[1.0], dt=bad)


TINY = ["--epochs", "3", "--latent-dim", "4", "--hidden", "16", "--layers", "1", "--readout-hidden", "8",
        "--readout-layers", "1", "--horizon", "4", "--batch-size", "32", "--probe-epochs", "2",
        "--quantile-horizon", "5", "--val-fraction", "0.25", "--quiet"]


def train_cli(*argv):
    return subprocess.run([sys.executable, "-m", "telic.train", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_training_clockless_data_asks_for_dt_before_training(tmp_path):
    data = clockless_recording(tmp_path / "data")
    out = train_cli("--data", str(data), "--out", str(tmp_path / "bundle"), *TINY)
    assert out.returncode == 1
    assert "recorded without a time step" in out.stderr and "--dt SECONDS" in out.stderr
    assert not (tmp_path / "bundle").exists(), "refused before anything was trained or written"


def test_a_given_dt_must_agree_with_the_data(tmp_path):
    rec = Recorder(["x", "v"], ["force"], action_lower=[-1.0], action_upper=[1.0], dt=0.1)
    rec.add([0.0, 0.0], [0.5], step([0.0, 0.0], 0.5), done=True)
    rec.add([1.0, 0.0], [0.5], step([1.0, 0.0], 0.5), done=True)
    rec.save(tmp_path / "data")
    out = train_cli("--data", str(tmp_path / "data"), "--out", str(tmp_path / "bundle"), "--dt", "0.2", *TINY)
    assert out.returncode == 1 and "--dt 0.2 differs from the data set's dt 0.1" in out.stderr


def test_trained_with_dt_and_errors_reported_per_readout(tmp_path):
    pytest.importorskip("torch")
    from telic.train import read_manifest

    data = clockless_recording(tmp_path / "data")
    out = train_cli("--data", str(data), "--out", str(tmp_path / "bundle"), "--dt", "0.1", *TINY[:-1])
    assert out.returncode == 0, out.stderr
    m = read_manifest(str(tmp_path / "bundle" / "manifest.toml"))
    assert m["dt"] == 0.1
    errors = m["provenance"]["validation"]["errors"]
    assert {"readout_rmse_h1:x", "readout_rmse_h1:v"} <= set(errors)
    assert "readout_rmse_h1" not in errors, "no average of metres with metres per second"
    report = json.loads((tmp_path / "bundle" / "training_report.json").read_text())
    assert set(report["readout_rmse"]) == {"x", "v"}
    assert errors["readout_rmse_h1:v"] == pytest.approx(report["readout_rmse"]["v"][0])
    assert errors["readout_rmse_h1:x"] != errors["readout_rmse_h1:v"]
    # the last lines of the log name each readout with its own error
    assert re.search(r"readout RMSE, each in its own unit.*: x [0-9.e-]+ / .*, v [0-9.e-]+ /", out.stdout)
    assert telic.WorldModel.load(tmp_path / "bundle").dt == 0.1


# --- the shipped ONNX-as-torch helper -----------------------------------------------------------------

def test_import_telic_torch_model_needs_no_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "import telic, telic.torch_model\n"
            "assert telic.torch_model.TorchBundle\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_torch_bundle_is_the_network_telic_plans_with():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from telic.torch_model import TorchBundle

    path = ROOT / "models" / "pendulum"
    net = TorchBundle(path)
    model = telic.WorldModel.load(path)
    assert net.observations == model.observations and net.readouts == model.readouts and net.dt == model.dt
    rng = np.random.default_rng(2)
    theta = rng.uniform(-np.pi, np.pi, 32)
    obs = np.stack([np.cos(theta), np.sin(theta), rng.uniform(-4, 4, 32)], axis=1)
    u = rng.uniform(-2, 2, (32, 1))
    assert net.check(obs, u) < 1e-5
    with torch.no_grad():
        z = net.encode(torch.from_numpy(obs))
        z_next = net.predict(z, torch.from_numpy(u))
        y = net.readout(z_next)
    np.testing.assert_allclose(z.numpy(), model.encode(obs), atol=1e-5)
    np.testing.assert_allclose(y.numpy(), model.readout(model.predict(model.encode(obs), u)), atol=1e-4)


def test_the_pendulum_examples_use_the_shipped_helper():
    common = (ROOT / "examples" / "pendulum" / "common.py").read_text()
    assert "class TorchBundle" not in common
    for script in ("swing_up.py", "bench.py"):
        text = (ROOT / "examples" / "pendulum" / script).read_text()
        assert "from telic.torch_model import TorchBundle" in text and "common.TorchBundle" not in text


# --- the README's API list -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["WorldModel", "Planner", "Controller"])
def test_the_readme_names_every_method(cls):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python"):]
    section = section[:section.index("\n## ", 5)]
    methods = [n for n, v in vars(getattr(telic, cls)).items()
               if not n.startswith("_") and callable(v) and not isinstance(v, property)]
    assert methods
    missing = [n for n in methods if not re.search(rf"\b{n}\(", section)]
    assert not missing, f"README's Python API list lacks {cls}.{missing}"


# --- a guardrail the margins make unsatisfiable is said when the planner is made ---------------------

def test_an_unsatisfiable_guardrail_warns_when_the_planner_is_made():
    narrow = dict(GOAL, guardrails=[{"name": "lane", "kind": "readout_limit", "readouts": ["pos.y"],
                                     "lower": [-0.1], "upper": [0.1], "margin": 0.1}])
    with pytest.warns(telic.PlannerWarning, match="guardrail 'lane' cannot be satisfied"):
        p = planner(narrow)
    assert len(p.warnings) == 1 and "lane" in p.warnings[0]
    assert issubclass(telic.PlannerWarning, UserWarning)


def test_a_workable_planner_does_not_warn(recwarn):
    assert planner().warnings == []
    assert not [w for w in recwarn if issubclass(w.category, telic.PlannerWarning)]


# --- defaults for an unknown task; the shipped scenarios keep what they were measured with ------------

def test_defaults_are_white_noise_and_temperature_0_3_and_the_shipped_scenarios_keep_theirs():
    config = planner().config
    assert config["colored_noise_beta"] == 0.0 and config["temperature"] == 0.3 and config["noise"] == 0.3
    # (colored_noise_beta, temperature) each scenario's results were measured with; CEM ignores the temperature
    measured = {"reach": (2.0, None), "reach_latent": (2.0, 0.1), "reach_realtime": (0.0, None),
                "navigate": (0.0, 0.1), "push": (2.0, 0.1)}
    for name, (beta, temperature) in measured.items():
        p = telic.scenario(name)["planner"]
        assert p["colored_noise_beta"] == beta, name
        if temperature is not None:
            assert p["temperature"] == temperature, name
        else:
            assert p["kind"] == "cem", name
