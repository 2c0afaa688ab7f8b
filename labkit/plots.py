"""Matplotlib figures for the notebooks and widgets of WGAN Lab.

Every public function returns a :class:`matplotlib.figure.Figure` built with the object API
(``fig, ax = plt.subplots(...)``), so it works under Agg, inline and interactive backends alike.
Infinite values (KL between disjoint supports) are drawn as a line above every finite value and
say so in the legend. :class:`Example1View` is the theta explorer's figure, updated in place.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit import _checks

__all__ = [
    "Example1View",
    "distance_curves",
    "example1_setup",
    "sample_convergence",
    "toy_samples",
    "trajectories",
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
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
    right.legend(fontsize="small")
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
        rgba = np.asarray(self._canvas.buffer_rgba())
        buf = io.BytesIO()
        PIL.Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
        return buf.getvalue()


def toy_samples(real, fakes: Mapping[str, object], centers=None, *, title: str | None = None,
                max_points: int = 2500) -> Figure:
    """Generated 2-D samples over the real ones, one panel per run (e.g. per seed).

    Parameters
    ----------
    real : array or tensor, shape (n, 2)
        Samples of the target, drawn in grey.
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
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, (name, fake) in zip(axes.flat, fakes.items(), strict=False):
        fake = _as_points(f"fakes[{name!r}]", fake)[:max_points]
        if centers is not None:
            ax.scatter(*centers.T, marker="+", c="k", s=60, lw=0.8, label="centres")
        ax.scatter(*real.T, s=3, c="C1", alpha=0.5, label="real")
        ax.scatter(*fake.T, s=2, c="C0", alpha=0.5, label="generated")
        ax.set_title(str(name), fontsize=10)
        ax.set_aspect("equal", adjustable="box")
    for ax in axes.flat[len(fakes):]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
