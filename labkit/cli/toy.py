"""``python -m labkit toy``: train a generator on a 2-D toy target by Algorithm 1."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from labkit.cli.base import _add_config_options, _given_options, _seed_range
from labkit.cli.runs import _check_continues, _check_owner, _run, _saved_run


def _config_from_args(args: argparse.Namespace, base: dict[str, Any]):
    """``base`` (defaults, or the saved config on resume) updated with the options given."""
    from labkit.train import TrainConfig

    values = {**base, **_given_options(args)}
    if args.seeds is not None:
        values["seed"], values["n_seeds"] = args.seeds
    values["checkpoint"] = str(Path(args.out) / "checkpoint.pt")
    return TrainConfig.from_dict(values)


def _cmd_toy(args: argparse.Namespace) -> int:
    """Train, or with ``--resume`` continue, a toy run in ``--out`` (see :mod:`labkit.cli`)."""
    from labkit import rundir
    from labkit.train import TrainConfig

    out = rundir.check(args.out, "--out")
    _check_owner(out, "toy")
    if args.resume:
        saved, iteration = _saved_run(out, "toy")
        config = _check_continues(_config_from_args(args, saved), saved, iteration, out)
    else:
        config = _config_from_args(args, dataclasses.asdict(TrainConfig()))
    return _run(config, out, resume=args.resume, quiet=args.quiet)


def _add_toy_parser(sub) -> None:
    from labkit.train import IMAGE_FIELDS

    p_toy = sub.add_parser("toy", help="train on a 2-D toy target (Algorithm 1)",
                           description="Train a GAN/WGAN on a 2-D toy target. Options default "
                                       "to Algorithm 1 (or, with --resume, to the saved run).")
    p_toy.add_argument("--out", required=True, help="folder for config, history, metrics, "
                                                   "samples plot and checkpoint")
    p_toy.add_argument("--resume", action="store_true",
                       help="continue the run in --out up to --iters in total")
    p_toy.add_argument("--seeds", type=_seed_range, default=None,
                       help="train seeds A..B together as an ensemble, e.g. 0-7")
    p_toy.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p_toy, skip={"checkpoint", "n_seeds", *IMAGE_FIELDS})
    p_toy.set_defaults(func=_cmd_toy)
