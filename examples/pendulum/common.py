"""What the Pendulum-v1 scripts share: names, the objective, exploration noise,
the true dynamics for pytorch_mppi, and a learned bundle run by PyTorch.

Pendulum-v1 (gymnasium): observation ``(cos θ, sin θ, θ̇)``, one torque in
``[−2, 2]``, ``dt = 0.05`` s, 200 steps per episode, reward
``−(θ² + 0.1·θ̇² + 0.001·u²)`` with ``θ`` wrapped to ``[−π, π)`` (0 upright).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "models", "pendulum")
DATA = os.path.join(ROOT, "data", "pendulum")

try:  # the installed package (with the compiled telic._native) wins; else this checkout's
    import telic  # noqa: F401
except ModuleNotFoundError:
    sys.path.append(os.path.join(ROOT, "bindings", "python"))

ENV_ID = "Pendulum-v1"
OBSERVATIONS = ["cos", "sin", "thetadot"]
ACTIONS = ["torque"]
#: The observations plus ``angle`` = |θ| (wrapped), so that the objective can
#: be the environment's own cost: ``angle² + 0.1·thetadot² + 0.001·torque²``.
READOUTS = ["cos", "sin", "thetadot", "angle"]
ACTION_LOWER, ACTION_UPPER = [-2.0], [2.0]
DT = 0.05

#: Telic's objective: the negated Pendulum-v1 reward, on the learned readouts.
OBJECTIVE = {
    "terms": [
        {"name": "angle", "residual": {"kind": "readout", "readouts": ["angle"], "target": [0.0]}, "weight": 1.0},
        {"name": "spin", "residual": {"kind": "readout", "readouts": ["thetadot"], "target": [0.0]}, "weight": 0.1},
        {"name": "effort", "residual": {"kind": "action"}, "weight": 0.001},
    ],
    "guardrails": [],
}


def keep_freed_memory() -> bool:
    """Asks glibc to keep freed memory for reuse instead of returning large
    blocks to the system (``mallopt`` of the mmap and trim thresholds).

    PyTorch allocates its intermediate tensors afresh at every operator;
    with glibc's defaults, some processes hand the memory of the 0.5 MB
    activations of a 1000-sample batch back to the system and fault it in
    again (about 20 000 page faults per plan): consecutive runs of the same
    script took 50 ms or 100–120 ms per pytorch_mppi plan. Fixed thresholds
    remove the page faults and give pytorch_mppi its best time; Telic
    allocates its buffers once and is unaffected. Returns whether it applied
    (glibc only)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 256 << 20)) and bool(libc.mallopt(m_trim_threshold, 512 << 20))
    except (OSError, AttributeError):
        return False


def readouts_of(obs) -> np.ndarray:
    """Readouts of an observation ``(cos, sin, thetadot)``."""
    c, s, w = (float(x) for x in np.asarray(obs, np.float64).reshape(-1))
    return np.array([c, s, w, abs(math.atan2(s, c))])


def colored_noise(rng: np.random.Generator, beta: float, steps: int) -> np.ndarray:
    """Unit-variance noise with power spectrum ∝ 1/f^β along ``steps``
    (β = 0 white, β = 2 smooth), generated in the frequency domain."""
    f = np.fft.rfftfreq(steps)
    f[0] = f[1] if steps > 1 else 1.0
    spectrum = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * f ** (-beta / 2)
    x = np.fft.irfft(spectrum, n=steps)
    return (x - x.mean()) / (x.std() + 1e-12)


def angle_normalize(x):
    return ((x + math.pi) % (2 * math.pi)) - math.pi


def true_dynamics(state, action):
    """Pendulum-v1's own step on batched ``(θ, θ̇)`` torch tensors (as in
    pytorch_mppi's pendulum example, with gymnasium's sign convention)."""
    import torch

    th, thdot = state[:, 0:1], state[:, 1:2]
    u = torch.clamp(action, -2.0, 2.0)
    newthdot = torch.clamp(thdot + (3 * 10.0 / 2 * torch.sin(th) + 3.0 * u) * DT, -8.0, 8.0)
    return torch.cat((th + newthdot * DT, newthdot), dim=1)


def true_running_cost(state, action):
    return angle_normalize(state[:, 0]) ** 2 + 0.1 * state[:, 1] ** 2 + 0.001 * action[:, 0] ** 2


def state_of(env) -> np.ndarray:
    """The true ``(θ, θ̇)`` of a gymnasium Pendulum."""
    return np.asarray(env.unwrapped.state, np.float64)


class TorchBundle:
    """A Telic bundle's three ONNX graphs run as PyTorch code.

    The graphs are interpreted node by node with torch operations on the
    bundle's own weights (``onnx.numpy_helper``), so pytorch_mppi plans with
    exactly the network Telic plans with; ``check`` compares it with ONNX
    Runtime. Covers the operators ``telic.train`` exports.
    """

    def __init__(self, path: str, dtype=None):
        import onnx
        import torch

        from telic.train.manifest import read_manifest

        self.path = path
        self.manifest = read_manifest(os.path.join(path, "manifest.toml"))
        self.dtype = dtype or torch.float32
        norm = self.manifest["normalisation"]
        self.obs_mean = torch.tensor(norm["mean"], dtype=self.dtype)
        self.obs_std = torch.tensor(norm["std"], dtype=self.dtype)
        self.graphs = {}
        for name in ("encode", "predict", "readout"):
            g = onnx.load(os.path.join(path, f"{name}.onnx")).graph
            consts = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()).to(self.dtype)
                      for t in g.initializer}
            nodes = [(n.op_type, list(n.input), list(n.output), {a.name: onnx.helper.get_attribute_value(a)
                                                                  for a in n.attribute}) for n in g.node]
            self.graphs[name] = (consts, nodes, [i.name for i in g.input], [o.name for o in g.output])

    def _run(self, name: str, *inputs):
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
            elif op == "Constant":
                y = consts.get(out)
                if y is None:
                    import onnx

                    y = torch.from_numpy(onnx.numpy_helper.to_array(attrs["value"]).copy()).to(self.dtype)
            else:
                raise NotImplementedError(f"{self.path}/{name}.onnx: operator {op} is not interpreted")
            env[out] = y
        return env[out_name]

    def encode(self, obs):
        """Raw observations ``[B, O]`` → latents (normalised as the manifest says)."""
        return self._run("encode", (obs.to(self.dtype) - self.obs_mean) / self.obs_std)

    def predict(self, z, u):
        return self._run("predict", z, u.to(self.dtype))

    def readout(self, z):
        return self._run("readout", z)

    def check(self, obs: np.ndarray, u: np.ndarray) -> float:
        """Largest difference from ONNX Runtime on ``obs`` ``[B, O]`` and ``u`` ``[B, A]``."""
        import onnxruntime as ort
        import torch

        def sess(name):
            return ort.InferenceSession(os.path.join(self.path, f"{name}.onnx"), providers=["CPUExecutionProvider"])

        mean, std = self.obs_mean.numpy(), self.obs_std.numpy()
        o = ((obs - mean) / std).astype(np.float32)
        z = sess("encode").run(None, {"obs": o})[0]
        z2 = sess("predict").run(None, {"z": z, "u": u.astype(np.float32)})[0]
        y = sess("readout").run(None, {"z": z})[0]
        with torch.no_grad():
            tz = self.encode(torch.from_numpy(obs))
            tz2 = self.predict(torch.from_numpy(z), torch.from_numpy(u))
            ty = self.readout(torch.from_numpy(z))
        return max(float(np.abs(a - b.numpy()).max()) for a, b in ((z, tz), (z2, tz2), (y, ty)))
