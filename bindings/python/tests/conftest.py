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


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    # Scenes, assets and models are found from the checkout the tests run in.
    monkeypatch.chdir(ROOT)
