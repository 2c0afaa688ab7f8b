"""The clipping explorer of notebook 02: what weight clipping (or GP, SN) does to a critic,
against exact optimal transport. :class:`ClipExplorerModel` trains and caches the critics without
widgets; :func:`clip_explorer` wires it to ipywidgets."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import ipywidgets
import numpy as np
import torch

from labkit import _checks, critics, ot, toys
from labkit.gan.constraints import CONSTRAINTS
from labkit.widgets._controls import _check_solver_size, _control_options, _table

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


#: The explorer's choices: every Lipschitz constraint of :data:`labkit.gan.constraints.REGISTRY`
#: (a constraint registered there is offered here too).
EXPLORER_CONSTRAINTS = tuple(name for name in CONSTRAINTS if name != "none")


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
        (:class:`labkit.widgets.views.ClipExplorerView`). Every change retrains or takes the critic
        from the cache, then rewrites the readout and redraws the figure.
    """
    from labkit.widgets import views

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
    view = views.ClipExplorerView(model.real, model.fake, -model.w1_grad, model.extent,
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
