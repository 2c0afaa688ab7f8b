"""Interactive apps for the notebooks: the theta explorer of the paper's Example 1 and the
clipping explorer of notebook 02.

The update logic is pure and tested without a browser (:func:`example1_readout`,
:func:`readout_html`, :class:`ClipExplorerModel`); :func:`theta_explorer` and
:func:`clip_explorer` wire it to ipywidgets. Figures come from :mod:`labkit.plots`, imported
lazily so that ``import labkit.widgets`` does not load matplotlib.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import ipywidgets
import numpy as np
import torch

from labkit import _checks, critics, divergences, ot, toys

__all__ = [
    "CLIP_KEYS",
    "ClipExplorerModel",
    "ClipExplorerState",
    "KEYS",
    "clip_explorer",
    "clip_readout_html",
    "example1_readout",
    "example1_samples",
    "readout_html",
    "snapshot_slider",
    "theta_explorer",
]

#: Quantities of the readout, in display order; each is a ``<td data-key="KEY">`` cell.
KEYS = ("W", "JS", "KL", "TV", "W1_sample")

_LABELS = {
    "W": "W(P<sub>0</sub>, P<sub>&theta;</sub>) = |&theta;|",
    "JS": "JS(P<sub>0</sub>, P<sub>&theta;</sub>), nats",
    "KL": "KL(P<sub>&theta;</sub> || P<sub>0</sub>)",
    "TV": "&delta;(P<sub>0</sub>, P<sub>&theta;</sub>) (TV)",
    "W1_sample": "W1 of n samples each (exact OT)",
}

#: Ranges of the explorer's sliders.
THETA_RANGE = (-1.0, 1.0)
N_RANGE = (10, 1000)
#: Width of every explorer control. The theta slider's track (the width less the description
#: and the readout) is about 460 px for its 201 steps of 0.01, so that dragging reaches every
#: value, 0 included (``tests/test_browser.py``); 124 px, ipywidgets' default, skipped some.
CONTROL_WIDTH = "640px"


def _control_options() -> dict:
    """Layout and style shared by the controls of an explorer: descriptions in one 80 px column,
    tracks of one length, so that the controls line up."""
    return {"layout": ipywidgets.Layout(width=CONTROL_WIDTH),
            "style": {"description_width": "80px"}}


def example1_samples(theta: float, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of P0 and P_theta with *independent* z, as the explorer draws them.

    P0 samples are ``toys.parallel_lines(0, n)`` from a generator seeded with ``seed``; P_theta
    samples are ``toys.parallel_lines(theta, n)`` from a generator seeded with ``seed + 1``.
    Independent z make the sample W1 an honest estimate (biased upwards, see notebook 01);
    shared z would give exactly abs(theta) for every n.

    Parameters
    ----------
    theta : float
        Position of the generated line (paper, Example 1).
    n : int
        Samples per distribution, n >= 1.
    seed : int, default 0
        Seed of P0's generator (P_theta uses ``seed + 1``), seed >= 0.

    Returns
    -------
    real, fake : torch.Tensor, shape (n, 2), float32
        Rows (0, z) and (theta, z').
    """
    theta = _checks.finite_real("theta", theta)
    n = _checks.integer("n", n, minimum=1)
    seed = _checks.integer("seed", seed, 0, _checks.MAX_TORCH_SEED - 1)
    real = toys.parallel_lines(0.0, n, generator=torch.Generator().manual_seed(seed))
    fake = toys.parallel_lines(theta, n, generator=torch.Generator().manual_seed(seed + 1))
    return real, fake


def _readout(theta: float, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Closed forms at ``theta`` and the exact W1 between the two sample sets."""
    closed = divergences.example1(float(theta))
    values = {key: float(closed[key]) for key in ("W", "JS", "KL", "TV")}
    values["W1_sample"] = float(ot.w1(real, fake))
    return values


def example1_readout(theta: float, n: int, seed: int = 0) -> dict[str, float]:
    """What the theta explorer shows: the closed forms of Example 1 and a sample-based W1.

    W = abs(theta), JS = log 2, KL = +inf and TV = 1 for theta != 0, all 0 at theta = 0 (paper,
    Example 1; JS with the 1/2, in nats). ``W1_sample`` is the exact optimal-transport W1 (POT,
    Euclidean cost) between the samples of :func:`example1_samples` (independent z).

    Parameters
    ----------
    theta : float
        Position of the generated line.
    n : int
        Samples per distribution, n >= 1.
    seed : int, default 0
        Seeds ``seed`` (P0) and ``seed + 1`` (P_theta), seed >= 0.

    Returns
    -------
    dict of str to float
        Keys ``KEYS``: "W", "JS", "KL", "TV", "W1_sample".

    Examples
    --------
    >>> values = example1_readout(0.5, 100)
    >>> round(values["W"], 4), round(values["JS"], 4), values["KL"], values["TV"]
    (0.5, 0.6931, inf, 1.0)
    """
    _check_solver_size("n", n)
    real, fake = example1_samples(theta, n, seed)
    return _readout(float(theta), real, fake)


def _check_solver_size(name: str, n) -> None:
    """Refuse (naming ``name``) a count ``n`` of points per set whose exact W1 would not fit
    the solver's default budget (:data:`labkit.ot.DEFAULT_MAX_BYTES`), before sampling them."""
    n = _checks.integer(name, n, minimum=1)
    need = ot.exact_solver_bytes(n, n)
    if need > ot.DEFAULT_MAX_BYTES:
        raise _checks.BadValue(name, n, "small enough for the exact W1 solver",
                               f": {n} x {n} points need about {need / 2**30:.1f} GiB, more "
                               f"than its budget of {ot.DEFAULT_MAX_BYTES / 2**30:g} GiB")


def _format(value: float) -> str:
    """Four decimals, or "inf" / "-inf" / "nan"."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4f}"


def readout_html(values: Mapping[str, float]) -> str:
    """The explorer's readout: ``<table class="labkit-readout">``, one row per quantity.

    Each value sits in ``<td data-key="KEY">VALUE</td>`` with four decimals ("0.5000",
    "0.6931"); infinity is written "inf".

    Parameters
    ----------
    values : dict of str to float
        Must hold every key of ``KEYS``.

    Returns
    -------
    str

    Examples
    --------
    >>> '<td data-key="KL">inf</td>' in readout_html(
    ...     {"W": 0.5, "JS": 0.6931, "KL": float("inf"), "TV": 1.0, "W1_sample": 0.51})
    True
    """
    return _table(values, KEYS, _LABELS, _format, "labkit-readout")


def _table(values: Mapping[str, float], keys, labels, fmt, css_class: str) -> str:
    """``<table class=css_class>`` with one ``<td data-key="KEY">`` row per key."""
    if not isinstance(values, Mapping):
        raise _checks.BadValue("values", values, f"a mapping of {', '.join(keys)} to numbers")
    missing = [key for key in keys if key not in values]
    if missing:
        raise ValueError(f"values must hold the keys {list(keys)}; missing {missing}")
    for key in keys:
        _checks.real(f"values[{key!r}]", values[key])
    rows = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{labels[key]}</th>'
        f'<td data-key="{key}">'
        f"{fmt(float(values[key]))}</td></tr>"
        for key in keys
    )
    return f'<table class="{css_class}">{rows}</table>'


def theta_explorer(theta: float = 0.5, n: int = 200, seed: int = 0) -> ipywidgets.VBox:
    """The theta explorer of Example 1: drag theta, watch W move and JS, KL, TV stand still.

    Parameters
    ----------
    theta : float, default 0.5
        Initial theta, in [-1, 1].
    n : int, default 200
        Initial samples per distribution for ``W1_sample``, in [10, 1000].
    seed : int, default 0
        Seeds of the samples (see :func:`example1_samples`), seed >= 0.

    Returns
    -------
    ipywidgets.VBox
        Children, in order: ``FloatSlider`` "theta" (min -1, max 1, step 0.01; the first slider,
        :data:`CONTROL_WIDTH` wide so that dragging reaches every step), ``IntSlider`` "n" (10 to
        1000), ``HTML`` readout (:func:`readout_html`) and an ``Image`` with the two lines and
        the four closed forms, a marker at the current theta.
        Moving either slider recomputes the readout and redraws the figure in place; theta is
        rounded to 12 decimals first, so a slider that steps to 1e-17 shows theta = 0.
    """
    from labkit import plots

    theta = _checks.finite_real("theta", theta)
    if not THETA_RANGE[0] <= theta <= THETA_RANGE[1]:
        raise ValueError(f"theta must be in [{THETA_RANGE[0]:g}, {THETA_RANGE[1]:g}], got {theta}")
    n = _checks.integer("n", n, *N_RANGE)
    seed = _checks.integer("seed", seed, minimum=0)

    theta_slider = ipywidgets.FloatSlider(value=theta, min=THETA_RANGE[0], max=THETA_RANGE[1],
                                          step=0.01, description="theta", readout_format=".2f",
                                          **_control_options())
    n_slider = ipywidgets.IntSlider(value=n, min=N_RANGE[0], max=N_RANGE[1], step=1,
                                    description="n", continuous_update=False,
                                    **_control_options())
    readout = ipywidgets.HTML()
    image = ipywidgets.Image(format="png")

    grid = np.linspace(THETA_RANGE[0], THETA_RANGE[1], 400)  # even count: skips theta = 0
    closed = divergences.example1(grid)
    at_zero = divergences.example1(0.0)
    names = ("W", "JS", "KL", "TV")
    view = plots.Example1View(grid, {k: closed[k] for k in names},
                              {k: at_zero[k] for k in names})

    def update(_change=None) -> None:
        # Keyboard steps of the browser slider can land on 1e-17 instead of 0: round them away.
        current = round(float(theta_slider.value), 12)
        real, fake = example1_samples(current, n_slider.value, seed)
        values = _readout(current, real, fake)
        readout.value = readout_html(values)
        view.update(current, real, fake, values)
        image.value = view.png()

    theta_slider.observe(update, names="value")
    n_slider.observe(update, names="value")
    update()
    return ipywidgets.VBox([theta_slider, n_slider, readout, image])


# --------------------------------------------------------------------------- clipping explorer

#: Numbers of the clipping explorer's readout, in display order (``<td data-key="KEY">``).
CLIP_KEYS = ("estimate", "w1_exact", "ratio", "cosine")

_CLIP_LABELS = {
    "estimate": "critic's estimate E<sub>r</sub>[f] &minus; E<sub>g</sub>[f]",
    "w1_exact": "exact W1 (POT)",
    "ratio": "estimate / exact W1",
    "cosine": "cosine to the exact OT gradient (mean over fake points)",
}

#: Ranges of the clipping explorer's controls.
CLIP_RANGE = (1e-3, 1.0)
N_CRITIC_RANGE = (1, 10)
DEPTH_RANGE = (1, 6)
EXPLORER_CONSTRAINTS = ("clip", "gp", "sn")


def _format_clip(value: float) -> str:
    """Four significant digits ("0.0001234", "1.012"), or "nan"; -0.0 is written "0".

    >>> _format_clip(-0.0), _format_clip(-0.00012345)
    ('0', '-0.0001234')
    """
    return "nan" if math.isnan(value) else f"{value + 0.0:.4g}"


def clip_readout_html(values: Mapping[str, float]) -> str:
    """The clipping explorer's readout: ``<table class="labkit-clip-readout">``.

    Each number sits in ``<td data-key="KEY">`` for KEY in ``CLIP_KEYS``, written with four
    significant digits (``format(value, ".4g")``).

    Examples
    --------
    >>> '<td data-key="ratio">0.001234</td>' in clip_readout_html(
    ...     {"estimate": 0.001, "w1_exact": 0.81, "ratio": 0.0012345, "cosine": 0.9})
    True
    """
    return _table(values, CLIP_KEYS, _CLIP_LABELS, _format_clip, "labkit-clip-readout")


@contextmanager
def _one_thread():
    """Run torch on one thread inside the block: the same numbers in every process (a kernel and
    a test), and as fast as two at these sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class ClipExplorerState:
    """One state of the clipping explorer: its numbers and everything its figure draws.

    Attributes
    ----------
    values : dict of str to float
        The readout, keys ``CLIP_KEYS``.
    field : np.ndarray, shape (k, k)
        Critic values on the contour grid.
    grad_fake : np.ndarray, shape (n, 2)
        grad f at the fake points.
    report : labkit.critics.CriticReport
    clip : float or None
        c for the clipped critic, None for GP and SN.
    seconds : float
        Training and evaluation time (0 when the state came from the cache).
    """

    values: dict
    field: np.ndarray
    grad_fake: np.ndarray
    report: critics.CriticReport
    clip: float | None
    seconds: float


class ClipExplorerModel:
    """The clipping explorer without widgets: a fixed pair of 2-D samples and cached critics.

    The pair: ``n`` points of the 8-Gaussian ring (real) and of N(0, 0.5^2 I) (fake, a generator
    early in training), drawn once from ``seed`` and ``seed + 1``. The exact W1 and OT gradient
    are computed once. Each setting trains ``critics.train_critic`` for ``n_critic * iters`` steps
    (what n_critic would give over ``iters`` generator iterations with the generator frozen),
    MLP ``hidden`` x depth, on one torch thread, and is cached by (c, n_critic, depth, constraint)
    (c is ignored, and shared, for GP and SN).

    Parameters
    ----------
    n : int, default 256
        Points per distribution, >= 2.
    hidden : int, default 64
        Width of the critic, >= 1.
    iters : int, default 40
        Generator iterations' worth of critic steps, >= 1.
    seed : int, default 0
    grid : int, default 48
        Side of the contour grid, >= 2.
    """

    extent = (-2.8, 2.8, -2.8, 2.8)

    def __init__(self, n: int = 256, hidden: int = 64, iters: int = 40, seed: int = 0,
                 grid: int = 48):
        self.n = _checks.integer("n", n, minimum=2)
        _check_solver_size("n", n)
        self.hidden = _checks.integer("hidden", hidden, minimum=1)
        _checks.fits_in_memory("hidden", hidden, 16 * DEPTH_RANGE[1] * hidden**2,
                               f"critics of up to {DEPTH_RANGE[1]} layers of {hidden}")
        self.iters = _checks.integer("iters", iters, minimum=1)
        self.seed = _checks.integer("seed", seed, 0, _checks.MAX_TORCH_SEED - 1)
        side = _checks.integer("grid", grid, minimum=2)
        _checks.fits_in_memory("grid", grid, 4 * side**2 * (2 + hidden),
                               f"the critic on a {side} x {side} grid")
        self.real = toys.ring().sample(self.n, generator=torch.Generator().manual_seed(seed))
        self.fake = 0.5 * torch.randn(self.n, 2, generator=torch.Generator().manual_seed(seed + 1))
        self.w1_exact = ot.w1(self.real.double(), self.fake.double())
        self.w1_grad = ot.w1_gradient(self.fake.double(), self.real.double())
        x0, x1, y0, y1 = self.extent
        gx, gy = np.meshgrid(np.linspace(x0, x1, side), np.linspace(y0, y1, side))
        self._grid = torch.tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32)
        self._side = side
        self._cache: dict[tuple, ClipExplorerState] = {}

    @staticmethod
    def key(c: float, n_critic: int, depth: int, constraint: str) -> tuple:
        """The validated cache key; c is rounded to 6 significant digits (a browser's 10^-1.5 and
        Python's agree there) and dropped for GP and SN."""
        c = _checks.finite_real("c", c)
        if not CLIP_RANGE[0] <= c <= CLIP_RANGE[1]:
            raise ValueError(f"c must be in [{CLIP_RANGE[0]:g}, {CLIP_RANGE[1]:g}], got {c!r}")
        n_critic = _checks.integer("n_critic", n_critic, *N_CRITIC_RANGE)
        depth = _checks.integer("depth", depth, *DEPTH_RANGE)
        if constraint not in EXPLORER_CONSTRAINTS:
            raise ValueError(
                f"constraint must be one of {EXPLORER_CONSTRAINTS}, got {constraint!r}")
        return (float(f"{c:.6g}") if constraint == "clip" else None, n_critic, depth, constraint)

    def is_cached(self, c: float, n_critic: int, depth: int, constraint: str) -> bool:
        """Whether :meth:`update` would answer from the cache."""
        return self.key(c, n_critic, depth, constraint) in self._cache

    def update(self, c: float, n_critic: int, depth: int, constraint: str) -> ClipExplorerState:
        """Train (or take from the cache) the critic of one setting; what the explorer shows.

        Parameters
        ----------
        c : float
            Clip value in [1e-3, 1] (used by "clip" only).
        n_critic : int
            In [1, 10]: the critic gets ``n_critic * iters`` full-batch steps.
        depth : int
            Hidden layers of the critic, in [1, 6].
        constraint : {"clip", "gp", "sn"}

        Returns
        -------
        ClipExplorerState
            ``values`` holds "estimate", "w1_exact", "ratio" and "cosine"
            (:func:`labkit.critics.report`).
        """
        key = self.key(c, n_critic, depth, constraint)
        if key in self._cache:
            state = self._cache[key]
            return ClipExplorerState(state.values, state.field, state.grad_fake, state.report,
                                     state.clip, 0.0)
        clip, n_critic, depth, constraint = key
        start = time.perf_counter()
        config = critics.CriticConfig(constraint=constraint, clip=clip or 0.01, hidden=self.hidden,
                                      depth=depth, steps=n_critic * self.iters, seed=self.seed)
        with _one_thread():
            fit = critics.train_critic(self.real, self.fake, config)
            rep = critics.report(fit, self.real, self.fake, self.w1_exact, self.w1_grad)
            with torch.no_grad():
                field = fit.critic(self._grid).double().numpy().reshape(self._side, self._side)
            grad_fake = critics.input_gradient(fit.critic, self.fake)
        values = {"estimate": rep.estimate, "w1_exact": rep.w1_exact, "ratio": rep.ratio,
                  "cosine": rep.cosine}
        state = ClipExplorerState(values, field, grad_fake, rep, clip,
                                  time.perf_counter() - start)
        self._cache[key] = state
        return state


def _setting(state: ClipExplorerState, n_critic: int, depth: int, constraint: str) -> str:
    name = f"clip c = {state.clip:g}" if constraint == "clip" else constraint.upper()
    v = state.values
    return (f"{name}, n_critic = {n_critic}, depth = {depth}: estimate / W1 = "
            f"{_format_clip(v['ratio'])}, cosine = {_format_clip(v['cosine'])}")


def clip_explorer(c: float = 0.01, n_critic: int = 5, depth: int = 3, constraint: str = "clip",
                  model: ClipExplorerModel | None = None) -> ipywidgets.VBox:
    """The clipping explorer: what weight clipping (or GP, SN) does to a critic, against exact OT.

    Parameters
    ----------
    c : float, default 0.01
        Initial clip value, in [1e-3, 1] (the paper's 0.01).
    n_critic : int, default 5
        Initial n_critic, in [1, 10].
    depth : int, default 3
        Initial hidden layers of the critic, in [1, 6].
    constraint : {"clip", "gp", "sn"}, default "clip"
    model : ClipExplorerModel, optional
        The pair and cache; ``ClipExplorerModel()`` if omitted.

    Returns
    -------
    ipywidgets.VBox
        Children, in order: ``FloatLogSlider`` "c" (10^-3 to 10^0, step 10^0.25; disabled
        under GP and SN), ``IntSlider`` "n_critic", ``IntSlider`` "depth" (the sliders
        :data:`CONTROL_WIDTH` wide), ``ToggleButtons`` "constraint" (the four descriptions in one
        column), ``HTML`` status
        ("training..." while a critic trains, then the time taken or "cached"), ``HTML`` readout
        (:func:`clip_readout_html` of :meth:`ClipExplorerModel.update`'s values) and an ``Image``
        (:class:`labkit.plots.ClipExplorerView`). Every change retrains or takes the critic from
        the cache, then rewrites the readout and redraws the figure.
    """
    from labkit import plots

    model = ClipExplorerModel() if model is None else model
    if not isinstance(model, ClipExplorerModel):
        raise _checks.BadValue("model", model, "a ClipExplorerModel or None")
    model.key(c, n_critic, depth, constraint)  # validates the initial values
    c_slider = ipywidgets.FloatLogSlider(value=c, base=10, min=-3, max=0, step=0.25,
                                         description="c", readout_format=".4g",
                                         continuous_update=False, **_control_options())
    n_slider = ipywidgets.IntSlider(value=n_critic, min=N_CRITIC_RANGE[0], max=N_CRITIC_RANGE[1],
                                    description="n_critic", continuous_update=False,
                                    **_control_options())
    depth_slider = ipywidgets.IntSlider(value=depth, min=DEPTH_RANGE[0], max=DEPTH_RANGE[1],
                                        description="depth", continuous_update=False,
                                        **_control_options())
    buttons = ipywidgets.ToggleButtons(options=EXPLORER_CONSTRAINTS, value=constraint,
                                       description="constraint",  # its buttons keep their width
                                       style=_control_options()["style"],
                                       layout=ipywidgets.Layout(margin="2px"))  # a slider's
    buttons.add_class("widget-inline-hbox")  # its label beside the buttons, as a slider's
    status = ipywidgets.HTML()
    readout = ipywidgets.HTML()
    image = ipywidgets.Image(format="png")
    view = plots.ClipExplorerView(model.real, model.fake, -model.w1_grad, model.extent,
                                  depth_max=DEPTH_RANGE[1])

    def update(_change=None) -> None:
        args = (c_slider.value, n_slider.value, depth_slider.value, buttons.value)
        c_slider.disabled = buttons.value != "clip"  # GP and SN have no c
        if not model.is_cached(*args):
            status.value = '<span class="labkit-status" style="color:#b45309">training...</span>'
        state = model.update(*args)
        readout.value = clip_readout_html(state.values)
        view.update(state.field, state.grad_fake, state.report.weights,
                    state.report.layer_norms, state.clip, _setting(state, *args[1:]))
        image.value = view.png()
        done = "cached" if state.seconds == 0 else f"trained in {state.seconds:.2f} s"
        status.value = f'<span class="labkit-status">{done}</span>'

    for control in (c_slider, n_slider, depth_slider, buttons):
        control.observe(update, names="value")
    update()
    return ipywidgets.VBox([c_slider, n_slider, depth_slider, buttons, status, readout, image])


def snapshot_slider(runs: Mapping[str, list], centers, grid,
                    baselines: Mapping[str, object] | None = None) -> ipywidgets.VBox:
    """A slider over training checkpoints: every method's samples and critic at one snapshot.

    Parameters
    ----------
    runs : mapping of method label -> list of snapshots (``labkit.study`` format), all of one
        length
    centers : array (K, 2)
    grid : array (G * G, 2)
        As in :func:`labkit.plots.training_snapshots`.
    baselines : mapping of name -> array (n, 2), optional
        The baselines' samples, shown beside the methods at every checkpoint.

    Returns
    -------
    ipywidgets.VBox
        ``IntSlider`` "checkpoint" (index into the snapshots; the figure's title gives the
        iteration) and an ``Image`` (:func:`labkit.plots.checkpoint_panels`) redrawn when it
        moves.
    """
    import matplotlib.pyplot as plt

    from labkit import plots

    if not isinstance(runs, Mapping):
        raise _checks.BadValue("runs", runs, "a mapping of method label to snapshot lists")
    lengths = {len(s) for s in runs.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"runs must hold snapshot lists of one non-zero length; got {lengths}")
    last = lengths.pop() - 1
    slider = ipywidgets.IntSlider(value=last, min=0, max=last, description="checkpoint",
                                  continuous_update=False)
    image = ipywidgets.Image(format="png")

    def update(_change=None) -> None:
        fig = plots.checkpoint_panels(runs, slider.value, centers, grid, baselines=baselines)
        image.value = _png(fig)
        plt.close(fig)

    slider.observe(update, names="value")
    update()
    return ipywidgets.VBox([slider, image])


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
