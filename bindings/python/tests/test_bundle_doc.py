"""docs/bundle.md against the manifest schema of the Python package
(``telic.train.manifest.SCHEMA``): the page's key table names the keys of
every table the checker knows, in the order they are written, with the same
required ones, and the page's example is a manifest the checker accepts and
the writer reproduces. ``tests/tests/bundle_doc.rs`` holds the same page to
the engine's schema.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from telic.train.manifest import SCHEMA, ManifestError, check_manifest, to_toml

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


def examples() -> list[dict]:
    """The page's TOML blocks: first the full example, then smaller ones."""
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert blocks, "docs/bundle.md has a TOML example"
    return [tomllib.loads(b) for b in blocks]


def example() -> dict:
    return examples()[0]


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


def test_the_examples_are_manifests_the_writer_reproduces():
    all_ = examples()
    assert len(all_) >= 2, "the full example and version 2's image-only one"
    for m in all_:
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


def test_image_tables_are_checked_as_the_engine_checks_them():
    m = example()
    assert m["format_version"] == 2 and m["image"]["dtype"] == "uint8"
    cases = [
        (("format_version",), 1, "an [image] table needs format_version = 2"),
        (("format_version",), 3, "format_version 3 is not supported"),
        (("image", "channels"), 1, 'channels = 1 but channel_order = "rgb" has 3'),
        (("image", "height"), 2000, "image.height = 2000 is above its limit of 1024"),
        (("image", "width"), 0, "image.width must be positive"),
        (("image", "dtype"), "int8", "image.dtype: unknown variant `int8`"),
        (("image", "channel_order"), "bgr", "image.channel_order: unknown variant `bgr`"),
        (("image", "layout"), "hwc", "image.layout: unknown variant `hwc`"),
        (("image", "scale"), 1.0, "image: unknown field `scale`"),
    ]
    for path, value, want in cases:
        bad = copy.deepcopy(m)
        table = bad
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
        with pytest.raises(ManifestError, match=re.escape(want)):
            check_manifest(bad)
    gray = copy.deepcopy(m)
    gray["image"].update(channels=1, channel_order="gray", dtype="float32")
    check_manifest(gray)
    # Observations may be empty with an image, not without one.
    only_image = copy.deepcopy(m)
    only_image["observations"] = []
    del only_image["normalisation"]
    check_manifest(only_image)
    del only_image["image"]
    with pytest.raises(ManifestError, match="observations is empty"):
        check_manifest(only_image)
