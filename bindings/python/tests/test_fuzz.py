"""Hostile input from Python: a seeded mutational fuzzer over the dict
configs (objectives, planner settings, perturbations, controller settings,
run overrides) and the arrays (observations, latents, actions, targets)
the bindings take. Whatever the input, a call returns or raises an
ordinary exception; it never panics (PyO3's ``PanicException`` is not an
``Exception``, so it fails the test) and never crashes the interpreter.

``TELIC_PY_FUZZ_CASES`` sets the cases per target (default 150);
``scripts/fuzz`` runs a long campaign. A failing case prints its target and
index: ``TELIC_PY_FUZZ_ONLY=target:index`` replays it alone.
"""

from __future__ import annotations

import copy
import math
import os
import random
from typing import Any, Callable

import numpy as np
import pytest

import telic

CASES = int(os.environ.get("TELIC_PY_FUZZ_CASES", "150"))

# A mutated objective may well be one no plan can satisfy: the planner says
# so with a warning, which is its answer, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore::telic.errors.PlannerWarning")
ONLY = os.environ.get("TELIC_PY_FUZZ_ONLY")

GOAL: dict[str, Any] = {
    "bodies": [{"name": "p", "points": ["pos"], "radius": 0.1}],
    "terms": [
        {"name": "goal", "weight": 1.0,
         "residual": {"kind": "readout", "readouts": ["pos.x", "pos.y"], "target": [1.0, 0.0]}},
        {"name": "effort", "weight": 0.01, "residual": {"kind": "action"}},
        {"name": "smooth", "weight": 0.01, "residual": {"kind": "action_rate"}},
    ],
    "guardrails": [
        {"name": "wall", "kind": "readout_limit", "readouts": ["pos.y"], "lower": [-0.5], "upper": [0.5]},
        {"name": "ball", "kind": "keep_out", "margin": 0.05,
         "shape": {"type": "sphere", "center": [0.5, 0.25, 0.0], "radius": 0.15}},
    ],
}
PLANNER: dict[str, Any] = {
    "kind": "mppi", "samples": 16, "horizon": 5, "iterations": 1, "seed": 3, "noise": 0.3,
    "knots": 3, "interpolation": "linear", "fallback": {"kind": "zero"}, "delay_steps": 1,
    "identify_delay": True, "keep_rollouts": 2, "time_budget_ms": 50.0,
}
PERTURB: dict[str, Any] = {
    "level": "moderate", "mass": 0.2, "friction": 0.2, "actuator": 0.1, "delay": 1,
    "obs_noise": 0.01, "dropout": 0.1, "image_noise": 3.0, "lighting": 0.1,
}

WEIRD: list[Any] = [
    None, True, False, 0, 1, -1, 2, 7, 2**31, 2**63 - 1, 2**64, -(2**63), 10**30, 0.0, -0.0, 0.5, -2.5,
    1e-300, 1e308, -1e308, math.inf, -math.inf, math.nan, "", "x", "mppi", "cem", "gradient", "zero",
    "hold", "pos.x", "é\u0000", "a" * 5000, [], [1.0], [math.nan], [1.0] * 200, [[1.0, 2.0]], {}, {"kind": "zero"},
    {"kind": "nope"}, b"\x00\xff",
]


def mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """`value` (a copy) with one random change somewhere inside it."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.15:
            del value[key]
        elif roll < 0.25:
            value[rng.choice(["extra", "kind", "", "samples", key + "_"])] = rng.choice(WEIRD)
        else:
            value[key] = mutate(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        roll = rng.random()
        if roll < 0.15:
            del value[i]
        elif roll < 0.25:
            value.append(copy.deepcopy(value[i]))
        else:
            value[i] = mutate(value[i], rng, depth + 1)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.5:
        return rng.choice([value * 10**rng.randint(1, 12), -value, value + 1, value - 1, float(value) + 0.5])
    return copy.deepcopy(rng.choice(WEIRD))


def mutated(base: Any, rng: random.Random) -> Any:
    value = copy.deepcopy(base)
    for _ in range(rng.randint(1, 4)):
        value = mutate(value, rng)
    return value


DTYPES = [np.float64, np.float32, np.int64, np.int8, np.uint8, np.bool_, np.complex128, object, np.str_]


def weird_array(rng: random.Random, n: int) -> Any:
    """An array-like near length `n` (the expected one), of any shape, type
    and value."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([None, "obs", 3.0, {}, [[1.0], [1.0, 2.0]], b"\x00"])
    length = rng.choice([n, n, n, 0, 1, n - 1, n + 1, 2 * n, 10**6])
    length = max(length, 0)
    shape: tuple[int, ...] = rng.choice([(length,), (1, length), (length, 1), (2, max(length // 2, 0)), ()])
    dtype = rng.choice(DTYPES)
    values = np.asarray(np.random.default_rng(rng.randrange(2**32)).normal(size=shape) * rng.choice([1.0, 1e3, 1e300]))
    for _ in range(rng.randint(0, 2)):
        if values.size:
            values.flat[rng.randrange(values.size)] = rng.choice([math.nan, math.inf, -math.inf, 1e308])
    try:
        with np.errstate(all="ignore"):
            array: Any = values.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        array = values
    if rng.random() < 0.2 and array.ndim == 1 and array.size > 1:
        array = np.repeat(array, 2)[::2]  # not contiguous
    if rng.random() < 0.1:
        array = array.tolist()
    return array


def survive(target: str, index: int, call: Callable[[], Any], case: Any) -> None:
    """Runs `call`; an ordinary exception is a refusal, anything else fails."""
    try:
        call()
    except Exception:  # noqa: BLE001 — every ordinary error is a fine answer
        pass
    except BaseException as e:  # PanicException and the like
        pytest.fail(f"{target}:{index} raised {type(e).__name__}: {e}\ninput: {case!r}"[:4000])


def cases(target: str) -> range:
    if ONLY:
        name, _, index = ONLY.partition(":")
        return range(int(index), int(index) + 1) if name == target else range(0)
    return range(CASES)


def small(config: Any) -> bool:
    """Whether a planner setting plans quickly enough to run (sizes small)."""
    if not isinstance(config, dict):
        return True
    for key, limit in (("samples", 64), ("horizon", 20), ("iterations", 3), ("refine_iterations", 10),
                       ("refine_rounds", 2), ("keep_rollouts", 64), ("elites", 64), ("knots", 20),
                       ("threads", 2), ("delay_steps", 20)):
        v = config.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not (-1 <= v <= limit):
            return False
    return True


def test_planner_dicts_are_refused_or_planned_with():
    model = telic.WorldModel.analytic("point_mass")
    for i in cases("planner"):
        rng = random.Random(1000 + i)
        objective = mutated(GOAL, rng) if rng.random() < 0.6 else copy.deepcopy(GOAL)
        config = mutated(PLANNER, rng) if rng.random() < 0.7 or objective == GOAL else copy.deepcopy(PLANNER)
        if not small(config):
            config = {k: v for k, v in config.items() if k in ("kind", "fallback", "interpolation", "noise")}

        def call() -> None:
            planner = telic.Planner(model, objective, config)
            planner.plan(np.zeros(4))
            planner.plan(np.full(4, 0.1))

        survive("planner", i, call, (objective, config))


def test_arrays_are_refused_or_used():
    model = telic.WorldModel.analytic("point_mass")
    planner = telic.Planner(model, GOAL, dict(PLANNER, time_budget_ms=None))
    scene = telic.Scene("navigate")
    scene.reset(1)
    a = len(scene.actions)
    calls: list[tuple[str, Callable[[Any], Any], int]] = [
        ("encode", model.encode, 4),
        ("predict z", lambda x: model.predict(x, np.zeros(2)), 4),
        ("predict u", lambda x: model.predict(np.zeros(4), x), 2),
        ("readout", model.readout, 4),
        ("rollout", lambda x: model.rollout(np.zeros(4), x), 10),
        ("plan", planner.plan, 4),
        ("set_target", lambda x: planner.set_target("goal", x), 2),
        ("set_goal_observation", lambda x: planner.set_goal_observation("goal", x), 4),
        ("step", scene.step, a),
    ]
    for i in cases("arrays"):
        rng = random.Random(2000 + i)
        name, fn, n = rng.choice(calls)
        array = weird_array(rng, n)
        survive("arrays", i, lambda: fn(array), (name, array))
    # After all of it, both still work.
    assert planner.plan(np.zeros(4)).action.shape == (2,)
    scene.reset(2)
    assert len(scene.step(np.zeros(a))) == 6


def test_controller_settings_and_observations_are_refused_or_used():
    model = telic.WorldModel.analytic("point_mass")
    for i in cases("controller"):
        rng = random.Random(3000 + i)
        settings = mutated({"max_plan_age_ms": 100.0, "fallback": {"kind": "zero"}}, rng)

        def call() -> None:
            controller = telic.Controller(telic.Planner(model, GOAL, PLANNER), **settings)
            controller.observe(weird_array(rng, 4))
            controller.action()
            controller.metrics()

        survive("controller", i, call, settings)


def test_perturbations_and_run_overrides_are_refused_or_run():
    for i in cases("run"):
        rng = random.Random(4000 + i)
        perturb = mutated(PERTURB, rng) if rng.random() < 0.7 else rng.choice(WEIRD)
        planner = mutated({"samples": 8, "horizon": 5, "iterations": 1}, rng) if rng.random() < 0.5 else None
        if not small(planner):
            planner = None
        kwargs: dict[str, Any] = {"model": "analytic", "max_time": 0.2, "perturb": perturb}
        if planner is not None:
            kwargs["planner"] = planner
        if rng.random() < 0.2:
            kwargs[rng.choice(["obs", "max_time", "jobs", "seed_", "model"])] = rng.choice(WEIRD)
        if isinstance(kwargs.get("max_time"), (int, float)) and not kwargs["max_time"] <= 0.5:
            kwargs["max_time"] = 0.2  # a valid but long time runs long, it is not hostile
        if isinstance(kwargs.get("jobs"), int) and kwargs["jobs"] > 2:
            kwargs["jobs"] = 2**64 if rng.random() < 0.5 else 1  # too many threads for a cheap case

        def call() -> None:
            telic.run("navigate", 1, i, **kwargs)
            scene = telic.Scene("push", perturb=perturb)
            scene.reset(i)
            scene.step(np.zeros(len(scene.actions)))

        survive("run", i, call, kwargs)
