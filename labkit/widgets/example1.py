"""The theta explorer of the paper's Example 1: drag theta, watch W move and JS, KL, TV stand
still. The numbers (:func:`example1_readout`, :func:`readout_html`) are pure and tested without a
browser; :func:`theta_explorer` wires them to ipywidgets."""

from __future__ import annotations

import math
from collections.abc import Mapping

import ipywidgets
import numpy as np
import torch

from labkit import _checks, divergences, ot, toys
from labkit.widgets._controls import _check_solver_size, _control_options, _table

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
    from labkit.widgets import views

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
    view = views.Example1View(grid, {k: closed[k] for k in names},
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
