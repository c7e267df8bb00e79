"""The pixel encoder's structure options: ``--seen`` (readouts the image
encoder estimates under supervision), ``--ego`` (the crop of the image
around the robot) and ``--saturate`` (a readout learned saturated), on a
tiny synthetic format-2 data set drawn the way the scenes' cameras draw
(meta.json ``image.view``: x to the right, y up).

Needs the training packages (bindings/requirements-train.txt), not the
compiled core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import add_images
from telic.dataset import Recorder
from telic.train import DataError, read_manifest

H, W = 24, 32
CENTER, HALF = (0.5, -0.25), (2.0, 1.5)  # the camera's ground rectangle
SCALE = min(W / (2 * HALF[0]), H / (2 * HALF[1]))  # pixels per metre
OBSTACLE = (1.2, 0.3)
TINY = dict(epochs=2, latent_dim=8, hidden=32, layers=1, readout_hidden=16, readout_layers=1, horizon=3,
            batch_size=16, probe_epochs=1, quantile_horizon=6, min_quantile_samples=5, val_fraction=0.25,
            seed=3, quiet=True)


def pixel(x: float, y: float) -> tuple[int, int]:
    """(row, column) of the pixel whose square holds world (x, y)."""
    col = W / 2 + SCALE * (x - CENTER[0])
    row = H / 2 - SCALE * (y - CENTER[1])
    return int(np.floor(row)), int(np.floor(col))


def picture(robot) -> np.ndarray:
    img = np.full((3, H, W), 220, np.uint8)
    r, c = pixel(*OBSTACLE)
    img[:, r - 1:r + 2, c - 1:c + 2] = [[[200]], [[30]], [[30]]]
    r, c = pixel(*robot)
    if 0 <= r < H and 0 <= c < W:
        img[:, r, c] = [40, 60, 220]
    return img


def write_data(out: Path, view: bool = True) -> Path:
    """A robot that moves on the ground in front of one obstacle; readouts
    its position and its distance to the obstacle."""
    rng = np.random.default_rng(1)
    rec = Recorder(["x", "y"], ["ux", "uy"], ["base.x", "base.y", "clearance"], action_lower=[-1, -1],
                   action_upper=[1, 1], dt=0.1, scene="toy", seed=4)
    images, next_images = [], []
    gap = lambda p: [p[0], p[1], float(np.hypot(p[0] - OBSTACLE[0], p[1] - OBSTACLE[1]))]  # noqa: E731
    for _ in range(8):
        p = rng.uniform([-1.3, -1.6], [2.3, 1.1])
        for _ in range(20):
            u = rng.uniform(-1, 1, 2)
            q = np.clip(p + 0.1 * u, [-1.4, -1.7], [2.4, 1.2])
            rec.add(p, u, q, readouts=gap(p), next_readouts=gap(q))
            images.append(picture(p))
            next_images.append(picture(q))
            p = q
        rec.end_episode()
    rec.save(out)
    return add_images(out, images, next_images, ["x", "y"],
                      {"center": list(CENTER), "half_extents": list(HALF)} if view else None)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("seen"))


def test_the_ego_crop_is_centred_on_the_robot():
    import torch

    from telic.train.model import EgoCrop

    for robot in [(0.0, 0.0), (1.9, -1.2), (-1.0, 0.9)]:
        img = np.zeros((1, 3, H, W), np.float32)
        r, c = pixel(*robot)
        img[0, :, r, c] = 255.0
        # The pixel's centre, where bilinear sampling reads it whole.
        centre = (CENTER[0] + (c + 0.5 - W / 2) / SCALE, CENTER[1] - (r + 0.5 - H / 2) / SCALE)
        mean, std = np.array([0.2, -0.1]), np.array([2.0, 0.5])
        crop = EgoCrop((3, H, W), (CENTER, HALF), [0, 1], mean, std, half=4 / SCALE, size=9)
        proprio = torch.tensor([[(centre[0] - mean[0]) / std[0], (centre[1] - mean[1]) / std[1]]],
                               dtype=torch.float32)
        out = crop(torch.from_numpy(img), proprio)[0, 0].numpy()
        assert out.shape == (9, 9)
        assert out[4, 4] == pytest.approx(255.0, abs=1e-3), robot
        # One pixel away in the crop is one pixel away in the image: nothing there.
        assert np.abs(np.delete(out.ravel(), 4 * 9 + 4)).max() < 1e-3, robot


def test_the_crop_is_black_outside_the_image():
    import torch

    from telic.train.model import EgoCrop

    img = torch.full((1, 3, H, W), 200.0)
    crop = EgoCrop((3, H, W), (CENTER, HALF), [0, 1], np.zeros(2), np.ones(2), half=1.0, size=8)
    edge = torch.tensor([[CENTER[0] - HALF[0], CENTER[1]]], dtype=torch.float32)  # the left edge
    out = crop(img, edge)[0, 0].numpy()
    assert np.all(out[:, :3] == 0) and np.allclose(out[:, 5:], 200, atol=1e-3)


def test_seen_ego_and_saturate_train_a_bundle(data, tmp_path):
    from telic.train import TrainConfig, train

    out = tmp_path / "bundle"
    report = train(TrainConfig(data=str(data), out=str(out), image=True, proprio=True, seen=["clearance"],
                               ego="x,y:1.0:12", saturate={"clearance": 1.5}, **TINY))
    m = read_manifest(str(out / "manifest.toml"))
    training = m["provenance"]["training"]
    assert training["seen_readouts"] == ["clearance"]
    assert training["ego_crop"] == "x,y:1.0:12"
    assert training["saturated_readouts"] == {"clearance": 1.5}
    assert "seen" in training["loss_weights"]
    # The encoder's supervised head was trained: its loss fell.
    assert report["history"][-1]["train"]["seen"] < report["history"][0]["train"]["seen"]
    # The trainer checked ONNX against PyTorch on images and crops.
    assert report["onnx_vs_torch"]["max"] < 1e-4


def test_a_saturated_readout_is_learned_below_its_bound(data, tmp_path):
    from telic.train import TrainConfig, train
    from telic.train.trainer import _prepare

    cfg = TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True,
                      saturate={"clearance": 1.5}, **TINY)
    prep = _prepare(cfg)
    j = prep.readouts.index("clearance")
    assert prep.train.readouts[:, j].max() == pytest.approx(1.5)
    assert prep.val.readouts[:, j].max() <= 1.5
    # Its scale in the losses is its spread before saturation.
    unsaturated = _prepare(TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, **TINY))
    assert prep.norm.y_std[j] == pytest.approx(unsaturated.norm.y_std[j])
    assert prep.norm.y_std[j] > prep.train.readouts[:, j].std() * 1.05
    del train


@pytest.mark.parametrize("kwargs, match", [
    (dict(seen=["box.x"]), "seen readouts \\['box.x'\\]"),
    (dict(saturate={"gap": 1.0}), "saturated readout 'gap'"),
    (dict(ego="x,y:1.0"), "expected X,Y:HALF:SIZE"),
    (dict(ego="x,q:1.0:12"), "not proprio observations"),
    (dict(ego="x,y:-1:12"), "HALF must be positive"),
])
def test_bad_structure_options_are_clear_errors(data, tmp_path, kwargs, match):
    from telic.train import TrainConfig, train

    with pytest.raises(DataError, match=match):
        train(TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, **{**TINY, **kwargs}))


def test_ego_needs_the_cameras_view(tmp_path):
    from telic.train import TrainConfig, train

    old = write_data(tmp_path / "old", view=False)
    with pytest.raises(DataError, match="image.view"):
        train(TrainConfig(data=str(old), out=str(tmp_path / "b"), image=True, proprio=True, ego="x,y:1.0:12",
                          **TINY))


def test_seen_and_ego_need_images(data, tmp_path):
    from telic.train import TrainConfig

    with pytest.raises(ValueError, match="seen needs image"):
        TrainConfig(data=str(data), out=str(tmp_path), seen=["clearance"]).validate()
    with pytest.raises(ValueError, match="ego needs image and proprio"):
        TrainConfig(data=str(data), out=str(tmp_path), image=True, ego="x,y:1:12").validate()


def train_watching_the_freeze(monkeypatch, cfg, part: str):
    """Trains ``cfg`` and returns the report, the parameters of the
    encoder's ``part`` just before the freeze, the windows' data after it
    and the model."""
    from telic.train import train
    from telic.train import trainer

    seen = {}
    real_freeze = trainer._freeze

    def spy(cfg, prep, built, say):
        seen["before"] = [p.detach().clone() for p in getattr(built.model.encoder, part).parameters()]
        seen["prep"], built2 = real_freeze(cfg, prep, built, say)
        seen["model"] = built2.model
        return seen["prep"], built2

    monkeypatch.setattr(trainer, "_freeze", spy)
    report = train(cfg)
    return report, seen["before"], seen["prep"], seen["model"]


def features_and_images_give_the_same_latent(model):
    import torch

    rows = torch.rand(3, 3 * H * W + 2) * 255
    rows[:, -2:] = torch.randn(3, 2)
    with torch.no_grad():
        assert torch.allclose(model.encoder(rows), model.encoder(model.encoder.pooled(rows)), atol=1e-5)


def test_a_frozen_backbone_trains_on_cached_features(data, tmp_path, monkeypatch):
    """--freeze: the convolutions stop training, the rest goes on over
    longer windows of cached features, and the exported encoder (which runs
    the convolutions on images) still matches PyTorch."""
    import torch

    from telic.train import TrainConfig

    cfg = TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, seen=["clearance"],
                      ego="x,y:1.0:12", **{**TINY, "freeze": True, "epochs": 1, "frozen_epochs": 2,
                                            "frozen_horizon": 5})
    report, before, prep, model = train_watching_the_freeze(monkeypatch, cfg, "conv")
    assert prep.horizon == 5 and prep.train_tensors[0].shape[1] == model.encoder.pooled_width + 2
    after = list(model.encoder.conv.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert all(torch.equal(a, b) for a, b in zip(after, model.target_encoder.conv.parameters()))
    assert [h.get("frozen", False) for h in report["history"]] == [False, True, True]
    assert report["onnx_vs_torch"]["max"] < 1e-4
    features_and_images_give_the_same_latent(model)


def test_the_ground_field_is_read_where_the_robot_is():
    """A map that is the image's own pixel values (the head replaced by an
    identity) read at the robot and its neighbours gives those pixels."""
    import torch
    from torch import nn

    from telic.train.model import GroundField

    step = 1 / SCALE  # one pixel
    field = GroundField((3, H, W), (CENTER, HALF), [0, 1], np.zeros(2), np.ones(2), step=step, features=1)
    field.head = nn.Identity()
    for robot in [(0.0, 0.0), (1.9, -1.2)]:
        r, c = pixel(*robot)
        centre = (CENTER[0] + (c + 0.5 - W / 2) / SCALE, CENTER[1] - (r + 0.5 - H / 2) / SCALE)
        img = torch.zeros(1, 1, H, W)
        img[0, 0, r, c] = 5.0
        img[0, 0, r - 1, c + 1] = 7.0  # up and to the right: neighbour (+step, +step)
        out = field(img, torch.tensor([centre], dtype=torch.float32))[0].numpy()
        assert out.shape == (9,)
        assert out[0] == pytest.approx(5.0, abs=1e-4), robot
        # Neighbours in rows from +y to −y, columns from −x to +x, the centre left out.
        assert out[3] == pytest.approx(7.0, abs=1e-4), robot
        assert np.abs(np.delete(out, [0, 3])).max() < 1e-4, robot


def test_a_ground_field_trains_and_freezes(data, tmp_path, monkeypatch):
    """--field: the map's centre sample is supervised (its loss falls), the
    map head freezes with the convolutions, and ONNX matches PyTorch."""
    import torch

    from telic.train import TrainConfig

    cfg = TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True,
                      ground_field="clearance:x,y:0.2", saturate={"clearance": 1.5},
                      **{**TINY, "epochs": 3, "freeze": True, "frozen_epochs": 1})
    report, before, _, model = train_watching_the_freeze(monkeypatch, cfg, "fields")
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.fields.parameters()))
    history = [h for h in report["history"] if not h.get("frozen")]
    assert history[-1]["train"]["seen"] < history[0]["train"]["seen"]
    assert report["onnx_vs_torch"]["max"] < 1e-4
    m = read_manifest(str(tmp_path / "manifest.toml"))
    assert m["provenance"]["training"]["ground_fields"] == ["clearance:x,y:0.2"]
    features_and_images_give_the_same_latent(model)


def test_a_field_read_where_the_image_showed_something(data, tmp_path, monkeypatch):
    """--field READOUT:X,Y:STEP with X, Y --seen readouts (the box's
    clearance read where the box is seen): the map is read at the seen
    head's estimates, so the head freezes with the map and the cached
    features stay those the images give; ONNX matches."""
    import torch

    from telic.train import TrainConfig
    from telic.train.model import GroundField

    cfg = TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, seen=["base.x", "base.y"],
                      ground_field=["clearance:base.x,base.y:0.2"], saturate={"clearance": 1.5},
                      **{**TINY, "epochs": 3, "freeze": True, "frozen_epochs": 1})
    report, before, _, model = train_watching_the_freeze(monkeypatch, cfg, "seen")
    enc = model.encoder
    assert enc.field_sources == ["seen"]
    assert all(torch.equal(a, b) for a, b in zip(before, enc.seen.parameters()))
    assert report["onnx_vs_torch"]["max"] < 1e-4
    features_and_images_give_the_same_latent(model)
    # The map is read at the seen head's estimate of the robot's position.
    rows = torch.rand(3, 3 * H * W + 2) * 255
    with torch.no_grad():
        pooled = enc.pooled(rows)[:, : enc.pooled_width]
        _, estimates = enc.encode(rows)
        maps = enc.conv(rows[:, : 3 * H * W].reshape(-1, 3, H, W) / 255.0 - 0.86)
        samples = enc.fields[0](maps, estimates[:, :2])
    assert torch.allclose(pooled[:, -GroundField.SAMPLES:], samples, atol=1e-5)


def test_fields_read_at_the_robot_come_first_and_each_feeds_the_vector_encoder():
    """Two fields: the seen head reads the pooled features and the robot's
    field only; each field's centre is an estimate after the seen ones,
    and a field read at a seen position before one read at the robot's is
    refused."""
    import torch

    from telic.train.model import GroundField, PixelEncoder

    at = dict(view=(CENTER, HALF), columns=[0, 1], mean=np.zeros(2), std=np.ones(2), step=0.2)
    robot, box = dict(at, col=2, source="proprio"), dict(at, col=3, source="seen")
    enc = PixelEncoder((3, H, W), 2, 8, 16, 1, seen=[0, 1], fields=[robot, box])
    n = GroundField.SAMPLES
    assert enc.seen_cols == [0, 1, 2, 3]
    assert enc.seen.in_features == enc.seen_width == enc.pooled_width - n
    rows = torch.rand(4, 3 * H * W + 2) * 255
    with torch.no_grad():
        z, estimates = enc.encode(rows)
        pooled = enc.pooled(rows)
    assert z.shape == (4, 8) and estimates.shape == (4, 4)
    first = enc.pooled_width - 2 * n
    assert torch.allclose(estimates[:, 2], pooled[:, first])
    assert torch.allclose(estimates[:, 3], pooled[:, first + n])
    with pytest.raises(ValueError, match="come after"):
        PixelEncoder((3, H, W), 2, 8, 16, 1, seen=[0, 1], fields=[box, robot])
    with pytest.raises(ValueError, match="needs seen readouts"):
        PixelEncoder((3, H, W), 2, 8, 16, 1, fields=[box])


@pytest.mark.parametrize("kwargs, match", [
    (dict(ground_field="clearance:x,y"), "expected READOUT:X,Y:STEP"),
    (dict(ground_field="gap:x,y:0.1"), "'gap' is not among the model's readouts"),
    (dict(ground_field="clearance:x,q:0.1"), "not proprio observations"),
    (dict(ground_field="clearance:x,y:0"), "STEP must be positive"),
    (dict(ground_field="clearance:x,y:0.1", seen=["clearance"]), "also a --seen readout"),
    (dict(ground_field="clearance:x,base.y:0.1", seen=["base.y"]), "both --seen readouts"),
    (dict(ground_field=["clearance:x,y:0.1", "clearance:x,y:0.2"]), "each readout is mapped once"),
])
def test_bad_field_options_are_clear_errors(data, tmp_path, kwargs, match):
    from telic.train import TrainConfig, train

    with pytest.raises(DataError, match=match):
        train(TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, **{**TINY, **kwargs}))


def test_field_needs_proprio_and_no_crop(data, tmp_path):
    from telic.train import TrainConfig

    with pytest.raises(ValueError, match="field needs image and proprio"):
        TrainConfig(data=str(data), out=str(tmp_path), image=True, ground_field="clearance:x,y:0.1").validate()
    with pytest.raises(ValueError, match="do not combine"):
        TrainConfig(data=str(data), out=str(tmp_path), image=True, proprio=True, ego="x,y:1:12",
                    ground_field="clearance:x,y:0.1").validate()
