"""Command line of the lab: ``python -m labkit info``, ``toy ...``, ``lsun ...``, ``study`` and
``notebook ...``.

``toy`` trains a generator on a 2-D toy target by Algorithm 1 and writes into ``--out``:
``config.json``, ``history.csv``, ``metrics.json``, ``samples.png`` and ``checkpoint.pt``, every
file atomically, in a folder claimed through :mod:`labkit.rundir` (one run at a time, marked
``INCOMPLETE`` until it finishes). Every failure is one line on stderr, never a traceback, with
an exit status: 2 bad arguments or a folder that cannot be used, 3 divergence, 1 a write that
failed (a full disk), 130 Ctrl-C.
``lsun download`` fetches an LSUN LMDB; ``lsun prepare`` decodes it once into a uint8 cache;
``lsun train`` trains the paper's DCGAN critic against a chosen generator on that cache through
the same loop, data-parallel under ``torchrun``, and writes ``config.json``, ``history.csv``,
``metrics.json``, ``w_estimate.png``, ``samples/*.png`` and ``checkpoint.pt``.
``digits export`` writes scikit-learn's real handwritten digits as a folder of PNGs for
``lsun prepare``; ``digits experiment`` runs notebook 04's experiment on them (Figures 3 to 7).
``study`` runs (or continues) the mode-collapse study of notebook 03 into one results file
(:mod:`labkit.study`); Ctrl-C prints what is kept and the command that continues (exit 130).
``notebook run|static|check`` executes notebooks and commits them with static views of their
widgets (:mod:`labkit.publish`); a cell that raises is exit status 1, the notebook unchanged.

The package, one module a command group: :mod:`labkit.cli.base` (exit statuses, argument types,
options generated from the configs' fields), :mod:`labkit.cli.runs` (the training pipeline of
``toy`` and ``lsun train``), :mod:`labkit.cli.toy`, :mod:`labkit.cli.lsun`,
:mod:`labkit.cli.study`, :mod:`labkit.cli.digits` and :mod:`labkit.cli.notebook`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from labkit.cli import digits, lsun, notebook, study, toy
from labkit.cli.base import EXIT_INTERRUPTED, EXIT_USAGE, EXIT_WRITE_FAILED, _flag, _Parser
from labkit.cli.runs import write_outputs

__all__ = ["build_parser", "info", "main", "write_outputs"]


def info() -> dict[str, str]:
    """Versions of labkit and its numerical stack, and the device the lab would use.

    The lab runs on the CPU unless asked (``device="cuda"``); ``gpu`` says whether one is visible.
    """
    import numpy
    import ot
    import torch

    import labkit

    gpu = torch.cuda.is_available()
    return {
        "labkit": labkit.__version__,
        "torch": torch.__version__,
        "POT": ot.__version__,
        "numpy": numpy.__version__,
        "device": ("cpu (default; pass device='cuda' or --device cuda to use the GPU)" if gpu
                   else "cpu (this torch sees no GPU, so cpu is the only device)"),
        "gpu": f"yes: {torch.cuda.get_device_name(0)}" if gpu else "no",
    }


def _cmd_info(args: argparse.Namespace) -> int:
    for key, value in info().items():
        print(f"{key:>7}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    p_info = sub.add_parser("info", help="print versions and the device in use")
    p_info.set_defaults(func=_cmd_info)

    toy._add_toy_parser(sub)
    lsun._add_lsun_train(lsun._add_lsun_commands(sub))
    study._add_study_parser(sub)
    digits._add_digits_parser(sub)
    notebook._add_notebook_parser(sub)
    parser.set_defaults(commands=", ".join(sub.choices))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (errors are one line on stderr)."""
    from labkit._checks import BadValue
    from labkit.rundir import RunDirError
    from labkit.train import TrainConfig

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.error(f"choose a command: {args.commands} "
                     "(python -m labkit COMMAND -h for its options)")
    if getattr(args, "seeds", None) is not None and args.seed is not None:
        parser.error("give either --seed or --seeds, not both")
    try:
        return args.func(args)
    except (BadValue, RunDirError) as err:  # named as this command's option where it has one
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        ours = err.name in fields or hasattr(args, err.name)
        print(f"error: {err.render(_flag(err.name)) if ours else err}", file=sys.stderr)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:  # e.g. a full disk while the run folder was being set up
        print(f"error: {err}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    except KeyboardInterrupt:
        print("interrupted before the run started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE
