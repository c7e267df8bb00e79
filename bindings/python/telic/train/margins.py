"""Choosing the confidence level of a bundle's model-error margins after training.

    python -m telic.train.margins BUNDLE --quantile 0.95

The trainer measures the open-loop readout errors on the held-out episodes
once and stores their per-step quantiles at several levels (0.9, 0.95, 0.99
and the one asked for) in ``training_report.json``. This rewrites the
manifest's ``readout_error_quantiles`` with another of those levels — a wider
or narrower safety band on every guardrail, measured on the same data — and
records the choice in ``provenance.training.margins_method``. The graphs are
untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .manifest import MANIFEST_FILE, ManifestError, check_manifest, read_manifest, write_manifest

REPORT_FILE = "training_report.json"


def set_quantile(bundle: str, quantile: float) -> dict:
    """Rewrites ``bundle``'s margins at ``quantile``; returns the new manifest."""
    report_path = os.path.join(bundle, REPORT_FILE)
    try:
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{report_path}: missing; only bundles written by telic.train have one") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{report_path}: {e}") from None
    table = report.get("margins_by_quantile") or {}
    margins = next((m for q, m in table.items() if abs(float(q) - quantile) < 1e-12), None)
    if margins is None:
        have = ", ".join(sorted(table)) or "none"
        raise ManifestError(f"{report_path}: no margins at quantile {quantile} (it has: {have})")
    path = os.path.join(bundle, MANIFEST_FILE)
    manifest = read_manifest(path)
    manifest["readout_error_quantiles"] = {"quantile": quantile, "margins": margins}
    training = manifest.setdefault("provenance", {}).setdefault("training", {})
    training["margins_method"] = (f"quantile {quantile} per step over held-out starts, running maximum over "
                                  f"the horizon (chosen after training with telic.train.margins)")
    check_manifest(manifest)
    write_manifest(path, manifest)
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m telic.train.margins",
                                description="Set the confidence level of a bundle's model-error margins.")
    p.add_argument("bundle", help="bundle folder written by python -m telic.train")
    p.add_argument("--quantile", type=float, required=True, help="one of the levels in training_report.json")
    args = p.parse_args(argv)
    try:
        m = set_quantile(args.bundle, args.quantile)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    first = {k: round(v[0], 4) for k, v in list(m["readout_error_quantiles"]["margins"].items())[:4]}
    print(f"{args.bundle}: margins at quantile {args.quantile} (first step: {first} ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
