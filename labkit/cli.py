"""Command line of the lab: ``python -m labkit info`` and ``python -m labkit toy ...``.

Argument errors are reported as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys


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
        "device": "cpu (default; pass device='cuda' or --device cuda to use a GPU)",
        "gpu": f"yes: {torch.cuda.get_device_name(0)}" if gpu else "no",
    }


def _cmd_info(args: argparse.Namespace) -> int:
    for key, value in info().items():
        print(f"{key:>7}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="print versions and the device in use")
    p_info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
