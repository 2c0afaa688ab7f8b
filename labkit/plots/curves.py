"""Curves over generator iterations: every seed and their mean with the convergence verdict,
means with the seeds' range, the critic's W estimate median-filtered as in the paper's Figures 3
and 4, and tables of such curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit.metrics import median_filter
from labkit.plots._style import SMALL, _baseline_lines, _legend_below, _log_axis, _values, _wrap


def convergence_panels(runs: Mapping[str, Mapping], *, baselines: Mapping[str, float] | None = None,
                       ylabel: str = "exact W1", title: str | None = None) -> Figure:
    """Every seed's curve and their mean, one panel per method, with the convergence verdict.

    Parameters
    ----------
    runs : mapping of panel title -> {"iterations": (T,), "values": (S, T), "verdict": str,
        "from_iteration": float or None}
        One curve per seed (thin) and their mean (thick); the last quarter of training, over
        which ``labkit.study.convergence`` judges, is shaded from ``from_iteration``.
    baselines : mapping of name -> value, optional
        Horizontal lines (the baselines' W1 at the curves' sample size).
    ylabel, title : str
    """
    if not runs:
        raise ValueError("runs must hold at least one method")
    cols = min(4, len(runs))
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.3 * rows + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    for ax, (name, r) in zip(axes.flat, runs.items(), strict=False):
        its, values = np.asarray(r["iterations"], float), np.atleast_2d(_values(np.ravel(
            r["values"])).reshape(np.shape(r["values"])))
        for curve in values:
            ax.plot(its, curve, lw=0.6, alpha=0.5, color="C0")
        ax.plot(its, np.nanmean(values, 0), lw=2, color="C0", label="mean over seeds")
        if r.get("from_iteration") is not None:
            ax.axvspan(r["from_iteration"], its[-1], color="0.9", zorder=0,
                       label="last quarter (the criterion)")
        _baseline_lines(ax, baselines)
        _log_axis(ax)
        ax.set_title(f"{_wrap(name, 26)}\n{r['verdict']}", fontsize=SMALL)
        ax.tick_params(labelsize=SMALL)
    for ax in axes[-1]:
        ax.set_xlabel("generator iterations", fontsize=SMALL)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=SMALL)
    for ax in axes.flat[len(runs):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=SMALL + 2)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    _legend_below(fig, axes, ncol=4)
    return fig


def mean_curves(panels: Mapping[str, Mapping[str, tuple]], *, ylabel: str,
                yscale: str = "linear", zero_line: bool = False,
                baselines: Mapping[str, float] | None = None,
                title: str | None = None) -> Figure:
    """Curves over training, mean over seeds with the seeds' range shaded, one panel each.

    Parameters
    ----------
    panels : mapping of panel title -> {line label: (iterations (T,), values (S, T))}
    ylabel : str
    yscale : {"linear", "log"}
    zero_line : bool
        Draw y = 0 (cosines, estimates that change sign).
    baselines : mapping of name -> value, optional
        Horizontal lines in every panel.
    title : str, optional
    """
    if not panels:
        raise ValueError("panels must hold at least one panel")
    fig, axes = plt.subplots(1, len(panels), figsize=(min(10, 4.2 * len(panels)), 3.6),
                             squeeze=False)
    n_lines = max(len(lines) for lines in panels.values())
    for ax, (panel, lines) in zip(axes[0], panels.items(), strict=True):
        for k, (label, (its, values)) in enumerate(lines.items()):
            values = np.atleast_2d(np.asarray(values, dtype=float))
            colour = f"C{k % 10}"
            ax.plot(its, np.nanmean(values, 0), lw=1.6, color=colour, label=label)
            if len(values) > 1:
                ax.fill_between(its, np.nanmin(values, 0), np.nanmax(values, 0), color=colour,
                                alpha=0.15, lw=0)
        if zero_line:
            ax.axhline(0, color="k", lw=0.6)
        _baseline_lines(ax, baselines)
        if yscale == "log":
            _log_axis(ax)
        ax.set_xlabel("generator iterations", fontsize=SMALL)
        ax.set_ylabel(ylabel, fontsize=SMALL)
        ax.set_title(panel, fontsize=SMALL + 1)
        ax.tick_params(labelsize=SMALL)
    if title:
        fig.suptitle(title, fontsize=SMALL + 2)
    extra = n_lines + len(baselines or {})
    fig.tight_layout(rect=(0, 0.05 + 0.045 * (-(-extra // 3)), 1, 1))
    _legend_below(fig, axes)
    return fig


def w_estimate_curves(curves: Mapping[str, tuple], *, width: int = 101,
                      title: str | None = None, swd: Mapping[str, tuple] | None = None) -> Figure:
    """The critic's W estimate against generator iterations, as the paper's Figures 3 and 4.

    Parameters
    ----------
    curves : mapping of label -> (iterations, w_estimate)
        One line per run, each median-filtered over ``width`` iterations (raw values faint).
    width : int, default 101
        The paper's filter width.
    title : str, optional
        Say which data and device produced the curves.
    swd : mapping of label -> (iterations, swd), optional
        The image metric at the evaluations, drawn in a second panel on the same iteration axis,
        so that the W estimate and sample quality can be read together.
    """
    if not curves:
        raise ValueError("curves must hold at least one run")
    panels = 2 if swd else 1
    fig, axes = plt.subplots(panels, 1, figsize=(7, 3.2 * panels), sharex=True, squeeze=False)
    ax = axes[0, 0]
    for k, (label, (its, w)) in enumerate(curves.items()):
        its, w = np.asarray(its, dtype=float), np.asarray(w, dtype=float)
        used = min(width, len(w) - 1 + len(w) % 2) or 1  # a short run: the longest odd window
        ax.plot(its, w, color=f"C{k}", alpha=0.2, lw=0.6)
        ax.plot(its, median_filter(w, used), color=f"C{k}", label=f"{label} (median of {used})")
    ax.set_ylabel("W estimate  (-Loss_D)")
    ax.legend(fontsize=8)
    if swd:
        for k, (label, (its, values)) in enumerate(swd.items()):
            axes[1, 0].plot(its, values, "o-", color=f"C{k}", ms=3, label=label)
        axes[1, 0].set_ylabel("SWD x 1e3 (lower is better)")
        axes[1, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("generator iterations")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def curve_table(cells: Mapping[str, Mapping[str, Mapping[str, tuple]]], rows: Mapping[str, str],
                *, title: str, styles: Mapping[str, Mapping] | None = None,
                log_rows: Sequence[str] = (), width: float = 10.0) -> Figure:
    """Training curves in a table of panels sharing the iteration axis per column.

    Parameters
    ----------
    cells : mapping of column title -> {row key -> {line label -> (x, y) or (x, y, raw)}}
        A third array ``raw`` is drawn faint under ``y`` in the same colour (the unfiltered
        estimate under its median, as the paper's Figures 3 and 4); the panel's y range is
        then the filtered lines' (with a margin), so that the raw spikes do not squash them.
        A row missing from a column leaves its panel empty.
    rows : mapping of row key -> y-axis label, in display order
    title : str
        Say which data and which device produced the curves.
    styles : mapping of line label -> matplotlib keyword arguments (colour, line style, ...)
    log_rows : row keys drawn on a log scale
    width : figure width in inches (the height follows the number of rows)
    """
    if not cells or not rows:
        raise ValueError("cells and rows must each hold at least one entry")
    styles = styles or {}
    fig, axes = plt.subplots(len(rows), len(cells), squeeze=False, sharex="col",
                             figsize=(width, 2.3 * len(rows) + 0.8))
    for j, (column, panels) in enumerate(cells.items()):
        for i, (row, ylabel) in enumerate(rows.items()):
            ax = axes[i, j]
            main = []
            for k, (label, line) in enumerate(panels.get(row, {}).items()):
                style = {"color": f"C{k}", "lw": 1.2, **styles.get(label, {})}
                if len(line) == 3:
                    ax.plot(line[0], line[2], color=style["color"], alpha=0.15, lw=0.5)
                main += [v for v in line[1] if v is not None and np.isfinite(v)]
                ax.plot(line[0], line[1], label=label, **style)
            if main and any(len(line) == 3 for line in panels.get(row, {}).values()):
                low, high = min(main), max(main)  # the raw values' spikes may leave the frame
                pad = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
                ax.set_ylim(low - pad, high + pad)
            if row in log_rows:
                _log_axis(ax)
            if i == 0:
                ax.set_title(column, fontsize=9)
            if j == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            if i == len(rows) - 1:
                ax.set_xlabel("generator iterations", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 0 and ax.lines:
                ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
