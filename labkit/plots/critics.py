"""What trained critics look like and how well they estimate W1: the paper's Figure 2 (GAN
discriminator against WGAN critic, and the gradient the generator receives), the direction and
scale of trained critics against exact optimal transport, per-layer gradient norms and weights,
and the critic's estimate against the exact W1 over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from labkit.plots._style import (
    COLOURS,
    SMALL,
    _baseline_lines,
    _legend_below,
    _log_axis,
    _values,
    _wrap,
)


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
