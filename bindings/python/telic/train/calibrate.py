"""Model-error margins calibrated on the worlds a bundle will meet.

    python -m telic.train.calibrate BUNDLE --data DATA [--quantile 0.99] [--write]

A bundle's margins (``readout_error_quantiles``) are per-step quantiles of
its open-loop readout errors on held-out episodes of its training data: the
nominal world. Collected in perturbed worlds (``telic collect SCENE
--perturb moderate``), DATA says how wrong the model is there. This runs the
bundle itself (the ONNX graphs, through the engine) open loop from every
state of DATA's episodes along the recorded actions, and splits the episodes
in two halves (by a seeded shuffle of the episode indices):

- the **calibration** half gives new margins: split-conformal, the
  ``quantile`` per step of the absolute errors over its start states (the
  "higher" order statistic, so that at least that share of calibration
  errors is covered), as a running maximum over the horizon, as the trainer
  computes them;
- the **test** half measures the **coverage** of the bundle's margins and
  of the new ones: the share of (start state, step) pairs whose error is
  within the margin, per readout.

What it guarantees: over episodes drawn as the calibration episodes were
(the same scene, perturbation level and exploration), a new episode's
error at a given step is within that step's margin with probability at
least ``quantile`` (split conformal prediction, exchangeable episodes; per
step and readout, not jointly over a horizon). What it does not: other
perturbation levels, states the exploration never visited, or the planner's
own closed-loop state distribution, which differs from the collector's.

``--write`` replaces the manifest's margins with the calibrated ones and
records the data set in ``provenance.training.margins_method``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .data import DataError, load_dataset
from .manifest import MANIFEST_FILE, ManifestError, check_manifest, read_manifest, write_manifest


def open_loop_errors(model, data, rows: np.ndarray, horizon: int) -> list[np.ndarray]:
    """``errs[h - 1]``: ``[M_h, P]`` absolute readout errors ``h`` predict
    steps after encoding the observation of each start row in ``rows`` that
    has ``h`` more steps in its episode (the model's readouts, in its order)."""
    obs_cols = [data.observations.index(n) for n in model.observations]
    y_cols = [data.readout_names.index(n) for n in model.readouts]
    ranges = {e: (s, t) for e, s, t in data.episode_ranges()}
    left = np.array([ranges[int(data.episode[r])][1] - r for r in rows])
    errs = []
    z = model.encode(data.obs[rows][:, obs_cols].astype(np.float64))
    for h in range(1, horizon + 1):
        keep = left >= h
        if not keep.any():
            break
        rows, left, z = rows[keep], left[keep], z[keep]
        z = model.predict(z, data.action[rows + h - 1].astype(np.float64))
        y = model.readout(z)
        # next_readouts of row r + h - 1: the state h steps after row r.
        errs.append(np.abs(y - data.next_readouts[rows + h - 1][:, y_cols]))
    return errs


def margins_of(errs: list[np.ndarray], quantile: float) -> np.ndarray:
    """``[H, P]``: the ``quantile`` per step, as a running maximum."""
    per_step = np.stack([np.quantile(e, quantile, axis=0, method="higher") for e in errs])
    return np.maximum.accumulate(per_step, axis=0)


def coverage(errs: list[np.ndarray], margins: np.ndarray) -> np.ndarray:
    """``[P]``: the share of (start, step) pairs within the margin of their
    step (steps beyond the margins' last hold its value)."""
    inside = total = 0
    for h, e in enumerate(errs):
        m = margins[min(h, len(margins) - 1)]
        inside = inside + (e <= m).sum(axis=0)
        total += e.shape[0]
    return inside / max(total, 1)


def calibrate(bundle: str, data_path: str, quantile: float = 0.99, horizon: int | None = None,
              seed: int = 0, threads: int = 1) -> dict:
    """Calibrates ``bundle``'s margins on ``data_path``; returns the report
    (per readout: stated quantile, coverage of the bundle's margins and of
    the calibrated ones on the test half, the calibrated margins)."""
    from .. import WorldModel

    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    model = WorldModel.load(bundle, threads=threads)
    if model.image is not None:
        raise DataError(f"{bundle}: reads camera images; calibrate takes state bundles for now")
    data = load_dataset(data_path)
    missing = [n for n in model.observations if n not in data.observations]
    missing += [n for n in model.readouts if n not in data.readout_names]
    if missing:
        raise DataError(f"{data_path}: lacks {missing}, which {bundle} reads")
    manifest = read_manifest(os.path.join(bundle, MANIFEST_FILE))
    stated = manifest.get("readout_error_quantiles") or {}
    old = stated.get("margins") or {}
    h = horizon or max((len(v) for v in old.values()), default=10)
    episodes = np.unique(data.episode)
    if episodes.size < 4:
        raise DataError(f"{data_path}: {episodes.size} episodes; calibration needs at least 4")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(episodes)
    cal_eps, test_eps = shuffled[: episodes.size // 2], shuffled[episodes.size // 2:]
    rows = np.arange(len(data))
    cal = open_loop_errors(model, data, rows[np.isin(data.episode, cal_eps)], h)
    test = open_loop_errors(model, data, rows[np.isin(data.episode, test_eps)], h)
    new = margins_of(cal, quantile)
    report = {"bundle": bundle, "data": data_path, "quantile": quantile, "horizon": len(cal),
              "calibration_episodes": int(cal_eps.size), "test_episodes": int(test_eps.size),
              "perturb": (data.meta.get("scenario") or {}).get("perturb"), "readouts": {}}
    for i, name in enumerate(model.readouts):
        entry = {"calibrated": [float(x) for x in new[:, i]],
                 "coverage_calibrated": float(coverage([e[:, i:i + 1] for e in test], new[:, i:i + 1])[0])}
        if name in old:
            m = np.asarray(old[name], dtype=float).reshape(-1, 1)
            entry["bundle"] = [float(x) for x in m[:, 0]]
            entry["coverage_bundle"] = float(coverage([e[:, i:i + 1] for e in test], m)[0])
        report["readouts"][name] = entry
    return report


def write(bundle: str, report: dict) -> None:
    """Replaces ``bundle``'s margins with the calibrated ones of ``report``."""
    path = os.path.join(bundle, MANIFEST_FILE)
    manifest = read_manifest(path)
    manifest["readout_error_quantiles"] = {
        "quantile": report["quantile"],
        "margins": {n: r["calibrated"] for n, r in report["readouts"].items()},
    }
    training = manifest.setdefault("provenance", {}).setdefault("training", {})
    training["margins_method"] = (
        f"split-conformal quantile {report['quantile']} per step over the start states of "
        f"{report['calibration_episodes']} episodes of {report['data']} (perturb: {report['perturb']}), "
        f"running maximum over the horizon (telic.train.calibrate)")
    check_manifest(manifest)
    write_manifest(path, manifest)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m telic.train.calibrate",
                                description="Calibrate a bundle's model-error margins on a data set "
                                            "(e.g. collected in perturbed worlds) and measure their coverage.")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help="a data set folder written by telic collect")
    p.add_argument("--quantile", type=float, default=0.99)
    p.add_argument("--horizon", type=int, help="steps (default: the bundle's margins' length)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration/test split")
    p.add_argument("--write", action="store_true", help="replace the bundle's margins with the calibrated ones")
    args = p.parse_args(argv)
    try:
        report = calibrate(args.bundle, args.data, args.quantile, args.horizon, args.seed)
        if args.write:
            write(args.bundle, report)
    except (DataError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    q = report["quantile"]
    print(f"{report['bundle']} on {report['data']} (perturb {report['perturb']}): "
          f"{report['calibration_episodes']} calibration / {report['test_episodes']} test episodes, "
          f"{report['horizon']} steps, stated {q}")
    print("| readout | coverage, the bundle's margins | coverage, calibrated | margin step 1 / last, bundle | "
          "calibrated |")
    print("|---|---|---|---|---|")
    for name, r in report["readouts"].items():
        b = r.get("bundle")
        c = r["calibrated"]
        print(f"| {name} | {r.get('coverage_bundle', float('nan')):.4f} | {r['coverage_calibrated']:.4f} | "
              + (f"{b[0]:.4g} / {b[-1]:.4g}" if b else "–") + f" | {c[0]:.4g} / {c[-1]:.4g} |")
    if args.write:
        print(f"margins written to {os.path.join(args.bundle, MANIFEST_FILE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
