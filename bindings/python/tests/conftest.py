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


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    # Scenes, assets and models are found from the checkout the tests run in.
    monkeypatch.chdir(ROOT)
