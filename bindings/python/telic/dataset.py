"""Recording transitions of any environment as a Telic data set (numpy only).

``telic collect`` records the simulator's scenes; this module records yours,
in the same format, so that ``python -m telic.train`` trains a world model on
it. A data set is a folder with one ``.npy`` file per field and a
``meta.json`` (the layout of ``sim/src/collect.rs``, read by
``telic.train.data``)::

    obs[t]  action[t]  next_obs[t]  readouts[t]  next_readouts[t]  episode  step  done  violated

One row per control step; ``next_obs[t]`` is observed one control period
(``dt`` seconds, when the environment has a clock) after ``action[t]`` was
applied, and the rows of an episode chain:
``obs[t + 1] == next_obs[t]``. *Readouts* are the named physical quantities a
trained model decodes from its latent and that objectives and guardrails
speak of; by default they are the observations themselves.

A gymnasium loop::

    import gymnasium as gym
    from telic.dataset import Recorder

    env = gym.make("Pendulum-v1")
    rec = Recorder(["cos", "sin", "thetadot"], ["torque"],
                   action_lower=[-2.0], action_upper=[2.0], dt=0.05, scene="pendulum")
    for episode in range(100):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            u = env.action_space.sample()
            next_obs, _, terminated, truncated, _ = env.step(u)
            done = terminated or truncated
            rec.add(obs, u, next_obs, done)
            obs = next_obs
    rec.save("data/pendulum")

then ``python -m telic.train --data data/pendulum --out models/pendulum``.
Bad input (a wrong width, a non-finite value, an action outside its bounds,
rows that do not chain) raises :class:`RecordError` at the ``add`` that
brings it, naming the episode and step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from . import __version__
from .errors import InputError
from .train.data import FIELDS, FORMAT, FORMAT_VERSION

META_FILE = "meta.json"
PRODUCER = f"telic.dataset {__version__}"

_DESCRIPTIONS = {
    "obs": "observation before the action",
    "action": "applied action, held for one control period (dt)",
    "next_obs": "observation one control period later",
    "readouts": "true readouts before the action",
    "next_readouts": "true readouts one control period later",
    "episode": "episode index",
    "step": "control step within the episode",
    "done": "1 on the last row of an episode",
    "violated": "1 where the true state broke a guardrail during the transition",
}
_DTYPES = {"episode": np.int32, "step": np.int32, "done": np.uint8, "violated": np.uint8}


class RecordError(InputError):
    """A transition or a recorder setting is unusable; the message says which
    and why. A :class:`telic.TelicError` and a :class:`ValueError`."""


def _names(kind: str, names: Sequence[str]) -> list[str]:
    names = [str(n) for n in names]
    if not names:
        raise RecordError(f"{kind}: at least one name is needed")
    if any(not n for n in names):
        raise RecordError(f"{kind}: names must not be empty, got {names}")
    if len(set(names)) != len(names):
        raise RecordError(f"{kind}: names must be distinct, got {names}")
    return names


class Recorder:
    """Collects transitions episode by episode and writes them as a data set.

    Parameters:
        observations: names of the observation columns (``O`` of them).
        actions: names of the action columns (``A``).
        readouts: names of the readout columns (``P``); default: the
            observation names, with ``readout_fn`` the identity.
        action_lower, action_upper: action bounds (``A`` each, lower < upper);
            the trained model scales actions by them and planners sample
            inside them.
        dt: seconds between ``obs`` and ``next_obs`` (> 0), or ``None``
            (the default) for an environment without a clock: ``meta.json``
            then says ``"dt": null``. A bundle needs a time step (the
            controller advances plans by it), so ``python -m telic.train``
            then asks for one with ``--dt SECONDS`` (``--dt 1`` makes one
            environment step the unit of time) and refuses to train without.
        readout_fn: ``f(obs) -> readouts`` (``[O] -> [P]``), called on both
            observations of every transition unless ``add`` is given the
            readouts; required when ``readouts`` differ from the observations
            and ``add`` is not given them.
        scene: name of the environment, recorded in ``meta.json`` and used by
            the trainer for the bundle's default name (``SCENE_jepa``).
        seed: seed of the collection; the trainer seeds itself from it unless
            told otherwise.
        policy: free-form description of how actions were chosen (a JSON-able
            dict), kept in ``meta.json`` and copied into the bundle's provenance.
    """

    def __init__(self, observations: Sequence[str], actions: Sequence[str], readouts: Sequence[str] | None = None,
                 *, action_lower: Sequence[float], action_upper: Sequence[float], dt: float | None = None,
                 readout_fn: Callable[[np.ndarray], np.ndarray] | None = None, scene: str = "custom",
                 seed: int = 0, policy: dict | None = None):
        self.observations = _names("observations", observations)
        self.actions = _names("actions", actions)
        if readouts is None:
            self.readouts = list(self.observations)
            if readout_fn is None:
                readout_fn = np.asarray
        else:
            self.readouts = _names("readouts", readouts)
        self.readout_fn = readout_fn
        lo = np.asarray(action_lower, np.float64).reshape(-1)
        hi = np.asarray(action_upper, np.float64).reshape(-1)
        a = len(self.actions)
        if lo.shape != (a,) or hi.shape != (a,):
            raise RecordError(f"action bounds: {lo.size} lower and {hi.size} upper values for {a} actions")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise RecordError(f"action bounds must be finite with lower < upper, got {lo.tolist()} and {hi.tolist()}")
        self.action_lower, self.action_upper = lo, hi
        if dt is not None:
            try:
                dt = float(dt)
            except (TypeError, ValueError):
                raise RecordError(f"dt must be a positive number of seconds or None, got {dt!r}") from None
            if not (np.isfinite(dt) and dt > 0):
                raise RecordError(f"dt must be a positive number of seconds or None, got {dt}")
        self.dt: float | None = dt
        self.scene = str(scene)
        self.seed = int(seed)
        self.policy = dict(policy or {})
        try:
            json.dumps(self.policy)
        except (TypeError, ValueError) as e:
            raise RecordError(f"policy must be JSON-serialisable (it goes into meta.json): {e}") from None
        self._rows: dict[str, list] = {f: [] for f in FIELDS + ("violated",)}
        self._episode = 0  # index of the episode being recorded
        self._step = 0  # rows recorded in it
        self._last_next_obs: np.ndarray | None = None
        self._lengths: list[int] = []

    def __len__(self) -> int:
        """Transitions recorded so far."""
        return len(self._rows["obs"])

    @property
    def episodes(self) -> int:
        """Episodes with at least one transition (the open one included)."""
        return len(self._lengths) + (1 if self._step else 0)

    def _vector(self, what: str, x, width: int, names: list[str]) -> np.ndarray:
        try:
            v = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise RecordError(f"{self._where()}: {what} is not numeric ({e})") from None
        if v.shape == (1, width):
            v = v.reshape(width)  # a batch of one, the rule of every single-row argument in telic
        if v.shape != (width,):
            raise RecordError(f"{self._where()}: {what} has shape {v.shape}, expected ({width},) or (1, {width}) "
                              f"for {names}")
        bad = ~np.isfinite(v)
        if bad.any():
            cols = [names[i] for i in np.flatnonzero(bad)]
            raise RecordError(f"{self._where()}: {what} is not finite in {cols}: {v.tolist()}")
        return v

    def _where(self) -> str:
        return f"episode {self._episode} step {self._step}"

    def _readouts(self, what: str, given, obs: np.ndarray) -> np.ndarray:
        if given is None:
            if self.readout_fn is None:
                raise RecordError(f"{self._where()}: {what} not given and the recorder has no readout_fn "
                                  f"to compute {self.readouts} from the observation")
            given = self.readout_fn(obs)
        return self._vector(what, given, len(self.readouts), self.readouts)

    def add(self, obs, action, next_obs, done: bool = False, *, readouts=None, next_readouts=None,
            violated: bool = False) -> None:
        """Records one transition: ``action`` applied at ``obs`` led to ``next_obs``.

        ``done`` ends the episode after this row (gymnasium's
        ``terminated or truncated``). ``readouts``/``next_readouts`` default
        to ``readout_fn`` of the observations. ``violated`` marks a
        transition during which the true state broke a constraint you plan
        to guard against; the trainer leaves such rows out by default.
        """
        o = self._vector("obs", obs, len(self.observations), self.observations)
        u = self._vector("action", action, len(self.actions), self.actions)
        o2 = self._vector("next_obs", next_obs, len(self.observations), self.observations)
        tol = 1e-6 * (self.action_upper - self.action_lower)
        out = (u < self.action_lower - tol) | (u > self.action_upper + tol)
        if out.any():
            cols = [self.actions[i] for i in np.flatnonzero(out)]
            raise RecordError(f"{self._where()}: action {u.tolist()} is outside the bounds "
                              f"[{self.action_lower.tolist()}, {self.action_upper.tolist()}] in {cols}; "
                              f"record the action the environment applied (clip it first)")
        o32 = o.astype(np.float32)
        if self._last_next_obs is not None and not np.array_equal(o32, self._last_next_obs):
            raise RecordError(f"{self._where()}: obs {o.tolist()} is not the previous row's next_obs "
                              f"{self._last_next_obs.tolist()}; call end_episode() (or pass done=True) "
                              f"when an episode ends or the environment is reset")
        y = self._readouts("readouts", readouts, o)
        y2 = self._readouts("next_readouts", next_readouts, o2)
        rows = self._rows
        rows["obs"].append(o32)
        rows["action"].append(np.clip(u, self.action_lower, self.action_upper).astype(np.float32))
        rows["next_obs"].append(o2.astype(np.float32))
        rows["readouts"].append(y.astype(np.float32))
        rows["next_readouts"].append(y2.astype(np.float32))
        rows["episode"].append(self._episode)
        rows["step"].append(self._step)
        rows["done"].append(0)
        rows["violated"].append(1 if violated else 0)
        self._step += 1
        self._last_next_obs = rows["next_obs"][-1]
        if done:
            self.end_episode()

    def end_episode(self) -> None:
        """Closes the episode being recorded (no-op when it has no rows);
        the next ``add`` starts a new one."""
        if self._step == 0:
            return
        self._rows["done"][-1] = 1
        self._lengths.append(self._step)
        self._episode += 1
        self._step = 0
        self._last_next_obs = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as one array, in the dtypes and shapes written."""
        n = len(self)
        widths = {"obs": len(self.observations), "next_obs": len(self.observations), "action": len(self.actions),
                  "readouts": len(self.readouts), "next_readouts": len(self.readouts)}
        out: dict[str, np.ndarray] = {}
        for field, rows in self._rows.items():
            if field in widths:
                out[field] = np.asarray(rows, np.float32).reshape(n, widths[field])
            else:
                out[field] = np.asarray(rows, _DTYPES[field]).reshape(n)
        return out

    def meta(self) -> dict:
        """``meta.json`` as a dict (the keys ``telic.train.data`` reads, and
        provenance); closes the open episode first, as ``save`` does."""
        self.end_episode()
        arrays = self.arrays()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "producer": PRODUCER,
            "scene": self.scene,
            "seed": self.seed,
            "episodes": len(self._lengths),
            "transitions": len(self),
            "steps_per_episode": max(self._lengths, default=0),
            "dt": self.dt,
            "observations": self.observations,
            "actions": self.actions,
            "action_lower": self.action_lower.tolist(),
            "action_upper": self.action_upper.tolist(),
            "readouts": self.readouts,
            "policy": self.policy,
            "fields": {f: {"file": f"{f}.npy", "dtype": a.dtype.str, "shape": list(a.shape),
                           "description": _DESCRIPTIONS[f]} for f, a in arrays.items()},
        }

    def save(self, path: str | os.PathLike) -> str:
        """Closes the open episode and writes the data set into folder ``path``
        (created if needed; files of an earlier data set there are replaced).
        Needs at least one transition. Returns the folder."""
        self.end_episode()
        if len(self) == 0:
            raise RecordError("nothing to save: no transition recorded")
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        meta = self.meta()
        meta_path = os.path.join(path, META_FILE)
        if os.path.exists(meta_path):
            os.remove(meta_path)  # an interrupted save must not leave a readable, inconsistent set
        for field, a in self.arrays().items():
            np.save(os.path.join(path, f"{field}.npy"), a, allow_pickle=False)
        with open(meta_path, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        return path
