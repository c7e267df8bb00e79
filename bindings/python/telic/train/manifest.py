"""The bundle manifest (``manifest.toml``, format versions 1 and 2): writing and checking.

The schema is that of ``engine/src/model/bundle.rs`` (``Manifest``), where
unknown keys are errors; ``check_manifest`` applies the same rules here so a
bundle the trainer writes is rejected in Python, before the engine sees it.
Only the standard library is needed (``tomllib`` reads, ``toml_writer`` writes).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass

from . import toml_writer

#: The newest manifest format (the engine reads versions 1 to this one).
FORMAT_VERSION = 2
#: The first format with an ``[image]`` table (an encoder that sees a camera image).
IMAGE_FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.toml"
# Image limits, as engine/src/model/mod.rs has them (MAX_IMAGE_SIZE, MAX_IMAGE_CHANNELS).
MAX_IMAGE_SIZE = 1024
MAX_IMAGE_CHANNELS = 4
#: ``image.dtype`` values, ``image.channel_order`` values with their channels,
#: and ``image.layout`` values.
IMAGE_DTYPES = ("uint8", "float32")
CHANNEL_ORDERS = {"rgb": 3, "gray": 1}
IMAGE_LAYOUTS = ("chw",)
# Normalisation limits, as bundle.rs has them (MAX_NORMALISATION_MEAN, …).
MAX_NORMALISATION_MEAN = 1e9
MIN_NORMALISATION_STD = 1e-9
MAX_NORMALISATION_STD = 1e9


@dataclass(frozen=True)
class Table:
    """One table of the manifest: its keys, in the order they are written,
    and those it may leave out."""

    keys: tuple[str, ...]
    optional: frozenset[str] = frozenset()

    @property
    def required(self) -> tuple[str, ...]:
        """The keys it must have, in order."""
        return tuple(k for k in self.keys if k not in self.optional)


#: The manifest's schema, that of ``Manifest`` in ``engine/src/model/bundle.rs``:
#: each table by its dotted path (``""`` the top level, ``"actions"`` every
#: ``[[actions]]`` entry). The tables it does not name (``provenance.training``,
#: ``provenance.validation.errors``, ``readout_error_quantiles.margins``) are
#: free-form. ``check_manifest`` rejects keys it lacks and misses keys it
#: requires, ``write_manifest`` writes keys in its order, and the key table of
#: docs/bundle.md is tested against it (bindings/python/tests/test_bundle_doc.py).
SCHEMA: dict[str, Table] = {
    "": Table(("format_version", "name", "dt", "latent_dim", "observations", "readouts", "actions",
               "image", "normalisation", "provenance", "readout_error_quantiles"),
              optional=frozenset({"image", "normalisation", "readout_error_quantiles"})),
    "actions": Table(("name", "lower", "upper")),
    "image": Table(("channels", "height", "width", "dtype", "channel_order", "layout")),
    "normalisation": Table(("mean", "std")),
    "provenance": Table(("scene", "samples", "episodes", "seed", "producer", "training", "validation"),
                        optional=frozenset({"producer", "training"})),
    "provenance.validation": Table(("onnx_vs_torch_max_abs_diff", "errors"), optional=frozenset({"errors"})),
    "readout_error_quantiles": Table(("quantile", "margins")),
}


class ManifestError(ValueError):
    """A manifest breaks the bundle contract (docs/bundle.md)."""


# ---------------------------------------------------------------- writing


def _in_schema_order(table: dict, path: str) -> dict:
    """A copy of ``table`` with the keys of the schema's tables in its order
    (free-form tables keep theirs)."""
    spec = SCHEMA.get(path)
    if spec is None:
        return table
    ordered = {k: table[k] for k in spec.keys if k in table}
    ordered.update(table)  # keys the schema lacks (check_manifest refuses them) stay, last
    for k, v in ordered.items():
        inner = f"{path}.{k}" if path else k
        if isinstance(v, dict):
            ordered[k] = _in_schema_order(v, inner)
        elif isinstance(v, list) and all(isinstance(x, dict) for x in v):
            ordered[k] = [_in_schema_order(x, inner) for x in v]
    return ordered


def to_toml(manifest: dict) -> str:
    """The manifest as TOML text, keys in the schema's order: scalars and
    lists first, then ``[[actions]]``, then tables. ``None`` values are left
    out (TOML has no null)."""
    return toml_writer.dumps(_in_schema_order(manifest, ""),
                             header="Telic world-model bundle manifest; the contract is docs/bundle.md.")


def write_manifest(path: str, manifest: dict) -> None:
    """Checks ``manifest`` and writes it as TOML; reads it back to be sure the
    text means the same."""
    check_manifest(manifest)
    text = to_toml(manifest)
    back = tomllib.loads(text)
    check_manifest(back)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read_manifest(path: str) -> dict:
    """Reads and checks a manifest file."""
    with open(path, "rb") as f:
        m = tomllib.load(f)
    check_manifest(m)
    return m


# ---------------------------------------------------------------- checking

def _fail(msg: str):
    raise ManifestError(f"{MANIFEST_FILE}: {msg}")


def _keys(where: str, table, schema: Table) -> None:
    if not isinstance(table, dict):
        _fail(f"{where} must be a table")
    for k in table:
        if k not in schema.keys:
            _fail(f"{where}: unknown field `{k}`")
    for k in schema.required:
        if k not in table:
            _fail(f"{where}: missing field `{k}`")


def _real(where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        _fail(f"{where} must be a number, got {v!r}")
    return float(v)


def _uint(where: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        _fail(f"{where} must be a non-negative integer, got {v!r}")
    return v


def _names(where: str, v, may_be_empty: bool = False) -> list:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        _fail(f"{where} must be a list of strings")
    if not v and not may_be_empty:
        _fail(f"{where} is empty")
    seen = set()
    for n in v:
        if not n or n in seen:
            _fail(f"{where}: name `{n}` is empty or repeated")
        seen.add(n)
    return v


def _check_image(image, version) -> None:
    """The ``[image]`` table: the checks of ``Manifest::validate_image``."""
    _keys("image", image, SCHEMA["image"])
    if version < IMAGE_FORMAT_VERSION:
        _fail(f"image: an [image] table needs format_version = {IMAGE_FORMAT_VERSION}, "
              f"this manifest says {version}")
    for key, limit in (("channels", MAX_IMAGE_CHANNELS), ("height", MAX_IMAGE_SIZE), ("width", MAX_IMAGE_SIZE)):
        n = _uint(f"image.{key}", image[key])
        if n == 0:
            _fail(f"image.{key} must be positive")
        if n > limit:
            _fail(f"image.{key} = {n} is above its limit of {limit}")
    for key, allowed in (("dtype", IMAGE_DTYPES), ("channel_order", tuple(CHANNEL_ORDERS)),
                         ("layout", IMAGE_LAYOUTS)):
        if image[key] not in allowed:
            _fail(f"image.{key}: unknown variant `{image[key]}`, expected one of "
                  + ", ".join(f"`{a}`" for a in allowed))
    want = CHANNEL_ORDERS[image["channel_order"]]
    if image["channels"] != want:
        _fail(f"image: channels = {image['channels']} but channel_order = \"{image['channel_order']}\" has {want}")


def check_manifest(m: dict) -> None:
    """Raises ``ManifestError`` unless ``m`` is a valid manifest for the engine
    (the checks of ``Manifest::validate`` in ``engine/src/model/bundle.rs``)."""
    _keys("manifest", m, SCHEMA[""])
    version = m["format_version"]
    if isinstance(version, bool) or version not in range(1, FORMAT_VERSION + 1):
        _fail(f"format_version {version} is not supported; the engine reads versions 1 to {FORMAT_VERSION}")
    if "image" in m:
        _check_image(m["image"], version)
    if not isinstance(m["name"], str) or not m["name"].strip():
        _fail("name is empty")
    dt = _real("dt", m["dt"])
    if not (math.isfinite(dt) and dt > 0):
        _fail(f"time step {dt} is not positive")
    if _uint("latent_dim", m["latent_dim"]) == 0:
        _fail("latent_dim must be positive")
    # An encoder that sees an image may take no vector at all.
    obs = _names("observations", m["observations"], may_be_empty="image" in m)
    readouts = _names("readouts", m["readouts"])
    if not isinstance(m["actions"], list):
        _fail("actions must be an array of tables")
    for i, a in enumerate(m["actions"]):
        _keys(f"actions[{i}]", a, SCHEMA["actions"])
        lo, hi = _real("lower", a["lower"]), _real("upper", a["upper"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            _fail(f"action {a['name']} has bounds [{lo}, {hi}]")
    _names("actions", [a["name"] for a in m["actions"]])
    if "normalisation" in m:
        n = m["normalisation"]
        _keys("normalisation", n, SCHEMA["normalisation"])
        if len(n["mean"]) != len(obs) or len(n["std"]) != len(obs):
            _fail(f"normalisation has {len(n['mean'])} means and {len(n['std'])} stds for {len(obs)} observations")
        for name, mu, s in zip(obs, n["mean"], n["std"]):
            mu, s = _real("mean", mu), _real("std", s)
            if not (math.isfinite(mu) and math.isfinite(s) and s > 0):
                _fail(f"normalisation of `{name}`: mean {mu}, std {s} (std must be finite and > 0)")
            # The engine computes (obs − mean) / std in float32.
            if abs(mu) > MAX_NORMALISATION_MEAN:
                _fail(f"normalisation of `{name}`: mean {mu:g} is beyond ±{MAX_NORMALISATION_MEAN:g}")
            if not MIN_NORMALISATION_STD <= s <= MAX_NORMALISATION_STD:
                _fail(f"normalisation of `{name}`: std {s:g} is outside "
                      f"[{MIN_NORMALISATION_STD:g}, {MAX_NORMALISATION_STD:g}]")
    p = m["provenance"]
    _keys("provenance", p, SCHEMA["provenance"])
    if not isinstance(p["scene"], str):
        _fail("provenance.scene must be a string")
    for k in ("samples", "episodes", "seed"):
        _uint(f"provenance.{k}", p[k])
    if "producer" in p and not isinstance(p["producer"], str):
        _fail("provenance.producer must be a string")
    if "training" in p and not isinstance(p["training"], dict):
        _fail("provenance.training must be a table")
    v = p["validation"]
    _keys("provenance.validation", v, SCHEMA["provenance.validation"])
    diff = _real("onnx_vs_torch_max_abs_diff", v["onnx_vs_torch_max_abs_diff"])
    if not (math.isfinite(diff) and diff >= 0):
        _fail(f"provenance.validation.onnx_vs_torch_max_abs_diff is {diff}")
    for k, x in v.get("errors", {}).items():
        _real(f"provenance.validation.errors.{k}", x)
    if "readout_error_quantiles" in m:
        q = m["readout_error_quantiles"]
        _keys("readout_error_quantiles", q, SCHEMA["readout_error_quantiles"])
        qq = _real("quantile", q["quantile"])
        if not (0 < qq < 1):
            _fail(f"readout_error_quantiles: quantile {qq} is not in (0, 1)")
        lengths = {len(x) for x in q["margins"].values()}
        h = max(lengths, default=0)
        for name, margins in q["margins"].items():
            if name not in readouts:
                _fail(f"readout_error_quantiles: `{name}` is not a readout of this bundle")
            if not margins or len(margins) != h:
                _fail(f"readout_error_quantiles: `{name}` has {len(margins)} steps, expected {h} like the others (at least 1)")
            for x in margins:
                if not (math.isfinite(_real("margin", x)) and x >= 0):
                    _fail(f"readout_error_quantiles: `{name}` has margin {x}; margins are finite and ≥ 0")
