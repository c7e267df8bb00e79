"""The trainer on camera images (`python -m telic.train --image [--proprio]`):
a tiny synthetic format-2 data set (a point robot pushing nothing in a
16×16 picture), trained for two epochs, exported as a format-2 bundle; and
the whole pixel pipeline at CI size on the navigate scene (`telic collect`
→ train → export → `telic run` in rapier, and `telic inspect` of the
trained bundle against PyTorch).

Needs the training packages (bindings/requirements-train.txt) and the
`telic` program ($TELIC_BIN, else built with cargo), not the compiled core.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import add_images
from telic.dataset import Recorder
from telic.train import DataError, load_dataset, read_manifest

SIDE = 16
TINY = dict(epochs=2, latent_dim=8, hidden=32, layers=1, readout_hidden=16, readout_layers=1, horizon=3,
            batch_size=16, probe_epochs=1, quantile_horizon=6, min_quantile_samples=5, val_fraction=0.25,
            seed=3, quiet=True)


def _picture(robot_xy, box_xy) -> np.ndarray:
    """A 3×16×16 uint8 top view: the robot red, the box green, on grey."""
    img = np.full((3, SIDE, SIDE), 60, np.uint8)
    for (x, y), channel in ((box_xy, 1), (robot_xy, 0)):
        col, row = (int(np.clip((v + 1) / 2 * (SIDE - 2), 0, SIDE - 2)) for v in (x, y))
        img[channel, row:row + 2, col:col + 2] = 250
    return img


def _write_pixels(out: Path, box_map=lambda b: b, episodes: int = 8, steps: int = 24) -> Path:
    """A format-2 data set: observations robot x, y and box x, y (the box
    columns through ``box_map``), proprio = the robot's; images of each state."""
    rng = np.random.default_rng(0)
    rec = Recorder(["robot.x", "robot.y", "box.x", "box.y"], ["ux", "uy"], ["robot.x", "box.x", "gap"],
                   action_lower=[-1, -1], action_upper=[1, 1], dt=0.1, scene="toy", seed=4)
    images, next_images = [], []
    for _ in range(episodes):
        robot, box = rng.uniform(-0.8, 0.8, 2), rng.uniform(-0.8, 0.8, 2)
        for _ in range(steps):
            u = rng.uniform(-1, 1, 2)
            nxt = np.clip(robot + 0.1 * u, -0.9, 0.9)
            gap = lambda r: [r[0], box[0], float(np.linalg.norm(r - box))]  # noqa: E731
            rec.add(np.r_[robot, box_map(box)], u, np.r_[nxt, box_map(box)], readouts=gap(robot),
                    next_readouts=gap(nxt))
            images.append(_picture(robot, box))
            next_images.append(_picture(nxt, box))
            robot = nxt
        rec.end_episode()
    rec.save(out)
    return add_images(out, images, next_images, ["robot.x", "robot.y"])


@pytest.fixture(scope="module")
def pixel_data(tmp_path_factory) -> Path:
    return _write_pixels(tmp_path_factory.mktemp("pixels"))


@pytest.fixture(scope="module")
def pixel_bundle(pixel_data, tmp_path_factory):
    from telic.train import TrainConfig, train

    out = tmp_path_factory.mktemp("pixel_bundle")
    report = train(TrainConfig(data=str(pixel_data), out=str(out), image=True, proprio=True, **TINY))
    return out, report


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_format_2_data_set_reads_its_images(pixel_data):
    ds = load_dataset(str(pixel_data))
    assert ds.image.dtype == np.uint8 and ds.image.shape == (len(ds), 3, SIDE, SIDE)
    assert ds.proprio_names == ["robot.x", "robot.y"]
    traj = ds.trajectories(obs_columns=[0, 1], images=True)
    assert traj.obs.shape[1] == 2 and traj.images.shape == (traj.obs.shape[0], 3, SIDE, SIDE)
    # The image of a state is that of its row: the last state of an episode is next_image's.
    np.testing.assert_array_equal(traj.images[0], ds.image[0])
    np.testing.assert_array_equal(traj.images[24], ds.next_image[23])


def test_images_of_the_wrong_shape_are_a_clear_error(pixel_data, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(pixel_data, bad)
    with gzip.open(bad / "image.npy.gz", "wb") as f:
        np.save(f, np.zeros((3, 3, SIDE, SIDE), np.uint8))
    with pytest.raises(DataError, match="image.npy.gz"):
        load_dataset(str(bad))


def test_pixel_bundle_is_format_2_with_an_image_table(pixel_bundle):
    out, _ = pixel_bundle
    m = read_manifest(str(out / "manifest.toml"))
    assert m["format_version"] == 2
    assert m["image"] == {"channels": 3, "height": SIDE, "width": SIDE, "dtype": "uint8", "channel_order": "rgb",
                          "layout": "chw"}
    assert m["observations"] == ["robot.x", "robot.y"]
    assert len(m["normalisation"]["mean"]) == 2
    assert m["readouts"] == ["robot.x", "box.x", "gap"]


def test_encode_takes_a_uint8_image_and_the_proprio_entries(pixel_bundle):
    out, _ = pixel_bundle
    sess = _session(out / "encode.onnx")
    ins = {i.name: i for i in sess.get_inputs()}
    assert set(ins) == {"image", "obs"}
    assert ins["image"].type == "tensor(uint8)" and ins["image"].shape[1:] == [3, SIDE, SIDE]
    assert ins["obs"].type == "tensor(float)" and ins["obs"].shape[1:] == [2]
    assert not isinstance(ins["image"].shape[0], int), "the batch axis must be dynamic"
    image = np.random.default_rng(1).integers(0, 256, (5, 3, SIDE, SIDE), dtype=np.uint8)
    (z,) = sess.run(["z"], {"image": image, "obs": np.zeros((5, 2), np.float32)})
    assert z.shape == (5, 8) and np.all(np.isfinite(z))


def test_onnx_matches_pytorch_on_the_reference_rows(pixel_bundle):
    out, report = pixel_bundle
    assert report["onnx_vs_torch"]["max"] <= 1e-4
    ref = json.loads((out / "reference.json").read_text())
    m = read_manifest(str(out / "manifest.toml"))
    n_img = 3 * SIDE * SIDE
    rows = np.asarray(ref["obs"], np.float32).reshape(-1, n_img + 2)
    assert 1 <= rows.shape[0] <= 8, "a few rows: each is an image"
    assert np.all((rows[:, :n_img] >= 0) & (rows[:, :n_img] <= 255) & (rows[:, :n_img] == np.round(rows[:, :n_img])))
    obs_n = (rows[:, n_img:] - np.asarray(m["normalisation"]["mean"])) / np.asarray(m["normalisation"]["std"])
    (z,) = _session(out / "encode.onnx").run(["z"], {"image": rows[:, :n_img].reshape(-1, 3, SIDE, SIDE).astype(np.uint8),
                                                     "obs": obs_n.astype(np.float32)})
    np.testing.assert_allclose(z.reshape(-1), ref["z"], atol=1e-4)


def test_the_encoder_never_sees_the_other_observation_columns(pixel_data, pixel_bundle, tmp_path):
    # Same images, proprio and readouts; the box columns of obs.npy changed
    # (an affine map keeps the rows chaining). A bundle trained on it must be
    # the same bytes: nothing but image and proprio reaches the model.
    from telic.train import TrainConfig, train

    out, _ = pixel_bundle
    moved = _write_pixels(tmp_path / "moved", box_map=lambda b: -3.0 * b + 7.0)
    assert not np.array_equal(load_dataset(str(moved)).obs, load_dataset(str(pixel_data)).obs)
    again = tmp_path / "again"
    train(TrainConfig(data=str(moved), out=str(again), image=True, proprio=True, **TINY))
    for graph in ("encode.onnx", "predict.onnx", "readout.onnx", "reference.json"):
        assert (again / graph).read_bytes() == (out / graph).read_bytes(), graph


def test_pixels_only_encodes_the_image_alone(pixel_data, tmp_path):
    from telic.train import TrainConfig, train

    out = tmp_path / "pixels_only"
    train(TrainConfig(data=str(pixel_data), out=str(out), image=True, **TINY))
    m = read_manifest(str(out / "manifest.toml"))
    assert m["observations"] == [] and "normalisation" not in m
    assert [i.name for i in _session(out / "encode.onnx").get_inputs()] == ["image"]
    ref = json.loads((out / "reference.json").read_text())
    assert len(ref["obs"]) % (3 * SIDE * SIDE) == 0


def test_image_on_a_data_set_without_images_is_refused(tmp_path, capsys):
    from telic.train.cli import main

    data = _write_pixels(tmp_path / "v1")
    meta = json.loads((data / "meta.json").read_text())
    meta["format_version"] = 1
    del meta["image"], meta["proprio"]
    (data / "meta.json").write_text(json.dumps(meta))
    assert main(["--data", str(data), "--out", str(tmp_path / "b"), "--image", "--quiet"]) == 1
    assert "no camera images" in capsys.readouterr().err
    assert not (tmp_path / "b" / "manifest.toml").exists()


def test_proprio_without_image_is_refused(pixel_data, tmp_path, capsys):
    from telic.train.cli import main

    assert main(["--data", str(pixel_data), "--out", str(tmp_path / "b"), "--proprio", "--quiet"]) == 1
    assert "proprio needs image" in capsys.readouterr().err


def test_telic_collect_pixel_data_reads_and_trains(tmp_path):
    # The reader against the writer: a tiny `telic collect --obs pixels+proprio`.
    import subprocess

    from conftest import ROOT, telic_cmd
    from telic.train import TrainConfig, train

    data = tmp_path / "push_pixels"
    cmd = telic_cmd() + ["collect", "push", "--obs", "pixels+proprio", "--episodes", "4", "--steps-per-episode",
                         "30", "--planner-fraction", "0", "--seed", "3", "--jobs", "1", "--quiet", "--out", str(data)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1200)
    ds = load_dataset(str(data))
    assert ds.image.shape == (len(ds), 3, 64, 64)
    assert ds.proprio_names == ["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"]
    same_episode = ds.episode[1:] == ds.episode[:-1]
    np.testing.assert_array_equal(ds.image[1:][same_episode], ds.next_image[:-1][same_episode])
    out = tmp_path / "bundle"
    train(TrainConfig(data=str(data), out=str(out), image=True, proprio=True, safe_only=False,
                      **{**TINY, "val_fraction": 0.5}))
    assert read_manifest(str(out / "manifest.toml"))["observations"] == ds.proprio_names


def test_the_shipped_pixel_bundle_reads_only_image_and_proprio():
    from conftest import ROOT
    from telic.train.export import check_bundle

    m = check_bundle(str(ROOT / "models" / "push_pixels"))
    assert m["format_version"] == 2 and (m["image"]["height"], m["image"]["width"]) == (64, 64)
    assert m["observations"] == ["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"]
    assert "keepout.clearance" in m["readouts"]


# ---- The whole pixel pipeline at CI size: collect → train → export → plan ----

#: Tiny on purpose: 16×16 images, 40 episodes of 8 s (~2,400 transitions,
#: collected in a second), 20 epochs (~20 s on one core). Half the episodes
#: follow the analytic planner towards the goal, so the data covers the way
#: there, which random exploration alone does not.
NAVIGATE_SIDE = 16
NAVIGATE_EPISODES = 40
NAVIGATE_READOUTS = ["base.x", "base.y", "v", "omega", "speed", "clearance"]
NAVIGATE_TINY = dict(epochs=20, latent_dim=16, hidden=64, layers=1, readout_hidden=32, readout_layers=1, horizon=4,
                     batch_size=32, lr=3e-3, quantile_horizon=10, min_quantile_samples=5, val_fraction=0.2, seed=5,
                     quiet=True)


def _navigate_scenario(path: Path, model: str) -> Path:
    """sim/scenarios/navigate.toml at CI size, planned by ``model`` from the
    16×16 camera image and the robot's own state: a 4 m × 3 m arena, 8 s
    episodes, and walls but no obstacles. The pixel mode's clearance
    guardrail is then a readout limit on the learned ``clearance`` to the
    walls; a model trained for seconds does not learn where obstacles are
    from 16 pixels (models/README.md: nor did 35,000 transitions at 64)."""
    import tomllib

    from conftest import ROOT
    from telic.train.toml_writer import dumps

    doc = tomllib.loads((ROOT / "sim" / "scenarios" / "navigate.toml").read_text())
    doc["scene"].update(arena_length=4.0, arena_width=3.0, end_inset=0.5, side_inset=0.7, obstacles=0, on_path=0)
    doc["episode"]["max_time"] = 8.0
    doc = {"model": model,
           "observation": {"mode": "pixels+proprio", "width": NAVIGATE_SIDE, "height": NAVIGATE_SIDE}, **doc}
    path.write_text(dumps(doc))
    return path


@pytest.fixture(scope="module")
def navigate_data(tmp_path_factory) -> Path:
    import subprocess

    from conftest import ROOT, telic_cmd

    work = tmp_path_factory.mktemp("navigate_pixels")
    scenario = _navigate_scenario(work / "collect.toml", "analytic")
    out = work / "data"
    cmd = telic_cmd() + ["collect", str(scenario), "--obs", "pixels+proprio", "--episodes", str(NAVIGATE_EPISODES),
                         "--planner-fraction", "0.5", "--seed", "3", "--jobs", "2", "--quiet", "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1200)
    return out


def _train_navigate(data: Path, out: Path, **overrides) -> Path:
    from telic.train import TrainConfig, train

    train(TrainConfig(data=str(data), out=str(out), image=True, proprio=True, periodic=["theta"],
                      readouts=NAVIGATE_READOUTS, **{**NAVIGATE_TINY, **overrides}))
    return out


@pytest.fixture(scope="module")
def navigate_bundle(navigate_data, tmp_path_factory) -> Path:
    # Not importorskip: scripts/test installs the trainer's dependencies, and a
    # missing one must fail the pipeline loudly rather than skip it.
    import onnxruntime  # noqa: F401
    import torch  # noqa: F401

    return _train_navigate(navigate_data, tmp_path_factory.mktemp("navigate_pixels_bundle"))


def _navigate_closed_loop(bundle: Path, out: Path) -> dict:
    """Six episodes of seed 1 in rapier, planned from pixels+proprio with
    ``bundle`` (its error margins left out); the run's JSON."""
    import subprocess

    from conftest import ROOT, telic_cmd, without_error_margins

    bundle = without_error_margins(bundle, out.with_suffix(".bundle"))
    scenario = _navigate_scenario(out.with_suffix(".toml"), str(bundle))
    cmd = telic_cmd() + ["run", str(scenario), "--episodes", "6", "--seed", "1", "--jobs", "1", "--quiet",
                         "--json", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1200)
    run = json.loads(out.read_text())
    assert run["observation"] == "pixels+proprio", run["observation"]
    return run


def test_trained_pixel_model_plans_better_than_an_untrained_one(navigate_data, navigate_bundle, tmp_path):
    """collect → train → export → plan in rapier from camera images, against
    the same pipeline with training left out (one epoch at a vanishing
    learning rate), on the same seeds."""
    untrained = _train_navigate(navigate_data, tmp_path / "untrained", epochs=1, lr=1e-12)
    runs = {name: _navigate_closed_loop(bundle, tmp_path / f"{name}.json")
            for name, bundle in (("trained", navigate_bundle), ("untrained", untrained))}
    figures = {}
    for name, run in runs.items():
        distance = [dict(e["final_error"])["distance"] for e in run["episodes"]]
        s = run["summary"]
        figures[name] = {"successes": s["successes"], "mean_final_distance": float(np.mean(distance)),
                         "mean_task_cost": s["mean_task_cost"], "true_violation_steps": s["violation_steps"],
                         "fallback_steps": s["fallback_steps"]}
        print(f"{name}: {s['successes']}/{s['episodes']} reached the goal, final distance "
              f"{np.round(distance, 2).tolist()} m (mean {np.mean(distance):.2f}), task cost "
              f"{s['mean_task_cost']:.1f}, true violations {s['violation_steps']} physics steps, "
              f"fallback {s['fallback_steps']} steps")
    good, bad = figures["trained"], figures["untrained"]
    # True violations are reported, not asserted: a tiny model's clearance is
    # rough. With other collection and training seeds the trained model
    # reached the goal in 5-6 of the 6 episodes, ending 0.22-0.33 m from it on
    # average; the untrained one in 0-1, ending 2.35-3.12 m from it.
    assert good["successes"] > bad["successes"], figures
    assert good["mean_final_distance"] < 0.5 * bad["mean_final_distance"], figures


def test_rust_runtime_matches_pytorch_on_a_trained_pixel_bundle(navigate_bundle):
    """The engine's OnnxModel (Rust, ONNX Runtime) on camera images against
    PyTorch, on the held-out image rows the trainer stored in
    reference.json: max |diff| <= 1e-4."""
    import subprocess

    from conftest import ROOT, telic_cmd

    ref = json.loads((navigate_bundle / "reference.json").read_text())
    n_img = 3 * NAVIGATE_SIDE * NAVIGATE_SIDE
    assert len(ref["obs"]) % (n_img + 5) == 0 and len(ref["obs"]) >= n_img + 5, "image rows, then 5 proprio entries"
    done = subprocess.run(telic_cmd() + ["inspect", str(navigate_bundle), "--tolerance", "1e-4"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"image        3×{NAVIGATE_SIDE}×{NAVIGATE_SIDE} uint8 rgb" in done.stdout, done.stdout
    assert "parity       ok" in done.stdout, done.stdout
