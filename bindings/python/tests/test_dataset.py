"""telic.dataset: transitions of any environment, written as a data set that
telic.train reads and trains on, and a planner on the bundle trained from
it. No simulator and no gymnasium needed: the environment here is a damped
point on a line, stepped in numpy.

    python3 -m pytest bindings/python/tests/test_dataset.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from telic.dataset import Recorder, RecordError
from telic.train import DataError, load_dataset

DT = 0.1


def step(obs: np.ndarray, u: float) -> np.ndarray:
    """A damped point: position x, velocity v, force u in [-1, 1]."""
    x, v = obs
    v = 0.9 * v + DT * u
    return np.array([x + DT * v, v])


def recorder(**kw) -> Recorder:
    args = dict(action_lower=[-1.0], action_upper=[1.0], dt=DT, scene="line", seed=4)
    args.update(kw)
    return Recorder(["x", "v"], ["force"], **args)


def record(rec: Recorder, episodes: int = 6, steps: int = 30, seed: int = 0) -> Recorder:
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        obs = rng.uniform(-1, 1, 2)
        for t in range(steps):
            u = rng.uniform(-1, 1, 1)
            nxt = step(obs, float(u[0]))
            rec.add(obs, u, nxt, done=t + 1 == steps)
            obs = nxt
    return rec


def test_written_set_reads_back_as_recorded(tmp_path):
    rec = record(recorder(), episodes=3, steps=5)
    rec.save(tmp_path)
    ds = load_dataset(str(tmp_path))
    assert len(ds) == 15 and ds.observations == ["x", "v"] and ds.actions == ["force"]
    assert ds.readout_names == ["x", "v"]  # readouts default to the observations
    np.testing.assert_array_equal(ds.readouts, ds.obs)
    np.testing.assert_array_equal(ds.episode, np.repeat([0, 1, 2], 5))
    np.testing.assert_array_equal(ds.step, np.tile(np.arange(5), 3))
    np.testing.assert_array_equal(ds.done, np.tile([0, 0, 0, 0, 1], 3))
    np.testing.assert_array_equal(ds.violated, np.zeros(15))
    assert ds.obs.dtype == np.float32 and ds.episode.dtype == np.int32 and ds.done.dtype == np.uint8
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["dt"] == DT and meta["scene"] == "line" and meta["seed"] == 4
    assert meta["action_lower"] == [-1.0] and meta["action_upper"] == [1.0]
    traj = ds.trajectories()  # checks that the rows of each episode chain
    assert traj.num_episodes == 3 and traj.obs.shape == (18, 2)


def test_readout_function_adds_named_quantities(tmp_path):
    rec = recorder(readouts=["x", "speed"], readout_fn=lambda o: [o[0], abs(o[1])])
    record(rec, episodes=2, steps=4).save(tmp_path)
    ds = load_dataset(str(tmp_path))
    assert ds.readout_names == ["x", "speed"]
    np.testing.assert_allclose(ds.next_readouts[:, 1], np.abs(ds.next_obs[:, 1]))


EPOCHS = 20  # a few seconds; enough for the model to know which way a push moves the point


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    # Not importorskip: scripts/test installs the trainer's dependencies.
    from telic.train import TrainConfig, train

    root = tmp_path_factory.mktemp("line")
    record(recorder(), episodes=12, steps=40).save(root / "data")
    out = root / "bundle"
    train(TrainConfig(data=str(root / "data"), out=str(out), epochs=EPOCHS, latent_dim=4, hidden=32, layers=1,
                      readout_hidden=16, readout_layers=1, horizon=4, batch_size=32, probe_epochs=20,
                      quantile_horizon=5, min_quantile_samples=5, val_fraction=0.25, quiet=True))
    return out


def test_recorded_set_trains_a_bundle(bundle):
    from telic.train import read_manifest

    m = read_manifest(str(bundle / "manifest.toml"))
    assert m["name"] == "line_jepa" and m["dt"] == DT and m["observations"] == ["x", "v"]
    assert m["actions"] == [{"name": "force", "lower": -1.0, "upper": 1.0}]
    assert m["readouts"] == ["x", "v"] and m["provenance"]["seed"] == 4
    assert m["provenance"]["training"]["epochs"] == EPOCHS


def test_a_planner_plans_for_the_recorded_environment(bundle):
    import telic

    model = telic.WorldModel.load(str(bundle))
    assert model.observations == ["x", "v"] and model.readouts == ["x", "v"] and model.dt == DT
    objective = {"terms": [
        {"name": "goal", "residual": {"kind": "readout", "readouts": ["x"], "target": [0.5]}},
        {"name": "effort", "residual": {"kind": "action"}, "weight": 0.01},
    ]}
    planner = telic.Planner(model, objective, {"samples": 128, "horizon": 15, "seed": 1})
    plan = planner.plan(np.array([0.0, 0.0]))
    assert plan.actions.shape == (15, 1) and plan.readouts.shape == (15, 2)
    assert -1.0 <= plan.action[0] <= 1.0
    assert plan.action[0] > 0.3  # pushes towards x = 0.5
    assert plan.readouts[-1, 0] > plan.readouts[0, 0] + 0.1  # and expects to get closer


@pytest.mark.parametrize("obs, action, next_obs, match", [
    ([0.0, 0.0, 0.0], [0.0], [0.0, 0.0], r"obs has shape \(3,\), expected \(2,\) or \(1, 2\)"),
    ([0.0, 0.0], [0.0, 1.0], [0.0, 0.0], r"action has shape \(2,\), expected \(1,\) or \(1, 1\)"),
    ([0.0, np.nan], [0.0], [0.0, 0.0], r"obs is not finite in \['v'\]"),
    ([0.0, 0.0], [0.0], [np.inf, 0.0], r"next_obs is not finite in \['x'\]"),
    ([0.0, 0.0], [1.5], [0.0, 0.0], r"outside the bounds"),
    ([0.0, 0.0], ["a"], [0.0, 0.0], r"action is not numeric"),
])
def test_bad_transitions_are_clear_errors(obs, action, next_obs, match):
    rec = recorder()
    with pytest.raises(RecordError, match=match):
        rec.add(obs, action, next_obs)
    assert len(rec) == 0  # nothing half-recorded


def test_rows_that_do_not_chain_are_an_error():
    rec = recorder()
    rec.add([0.0, 0.0], [0.5], [0.0, 0.05])
    with pytest.raises(RecordError, match=r"episode 0 step 1: obs .* is not the previous row's next_obs"):
        rec.add([1.0, 0.0], [0.5], [1.0, 0.05])  # a reset without end_episode()
    rec.end_episode()
    rec.add([1.0, 0.0], [0.5], [1.0, 0.05])
    assert rec.episodes == 2


def test_bad_settings_and_readouts_are_clear_errors(tmp_path):
    with pytest.raises(RecordError, match="lower < upper"):
        recorder(action_lower=[1.0], action_upper=[-1.0])
    with pytest.raises(RecordError, match="2 lower and 1 upper"):
        recorder(action_lower=[0.0, 0.0])
    with pytest.raises(RecordError, match="dt must be a positive"):
        recorder(dt=0.0)
    with pytest.raises(RecordError, match="distinct"):
        Recorder(["x", "x"], ["force"], action_lower=[-1], action_upper=[1], dt=DT)
    with pytest.raises(RecordError, match="no readout_fn"):
        recorder(readouts=["x", "speed"]).add([0.0, 0.0], [0.0], [0.0, 0.0])
    with pytest.raises(RecordError, match=r"readouts has shape \(1,\), expected \(2,\) or \(1, 2\)"):
        recorder(readouts=["x", "speed"], readout_fn=lambda o: [o[0]]).add([0.0, 0.0], [0.0], [0.0, 0.0])
    with pytest.raises(RecordError, match="JSON"):
        recorder(policy={"rng": object()})
    with pytest.raises(RecordError, match="nothing to save"):
        recorder().save(tmp_path)


def test_record_errors_are_telic_errors():
    from telic.errors import InputError, TelicError

    assert issubclass(RecordError, TelicError) and issubclass(RecordError, InputError)
    assert issubclass(RecordError, ValueError)


def test_load_rejects_a_set_with_non_finite_values(tmp_path):
    record(recorder(), episodes=2, steps=3).save(tmp_path)
    obs = np.load(tmp_path / "obs.npy")
    obs[1, 0] = np.nan
    np.save(tmp_path / "obs.npy", obs)
    with pytest.raises(DataError, match="non-finite"):
        load_dataset(str(tmp_path))
