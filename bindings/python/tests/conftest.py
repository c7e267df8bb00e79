"""Shared fixtures of the Python tests. They test the *installed* package
(`pip install ./bindings`, done by scripts/test), compiled core included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def telic_cmd() -> list[str]:
    """The `telic` program: $TELIC_BIN, else built on demand with cargo."""
    exe = os.environ.get("TELIC_BIN")
    if exe:
        return [exe]
    return ["cargo", "run", "--quiet", "-p", "telic-sim", "--bin", "telic", "--"]


def without_error_margins(bundle: Path, out: Path) -> Path:
    """A copy of ``bundle`` without its readout-error margins. A model trained
    for seconds has 0.99-quantile errors so wide (reach on 300 transitions: up
    to ~0.8 rad; navigate on 16×16 pixels: 0.15-0.45 m on its clearance) that,
    tightened by them, (nearly) every plan is rightly infeasible and trained
    and untrained models alike just stop; the comparison of how well they plan
    is made without them."""
    import shutil

    from telic.train import read_manifest
    from telic.train.manifest import write_manifest

    shutil.copytree(bundle, out)
    m = read_manifest(str(out / "manifest.toml"))
    m.pop("readout_error_quantiles", None)
    write_manifest(str(out / "manifest.toml"), m)
    return out


def add_images(out: Path, images, next_images, proprio: list[str], view: dict | None = None) -> Path:
    """Turns the format-1 data set in ``out`` (``telic.dataset.Recorder``)
    into a format-2 one: the uint8 ``[N, 3, H, W]`` images of every row's
    state and next state, gzip'd, described in meta.json with the
    ``proprio`` columns and, when given, the camera's ``view``."""
    import gzip
    import json

    import numpy as np

    for name, arr in (("image", images), ("next_image", next_images)):
        with gzip.open(out / f"{name}.npy.gz", "wb") as f:
            np.save(f, np.stack(arr), allow_pickle=False)
    meta = json.loads((out / "meta.json").read_text())
    _, h, w = np.shape(images[0])
    meta["format_version"] = 2
    meta["image"] = {"channels": 3, "height": h, "width": w, "dtype": "uint8", "file": "image.npy.gz",
                     "next_file": "next_image.npy.gz", **({"view": view} if view else {})}
    meta["proprio"] = proprio
    (out / "meta.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    # Scenes, assets and models are found from the checkout the tests run in.
    monkeypatch.chdir(ROOT)
