"""ONNX export of a trained world model and the checks of a bundle.

``export_graphs`` writes ``encode.onnx``, ``predict.onnx`` and ``readout.onnx``
with the tensor names, float32 dtype and dynamic batch axis of docs/bundle.md,
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

# (file, inputs as (name, manifest width key), output)
GRAPHS = {
    ENCODE_FILE: ([("obs", "O")], ("z", "D")),
    PREDICT_FILE: ([("z", "D"), ("u", "A")], ("z_next", "D")),
    READOUT_FILE: ([("z", "D")], ("y", "P")),
}


class BundleError(ValueError):
    """A bundle breaks the contract of docs/bundle.md, or its export is inexact."""


def export_graphs(model, out_dir: str, obs_dim: int, action_dim: int, latent_dim: int) -> None:
    """Exports the encoder, predictor and readout of ``model`` (a
    ``telic.train.model.WorldModel``) into ``out_dir``."""
    import torch

    model = model.eval()
    obs = torch.zeros(2, obs_dim)
    z = torch.zeros(2, latent_dim)
    u = torch.zeros(2, action_dim)
    jobs = [
        (model.encoder, (obs,), ENCODE_FILE, ["obs"], ["z"]),
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


def onnx_vs_torch(model, out_dir: str, obs_n: np.ndarray, u: np.ndarray) -> dict:
    """Largest absolute difference between each exported graph (run by ONNX
    Runtime) and ``model`` on the rows ``obs_n`` (normalised observations) and
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
    got = {
        ENCODE_FILE: (_session(os.path.join(out_dir, ENCODE_FILE)).run(["z"], {"obs": obs_n})[0], z_np),
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


def check_bundle(bundle_dir: str, batch: int = 3) -> dict:
    """Checks a bundle as the engine does when it loads one: the manifest
    schema, and for each graph exactly the named float32 rank-2 inputs and
    output with a dynamic batch axis and the manifest's widths. Then runs each
    graph on ``batch`` rows and checks the output shape. Returns the manifest."""
    m = read_manifest(os.path.join(bundle_dir, MANIFEST_FILE))
    widths = {"O": len(m["observations"]), "A": len(m["actions"]), "D": m["latent_dim"], "P": len(m["readouts"])}
    rng = np.random.default_rng(0)
    for file, (inputs, (out_name, out_w)) in GRAPHS.items():
        path = os.path.join(bundle_dir, file)
        if not os.path.exists(path):
            raise BundleError(f"{bundle_dir}: missing {file}")
        sess = _session(path)
        ins = {i.name: i for i in sess.get_inputs()}
        outs = {o.name: o for o in sess.get_outputs()}
        if set(ins) != {n for n, _ in inputs} or set(outs) != {out_name}:
            raise BundleError(
                f"{file}: inputs {sorted(ins)} and outputs {sorted(outs)}, expected "
                f"{sorted(n for n, _ in inputs)} and [{out_name!r}]"
            )
        for name, w in inputs + [(out_name, out_w)]:
            t = ins.get(name) or outs[name]
            if t.type != "tensor(float)":
                raise BundleError(f"{file}: `{name}` is {t.type}, expected tensor(float)")
            if len(t.shape) != 2:
                raise BundleError(f"{file}: `{name}` has rank {len(t.shape)}, expected 2")
            if isinstance(t.shape[0], int):
                raise BundleError(f"{file}: `{name}` has a static batch axis {t.shape[0]}; it must be dynamic")
            if isinstance(t.shape[1], int) and t.shape[1] != widths[w]:
                raise BundleError(f"{file}: `{name}` has width {t.shape[1]}, the manifest says {widths[w]}")
        feed = {n: rng.standard_normal((batch, widths[w])).astype(np.float32) for n, w in inputs}
        (out,) = sess.run([out_name], feed)
        if out.shape != (batch, widths[out_w]) or out.dtype != np.float32:
            raise BundleError(f"{file}: output {out.dtype} {out.shape}, expected float32 {(batch, widths[out_w])}")
        if not np.all(np.isfinite(out)):
            raise BundleError(f"{file}: non-finite output on finite input")
    return m
