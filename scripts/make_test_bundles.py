#!/usr/bin/env python3
"""Builds the small world-model bundles that the engine's tests load.

Writes, under tests/fixtures/:

- point_mass_2d/   graphs that implement exactly `telic::model::PointMass::new(2, 0.1, 1.0)`:
                   encode undoes the manifest's normalisation (so that encode ∘ normalise
                   is the identity, as in the analytic model), predict is the exact
                   zero-order-hold double integrator, readout gives positions,
                   velocities and the speed |v|.
- nan_graphs/      encode, predict and readout graphs that return NaN, to swap into
                   point_mass_2d (predict fits any bundle): broken models for tests.
- tanh_mlp/        a non-square bundle (O=3, D=6, A=2, P=2) made of small tanh MLPs
                   with seeded random weights, and tanh_mlp_reference.json with inputs
                   and the outputs numpy computes for them (float32).

Only the `onnx` package (onnx.helper) and numpy are needed, no deep-learning
framework. The output is deterministic: running the script again rewrites the
same bytes. See docs/bundle.md for the contract these bundles follow.

Usage: python3 scripts/make_test_bundles.py [OUT_DIR]
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "telic_toml_writer", ROOT / "bindings" / "python" / "telic" / "train" / "toml_writer.py"
)
toml_writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toml_writer)

OPSET = 17
IR_VERSION = 8
F32 = TensorProto.FLOAT


def tensor(name, width):
    """A float32 [batch, width] graph input or output with a dynamic batch axis."""
    return helper.make_tensor_value_info(name, F32, ["batch", width])


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def save(graph, path):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="telic make_test_bundles.py",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def write_manifest(path, m):
    """Writes a manifest (format version 1) with the manifest writer of the
    Python package (telic.train.toml_writer), loaded by its path so that
    neither telic nor its dependencies need be installed."""
    header = "Telic world-model bundle manifest; the contract is docs/bundle.md."
    with open(path, "w", encoding="utf-8") as f:
        f.write(toml_writer.dumps(m, header=header))


def point_mass_2d(out):
    """Exact 2D point mass: state [p.x, p.y, v.x, v.y], action accelerations."""
    dt, n = 0.1, 2
    mean = np.array([0.5, -0.5, 0.0, 0.0])
    std = np.array([2.0, 2.0, 1.0, 1.0])
    os.makedirs(out, exist_ok=True)

    # encode: z = obs_n · diag(std) + mean, the inverse of the engine's normalisation.
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["obs", "scale"], ["scaled"]),
                helper.make_node("Add", ["scaled", "mean"], ["z"]),
            ],
            "encode",
            [tensor("obs", 4)],
            [tensor("z", 4)],
            [const("scale", np.diag(std)), const("mean", mean[None, :])],
        ),
        os.path.join(out, "encode.onnx"),
    )

    # predict: z' = z·Aᵀ + u·Bᵀ (row vectors), exact zero-order hold.
    a = np.eye(4)
    b = np.zeros((4, 2))
    for i in range(n):
        a[i, n + i] = dt
        b[i, i] = 0.5 * dt * dt
        b[n + i, i] = dt
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["z", "at"], ["zz"]),
                helper.make_node("MatMul", ["u", "bt"], ["uu"]),
                helper.make_node("Add", ["zz", "uu"], ["z_next"]),
            ],
            "predict",
            [tensor("z", 4), tensor("u", 2)],
            [tensor("z_next", 4)],
            [const("at", a.T), const("bt", b.T)],
        ),
        os.path.join(out, "predict.onnx"),
    )

    # readout: [p, v] = z·I, speed = sqrt(Σ v²).
    sel = np.zeros((4, 2))
    sel[2, 0] = sel[3, 1] = 1.0
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["z", "eye"], ["state"]),
                helper.make_node("MatMul", ["z", "sel"], ["vel"]),
                helper.make_node("Mul", ["vel", "vel"], ["vel2"]),
                helper.make_node("ReduceSum", ["vel2", "axes"], ["speed2"], keepdims=1),
                helper.make_node("Sqrt", ["speed2"], ["speed"]),
                helper.make_node("Concat", ["state", "speed"], ["y"], axis=1),
            ],
            "readout",
            [tensor("z", 4)],
            [tensor("y", 5)],
            [
                const("eye", np.eye(4)),
                const("sel", sel),
                numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            ],
        ),
        os.path.join(out, "readout.onnx"),
    )

    write_manifest(
        os.path.join(out, "manifest.toml"),
        {
            "format_version": 1,
            "name": "point_mass_2d",
            "dt": dt,
            "latent_dim": 4,
            "observations": ["pos.x", "pos.y", "vel.x", "vel.y"],
            "readouts": ["pos.x", "pos.y", "vel.x", "vel.y", "speed"],
            "actions": [
                {"name": "acc.x", "lower": -1.0, "upper": 1.0},
                {"name": "acc.y", "lower": -1.0, "upper": 1.0},
            ],
            "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
            "provenance": {
                "scene": "analytic point mass (telic::model::PointMass), no training",
                "samples": 0,
                "episodes": 0,
                "seed": 0,
                "producer": "scripts/make_test_bundles.py",
                "training": {"method": "none: weights written by hand"},
                "validation": {
                    "onnx_vs_torch_max_abs_diff": 0.0,
                    "errors": {"predict_max_abs_error": 0.0},
                },
            },
            "readout_error_quantiles": {
                "quantile": 0.95,
                # |y_onnx - y_true| is float32 rounding only.
                "margins": {"pos.x": [1e-6, 2e-6, 3e-6], "pos.y": [1e-6, 2e-6, 3e-6]},
            },
        },
    )


def tanh_mlp(out, reference):
    """Non-square bundle of tanh MLPs with seeded random weights."""
    rng = np.random.default_rng(7)
    o, d, a, p, h = 3, 6, 2, 2, 8
    w = lambda *s: rng.normal(0.0, 0.5, size=s).astype(np.float32)  # noqa: E731
    enc = (w(o, h), w(1, h), w(h, d), w(1, d))
    pre = (w(d, h), w(a, h), w(1, h), w(h, d))
    rd = (w(d, p), w(1, p))
    os.makedirs(out, exist_ok=True)

    save(
        helper.make_graph(
            [
                helper.make_node("Gemm", ["obs", "w1", "b1"], ["h1"]),
                helper.make_node("Tanh", ["h1"], ["a1"]),
                helper.make_node("Gemm", ["a1", "w2", "b2"], ["z"]),
            ],
            "encode",
            [tensor("obs", o)],
            [tensor("z", d)],
            [const("w1", enc[0]), const("b1", enc[1]), const("w2", enc[2]), const("b2", enc[3])],
        ),
        os.path.join(out, "encode.onnx"),
    )
    # Inputs declared in the order (u, z): the engine must bind by name, not position.
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["z", "wz"], ["hz"]),
                helper.make_node("MatMul", ["u", "wu"], ["hu"]),
                helper.make_node("Sum", ["hz", "hu", "bh"], ["h1"]),
                helper.make_node("Tanh", ["h1"], ["a1"]),
                helper.make_node("MatMul", ["a1", "wo"], ["dz"]),
                helper.make_node("Add", ["z", "dz"], ["z_next"]),
            ],
            "predict",
            [tensor("u", a), tensor("z", d)],
            [tensor("z_next", d)],
            [const("wz", pre[0]), const("wu", pre[1]), const("bh", pre[2]), const("wo", pre[3])],
        ),
        os.path.join(out, "predict.onnx"),
    )
    save(
        helper.make_graph(
            [
                helper.make_node("Gemm", ["z", "w", "b"], ["h"]),
                helper.make_node("Tanh", ["h"], ["y"]),
            ],
            "readout",
            [tensor("z", d)],
            [tensor("y", p)],
            [const("w", rd[0]), const("b", rd[1])],
        ),
        os.path.join(out, "readout.onnx"),
    )
    write_manifest(
        os.path.join(out, "manifest.toml"),
        {
            "format_version": 1,
            "name": "tanh_mlp",
            "dt": 0.05,
            "latent_dim": d,
            "observations": ["q", "qd", "load"],
            "readouts": ["tip.x", "tip.y"],
            "actions": [
                {"name": "torque", "lower": -2.0, "upper": 2.0},
                {"name": "grip", "lower": 0.0, "upper": 1.0},
            ],
            "provenance": {
                "scene": "none: random weights",
                "samples": 0,
                "episodes": 0,
                "seed": 7,
                "training": {"hidden": h, "activation": "tanh"},
                "validation": {"onnx_vs_torch_max_abs_diff": 0.0},
            },
        },
    )

    # Reference outputs in float32 numpy, for parity tests.
    b = 5
    obs = rng.uniform(-1.0, 1.0, size=(b, o)).astype(np.float32)
    u = rng.uniform(-1.0, 1.0, size=(b, a)).astype(np.float32)
    z = np.tanh(obs @ enc[0] + enc[1]) @ enc[2] + enc[3]
    z_next = z + np.tanh(z @ pre[0] + u @ pre[1] + pre[2]) @ pre[3]
    y = np.tanh(z @ rd[0] + rd[1])
    with open(reference, "w", encoding="utf-8") as f:
        json.dump(
            {
                key: [float(x) for x in np.asarray(v, dtype=np.float32).ravel()]
                for key, v in [("obs", obs), ("u", u), ("z", z), ("z_next", z_next), ("y", y)]
            },
            f,
            indent=1,
        )
        f.write("\n")


def nan_graphs(out):
    """Graphs that return NaN for every input, to swap into a bundle: encode and
    readout for the point_mass_2d contract (O = D = 4, P = 5), and a predict
    whose widths are symbolic, so that it fits any bundle (it multiplies the
    latent by NaN and ignores the action)."""
    os.makedirs(out, exist_ok=True)
    nan = const("nan", np.full((1, 1), np.nan))
    save(
        helper.make_graph(
            [helper.make_node("Mul", ["obs", "nan"], ["z"])],
            "encode",
            [tensor("obs", 4)],
            [tensor("z", 4)],
            [nan],
        ),
        os.path.join(out, "encode.onnx"),
    )
    save(
        helper.make_graph(
            [helper.make_node("Mul", ["z", "nan"], ["z_next"])],
            "predict",
            [tensor("z", "latent"), tensor("u", "actions")],
            [tensor("z_next", "latent")],
            [nan],
        ),
        os.path.join(out, "predict.onnx"),
    )
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["z", "ones"], ["sum"]),
                helper.make_node("Mul", ["sum", "nan"], ["y"]),
            ],
            "readout",
            [tensor("z", 4)],
            [tensor("y", 5)],
            [const("ones", np.ones((4, 5))), nan],
        ),
        os.path.join(out, "readout.onnx"),
    )


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures")
    point_mass_2d(os.path.join(out, "point_mass_2d"))
    tanh_mlp(os.path.join(out, "tanh_mlp"), os.path.join(out, "tanh_mlp_reference.json"))
    nan_graphs(os.path.join(out, "nan_graphs"))
    print(f"bundles written to {out}")


if __name__ == "__main__":
    main()
