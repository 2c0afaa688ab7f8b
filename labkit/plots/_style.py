"""What every figure shares: the colours and styles, the small font of the study figures, the
checks of point arrays, log axes labelled with plain numbers, and legends below the panels."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

#: Colours of the usual quantities, shared by every figure so that W is always the same blue.
COLOURS = {"W": "C0", "JS": "C1", "KL": "C3", "TV": "C2", "W1_sample": "C4"}


#: Smallest font of the notebook-03 figures, in points (readable at 100% zoom).
SMALL = 9


#: Line styles and colours of the two baselines (``labkit.study.BASELINES``) in every figure.
BASELINE_STYLES = {"floor": {"color": "0.35", "ls": ":"},
                   "support only": {"color": "C3", "ls": "--"}}


def _as_points(name: str, points) -> np.ndarray | None:
    """Return ``points`` as a float array of shape (n, 2), or None; raise ValueError otherwise."""
    if points is None:
        return None
    arr = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got shape {arr.shape}")
    return arr


def _values(values) -> np.ndarray:
    """A list that may hold None (not measured) as a float array with nan there."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _wrap(label: str, width: int = 20) -> str:
    """``label`` broken into lines of about ``width`` characters (panel titles, row labels)."""
    import textwrap

    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def _log_axis(ax, axis: str = "y") -> None:
    """A log scale labelled with plain numbers at 1, 2 and 5 times the powers of ten."""
    from matplotlib import ticker

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


def _off(axes) -> None:
    for ax in axes:
        ax.axis("off")


def _baseline_lines(ax, levels: Mapping[str, float] | None, vertical: bool = False) -> None:
    """Dashed lines at the baselines' values, labelled for the legend."""
    for name, value in (levels or {}).items():
        style = BASELINE_STYLES.get(name, {"color": "0.5", "ls": "--"})
        line = ax.axvline if vertical else ax.axhline
        line(value, lw=1.2, label=f"baseline: {name}", **style)


def _legend_below(fig: Figure, axes, ncol: int = 3) -> None:
    """One legend for the figure, below the panels (never over a curve)."""
    handles, labels = {}, {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles[lab], labels[lab] = h, lab
    if handles:
        fig.legend(list(handles.values()), list(labels), loc="lower center", ncol=ncol,
                   fontsize=SMALL, frameon=False, bbox_to_anchor=(0.5, 0.0))
