"""The JEPA world-model trainer: ``telic collect`` data in, a bundle out.

    telic collect reach --episodes 200 --out data/reach
    python -m telic.train --data data/reach --out models/reach_jepa

Needs the packages of ``bindings/requirements-train.txt`` (PyTorch, onnx,
onnxruntime, numpy); importing ``telic`` alone never does. The bundle follows
``docs/bundle.md`` and is loaded by the engine with ``OnnxModel::load``.

- ``telic.train.data``: reading data sets (numpy only);
- ``telic.train.model``: encoder (``PixelEncoder`` for camera images), predictor,
  readout probes and the loss;
- ``telic.train.pixels``: what the encoder of a model with an image reads;
- ``telic.train.trainer``: ``train(TrainConfig(...))``;
- ``telic.train.export``: ONNX export, parity with PyTorch, bundle checks;
- ``telic.train.manifest``: writing and checking ``manifest.toml`` (its ``SCHEMA``);
- ``telic.train.toml_writer``: the TOML writer (the standard library only reads TOML).
"""

from .data import DataError, Dataset, TrainingError, load_dataset, load_datasets
from .manifest import ManifestError, check_manifest, read_manifest


def train(cfg, log=print):
    """Trains and writes a bundle (see ``telic.train.trainer.train``)."""
    from .trainer import train as _train

    return _train(cfg, log)


def __getattr__(name):
    # TrainConfig lives with the trainer; import it lazily so that reading data
    # or checking a manifest never imports torch.
    if name == "TrainConfig":
        from .trainer import TrainConfig

        return TrainConfig
    raise AttributeError(name)


__all__ = ["DataError", "Dataset", "ManifestError", "TrainConfig", "TrainingError", "check_manifest", "load_dataset", "load_datasets",
           "read_manifest", "train"]
