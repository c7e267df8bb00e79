"""Fits a ``GroundMap`` head on its own, before the world model trains.

The mapped readout (navigate: the clearance to the nearest obstacle) is a
function of the place only, and the obstacles do not move within an
episode. So every place the robot was at during an episode, with the
readout measured there, labels the map of *every* image of that episode:
about a hundred labels per image where the world model's own loss gives a
handful (the places of its training window). Transitions that broke a
guardrail are kept here: they are the labels at and inside the obstacles,
which the world model's windows leave out and the guardrail needs most.

After the fit the head is frozen (online and target encoder alike): the
world model's training then learns the robot's dynamics against a fixed
map instead of pulling the map toward the few places of its windows.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .data import Dataset


def _labels(ds: Dataset, episodes: list[int], pos_cols: list[int], col: int, hi: float | None):
    """Per episode of ``episodes``: ``(first row, end row, positions [n, 2],
    readout [n])``, from every transition's state before its action."""
    wanted = set(int(e) for e in episodes)
    out = []
    for ep, s, e in ds.episode_ranges():
        if ep not in wanted:
            continue
        xy = ds.readouts[s:e][:, pos_cols].astype(np.float32)
        y = ds.readouts[s:e, col].astype(np.float32)
        if hi is not None:
            y = np.minimum(y, np.float32(hi))
        out.append((s, e, xy, y))
    return out


def _sample(batch, images, eps, rng, labels_per_image: int):
    """A batch: images ``[B, C, H, W]`` (0..255 float), label positions
    ``[B, K, 2]`` and labels ``[B, K]`` drawn from each image's episode."""
    imgs, xy, y = [], [], []
    for k in batch:
        s, e, ep_xy, ep_y = eps[k[0]]
        imgs.append(images[s + k[1]])
        pick = rng.integers(0, e - s, labels_per_image)
        xy.append(ep_xy[pick])
        y.append(ep_y[pick])
    return np.stack(imgs).astype(np.float32), np.stack(xy), np.stack(y)


def _field_at(gm, image, xy):
    """The head's map of ``image`` (0..255) read at world positions ``xy``
    ``[B, K, 2]``: ``[B, K]``, standardised as the readout."""
    import torch

    field = gm.head(image * (1.0 / 255.0) - 0.86)
    at = (xy - gm.at.origin.reshape(1, 1, 2)) * gm.at.gain.reshape(1, 1, 2)
    return torch.nn.functional.grid_sample(field, at.unsqueeze(1), mode="bilinear", padding_mode="border",
                                           align_corners=False).reshape(xy.shape[0], xy.shape[1])


def fit_ground_map(model, ds: Dataset, train_eps: list[int], val_eps: list[int], *, pos_cols: list[int],
                   col: int, mean: float, std: float, hi: float | None, epochs: int, lr: float, seed: int,
                   say, batch: int = 32, labels_per_image: int = 256) -> list[dict]:
    """Fits ``model.encoder.ground_map.head`` for ``epochs`` passes over the
    training images, then freezes it and copies it to the target encoder.
    ``pos_cols``, ``col``: the data set's readout columns of the robot's
    position and of the mapped readout, which is saturated at ``hi`` and
    standardised with ``mean``, ``std``. Returns held-out errors in the
    readout's unit, untrained (epoch 0) and after each epoch: RMSE, and the
    0.99 quantile of the absolute error where the readout is below half its
    saturation (near the obstacles)."""
    import torch

    gm = model.encoder.ground_map
    rng = np.random.default_rng(seed + 7)
    tr, va = (_labels(ds, e, pos_cols, col, hi) for e in (train_eps, val_eps))
    rows = np.array([(i, r) for i, (s, e, _, _) in enumerate(tr) for r in range(e - s)], dtype=np.int64)
    val_rows = np.array([(i, r) for i, (s, e, _, _) in enumerate(va) for r in range(e - s)], dtype=np.int64)
    val_rows = val_rows[np.random.default_rng(seed + 8).permutation(len(val_rows))[:512]]
    params = list(gm.head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    steps = max(1, math.ceil(len(rows) / batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    near = (hi if hi is not None else float("inf")) / 2.0

    def held_out(epoch: int, train_mse: float | None, t0: float) -> None:
        err, truth = _held_out(gm, ds, va, val_rows, labels_per_image, mean, std, seed)
        close = np.abs(err[truth < near]) if (truth < near).any() else np.zeros(1)
        rmse, q99 = float(np.sqrt(np.mean(err ** 2))), float(np.quantile(close, 0.99))
        history.append({"epoch": epoch, "train_mse": train_mse, "held_out_rmse": rmse,
                        "held_out_q99_near": q99, "seconds": time.perf_counter() - t0})
        say(f"map {epoch:3d}/{epochs}  train mse {train_mse if train_mse is not None else float('nan'):.5f} | "
            f"held-out RMSE {rmse:.4f}, |error| q0.99 below {near:.2g}: {q99:.4f}  "
            f"({time.perf_counter() - t0:.1f} s)")

    history: list[dict] = []
    held_out(0, None, time.perf_counter())  # untrained
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        gm.train()
        perm = rows[rng.permutation(len(rows))]
        total = 0.0
        for b in range(steps):
            img, xy, y = _sample(perm[b * batch:(b + 1) * batch], ds.image, tr, rng, labels_per_image)
            pred = _field_at(gm, torch.from_numpy(img), torch.from_numpy(xy))
            loss = ((pred - torch.from_numpy((y - mean) / std)) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        held_out(epoch, total / steps, t0)
    gm.eval()
    for p in params:
        p.requires_grad_(False)
    model.target_encoder.ground_map.head.load_state_dict(gm.head.state_dict())
    return history


def _held_out(gm, ds, va, val_rows, labels_per_image, mean, std, seed):
    """Errors (readout units) and true values of the map on held-out images,
    at the same places every time it is asked."""
    import torch

    rng = np.random.default_rng(seed + 9)
    errs, truths = [], []
    gm.eval()
    with torch.no_grad():
        for b in range(0, len(val_rows), 64):
            img, xy, y = _sample(val_rows[b:b + 64], ds.image, va, rng, labels_per_image)
            pred = _field_at(gm, torch.from_numpy(img), torch.from_numpy(xy)).numpy() * std + mean
            errs.append((pred - y).ravel())
            truths.append(y.ravel())
    return np.concatenate(errs), np.concatenate(truths)
