"""Matplotlib figures for the notebooks and widgets of WGAN Lab.

Every public function returns a :class:`matplotlib.figure.Figure` built with the object API
(``fig, ax = plt.subplots(...)``), so it works under Agg, inline and interactive backends alike.
Infinite values (KL between disjoint supports) are drawn as a line above every finite value and
say so in the legend. :class:`Example1View` is the theta explorer's figure, updated in place.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from labkit import _checks, rundir
from labkit.metrics import median_filter

__all__ = [
    "BASELINE_STYLES",
    "checkpoint_panels",
    "ClipExplorerView",
    "convergence_panels",
    "curve_table",
    "grid_table",
    "estimate_vs_exact",
    "mean_curves",
    "rank_tracking",
    "training_snapshots",
    "Example1View",
    "distance_curves",
    "figure2",
    "gradient_agreement",
    "layer_study",
    "loss_tracks",
    "example1_setup",
    "image_grid",
    "median_filter",
    "sample_convergence",
    "sample_grids",
    "save_image_grid",
    "toy_samples",
    "trained_distances",
    "trajectories",
    "w_estimate_curves",
]

#: Colours of the usual quantities, shared by every figure so that W is always the same blue.
COLOURS = {"W": "C0", "JS": "C1", "KL": "C3", "TV": "C2", "W1_sample": "C4"}


def _as_points(name: str, points) -> np.ndarray | None:
    """Return ``points`` as a float array of shape (n, 2), or None; raise ValueError otherwise."""
    if points is None:
        return None
    arr = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got shape {arr.shape}")
    return arr


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


def _canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas's current pixels as PNG bytes, with light compression (a widget redraws often)."""
    buf = io.BytesIO()
    PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buf, format="png",
                                                                         compress_level=1)
    return buf.getvalue()


class Example1View:
    """The theta explorer's figure: the two segments with samples, and the four closed forms.

    Built once on a bare Agg canvas (not registered with pyplot, so notebooks never show it twice).
    The static part (axes, curves, legends) is rendered once and kept as a background;
    :meth:`update` moves the few moving artists in place (``set_data`` / ``set_offsets``) and
    :meth:`png` blits them onto the background, which keeps one slider move well under 0.2 s.

    Parameters
    ----------
    theta_grid : array-like, shape (m,)
        Grid for the closed-form curves (skip theta = 0 and pass its values in ``at_zero``).
    curves : dict of str to array-like, shape (m,)
        Closed forms on the grid, e.g. {"W": ..., "JS": ..., "KL": ..., "TV": ...}.
    at_zero : dict of str to float
        The value of each curve at theta = 0, drawn as a dot.
    dpi : int, default 72
        Resolution of :meth:`png`.
    """

    def __init__(self, theta_grid, curves: Mapping[str, np.ndarray], at_zero: Mapping[str, float],
                 *, dpi: int = 72):
        theta_grid = np.asarray(theta_grid, dtype=float)
        if set(at_zero) != set(curves):
            raise ValueError(f"at_zero keys {sorted(at_zero)} must equal curves keys "
                             f"{sorted(curves)}")
        self.fig = Figure(figsize=(9.0, 3.4), dpi=dpi, layout="constrained")
        self._canvas = FigureCanvasAgg(self.fig)
        lines_ax, curves_ax = self.fig.subplots(1, 2, width_ratios=(1, 1.5))
        lines_ax.plot([0, 0], [0, 1], color="k", lw=4, alpha=0.3, solid_capstyle="butt")
        (self._segment,) = lines_ax.plot([0, 0], [0, 1], color=COLOURS["W"], lw=4, alpha=0.3,
                                         solid_capstyle="butt")
        self._real = lines_ax.scatter([], [], s=6, color="k", label=r"$\mathbb{P}_0$ samples")
        self._fake = lines_ax.scatter([], [], s=6, color=COLOURS["W"],
                                      label=r"$\mathbb{P}_\theta$ samples")
        lines_ax.set(xlim=(-1.2, 1.2), ylim=(-0.05, 1.05), xlabel="x", ylabel="z",
                     title="samples (independent z)")
        lines_ax.legend(loc="lower left", fontsize="small")
        isolated = {k: ([0.0], [v]) for k, v in at_zero.items()}
        self._inf_at = _draw_curves(curves_ax, theta_grid, curves, isolated)
        self._cursor = curves_ax.axvline(0, color="0.3", ls=":", lw=1)
        self._labels = list(curves)
        self._dots = curves_ax.scatter(np.zeros(len(curves)), np.zeros(len(curves)), s=40,
                                       c=[COLOURS.get(k, "k") for k in curves],
                                       edgecolors="k", zorder=5)
        curves_ax.set_title("closed forms (Example 1)")
        curves_ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        self._moving = (self._segment, self._real, self._fake, self._cursor, self._dots)
        for artist in self._moving:
            artist.set_animated(True)
        self._canvas.draw()  # lays out and renders everything that does not move, once
        self.fig.set_layout_engine("none")
        self._background = self._canvas.copy_from_bbox(self.fig.bbox)

    def update(self, theta: float, real, fake, values: Mapping[str, float]) -> None:
        """Move the generated segment, the samples, the cursor and the dots to ``theta``.

        Parameters
        ----------
        theta : float
            Current theta.
        real, fake : array-like or torch.Tensor, shape (n, 2)
            Samples of P0 and P_theta.
        values : dict of str to float
            Current value of every curve (+inf goes to the line drawn for it).
        """
        theta = _checks.finite_real("theta", theta)
        real, fake = _as_points("real", real), _as_points("fake", fake)
        self._segment.set_data([theta, theta], [0, 1])
        self._real.set_offsets(real)
        self._fake.set_offsets(fake)
        self._cursor.set_xdata([theta, theta])
        ys = [self._inf_at[k] if np.isposinf(values[k]) else values[k] for k in self._labels]
        self._dots.set_offsets(np.column_stack([np.full(len(ys), theta), ys]))

    def png(self) -> bytes:
        """Render the figure to PNG bytes: the stored background plus the moving artists."""
        self._canvas.restore_region(self._background)
        for artist in self._moving:
            artist.axes.draw_artist(artist)
        return _canvas_png(self._canvas)


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


# --------------------------------------------------------------------------- notebook 02


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


def figure2(x, densities: Mapping[str, np.ndarray], discriminator: Mapping[str, np.ndarray],
            critics: Mapping[str, np.ndarray], decay: Mapping[str, tuple]) -> Figure:
    """The paper's Figure 2, each function on its own scale, and the gradient at the fake samples
    against training steps.

    Parameters
    ----------
    x : array-like, shape (m,)
        Grid of the 1-D input.
    densities : dict of str to array (m,)
        The real and fake densities (first real, then fake).
    discriminator : dict of str to array (m,)
        D(x) in [0, 1], drawn over the densities scaled to a peak of 1 (top left).
    critics : dict of str to array (m,)
        WGAN critics f(x), one panel each on its own, unscaled axis, over bands where each
        density is above 1% of its peak (bottom row).
    decay : dict of str to (steps, norms)
        Mean gradient norm at the fake samples after each number of training steps; drawn on
        log-log axes (step 0 drawn at 1; top right).

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(x, dtype=float)
    fig, axes = plt.subplots(2, max(2, len(critics)), figsize=(11, 7.2), layout="constrained")
    top_left, right = axes[0, 0], axes[0, 1]
    for ax in axes[0, 2:]:
        ax.axis("off")
    shades = [f"C{j + 2}" for j in range(len(densities))]
    for (label, p), colour in zip(densities.items(), shades, strict=True):
        p = np.asarray(p, dtype=float)
        top_left.fill_between(x, 0, p / p.max(), color=colour, alpha=0.25,
                              label=f"{label} (scaled to peak 1)")
    for j, (label, y) in enumerate(discriminator.items()):
        top_left.plot(x, y, lw=2, color=f"C{j}", label=label)
    top_left.set(xlabel="x", ylabel="D(x)  (densities scaled to peak 1)",
                 title="GAN discriminator (paper, Figure 2)")
    top_left.legend(fontsize="small", loc="center left")
    for j, (ax, (label, f)) in enumerate(zip(axes[1], critics.items(), strict=False)):
        for (name, p), colour in zip(densities.items(), shades, strict=True):
            p = np.asarray(p, dtype=float)
            inside = x[p > 0.01 * p.max()]
            ax.axvspan(inside.min(), inside.max(), color=colour, alpha=0.15,
                       label=f"where the {name.split()[0]} samples are")
        ax.plot(x, np.asarray(f, dtype=float), lw=2, color=f"C{j + len(discriminator)}",
                label=label)
        ax.set(xlabel="x", ylabel="f(x), unscaled", title=label)
        ax.legend(fontsize="small")
    for j, (label, (steps, norms)) in enumerate(decay.items()):
        steps = np.maximum(np.asarray(steps, dtype=float), 1)
        right.loglog(steps, norms, "o-", ms=3, color=f"C{j}", label=label)
    right.set(xlabel="training steps (step 0 drawn at 1)",
              ylabel="mean |d loss_G / dx| at the fake samples",
              title="the gradient the generator receives")
    right.legend(fontsize="small", loc="lower left")
    return fig


def loss_tracks(runs: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """Each run's loss-based estimate and the exact W1 over training (paper, Figures 3 and 4).

    Parameters
    ----------
    runs : dict of str to dict with "iteration", "estimate", "w1_exact" (arrays of one length)
        One panel per run: the estimate on the left axis, the exact W1 on a right axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not runs:
        raise ValueError("runs must hold at least one run")
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.8), layout="constrained",
                             squeeze=False)
    for ax, (label, run) in zip(axes[0], runs.items(), strict=True):
        ax.plot(run["iteration"], run["estimate"], color="C1", lw=1.5, label="critic's estimate")
        ax.set(xlabel="generator iteration", title=label)
        ax.set_ylabel("estimate from the critic's loss", color="C1")
        twin = ax.twinx()
        twin.plot(run["iteration"], run["w1_exact"], color=COLOURS["W"], lw=1.5)
        twin.set_ylabel("exact W1 (POT)", color=COLOURS["W"])
    return fig


def gradient_agreement(reports: Mapping[tuple, object], widths: Sequence[int],
                       n_critics: Sequence[int], constraints: Sequence[str]) -> Figure:
    """How well trained critics point the generator, against the exact OT gradient, and at what
    scale: one column per critic width, lines per constraint against n_critic.

    Parameters
    ----------
    reports : dict of (width, n_critic, constraint) -> CriticReport
        Each with ``cosine`` (mean cosine between grad f and -dW1/dx at the fake points) and
        ``ratio`` (estimate / exact W1).
    widths, n_critics, constraints : sequences
        The grid of ``reports``' keys, in display order.

    Returns
    -------
    matplotlib.figure.Figure
        Top row: mean cosine (1: the exact OT direction). Bottom row: estimate / exact W1 on a
        log scale (1: the critic estimates W1 itself).
    """
    fig, axes = plt.subplots(2, len(widths), figsize=(5.2 * len(widths) + 2, 6.2),
                             layout="constrained", sharex=True, squeeze=False)
    lowest = min(min(r.cosine for r in reports.values()), 0.0)  # a cosine can be negative
    for col, width in enumerate(widths):
        cos_ax, ratio_ax = axes[0, col], axes[1, col]
        for j, name in enumerate(constraints):
            picked = [reports[width, n, name] for n in n_critics]
            style = {"color": f"C{j}", "marker": "osD^v<>"[j % 7], "label": name}
            cos_ax.plot(n_critics, [r.cosine for r in picked], **style)
            ratio_ax.plot(n_critics, [r.ratio for r in picked], **style)
        cos_ax.set(title=f"critic width {width}", ylim=(lowest - 0.02, 1.02), xscale="log")
        ratio_ax.set(xlabel="n_critic (critic steps per generator iteration)", yscale="log")
        ratio_ax.axhline(1.0, color="0.6", ls="--", lw=1)
        ratio_ax.set_xticks(list(n_critics), labels=[str(n) for n in n_critics])
        ratio_ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_ylabel("mean cosine to the exact OT gradient")
    axes[1, 0].set_ylabel("estimate / exact W1 (the K)")
    axes[0, -1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def layer_study(reports: Mapping[str, object], clips: Mapping[str, float]) -> Figure:
    """Per-layer gradient norms and weight histograms of deep critics (WGAN-GP, Figure 1b).

    Parameters
    ----------
    reports : dict of str to CriticReport
        Each with ``layer_norms`` (L,) and ``weights`` (P,).
    clips : dict of str to float
        For the clipped settings, the clip value c, marked at +-c on their histogram.

    Returns
    -------
    matplotlib.figure.Figure
        Left: log gradient norm against layer (input first); a norm of exactly 0 is not drawn
        and the legend names the first such layer. Right: one weight histogram per setting.
    """
    if not reports:
        raise ValueError("reports must hold at least one setting")
    fig = plt.figure(figsize=(12, 4.2), layout="constrained")
    left_fig, right_fig = fig.subfigures(1, 2, width_ratios=(1, 1.3))
    ax = left_fig.subplots()
    for j, (label, rep) in enumerate(reports.items()):
        norms = np.asarray(rep.layer_norms, dtype=float)
        zero = np.flatnonzero(norms == 0) + 1
        if zero.size:  # a log axis has no 0: the line stops, and the legend says where
            label = f"{label} (0 from layer {zero[0]})"
        ax.semilogy(np.arange(1, norms.size + 1), np.where(norms > 0, norms, np.nan), "o-",
                    ms=3, color=f"C{j}", label=label)
    ax.set(xlabel="layer (1 = input)", ylabel="||dL/dW_layer||",
           title="gradient norm per layer (log scale)")
    ax.legend(fontsize="small")
    hist_axes = right_fig.subplots(1, len(reports), squeeze=False)[0]
    for j, (hax, (label, rep)) in enumerate(zip(hist_axes, reports.items(), strict=True)):
        hax.hist(np.asarray(rep.weights), bins=40, color=f"C{j}")
        if label in clips:
            for sign in (-1, 1):
                hax.axvline(sign * clips[label], color="k", ls=":", lw=1)
        hax.set_title(label, fontsize=9)
        hax.set_yticks([])
        hax.tick_params(axis="x", labelsize=7, labelrotation=45)
    right_fig.suptitle("weights (dotted: ±c)", fontsize=10)
    return fig


class ClipExplorerView:
    """The clipping explorer's figure, updated in place for each trained critic.

    Four panels on a bare Agg canvas (never shown twice by pyplot): the critic's values with the
    real and fake samples; at the fake points the direction the critic pushes them (grad f,
    black) over the exact OT direction (-dW1/dx, grey), both unit length; the histogram of the
    weights with ±c dotted (clipping only); the per-layer gradient norms on a log scale
    (WGAN-GP, Figure 1b), a norm of 0 left out.
    The layout is computed once; :meth:`update` changes the artists' data only.

    Parameters
    ----------
    real, fake : array-like, shape (n, 2)
        The fixed pair.
    descent : array-like, shape (n, 2)
        -dW1/dx at the fake points (from :func:`labkit.ot.w1_gradient`).
    extent : (float, float, float, float)
        (x_min, x_max, y_min, y_max) of the critic's grid.
    depth_max : int, default 6
        Largest number of hidden layers shown (the norm panel's x range).
    dpi : int, default 72
    """

    def __init__(self, real, fake, descent, extent, *, depth_max: int = 6, dpi: int = 72):
        real, fake = _as_points("real", real), _as_points("fake", fake)
        descent = _as_points("descent", descent)
        self.extent = tuple(float(v) for v in extent)
        self.fig = Figure(figsize=(13.0, 3.4), dpi=dpi, layout="constrained")
        self._canvas = FigureCanvasAgg(self.fig)
        critic_ax, push_ax, hist_ax, norm_ax = self.axes = self.fig.subplots(1, 4)
        self._image = critic_ax.imshow(np.zeros((2, 2)), origin="lower", extent=self.extent,
                                       cmap="RdBu_r", aspect="auto")
        self._contours = None
        every = slice(None, None, max(1, len(fake) // 64))
        self._every = every
        for ax in (critic_ax, push_ax):
            ax.scatter(*real.T, s=3, c="C1", label="real")
            ax.scatter(*fake.T, s=3, c="C0", label="fake")
            ax.set(xlim=self.extent[:2], ylim=self.extent[2:])
        critic_ax.set_title("critic f (red high) and samples", fontsize=9)
        critic_ax.legend(fontsize=7, loc="lower left")
        unit = descent / np.maximum(np.linalg.norm(descent, axis=1, keepdims=True), 1e-300)
        arrows = {"angles": "xy", "scale_units": "xy", "scale": 3.0}
        push_ax.quiver(*fake[every].T, *unit[every].T, color="0.6", width=0.012,
                       label="exact OT", **arrows)
        self._quiver = push_ax.quiver(*fake[every].T, *unit[every].T, color="k", width=0.005,
                                      label="critic", **arrows)
        push_ax.set_title("push on fake points: critic vs exact OT", fontsize=9)
        push_ax.legend(fontsize=7, loc="lower left")
        self._stairs = hist_ax.stairs([0.0], [-1.0, 1.0], fill=True, color="C2")
        self._clip_lines = [hist_ax.axvline(sign, color="k", ls=":", lw=1) for sign in (-1, 1)]
        self._hist_title = hist_ax.set_title("weights (dotted: ±c)", fontsize=9)
        hist_ax.set_yticks([])
        (self._norms,) = norm_ax.semilogy([1, 2], [1, 1], "o-", color="C3")
        norm_ax.yaxis.set_minor_formatter(NullFormatter())
        # The layout is computed once: lay it out with the widest tick labels the panel will
        # show (10^-30), so that later ones never run into the histogram.
        norm_ax.set(xlabel="layer (1 = input)", xlim=(0.5, depth_max + 1.5), ylim=(1e-30, 1e5))
        norm_ax.set_title("||dL/dW|| per layer", fontsize=9)
        self._title = self.fig.suptitle(" ", fontsize=10)
        self._canvas.draw()  # lay out once
        self.fig.set_layout_engine("none")

    def update(self, field, grad_fake, weights, layer_norms, clip: float | None,
               title: str) -> None:
        """Show one critic.

        Parameters
        ----------
        field : array-like, shape (k, k)
            Critic values on the k x k grid over ``extent`` (rows: y, columns: x).
        grad_fake : array-like, shape (n, 2)
            grad f at the fake points.
        weights : array-like, shape (P,)
        layer_norms : array-like, shape (L,)
        clip : float or None
            c, marked on the histogram; None for GP and SN.
        title : str
            Figure title (the setting and its numbers).
        """
        critic_ax, _, hist_ax, norm_ax = self.axes
        field = np.asarray(field, dtype=float)
        self._image.set_data(field)
        self._image.set_clim(field.min(), field.max())
        if self._contours is not None:
            self._contours.remove()
        x0, x1, y0, y1 = self.extent
        self._contours = critic_ax.contour(
            np.linspace(x0, x1, field.shape[1]), np.linspace(y0, y1, field.shape[0]), field,
            levels=8, colors="k", linewidths=0.4)
        grad = _as_points("grad_fake", grad_fake)[self._every]
        unit = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-300)
        self._quiver.set_UVC(*unit.T)
        weights = np.asarray(weights, dtype=float)
        counts, edges = np.histogram(weights, bins=40)
        self._stairs.set_data(counts, edges)
        hist_ax.set_xlim(edges[0] - 0.05 * (edges[-1] - edges[0]),
                         edges[-1] + 0.05 * (edges[-1] - edges[0]))
        hist_ax.set_ylim(0, 1.05 * counts.max())
        for line, sign in zip(self._clip_lines, (-1, 1), strict=True):
            line.set_visible(clip is not None)
            if clip is not None:
                line.set_xdata([sign * clip, sign * clip])
        if clip is not None:  # ticks at -c, 0, c
            hist_ax.set_xticks([-clip, 0.0, clip], labels=[f"{-clip:.2g}", "0", f"{clip:.2g}"])
        else:
            hist_ax.xaxis.set_major_locator(MaxNLocator(nbins=3, symmetric=True))
            hist_ax.xaxis.set_major_formatter(ScalarFormatter())
        self._hist_title.set_text("weights (dotted: ±c)" if clip is not None else "weights")
        norms = np.asarray(layer_norms, dtype=float)
        # A norm of exactly 0 (a layer the signal no longer reaches) has no place on a log
        # axis: the line stops there.
        self._norms.set_data(np.arange(1, norms.size + 1), np.where(norms > 0, norms, np.nan))
        positive = norms[norms > 0]
        if positive.size:  # whole decades, so that at least two labelled ticks show
            norm_ax.set_ylim(10.0 ** np.floor(np.log10(positive.min() / 2)),
                             10.0 ** np.ceil(np.log10(positive.max() * 2)))
        self._title.set_text(title)

    def png(self) -> bytes:
        """Render the figure to PNG bytes."""
        self._canvas.draw()
        return _canvas_png(self._canvas)


# --------------------------------------------------------------------------- notebook 03
#: Smallest font of the notebook-03 figures, in points (readable at 100% zoom).
SMALL = 9
#: Line styles and colours of the two baselines (``labkit.study.BASELINES``) in every figure.
BASELINE_STYLES = {"floor": {"color": "0.35", "ls": ":"},
                   "support only": {"color": "C3", "ls": "--"}}


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


def _values(values) -> np.ndarray:
    """A list that may hold None (not measured) as a float array with nan there."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


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


def _title_above(fig: Figure, title: str | None) -> None:
    """Lay the panels out and put ``title`` above them, clear of the panels' own titles."""
    height = fig.get_size_inches()[1]
    if title:
        fig.suptitle(title, fontsize=SMALL + 2)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height if title else 1))


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


def estimate_vs_exact(panels: Mapping[str, Mapping[str, Sequence[float]]], *,
                      baselines: Mapping[str, float] | None = None,
                      title: str | None = None) -> Figure:
    """The critic's distance estimate against the exact W1, one panel per method.

    Parameters
    ----------
    panels : mapping of panel title -> {"w1_exact": (n,), "w_estimate": (n,), "seed": (n,)}
        Points over training (every evaluation of every seed); colour = seed.
    baselines : mapping of name -> exact W1, optional
        Drawn as vertical lines: where the distance of a baseline lies on the x axis.
    title : str, optional
    """
    if not panels:
        raise ValueError("panels must hold at least one method")
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.4 * rows + 0.9), squeeze=False)
    for ax, (name, c) in zip(axes.flat, panels.items(), strict=False):
        x, y = _values(c["w1_exact"]), _values(c["w_estimate"])
        ax.scatter(x, y, c=np.asarray(c["seed"]) % 10, cmap="tab10", vmin=0, vmax=9, s=6)
        _baseline_lines(ax, baselines, vertical=True)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(_wrap(name, 30), fontsize=SMALL)
        _log_axis(ax, "x")
        ax.set_xlabel("exact W1 (POT)", fontsize=SMALL)
        ax.set_ylabel("critic's estimate", fontsize=SMALL)
        ax.tick_params(labelsize=SMALL)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=SMALL + 2)
    fig.tight_layout(rect=(0, 0.06 if baselines else 0, 1, 1))
    _legend_below(fig, axes)
    return fig


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


def rank_tracking(points: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                  title: str | None = None) -> Figure:
    """Spearman's rho of each seed against how much its W1 moved: one marker style per method.

    Parameters
    ----------
    points : mapping of method label -> (W1 range per seed, rho per seed)
    title : str, optional
    """
    if not points:
        raise ValueError("points must hold at least one method")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, (label, (spread, rho)) in enumerate(points.items()):
        ax.plot(spread, rho, ls="none", marker="osD^v<>P*X"[k % 10], ms=6, mfc="none",
                color=f"C{k % 10}", label=label)
    ax.axhline(0, color="k", lw=0.6)
    _log_axis(ax, "x")
    ax.set_xlabel("how much W1 moved in the seed's run: (max - min) / median", fontsize=SMALL)
    ax.set_ylabel("Spearman rho (estimate, exact W1)", fontsize=SMALL)
    ax.tick_params(labelsize=SMALL)
    ax.legend(fontsize=SMALL, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    if title:
        ax.set_title(title, fontsize=SMALL + 1)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- image runs
def image_grid(images, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images in [-1, 1] into one uint8 RGB picture (white gaps), as the authors' grids.

    Parameters
    ----------
    images : array or tensor (N, 3, S, S), values in [-1, 1]
    nrow : int
        Images per row.
    padding : int
        Pixels between images.

    Returns
    -------
    ndarray (rows * (S + padding) + padding, nrow * (S + padding) + padding, 3), uint8
        Pixel p = round((x + 1) * 127.5), clipped to [0, 255].

    >>> image_grid(np.zeros((3, 3, 16, 16)), nrow=2).shape
    (38, 38, 3)
    """
    x = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=float)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, S, S); got {x.shape}")
    n, _, h, w = x.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, 3), 255,
                   dtype=np.uint8)
    pixels = np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for k, image in enumerate(pixels):
        top, left = padding + (k // nrow) * (h + padding), padding + (k % nrow) * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_image_grid(images, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG at ``path``, atomically (temporary file
    and ``os.replace``, so a reader never sees half a picture)."""
    path = Path(path)
    with rundir.atomic_path(path) as tmp:
        PIL.Image.fromarray(image_grid(images, nrow)).save(tmp, format="png")
    return path


def sample_grids(grids: Mapping[str, object], *, title: str, nrow: int = 8) -> Figure:
    """Image grids side by side, one panel each (e.g. per iteration or per generator).

    Parameters
    ----------
    grids : mapping of panel title -> images (N, 3, S, S) in [-1, 1]
    title : str
        Say which data and which device produced the images.
    nrow : int
        Images per row of each grid.
    """
    if not grids:
        raise ValueError("grids must hold at least one set of images")
    fig, axes = plt.subplots(1, len(grids), figsize=(3.3 * len(grids), 3.8), squeeze=False)
    for ax, (name, images) in zip(axes.flat, grids.items(), strict=True):
        ax.imshow(image_grid(images, nrow), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(str(name), fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
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


def grid_table(columns: Mapping[str, Sequence], rows: Sequence[str], *, title: str,
               scale: float = 2.0) -> Figure:
    """Sample grids in a table: one column per key of ``columns`` (the paper's figures put WGAN
    left and the standard GAN right), one row per entry of ``rows`` (e.g. seeds).

    Parameters
    ----------
    columns : mapping of column title -> sequence of one image per row
        Each image is a picture (H, W, 3) uint8, as read from a grid PNG, or a batch
        (N, 3, S, S) in [-1, 1], tiled by :func:`image_grid`; None leaves the cell empty.
    rows : sequence of str
        Row titles, written on the left.
    title : str
        Say which data and which device produced the images.
    scale : float
        Screen pixels per image pixel at the figure's dpi (2: a 16 x 16 digit shows as 32 x 32).
    """
    if not columns or not rows:
        raise ValueError("columns and rows must each hold at least one entry")
    for name, images in columns.items():
        if len(images) != len(rows):
            raise ValueError(f"column {name!r} has {len(images)} images for {len(rows)} rows")
    pictures = [[None if im is None else
                 image_grid(im) if hasattr(im, "detach") or np.ndim(im) == 4 else np.asarray(im)
                 for im in images] for images in columns.values()]
    shapes = [p.shape for column in pictures for p in column if p is not None]
    height, width = (max(s[0] for s in shapes), max(s[1] for s in shapes)) if shapes else (1, 1)
    inches = scale / plt.rcParams["figure.dpi"]
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(len(columns) * width * inches + 0.6,
                                      len(rows) * height * inches + 0.3 * len(rows) + 0.6))
    for j, (name, column) in enumerate(zip(columns, pictures, strict=True)):
        for i, picture in enumerate(column):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if picture is not None:
                ax.imshow(picture, interpolation="nearest")
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=9)
    fig.suptitle(title, fontsize=9)
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
