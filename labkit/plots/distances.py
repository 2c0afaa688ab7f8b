"""Distances against a parameter: Example 1's closed forms and samples (the paper's Figure 1),
sample-based estimates against the sample size, and gradient descent on each distance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit import _checks
from labkit.plots._style import COLOURS, _as_points


def example1_setup(theta: float, real=None, fake=None, *, matching: bool = False,
                   ax=None) -> Figure:
    """Picture of Example 1: the supports of P0 and P_theta as two vertical segments.

    P0 is the law of (0, Z) and P_theta the law of (theta, Z), Z ~ U[0, 1] (paper, Example 1).

    Parameters
    ----------
    theta : float
        Horizontal position of the generated segment.
    real, fake : array-like or torch.Tensor of shape (n, 2), optional
        Samples of P0 and P_theta drawn on top of the segments.
    matching : bool, default False
        If True (and ``real``, ``fake`` have the same length), join ``real[i]`` to ``fake[i]``:
        for samples sharing z that is the optimal transport plan, every arrow of length abs(theta).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    theta = _checks.finite_real("theta", theta)
    real, fake = _as_points("real", real), _as_points("fake", fake)
    if matching and (real is None or fake is None or len(real) != len(fake)):
        raise ValueError("matching=True needs real and fake samples of the same length")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
    else:
        fig = ax.figure
    ax.plot([0, 0], [0, 1], color="k", lw=4, alpha=0.35, solid_capstyle="butt",
            label=r"support of $\mathbb{P}_0$")
    ax.plot([theta, theta], [0, 1], color=COLOURS["W"], lw=4, alpha=0.35,
            solid_capstyle="butt", label=r"support of $\mathbb{P}_\theta$")
    if matching:
        for (x0, y0), (x1, y1) in zip(real, fake, strict=True):
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.6})
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=10, color="k", zorder=3,
                   label=r"samples of $\mathbb{P}_0$")
    if fake is not None:
        ax.scatter(fake[:, 0], fake[:, 1], s=10, color=COLOURS["W"], zorder=3,
                   label=r"samples of $\mathbb{P}_\theta$")
    half = max(1.0, abs(theta)) + 0.25
    ax.set(xlim=(-half, half), ylim=(-0.1, 1.1), xlabel="first coordinate",
           ylabel="second coordinate = z", title=rf"Example 1, $\theta$ = {theta:g}")
    ax.legend(loc="lower left", fontsize="small")
    return fig


def _draw_curves(ax, theta: np.ndarray, curves: Mapping[str, np.ndarray],
                 isolated: Mapping[str, tuple] | None, *,
                 label_isolated: bool = False) -> dict[str, float]:
    """Draw ``curves`` (and their isolated points) on ``ax``; return the y drawn for +inf.

    With ``label_isolated`` each isolated point gets a legend entry such as "JS(0) = 0".
    """
    finite = [np.asarray(v, dtype=float)[np.isfinite(v)] for v in curves.values()]
    finite += [np.asarray(y, dtype=float) for _, y in (isolated or {}).values()]
    top = max([float(np.max(f)) for f in finite if f.size] + [1e-12])
    ceiling = 1.12 * top
    inf_at = {}
    for label, values in curves.items():
        y = np.asarray(values, dtype=float)
        if y.shape != theta.shape:
            raise ValueError(f"curves[{label!r}] must have shape {theta.shape}, got {y.shape}")
        shown, name = y, label
        if np.isposinf(y).any():
            shown = np.where(np.isposinf(y), ceiling, y)
            name = f"{label} (+inf, drawn as the top line)"
            inf_at[label] = ceiling
        ax.plot(theta, shown, color=COLOURS.get(label), lw=2, label=name)
    for label, (x, y) in (isolated or {}).items():
        name = ", ".join(f"{label}({a:g}) = {b:g}" for a, b in zip(x, y, strict=True))
        ax.plot(x, y, "o", color=COLOURS.get(label), ms=6, zorder=4,
                label=name if label_isolated else None)
    ax.set(xlabel=r"$\theta$", ylim=(-0.05 * top, 1.2 * top))
    ax.axhline(0, color="0.8", lw=0.8, zorder=0)
    return inf_at


def distance_curves(theta, curves: Mapping[str, np.ndarray], *,
                    panels: Sequence[Sequence[str]] | None = None,
                    isolated: Mapping[str, tuple] | None = None,
                    samples: Mapping[str, tuple] | None = None,
                    titles: Sequence[str] | None = None) -> Figure:
    """Distances against theta, one panel per group of curves (the paper's Figure 1 is two panels).

    Parameters
    ----------
    theta : array-like, shape (m,)
        Grid of theta values (a grid that skips the discontinuity, e.g. theta = 0, keeps jumps
        visible; put the value at the discontinuity in ``isolated``).
    curves : dict of str to array-like, shape (m,)
        Curve label to values; +inf is drawn as a line above every finite value.
    panels : list of lists of str, optional
        Which curves share a panel; default: all curves in one panel.
    isolated : dict of str to (x, y), optional
        Isolated points of a curve, drawn as dots in its colour (e.g. JS = 0 at theta = 0).
    samples : dict of str to (x, y), optional
        Sample-based estimates, drawn as markers in the first panel.
    titles : list of str, optional
        One title per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 1 or theta.size < 2:
        raise ValueError(f"theta must be a 1-D grid of at least 2 values, got shape {theta.shape}")
    if not curves:
        raise ValueError("curves must name at least one curve")
    panels = [list(curves)] if panels is None else [list(p) for p in panels]
    for group in panels:
        for label in group:
            if label not in curves:
                raise ValueError(f"panels names {label!r}, which is not in curves {list(curves)}")
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"titles must have one entry per panel ({len(panels)}), got {len(titles)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6),
                             layout="constrained", squeeze=False)
    for i, (ax, group) in enumerate(zip(axes[0], panels, strict=True)):
        points = {k: v for k, v in (isolated or {}).items() if k in group}
        _draw_curves(ax, theta, {k: curves[k] for k in group}, points, label_isolated=True)
        if i == 0:
            for j, (label, (x, y)) in enumerate((samples or {}).items()):
                ax.plot(x, y, ls="none", marker="osD^v<>"[j % 7], ms=5, mfc="none",
                        color=f"C{(j + 4) % 10}", label=label)
        if titles is not None:
            ax.set_title(titles[i])
        # Headroom above the highest drawn value for a legend of that many entries.
        highest = max(float(np.max(line.get_ydata())) for line in ax.get_lines())
        share = min(0.6, 0.08 + 0.07 * len(ax.get_legend_handles_labels()[1]))
        bottom = ax.get_ylim()[0]
        ax.set_ylim(bottom, bottom + (highest - bottom) / (1 - share))
        ax.legend(fontsize="small", loc="upper center")
    return fig


def sample_convergence(ns, estimates: Mapping[str, np.ndarray], truth: Mapping[str, float], *,
                       rates: Sequence[float] = (0.5, 1.0), exact_below: float = 1e-9) -> Figure:
    """Sample-based estimates against the sample size n: the values and, on log-log axes, the error.

    Parameters
    ----------
    ns : array-like of int, shape (k,)
        Sample sizes.
    estimates : dict of str to array-like, shape (k, reps)
        For each setting, ``reps`` repeated estimates at every n.
    truth : dict of str to float
        The exact value for each setting (same keys as ``estimates``).
    rates : sequence of float, default (0.5, 1.0)
        Reference slopes n^(-rate) drawn as dotted lines in the error panel.
    exact_below : float, default 1e-9
        A setting whose errors are all below this is exact up to floating-point rounding: it is
        named in the legend of the error panel instead of being drawn at 1e-16.

    Returns
    -------
    matplotlib.figure.Figure
        Left: mean estimate ± one standard deviation, with the truth dashed.
        Right: mean absolute error against n on log-log axes.
    """
    ns = np.asarray(ns, dtype=float)
    if ns.ndim != 1 or ns.size < 2 or (ns < 1).any():
        raise ValueError(f"ns must be at least 2 sample sizes >= 1, got {ns.tolist()}")
    if set(truth) != set(estimates):
        raise ValueError(f"truth keys {sorted(truth)} must equal estimates keys "
                         f"{sorted(estimates)}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained",
                                      width_ratios=(1, 1))
    largest = 0.0
    for j, (label, values) in enumerate(estimates.items()):
        est = np.asarray(values, dtype=float).reshape(len(ns), -1)
        colour = f"C{j % 10}"
        mean, std = est.mean(axis=1), est.std(axis=1)
        left.plot(ns, mean, "o-", color=colour, label=label)
        left.fill_between(ns, mean - std, mean + std, color=colour, alpha=0.15)
        left.axhline(truth[label], color=colour, ls="--", lw=1)
        err = np.abs(est - truth[label]).mean(axis=1)
        if (err < exact_below).all():
            right.plot([], [], "o-", color=colour,
                       label=f"{label}: exact (error < {exact_below:g})")
        else:
            shown = err > 0
            right.loglog(ns[shown], err[shown], "o-", color=colour, label=label)
            largest = max(largest, float(err[0]))
    left.set(xscale="log", xlabel="n (samples per distribution)", ylabel="estimate",
             title="sample-based exact W1 (mean ± std); dashed: truth")
    for k, rate in enumerate(rates):
        if largest > 0:
            right.loglog(ns, largest * (ns / ns[0]) ** -rate, ":", color="0.4", lw=1.2 + k,
                         label=f"slope -{rate:g} (n^-{rate:g})")
    right.set(xlabel="n (samples per distribution)", ylabel="mean |estimate - truth|",
              title="error against n (log-log)")
    left.legend(fontsize="small")
    right.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the curves
    return fig


def trajectories(paths: Mapping[str, np.ndarray], *, target: float | None = 0.0,
                 ylabel: str = r"$\theta$") -> Figure:
    """Parameter trajectories of gradient descent, one line per loss.

    Parameters
    ----------
    paths : dict of str to array-like, shape (steps + 1,)
        Loss label to the parameter value after each step (index 0 is the start).
    target : float or None, default 0.0
        Value the descent should reach, drawn dashed.
    ylabel : str
        Label of the parameter axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not paths:
        raise ValueError("paths must name at least one trajectory")
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    spare = iter([c for c in (f"C{k}" for k in range(10)) if c not in COLOURS.values()] * 10)
    dashes = iter([(0, (5, 3)), (2, (5, 3)), (4, (5, 3)), (0, (1, 2))] * 10)
    for label, path in paths.items():
        path = np.asarray(path, dtype=float)
        # Losses with a colour of their own (JS, TV, KL: usually flat) are dashed and staggered,
        # so that several flat lines on top of each other all stay visible.
        colour = COLOURS.get(label) or next(spare)
        ls = next(dashes) if label in COLOURS else "-"
        ax.plot(np.arange(path.size), path, ls=ls, lw=2, color=colour, label=label)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set(xlabel="gradient step", ylabel=ylabel, title="gradient descent on the loss")
    ax.legend(fontsize="small")
    return fig


def _marker_series(ax, points: Mapping[str, tuple], start: int = 4) -> None:
    """Draw each (x, y) of ``points`` as open markers in a colour of its own."""
    for j, (label, (x, y)) in enumerate(points.items()):
        ax.plot(x, y, ls="none", marker="osD^v<>"[j % 7], ms=6, mfc="none",
                color=f"C{(j + start) % 10}", label=label)


def trained_distances(theta_grid, closed: Mapping[str, np.ndarray],
                      w_points: Mapping[str, tuple], js_points: Mapping[str, tuple]) -> Figure:
    """The paper's Figure 1 with trained networks: W1 estimates next to |theta|, JS next to log 2.

    Parameters
    ----------
    theta_grid : array-like, shape (m,)
        Grid of the closed forms (skipping theta = 0).
    closed : dict with "W" and "JS", arrays of shape (m,)
        Closed forms of Example 1 on the grid.
    w_points, js_points : dict of str to (x, y)
        Estimates at a few theta for the left (W) and right (JS) panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    theta_grid = np.asarray(theta_grid, dtype=float)
    fig, (w_ax, js_ax) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
    for ax, key, points, title in ((w_ax, "W", w_points, "Earth Mover: estimates of W1"),
                                   (js_ax, "JS", js_points, "Jensen-Shannon (nats)")):
        ax.plot(theta_grid, closed[key], color=COLOURS[key], lw=2, label=f"{key} (closed form)")
        ax.plot([0], [0], "o", color=COLOURS[key], ms=5)
        _marker_series(ax, points)
        ax.set(xlabel=r"$\theta$", title=title)
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.legend(fontsize="small", loc="upper center")
    js_ax.set_ylim(-0.05, 1.0)
    return fig
