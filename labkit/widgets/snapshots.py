"""A slider over the training checkpoints of notebook 03's study."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets

from labkit import _checks


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
    from labkit.widgets import views

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
        image.value = views.figure_png(fig, dpi=100)
        plt.close(fig)

    slider.observe(update, names="value")
    update()
    return ipywidgets.VBox([slider, image])
