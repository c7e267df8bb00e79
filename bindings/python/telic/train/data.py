"""Reading the data sets written by ``telic collect`` (numpy only).

A data set is a folder with one ``.npy`` file per field and ``meta.json``
(see ``sim/src/collect.rs``). Rows are control steps; the rows of one episode
are consecutive and chain: ``obs[t + 1] == next_obs[t]``. This module turns
them into per-episode trajectories and K-step training windows.

A format-2 data set (collected in a pixel observation mode) also holds camera
images, ``image.npy.gz`` and ``next_image.npy.gz``: gzip-compressed uint8
``[N, C, H, W]`` aligned row for row with ``obs`` and ``next_obs``, described
by meta ``image``; meta ``proprio`` names the observation columns that are the
robot's own state. ``obs`` stays the full state (labels, never encoder input).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass

import numpy as np

FORMAT = "telic.transitions"
FORMAT_VERSION = 1
#: The version of data sets with camera images (``image`` in meta.json).
IMAGE_FORMAT_VERSION = 2
#: The keys of meta.json's ``image`` table.
IMAGE_KEYS = ("channels", "height", "width", "dtype", "file", "next_file")
FIELDS = ("obs", "action", "next_obs", "readouts", "next_readouts", "episode", "step", "done")
#: Fields a data set may lack (older collections): ``violated`` marks transitions
#: during which the true state broke a guardrail of the scenario.
OPTIONAL_FIELDS = ("violated",)


class DataError(ValueError):
    """A data set is missing, malformed or unusable for the requested training."""


class TrainingError(ValueError):
    """Training failed on usable data: the loss stopped being finite."""


@dataclass
class Trajectories:
    """Episodes as state and action sequences, concatenated.

    Episode ``e`` has ``T_e`` actions and ``T_e + 1`` states; its states are
    ``states[state_start[e] : state_start[e] + T_e + 1]`` and its actions
    ``actions[action_start[e] : action_start[e] + T_e]``.
    """

    obs: np.ndarray  # [S, O] float32, states of all episodes (the selected columns)
    readouts: np.ndarray  # [S, P] float32, true readouts of the same states
    actions: np.ndarray  # [N, A] float32
    state_start: np.ndarray  # [E] int64
    action_start: np.ndarray  # [E] int64
    length: np.ndarray  # [E] int64, actions per episode
    episode_ids: np.ndarray  # [E] int64, episode index in the data set
    images: np.ndarray | None = None  # [S, C, H, W] uint8, camera images of the same states

    @property
    def num_episodes(self) -> int:
        """Episodes represented (an episode split at violations counts once)."""
        return int(np.unique(self.episode_ids).size)

    @property
    def num_transitions(self) -> int:
        return int(self.length.sum())

    def windows(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Start indices (into states, into actions) of every window of
        ``horizon`` consecutive actions inside one episode."""
        s_idx, a_idx = [], []
        for s0, a0, t in zip(self.state_start, self.action_start, self.length):
            n = int(t) - horizon + 1
            if n > 0:
                s_idx.append(s0 + np.arange(n))
                a_idx.append(a0 + np.arange(n))
        if not s_idx:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(s_idx).astype(np.int64), np.concatenate(a_idx).astype(np.int64)


@dataclass
class Dataset:
    """A data set as written by ``telic collect``."""

    path: str
    meta: dict
    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    readouts: np.ndarray
    next_readouts: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    done: np.ndarray
    violated: np.ndarray | None = None
    image: np.ndarray | None = None  # [N, C, H, W] uint8, the image of obs[t]
    next_image: np.ndarray | None = None  # [N, C, H, W] uint8, the image of next_obs[t]

    @property
    def observations(self) -> list[str]:
        return list(self.meta["observations"])

    @property
    def proprio_names(self) -> list[str]:
        """The observations that are the robot's own state (meta ``proprio``;
        empty for data sets without images)."""
        return list(self.meta.get("proprio") or [])

    @property
    def actions(self) -> list[str]:
        return list(self.meta["actions"])

    @property
    def readout_names(self) -> list[str]:
        return list(self.meta["readouts"])

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def episode_ranges(self) -> list[tuple[int, int, int]]:
        """``(episode index, first row, end row)`` of every episode, in row order."""
        if len(self) == 0:
            return []
        change = np.flatnonzero(np.diff(self.episode) != 0) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(self)]])
        return [(int(self.episode[s]), int(s), int(e)) for s, e in zip(starts, ends)]

    def trajectories(self, episodes: list[int] | None = None, readout_columns=None,
                     safe_only: bool = False, obs_columns=None, images: bool = False) -> Trajectories:
        """Episodes (all, or those whose index is in ``episodes``) as trajectories.

        ``readout_columns`` selects readout columns (default: all),
        ``obs_columns`` observation columns (default: all; the rows chain on
        all of them); ``images`` adds the camera images (a data set without
        them is an error). With
        ``safe_only`` (and a ``violated`` field), transitions during which the
        true state broke a guardrail are left out: each episode becomes its
        runs of consecutive safe transitions, so no window spans a violation.
        """
        cols = slice(None) if readout_columns is None else np.asarray(readout_columns, dtype=np.int64)
        obs_cols = slice(None) if obs_columns is None else np.asarray(obs_columns, dtype=np.int64)
        if images and (self.image is None or self.next_image is None):
            raise DataError(f"{self.path}: the data set has no camera images (collect it in a pixel "
                            f"observation mode: `telic collect SCENE --obs pixels ...`)")
        frames: list[np.ndarray] = []
        wanted = None if episodes is None else set(int(e) for e in episodes)
        obs, ys, acts, s_start, a_start, lengths, ids = [], [], [], [], [], [], []
        s_count = a_count = 0
        segments = []
        for ep, s, e in self.episode_ranges():
            if wanted is not None and ep not in wanted:
                continue
            if safe_only and self.violated is not None:
                ok = np.concatenate([[False], self.violated[s:e] == 0, [False]])
                edges = np.flatnonzero(np.diff(ok.astype(np.int8)))
                segments += [(ep, s + int(a), s + int(b)) for a, b in zip(edges[0::2], edges[1::2])]
            else:
                segments.append((ep, s, e))
        for ep, s, e in segments:
            o = self.obs[s:e]
            if e - s > 1 and not np.array_equal(o[1:], self.next_obs[s : e - 1]):
                raise DataError(
                    f"{self.path}: rows of episode {ep} do not chain (obs[t+1] != next_obs[t])"
                )
            obs.append(np.concatenate([o, self.next_obs[e - 1 : e]])[:, obs_cols])
            if images:
                frames.append(np.concatenate([self.image[s:e], self.next_image[e - 1 : e]]))
            y = self.readouts[s:e][:, cols]
            ys.append(np.concatenate([y, self.next_readouts[e - 1 : e][:, cols]]))
            acts.append(self.action[s:e])
            s_start.append(s_count)
            a_start.append(a_count)
            lengths.append(e - s)
            ids.append(ep)
            s_count += e - s + 1
            a_count += e - s
        if not obs:
            raise DataError(f"{self.path}: no episode selected")
        return Trajectories(
            obs=np.concatenate(obs).astype(np.float32),
            readouts=np.concatenate(ys).astype(np.float32),
            actions=np.concatenate(acts).astype(np.float32),
            state_start=np.asarray(s_start, np.int64),
            action_start=np.asarray(a_start, np.int64),
            length=np.asarray(lengths, np.int64),
            episode_ids=np.asarray(ids, np.int64),
            images=np.concatenate(frames) if images else None,
        )


def load_dataset(path: str) -> Dataset:
    """Reads ``path/meta.json`` and every field file, checking shapes against it."""
    meta_path = os.path.join(path, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise DataError(
            f"{path}: no meta.json; write a data set with `telic collect SCENE --out {path}`"
        ) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path}: {e}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") not in (FORMAT_VERSION, IMAGE_FORMAT_VERSION):
        raise DataError(
            f"{meta_path}: format {meta.get('format')!r} version {meta.get('format_version')!r}, "
            f"expected {FORMAT!r} version {FORMAT_VERSION} or {IMAGE_FORMAT_VERSION}"
        )
    for key in ("observations", "actions", "readouts", "action_lower", "action_upper", "dt", "fields"):
        if key not in meta:
            raise DataError(f"{meta_path}: missing key {key!r}")
    n = int(meta.get("transitions", -1))
    widths = {
        "obs": len(meta["observations"]),
        "next_obs": len(meta["observations"]),
        "action": len(meta["actions"]),
        "readouts": len(meta["readouts"]),
        "next_readouts": len(meta["readouts"]),
    }
    def read(field: str, info: dict) -> np.ndarray:
        file = os.path.join(path, info["file"])
        try:
            a = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{file}: {e}") from None
        shape = (n, widths[field]) if field in widths else (n,)
        if a.shape != shape:
            raise DataError(f"{file}: shape {a.shape}, meta.json says {shape}")
        if field in widths and not np.all(np.isfinite(a)):
            raise DataError(f"{file}: non-finite values")
        return a

    arrays = {}
    for field in FIELDS:
        info = meta["fields"].get(field)
        if info is None:
            raise DataError(f"{meta_path}: no field {field!r}")
        arrays[field] = read(field, info)
    for field in OPTIONAL_FIELDS:
        info = meta["fields"].get(field)
        if info is not None:
            arrays[field] = read(field, info)
    if meta["format_version"] == IMAGE_FORMAT_VERSION:
        arrays["image"], arrays["next_image"] = _read_images(path, meta, n)
    return Dataset(path=path, meta=meta, **arrays)


def _read_images(path: str, meta: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The camera images of a format-2 data set, checked against meta's
    ``image`` table (uint8 ``[N, C, H, W]``) and its ``proprio`` names."""
    meta_path = os.path.join(path, "meta.json")
    info = meta.get("image")
    if not isinstance(info, dict) or any(k not in info for k in IMAGE_KEYS):
        raise DataError(f"{meta_path}: format version {IMAGE_FORMAT_VERSION} needs an `image` table "
                        f"with {list(IMAGE_KEYS)}, got {info!r}")
    if info["dtype"] != "uint8":
        raise DataError(f"{meta_path}: image dtype {info['dtype']!r}, expected 'uint8'")
    proprio = meta.get("proprio")
    if not isinstance(proprio, list) or any(p not in meta["observations"] for p in proprio):
        raise DataError(f"{meta_path}: `proprio` must list observation names, got {proprio!r}")
    shape = (n, int(info["channels"]), int(info["height"]), int(info["width"]))
    out = []
    for key in ("file", "next_file"):
        file = os.path.join(path, info[key])
        try:
            with gzip.open(file, "rb") as f:
                a = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{file}: {e}") from None
        if a.dtype != np.uint8 or a.shape != shape:
            raise DataError(f"{file}: {a.dtype} {a.shape}, meta.json says uint8 {shape}")
        out.append(a)
    return out[0], out[1]


def load_datasets(paths) -> Dataset:
    """Reads one data set, or several of the same scene as one: their rows
    concatenated, episode indices renumbered so they stay distinct.

    The sets must agree on observations, actions (with bounds), readouts and
    time step. The result's ``meta`` is the first set's, with ``sources``
    listing every set and ``transitions``/``episodes`` totalled. The
    ``violated`` field is kept only when every set has one.
    """
    if isinstance(paths, (str, os.PathLike)):
        return load_dataset(str(paths))
    paths = [str(p) for p in paths]
    if not paths:
        raise DataError("no data set given")
    sets = [load_dataset(p) for p in paths]
    if len(sets) == 1:
        return sets[0]
    first = sets[0]
    for ds in sets[1:]:
        for key in ("observations", "actions", "readouts", "action_lower", "action_upper", "dt", "proprio"):
            if ds.meta.get(key) != first.meta.get(key):
                raise DataError(f"{ds.path}: {key} {ds.meta.get(key)!r} differs from {first.path}'s "
                                f"{first.meta.get(key)!r}; only data sets of one scene combine")
    episode, offset = [], 0
    for ds in sets:
        ep = ds.episode.astype(np.int64)
        episode.append(ep + offset)
        offset += int(ep.max()) + 1 if ep.size else 0
    arrays = {f: np.concatenate([getattr(ds, f) for ds in sets]) for f in FIELDS if f != "episode"}
    violated = None
    if all(ds.violated is not None for ds in sets):
        violated = np.concatenate([ds.violated for ds in sets])
    if all(ds.image is not None for ds in sets):
        if len({ds.image.shape[1:] for ds in sets}) > 1:
            raise DataError(f"{paths}: the data sets' images differ in size; only images of one camera combine")
        arrays["image"] = np.concatenate([ds.image for ds in sets])
        arrays["next_image"] = np.concatenate([ds.next_image for ds in sets])
    elif any(ds.image is not None for ds in sets):
        raise DataError(f"{paths}: some data sets have camera images and some do not; they do not combine")
    meta = dict(first.meta)
    meta["sources"] = [{"path": ds.path, "seed": ds.meta.get("seed"), "transitions": len(ds),
                        "episodes": int(np.unique(ds.episode).size)} for ds in sets]
    meta["transitions"] = sum(len(ds) for ds in sets)
    meta["episodes"] = sum(s["episodes"] for s in meta["sources"])
    return Dataset(path="+".join(paths), meta=meta, episode=np.concatenate(episode), violated=violated, **arrays)


def split_episodes(episode_ids, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Splits episode indices into (train, validation) with a seeded shuffle;
    at least one episode on each side."""
    ids = sorted(set(int(e) for e in episode_ids))
    if len(ids) < 2:
        raise DataError(f"need at least 2 episodes to hold some out for validation, got {len(ids)}")
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_val = min(max(1, int(round(val_fraction * len(ids)))), len(ids) - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def column_stats(x: np.ndarray, floor: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column (float64); a column that varies
    less than ``floor`` is treated as constant and gets std 1."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > floor, std, 1.0)
    return mean, std
