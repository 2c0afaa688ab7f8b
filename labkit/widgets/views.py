"""The explorers' figures, updated in place, and the one PNG encoder of the widgets' images.

Each view is built once on a bare Agg canvas (not registered with pyplot, so notebooks never
show it twice); ``update`` changes the artists' data and ``png`` renders the canvas with
:func:`png`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from labkit import _checks
from labkit.plots._style import COLOURS, _as_points
from labkit.plots.distances import _draw_curves


def png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas's current pixels as PNG bytes (RGB), with light compression (a widget redraws
    often)."""
    buf = io.BytesIO()
    PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buf, format="png",
                                                                         compress_level=1)
    return buf.getvalue()


def figure_png(fig: Figure, dpi: float) -> bytes:
    """``fig`` drawn at ``dpi`` on an Agg canvas, as :func:`png` bytes: the pixels of
    ``fig.savefig(format="png", dpi=dpi)`` (opaque figures; ``fig`` keeps its own dpi)."""
    canvas = FigureCanvasAgg(fig)
    own = fig.dpi
    fig.dpi = dpi
    try:
        canvas.draw()
        return png(canvas)
    finally:
        fig.dpi = own


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
        return png(self._canvas)


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
        return png(self._canvas)
