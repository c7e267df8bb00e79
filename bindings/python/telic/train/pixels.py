"""What the encoder of a model with an image reads, and how it is laid out.

The flat observation of docs/bundle.md: the image's C·H·W values (0..255, C×H×W
order), then the vector observations, here the robot's own state (meta.json
``proprio``) and nothing else of the data set's state columns.
"""

from __future__ import annotations

import numpy as np

from .data import DataError, Dataset, Trajectories

#: Held-out windows the loss is measured on per evaluation with images (each
#: window is K + 1 images; ``max_val_windows`` of them would not fit in memory).
MAX_IMAGE_VAL_WINDOWS = 512
#: Smallest image side the encoder's four stride-2 convolutions take.
MIN_IMAGE_SIDE = 16


def encoder_rows(traj: Trajectories, norm):
    """What the encoder reads for the states of ``traj`` (``norm`` has
    ``obs(x)``, the observation normalisation): the normalised observations
    as a tensor, or with images a ``PixelRows`` (image + the
    normalised proprio entries, built per index)."""
    import torch

    if traj.images is None:
        return torch.from_numpy(norm.obs(traj.obs))
    from .model import PixelRows

    return PixelRows(traj.images, norm.obs(traj.obs))


def raw_rows(traj: Trajectories, idx) -> np.ndarray:
    """Raw observations of the states ``idx`` as the engine takes them
    (docs/bundle.md): with images, the flat image bytes as numbers followed by
    the proprio entries."""
    if traj.images is None:
        return traj.obs[idx]
    pixels = traj.images[idx].reshape(len(idx), -1).astype(np.float32)
    return np.concatenate([pixels, traj.obs[idx]], axis=1)


def encoder_inputs(ds: Dataset, image: bool, proprio: bool):
    """What the encoder reads: ``(observation names, their columns or None
    for all, image (C, H, W) or None)``. With ``image`` only the proprio
    columns (with ``proprio``) or none go beside the image."""
    if not image:
        return ds.observations, None, None
    if ds.image is None:
        raise DataError(f"{ds.path}: --image, but the data set has no camera images; collect it in a pixel "
                        f"observation mode (`telic collect SCENE --obs pixels+proprio ...`)")
    c, h, w = (int(x) for x in ds.image.shape[1:])
    if min(h, w) < MIN_IMAGE_SIDE:
        raise DataError(f"{ds.path}: images of {h}×{w} pixels; the encoder needs at least "
                        f"{MIN_IMAGE_SIDE} per side")
    names = ds.proprio_names if proprio else []
    if proprio and not names:
        raise DataError(f"{ds.path}: --proprio, but meta.json names no proprio observations")
    return names, [ds.observations.index(n) for n in names], (c, h, w)
