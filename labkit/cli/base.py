"""What every command shares: the exit statuses, the parser that reports errors in one line,
the argument types, and the options generated from the fields of a config dataclass
(:class:`labkit.train.TrainConfig`, :class:`labkit.study.StudyConfig`, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

EXIT_USAGE = 2


EXIT_WRITE_FAILED = 1


EXIT_DIVERGED = 3


EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def _seed_range(text: str) -> tuple[int, int]:
    """``"0-7"`` -> (0, 8) as (first seed, number of seeds); ``"3"`` -> (3, 1)."""
    first, _, last = text.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds {text!r}: expected a range like 0-7 or a single seed") from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: need 0 <= first <= last")
    return a, b - a + 1


def _positive_real(text: str) -> float:
    """An option's value as a finite number > 0 (``--epochs``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; it must be a finite number "
                                         "> 0")
    return value


def _image_size(text: str) -> int:
    from labkit._checks import image_size

    try:
        return image_size("--size", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; it must be a power of two >= 16") from None


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; it must be an integer >= 1")
    return value


def _category(text: str) -> str:
    from labkit.lsun import CATEGORIES

    if text not in CATEGORIES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an LSUN scene category; choose one of {', '.join(CATEGORIES)}")
    return text


def _add_config_options(parser: argparse.ArgumentParser, skip: set[str],
                        defaults: dict[str, Any] | None = None) -> None:
    """One option per :class:`labkit.train.TrainConfig` field but ``skip``, defaulting to "not
    given"; the help shows ``defaults`` (the toy defaults unless given)."""
    from labkit.train import TrainConfig

    defaults = {**dataclasses.asdict(TrainConfig()), **(defaults or {})}
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        default = defaults[f.name]
        flag = "--" + f.name.replace("_", "-")
        help_ = f"default {default!r}"
        if isinstance(default, bool) or str(f.type).startswith("bool"):  # bool | None too
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=float, nargs=len(default), default=None, help=help_)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=help_)


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`labkit.train.TrainConfig` fields given on the command line."""
    from labkit.train import TrainConfig

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def _flag(field: str) -> str:
    """The command-line option that sets a :class:`~labkit.train.TrainConfig` field."""
    return "--seeds" if field == "n_seeds" else "--" + field.replace("_", "-")


def _add_fields_as_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of the dataclass ``cls`` (a study's or an experiment's config),
    defaulting to "not given"; tuples take several values, bools --x / --no-x."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"default {default}")
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", default=None, metavar=field.name[:-1].upper(),
                                type=type(default[0]) if default else str,
                                help=f"default: {' '.join(map(str, default))}")
        else:
            parser.add_argument(flag, type=type(default), default=None,
                                help=f"default {default}")


def _fields_given(args: argparse.Namespace, cls: type, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with the fields of the dataclass ``cls`` given on the command line."""
    values = dict(base)
    for field in dataclasses.fields(cls):
        given = getattr(args, field.name, None)
        if given is not None:
            values[field.name] = tuple(given) if isinstance(given, list) else given
    return values
