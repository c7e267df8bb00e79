"""Bundles of format version 2 from Python: ``telic.WorldModel`` shows the
image a model sees and encodes flat observations (pixels, then vector
entries) as the bundle's numpy reference says; bad pixels are input errors.
The bundles are ``tests/fixtures/pixels_*`` (scripts/make_test_bundles.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import telic

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


def test_a_model_that_sees_an_image_says_so():
    m = telic.WorldModel.load(FIXTURES / "pixels_v2")
    assert m.image == (3, 16, 16)
    assert m.observations == ["vel.x", "vel.y"]
    assert m.obs_dim == 3 * 16 * 16 + 2
    assert "image=3x16x16" in repr(m)
    gray = telic.WorldModel.load(FIXTURES / "pixels_gray_f32")
    assert (gray.image, gray.observations, gray.obs_dim) == ((1, 8, 8), [], 64)
    assert telic.WorldModel.load(FIXTURES / "point_mass_2d").image is None


def test_flat_observations_encode_as_the_reference_says():
    m = telic.WorldModel.load(FIXTURES / "pixels_v2")
    ref = json.loads((FIXTURES / "pixels_v2" / "reference.json").read_text())
    obs = np.array(ref["obs"]).reshape(-1, m.obs_dim)
    z = m.encode(obs)
    assert np.abs(z - np.array(ref["z"]).reshape(z.shape)).max() < 1e-4
    assert m.encode(obs[1]).shape == (4,)
    bad = obs[0].copy()
    bad[10] = 300.0
    with pytest.raises(telic.InputError, match="pixel at index 10 is 300"):
        m.encode(bad)
    with pytest.raises(telic.InputError, match=r"must have shape \(770,\)"):
        m.encode(obs[0, :768])
