"""The compiled core of Telic (Rust, PyO3). Use it through ``telic``."""

from os import PathLike
from pathlib import Path
from typing import Any, Optional, Union, final

import numpy as np
import numpy.typing as npt

__version__: str

__all__ = [
    "__version__",
    "WorldModel",
    "Planner",
    "Plan",
    "Scene",
    "Controller",
    "run",
    "collect",
    "scenario",
    "scenes",
    "episode_seed",
    "data_dir",
    "set_package_data",
    "cli_main",
]

_ArrayLike = npt.ArrayLike
_F64 = npt.NDArray[np.float64]

@final
class WorldModel:
    """A world model: ``encode`` observations to latents, ``predict`` latents
    one step ahead under actions, ``readout`` named quantities from latents."""

    @staticmethod
    def load(path: Union[str, PathLike[str]], threads: int = 1) -> WorldModel:
        """Loads a world-model bundle folder (manifest.toml + ONNX graphs).
        ``threads``: ONNX Runtime's threads inside one operator (default 1;
        0 lets it use every core)."""
    @staticmethod
    def analytic(name: str, **params: Any) -> WorldModel:
        """An analytic model: ``"point_mass"`` (dims, dt, max_accel),
        ``"unicycle"`` (dt, max_speed, max_turn_rate, tau), ``"pendulum"``
        (gymnasium's Pendulum-v1 by default: dt=0.05, g=10, m=1, l=1,
        max_speed=8, max_torque=2), or the hand-written model of a shipped
        scene (``"reach"``, ``"navigate"``, ``"push"``)."""
    @property
    def name(self) -> str: ...
    @property
    def observations(self) -> list[str]:
        """Observation names (O): the vector entries, after the image's
        pixels when the model sees an image."""
    @property
    def image(self) -> Optional[tuple[int, int, int]]:
        """The camera image at the head of each observation, as (C, H, W),
        or None when the model sees no image."""
    @property
    def obs_dim(self) -> int:
        """Length of one flat observation: C·H·W pixels (0..255), then O entries."""
    @property
    def actions(self) -> list[str]: ...
    @property
    def readouts(self) -> list[str]: ...
    @property
    def latent_dim(self) -> int: ...
    @property
    def dt(self) -> float: ...
    @property
    def action_lower(self) -> _F64: ...
    @property
    def action_upper(self) -> _F64: ...
    def encode(self, obs: _ArrayLike) -> _F64:
        """Observations (obs_dim,) or (B, obs_dim) → latents (D,) or (B, D)."""
    def predict(self, z: _ArrayLike, u: _ArrayLike) -> _F64:
        """Latents (D,)/(B, D) and actions (A,)/(B, A) → next latents."""
    def readout(self, z: _ArrayLike) -> _F64:
        """Latents (D,) or (B, D) → readouts (P,) or (B, P)."""
    def rollout(self, obs: _ArrayLike, actions: _ArrayLike) -> _F64:
        """Imagines actions (H, A) from observation (O,) or (1, O): readouts (H, P)."""

@final
class Plan:
    """The outcome of one planning call."""

    @property
    def status(self) -> str:
        """``"completed"`` (the normal outcome: every iteration ran, the plan is
        feasible), ``"converged"`` (the gradient planner met its tolerance),
        ``"out_of_time"`` (the time budget ended; the best feasible plan so
        far) or ``"no_feasible_plan"`` (the action is the safe fallback)."""
    @property
    def feasible(self) -> bool: ...
    @property
    def action(self) -> _F64:
        """The action to apply now (A,): the plan's first, or the safe fallback."""
    @property
    def actions(self) -> _F64:
        """The best action sequence (H, A)."""
    @property
    def readouts(self) -> _F64:
        """Predicted readouts after each action (H, P)."""
    @property
    def decoded(self) -> _F64:
        """The readouts the model decoded from the observation planned from
        (P,): what the robot believed, e.g. the box pose it saw in an image."""
    @property
    def delay_steps(self) -> int:
        """The actuation delay, in control periods, this call planned
        through: the planner's ``delay_steps``, or with ``identify_delay``
        the one identified from how the robot moved."""
    @property
    def cost(self) -> float: ...
    @property
    def term_costs(self) -> _F64:
        """Cost per term (T,), in ``Planner.term_names`` order."""
    @property
    def margins(self) -> _F64:
        """Smallest buffered margin per guardrail (G,), ``Planner.guardrail_names`` order."""
    @property
    def violation(self) -> float: ...
    @property
    def feasible_samples(self) -> int: ...
    @property
    def iterations(self) -> int: ...
    @property
    def elapsed(self) -> float:
        """Seconds spent in the planning call inside Rust."""
    @property
    def rollouts(self) -> _F64:
        """The best sampled rollouts (K, H, P) when ``keep_rollouts`` > 0."""
    @property
    def rollout_costs(self) -> _F64: ...
    @property
    def rollout_violations(self) -> _F64: ...

@final
class Planner:
    """A planner over a world model, an objective (the ``[objective]`` schema
    of scenario files) and a configuration (the ``[planner]`` schema)."""

    def __new__(
        cls, model: WorldModel, objective: dict[str, Any], config: Optional[dict[str, Any]] = None
    ) -> Planner: ...
    def plan(self, obs: _ArrayLike) -> Plan:
        """Plans from observation (O,) or (1, O); releases the interpreter lock."""
    def reset(self) -> None: ...
    def reseed(self, seed: int) -> None:
        """Replaces the seed of the sampling noise and forgets the warm start."""
    def set_target(self, term: str, target: _ArrayLike) -> None: ...
    def target(self, term: str) -> Optional[_F64]: ...
    def set_goal_observation(self, term: str, obs: _ArrayLike) -> None:
        """The goal of term ``term`` as an observation, (O,) or (1, O): the
        encoded goal of a latent term, or the target of a readout term (its
        readouts decoded from the encoded observation)."""
    @property
    def warnings(self) -> list[str]:
        """Guardrails that the safety buffers and model-error margins make
        impossible to keep (one message each; also warned as
        ``telic.errors.PlannerWarning`` when the planner is made)."""
    @property
    def term_names(self) -> list[str]: ...
    @property
    def guardrail_names(self) -> list[str]: ...
    @property
    def readout_names(self) -> list[str]: ...
    @property
    def action_names(self) -> list[str]: ...
    @property
    def config(self) -> dict[str, Any]: ...

@final
class Scene:
    """A Telic scene (rapier3d), reset and stepped by the caller.
    Observations are the flat layout a planner takes: the state (``"state"``
    mode), or the camera image's C·H·W values (0..255, C×H×W order) followed
    by the vector entries ``observations`` (the pixel modes)."""

    def __new__(
        cls, scenario: str, obs: Optional[str] = None, perturb: Union[str, dict[str, Any], None] = None
    ) -> Scene:
        """``obs``: ``"state"``, ``"pixels"`` or ``"pixels+proprio"``
        (default: the scenario's ``[observation]`` mode); ``perturb``: the
        scenario's ``[perturb]`` section, a level or a dict of its settings."""
    def reset(self, seed: int) -> _F64: ...
    def step(self, action: _ArrayLike) -> tuple[_F64, float, bool, bool, bool, float]:
        """Applies ``action``, (A,) or (1, A): ``(obs, cost, success, truncated,
        violated, worst_margin)``."""
    def planner(
        self, model: Union[None, str, PathLike[str], WorldModel] = None, config: Optional[dict[str, Any]] = None
    ) -> Planner: ...
    def state(self) -> dict[str, Any]: ...
    def objective(self) -> dict[str, Any]: ...
    def render(self) -> npt.NDArray[np.uint8]:
        """The camera image of the current state, (3, H, W) uint8 RGB, of the
        scenario's ``[observation]`` size, whatever the observation mode."""
    @property
    def name(self) -> str: ...
    @property
    def observations(self) -> list[str]:
        """Names of the vector entries (after the image in the pixel modes)."""
    @property
    def observation_mode(self) -> str: ...
    @property
    def image_shape(self) -> Optional[tuple[int, int, int]]:
        """(C, H, W) of the camera image in the pixel modes, else None."""
    @property
    def obs_dim(self) -> int: ...
    @property
    def actions(self) -> list[str]: ...
    @property
    def action_lower(self) -> _F64: ...
    @property
    def action_upper(self) -> _F64: ...
    @property
    def dt(self) -> float: ...
    @property
    def max_time(self) -> float: ...
    @property
    def time(self) -> float: ...

@final
class Controller:
    """A planner re-planning continuously on a thread of its own from the
    newest observation; ``observe`` and ``action`` never wait for it. The
    controller takes the planner over: it refuses direct calls afterwards."""

    def __new__(cls, planner: Planner, **config: Any) -> Controller:
        """``config``: ``max_plan_age_ms`` (default 100), ``fallback`` (default:
        the planner's, e.g. ``{"kind": "zero"}``)."""
    def observe(self, obs: _ArrayLike) -> None:
        """Hands the newest observation, (O,) or (1, O), to the planner thread."""
    def action(self) -> tuple[_F64, str]:
        """The action to apply now (A,) and its source: ``"plan"`` or the
        fallback's reason (``"no_plan_yet"``, ``"stale"``, ``"planner_failed"``,
        ``"planner_dead"``, ``"no_feasible_plan"``, ``"shifted_past_horizon"``,
        ``"guardrail_on_shifted_plan"``)."""
    def restart(self, planner: Planner) -> None:
        """Replaces the planner thread by one running ``planner``."""
    def metrics(self) -> dict[str, Any]:
        """Deadline and staleness figures since the controller started."""
    def predicted_readouts(self) -> Optional[_F64]:
        """The newest plan's predicted readouts (H, P)."""

def run(
    scenario: str,
    episodes: int = 20,
    seed: int = 1,
    *,
    model: Optional[str] = None,
    planner: Optional[dict[str, Any]] = None,
    max_time: Optional[float] = None,
    jobs: int = 1,
    obs: Optional[str] = None,
    perturb: Union[str, dict[str, Any], None] = None,
) -> dict[str, Any]:
    """Runs episodes headless; ``{"scenario", "model", "seed", "episodes", "summary"}``.
    ``obs`` replaces the scenario's observation mode; ``perturb`` its
    ``[perturb]`` section: a level (``"none"``, ``"mild"``, ``"moderate"``,
    ``"severe"``) or a dict of its settings."""

def collect(
    scenario: str,
    out: Union[str, PathLike[str]],
    episodes: int = 100,
    seed: int = 1,
    *,
    obs: Optional[str] = None,
    perturb: Union[str, dict[str, Any], None] = None,
    **settings: Any,
) -> dict[str, Any]:
    """Records exploration episodes into a training data set; returns its
    meta.json. ``obs``: a pixel mode also stores the camera images;
    ``perturb``: collect in perturbed worlds (as for ``run``)."""

def scenario(name: str) -> dict[str, Any]: ...
def scenes() -> list[str]: ...
def episode_seed(seed: int, index: int) -> int: ...
def data_dir() -> Path:
    """The folder whose scenarios (``sim/scenarios``), assets
    (``sim/assets``) and shipped models (``models``) this process uses now:
    ``$TELIC_HOME``, else a checkout at or above the current folder, else the
    installed package's data, else the checkout the core was built from."""
def set_package_data(root: Optional[Union[str, PathLike[str]]]) -> None:
    """Names the installed package's data folder (``telic/data``; done by
    ``import telic``), or forgets it with None."""
def cli_main(argv: list[str]) -> int:
    """Runs the ``telic`` program on ``argv`` (its name first) with the
    interpreter lock released; returns the exit status. An interrupted
    ``run`` or ``collect`` ends the process with 128 + the signal."""
