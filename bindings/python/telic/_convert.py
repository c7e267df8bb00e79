"""Plain data to JSON for the native module (dicts, lists, numbers, strings,
numpy arrays and scalars)."""

from __future__ import annotations

import json
import math
from typing import Any


def _plain(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not plain data")


def _check(o: Any, where: str) -> None:
    if isinstance(o, float) and not math.isfinite(o):
        raise ValueError(f"{where} is {o}: values must be finite")
    if isinstance(o, dict):
        for k, v in o.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings, got {k!r}")
            _check(v, f"{where}.{k}")
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            _check(v, f"{where}[{i}]")


def to_json(obj: Any, what: str) -> str:
    """``obj`` as JSON text; ``what`` names it in errors."""
    try:
        text = json.dumps(obj, default=_plain, allow_nan=True)
        _check(json.loads(text), what)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be plain data (dicts, lists, numbers, strings): {e}") from None
    return text


def to_data(obj: Any, what: str) -> Any:
    """``obj`` as plain data (dicts, lists, strings, ints, floats, bools,
    None; numpy values as lists and numbers), checked as by :func:`to_json`."""
    return json.loads(to_json(obj, what))
