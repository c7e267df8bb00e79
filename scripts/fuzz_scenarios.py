#!/usr/bin/env python3
"""Fuzzes the `telic` program with mutated scenario files.

Each case takes one shipped scenario (sim/scenarios/*.toml), changes one
thing in it (a mutation family below), writes it to a temporary file and runs

    telic run CASE.toml --episodes 1 --jobs 1 --quiet --model analytic

(every eighth case without `--model`: the scene's shipped learned model)
under a time limit. Unless the mutation is about the episode itself, the
case's `episode.max_time` is cut to 1 s (0.05 s, one control step, with a
learned model) so that a case that runs is short.
Each case is classified:

    ok      exit 0
    error   a clean refusal: exit 1 or 2 with a message on stderr
    PANIC   exit 101 or "panicked at" on stderr
    ABORT   killed by a signal (an allocation failure aborts with SIGABRT)
    HANG    still running at the time limit
    ODD     any other exit status, or exit 1 without a message

The cases are determined by --seed: the same seed and count give the same
cases (case i depends only on the seed and i). The summary line gives the
counts; the exit status is 1 when any case panicked, aborted, hung or was
odd, and the files of those cases are kept (--keep) to rerun them by hand.

Mutation families: huge numbers (1e9, 1e12, 1e308), i64::MAX and i64::MIN,
negative values, zero, tiny values (1e-300), NaN and ±inf, strings and
booleans for numbers, a number for a table or an array, wrong-length
arrays (one more or one less element), empty arrays, missing keys, removed
sections, duplicate names for cost terms, guardrails and bodies (an entry
copied, or renamed to another's name), unknown keys, and a section written
as an array (`episode = [1.0]`).

Stdlib only (Python 3.11+: tomllib).

    python3 scripts/fuzz_scenarios.py --cases 500 --seed 1
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import importlib.util
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "sim" / "scenarios"

I64_MAX = 9223372036854775807
I64_MIN = -9223372036854775808
NAMED_LISTS = ("terms", "guardrails", "bodies")
FAILURES = ("PANIC", "ABORT", "HANG", "ODD")


# The TOML writer of the bundle manifest, loaded from its file: neither the
# telic package nor numpy need be installed to fuzz.
_spec = importlib.util.spec_from_file_location(
    "telic_toml_writer", ROOT / "bindings" / "python" / "telic" / "train" / "toml_writer.py"
)
toml_writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toml_writer)


# --- where to mutate --------------------------------------------------------


def leaves(doc, path=()):
    """Every (path, value) in `doc`, containers included (not the root)."""
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return
    for k, v in items:
        p = path + (k,)
        yield p, v
        yield from leaves(v, p)


def get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def put(doc, path, value):
    get(doc, path[:-1])[path[-1]] = value


def remove(doc, path):
    parent = get(doc, path[:-1])
    del parent[path[-1]]


def numbers(doc):
    return [(p, v) for p, v in leaves(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)]


def arrays(doc):
    return [(p, v) for p, v in leaves(doc) if isinstance(v, list) and not toml_writer.is_table_list(v)]


def named_lists(doc):
    """Paths of the objective's lists of named entries."""
    obj = doc.get("objective", {})
    return [("objective", k) for k in NAMED_LISTS if toml_writer.is_table_list(obj.get(k))]


# --- mutation families --------------------------------------------------------
# Each takes (doc, rng), changes doc in place, and returns a description, or
# None when it does not apply to this document.


def _set_number(values):
    def mutate(doc, rng):
        nums = numbers(doc)
        if not nums:
            return None
        path, old = rng.choice(nums)
        new = rng.choice(values(old))
        put(doc, path, new)
        return f"{'.'.join(map(str, path))} = {toml_writer.value(new)}"

    return mutate


def _huge(old):
    if isinstance(old, int):
        return [10**9, 10**12, 10**18]
    return [1e9, 1e12, 1e308, -1e308]


MUTATIONS = {
    "huge": _set_number(_huge),
    "i64": _set_number(lambda old: [I64_MAX, I64_MIN]),
    "negative": _set_number(lambda old: [-1, -abs(old) - 1] if isinstance(old, int) else [-1.0, -abs(old)]),
    "zero": _set_number(lambda old: [0] if isinstance(old, int) else [0.0]),
    "tiny": _set_number(lambda old: [1e-300, 5e-324]),
    "nonfinite": _set_number(lambda old: [math.nan, math.inf, -math.inf]),
    "string": _set_number(lambda old: ["abc", str(old), ""]),
    "bool": _set_number(lambda old: [True, False]),
}


def _wrong_type(doc, rng):
    cands = [(p, v) for p, v in leaves(doc) if isinstance(v, (dict, list))]
    if not cands:
        return None
    path, _ = rng.choice(cands)
    new = rng.choice([1, 1.5, "x", True])
    put(doc, path, new)
    return f"{'.'.join(map(str, path))} = {toml_writer.value(new)} (was a table or array)"


def _longer(doc, rng):
    arr = arrays(doc)
    if not arr:
        return None
    path, v = rng.choice(arr)
    extra = copy.deepcopy(v[-1]) if v else 1.0
    v.append(extra)
    return f"{'.'.join(map(str, path))}: one more element"


def _shorter(doc, rng):
    arr = [(p, v) for p, v in arrays(doc) if v]
    if not arr:
        return None
    path, v = rng.choice(arr)
    v.pop()
    return f"{'.'.join(map(str, path))}: one element less"


def _empty(doc, rng):
    cands = [(p, v) for p, v in leaves(doc) if isinstance(v, list) and v]
    if not cands:
        return None
    path, _ = rng.choice(cands)
    put(doc, path, [])
    return f"{'.'.join(map(str, path))} = []"


def _missing_key(doc, rng):
    cands = [p for p, _ in leaves(doc) if isinstance(p[-1], str)]
    if not cands:
        return None
    path = rng.choice(cands)
    remove(doc, path)
    return f"{'.'.join(map(str, path))} removed"


def _removed_section(doc, rng):
    cands = [(k,) for k in doc] + [("objective", k) for k in doc.get("objective", {})]
    cands += [p + (i,) for p in named_lists(doc) for i in range(len(get(doc, p)))]
    path = rng.choice(cands)
    remove(doc, path)
    return f"section {'.'.join(map(str, path))} removed"


def _duplicate_name(doc, rng):
    lists = named_lists(doc)
    if not lists:
        return None
    path = rng.choice(lists)
    entries = get(doc, path)
    i = rng.randrange(len(entries))
    if len(entries) > 1 and rng.random() < 0.5:
        j = rng.choice([k for k in range(len(entries)) if k != i])
        entries[j]["name"] = entries[i].get("name", "x")
        return f"{'.'.join(path)}[{j}] renamed to {entries[i].get('name')!r}"
    entries.append(copy.deepcopy(entries[i]))
    return f"{'.'.join(path)}[{i}] duplicated"


def _unknown_key(doc, rng):
    cands = [p for p, v in leaves(doc) if isinstance(v, dict)] + [()]
    path = rng.choice(cands)
    get(doc, path)["not_a_setting"] = 1
    return f"unknown key in {'.'.join(map(str, path)) or 'top level'}"


def _section_as_array(doc, rng):
    cands = [k for k, v in doc.items() if isinstance(v, dict) and k != "scene"]
    if not cands:
        return None
    k = rng.choice(cands)
    doc[k] = rng.choice([[1.0], [1.0, 0], []])
    return f"{k} = {toml_writer.value(doc[k])}"


MUTATIONS.update(
    {
        "wrong_type": _wrong_type,
        "longer": _longer,
        "shorter": _shorter,
        "empty": _empty,
        "missing_key": _missing_key,
        "removed_section": _removed_section,
        "duplicate_name": _duplicate_name,
        "unknown_key": _unknown_key,
        "section_as_array": _section_as_array,
    }
)


# --- cases --------------------------------------------------------------------


def make_case(i: int, seed: int, bases: dict[str, dict]):
    """Case `i` of run `seed`: (scenario, family, description, document, learned)."""
    rng = random.Random(f"{seed}/{i}")
    families = sorted(MUTATIONS)
    for _ in range(100):
        name = rng.choice(sorted(bases))
        family = rng.choice(families)
        doc = copy.deepcopy(bases[name])
        what = MUTATIONS[family](doc, rng)
        if what is None:
            continue
        # A case that runs stays short, unless its mutation is the episode's:
        # 1 s, or one 0.05 s control step with a learned model
        # (reach_latent's gradient planner takes seconds per plan through
        # ONNX Runtime).
        learned = i % 8 == 7
        if "episode" not in what and isinstance(doc.get("episode"), dict):
            doc["episode"]["max_time"] = 0.05 if learned else 1.0
        return name, family, what, doc, learned
    raise RuntimeError(f"case {i}: no mutation applies")


def classify(rc: int | None, stderr: str) -> str:
    if rc is None:
        return "HANG"
    if "panicked at" in stderr or rc == 101:
        return "PANIC"
    if rc < 0 or rc == 134:
        return "ABORT"
    if rc == 0:
        return "ok"
    if rc in (1, 2) and stderr.strip():
        return "error"
    return "ODD"


def run_case(binary: str, path: Path, learned: bool, timeout: float):
    cmd = [binary, "run", str(path), "--episodes", "1", "--jobs", "1", "--quiet"]
    if not learned:
        cmd += ["--model", "analytic"]
    env = dict(os.environ, RUST_BACKTRACE="0")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    return classify(rc, err), rc, err, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=500, help="number of cases (default 500)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the cases (default 1)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument(
        "--binary",
        default=os.environ.get("TELIC_BIN"),
        help="the telic program (default $TELIC_BIN, else $CARGO_TARGET_DIR/debug/telic or target/debug/telic)",
    )
    ap.add_argument("--keep", type=Path, help="folder for the files of failing cases (default: a temporary folder)")
    ap.add_argument("--verbose", action="store_true", help="one line per case")
    args = ap.parse_args()

    binary = args.binary
    if not binary:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        binary = str((target if target.is_absolute() else ROOT / target) / "debug" / "telic")
    if not Path(binary).exists():
        print(f"fuzz_scenarios: no telic program at {binary} (build it: cargo build -p telic-sim --bin telic)")
        return 2
    bases = {p.stem: tomllib.loads(p.read_text()) for p in sorted(SCENARIOS.glob("*.toml"))}
    if not bases:
        print(f"fuzz_scenarios: no scenarios in {SCENARIOS}")
        return 2

    work = Path(tempfile.mkdtemp(prefix="telic-fuzz-"))
    keep = args.keep or Path(tempfile.mkdtemp(prefix="telic-fuzz-failures-"))
    cases = []
    for i in range(args.cases):
        name, family, what, doc, learned = make_case(i, args.seed, bases)
        path = work / f"case{i:04}_{name}_{family}.toml"
        path.write_text(f"# case {i} (seed {args.seed}): {name}.toml, {family}: {what}\n" + toml_writer.dumps(doc))
        cases.append((i, name, family, what, path, learned))

    counts = {k: 0 for k in ("ok", "error", *FAILURES)}
    by_family: dict[str, dict[str, int]] = {}
    failures = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_case, binary, c[4], c[5], args.timeout): c for c in cases}
        for fut in concurrent.futures.as_completed(futures):
            i, name, family, what, path, learned = futures[fut]
            kind, rc, err, secs = fut.result()
            counts[kind] += 1
            by_family.setdefault(family, {}).setdefault(kind, 0)
            by_family[family][kind] += 1
            last = err.strip().splitlines()[-1] if err.strip() else ""
            if args.verbose:
                print(f"case {i:4} {kind:5} {secs:5.1f}s {name}: {what}  | {last[:160]}", flush=True)
            if kind in FAILURES:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, keep / path.name)
                failures.append((i, kind, rc, name, what, learned, keep / path.name, err))
    shutil.rmtree(work, ignore_errors=True)

    for i, kind, rc, name, what, learned, kept, err in sorted(failures):
        model = "learned" if learned else "analytic"
        print(f"\n{kind} case {i} ({name}.toml, {what}; {model} model; exit {rc}): {kept}")
        for line in err.strip().splitlines()[:12]:
            print(f"    {line}")
    print("\nby family: " + "; ".join(
        f"{f} " + ", ".join(f"{k} {n}" for k, n in sorted(c.items())) for f, c in sorted(by_family.items())
    ))
    summary = ", ".join(f"{k} {counts[k]}" for k in ("ok", "error", *FAILURES))
    print(
        f"fuzz_scenarios: {args.cases} cases (seed {args.seed}, {args.timeout:g} s each) "
        f"in {time.monotonic() - t0:.0f} s: {summary}"
    )
    if not failures:
        shutil.rmtree(keep, ignore_errors=True) if args.keep is None else None
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
