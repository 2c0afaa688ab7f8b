"""2-D samples: generated points over the real ones and the mixture centres, and snapshots of
training (samples over the critic's contour, one panel per method and checkpoint)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit.plots._style import SMALL, _as_points, _off, _values, _wrap


def toy_samples(real, fakes: Mapping[str, object], centers=None, *, title: str | None = None,
                max_points: int = 2500) -> Figure:
    """Generated 2-D samples under the real ones and the centres, one panel per run (e.g. per
    seed), 4.4 inches a panel.

    The generated cloud is drawn first and faint, so that the targets stay visible on top of
    it: the real samples (orange), then the mixture centres (black crosses).

    Parameters
    ----------
    real : array or tensor, shape (n, 2)
        Samples of the target.
    fakes : mapping of panel title -> array or tensor of shape (m, 2)
        Generated samples, one panel each (4 panels per row).
    centers : array or tensor, shape (K, 2), optional
        Mixture centres, marked with crosses.
    title : str, optional
        Title above all panels.
    max_points : int
        At most this many points of each set are drawn.
    """
    real = _as_points("real", real)[:max_points]
    centers = _as_points("centers", centers)
    if not fakes:
        raise ValueError("fakes must hold at least one set of samples")
    cols = min(4, len(fakes))
    rows = -(-len(fakes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.4 * rows + 0.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for ax, (name, fake) in zip(axes.flat, fakes.items(), strict=False):
        fake = _as_points(f"fakes[{name!r}]", fake)[:max_points]
        ax.scatter(*fake.T, s=5, c="C0", alpha=0.3, lw=0, label="generated", zorder=1)
        ax.scatter(*real.T, s=5, c="C1", alpha=0.8, lw=0, label="real", zorder=2)
        if centers is not None:
            ax.scatter(*centers.T, marker="+", c="k", s=150, lw=1.5, label="centres", zorder=3)
        ax.set_title(str(name))
        ax.set(xlabel="x₁", ylabel="x₂")
        ax.set_aspect("equal", adjustable="box")
        ax.label_outer()
    for ax in axes.flat[len(fakes):]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize="small", framealpha=0.9)
    if title:
        fig.suptitle(title)
    return fig


def training_snapshots(runs: Mapping[str, Sequence[Mapping]], centers, grid, *,
                       columns: Sequence[int] | None = None,
                       baselines: Mapping[str, object] | None = None,
                       title: str | None = None) -> Figure:
    """Samples over training with the critic's contour: one row per method, one column per
    snapshot; the baselines' samples in one more row.

    Parameters
    ----------
    runs : mapping of row label -> sequence of snapshots
        As ``labkit.study`` records them: ``{"iteration", "samples" (n, 2), "critic" (G*G,)}``.
    centers : array (K, 2)
        Mixture centres, drawn as black crosses.
    grid : array (G * G, 2)
        The points the critic values belong to, x fastest (``labkit.study.grid_points``); the
        panels show this square, samples outside it are cut off.
    columns : sequence of int, optional
        Indices of the snapshots to show (default all).
    baselines : mapping of name -> array (n, 2), optional
        Samples of the baselines (``floor``: real points; ``support only``), drawn without a
        critic in a last row.
    title : str, optional
    """
    if not runs:
        raise ValueError("runs must hold at least one method's snapshots")
    centers, grid = _as_points("centers", centers), _as_points("grid", grid)
    baselines = {k: _as_points(f"baselines[{k!r}]", v) for k, v in (baselines or {}).items()}
    n_cols = len(columns) if columns is not None else max(len(s) for s in runs.values())
    shape = (len(runs) + bool(baselines), max(n_cols, len(baselines)))
    fig, axes = plt.subplots(*shape, figsize=(2.0 * shape[1] + 0.8, 2.0 * shape[0] + 0.6),
                             squeeze=False)
    for line, (label, snaps) in zip(axes, runs.items(), strict=False):
        picked = [snaps[i] for i in columns] if columns is not None else list(snaps)
        for ax, snap in zip(line, picked, strict=False):
            _snapshot_panel(ax, snap, centers, grid)
            ax.set_title(f"iteration {snap['iteration']}", fontsize=SMALL)
        _off(line[len(picked):])
        line[0].set_ylabel(_wrap(label), fontsize=SMALL)
    if baselines:
        _baseline_panels(axes[-1], baselines, centers, grid)
    _title_above(fig, title)
    return fig


def checkpoint_panels(runs: Mapping[str, Sequence[Mapping]], index: int, centers, grid, *,
                      baselines: Mapping[str, object] | None = None, cols: int = 5) -> Figure:
    """Every method at one snapshot (the checkpoint slider's picture), ``cols`` panels a row,
    then the baselines; the iteration is the figure's title.

    Parameters
    ----------
    runs, centers, grid, baselines
        As in :func:`training_snapshots`.
    index : int
        Which snapshot of each method.
    cols : int, default 5
    """
    if not runs:
        raise ValueError("runs must hold at least one method's snapshots")
    centers, grid = _as_points("centers", centers), _as_points("grid", grid)
    baselines = {k: _as_points(f"baselines[{k!r}]", v) for k, v in (baselines or {}).items()}
    n = len(runs) + len(baselines)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, min(cols, n), figsize=(1.9 * min(cols, n), 2.15 * rows + 0.4),
                             squeeze=False)
    flat = list(axes.flat)
    iterations = set()
    for ax, (label, snaps) in zip(flat, runs.items(), strict=False):
        _snapshot_panel(ax, snaps[index], centers, grid)
        iterations.add(snaps[index]["iteration"])
        ax.set_title(_wrap(label, 22), fontsize=SMALL)
    _baseline_panels(flat[len(runs):], baselines, centers, grid)
    _title_above(fig, f"iteration {', '.join(str(i) for i in sorted(iterations))}")
    return fig


def _title_above(fig: Figure, title: str | None) -> None:
    """Lay the panels out and put ``title`` above them, clear of the panels' own titles."""
    height = fig.get_size_inches()[1]
    if title:
        fig.suptitle(title, fontsize=SMALL + 2)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height if title else 1))


def _points_panel(ax, centers, samples, grid_shape=None, critic=None, extent=None) -> None:
    """One 2-D panel: the critic's filled contour (if given), the centres, the samples."""
    if critic is not None and np.isfinite(critic).any():
        gx, gy = grid_shape
        ax.contourf(gx, gy, critic.reshape(gx.shape), levels=12, cmap="coolwarm", alpha=0.6)
    ax.scatter(*centers.T, marker="+", c="k", s=30, lw=0.8)
    ax.scatter(*samples.T, s=3, c="C2")
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[0], extent[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _grid_shape(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = int(round(len(grid) ** 0.5))
    return grid[:, 0].reshape(size, size), grid[:, 1].reshape(size, size)


def _snapshot_panel(ax, snap: Mapping, centers: np.ndarray, grid: np.ndarray) -> None:
    gx, gy = _grid_shape(grid)
    samples = _as_points("samples", np.array(snap["samples"], dtype=float))
    _points_panel(ax, centers, samples, (gx, gy), _values(snap["critic"]), (gx.min(), gx.max()))


def _baseline_panels(axes, baselines: Mapping[str, np.ndarray], centers: np.ndarray,
                     grid: np.ndarray) -> None:
    """The baselines' samples (no critic) in ``axes``; the axes left over are switched off."""
    gx, _ = _grid_shape(grid)
    for ax, (name, samples) in zip(axes, baselines.items(), strict=False):
        _points_panel(ax, centers, samples, extent=(gx.min(), gx.max()))
        ax.set_title(f"baseline:\n{name}", fontsize=SMALL)
    _off(axes[len(baselines):])
