"""A world-model bundle run as PyTorch code, to compare Telic with planners
written in PyTorch (pytorch_mppi and the like) through the *same* network.

    from telic.torch_model import TorchBundle

    net = TorchBundle("models/pendulum")            # float32; dtype=torch.float64 also works
    z = net.encode(obs)                              # [B, O] raw observations → [B, D]
    z_next = net.predict(z, u)                       # [B, D], [B, A] → [B, D]
    y = net.readout(z_next)                          # [B, D] → [B, P]
    assert net.check(obs_np, u_np) < 1e-5            # against ONNX Runtime

The three ONNX graphs of the bundle (``docs/bundle.md``) are interpreted node
by node with torch operations on the bundle's own weights, so the network is
exactly the one Telic plans with, and autograd and batching work as for any
torch code. The observation normalisation of the manifest is applied in
``encode``, as the engine applies it. The operators covered are those
``python -m telic.train`` exports (Gemm, MatMul, Add, Sub, Mul, Div, Sigmoid,
Tanh, Relu, Cos, Sin, Neg, Exp, Concat, Gather, Constant); a graph with
another operator is refused when the bundle is loaded, naming it.

Needs ``torch`` and ``onnx`` (``bindings/requirements-train.txt``), imported
when a :class:`TorchBundle` is made, never by ``import telic``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

#: Operators this interpreter runs.
OPERATORS = frozenset({"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Sigmoid", "Tanh", "Relu", "Cos", "Sin",
                       "Neg", "Exp", "Concat", "Gather", "Constant"})
GRAPHS = ("encode", "predict", "readout")


class TorchBundle:
    """A Telic bundle's three ONNX graphs run as PyTorch code.

    Parameters:
        path: the bundle folder (``manifest.toml`` and the three graphs).
        dtype: torch dtype of the computation (default ``torch.float32``, as
            the graphs; ``torch.float64`` evaluates the same weights in
            double precision).
    """

    def __init__(self, path: str | os.PathLike, dtype: Any = None):
        import onnx
        import onnx.numpy_helper
        import torch

        from telic.train.manifest import read_manifest

        self.path = os.fspath(path)
        self.manifest = read_manifest(os.path.join(self.path, "manifest.toml"))
        self.dtype = dtype or torch.float32
        norm = self.manifest.get("normalisation") or {}
        o = len(self.manifest["observations"])
        self.obs_mean = torch.tensor(norm.get("mean", [0.0] * o), dtype=self.dtype)
        self.obs_std = torch.tensor(norm.get("std", [1.0] * o), dtype=self.dtype)
        self.graphs = {}
        for name in GRAPHS:
            file = os.path.join(self.path, f"{name}.onnx")
            g = onnx.load(file).graph
            unknown = sorted({n.op_type for n in g.node} - OPERATORS)
            if unknown:
                raise NotImplementedError(f"{file}: operators {unknown} are not interpreted "
                                          f"(telic.torch_model runs {sorted(OPERATORS)})")
            consts = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()).to(self.dtype)
                      for t in g.initializer}
            nodes = [(n.op_type, list(n.input), list(n.output),
                      {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in g.node]
            self.graphs[name] = (consts, nodes, [i.name for i in g.input], [out.name for out in g.output])

    @property
    def observations(self) -> list[str]:
        return list(self.manifest["observations"])

    @property
    def actions(self) -> list[str]:
        return [a["name"] for a in self.manifest["actions"]]

    @property
    def readouts(self) -> list[str]:
        return list(self.manifest["readouts"])

    @property
    def dt(self) -> float:
        return float(self.manifest["dt"])

    def _run(self, name: str, *inputs):
        import onnx.numpy_helper
        import torch

        consts, nodes, in_names, (out_name,) = self.graphs[name]
        env = dict(consts)
        env.update(zip(in_names, inputs))
        for op, ins, (out,), attrs in nodes:
            x = [env[i] for i in ins if i]
            if op == "Gemm":
                a, b = x[0], x[1]
                if attrs.get("transA", 0):
                    a = a.T
                if attrs.get("transB", 0):
                    b = b.T
                y = attrs.get("alpha", 1.0) * (a @ b)
                if len(x) > 2:
                    y = y + attrs.get("beta", 1.0) * x[2]
            elif op == "MatMul":
                y = x[0] @ x[1]
            elif op in ("Add", "Sub", "Mul", "Div"):
                y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](x[0], x[1])
            elif op in ("Sigmoid", "Tanh", "Relu", "Cos", "Sin", "Neg", "Exp"):
                y = getattr(torch, op.lower())(x[0])
            elif op == "Concat":
                y = torch.cat(x, dim=attrs["axis"])
            elif op == "Gather":
                axis, idx = attrs.get("axis", 0), x[1].long()
                y = torch.index_select(x[0], axis, idx.reshape(-1))
                if idx.dim() == 0:
                    y = y.squeeze(axis)
            else:  # Constant (the only other operator let in by __init__)
                y = consts.get(out)
                if y is None:
                    y = torch.from_numpy(onnx.numpy_helper.to_array(attrs["value"]).copy()).to(self.dtype)
            env[out] = y
        return env[out_name]

    def encode(self, obs):
        """Raw observations ``[B, O]`` (a tensor) → latents ``[B, D]``,
        normalised as the manifest says."""
        return self._run("encode", (obs.to(self.dtype) - self.obs_mean) / self.obs_std)

    def predict(self, z, u):
        """Latents ``[B, D]`` and actions ``[B, A]`` → next latents ``[B, D]``."""
        return self._run("predict", z.to(self.dtype), u.to(self.dtype))

    def readout(self, z):
        """Latents ``[B, D]`` → readouts ``[B, P]``, in ``readouts`` order."""
        return self._run("readout", z.to(self.dtype))

    def check(self, obs: np.ndarray, u: np.ndarray) -> float:
        """Largest difference from ONNX Runtime over the three graphs, on raw
        observations ``obs`` ``[B, O]`` and actions ``u`` ``[B, A]``."""
        import onnxruntime as ort
        import torch

        def session(name):
            return ort.InferenceSession(os.path.join(self.path, f"{name}.onnx"), providers=["CPUExecutionProvider"])

        obs = np.asarray(obs, np.float64)
        u = np.asarray(u, np.float64)
        mean, std = self.obs_mean.double().numpy(), self.obs_std.double().numpy()
        z = session("encode").run(None, {"obs": ((obs - mean) / std).astype(np.float32)})[0]
        z2 = session("predict").run(None, {"z": z, "u": u.astype(np.float32)})[0]
        y = session("readout").run(None, {"z": z})[0]
        with torch.no_grad():
            tz = self.encode(torch.from_numpy(obs))
            tz2 = self.predict(torch.from_numpy(z), torch.from_numpy(u))
            ty = self.readout(torch.from_numpy(z))
        return max(float(np.abs(a - b.double().numpy()).max()) for a, b in ((z, tz), (z2, tz2), (y, ty)))
