"""Command line of the trainer: ``python -m telic.train --data DIR --out BUNDLE_DIR``."""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    from .trainer import TrainConfig

    d = TrainConfig(data="", out="")
    p = argparse.ArgumentParser(
        prog="python -m telic.train",
        description="Train a JEPA world model on `telic collect` data and write a bundle "
        "(manifest.toml + encode/predict/readout.onnx, docs/bundle.md).",
    )
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="data set folder(s) written by `telic collect` (several of one scene train as one set)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--latent-dim", type=int, default=d.latent_dim, help="latent size D")
    p.add_argument("--hidden", type=int, default=d.hidden, help="hidden width of encoder and predictor")
    p.add_argument("--layers", type=int, default=d.layers, help="hidden layers of encoder and predictor")
    p.add_argument("--readout-hidden", type=int, default=d.readout_hidden)
    p.add_argument("--readout-layers", type=int, default=d.readout_layers, help="0: linear probes")
    p.add_argument("--probe-epochs", type=int, default=d.probe_epochs,
                   help="epochs of the readout refit on the frozen model (0: none)")
    p.add_argument("--horizon", type=int, default=d.horizon, help="K: predict steps per training window")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--ema", type=float, default=d.ema, help="target encoder momentum (0: stop-gradient copy)")
    p.add_argument("--w-pred", type=float, default=d.w_pred, help="weight of the latent prediction loss")
    p.add_argument("--w-probe", type=float, default=d.w_probe, help="weight of the readout probe loss")
    p.add_argument("--w-var", type=float, default=d.w_var, help="weight of the VICReg variance term")
    p.add_argument("--w-cov", type=float, default=d.w_cov, help="weight of the VICReg covariance term")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of episodes held out")
    p.add_argument("--readouts", help="comma-separated readout names (default: all in the data)")
    p.add_argument("--periodic", help="comma-separated observation names that are angles (encoded as cos, sin)")
    p.add_argument("--frame", action="append", dest="frames", metavar="OX,OY,COS,SIN:X,Y",
                   help="feed the encoder planar points seen from a moving frame (OX,OY,COS,SIN:X,Y[:X,Y]) "
                        "or vectors turned into it (COS,SIN:X,Y); observation names, repeatable")
    p.add_argument("--bilinear", type=int, default=d.bilinear,
                   help="multiplicative action conditioning: products of this many latent projections "
                        "with each action component as extra predictor inputs (0: none)")
    p.add_argument("--image", action="store_true",
                   help="encode the data set's camera images (a data set collected with --obs pixels...)")
    p.add_argument("--proprio", action="store_true",
                   help="with --image: also encode the robot's own state (meta.json `proprio`), never the rest")
    p.add_argument("--seen", metavar="READOUT,...",
                   help="with --image: readouts the image encoder estimates under supervision and hands to the "
                        "vector encoder beside the proprio entries (e.g. box.x,box.y,box.cos,box.sin); --frame "
                        "and --periodic may name them")
    p.add_argument("--w-seen", type=float, default=d.w_seen, help="weight of the supervised loss on --seen")
    p.add_argument("--saturate", action="append", metavar="READOUT=MAX",
                   help="learn READOUT saturated at MAX (e.g. clearance=1.0: a clearance matters near obstacles, "
                        "and its errors far from them would only widen the error margins)")
    p.add_argument("--ego", metavar="X,Y:HALF:SIZE",
                   help="with --image --proprio: encode the SIZE×SIZE crop of the image around the robot's "
                        "position (proprio X, Y), HALF metres each way (e.g. x,y:2.5:40)")
    p.add_argument("--map", dest="ground_map", metavar="READOUT:X,Y:PX,PY:HALF:CELLS",
                   help="with --image --proprio: map READOUT at the image's resolution on a CELLS×CELLS grid "
                        "HALF metres each way around the robot's position X, Y (proprio), carried in the latent; "
                        "the readout reads it where the readouts PX, PY put the robot")
    p.add_argument("--map-epochs", type=int, default=0, metavar="N",
                   help="with --map: first fit the map's head on its own for N passes over the images, each "
                        "labelled by every place of its episode (violations included), then freeze it")
    p.add_argument("--field", metavar="READOUT:X,Y:STEP", action="append",
                   help="with --image --proprio: learn READOUT as a map over the ground in view, read at the "
                        "position X, Y and 8 neighbours STEP metres away; X, Y are proprio observations (the "
                        "robot's position, e.g. keepout.clearance:pusher.x,pusher.y:0.05) or --seen readouts "
                        "(a position the image showed, e.g. box.x,box.y for a quantity read where the box is seen); "
                        "may be given more than once")
    p.add_argument("--freeze", action="store_true",
                   help="with --image: after --epochs, freeze the convolutions, cache their pooled features and "
                        "train the rest for --frozen-epochs more on windows of --frozen-horizon steps")
    p.add_argument("--frozen-epochs", type=int, default=d.frozen_epochs)
    p.add_argument("--frozen-horizon", type=int, default=d.frozen_horizon)
    p.add_argument("--keep-violations", action="store_true",
                   help="also train on transitions during which the true state broke a guardrail "
                        "(default: left out when the data set marks them)")
    p.add_argument("--quantile", type=float, default=d.quantile, help="quantile of the error margins")
    p.add_argument("--quantile-horizon", type=int, default=d.quantile_horizon, help="steps of the error margins")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the data set's)")
    p.add_argument("--threads", type=int, default=d.threads, help="PyTorch threads (1: reproducible bit for bit)")
    p.add_argument("--name", help="bundle name (default: SCENE_jepa)")
    p.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="time step of the bundle, for data recorded without one (Recorder(dt=None)); "
                        "1 makes one environment step the unit of time")
    p.add_argument("--quiet", action="store_true")
    return p


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list of names (``None`` when the option is absent)."""
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def _bounds(items: list[str] | None) -> dict[str, float] | None:
    """``["NAME=VALUE", ...]`` as a dict; a malformed item is a usage error."""
    if not items:
        return None
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            bound = float(value)
        except ValueError:
            bound = None
        if bound is None or not name.strip():
            raise SystemExit(f"error: --saturate {item!r}: expected READOUT=MAX, e.g. clearance=1.0")
        out[name.strip()] = bound
    return out


def main(argv=None) -> int:
    try:
        from .trainer import TrainConfig, train
    except ImportError as e:
        print(f"telic.train needs PyTorch, onnx and onnxruntime: "
              f"python3 -m pip install -r bindings/requirements-train.txt ({e})", file=sys.stderr)
        return 2
    from .data import DataError
    from .export import BundleError
    from .manifest import ManifestError

    args = parser().parse_args(argv)
    cfg = TrainConfig(
        data=args.data, out=args.out, epochs=args.epochs, latent_dim=args.latent_dim, hidden=args.hidden,
        layers=args.layers, readout_hidden=args.readout_hidden, readout_layers=args.readout_layers,
        probe_epochs=args.probe_epochs,
        horizon=args.horizon, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        ema=args.ema, w_pred=args.w_pred, w_probe=args.w_probe, w_var=args.w_var, w_cov=args.w_cov,
        val_fraction=args.val_fraction,
        readouts=_names(args.readouts), periodic=_names(args.periodic),
        frames=args.frames, bilinear=args.bilinear, image=args.image, proprio=args.proprio,
        seen=_names(args.seen), w_seen=args.w_seen, saturate=_bounds(args.saturate),
        ego=args.ego, ground_field=args.field, ground_map=args.ground_map, map_epochs=args.map_epochs, freeze=args.freeze, frozen_epochs=args.frozen_epochs,
        frozen_horizon=args.frozen_horizon,
        safe_only=not args.keep_violations,
        quantile=args.quantile, quantile_horizon=args.quantile_horizon, seed=args.seed, threads=args.threads,
        name=args.name, dt=args.dt, quiet=args.quiet,
    )
    try:
        train(cfg, log=lambda *a: print(*a, flush=True))
    except (DataError, BundleError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
