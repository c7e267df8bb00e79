"""The bundle manifest (``manifest.toml``, format version 1): writing and checking.

The schema is that of ``engine/src/model/bundle.rs`` (``Manifest``), where
unknown keys are errors; ``check_manifest`` applies the same rules here so a
bundle the trainer writes is rejected in Python, before the engine sees it.
Only the standard library is needed (``tomllib`` reads, a small writer writes).
"""

from __future__ import annotations

import json
import math
import re
import tomllib

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.toml"

_TOP = {"format_version", "name", "dt", "latent_dim", "observations", "readouts", "actions",
        "normalisation", "provenance", "readout_error_quantiles"}
_TOP_REQUIRED = _TOP - {"normalisation", "readout_error_quantiles"}
_ACTION = {"name", "lower", "upper"}
_NORMALISATION = {"mean", "std"}
_PROVENANCE = {"scene", "samples", "episodes", "seed", "producer", "training", "validation"}
_PROVENANCE_REQUIRED = {"scene", "samples", "episodes", "seed", "validation"}
_VALIDATION = {"onnx_vs_torch_max_abs_diff", "errors"}
_QUANTILES = {"quantile", "margins"}


class ManifestError(ValueError):
    """A manifest breaks the bundle contract (docs/bundle.md)."""


# ---------------------------------------------------------------- writing

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r} ({type(v).__name__})")


def _is_table_list(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: list[str], table: dict, out: list[str]) -> None:
    for k, v in table.items():
        if v is None or isinstance(v, dict) or _is_table_list(v):
            continue
        out.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        if _is_table_list(v):
            for item in v:
                out += ["", f"[[{'.'.join(_key(p) for p in path + [k])}]]"]
                _table(path + [k], item, out)
    for k, v in table.items():
        if isinstance(v, dict):
            out += ["", f"[{'.'.join(_key(p) for p in path + [k])}]"]
            _table(path + [k], v, out)


def to_toml(manifest: dict) -> str:
    """The manifest as TOML text: scalars and lists first, then ``[[actions]]``,
    then tables. ``None`` values are left out (TOML has no null)."""
    out = ["# Telic world-model bundle manifest; the contract is docs/bundle.md."]
    _table([], manifest, out)
    return "\n".join(out).strip() + "\n"


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


def _keys(where: str, table, allowed: set, required: set) -> None:
    if not isinstance(table, dict):
        _fail(f"{where} must be a table")
    for k in table:
        if k not in allowed:
            _fail(f"{where}: unknown field `{k}`")
    for k in required:
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


def _names(where: str, v) -> list:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        _fail(f"{where} must be a list of strings")
    if not v:
        _fail(f"{where} is empty")
    seen = set()
    for n in v:
        if not n or n in seen:
            _fail(f"{where}: name `{n}` is empty or repeated")
        seen.add(n)
    return v


def check_manifest(m: dict) -> None:
    """Raises ``ManifestError`` unless ``m`` is a valid manifest for the engine
    (the checks of ``Manifest::validate`` in ``engine/src/model/bundle.rs``)."""
    _keys("manifest", m, _TOP, _TOP_REQUIRED)
    if m["format_version"] != FORMAT_VERSION:
        _fail(f"format_version {m['format_version']} is not supported; the engine reads version {FORMAT_VERSION}")
    if not isinstance(m["name"], str) or not m["name"].strip():
        _fail("name is empty")
    dt = _real("dt", m["dt"])
    if not (math.isfinite(dt) and dt > 0):
        _fail(f"time step {dt} is not positive")
    if _uint("latent_dim", m["latent_dim"]) == 0:
        _fail("latent_dim must be positive")
    obs = _names("observations", m["observations"])
    readouts = _names("readouts", m["readouts"])
    if not isinstance(m["actions"], list):
        _fail("actions must be an array of tables")
    for i, a in enumerate(m["actions"]):
        _keys(f"actions[{i}]", a, _ACTION, _ACTION)
        lo, hi = _real("lower", a["lower"]), _real("upper", a["upper"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            _fail(f"action {a['name']} has bounds [{lo}, {hi}]")
    _names("actions", [a["name"] for a in m["actions"]])
    if "normalisation" in m:
        n = m["normalisation"]
        _keys("normalisation", n, _NORMALISATION, _NORMALISATION)
        if len(n["mean"]) != len(obs) or len(n["std"]) != len(obs):
            _fail(f"normalisation has {len(n['mean'])} means and {len(n['std'])} stds for {len(obs)} observations")
        for name, mu, s in zip(obs, n["mean"], n["std"]):
            mu, s = _real("mean", mu), _real("std", s)
            if not (math.isfinite(mu) and math.isfinite(s) and s > 0):
                _fail(f"normalisation of `{name}`: mean {mu}, std {s} (std must be finite and > 0)")
    p = m["provenance"]
    _keys("provenance", p, _PROVENANCE, _PROVENANCE_REQUIRED)
    if not isinstance(p["scene"], str):
        _fail("provenance.scene must be a string")
    for k in ("samples", "episodes", "seed"):
        _uint(f"provenance.{k}", p[k])
    if "producer" in p and not isinstance(p["producer"], str):
        _fail("provenance.producer must be a string")
    if "training" in p and not isinstance(p["training"], dict):
        _fail("provenance.training must be a table")
    v = p["validation"]
    _keys("provenance.validation", v, _VALIDATION, {"onnx_vs_torch_max_abs_diff"})
    diff = _real("onnx_vs_torch_max_abs_diff", v["onnx_vs_torch_max_abs_diff"])
    if not (math.isfinite(diff) and diff >= 0):
        _fail(f"provenance.validation.onnx_vs_torch_max_abs_diff is {diff}")
    for k, x in v.get("errors", {}).items():
        _real(f"provenance.validation.errors.{k}", x)
    if "readout_error_quantiles" in m:
        q = m["readout_error_quantiles"]
        _keys("readout_error_quantiles", q, _QUANTILES, _QUANTILES)
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
