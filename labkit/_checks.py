"""Argument checks shared by every public entry point of labkit, so that bad input always fails the
same way: one ``ValueError`` (a :class:`BadValue`) naming the parameter, the value and what is
allowed, in one line.

The rules are the same everywhere: a bool is not a number, numpy integers are integers, a string
is not a bool, ``nan``/``inf`` are refused where a finite number is needed, and a tensor that
requires grad is refused where its gradient would be silently dropped.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import resource
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


class BadValue(ValueError):
    """A parameter outside what is allowed. ``str()`` reads ``"<name> must be <allowed>, got <v>"``.

    ``name``, ``value`` and ``allowed`` are kept so that a caller can name the parameter its own
    way (the command line says ``--eval-samples`` where the library says ``eval_samples``).
    """

    def __init__(self, name: str, value: Any, allowed: str, why: str = "") -> None:
        self.name, self.value, self.allowed, self.why = name, value, allowed, why
        super().__init__(self.render(name))

    def render(self, name: str) -> str:
        """The message with the parameter called ``name``."""
        return f"{name} must be {self.allowed}, got {brief(self.value)}{self.why}"


def brief(value: Any) -> str:
    """``repr(value)`` on one line, cut to 80 characters (a message never spans lines)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def finite_real(name: str, value: Any, *, above: float | None = None,
                at_least: float | None = None) -> float:
    """Return ``value`` as a finite float, optionally ``> above`` or ``>= at_least``.

    Accepts Python and numpy reals and 0-d tensors that do not require grad; refuses bools,
    strings, complex numbers, ``nan`` and ``inf``.

    >>> finite_real("theta", 0.5)
    0.5
    >>> finite_real("lr", 0, above=0)
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: lr must be a finite number > 0, got 0
    """
    allowed = "a finite number" + (f" > {above:g}" if above is not None else "") + (
        f" >= {at_least:g}" if at_least is not None else "")
    number = _scalar(value)
    if number is None or not math.isfinite(number) or (above is not None and number <= above) or (
            at_least is not None and number < at_least):
        raise BadValue(name, value, allowed)
    return number


def real(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a real number; unlike :func:`finite_real`, ``inf``
    and ``nan`` pass (a readout may show an infinite KL). Bools and strings are refused.

    >>> real("KL", float("inf"))
    inf
    """
    number = _scalar(value)
    if number is None:
        raise BadValue(name, value, "a real number")
    return number


def _scalar(value: Any) -> float | None:
    """``value`` as a float if it is a real number (or a 0-d tensor without grad), else None."""
    if _is_number(value):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    if type(value).__module__.startswith("torch") and getattr(value, "ndim", None) == 0 and (
            not value.requires_grad and not value.is_complex() and value.dtype != _torch().bool):
        return float(value)
    return None


def _torch():
    import torch

    return torch


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int within ``[minimum, maximum]``; bools and floats are refused.

    >>> integer("n", np.int64(3), minimum=1)
    3
    >>> integer("iters", True, minimum=0)
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: iters must be an integer >= 0, got True
    """
    if minimum is not None and maximum is not None:
        allowed = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    else:
        allowed = "an integer" + (f" <= {maximum}" if maximum is not None else "")
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_) or (
            minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BadValue(name, value, allowed)
    return int(value)


def image_size(name: str, value: Any) -> int:
    """Return ``value`` if it is an image side the DCGAN models build: a power of two >= 16.

    (The authors' code checks ``isize % 16 == 0``, which lets 48 through; their generator then
    loops forever and their critic ends on a 3 x 3 map.)

    >>> image_size("image_size", 64)
    64
    """
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
            and value >= 16 and not value & (value - 1)):
        raise BadValue(name, value, "a power of two >= 16 (16, 32, 64, ...: what the DCGAN "
                       "models build)")
    return int(value)


def path(name: str, value: Any) -> str:
    """Return ``value`` as a string if it is a non-empty path (``str`` or ``os.PathLike``); an
    empty one would silently mean the current folder.

    >>> path("out", "")
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: out must be a non-empty path (str or os.PathLike), got ''
    """
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str) or not text.strip():
        raise BadValue(name, value, "a non-empty path (str or os.PathLike)")
    return text


class NotFound(BadValue, FileNotFoundError):
    """A path that must exist and does not: a :class:`BadValue` naming the parameter that is
    also a ``FileNotFoundError``."""


def boolean(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (Python or numpy); a string such as ``"no"`` is refused.

    >>> boolean("critic_warmup", "no")
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: critic_warmup must be True or False, got 'no'
    """
    if not isinstance(value, bool | np.bool_):
        raise BadValue(name, value, "True or False")
    return bool(value)


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of the strings ``allowed``.

    >>> choice("loss", "hinge", ("wgan", "gan"))
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: loss must be one of wgan, gan, got 'hinge'
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise BadValue(name, value, "one of " + ", ".join(allowed))
    return value


_DEVICE = re.compile(r"cpu|cuda(:(0|[1-9][0-9]*))?")


def device(name: str, value: Any) -> str:
    """Return ``value`` if it names a device this torch can use: ``cpu``, ``cuda`` or ``cuda:N``.

    ``cuda`` is refused, naming what is available, when torch sees no GPU (a CPU-only build or no
    driver), and ``cuda:N`` when there are not N + 1 GPUs.

    >>> device("device", "cpu")
    'cpu'
    """
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise BadValue(name, value, "'cpu', 'cuda' or 'cuda:N'")
    if value == "cpu":
        return value
    torch = _torch()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(value.partition(":")[2] or 0)
    if index >= count:
        seen = (f"torch {torch.__version__} sees no GPU" if count == 0 else
                f"torch sees {count} GPU(s): cuda:0..cuda:{count - 1}")
        raise BadValue(name, value, "a device that exists", f"; {seen}, so use 'cpu'"
                       + ("" if count == 0 else " or one of those"))
    return value


def float_dtype(name: str, value: Any):
    """Return ``value`` if it is a floating torch dtype (``torch.float32``, ``torch.float64``, ...).

    >>> float_dtype("dtype", "float32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: dtype must be a floating torch dtype (...), got 'float32'
    """
    torch = _torch()
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise BadValue(name, value, "a floating torch dtype (torch.float32, torch.float64, ...)")
    return value


def generator(name: str, value: Any):
    """Return ``value`` if it is a ``torch.Generator`` or None (a seed is not a generator)."""
    torch = _torch()
    if value is not None and not isinstance(value, torch.Generator):
        raise BadValue(name, value, "a torch.Generator or None",
                       " (for a seed s, pass torch.Generator().manual_seed(s))")
    return value


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1


#: Largest seed ``torch.Generator.manual_seed`` takes (an unsigned 64-bit integer).
MAX_TORCH_SEED = 2**64 - 1


def memory_limit() -> int:
    """Bytes of memory this process may use at most: the machine's physical memory, or less
    where a limit applies (``RLIMIT_AS``; a cgroup's ``memory.max`` in a container)."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        cgroup = ""
    if cgroup.isdigit():
        limits.append(int(cgroup))
    return min(limits)


def fits_in_memory(name: str, value: Any, need: float, what: str) -> None:
    """Refuse ``value`` of parameter ``name`` (a :class:`BadValue`) if what it asks for, ``what``,
    needs ``need`` bytes or more than :func:`memory_limit`: a cheap guard, checked before
    anything is allocated, so that a typo costs one line instead of the machine's memory.
    ``need`` is a lower estimate (what the result alone takes), so that nothing that fits is
    refused.

    >>> fits_in_memory("n", 10**15, 8e15, "10**15 float64 samples")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: n must be small enough to fit in memory, got 1000000000000000: ...
    """
    limit = memory_limit()
    if need > limit:
        raise BadValue(name, value, "small enough to fit in memory",
                       f": {what} would take at least {need / 2**30:.3g} GiB, more than the "
                       f"{limit / 2**30:.3g} GiB this process may use")


def float_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 numpy array; strings, complex or non-numeric entries and tensors
    that require grad (whose gradient would be lost) are refused, naming ``name``.

    >>> float_array("x", [1, 2]).dtype
    dtype('float64')
    """
    if type(value).__module__.startswith("torch"):
        if getattr(value, "requires_grad", False):
            raise BadValue(name, "a tensor that requires grad", "an array without gradient",
                           f" (call {name}.detach(); this function does not differentiate)")
        value = value.detach().cpu().numpy()
    if isinstance(value, str | bytes):
        raise BadValue(name, value, "an array of real numbers")
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise BadValue(name, value, "an array of real numbers") from None
    if array.dtype.kind not in "biuf":
        raise BadValue(name, value, "an array of real numbers")
    return array.astype(np.float64)


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def env_flag(name: str, environ: dict[str, str] | None = None) -> bool:
    """The environment variable ``name`` read as a switch: ``1``, ``true`` or ``yes`` turn it on;
    ``0``, ``false``, ``no``, the empty string or no variable leave it off (case and surrounding
    spaces ignored). Anything else is refused, so that a typo never silently runs the other mode.

    >>> env_flag("LABKIT_QUICK", {"LABKIT_QUICK": "Yes"}), env_flag("LABKIT_QUICK", {})
    (True, False)
    >>> env_flag("X", {"X": "2"})
    Traceback (most recent call last):
    ...
    labkit._checks.BadValue: X must be one of 1, true, yes, 0, false, no or empty, got '2'
    """
    raw = (os.environ if environ is None else environ).get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadValue(name, raw, "one of 1, true, yes, 0, false, no or empty")
