"""Training a JEPA world model on a ``telic collect`` data set and writing a bundle.

``train(TrainConfig(data=..., out=...))`` does everything
``python -m telic.train`` does: load the data, hold out whole episodes, train
(seeded, deterministic, CPU), export the three ONNX graphs, check them against
PyTorch with ONNX Runtime (failing above ``onnx_tolerance``), measure the
open-loop readout error quantiles per horizon step on the held-out episodes,
write ``manifest.toml`` and check the bundle as the engine would load it.

``train`` runs these as stages, in this order (the order of every random
draw): ``_prepare`` (data, seeds, split, normalisation), ``_build`` (model
and optimiser), ``_fit`` (epochs, then the probe fit), ``_margins``
(model-error quantiles), ``_export_and_check`` (ONNX and its parity), then
``_manifest`` and ``_report``.

With ``image`` (a data set collected in a pixel observation mode), the
encoder is a ``PixelEncoder`` over the camera image and, with ``proprio``, the
robot's own state columns (meta ``proprio``); it never sees the other state
columns, which stay labels of the readouts. The bundle is then format 2 with
an ``[image]`` table and an ``encode.onnx`` taking the uint8 ``image``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .data import DataError, Dataset, Trajectories, TrainingError, column_stats, load_datasets, split_episodes
from .export import ENCODE_FILE, PREDICT_FILE, READOUT_FILE, BundleError, check_bundle, export_graphs, onnx_vs_torch
from .manifest import MANIFEST_FILE, write_manifest
from .pixels import MAX_IMAGE_VAL_WINDOWS, encoder_inputs, encoder_rows, raw_rows

if TYPE_CHECKING:
    import torch

    from .model import WorldModel

PRODUCER = "telic.train 0.1.0"


@dataclass
class TrainConfig:
    """Settings of a training run; every field but ``data`` and ``out`` has a default."""

    data: str | list[str]  # one data set folder, or several of the same scene
    out: str
    epochs: int = 40
    latent_dim: int = 32
    hidden: int = 256
    layers: int = 2
    readout_hidden: int = 128
    readout_layers: int = 2
    horizon: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    ema: float = 0.99
    w_pred: float = 1.0
    w_probe: float = 10.0
    w_var: float = 1.0
    w_cov: float = 0.01
    val_fraction: float = 0.1
    readouts: list[str] | None = None
    periodic: list[str] | None = None
    frames: list[str] | None = None
    bilinear: int = 0
    image: bool = False  # encode the data set's camera images (a pixel mode data set)
    proprio: bool = False  # with image: also encode the robot's own state columns (pixels+proprio)
    seen: list[str] | None = None  # with image: readouts the image encoder estimates (supervised), see PixelEncoder
    w_seen: float = 10.0  # weight of the supervised loss on the seen estimates
    # Readouts learned saturated at an upper bound: a clearance matters near an
    # obstacle, and its error far from one would only widen the margins.
    saturate: dict[str, float] | None = None
    # With image and proprio: "X,Y:HALF:SIZE", encode the SIZE×SIZE crop of the
    # image around the robot's position (proprio X, Y), HALF metres each way.
    ego: str | None = None
    # With image and proprio: "READOUT:X,Y:STEP", or a list of them, learn
    # READOUT as a map over the ground in view, read at the position X, Y and
    # 8 neighbours STEP metres away (see GroundField). X, Y are proprio
    # observations (the robot's position) or --seen readouts (a position the
    # image showed, e.g. box.x, box.y).
    ground_field: str | list[str] | None = None
    # With image and proprio: "READOUT:X,Y:PX,PY:HALF:CELLS", READOUT mapped
    # at the image's resolution on a CELLS×CELLS grid ±HALF metres around
    # the robot's position X, Y (proprio) and carried in the latent; the
    # readout reads it where the readouts PX, PY put the robot (GroundMap).
    ground_map: str | None = None
    # With ground_map: passes over the training images that fit the map's
    # head on its own first, labelled by every place of the image's episode,
    # then freeze it (telic.train.mapfit); 0 leaves it to the world model's loss.
    map_epochs: int = 0
    # With image: after the epochs, freeze the convolution stack, compute its
    # pooled features once, and train the rest for frozen_epochs more on
    # windows of frozen_horizon steps (a frozen visual backbone, as DINO-WM
    # plans on a frozen DINOv2: long multi-step training at the cost of the
    # state models).
    freeze: bool = False
    frozen_epochs: int = 40
    frozen_horizon: int = 8
    safe_only: bool = True
    quantile: float = 0.99
    quantile_horizon: int = 40
    min_quantile_samples: int = 20
    seed: int | None = None
    threads: int = 1
    name: str | None = None
    dt: float | None = None  # seconds per step, for data recorded without one
    onnx_tolerance: float = 1e-4
    max_val_windows: int = 4096
    probe_epochs: int = 30
    probe_batch_size: int = 1024
    probe_lr: float = 1e-3
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def field_specs(self) -> list[str]:
        """``ground_field`` as a list."""
        if not self.ground_field:
            return []
        return [self.ground_field] if isinstance(self.ground_field, str) else list(self.ground_field)

    def validate(self) -> None:
        if self.probe_epochs < 0:
            raise ValueError(f"probe_epochs must be ≥ 0, got {self.probe_epochs}")
        positive = ["probe_batch_size", "epochs", "latent_dim", "hidden", "readout_hidden", "horizon", "batch_size",
                    "quantile_horizon", "min_quantile_samples", "threads", "max_val_windows"]
        for k in positive:
            if not int(getattr(self, k)) >= 1:
                raise ValueError(f"{k} must be at least 1, got {getattr(self, k)}")
        if self.proprio and not self.image:
            raise ValueError("proprio needs image: without images the encoder sees every observation already")
        if self.seen and not self.image:
            raise ValueError("seen needs image: it names readouts the image encoder estimates")
        if self.freeze and not self.image:
            raise ValueError("freeze needs image: it freezes the image encoder's convolutions")
        if self.frozen_epochs < 1 or self.frozen_horizon < 1:
            raise ValueError("frozen_epochs and frozen_horizon must be at least 1")
        if self.ego and not self.proprio:
            raise ValueError("ego needs image and proprio: the crop is centred where the robot's own state says")
        if self.ground_field and not self.proprio:
            raise ValueError("field needs image and proprio: the map is read where the robot's own state says")
        if self.ground_field and self.ego:
            raise ValueError("field and ego do not combine: the map covers the whole image, the crop only its centre")
        if self.map_epochs < 0 or (self.map_epochs and not self.ground_map):
            raise ValueError(f"map_epochs must be ≥ 0 and needs ground_map, got {self.map_epochs}")
        if self.bilinear < 0:
            raise ValueError(f"bilinear must be ≥ 0, got {self.bilinear}")
        if self.layers < 0 or self.readout_layers < 0:
            raise ValueError("layers and readout_layers must be ≥ 0")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        if not (self.lr > 0 and self.probe_lr > 0 and self.onnx_tolerance > 0):
            raise ValueError("lr, probe_lr and onnx_tolerance must be positive")
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {self.dt}")


class _Norm:
    """Normalisation of observations and readouts, as float32 arrays."""

    def __init__(self, obs_mean, obs_std, y_mean, y_std):
        self.obs_mean, self.obs_std = obs_mean, obs_std
        self.y_mean, self.y_std = y_mean, y_std

    def obs(self, x):
        return ((x - self.obs_mean) / self.obs_std).astype(np.float32)

    def y(self, x):
        return ((x - self.y_mean) / self.y_std).astype(np.float32)


def _rollout_errors(model, traj: Trajectories, norm: _Norm, horizon: int):
    """Open-loop readout errors on every start state of ``traj``.

    Returns ``(errs, latent_mse_h1)`` where ``errs[h - 1]`` is ``[M_h, P]``,
    ``|y_pred − y_true|`` in physical units ``h`` predict steps after encoding
    a real observation, over the ``M_h`` starts that have ``h`` more actions in
    their episode.
    """
    import torch

    s_list, a_list, r_list = [], [], []
    for s0, a0, t in zip(traj.state_start, traj.action_start, traj.length):
        k = np.arange(int(t))
        s_list.append(s0 + k)
        a_list.append(a0 + k)
        r_list.append(int(t) - k)
    s = np.concatenate(s_list)
    a = np.concatenate(a_list)
    remaining = np.concatenate(r_list)
    order = np.argsort(-remaining, kind="stable")
    s, a, remaining = s[order], a[order], remaining[order]
    obs_n = encoder_rows(traj, norm)
    acts = torch.from_numpy(traj.actions)
    errs = []
    latent_mse = float("nan")
    with torch.no_grad():
        z = model.encoder(obs_n[s])
        for h in range(1, horizon + 1):
            n = int(np.searchsorted(-remaining, -h, side="right"))  # starts with ≥ h actions left
            if n == 0:
                break
            z = model.predictor(z[:n], acts[a[:n] + h - 1])
            if h == 1:
                target = model.encoder(obs_n[s[:n] + 1])
                latent_mse = float(((z - target) ** 2).mean())
            y = model.readout(z).numpy().astype(np.float64)
            errs.append(np.abs(y - traj.readouts[s[:n] + h]))
    return errs, latent_mse


def _summary(errs, y_std, varying, names) -> dict:
    """Per horizon step: the RMSE of each readout, in its own unit
    (``rmse[name][h - 1]``), and the mean over readouts of RMSE / σ_y, a
    unitless figure (``nrmse``: over the readouts that vary in the training
    data). Readouts of different units are never averaged."""
    rmse = [np.sqrt((e**2).mean(axis=0)) for e in errs]
    return {
        "rmse": {n: [float(r[i]) for r in rmse] for i, n in enumerate(names)},
        "nrmse": [float((r / y_std)[varying].mean()) for r in rmse],
    }


def _time_step(data_dt, given: float | None, where: str) -> float:
    """The bundle's ``dt``: the data set's, or ``given`` when the data was
    recorded without one (``telic.dataset.Recorder(dt=None)``); both must
    agree when both are there."""
    if data_dt is None:
        if given is None:
            raise DataError(f"{where} was recorded without a time step (dt is null) and a bundle needs one "
                            f"(docs/bundle.md: seconds per predict step; the controller advances plans by it): "
                            f"give it with --dt SECONDS (TrainConfig.dt); --dt 1 makes one environment step "
                            f"the unit of time")
        return float(given)
    data_dt = float(data_dt)
    if not (math.isfinite(data_dt) and data_dt > 0):
        raise DataError(f"{where}: dt {data_dt} is not a positive number of seconds")
    if given is not None and not math.isclose(given, data_dt, rel_tol=1e-9):
        raise DataError(f"--dt {given} differs from the data set's dt {data_dt} ({where}); "
                        f"leave --dt out for data recorded with a time step")
    return data_dt


def _window_loss(model, windows, data, weights, max_windows):
    import torch

    from .model import jepa_loss

    s_idx, a_idx = windows
    s_idx, a_idx = s_idx[:max_windows], a_idx[:max_windows]
    obs_n, acts, y_n, k = data
    ar = np.arange(k + 1)
    with torch.no_grad():
        _, terms = jepa_loss(model, obs_n[s_idx[:, None] + ar], acts[a_idx[:, None] + ar[:-1]],
                             y_n[s_idx[:, None] + ar], weights)
    return terms


def fit_probes(model, tr_win, tr_data, cfg, rng, say) -> list[dict]:
    """Second phase: the readout probes refit on the frozen encoder and predictor.

    JEPA representations are judged by probes trained on the frozen model; here
    the probe *is* what the planner reads guardrails and objectives from, so it
    gets a dedicated fit: every training window is encoded and rolled out once
    (``z_0 … z_K``, no gradient), and the readout head alone is trained on all
    those latents against the standardised readouts (Adam, cosine schedule).
    The predicted latents are included so the probe is accurate where the
    planner uses it: on imagined states, not only on encoded ones.
    Returns the per-epoch mean squared error (standardised units).
    """
    import torch

    s_idx, a_idx = tr_win
    obs_t, act_t, y_t, k = tr_data
    ar = np.arange(k + 1)
    zs, ys = [], []
    model.eval()
    with torch.no_grad():
        for b in range(0, s_idx.size, 4096):
            si, ai = s_idx[b:b + 4096], a_idx[b:b + 4096]
            z0 = model.encoder(obs_t[si])
            lat = torch.cat([z0.unsqueeze(1), model.rollout(z0, act_t[ai[:, None] + ar[:-1]])], dim=1)
            zs.append(lat.reshape(-1, lat.shape[-1]))
            ys.append(y_t[si[:, None] + ar].reshape(-1, y_t.shape[1]))
    z_all, y_all = torch.cat(zs), torch.cat(ys)
    n = z_all.shape[0]
    head = model.readout.normalised
    model.readout.train()
    opt = torch.optim.Adam(model.readout.parameters(), lr=cfg.probe_lr)
    steps = max(1, math.ceil(n / cfg.probe_batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.probe_epochs * steps)
    history = []
    for epoch in range(1, cfg.probe_epochs + 1):
        t0 = time.perf_counter()
        perm = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for b in range(steps):
            idx = perm[b * cfg.probe_batch_size:(b + 1) * cfg.probe_batch_size]
            loss = ((head(z_all[idx]) - y_all[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        history.append({"epoch": epoch, "mse": total / steps, "seconds": time.perf_counter() - t0})
        say(f"probe {epoch:3d}/{cfg.probe_epochs}  readout mse {total / steps:.6f} on {n} latents "
            f"({time.perf_counter() - t0:.1f} s)")
    model.eval()
    return history


REFERENCE_FILE = "reference.json"


def write_reference(model, out_dir: str, obs: np.ndarray, u: np.ndarray, norm, image_len: int = 0) -> None:
    """PyTorch's outputs on held-out rows, as flat row-major lists: raw
    observations ``obs`` (the runtime normalises them, as the manifest says;
    with an image, each row starts with its ``image_len`` pixel values),
    actions ``u``, and ``z = encode(obs)``, ``z_next = predict(z, u)``,
    ``y = readout(z)``. Any runtime can check itself against the training
    framework with it (`telic inspect BUNDLE` does)."""
    import torch

    rows = np.concatenate([obs[:, :image_len], norm.obs(obs[:, image_len:])], axis=1)
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)))
        z_next = model.predictor(z, torch.from_numpy(np.ascontiguousarray(u, dtype=np.float32)))
        y = model.readout(z)
    flat = lambda a: np.asarray(a, dtype=np.float64).reshape(-1).tolist()  # noqa: E731
    doc = {"obs": flat(obs), "u": flat(u), "z": flat(z.numpy()), "z_next": flat(z_next.numpy()), "y": flat(y.numpy())}
    with open(os.path.join(out_dir, REFERENCE_FILE), "w") as f:
        json.dump(doc, f)


@dataclass
class Prepared:
    """The data a run trains on, split and normalised, with the run's random
    generator: what ``_prepare`` makes of the data set and the settings."""

    ds: Dataset
    dt: float  # the bundle's seconds per predict step
    seed: int
    readouts: list[str]  # the readouts the model learns, in column order
    columns: list[int]  # their columns in the data set
    observations: list[str]  # the observations the encoder reads (with an image: the proprio ones)
    image_shape: tuple[int, int, int] | None  # (C, H, W) of the encoder's image, if it reads one
    rng: np.random.Generator  # the permutations of training and the probe fit
    train: Trajectories
    val: Trajectories  # held-out episodes
    excluded: int  # transitions left out because they broke a guardrail
    norm: _Norm
    varying: np.ndarray  # readouts that vary in the training data (nRMSE averages over them)
    horizon: int  # steps of a training window
    train_windows: tuple[np.ndarray, np.ndarray]
    val_windows: tuple[np.ndarray, np.ndarray]  # shuffled once, with seed + 1
    train_tensors: tuple  # (observations, actions, readouts, horizon): normalised torch tensors
    val_tensors: tuple


@dataclass
class Built:
    """The untrained model and what trains it."""

    model: WorldModel
    params: list  # the trained parameters (the EMA target encoder is not among them)
    n_params: int
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    weights: dict  # loss weights by term
    periodic: list[str]  # periodic observations (angles)


@dataclass
class Fitted:
    """How training went: held-out figures before it and after every epoch,
    the probe fit's history, and its duration."""

    initial: dict
    history: list[dict]
    probe_history: list[dict]
    training_time: float
    map_history: list[dict] = field(default_factory=list)  # the map head's own fit (--map-epochs)


@dataclass
class Margins:
    """Open-loop readout errors on the held-out episodes and the model-error
    margins measured from them."""

    h_max: int  # horizon steps with enough held-out starts
    counts: list[int]  # held-out starts per horizon step
    latent_mse: float  # latent prediction error one step ahead
    margins: np.ndarray  # [h_max, P], at cfg.quantile
    by_quantile: dict  # the margins at other levels, for `python -m telic.train.margins`
    summary: dict  # _summary of the errors


@dataclass
class Outcome:
    """Everything measured after training: margins, ONNX parity and the
    named errors of the manifest."""

    fitted: Fitted
    margins: Margins
    diffs: dict  # max |ONNX − PyTorch| per graph file, and "max"
    errors: dict  # provenance.validation.errors


def _prepare(cfg: TrainConfig) -> Prepared:
    """Loads the data, seeds torch and numpy, holds out whole episodes and
    normalises; fails early on data that cannot train."""
    import torch

    ds = load_datasets(cfg.data)
    meta = ds.meta
    dt = _time_step(meta.get("dt"), cfg.dt, ds.path)
    seed = int(meta.get("seed", 0) if cfg.seed is None else cfg.seed)
    names = ds.readout_names
    chosen = names if cfg.readouts is None else list(cfg.readouts)
    unknown = [r for r in chosen if r not in names]
    if unknown or not chosen:
        raise DataError(f"readouts {unknown or chosen} are not in the data set (it has {names})")
    cols = [names.index(r) for r in chosen]
    observations, obs_cols, image_shape = encoder_inputs(ds, cfg.image, cfg.proprio)

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(seed)

    train_eps, val_eps = split_episodes(ds.episode, cfg.val_fraction, seed)
    tr = ds.trajectories(train_eps, cols, safe_only=cfg.safe_only, obs_columns=obs_cols, images=cfg.image)
    va = ds.trajectories(val_eps, cols, safe_only=cfg.safe_only, obs_columns=obs_cols, images=cfg.image)
    excluded = int(ds.violated.sum()) if (cfg.safe_only and ds.violated is not None) else 0
    # A saturated readout keeps the spread it has unsaturated as its scale:
    # the losses weigh readouts by their standardised errors, and the small
    # spread of a saturated clearance made its errors outweigh the box's
    # (push: 43 times over at 0.2 m; the box's dynamics suffered).
    _, raw_std = column_stats(tr.readouts)
    saturated = []
    for name, hi in (cfg.saturate or {}).items():
        if name not in chosen:
            raise DataError(f"saturated readout {name!r} is not among the model's readouts (they are {chosen})")
        if not math.isfinite(hi):
            raise DataError(f"saturated readout {name!r}: the bound {hi} is not a number")
        j = chosen.index(name)
        saturated.append(j)
        for t in (tr, va):
            t.readouts[:, j] = np.minimum(t.readouts[:, j], np.float32(hi))
    obs_mean, obs_std = column_stats(tr.obs)
    y_mean, y_std = column_stats(tr.readouts)
    y_std[saturated] = np.maximum(y_std[saturated], raw_std[saturated])
    varying = tr.readouts.std(axis=0) > 1e-4
    if not varying.any():
        varying[:] = True
    norm = _Norm(obs_mean, obs_std, y_mean, y_std)
    k = cfg.horizon
    tr_win, va_win = _windows(tr, va, k, seed, "--horizon")
    tr_data = (encoder_rows(tr, norm), torch.from_numpy(tr.actions), torch.from_numpy(norm.y(tr.readouts)), k)
    va_data = (encoder_rows(va, norm), torch.from_numpy(va.actions), torch.from_numpy(norm.y(va.readouts)), k)
    return Prepared(ds=ds, dt=dt, seed=seed, readouts=chosen, columns=cols, observations=observations,
                    image_shape=image_shape, rng=rng, train=tr, val=va,
                    excluded=excluded, norm=norm, varying=varying, horizon=k, train_windows=tr_win,
                    val_windows=va_win, train_tensors=tr_data, val_tensors=va_data)


def _windows(tr: Trajectories, va: Trajectories, k: int, seed: int, option: str):
    """Training and held-out windows of ``k`` steps, the held-out ones
    shuffled once (with ``seed + 1``); ``option`` is the setting that
    chose ``k``, for the error when an episode set has none."""
    tr_win, va_win = tr.windows(k), va.windows(k)
    if tr_win[0].size == 0:
        raise DataError(f"no training episode has {k} steps; lower {option} or collect longer episodes")
    if va_win[0].size == 0:
        raise DataError(f"no held-out episode has {k} steps; lower {option} or raise --val-fraction")
    va_perm = np.random.default_rng(seed + 1).permutation(va_win[0].size)
    return tr_win, (va_win[0][va_perm], va_win[1][va_perm])


def _optimiser(cfg: TrainConfig, params: list, windows: int, epochs: int):
    """AdamW over ``params`` and its cosine schedule over ``epochs`` passes
    of ``windows`` training windows; returns ``(opt, sched, steps_per_epoch)``."""
    import torch

    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, math.ceil(windows / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    return opt, sched, steps


def _build(cfg: TrainConfig, prep: Prepared) -> Built:
    """The model (frame features scaled on the training data), its optimiser
    and learning-rate schedule."""
    import torch

    from .model import GroundField, WorldModel

    ds, tr, meta = prep.ds, prep.train, prep.ds.meta
    obs_mean, obs_std = prep.norm.obs_mean, prep.norm.obs_std
    obs_dim = tr.obs.shape[1]
    # With seen readouts, the vector encoder reads the proprio entries and the
    # image's estimates of those readouts (standardised like the readouts):
    # frames and periodic columns may name either.
    seen = list(cfg.seen or [])
    unknown = [n for n in seen if n not in prep.readouts]
    if unknown:
        raise DataError(f"seen readouts {unknown} are not among the model's readouts (they are {prep.readouts})")
    # Fields read at the robot's position first, then those read where the
    # image showed something (PixelEncoder's order).
    fields = sorted((_field(spec, prep, seen) for spec in cfg.field_specs()), key=lambda f: f["source"])
    # The fields' samples follow the seen estimates, each standardised like
    # its readout: the centres, named as the readouts, then the neighbours.
    names_of = [prep.readouts[f["col"]] for f in fields]
    if len(set(names_of)) < len(names_of):
        raise DataError(f"--field: each readout is mapped once, got {cfg.field_specs()}")
    sampled = names_of + [f"{n}@{k}" for n in names_of for k in range(1, GroundField.SAMPLES)]
    sampled_idx = [f["col"] for f in fields] + [f["col"] for f in fields for _ in range(1, GroundField.SAMPLES)]
    seen_idx = [prep.readouts.index(n) for n in seen]
    vec_idx = seen_idx + sampled_idx
    names = list(prep.observations) + seen + sampled
    vec_mean = np.concatenate([obs_mean, prep.norm.y_mean[vec_idx]]).astype(np.float32)
    vec_std = np.concatenate([obs_std, prep.norm.y_std[vec_idx]]).astype(np.float32)
    periodic = list(cfg.periodic or [])
    unknown = [n for n in periodic if n not in names]
    if unknown:
        raise DataError(f"periodic observations {unknown} are not among the encoder's inputs "
                        f"(they are {names})")
    per_idx = [names.index(n) for n in periodic]
    frames = None
    if cfg.frames:
        from .model import FrameFeatures, parse_frame

        try:
            parsed = [parse_frame(f, names) for f in cfg.frames]
        except ValueError as e:
            raise DataError(str(e)) from None
        frames = FrameFeatures(parsed, vec_mean, vec_std)
        vec = np.concatenate([prep.norm.obs(tr.obs), prep.norm.y(tr.readouts)[:, vec_idx]], axis=1)
        with torch.no_grad():
            feats = frames.raw(torch.as_tensor(vec, dtype=torch.float32))
            frames.scale.copy_(feats.std(dim=0, keepdim=True).clamp_min(1e-6))
    ego = _ego(cfg.ego, prep) if cfg.ego else None
    ground_map = _ground_map(cfg.ground_map, prep) if cfg.ground_map else None
    model = WorldModel(
        frames=frames, bilinear=cfg.bilinear, ego=ego, fields=fields, ground_map=ground_map,
        periodic=per_idx, periodic_mean=vec_mean[per_idx], periodic_std=vec_std[per_idx], seen=seen_idx,
        obs_dim=obs_dim, latent_dim=cfg.latent_dim,
        action_lower=meta["action_lower"], action_upper=meta["action_upper"],
        y_mean=prep.norm.y_mean, y_std=prep.norm.y_std, hidden=cfg.hidden, layers=cfg.layers,
        readout_hidden=cfg.readout_hidden, readout_layers=cfg.readout_layers, image_shape=prep.image_shape,
    )
    params = [q for n, q in model.named_parameters() if not n.startswith("target_encoder.")]
    n_params = sum(q.numel() for q in params)
    opt, sched, steps_per_epoch = _optimiser(cfg, params, prep.train_windows[0].size, cfg.epochs)
    weights = {"pred": cfg.w_pred, "probe": cfg.w_probe, "var": cfg.w_var, "cov": cfg.w_cov}
    if seen or fields:
        weights["seen"] = cfg.w_seen
    return Built(model=model, params=params, n_params=n_params, opt=opt, sched=sched,
                 steps_per_epoch=steps_per_epoch, weights=weights, periodic=periodic)


def _ego(spec: str, prep: Prepared) -> dict:
    """The ``EgoCrop`` settings of ``--ego X,Y:HALF:SIZE``."""
    parts = spec.split(":")
    names = [n.strip() for n in parts[0].split(",")] if parts else []
    try:
        half, size = float(parts[1]), int(parts[2])
        if len(parts) != 3 or len(names) != 2:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"--ego {spec!r}: expected X,Y:HALF:SIZE, e.g. x,y:2.5:40") from None
    if not (math.isfinite(half) and half > 0 and 8 <= size <= 256):
        raise DataError(f"--ego {spec!r}: HALF must be positive metres and SIZE 8 to 256 pixels")
    return {**_robot_on_image(f"--ego {spec!r}", names, prep), "half": half, "size": size}


def _ground_map(spec: str, prep: Prepared) -> dict:
    """The ``GroundMap`` settings of ``--map READOUT:X,Y:PX,PY:HALF:CELLS``,
    with the mapped readout's column ``col`` and the robot position's
    readout columns ``pos``."""
    option = f"--map {spec!r}"
    parts = spec.split(":")
    try:
        readout = parts[0].strip()
        xy = [n.strip() for n in parts[1].split(",")]
        pxy = [n.strip() for n in parts[2].split(",")]
        half, cells = float(parts[3]), int(parts[4])
        if len(parts) != 5 or len(xy) != 2 or len(pxy) != 2:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"{option}: expected READOUT:X,Y:PX,PY:HALF:CELLS, e.g. clearance:x,y:base.x,base.y:1.5:25") \
            from None
    unknown = [n for n in [readout] + pxy if n not in prep.readouts]
    if unknown:
        raise DataError(f"{option}: {unknown} are not among the model's readouts (they are {prep.readouts})")
    if not (math.isfinite(half) and half > 0 and 3 <= cells <= 101):
        raise DataError(f"{option}: HALF must be positive metres and CELLS 3 to 101")
    pos = [prep.readouts.index(n) for n in pxy]
    return {**_robot_on_image(option, xy, prep), "half": half, "cells": cells,
            "pos_mean": prep.norm.y_mean[pos], "pos_std": prep.norm.y_std[pos],
            "col": prep.readouts.index(readout), "pos": pos}


def _robot_on_image(option: str, names: list[str], prep: Prepared) -> dict:
    """The ``GroundToImage`` settings of the robot position ``names`` (two
    proprio observations) that ``option`` names."""
    unknown = [n for n in names if n not in prep.observations]
    if unknown:
        raise DataError(f"{option}: {unknown} are not proprio observations (they are {prep.observations})")
    cols = [prep.observations.index(n) for n in names]
    return {"view": _view(option, prep), "columns": cols,
            "mean": prep.norm.obs_mean[cols], "std": prep.norm.obs_std[cols]}


def _view(option: str, prep: Prepared) -> tuple:
    """The camera's ground rectangle ``(center, half_extents)`` of the data set."""
    view = (prep.ds.meta.get("image") or {}).get("view")
    if not view:
        raise DataError(f"{prep.ds.path}: {option.split()[0]} needs the camera's view in meta.json (`image.view`), "
                        f"which data sets collected before it was recorded lack; collect the data again")
    return (tuple(view["center"]), tuple(view["half_extents"]))


def _field(spec: str, prep: Prepared, seen: list[str]) -> dict:
    """The ``GroundField`` settings of ``--field READOUT:X,Y:STEP``, with the
    readout's column ``col`` and the ``source`` of the position: ``"proprio"``
    (X, Y are proprio observations) or ``"seen"`` (they are --seen readouts)."""
    parts = spec.split(":")
    names = [n.strip() for n in parts[1].split(",")] if len(parts) > 1 else []
    option = f"--field {spec!r}"
    try:
        readout, step = parts[0].strip(), float(parts[2])
        if len(parts) != 3 or len(names) != 2:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"{option}: expected READOUT:X,Y:STEP, e.g. keepout.clearance:pusher.x,pusher.y:0.05") \
            from None
    if readout not in prep.readouts:
        raise DataError(f"{option}: {readout!r} is not among the model's readouts (they are {prep.readouts})")
    if readout in seen:
        raise DataError(f"{option}: {readout!r} is also a --seen readout; name it once")
    if not (math.isfinite(step) and step > 0):
        raise DataError(f"{option}: STEP must be positive metres")
    if all(n in seen for n in names):
        cols = [prep.readouts.index(n) for n in names]
        at = {"view": _view(option, prep), "columns": [seen.index(n) for n in names],
              "mean": prep.norm.y_mean[cols], "std": prep.norm.y_std[cols]}
        source = "seen"
    elif any(n in seen for n in names):
        raise DataError(f"{option}: X and Y are both proprio observations or both --seen readouts, got {names}")
    else:
        at, source = _robot_on_image(option, names, prep), "proprio"
    return {**at, "step": step, "col": prep.readouts.index(readout), "source": source}


def _describe(cfg: TrainConfig, prep: Prepared, built: Built, say) -> None:
    """Says what is trained on what."""
    ds, tr, va, k = prep.ds, prep.train, prep.val, prep.horizon
    say(f"data {cfg.data}: scene {ds.meta.get('scene')}, {len(ds)} transitions in {len(set(ds.episode.tolist()))} episodes; "
        f"train {tr.num_transitions} ({tr.num_episodes} episodes, {prep.train_windows[0].size} windows of {k}), "
        f"held out {va.num_transitions} ({va.num_episodes} episodes)"
        + (f"; {prep.excluded} transitions that broke a guardrail left out" if prep.excluded else ""))
    if prep.image_shape is not None:
        say(f"encoder input: {'×'.join(map(str, prep.image_shape))} image + {prep.observations or 'no observations'}")
    say(f"model: O={tr.obs.shape[1]} A={tr.actions.shape[1]} D={cfg.latent_dim} P={len(prep.columns)}, "
        f"{built.n_params} parameters; {cfg.epochs} epochs of {built.steps_per_epoch} batches of {cfg.batch_size}")


def _evaluate(cfg: TrainConfig, prep: Prepared, built: Built) -> dict:
    """Held-out figures: the loss terms on held-out windows and the open-loop
    readout errors over the training horizon."""
    model = built.model
    model.eval()
    errs, lat = _rollout_errors(model, prep.val, prep.norm, prep.horizon)
    s = _summary(errs, prep.norm.y_std, prep.varying, prep.readouts)
    n_windows = cfg.max_val_windows if prep.image_shape is None else min(cfg.max_val_windows, MAX_IMAGE_VAL_WINDOWS)
    terms = _window_loss(model, prep.val_windows, prep.val_tensors, built.weights, n_windows)
    model.train()
    return {"val": terms, "latent_mse_h1": lat, "readout_rmse": s["rmse"], "readout_nrmse": s["nrmse"]}


def _epoch(cfg: TrainConfig, prep: Prepared, built: Built) -> dict:
    """One pass over the training windows in a random order; returns the mean
    of each loss term."""
    import torch

    from .model import jepa_loss

    model, tr_win, k = built.model, prep.train_windows, prep.horizon
    ar = np.arange(k + 1)
    obs_t, act_t, y_t, _ = prep.train_tensors
    model.train()
    perm = prep.rng.permutation(tr_win[0].size)
    sums = {"pred": 0.0, "probe": 0.0, "var": 0.0, "cov": 0.0, "seen": 0.0, "total": 0.0}
    for b in range(built.steps_per_epoch):
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        si, ai = tr_win[0][idx], tr_win[1][idx]
        loss, terms = jepa_loss(model, obs_t[si[:, None] + ar], act_t[ai[:, None] + ar[:-1]],
                                y_t[si[:, None] + ar], built.weights)
        built.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(built.params, cfg.grad_clip)
        built.opt.step()
        built.sched.step()
        model.update_target(cfg.ema)
        for key in sums:
            sums[key] += terms[key]
    return {key: v / built.steps_per_epoch for key, v in sums.items()}


def _train_epochs(cfg: TrainConfig, prep: Prepared, built: Built, say, history: list, *, first: int, count: int,
                  frozen: bool) -> None:
    """``count`` training epochs, numbered from ``first`` in ``history``
    (``frozen``: of the frozen phase), each followed by the held-out
    figures; a loss that is no longer finite stops training."""
    k = prep.horizon
    phase = "frozen" if frozen else "epoch"
    for i in range(count):
        epoch = first + i
        t0 = time.perf_counter()
        train_terms = _epoch(cfg, prep, built)
        if not math.isfinite(train_terms["total"]):
            # Caught here, not as "ONNX differs from PyTorch by nan" after export.
            raise TrainingError(
                f"training diverged in {'frozen ' if frozen else ''}epoch {epoch}: the loss became "
                f"{train_terms['total']} (learning rate {cfg.lr}; try a lower one, or more data)")
        ev = _evaluate(cfg, prep, built)
        history.append({"epoch": epoch, **({"frozen": True} if frozen else {}), "train": train_terms, **ev,
                        "seconds": time.perf_counter() - t0})
        say(f"{phase} {i + 1:3d}/{count}  train pred {train_terms['pred']:.4f} probe {train_terms['probe']:.4f} "
            f"var {train_terms['var']:.4f} cov {train_terms['cov']:.4f}"
            + (f" seen {train_terms['seen']:.4f}" if "seen" in built.weights else "")
            + f" | held-out pred {ev['val']['pred']:.4f} "
            f"probe {ev['val']['probe']:.4f} readout nRMSE h1 {ev['readout_nrmse'][0]:.4f} "
            f"h{k} {ev['readout_nrmse'][-1]:.4f}  ({time.perf_counter() - t0:.1f} s)")


def _fit(cfg: TrainConfig, prep: Prepared, built: Built, say) -> Fitted:
    """Trains for ``cfg.epochs``, then refits the readout probes; the model is
    left in evaluation mode."""
    k = prep.horizon
    initial = _evaluate(cfg, prep, built)
    say(f"untrained: held-out readout nRMSE h1 {initial['readout_nrmse'][0]:.4f}, h{k} {initial['readout_nrmse'][-1]:.4f}")
    history = []
    t_train = time.perf_counter()
    map_history = _fit_map(cfg, prep, built, say)
    _train_epochs(cfg, prep, built, say, history, first=1, count=cfg.epochs, frozen=False)
    if cfg.freeze and prep.image_shape is not None:
        prep, built = _freeze(cfg, prep, built, say)
        k = prep.horizon
        _train_epochs(cfg, prep, built, say, history, first=cfg.epochs + 1, count=cfg.frozen_epochs, frozen=True)
    probe_history = (fit_probes(built.model, prep.train_windows, prep.train_tensors, cfg, prep.rng, say)
                     if cfg.probe_epochs > 0 else [])
    if probe_history:
        ev = _evaluate(cfg, prep, built)
        say(f"after the probe fit: held-out probe {ev['val']['probe']:.4f} readout nRMSE h1 "
            f"{ev['readout_nrmse'][0]:.4f} h{k} {ev['readout_nrmse'][-1]:.4f}")
    training_time = time.perf_counter() - t_train
    built.model.eval()
    return Fitted(initial=initial, history=history, probe_history=probe_history, training_time=training_time,
                  map_history=map_history)


def _fit_map(cfg: TrainConfig, prep: Prepared, built: Built, say) -> list[dict]:
    """With ``--map`` and ``--map-epochs``: the map head fitted on its own
    and frozen (``mapfit.fit_ground_map``); its per-epoch held-out errors."""
    if not (cfg.ground_map and cfg.map_epochs > 0):
        return []
    from .mapfit import fit_ground_map

    spec = _ground_map(cfg.ground_map, prep)
    col = spec["col"]
    train_eps, val_eps = split_episodes(prep.ds.episode, cfg.val_fraction, prep.seed)
    return fit_ground_map(
        built.model, prep.ds, train_eps, val_eps, pos_cols=[prep.columns[p] for p in spec["pos"]],
        col=prep.columns[col], mean=float(prep.norm.y_mean[col]), std=float(prep.norm.y_std[col]),
        hi=(cfg.saturate or {}).get(prep.readouts[col]), epochs=cfg.map_epochs, lr=cfg.lr, seed=prep.seed,
        say=say)


def _freeze(cfg: TrainConfig, prep: Prepared, built: Built, say) -> tuple[Prepared, Built]:
    """Freezes the image encoder's convolutions (online and target alike),
    replaces every image of the training and held-out windows by its pooled
    features, computed once, and sets up the frozen phase: windows of
    ``frozen_horizon`` steps, a fresh optimiser and cosine schedule over the
    parameters that still train."""
    import dataclasses

    import torch

    model = built.model
    enc = model.encoder
    # A field read at the seen head's estimates was cached with them: the
    # head freezes too.
    parts = ("conv", "local", "fields", "ground_map") + (("seen",) if "seen" in enc.field_sources else ())
    for name in parts:
        module, target = getattr(enc, name), getattr(model.target_encoder, name)
        if module is None:
            continue
        target.load_state_dict(module.state_dict())
        for q in list(module.parameters()) + list(target.parameters()):
            q.requires_grad_(False)
    t0 = time.perf_counter()
    model.eval()
    feats = []
    with torch.no_grad():
        for rows in (prep.train_tensors[0], prep.val_tensors[0]):
            n = len(rows)
            feats.append(torch.cat([enc.pooled(rows[np.arange(b, min(b + 512, n))]) for b in range(0, n, 512)]))
    model.train()
    k = cfg.frozen_horizon
    tr_win, va_win = _windows(prep.train, prep.val, k, prep.seed, "--frozen-horizon")
    prep = dataclasses.replace(prep, horizon=k, train_windows=tr_win, val_windows=va_win,
                               train_tensors=(feats[0], *prep.train_tensors[1:3], k),
                               val_tensors=(feats[1], *prep.val_tensors[1:3], k))
    params = [q for n, q in model.named_parameters() if not n.startswith("target_encoder.") and q.requires_grad]
    opt, sched, steps = _optimiser(cfg, params, tr_win[0].size, cfg.frozen_epochs)
    built = dataclasses.replace(built, params=params, opt=opt, sched=sched, steps_per_epoch=steps)
    say(f"froze the convolutions: pooled features of {len(feats[0]) + len(feats[1])} images in "
        f"{time.perf_counter() - t0:.1f} s; {cfg.frozen_epochs} epochs of {steps} windows of {k} follow")
    return prep, built


def _quantile_margins(errs, q: float) -> np.ndarray:
    """``[H, P]``: the ``q`` quantile of the errors at each step, as a running
    maximum over the horizon."""
    per_step = np.stack([np.quantile(e, q, axis=0, method="higher") for e in errs])  # [H, P]
    return np.maximum.accumulate(per_step, axis=0)


def _margins(cfg: TrainConfig, prep: Prepared, model, say) -> Margins:
    """Model-error margins: open-loop rollouts up to quantile_horizon steps."""
    chosen = prep.readouts
    errs, latent_mse = _rollout_errors(model, prep.val, prep.norm, cfg.quantile_horizon)
    counts = [e.shape[0] for e in errs]
    h_max = sum(1 for c in counts if c >= cfg.min_quantile_samples)
    if h_max == 0:
        raise DataError(f"fewer than {cfg.min_quantile_samples} held-out start states; collect more episodes")
    errs = errs[:h_max]
    margins = _quantile_margins(errs, cfg.quantile)
    # Other confidence levels on the same held-out rollouts, for `python -m telic.train.margins`.
    by_quantile = {str(q): {n: [float(x) for x in m[:, i]] for i, n in enumerate(chosen)}
                   for q in sorted({0.9, 0.95, 0.99, cfg.quantile}) for m in [_quantile_margins(errs, q)]}
    summary = _summary(errs, prep.norm.y_std, prep.varying, chosen)
    if h_max < cfg.quantile_horizon:
        say(f"readout error quantiles cover {h_max} steps (held-out episodes are short)")
    return Margins(h_max=h_max, counts=counts, latent_mse=latent_mse, margins=margins,
                   by_quantile=by_quantile, summary=summary)


def _export_and_check(cfg: TrainConfig, prep: Prepared, model, say) -> dict:
    """Exports the graphs and checks them against PyTorch on held-out rows
    (failing above ``cfg.onnx_tolerance``); writes ``reference.json``.
    Returns the largest differences."""
    va, norm = prep.val, prep.norm
    os.makedirs(cfg.out, exist_ok=True)
    stale = os.path.join(cfg.out, MANIFEST_FILE)
    if os.path.exists(stale):
        os.remove(stale)  # a failed export must not leave a loadable bundle behind
    export_graphs(model, cfg.out, prep.train.obs.shape[1], prep.train.actions.shape[1], model.latent_dim,
                  prep.image_shape)
    check_rows = va.windows(1)
    take = np.random.default_rng(prep.seed + 2).permutation(check_rows[0].size)[:2048 if va.images is None else 256]
    rows = encoder_rows(va, norm)[check_rows[0][take]]
    diffs = onnx_vs_torch(model, cfg.out, rows.numpy(), va.actions[check_rows[1][take]], prep.image_shape)
    say(f"ONNX vs PyTorch max |diff|: encode {diffs[ENCODE_FILE]:.2e}, predict {diffs[PREDICT_FILE]:.2e}, "
        f"readout {diffs[READOUT_FILE]:.2e}")
    if not diffs["max"] <= cfg.onnx_tolerance:
        raise BundleError(
            f"exported graphs differ from PyTorch by {diffs['max']:.3e} > {cfg.onnx_tolerance:.1e}; "
            f"no manifest written in {cfg.out}"
        )
    # A few rows with images: each is C·H·W numbers.
    ref = take[:32 if va.images is None else 4]
    image_len = 0 if prep.image_shape is None else int(np.prod(prep.image_shape))
    write_reference(model, cfg.out, raw_rows(va, check_rows[0][ref]), va.actions[check_rows[1][ref]], norm, image_len)
    return diffs


def _errors(prep: Prepared, fitted: Fitted, margins: Margins, diffs: dict) -> dict:
    """The manifest's named errors (``provenance.validation.errors``), the
    finite ones."""
    k, h_max, summary = prep.horizon, margins.h_max, margins.summary
    h_marks = sorted({1, min(k, h_max), min(10, h_max), h_max})
    errors = {"latent_mse_h1": margins.latent_mse}
    for h in h_marks:
        for n in prep.readouts:  # each readout in its own unit
            errors[f"readout_rmse_h{h}:{n}"] = summary["rmse"][n][h - 1]
        errors[f"readout_nrmse_h{h}"] = summary["nrmse"][h - 1]  # mean of RMSE / σ over readouts, unitless
    errors["untrained_readout_nrmse_h1"] = fitted.initial["readout_nrmse"][0]
    for file in (ENCODE_FILE, PREDICT_FILE, READOUT_FILE):
        errors[f"onnx_{file.split('.')[0]}_max_abs_diff"] = diffs[file]
    return {key: float(v) for key, v in errors.items() if math.isfinite(v)}


def _training_table(cfg: TrainConfig, prep: Prepared, built: Built, fitted: Fitted) -> dict:
    """``provenance.training``: how the model was trained, on what."""
    import torch

    ds, meta, va = prep.ds, prep.ds.meta, prep.val
    probe_history = fitted.probe_history
    final = fitted.history[-1]["train"] if fitted.history else {}
    encoder = ("CNN encoder over the camera image (strided convolutions pooled to each channel's maximum, "
               "mean and spatial soft-argmax keypoint"
               + (f"; over the crop around the robot, {cfg.ego}" if cfg.ego else "")
               + (f"; a supervised head estimating {', '.join(cfg.seen)} from them" if cfg.seen else "")
               + "".join(f"; a supervised map of {f.split(':')[0]} over the ground, read around "
                         f"{f.split(':')[1]} ({f})" for f in cfg.field_specs())
               + ") plus an MLP encoder over the "
               + ("proprio observations" if prep.observations else "(no) observations")
               + (" and those estimates" if cfg.seen or cfg.ground_field else "")
               if prep.image_shape is not None else "MLP encoder")
    return {
        "method": f"JEPA: {encoder}, residual action-conditioned MLP predictor trained on multi-step "
                  "latent prediction against an EMA target encoder, VICReg variance and covariance "
                  "regulariser, readout probes trained jointly on encoded and predicted latents, "
                  "then refit on the frozen encoder and predictor",
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "horizon": prep.horizon, "latent_dim": cfg.latent_dim,
        "hidden": cfg.hidden, "layers": cfg.layers, "readout_hidden": cfg.readout_hidden,
        "readout_layers": cfg.readout_layers, "activation": "silu",
        "optimiser": {"name": "adamw", "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                      "schedule": "cosine", "grad_clip": cfg.grad_clip},
        "ema": cfg.ema, "regulariser": "vicreg", "periodic_observations": built.periodic,
        "frame_features": list(cfg.frames or []), "bilinear_action_features": cfg.bilinear,
        **({"seen_readouts": list(cfg.seen)} if cfg.seen else {}),
        **({"saturated_readouts": dict(cfg.saturate)} if cfg.saturate else {}),
        **({"ego_crop": cfg.ego} if cfg.ego else {}),
        **({"ground_fields": cfg.field_specs()} if cfg.ground_field else {}),
        **({"ground_map": cfg.ground_map} if cfg.ground_map else {}),
        **({"frozen_convolutions": {"after_epochs": cfg.epochs, "epochs": cfg.frozen_epochs,
                                    "horizon": cfg.frozen_horizon}} if cfg.freeze else {}),
        "probe_fit": {"epochs": cfg.probe_epochs, "batch_size": cfg.probe_batch_size, "lr": cfg.probe_lr,
                      **({"final_mse": probe_history[-1]["mse"]} if probe_history else {})},
        "loss_weights": built.weights,
        "final_train_loss": {key: float(v) for key, v in final.items()},
        "parameters": built.n_params, "train_windows": int(prep.train_windows[0].size),
        "safe_only": bool(cfg.safe_only), "excluded_transitions": prep.excluded,
        "validation_episodes": va.num_episodes, "validation_transitions": va.num_transitions,
        "val_fraction": cfg.val_fraction, "data_seed": int(meta.get("seed", 0)),
        "data_transitions": len(ds), "data_episodes": len(set(ds.episode.tolist())),
        **({"data_sources": [f"{s['path']}: seed {s['seed']}, {s['transitions']} transitions, "
                             f"{s['episodes']} episodes" for s in meta["sources"]]}
           if meta.get("sources") else {}),
        "collect_policy": {key: v for key, v in (meta.get("policy") or {}).items() if v is not None},
        "margins_method": f"quantile {cfg.quantile} per step over held-out starts, running maximum over the horizon",
        "threads": cfg.threads, "torch_version": torch.__version__, "onnx_opset": 17,
        "training_time_s": round(fitted.training_time, 3),
        **cfg.extra,
    }


def _manifest(cfg: TrainConfig, prep: Prepared, built: Built, outcome: Outcome) -> dict:
    """The bundle's manifest (docs/bundle.md)."""
    ds, meta, tr, chosen = prep.ds, prep.ds.meta, prep.train, prep.readouts
    margins = outcome.margins.margins
    image = None
    if prep.image_shape is not None:
        c, h, w = prep.image_shape
        image = {"channels": c, "height": h, "width": w, "dtype": "uint8", "channel_order": "rgb", "layout": "chw"}
    return {
        "format_version": 1 if image is None else 2,
        "name": cfg.name or f"{meta.get('scene', 'model')}_{'pixels' if image else 'jepa'}",
        "dt": prep.dt,
        "latent_dim": built.model.latent_dim,
        "observations": prep.observations,
        "readouts": chosen,
        "actions": [{"name": n, "lower": float(lo), "upper": float(hi)}
                    for n, lo, hi in zip(ds.actions, meta["action_lower"], meta["action_upper"])],
        **({"image": image} if image else {}),
        **({"normalisation": {"mean": [float(x) for x in prep.norm.obs_mean],
                              "std": [float(x) for x in prep.norm.obs_std]}} if prep.observations else {}),
        "provenance": {
            "scene": str(meta.get("scene", "unknown")),
            "samples": tr.num_transitions,
            "episodes": tr.num_episodes,
            "seed": prep.seed,
            "producer": PRODUCER,
            "training": _training_table(cfg, prep, built, outcome.fitted),
            "validation": {"onnx_vs_torch_max_abs_diff": outcome.diffs["max"], "errors": outcome.errors},
        },
        "readout_error_quantiles": {
            "quantile": cfg.quantile,
            "margins": {n: [float(x) for x in margins[:, i]] for i, n in enumerate(chosen)},
        },
    }


def _report(cfg: TrainConfig, prep: Prepared, built: Built, outcome: Outcome, t_start: float) -> dict:
    """The training report (``training_report.json``): settings, metrics,
    histories, margins at every measured level, sizes and times."""
    fitted, m = outcome.fitted, outcome.margins
    bundle_bytes = sum(os.path.getsize(os.path.join(cfg.out, f)) for f in (ENCODE_FILE, PREDICT_FILE, READOUT_FILE))
    return {
        "bundle": os.path.abspath(cfg.out),
        "config": {key: v for key, v in asdict(cfg).items()},
        "seed": prep.seed,
        "parameters": built.n_params,
        "onnx_bytes": bundle_bytes,
        "training_time_s": fitted.training_time,
        "total_time_s": time.perf_counter() - t_start,
        "onnx_vs_torch": outcome.diffs,
        "initial": fitted.initial,
        "history": fitted.history,
        "probe_history": fitted.probe_history,
        **({"map_history": fitted.map_history} if fitted.map_history else {}),
        "quantile_horizon": m.h_max,
        "quantile_samples": m.counts[:m.h_max],
        "readout_rmse": m.summary["rmse"],  # per readout name, per step, in the readout's unit
        "readout_nrmse": m.summary["nrmse"],  # per step, mean of RMSE / σ over readouts (unitless)
        "margins": {n: [float(x) for x in m.margins[:, i]] for i, n in enumerate(prep.readouts)},
        "margins_by_quantile": m.by_quantile,
        "errors": outcome.errors,
    }


def train(cfg: TrainConfig, log=print) -> dict:
    """Trains, exports and checks a bundle; returns a report (metrics, paths, sizes).

    The stages run in this order, each drawing from the same seeded
    generators, so a seed gives the same bundle byte for byte."""
    cfg.validate()
    say = (lambda *a, **k: None) if cfg.quiet else log
    t_start = time.perf_counter()
    prep = _prepare(cfg)
    built = _build(cfg, prep)
    _describe(cfg, prep, built, say)
    fitted = _fit(cfg, prep, built, say)
    margins = _margins(cfg, prep, built.model, say)
    diffs = _export_and_check(cfg, prep, built.model, say)
    outcome = Outcome(fitted=fitted, margins=margins, diffs=diffs, errors=_errors(prep, fitted, margins, diffs))
    write_manifest(os.path.join(cfg.out, MANIFEST_FILE), _manifest(cfg, prep, built, outcome))
    check_bundle(cfg.out)
    report = _report(cfg, prep, built, outcome, t_start)
    with open(os.path.join(cfg.out, "training_report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    h_max, n_bytes = margins.h_max, report["onnx_bytes"]
    say(f"bundle written to {cfg.out}: {built.n_params} parameters, {n_bytes / 1024:.0f} KiB of ONNX; "
        f"training {fitted.training_time:.1f} s")
    say(f"held-out open-loop readout RMSE, each in its own unit, after 1 / {min(10, h_max)} / {h_max} steps: "
        + ", ".join(f"{n} {r[0]:.3g} / {r[min(10, h_max) - 1]:.3g} / {r[h_max - 1]:.3g}"
                    for n, r in margins.summary["rmse"].items()))
    return report
