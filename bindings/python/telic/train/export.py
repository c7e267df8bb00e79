"""ONNX export of a trained world model and the checks of a bundle.

``export_graphs`` writes ``encode.onnx``, ``predict.onnx`` and ``readout.onnx``
with the tensor names, dtypes and dynamic batch axis of docs/bundle.md (for a
model with an image, ``encode.onnx`` takes a uint8 ``image`` ``[B, C, H, W]``
and, with proprio entries, ``obs``),
using PyTorch's TorchScript-based exporter (``dynamo=False``, opset 17).
``onnx_vs_torch`` runs the graphs with ONNX Runtime and returns the largest
difference from PyTorch. ``check_bundle`` repeats the engine's load-time checks
(manifest schema, graph names, ranks, widths, dtypes, dynamic batch) in Python.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .manifest import MANIFEST_FILE, read_manifest

OPSET = 17
ENCODE_FILE, PREDICT_FILE, READOUT_FILE = "encode.onnx", "predict.onnx", "readout.onnx"


class BundleError(ValueError):
    """A bundle breaks the contract of docs/bundle.md, or its export is inexact."""


def _encode_job(model, obs_dim: int, image_shape):
    """The encoder as exported: ``(module, example inputs, input names)``."""
    import torch

    obs = torch.zeros(2, obs_dim)
    if image_shape is None:
        return model.encoder, (obs,), ["obs"]
    from .model import PixelEncodeGraph

    image = torch.zeros(2, *image_shape, dtype=torch.uint8)
    if obs_dim == 0:
        return PixelEncodeGraph(model.encoder), (image,), ["image"]
    return PixelEncodeGraph(model.encoder), (image, obs), ["image", "obs"]


def export_graphs(model, out_dir: str, obs_dim: int, action_dim: int, latent_dim: int, image_shape=None) -> None:
    """Exports the encoder, predictor and readout of ``model`` (a
    ``telic.train.model.WorldModel``) into ``out_dir``; ``image_shape``
    ``(C, H, W)`` for a model with an image (``obs_dim`` then counts the
    proprio entries)."""
    import torch

    model = model.eval()
    z = torch.zeros(2, latent_dim)
    u = torch.zeros(2, action_dim)
    encoder, enc_args, enc_inputs = _encode_job(model, obs_dim, image_shape)
    jobs = [
        (encoder, enc_args, ENCODE_FILE, enc_inputs, ["z"]),
        (model.predictor, (z, u), PREDICT_FILE, ["z", "u"], ["z_next"]),
        (model.readout, (z,), READOUT_FILE, ["z"], ["y"]),
    ]
    for module, args, file, inputs, outputs in jobs:
        path = os.path.join(out_dir, file)
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream but is the one
            # that exports these plain MLPs without extra dependencies.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                module,
                args,
                path,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes={n: {0: "batch"} for n in inputs + outputs},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        import onnx

        onnx.checker.check_model(onnx.load(path), full_check=True)


def _session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def encode_feed(obs_n: np.ndarray, image_shape=None) -> dict:
    """The inputs of ``encode.onnx`` for encoder rows ``obs_n`` (normalised
    observations; with an image, each row its pixel values first)."""
    if image_shape is None:
        return {"obs": obs_n}
    n = int(np.prod(image_shape))
    feed = {"image": np.ascontiguousarray(obs_n[:, :n].reshape(-1, *image_shape).astype(np.uint8))}
    if obs_n.shape[1] > n:
        feed["obs"] = np.ascontiguousarray(obs_n[:, n:])
    return feed


def onnx_vs_torch(model, out_dir: str, obs_n: np.ndarray, u: np.ndarray, image_shape=None) -> dict:
    """Largest absolute difference between each exported graph (run by ONNX
    Runtime) and ``model`` on the rows ``obs_n`` (normalised observations;
    with an image ``(C, H, W)``, each row starts with its pixel values) and
    ``u`` (actions); latents come from the torch encoder. Returns
    ``{graph file: max |diff|, "max": overall}``."""
    import torch

    obs_n = np.ascontiguousarray(obs_n, dtype=np.float32)
    u = np.ascontiguousarray(u, dtype=np.float32)
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(obs_n))
        z_next = model.predictor(z, torch.from_numpy(u))
        y = model.readout(z)
    z_np = z.numpy()
    encode = _session(os.path.join(out_dir, ENCODE_FILE)).run(["z"], encode_feed(obs_n, image_shape))[0]
    got = {
        ENCODE_FILE: (encode, z_np),
        PREDICT_FILE: (
            _session(os.path.join(out_dir, PREDICT_FILE)).run(["z_next"], {"z": z_np, "u": u})[0],
            z_next.numpy(),
        ),
        READOUT_FILE: (_session(os.path.join(out_dir, READOUT_FILE)).run(["y"], {"z": z_np})[0], y.numpy()),
    }
    diffs = {}
    for file, (a, b) in got.items():
        if a.shape != b.shape:
            raise BundleError(f"{file}: ONNX output shape {a.shape}, PyTorch {b.shape}")
        diffs[file] = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    diffs["max"] = max(diffs.values())
    return diffs


#: ONNX tensor types of the image dtypes a manifest may declare.
IMAGE_TYPES = {"uint8": ("tensor(uint8)", np.uint8), "float32": ("tensor(float)", np.float32)}


def _graph_specs(m: dict) -> dict:
    """Per graph file, its inputs and output as ``(name, per-row shape, ONNX
    type)``, from the manifest (docs/bundle.md)."""
    o, a, d, p = len(m["observations"]), len(m["actions"]), m["latent_dim"], len(m["readouts"])
    f = "tensor(float)"
    encode = [("obs", (o,), f)]
    image = m.get("image")
    if image is not None:
        kind = IMAGE_TYPES.get(image.get("dtype"))
        if kind is None:
            raise BundleError(f"{MANIFEST_FILE}: image dtype {image.get('dtype')!r}, expected one of {sorted(IMAGE_TYPES)}")
        encode = [("image", (image["channels"], image["height"], image["width"]), kind[0])] + (encode if o else [])
    return {
        ENCODE_FILE: (encode, ("z", (d,), f)),
        PREDICT_FILE: ([("z", (d,), f), ("u", (a,), f)], ("z_next", (d,), f)),
        READOUT_FILE: ([("z", (d,), f)], ("y", (p,), f)),
    }


def _check_tensor(file: str, t, shape: tuple, kind: str) -> None:
    """One graph input or output against its expected type and per-row shape
    (the batch axis must be dynamic)."""
    if t.type != kind:
        raise BundleError(f"{file}: `{t.name}` is {t.type}, expected {kind}")
    if len(t.shape) != 1 + len(shape):
        raise BundleError(f"{file}: `{t.name}` has rank {len(t.shape)}, expected {1 + len(shape)}")
    if isinstance(t.shape[0], int):
        raise BundleError(f"{file}: `{t.name}` has a static batch axis {t.shape[0]}; it must be dynamic")
    for got, want in zip(t.shape[1:], shape):
        if isinstance(got, int) and got != want:
            raise BundleError(f"{file}: `{t.name}` has shape {t.shape}, the manifest says [batch, "
                              f"{', '.join(map(str, shape))}]")


def check_bundle(bundle_dir: str, batch: int = 3) -> dict:
    """Checks a bundle as the engine does when it loads one: the manifest
    schema, and for each graph exactly the named inputs and output, of the
    manifest's dtypes and widths (float32 rank 2; a uint8 or float32 image
    ``[B, C, H, W]``) with a dynamic batch axis. Then runs each graph on
    ``batch`` rows and checks the output shape. Returns the manifest."""
    m = read_manifest(os.path.join(bundle_dir, MANIFEST_FILE))
    rng = np.random.default_rng(0)
    for file, (inputs, (out_name, out_shape, out_kind)) in _graph_specs(m).items():
        path = os.path.join(bundle_dir, file)
        if not os.path.exists(path):
            raise BundleError(f"{bundle_dir}: missing {file}")
        sess = _session(path)
        ins = {i.name: i for i in sess.get_inputs()}
        outs = {o.name: o for o in sess.get_outputs()}
        if set(ins) != {n for n, _, _ in inputs} or set(outs) != {out_name}:
            raise BundleError(
                f"{file}: inputs {sorted(ins)} and outputs {sorted(outs)}, expected "
                f"{sorted(n for n, _, _ in inputs)} and [{out_name!r}]"
            )
        for name, shape, kind in inputs:
            _check_tensor(file, ins[name], shape, kind)
        _check_tensor(file, outs[out_name], out_shape, out_kind)
        feed = {}
        for name, shape, kind in inputs:
            if kind == "tensor(uint8)":
                feed[name] = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
            else:
                feed[name] = rng.standard_normal((batch, *shape)).astype(np.float32)
        (out,) = sess.run([out_name], feed)
        if out.shape != (batch, *out_shape) or out.dtype != np.float32:
            raise BundleError(f"{file}: output {out.dtype} {out.shape}, expected float32 {(batch, *out_shape)}")
        if not np.all(np.isfinite(out)):
            raise BundleError(f"{file}: non-finite output on finite input")
    return m
