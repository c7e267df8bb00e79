"""Telic scenes as gymnasium environments.

``telic.make("reach", seed=3)`` (or ``gymnasium.make("telic/Reach-v0")``)
gives a :class:`TelicEnv`: observations and actions are the scene's (named in
``env.unwrapped.observation_names`` / ``action_names``), the reward is the
negative executed task cost of the scenario's objective, an episode
*terminates* when the task is achieved and is *truncated* at the scenario's
time limit. ``info`` reports the true guardrail state of every step
(``violated``, ``worst_margin``), so safety is measured, not hidden in the
reward. ``env.unwrapped.planner()`` gives the Telic planner of the running
episode, which reproduces ``telic run`` exactly for the same seed.
"""

from __future__ import annotations

from typing import Any, Optional, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import spaces

from telic._native import Planner, Scene, WorldModel, scenes

__all__ = ["TelicEnv", "make", "register_envs", "env_id"]


def env_id(scene: str) -> str:
    """The gymnasium id of a shipped scene: ``"reach"`` → ``"telic/Reach-v0"``."""
    return f"telic/{scene.capitalize()}-v0"


class TelicEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A Telic scene (rapier3d physics, ground-truth guardrail checks) as a
    gymnasium environment.

    Args:
        scenario: a shipped scene (``"reach"``, ``"navigate"``, ``"push"``) or a
            scenario ``.toml`` file.
        seed: the seed of the first ``reset()`` when it is given none.
        render_mode: unsupported (``None``); record episodes with ``telic run --rrd``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, scenario: str = "reach", seed: Optional[int] = None, render_mode: Optional[str] = None):
        if render_mode is not None:
            from telic.errors import ConfigError

            raise ConfigError(f"render_mode {render_mode!r} is not supported; record with `telic run --rrd`")
        self.scene = Scene(scenario)
        self.render_mode = None
        self._first_seed = seed
        o = len(self.scene.observations)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(o,), dtype=np.float64)
        self.action_space = spaces.Box(
            self.scene.action_lower, self.scene.action_upper, dtype=np.float64
        )
        self.observation_names: list[str] = self.scene.observations
        self.action_names: list[str] = self.scene.actions
        self.dt: float = self.scene.dt
        self.episode_seed: Optional[int] = None

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and self._first_seed is not None:
            seed, self._first_seed = self._first_seed, None
        super().reset(seed=seed)
        # The episode seed: the given one, else drawn from the env's generator,
        # so that seeded resets repeat and unseeded ones differ.
        if seed is not None:
            episode_seed = int(seed)
        else:
            episode_seed = int(self.np_random.integers(0, 2**63 - 1))
        self.episode_seed = episode_seed
        obs = self.scene.reset(episode_seed)
        return obs, self._info(obs_only=True)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, cost, success, truncated, violated, worst_margin = self.scene.step(action)
        info = self._info()
        info.update(violated=violated, worst_margin=worst_margin, cost=cost)
        return obs, -cost, success, truncated, info

    def planner(self, model: Any = None, config: Optional[dict[str, Any]] = None) -> Planner:
        """The Telic planner of the running episode (call after ``reset``):
        the scenario's objective with this episode's goals and guardrails,
        over ``model`` (``None``/``"default"``: the scenario's choice,
        ``"analytic"``, a bundle path, or a :class:`telic.WorldModel`);
        ``config`` replaces planner settings."""
        return self.scene.planner(model, config)

    def state(self) -> dict[str, Any]:
        """Ground truth of the current state: true readouts, guardrail margins,
        goal errors and the episode's targets."""
        return self.scene.state()

    def _info(self, obs_only: bool = False) -> dict[str, Any]:
        s = self.scene.state()
        info: dict[str, Any] = {
            "seed": self.episode_seed,
            "success": s["success"],
            "margins": s["margins"],
            "goal_error": s["goal_error"],
        }
        if obs_only:
            info["targets"] = s["targets"]
        return info


def register_envs() -> None:
    """Registers every shipped scene with gymnasium (``telic/Reach-v0``, …)."""
    for name in scenes():
        eid = env_id(name)
        if eid not in gymnasium.registry:
            gymnasium.register(id=eid, entry_point="telic.envs:TelicEnv", kwargs={"scenario": name})


def make(scenario: str, seed: Optional[int] = None, **kwargs: Any) -> gymnasium.Env:
    """A Telic scene as a gymnasium environment, through ``gymnasium.make``
    (with its usual checks and wrappers) for shipped scenes, directly for a
    scenario file. ``seed`` seeds the first ``reset()``."""
    if scenario in scenes():
        return gymnasium.make(env_id(scenario), seed=seed, **kwargs)
    return TelicEnv(scenario, seed=seed, **kwargs)


_ = WorldModel  # re-exported types used in annotations of the stub
