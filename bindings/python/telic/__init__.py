"""Telic: objective-driven planning for robots, from Python.

A planner imagines the consequences of candidate action sequences with a
world model, scores them against an objective, and returns the first action of
the best plan that keeps every guardrail::

    import telic
    model = telic.WorldModel.load("models/reach")
    planner = telic.Planner(model, objective, {"samples": 256, "horizon": 20})
    plan = planner.plan(obs)          # plan.action, plan.actions, plan.readouts, ...

- :class:`WorldModel`, :class:`Planner`, :class:`Plan`, :class:`Controller`:
  the engine, numpy in and out, the interpreter lock released while planning.
- :func:`make`: Telic scenes as gymnasium environments (``telic/Reach-v0``, …).
- :func:`run`, :func:`collect`: headless episode batches and training data.
- :mod:`telic.dataset`: record transitions of *any* environment (a gymnasium
  one, a real robot) in the data-set format the trainer reads.
- ``python -m telic.train``: the JEPA world-model trainer (needs the packages of
  ``bindings/requirements-train.txt``).
- :mod:`telic.errors`: every error is a :class:`TelicError`.
- :func:`data_dir`: the folder whose scenes, assets and shipped models are
  used. The wheel carries them (``telic/data``), so an installed package
  runs its scenes from any folder; ``TELIC_HOME``, or a Telic checkout at or
  above the current folder, comes first.
- The ``telic`` command (``telic run reach``): the program of the checkout's
  ``cargo run --bin telic``, the same code, installed with the package.
"""

from __future__ import annotations

import importlib.util
import os

from telic.errors import ConfigError, InputError, ModelError, PlannerWarning, SimError, TelicError

__version__ = "0.1.0"


def _find_onnx_runtime() -> None:
    """Points the engine at the ONNX Runtime library of the ``onnxruntime``
    wheel when ``ORT_DYLIB_PATH`` is not set (learned models need it)."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return
    for root in spec.submodule_search_locations:
        capi = os.path.join(root, "capi")
        if not os.path.isdir(capi):
            continue
        libs = sorted(n for n in os.listdir(capi) if n.startswith("libonnxruntime.so"))
        if libs:
            os.environ["ORT_DYLIB_PATH"] = os.path.join(capi, libs[-1])
            return


_find_onnx_runtime()

#: The shipped scenarios, assets and models inside the installed package,
#: laid out as in a checkout (``sim/scenarios``, ``sim/assets``, ``models``).
_PACKAGE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

try:
    from telic._native import (
        Controller, Plan, Planner, Scene, WorldModel, collect, data_dir, episode_seed, run,
        scenario, scenes,
    )
    from telic._native import set_package_data as _set_package_data
except ImportError as _e:  # the trainer works without the compiled core
    _native_error: ImportError | None = _e
else:
    _native_error = None
    _set_package_data(_PACKAGE_DATA if os.path.isdir(_PACKAGE_DATA) else None)
    from telic.envs import make, register_envs

    register_envs()


def __getattr__(name: str) -> object:
    if _native_error is not None and name in {
        "WorldModel", "Planner", "Plan", "Scene", "Controller", "run", "collect",
        "make", "scenario", "scenes", "episode_seed", "data_dir",
    }:
        raise ImportError(
            f"telic.{name} needs the compiled core telic._native, which did not import "
            f"({_native_error}); install the package with `pip install ./bindings`"
        )
    raise AttributeError(f"module 'telic' has no attribute {name!r}")


__all__ = [
    "WorldModel", "Planner", "Plan", "Scene", "Controller", "make", "run", "collect",
    "scenario", "scenes", "episode_seed", "data_dir",
    "TelicError", "InputError", "ConfigError", "ModelError", "SimError", "PlannerWarning",
]
