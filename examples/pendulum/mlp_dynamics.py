"""Train a plain MLP dynamics model of Pendulum-v1 and write it as a Telic
bundle, ``models/pendulum_mlp``.

    python3 examples/pendulum/mlp_dynamics.py                   # ~3 min on one thread, then 3 swing-ups
    python3 examples/pendulum/mlp_dynamics.py --check-episodes 0

The model is the one a pytorch_mppi user would write: no latent space, the
state is the observation ``z = (cos θ, sin θ, θ̇)``, and

    encode(obs) = obs
    predict(z, u) = z + MLP([z, u])     Linear(4, 256)-tanh-Linear(256, 256)-tanh-
                                        Linear(256, 256)-tanh-Linear(256, 3)
    readout(z) = (cos, sin, θ̇, |atan2(sin, cos)|)

so that the objective of the other Pendulum-v1 scripts (``common.OBJECTIVE``)
applies unchanged. Training scales the MLP's inputs (θ̇/8, u/2) and outputs
(one step moves cos and sin by at most 0.4) for conditioning; the scales are
folded into the first and last layers before export, so ``predict.onnx`` is
exactly the MLP above. The loss is the open-loop error over 8 steps
(rollouts of the model itself from a recorded state, per-column normalised),
on the transitions of ``collect_and_train.py`` (``data/pendulum``, recorded
first if missing), 40 of 400 episodes held out. Seeded, with torch's
deterministic algorithms (not checked byte for byte across runs).

``load_dynamics(bundle)`` rebuilds the same network as a ``torch.nn.Module``
from ``predict.onnx``'s weights, for pytorch_mppi (``bench_dynamics.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

OUT = os.path.join(common.ROOT, "models", "pendulum_mlp")
HIDDEN, LAYERS = 256, 3
#: Training-time scales of the MLP's input ``(cos, sin, θ̇, u)`` and output
#: ``Δ(cos, sin, θ̇)``, folded into the weights on export.
IN_SCALE = [1.0, 1.0, 1.0 / 8.0, 1.0 / 2.0]
OUT_SCALE = [0.4, 0.4, 1.0]
OPSET = 17


def mlp(hidden: int = HIDDEN, layers: int = LAYERS):
    import torch.nn as nn

    mods, width = [], 4
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    mods.append(nn.Linear(width, 3))
    return nn.Sequential(*mods)


def _modules():
    import torch
    import torch.nn as nn

    class Dynamics(nn.Module):
        """``z + net([z, u] · in_scale) · out_scale``; unit scales once folded."""

        def __init__(self, net, in_scale=None, out_scale=None):
            super().__init__()
            self.net = net
            self.register_buffer("in_scale", torch.tensor(in_scale or [1.0] * 4))
            self.register_buffer("out_scale", torch.tensor(out_scale or [1.0] * 3))
            self.scaled = in_scale is not None or out_scale is not None

        def forward(self, z, u):
            x = torch.cat([z, u], dim=1)
            if self.scaled:
                return z + self.net(x * self.in_scale) * self.out_scale
            return z + self.net(x)

        def folded(self) -> "Dynamics":
            """The same function with the scales in the first and last layers."""
            import copy

            net = copy.deepcopy(self.net)
            with torch.no_grad():
                net[0].weight.mul_(self.in_scale)
                net[-1].weight.mul_(self.out_scale[:, None])
                net[-1].bias.mul_(self.out_scale)
            return Dynamics(net)

    class Encode(nn.Module):
        def forward(self, obs):
            return obs * 1.0  # a graph with a node: obs -> z

    class Readout(nn.Module):
        def forward(self, z):
            return readout(z)

    return Dynamics, Encode, Readout


def readout(z):
    """``(cos, sin, θ̇, angle)`` of states ``z`` ``[B, 3]``; angle = |θ| wrapped."""
    import torch

    c, s = z[:, 0:1], z[:, 1:2]
    return torch.cat([c, s, z[:, 2:3], torch.atan2(s, c).abs()], dim=1)


def load_dynamics(bundle: str = OUT):
    """``predict.onnx`` of ``bundle`` as a torch module ``f(z, u) = z + MLP([z, u])``
    with the bundle's own float32 weights (the Gemm nodes, in graph order)."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(os.path.join(bundle, "predict.onnx")).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    Dynamics, _, _ = _modules()
    net = mlp(layers=len(gemms) - 1)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for node, lin in zip(gemms, linears, strict=True):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            w = weights[node.input[1]]
            w = w if attrs.get("transB", 0) else w.T
            lin.weight.copy_(torch.from_numpy(w.copy()))
            lin.bias.copy_(torch.from_numpy(weights[node.input[2]].copy()))
    return Dynamics(net).eval()


# ---------------------------------------------------------------- data


def sequences(data: str):
    """Per episode: states ``[E, T + 1, 3]`` and actions ``[E, T, 1]`` (float32)."""
    obs, act, nxt = (np.load(os.path.join(data, f"{k}.npy")) for k in ("obs", "action", "next_obs"))
    episode = np.load(os.path.join(data, "episode.npy"))
    ids, starts, counts = np.unique(episode, return_index=True, return_counts=True)
    if len(set(counts)) != 1:
        raise ValueError(f"{data}: episodes of different lengths {sorted(set(counts))}")
    t = int(counts[0])
    idx = starts[:, None] + np.arange(t)[None, :]
    if not np.allclose(obs[idx[:, 1:]], nxt[idx[:, :-1]]):
        raise ValueError(f"{data}: an episode's transitions do not follow one another")
    states = np.concatenate([obs[idx], nxt[idx[:, -1:]]], axis=1)
    return states.astype(np.float32), act[idx].astype(np.float32), ids


def open_loop(dyn, s0, actions):
    """Model rollout from states ``s0`` ``[B, 3]`` under ``actions`` ``[B, H, 1]``: ``[B, H, 3]``."""
    import torch

    out, z = [], s0
    for k in range(actions.shape[1]):
        z = dyn(z, actions[:, k])
        out.append(z)
    return torch.stack(out, dim=1)


def readout_rmse(dyn, states, actions, horizon: int) -> np.ndarray:
    """RMSE per horizon step, over every start of every episode, mean over the 4 readouts."""
    import torch

    e, t = actions.shape[:2]
    starts = [(i, k) for i in range(e) for k in range(0, t - horizon + 1, 5)]
    s0 = torch.from_numpy(np.stack([states[i, k] for i, k in starts]))
    u = torch.from_numpy(np.stack([actions[i, k:k + horizon] for i, k in starts]))
    truth = torch.from_numpy(np.stack([states[i, k + 1:k + 1 + horizon] for i, k in starts]))
    with torch.no_grad():
        pred = open_loop(dyn, s0, u)
        y, y_true = (readout(x.reshape(-1, 3)).reshape(len(starts), horizon, 4) for x in (pred, truth))
    return ((y - y_true) ** 2).mean(dim=0).sqrt().mean(dim=1).numpy()


# ---------------------------------------------------------------- training


def train(states, actions, epochs: int, horizon: int, batch: int, lr: float, seed: int, log=print):
    import torch

    Dynamics, _, _ = _modules()
    torch.manual_seed(seed)
    dyn = Dynamics(mlp(), IN_SCALE, OUT_SCALE)
    e, t = actions.shape[:2]
    windows = np.array([(i, k) for i in range(e) for k in range(t - horizon + 1)])
    scale = torch.from_numpy(states.reshape(-1, 3).std(axis=0)).float()
    opt = torch.optim.AdamW(dyn.parameters(), lr=lr, weight_decay=1e-5)
    steps = epochs * (len(windows) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(seed)
    offsets = np.arange(horizon)
    S, U = torch.from_numpy(states), torch.from_numpy(actions)
    history = []
    for epoch in range(1, epochs + 1):
        t0, total = time.perf_counter(), 0.0
        order = rng.permutation(len(windows))
        n = len(windows) // batch
        for b in range(n):
            w = windows[order[b * batch:(b + 1) * batch]]
            ep, k = torch.from_numpy(w[:, 0]), torch.from_numpy(w[:, 1])
            ks = k[:, None] + torch.from_numpy(offsets)[None, :]
            pred = open_loop(dyn, S[ep, k], U[ep[:, None], ks])
            loss = (((pred - S[ep[:, None], ks + 1]) / scale) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dyn.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        history.append({"epoch": epoch, "loss": total / n, "seconds": time.perf_counter() - t0})
        log(f"epoch {epoch:3d}/{epochs}  {horizon}-step loss {total / n:.3e}  ({time.perf_counter() - t0:.1f} s)")
    return dyn.eval(), history


# ---------------------------------------------------------------- export


def export(dyn, out: str) -> None:
    import onnx
    import torch

    _, Encode, Readout = _modules()
    os.makedirs(out, exist_ok=True)
    z, u = torch.zeros(2, 3), torch.zeros(2, 1)
    jobs = [(Encode(), (z,), "encode.onnx", ["obs"], ["z"]),
            (dyn, (z, u), "predict.onnx", ["z", "u"], ["z_next"]),
            (Readout(), (z,), "readout.onnx", ["z"], ["y"])]
    for module, args, file, inputs, outputs in jobs:
        path = os.path.join(out, file)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(module.eval(), args, path, input_names=inputs, output_names=outputs,
                              dynamic_axes={n: {0: "batch"} for n in inputs + outputs},
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        onnx.checker.check_model(onnx.load(path), full_check=True)


def onnx_vs_torch(trained, out: str, obs: np.ndarray, u: np.ndarray) -> tuple[float, dict]:
    """Largest difference between ONNX Runtime on the exported graphs and the
    trained (unfolded) torch model; also writes ``reference.json`` for
    ``telic inspect``."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1

    def run(file, feed):
        sess = ort.InferenceSession(os.path.join(out, file), opts, providers=["CPUExecutionProvider"])
        return sess.run(None, feed)[0]

    obs, u = obs.astype(np.float32), u.astype(np.float32)
    with torch.no_grad():
        z_next = trained(torch.from_numpy(obs), torch.from_numpy(u)).numpy()
        y = readout(torch.from_numpy(obs)).numpy()
    diffs = {"encode": float(np.abs(run("encode.onnx", {"obs": obs}) - obs).max()),
             "predict": float(np.abs(run("predict.onnx", {"z": obs, "u": u}) - z_next).max()),
             "readout": float(np.abs(run("readout.onnx", {"z": obs}) - y).max())}
    flat = lambda a: np.asarray(a, np.float64).reshape(-1).tolist()  # noqa: E731
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"obs": flat(obs), "u": flat(u), "z": flat(obs), "z_next": flat(z_next), "y": flat(y)}, f)
    return max(diffs.values()), diffs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=common.DATA)
    p.add_argument("--out", default=OUT)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--horizon", type=int, default=8, help="open-loop steps of the training loss")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--check-episodes", type=int, default=3,
                   help="then swing Pendulum-v1 up with Telic on the bundle (seeds 0..N-1)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if not os.path.exists(os.path.join(args.data, "meta.json")):
        import collect_and_train

        print(f"no data in {args.data}: recording it as collect_and_train.py does", flush=True)
        collect_and_train.collect(400, 100, 7, args.data)
    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    states, actions, ids = sequences(args.data)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(ids))
    n_val = max(1, round(0.1 * len(ids)))
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    print(f"{len(ids)} episodes of {actions.shape[1]} steps from {args.data}: {len(tr)} to train on, "
          f"{len(val)} held out; {args.threads} torch thread(s)", flush=True)

    t0 = time.perf_counter()
    trained, history = train(states[tr], actions[tr], args.epochs, args.horizon, args.batch, args.lr, args.seed,
                             log=lambda *a: print(*a, flush=True))
    seconds = time.perf_counter() - t0
    rmse = readout_rmse(trained, states[val], actions[val], 30)
    print(f"trained in {seconds:.0f} s; held-out open-loop readout RMSE (mean of 4): "
          f"h1 {rmse[0]:.4f}, h10 {rmse[9]:.4f}, h30 {rmse[29]:.4f}", flush=True)

    folded = trained.folded()
    export(folded, args.out)
    held_out = states[val][:, :-1].reshape(-1, 3)
    check_rows = np.random.default_rng(1).choice(len(held_out), 64, replace=False)
    obs = held_out[check_rows]
    u = actions[val].reshape(-1, 1)[check_rows]
    diff, diffs = onnx_vs_torch(trained, args.out, obs, u)
    params = sum(x.numel() for x in folded.net.parameters())
    manifest = {
        "format_version": 1, "name": "pendulum_mlp", "dt": common.DT, "latent_dim": 3,
        "observations": common.OBSERVATIONS, "readouts": common.READOUTS,
        "actions": [{"name": a, "lower": lo, "upper": hi}
                    for a, lo, hi in zip(common.ACTIONS, common.ACTION_LOWER, common.ACTION_UPPER)],
        "provenance": {
            "scene": "pendulum", "samples": int(len(tr) * actions.shape[1]), "episodes": int(len(tr)),
            "seed": args.seed, "producer": "examples/pendulum/mlp_dynamics.py",
            "training": {
                "method": "residual MLP dynamics on the observation, z' = z + MLP([z, u]); "
                          f"{args.horizon}-step open-loop MSE, per-column normalised",
                "hidden": HIDDEN, "layers": LAYERS, "activation": "tanh", "parameters": params,
                "in_scale_folded": IN_SCALE, "out_scale_folded": OUT_SCALE,
                "epochs": args.epochs, "horizon": args.horizon, "batch_size": args.batch,
                "optimiser": {"name": "adamw", "lr": args.lr, "weight_decay": 1e-5, "schedule": "cosine",
                              "grad_clip": 1.0},
                "final_train_loss": history[-1]["loss"], "threads": args.threads,
                "torch_version": torch.__version__, "onnx_opset": OPSET, "training_time_s": round(seconds, 1),
                "data_seed": int(meta.get("seed", 0)), "data_transitions": int(meta.get("transitions", 0)),
                "validation_episodes": int(len(val)),
            },
            "validation": {
                "onnx_vs_torch_max_abs_diff": diff,
                "errors": {"readout_rmse_h1": float(rmse[0]), "readout_rmse_h10": float(rmse[9]),
                           "readout_rmse_h30": float(rmse[29]),
                           **{f"onnx_{k}_max_abs_diff": v for k, v in diffs.items()}},
            },
        },
    }
    from telic.train.export import check_bundle
    from telic.train.manifest import write_manifest

    write_manifest(os.path.join(args.out, "manifest.toml"), manifest)
    check_bundle(args.out)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out) if f.endswith(".onnx"))
    print(f"wrote {args.out}: {params} parameters, {size / 1024:.0f} KiB of ONNX; "
          f"ONNX Runtime vs torch max |diff| {diff:.1e}", flush=True)
    with torch.no_grad():
        back = load_dynamics(args.out)(torch.from_numpy(obs.astype(np.float32)), torch.from_numpy(u.astype(np.float32)))
        again = float((back - trained(torch.from_numpy(obs.astype(np.float32)),
                                      torch.from_numpy(u.astype(np.float32)))).abs().max())
    print(f"load_dynamics (torch, from predict.onnx) vs trained: max |diff| {again:.1e}", flush=True)

    if args.check_episodes:
        import swing_up

        ctl = swing_up.TelicController(args.out, swing_up.TELIC_CONFIG)
        res = swing_up.run(ctl, range(args.check_episodes), log=lambda *a: print(*a, flush=True))
        print(f"Telic on {args.out}, {swing_up.SAMPLES} x {swing_up.HORIZON}: return {res['mean']:.1f} ± "
              f"{res['std']:.1f} over {args.check_episodes} episodes ({res['ms_per_step']:.0f} ms per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
