"""Writing TOML (``tomllib`` only reads it), with the standard library alone.

``dumps(doc)`` writes a dictionary as TOML that ``tomllib.loads`` reads back
as the same dictionary: plain values first, then arrays of tables, then
tables, each in the dictionary's order. The bundle manifest
(``telic.train.manifest``) is written with it, and so are the mutated
scenario files of ``scripts/fuzz_scenarios.py``, which loads this file by
its path (neither ``telic`` nor numpy need be installed for that).
"""

from __future__ import annotations

import json
import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    """``k`` as a TOML key: bare when it can be, quoted otherwise."""
    return k if _BARE_KEY.match(k) else json.dumps(k).replace("\x7f", "\\u007f")


def value(v) -> str:
    """``v`` as an inline TOML value (a dictionary as an inline table)."""
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
        # JSON escapes what TOML's basic strings must escape, but for DEL.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r} ({type(v).__name__})")


def is_table_list(v) -> bool:
    """Whether ``v`` is written as an array of tables (``[[name]]``)."""
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: list[str], table: dict, out: list[str]) -> None:
    for k, v in table.items():
        if v is None or isinstance(v, dict) or is_table_list(v):
            continue
        out.append(f"{key(k)} = {value(v)}")
    for k, v in table.items():
        if is_table_list(v):
            for item in v:
                out += ["", f"[[{'.'.join(key(p) for p in path + [k])}]]"]
                _table(path + [k], item, out)
    for k, v in table.items():
        if isinstance(v, dict):
            out += ["", f"[{'.'.join(key(p) for p in path + [k])}]"]
            _table(path + [k], v, out)


def dumps(doc: dict, header: str | None = None) -> str:
    """``doc`` as TOML text, after a ``# header`` comment line when one is
    given. ``None`` values are left out (TOML has no null)."""
    out = [] if header is None else [f"# {header}"]
    _table([], doc, out)
    return "\n".join(out).strip() + "\n"
