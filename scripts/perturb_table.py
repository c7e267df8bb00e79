#!/usr/bin/env python3
"""Success and true violations of each scene, analytic and learned, in
perturbed worlds: `telic run SCENE --model M --perturb LEVEL` for every
combination, then one table (docs/robustness.md has the measured one).

    python3 scripts/perturb_table.py                      # 100 episodes, seed 1, all of it
    python3 scripts/perturb_table.py --episodes 20 --scenes navigate --levels none,severe

Runs are kept as JSON in --out (default /tmp/telic-perturb); a run whose
JSON is there is read, not run again (delete it to re-run), and one that was
cut is resumed. The telic
program is $TELIC_BIN, else the workspace's debug build (built first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def telic_bin() -> str:
    given = os.environ.get("TELIC_BIN")
    if given:
        return given
    subprocess.run(["cargo", "build", "--quiet", "--bin", "telic"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "telic")


def run(telic: str, scene: str, model: str, level: str, args) -> dict:
    out = Path(args.out) / f"{scene}-{model}-{level}-s{args.seed}-n{args.episodes}.json"
    if not (out.exists() and json.loads(out.read_text()).get("complete", True)):
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [telic, "run", scene, "--model", model, "--perturb", level, "--episodes", str(args.episodes),
               "--seed", str(args.seed), "--jobs", str(args.jobs), "--quiet", "--json", str(out)]
        if Path(f"{out}.partial.jsonl").exists():
            cmd.append("--resume")  # a run that was cut: its finished episodes are kept
        print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def delay_identified(episodes: list[dict]) -> str:
    """How many episodes' planners identified the delay their world drew
    (by the last plan), or `-` when the planner did not identify delays."""
    if not any("delay_identified" in e for e in episodes):
        return "-"
    right = sum(e.get("delay_identified") == (e.get("perturbation") or {}).get("delay", 0) for e in episodes)
    return f"{right}/{len(episodes)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", default="reach,navigate,push")
    p.add_argument("--models", default="analytic,default", help="analytic, default (the shipped bundle) or a bundle")
    p.add_argument("--levels", default="none,mild,moderate")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="/tmp/telic-perturb")
    args = p.parse_args()
    telic = telic_bin()
    print("| scene | model | level | success | episodes with true violations (steps) | worst true margin | "
          "fallback steps | delay identified | plan p50 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scene in args.scenes.split(","):
        for model in args.models.split(","):
            base = None
            for level in args.levels.split(","):
                result = run(telic, scene, model, level, args)
                s = result["summary"]
                rate = 100.0 * s["success_rate"]
                if level == "none":
                    base = rate
                rel = f" ({rate / base:.0%} of none)" if level != "none" and base else ""
                print(f"| {scene} | {'learned' if model == 'default' else model} | {level} | {rate:.0f}%{rel} | "
                      f"{s['episodes_with_violations']} ({s['violation_steps']}) | "
                      f"{s['worst_margin']:.4f} ({s['worst_guardrail']}) | {s['fallback_steps']} | "
                      f"{delay_identified(result['episodes'])} | "
                      f"{s['plan_latency_p50_ms']:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
