"""A readout mapped over the ground and carried in the latent (``--map``,
``GroundMap``): the grid is taken around the robot when the image is
encoded, the predictor carries it unchanged, and the readout samples it
where the predictor imagines the robot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telic.train import DataError, read_manifest
from conftest import add_images
from telic.dataset import Recorder
from test_train_seen import CENTER, HALF, TINY, H, W, data, pixel, train_watching_the_freeze  # noqa: F401

SPEC = "clearance:x,y:base.x,base.y:0.6:5"


def test_the_map_is_read_where_the_robot_is_imagined():
    """A grid whose value is its column index: the readout at a position
    0.3 m right of where the grid was taken reads the column 0.3 m right."""
    import torch

    from telic.train.model import MapReadout

    cells, half = 5, 0.6
    reader = MapReadout(col=2, pos=[0, 1], cells=cells, half=half, pos_std=[1.0, 1.0], readouts=3)
    grid = torch.arange(cells, dtype=torch.float32).repeat(cells, 1).reshape(1, -1)  # value = column
    anchor = torch.tensor([[0.2, -0.1]])
    static = torch.cat([grid, anchor], dim=1)
    y = torch.tensor([[0.2 + 0.3, -0.1, 99.0]])  # 0.3 m = one cell (1.2 m over 4 steps) right of the centre
    out = reader(y, static)
    assert out[0, 2].item() == pytest.approx(3.0, abs=1e-5)
    assert out[0, :2].tolist() == pytest.approx([0.5, -0.1])
    # Rows run from +y (top) to -y: a grid whose value is its row index.
    rows = torch.arange(cells, dtype=torch.float32).repeat_interleave(cells).reshape(1, -1)
    up = reader(torch.tensor([[0.2, -0.1 + 0.3, 0.0]]), torch.cat([rows, anchor], dim=1))
    assert up[0, 2].item() == pytest.approx(1.0, abs=1e-5)


def test_the_predictor_carries_the_map_unchanged():
    import torch

    from telic.train.model import Predictor

    p = Predictor(4, [-1, -1], [1, 1], hidden=8, layers=1, static=7)
    z = torch.randn(3, 11)
    out = p(z, torch.randn(3, 2))
    assert torch.equal(out[:, 4:], z[:, 4:])
    assert not torch.equal(out[:, :4], z[:, :4])


def test_a_ground_map_trains_freezes_and_exports(data, tmp_path, monkeypatch):  # noqa: F811
    import torch

    from telic.train import TrainConfig

    cfg = TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, ground_map=SPEC,
                      saturate={"clearance": 1.5}, **{**TINY, "epochs": 2, "freeze": True, "frozen_epochs": 1})
    report, before, _, model = train_watching_the_freeze(monkeypatch, cfg, "ground_map")
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.ground_map.parameters()))
    assert report["onnx_vs_torch"]["max"] < 1e-4
    m = read_manifest(str(tmp_path / "manifest.toml"))
    assert m["latent_dim"] == TINY["latent_dim"] + 5 * 5 + 2
    assert m["provenance"]["training"]["ground_map"] == SPEC
    # The engine loads it and rolls it out.
    import telic

    wm = telic.WorldModel.load(tmp_path)
    assert wm.latent_dim == m["latent_dim"]
    rows = np.zeros((2, wm.obs_dim))
    rows[:, -2:] = [[0.3, -0.7], [1.9, 0.4]]  # the robot's odometry x, y (after the image)
    z = wm.encode(rows)
    assert np.array_equal(wm.predict(z, np.zeros((2, 2)))[:, TINY["latent_dim"]:], z[:, TINY["latent_dim"]:])
    # The position is tracked, not learned: the readouts give the odometry back.
    y = wm.readout(z)
    xy = [wm.readouts.index("base.x"), wm.readouts.index("base.y")]
    assert np.allclose(y[:, xy], rows[:, -2:], atol=1e-5)


@pytest.mark.parametrize("spec, match", [
    ("clearance:x,y:0.6:5", "expected READOUT:X,Y:PX,PY:HALF:CELLS"),
    ("gap:x,y:base.x,base.y:0.6:5", "not among the model's readouts"),
    ("clearance:x,q:base.x,base.y:0.6:5", "not proprio observations"),
    ("clearance:x,y:base.x,base.y:-1:5", "HALF must be positive"),
    ("clearance:x,y:base.x,base.y:0.6:1", "CELLS 3 to 101"),
])
def test_bad_map_options_are_clear_errors(data, tmp_path, spec, match):  # noqa: F811
    from telic.train import TrainConfig, train

    with pytest.raises(DataError, match=match):
        train(TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, ground_map=spec, **TINY))


def write_obstacle_fields(out: Path) -> Path:
    """Episodes of a robot wandering near one obstacle placed anew each
    episode (as navigate draws its field); readouts its position and its
    distance to the obstacle: every place of an episode labels its images."""
    rng = np.random.default_rng(5)
    rec = Recorder(["x", "y"], ["ux", "uy"], ["base.x", "base.y", "clearance"], action_lower=[-1, -1],
                   action_upper=[1, 1], dt=0.1, scene="toy", seed=4)
    images, next_images = [], []
    lo, hi = np.array([-1.4, -1.7]), np.array([2.4, 1.2])
    for _ in range(24):
        obstacle = rng.uniform(lo + 0.5, hi - 0.5)

        def picture(p):
            img = np.full((3, H, W), 220, np.uint8)
            r, c = pixel(*obstacle)
            img[:, r - 1:r + 2, c - 1:c + 2] = [[[200]], [[30]], [[30]]]
            r, c = pixel(*p)
            img[:, r, c] = [40, 60, 220]
            return img

        gap = lambda p: [p[0], p[1], float(np.hypot(*(p - obstacle)))]  # noqa: E731
        p = obstacle + rng.uniform(-0.8, 0.8, 2)
        for _ in range(20):
            u = rng.uniform(-1, 1, 2)
            q = np.clip(p + 0.15 * u, lo, hi)
            rec.add(p, u, q, readouts=gap(p), next_readouts=gap(q))
            images.append(picture(p))
            next_images.append(picture(q))
            p = q
        rec.end_episode()
    rec.save(out)
    return add_images(out, images, next_images, ["x", "y"], {"center": list(CENTER), "half_extents": list(HALF)})


def test_the_map_head_fits_on_its_own_then_stays_frozen(tmp_path, monkeypatch):
    """``map_epochs``: the head is fitted first against the places of each
    image's episode (its held-out error falls), then frozen: the world
    model's epochs leave it, and the target encoder's copy, as fitted."""
    import torch

    from telic.train import TrainConfig

    data = write_obstacle_fields(tmp_path / "data")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "bundle"), image=True, proprio=True, ground_map=SPEC,
                      map_epochs=25, saturate={"clearance": 0.8}, lr=3e-3,
                      **{**TINY, "epochs": 2, "freeze": True, "frozen_epochs": 1})
    from telic.train import trainer

    fitted = {}
    real_fit_map = trainer._fit_map

    def spy(cfg, prep, built, say):
        history = real_fit_map(cfg, prep, built, say)
        fitted["head"] = [p.detach().clone() for p in built.model.encoder.ground_map.parameters()]
        return history

    monkeypatch.setattr(trainer, "_fit_map", spy)
    report, _, _, model = train_watching_the_freeze(monkeypatch, cfg, "ground_map")
    history = report["map_history"]
    assert [h["epoch"] for h in history] == list(range(26))
    assert history[-1]["held_out_rmse"] < 0.5 * history[0]["held_out_rmse"]
    head = model.encoder.ground_map.head
    assert not any(p.requires_grad for p in head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(fitted["head"], model.encoder.ground_map.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(head.parameters(), model.target_encoder.ground_map.head.parameters()))


def test_map_epochs_need_a_map(data, tmp_path):  # noqa: F811
    from telic.train import TrainConfig, train

    with pytest.raises(ValueError, match="needs ground_map"):
        train(TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, map_epochs=2, **TINY))
