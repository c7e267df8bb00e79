"""A readout mapped over the ground and carried in the latent (``--map``,
``GroundMap``): the grid is taken around the robot when the image is
encoded, the predictor carries it unchanged, and the readout samples it
where the predictor imagines the robot."""

from __future__ import annotations

import numpy as np
import pytest

from telic.train import DataError, read_manifest
from test_train_seen import CENTER, HALF, TINY, data, train_watching_the_freeze  # noqa: F401

SPEC = "clearance:x,y:base.x,base.y:0.6:5"


def test_the_map_is_read_where_the_robot_is_imagined():
    """A grid whose value is its column index: the readout at a position
    0.3 m right of where the grid was taken reads the column 0.3 m right."""
    import torch

    from telic.train.model import MapReadout

    cells, half = 5, 0.6
    reader = MapReadout(col=2, pos=[0, 1], cells=cells, half=half, pos_std=[1.0, 1.0])
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
    z = wm.encode(rows)
    assert np.array_equal(wm.predict(z, np.zeros((2, 2)))[:, TINY["latent_dim"]:], z[:, TINY["latent_dim"]:])


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
