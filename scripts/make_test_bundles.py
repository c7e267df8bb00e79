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
- pixels_v2/       a format-version-2 bundle whose encoder sees a camera image: the
                   2D point mass of point_mass_2d seen from above, uint8 RGB
                   image[B,3,16,16] of a 4 m × 4 m arena plus obs[B,2] (its velocity,
                   normalised). A 1×1 convolution makes the image gray, and the
                   position is the gray image's centroid (pixel centres in metres,
                   row 0 at the top, +y up); z = [pos, vel] as point_mass_2d, whose
                   predict and readout it shares. reference.json holds numpy's outputs
                   on its own rows (flat observations: 768 pixels, then 2 entries),
                   for tests and `telic inspect`.
- pixels_gray_f32/ version 2, a float32 gray image[B,1,8,8] and no vector input
                   (observations = []): z = the centroid, predict z' = z + dt·u.
- pixels_broken/   encode.onnx that takes obs[B,2] but no image, to swap into
                   pixels_v2 (what a version 1 exporter writes).
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


def image_tensor(elem, c, h, w):
    """The image input [batch, C, H, W] of a version 2 encoder."""
    return helper.make_tensor_value_info("image", elem, ["batch", c, h, w])


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
    """Writes a manifest (format version 1 or 2) with the manifest writer of the
    Python package (telic.train.toml_writer), loaded by its path so that
    neither telic nor its dependencies need be installed."""
    header = "Telic world-model bundle manifest; the contract is docs/bundle.md."
    with open(path, "w", encoding="utf-8") as f:
        f.write(toml_writer.dumps(m, header=header))


def point_mass_predict_readout(out, dt):
    """predict.onnx and readout.onnx of the exact 2D point mass (zero-order
    hold), readouts [pos, vel, |v|]."""
    n = 2
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
    return a, b


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

    # predict: z' = z·Aᵀ + u·Bᵀ (row vectors), exact zero-order hold;
    # readout: [p, v] = z·I, speed = sqrt(Σ v²).
    point_mass_predict_readout(out, dt)

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


ARENA = 4.0  # metres across, centred on the origin, of the pixel bundles' images


def pixel_grid(h, w):
    """[H·W, 2]: the (x, y) of each pixel centre in metres, row-major, row 0 at
    the top (+y up), over an ARENA × ARENA square."""
    cell_x, cell_y = ARENA / w, ARENA / h
    xs = -ARENA / 2 + (np.arange(w) + 0.5) * cell_x
    ys = ARENA / 2 - (np.arange(h) + 0.5) * cell_y
    return np.stack([np.tile(xs, h), np.repeat(ys, w)], axis=1)


def splat(x, y, h, w, level=255.0):
    """An [H, W] image whose centroid is (x, y): ``level`` split bilinearly
    over the four pixels around that point (the tests render images so)."""
    img = np.zeros((h, w))
    u = (x + ARENA / 2) / (ARENA / w) - 0.5
    v = (ARENA / 2 - y) / (ARENA / h) - 0.5
    j, i = int(np.floor(u)), int(np.floor(v))
    fu, fv = u - j, v - i
    for di, wi in ((0, 1 - fv), (1, fv)):
        for dj, wj in ((0, 1 - fu), (1, fu)):
            img[i + di, j + dj] += level * wi * wj
    return img


def centroid_nodes(flat):
    """Nodes that turn ``flat`` [B, H·W] into its centroid ``pos`` [B, 2]
    (initialisers ``grid``, ``one`` and ``axes``)."""
    return [
        helper.make_node("ReduceSum", [flat, "axes"], ["mass"], keepdims=1),
        helper.make_node("Max", ["mass", "one"], ["mass1"]),
        helper.make_node("MatMul", [flat, "grid"], ["moment"]),
        helper.make_node("Div", ["moment", "mass1"], ["pos"]),
    ]


def centroid_consts(h, w):
    return [
        const("grid", pixel_grid(h, w)),
        const("one", np.ones((1, 1))),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
    ]


def centroid(flat, grid):
    """numpy's float32 centroid of ``flat`` [B, H·W], as the graph computes it."""
    mass = np.maximum(flat.sum(axis=1, keepdims=True), np.float32(1.0))
    return (flat @ grid.astype(np.float32)) / mass


def write_reference(path, **arrays):
    """reference.json: flat row-major float32 lists, as `telic inspect` reads them."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            {k: [float(x) for x in np.asarray(v, dtype=np.float32).ravel()] for k, v in arrays.items()},
            f,
            indent=1,
        )
        f.write("\n")


def pixels_v2(out):
    """The 2D point mass seen from above: uint8 RGB image + velocity."""
    dt, c, h, w = 0.1, 3, 16, 16
    mean, std = np.array([0.1, -0.1]), np.array([0.5, 0.5])
    os.makedirs(out, exist_ok=True)
    # encode: gray = 1×1 conv (channel mean); pos = centroid of gray;
    # vel = obs_n · diag(std) + mean (undoing the engine's normalisation).
    save(
        helper.make_graph(
            [
                helper.make_node("Cast", ["image"], ["imagef"], to=F32),
                helper.make_node("Conv", ["imagef", "gray_w"], ["gray"]),
                helper.make_node("Flatten", ["gray"], ["flat"], axis=1),
                *centroid_nodes("flat"),
                helper.make_node("MatMul", ["obs", "scale"], ["scaled"]),
                helper.make_node("Add", ["scaled", "mean"], ["vel"]),
                helper.make_node("Concat", ["pos", "vel"], ["z"], axis=1),
            ],
            "encode",
            [image_tensor(TensorProto.UINT8, c, h, w), tensor("obs", 2)],
            [tensor("z", 4)],
            [
                const("gray_w", np.full((1, c, 1, 1), 1.0 / 3.0)),
                *centroid_consts(h, w),
                const("scale", np.diag(std)),
                const("mean", mean[None, :]),
            ],
        ),
        os.path.join(out, "encode.onnx"),
    )
    a, b = point_mass_predict_readout(out, dt)
    write_manifest(
        os.path.join(out, "manifest.toml"),
        {
            "format_version": 2,
            "name": "pixels_v2",
            "dt": dt,
            "latent_dim": 4,
            "observations": ["vel.x", "vel.y"],
            "image": {
                "channels": c,
                "height": h,
                "width": w,
                "dtype": "uint8",
                "channel_order": "rgb",
                "layout": "chw",
            },
            "readouts": ["pos.x", "pos.y", "vel.x", "vel.y", "speed"],
            "actions": [
                {"name": "acc.x", "lower": -1.0, "upper": 1.0},
                {"name": "acc.y", "lower": -1.0, "upper": 1.0},
            ],
            "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
            "provenance": {
                "scene": "a 2D point mass seen from above (telic::model::PointMass), no training",
                "samples": 0,
                "episodes": 0,
                "seed": 11,
                "producer": "scripts/make_test_bundles.py",
                "training": {"method": "none: weights written by hand"},
                "validation": {"onnx_vs_torch_max_abs_diff": 0.0},
            },
        },
    )
    # Reference rows: a white point on a noisy background, and a velocity.
    rng = np.random.default_rng(11)
    rows, obs = 3, []
    for _ in range(rows):
        x, y = rng.uniform(-1.5, 1.5, size=2)
        gray = splat(x, y, h, w) + rng.integers(0, 30, size=(h, w))
        img = np.clip(np.round(np.stack([gray, 0.8 * gray, gray])), 0, 255).astype(np.uint8)
        obs.append(np.concatenate([img.ravel().astype(np.float64), rng.uniform(-1, 1, size=2)]))
    obs = np.array(obs)
    img = obs[:, : c * h * w].astype(np.float32).reshape(rows, c, h, w)
    gray = (img * np.float32(1.0 / 3.0)).sum(axis=1).reshape(rows, h * w)
    vel = obs[:, c * h * w :].astype(np.float32)
    z = np.concatenate([centroid(gray, pixel_grid(h, w)), vel], axis=1)
    u = rng.uniform(-1.0, 1.0, size=(rows, 2)).astype(np.float32)
    z_next = z @ a.T.astype(np.float32) + u @ b.T.astype(np.float32)
    y = np.concatenate([z, np.sqrt((z[:, 2:] ** 2).sum(axis=1, keepdims=True))], axis=1)
    write_reference(os.path.join(out, "reference.json"), obs=obs, u=u, z=z, z_next=z_next, y=y)


def pixels_gray_f32(out):
    """A float32 gray image and no vector input: z = its centroid, z' = z + dt·u."""
    dt, h, w = 0.1, 8, 8
    os.makedirs(out, exist_ok=True)
    save(
        helper.make_graph(
            [helper.make_node("Flatten", ["image"], ["flat"], axis=1), *centroid_nodes("flat"),
             helper.make_node("Identity", ["pos"], ["z"])],
            "encode",
            [image_tensor(F32, 1, h, w)],
            [tensor("z", 2)],
            centroid_consts(h, w),
        ),
        os.path.join(out, "encode.onnx"),
    )
    save(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["u", "dt"], ["du"]),
                helper.make_node("Add", ["z", "du"], ["z_next"]),
            ],
            "predict",
            [tensor("z", 2), tensor("u", 2)],
            [tensor("z_next", 2)],
            [const("dt", dt * np.eye(2))],
        ),
        os.path.join(out, "predict.onnx"),
    )
    save(
        helper.make_graph(
            [helper.make_node("Identity", ["z"], ["y"])],
            "readout",
            [tensor("z", 2)],
            [tensor("y", 2)],
        ),
        os.path.join(out, "readout.onnx"),
    )
    write_manifest(
        os.path.join(out, "manifest.toml"),
        {
            "format_version": 2,
            "name": "pixels_gray_f32",
            "dt": dt,
            "latent_dim": 2,
            "observations": [],
            "image": {
                "channels": 1,
                "height": h,
                "width": w,
                "dtype": "float32",
                "channel_order": "gray",
                "layout": "chw",
            },
            "readouts": ["pos.x", "pos.y"],
            "actions": [
                {"name": "vel.x", "lower": -1.0, "upper": 1.0},
                {"name": "vel.y", "lower": -1.0, "upper": 1.0},
            ],
            "provenance": {
                "scene": "a point seen from above, no training",
                "samples": 0,
                "episodes": 0,
                "seed": 0,
                "producer": "scripts/make_test_bundles.py",
                "validation": {"onnx_vs_torch_max_abs_diff": 0.0},
            },
        },
    )


def pixels_broken(out):
    """encode.onnx with obs[B,2] and no image input, for pixels_v2's contract."""
    os.makedirs(out, exist_ok=True)
    save(
        helper.make_graph(
            [helper.make_node("MatMul", ["obs", "w"], ["z"])],
            "encode",
            [tensor("obs", 2)],
            [tensor("z", 4)],
            [const("w", np.ones((2, 4)))],
        ),
        os.path.join(out, "encode.onnx"),
    )


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
    pixels_v2(os.path.join(out, "pixels_v2"))
    pixels_gray_f32(os.path.join(out, "pixels_gray_f32"))
    pixels_broken(os.path.join(out, "pixels_broken"))
    print(f"bundles written to {out}")


if __name__ == "__main__":
    main()
