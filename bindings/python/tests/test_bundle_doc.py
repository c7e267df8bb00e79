"""docs/bundle.md against the manifest schema of the Python package
(``telic.train.manifest.SCHEMA``): the page's key table names the keys of
every table the checker knows, in the order they are written, with the same
required ones, and the page's example is a manifest the checker accepts and
the writer reproduces. ``tests/tests/bundle_doc.rs`` holds the same page to
the engine's schema.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from telic.train.manifest import SCHEMA, check_manifest, to_toml

DOC = Path(__file__).resolve().parents[3] / "docs" / "bundle.md"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \| (yes|no) \|")


def key_table() -> list[tuple[str, str, bool]]:
    """The rows of the page's key table: (dotted path, type, required)."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m[1], m[2], m[3] == "yes"))
    return rows


def example() -> dict:
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 1, "docs/bundle.md has one TOML example"
    return tomllib.loads(blocks[0])


def split(path: str) -> tuple[str, str]:
    """The table of a key and its name: ``actions[].name`` is ``name`` of ``actions``."""
    table, _, key = path.replace("[]", "").rpartition(".")
    return table, key


def test_the_key_table_is_the_schema():
    rows = key_table()
    assert len(rows) > 10, rows
    tables = {""} | {path.replace("[]", "") for path, kind, _ in rows
                     if kind in ("table", "array of tables")}
    assert tables == set(SCHEMA), "tables that are not free-form"
    for table, spec in SCHEMA.items():
        keys = [(split(path)[1], required) for path, _, required in rows if split(path)[0] == table]
        assert [k for k, _ in keys] == list(spec.keys), f"keys of `{table}`, in order"
        assert [k for k, required in keys if required] == list(spec.required), f"required keys of `{table}`"


def test_the_example_is_a_manifest_the_writer_reproduces():
    m = example()
    check_manifest(m)
    assert tomllib.loads(to_toml(m)) == m


def test_the_example_has_every_key_of_the_table():
    m = example()
    for path, _, _ in key_table():
        tables = [m]
        *inner, key = path.split(".")
        for segment in inner:
            name = segment.removesuffix("[]")
            tables = [x for t in tables for x in (t[name] if segment.endswith("[]") else [t[name]])]
        assert all(key in t for t in tables), path
