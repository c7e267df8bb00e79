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

``obs`` chooses what the agent observes (default: the scenario's
``[observation]`` mode, ``"state"`` for the shipped scenes):

- ``"state"``: the scene's state vector, ``Box(-inf, inf, (O,), float64)``.
- ``"pixels"``: the scene's camera image, ``Box(0, 255, (H, W, 3), uint8)``
  — height × width × RGB, the layout of image observations in gymnasium
  (Atari, ``render()``) and what Stable-Baselines3's ``CnnPolicy`` expects
  (it transposes to channels-first itself). Object and obstacle positions
  are only in the image.
- ``"pixels+proprio"``: ``Dict(image=Box(0, 255, (H, W, 3), uint8),
  proprio=Box(-inf, inf, (P,), float64))``, the image and the robot's own
  state (its names: ``env.unwrapped.observation_names``).

A Telic planner takes the flat layout of the Rust engine (image values in
C×H×W order, then the vector entries): ``env.unwrapped.planner_observation(obs)``
converts an observation of this environment into it.
"""

from __future__ import annotations

from typing import Any, Optional, SupportsFloat, Union

import gymnasium
import numpy as np
from gymnasium import spaces

from telic._native import Planner, Scene, WorldModel, scenes

__all__ = ["TelicEnv", "make", "register_envs", "env_id"]


def env_id(scene: str) -> str:
    """The gymnasium id of a shipped scene: ``"reach"`` → ``"telic/Reach-v0"``."""
    return f"telic/{scene.capitalize()}-v0"


class TelicEnv(gymnasium.Env[Any, np.ndarray]):
    """A Telic scene (rapier3d physics, ground-truth guardrail checks) as a
    gymnasium environment.

    Args:
        scenario: a shipped scene (``"reach"``, ``"navigate"``, ``"push"``) or a
            scenario ``.toml`` file.
        seed: the seed of the first ``reset()`` when it is given none.
        render_mode: ``"rgb_array"``: ``render()`` returns the scene's camera
            image of the current state, ``(H, W, 3)`` uint8, in any
            observation mode; ``None``: no rendering. Record whole episodes
            with ``telic run --rrd``.
        obs: ``"state"``, ``"pixels"`` or ``"pixels+proprio"`` (see the
            module docs); ``None``: the scenario's observation mode.
        perturb: every episode's world perturbed: a level (``"mild"``,
            ``"moderate"``, ``"severe"``) or a dict of ``[perturb]``
            settings; ``None``: the scenario's.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        scenario: str = "reach",
        seed: Optional[int] = None,
        render_mode: Optional[str] = None,
        obs: Optional[str] = None,
        perturb: Union[str, dict[str, Any], None] = None,
    ):
        if render_mode not in (None, "rgb_array"):
            from telic.errors import ConfigError

            raise ConfigError(
                f"render_mode {render_mode!r} is not supported (\"rgb_array\" or None); "
                "record with `telic run --rrd`"
            )
        # A mode other than the three is a ConfigError (a ValueError) naming them.
        self.scene = Scene(scenario, obs=obs, perturb=perturb)
        self.render_mode = render_mode
        self._first_seed = seed
        self.observation_mode: str = self.scene.observation_mode
        self._image_shape: Optional[tuple[int, int, int]] = self.scene.image_shape
        # The vector entries: the state, the proprio entries, or none.
        self.observation_names: list[str] = self.scene.observations
        self.observation_space = self._observation_space()
        self.action_space = spaces.Box(
            self.scene.action_lower, self.scene.action_upper, dtype=np.float64
        )
        self.action_names: list[str] = self.scene.actions
        self.dt: float = self.scene.dt
        self.metadata = {**self.metadata, "render_fps": 1.0 / self.dt}
        self.episode_seed: Optional[int] = None

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None
    ) -> tuple[Any, dict[str, Any]]:
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
        return self._observation(obs), self._info(obs_only=True)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, cost, success, truncated, violated, worst_margin = self.scene.step(action)
        info = self._info()
        info.update(violated=violated, worst_margin=worst_margin, cost=cost)
        return self._observation(obs), -cost, success, truncated, info

    def render(self) -> Optional[np.ndarray]:
        """The camera image of the current state, ``(H, W, 3)`` uint8, when
        ``render_mode`` is ``"rgb_array"``; else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        return np.ascontiguousarray(self.scene.render().transpose(1, 2, 0))

    def planner_observation(self, obs: Any) -> np.ndarray:
        """An observation of this environment as the flat float64 vector a
        Telic planner takes: in the pixel modes the image's values in C×H×W
        order, then the proprio entries; in state mode the state itself."""
        if self._image_shape is None:
            return np.asarray(obs, dtype=np.float64)
        from telic.errors import InputError

        with_proprio = self.observation_mode == "pixels+proprio"
        if with_proprio != isinstance(obs, dict):
            want = "a dict with 'image' and 'proprio'" if with_proprio else "an (H, W, 3) image"
            raise InputError(f"a {self.observation_mode} observation is {want}, got {type(obs).__name__}")
        image = obs["image"] if with_proprio else obs
        c, h, w = self._image_shape
        image = np.asarray(image)
        if image.shape != (h, w, c):
            raise InputError(f"the image must have shape ({h}, {w}, {c}), got {image.shape}")
        parts = [image.transpose(2, 0, 1).reshape(-1).astype(np.float64)]
        if with_proprio:
            parts.append(np.asarray(obs["proprio"], dtype=np.float64).reshape(-1))
        return np.concatenate(parts)

    def _observation_space(self) -> spaces.Space[Any]:
        vector = spaces.Box(-np.inf, np.inf, shape=(len(self.observation_names),), dtype=np.float64)
        if self._image_shape is None:
            return vector
        c, h, w = self._image_shape
        image = spaces.Box(0, 255, shape=(h, w, c), dtype=np.uint8)
        if self.observation_mode == "pixels":
            return image
        return spaces.Dict({"image": image, "proprio": vector})

    def _observation(self, flat: np.ndarray) -> Any:
        """The scene's flat observation in this environment's space."""
        if self._image_shape is None:
            return flat
        c, h, w = self._image_shape
        n = c * h * w
        # Exact: the values are the image's bytes as whole numbers.
        image = np.ascontiguousarray(flat[:n].reshape(c, h, w).transpose(1, 2, 0).astype(np.uint8))
        if self.observation_mode == "pixels":
            return image
        return {"image": image, "proprio": flat[n:].copy()}

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


def make(scenario: str, seed: Optional[int] = None, obs: Optional[str] = None, **kwargs: Any) -> gymnasium.Env:
    """A Telic scene as a gymnasium environment, through ``gymnasium.make``
    (with its usual checks and wrappers) for shipped scenes, directly for a
    scenario file. ``seed`` seeds the first ``reset()``; ``obs`` is the
    observation mode (``"state"``, ``"pixels"``, ``"pixels+proprio"``; see
    :mod:`telic.envs`), by default the scenario's."""
    if scenario in scenes():
        return gymnasium.make(env_id(scenario), seed=seed, obs=obs, **kwargs)
    return TelicEnv(scenario, seed=seed, obs=obs, **kwargs)


_ = WorldModel  # re-exported types used in annotations of the stub
