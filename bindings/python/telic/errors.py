"""Exceptions of Telic. Every error Telic raises is a :class:`TelicError`;
bad input is also a :class:`ValueError`, so existing ``except ValueError``
handlers keep working."""

from __future__ import annotations

__all__ = ["TelicError", "InputError", "ConfigError", "ModelError", "SimError", "PlannerWarning"]


class TelicError(Exception):
    """Base class of every Telic error."""


class InputError(TelicError, ValueError):
    """An array of the wrong shape or type, or holding NaN or infinity."""


class ConfigError(TelicError, ValueError):
    """An objective, planner setting, scenario or parameter that cannot be used;
    the message names the offending key."""


class ModelError(TelicError):
    """A world model that cannot be loaded (missing or malformed bundle, no
    ONNX Runtime) or whose backend failed."""


class SimError(TelicError):
    """A scene, episode or data collection that cannot run."""


class PlannerWarning(UserWarning):
    """A planner that was built but cannot work as asked: a guardrail whose
    safety buffer plus the model's error margin leaves no state that keeps
    it, from some step of the horizon on (``Planner.warnings`` lists them).
    Such a planner holds the robot still or gives ``no_feasible_plan``."""
