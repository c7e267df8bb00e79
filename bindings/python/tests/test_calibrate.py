"""Model-error margins calibrated on data collected in perturbed worlds
(``python -m telic.train.calibrate``): the bundle itself runs open loop on
the data's episodes, one half calibrates, the other measures coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import telic
from telic.errors import ConfigError
from telic.train import read_manifest
from telic.train.calibrate import calibrate, coverage, main, margins_of, write
from telic.train.data import DataError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "navigate_moderate"
    telic.collect("navigate", out, episodes=8, seed=4, steps_per_episode=30, planner_fraction=0.0,
                  jobs=1, perturb="moderate")
    return out


def test_margins_are_per_step_quantiles_and_coverage_counts_them():
    errs = [np.arange(100, dtype=float).reshape(100, 1), np.full((50, 1), 3.0)]
    m = margins_of(errs, 0.9)
    assert m.shape == (2, 1)
    assert m[0, 0] == 90.0 and m[1, 0] == 90.0, "a running maximum over the horizon"
    assert coverage(errs, m)[0] == (91 + 50) / 150


def test_calibration_on_perturbed_data_reports_coverage_and_writes_margins(perturbed, tmp_path):
    bundle = tmp_path / "navigate"
    shutil.copytree(ROOT / "models" / "navigate", bundle)
    report = calibrate(str(bundle), str(perturbed), quantile=0.9, horizon=5)
    assert report["perturb"] == {"level": "moderate"}
    assert report["calibration_episodes"] + report["test_episodes"] == 8
    assert report["horizon"] == 5
    for name, r in report["readouts"].items():
        assert len(r["calibrated"]) == 5
        assert np.all(np.diff(r["calibrated"]) >= 0), name
        assert 0.0 <= r["coverage_calibrated"] <= 1.0 and 0.0 <= r["coverage_bundle"] <= 1.0
    write(str(bundle), report)
    m = read_manifest(str(bundle / "manifest.toml"))
    assert m["readout_error_quantiles"]["quantile"] == 0.9
    assert "telic.train.calibrate" in m["provenance"]["training"]["margins_method"]
    model = telic.WorldModel.load(bundle)  # the engine still loads it
    assert model.readouts == list(report["readouts"])
    assert main([str(bundle), "--data", str(perturbed), "--horizon", "3"]) == 0


def test_data_that_does_not_fit_the_bundle_is_a_clear_error(perturbed, tmp_path):
    with pytest.raises(DataError, match="lacks"):
        calibrate(str(ROOT / "models" / "reach"), str(perturbed))
    with pytest.raises(DataError, match="images"):
        calibrate(str(ROOT / "models" / "push_pixels"), str(perturbed))
    with pytest.raises(ValueError, match="quantile"):
        calibrate(str(ROOT / "models" / "navigate"), str(perturbed), quantile=1.5)
    with pytest.raises((DataError, ConfigError, OSError)):
        calibrate(str(ROOT / "models" / "navigate"), str(tmp_path / "missing"))
