"""What the Pendulum-v1 scripts share: names, the objective, exploration noise,
the true dynamics for pytorch_mppi. A learned bundle run by PyTorch is
``telic.torch_model.TorchBundle``, shipped in the package.

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
