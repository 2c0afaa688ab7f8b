"""What a run measures besides the trainer's image evaluator: the class count of generated
digits (:class:`DigitEvaluator`), whether a metric levelled off, the W curves through the
paper's median filter, and the baseline rows scored the same way."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import digits, metrics
from labkit.study.results import _rounded


class DigitEvaluator:
    """A run's image evaluator (:class:`labkit.evaluators.ImageEvaluator`: critic estimate and
    SWD on the held-out digits, a fixed-noise grid) plus the class count of ``n`` generated
    digits from fixed noise (:meth:`labkit.digits.DigitClassifier.count`).

    Each evaluation adds ``classes`` (classes with a confident sample), ``confident`` (their
    share of the n) and ``class_kl`` (KL of their class histogram to uniform, nats) to the
    base evaluator's row.
    """

    def __init__(self, base, classifier: digits.DigitClassifier, n: int, nz: int, seed: int,
                 device: torch.device) -> None:
        self.base, self.classifier, self.headline = base, classifier, base.headline
        self.busy = f"{base.busy}, classes of {n} digits"
        self.z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed)).to(device)

    @property
    def grid(self) -> torch.Tensor | None:
        return self.base.grid

    @torch.no_grad()
    def evaluate(self, generator, critic) -> list[dict[str, Any]]:
        row = self.base.evaluate(generator, critic)[0]
        coverage = self.classifier.count(self.base._generate(generator, self.z))
        return [{**row, "classes": coverage.modes, "confident": coverage.hq_fraction,
                 "class_kl": coverage.reverse_kl}]

    def samples(self, generator):
        return self.base.samples(generator)


def levelled_off(iterations, values, tolerance: float, relative: bool = True,
                 window: float = 1 / 3) -> tuple[float, bool]:
    """Has a metric levelled off? The change its least-squares trend makes over the last
    ``window`` of the run, and whether it is within ``tolerance``.

    Fit v = a + b t to the evaluations with t >= (1 - window) T (T the last iteration); the
    drift is b * window * T, divided by the mean |v| of those evaluations when ``relative``. A
    metric has levelled off when |drift| <= tolerance (the notebook uses 10% for the SWD and
    0.05 for the share of confident digits). Returns (drift, levelled); (nan, False) with fewer
    than three evaluations in the window.

    >>> drift, levelled = levelled_off([0, 10, 20, 30, 40], [5.0, 4.0, 3.0, 2.8, 2.6], 0.1,
    ...                                window=0.5)
    >>> round(drift, 4), levelled  # slope -0.02 over 20 iterations, -0.4 of the mean 2.8
    (-0.1429, False)
    """
    t, v = np.asarray(iterations, dtype=float), np.asarray(values, dtype=float)
    last = t.max()
    keep = (t >= (1 - window) * last * (1 - 1e-9)) & np.isfinite(v)  # 1e-9: rounding of 2/3
    if keep.sum() < 3:
        return math.nan, False
    slope = np.polyfit(t[keep], v[keep], 1)[0]
    drift = slope * window * last
    if relative:
        drift /= max(np.abs(v[keep]).mean(), 1e-12)
    drift = float(drift)
    return drift, abs(drift) <= tolerance


#: Tolerances of :func:`levelled_off`: metric -> (tolerance, relative).
LEVEL_RULES = {"swd": (0.10, True), "confident": (0.05, False)}


def _w_curves(trainer, every: int) -> dict[str, list]:
    """The per-iteration estimate (W for WGAN, the JS lower bound for GANs), raw and through
    the paper's median filter of width 101 over all iterations, kept every ``every``-th."""
    its, w = trainer.history.series("w_estimate")
    its, w = np.array(its), np.array(w, dtype=float)
    smooth = metrics.median_filter(w, 101) if len(w) else w
    keep = slice(every - 1, None, every)
    return {"iteration": its[keep].tolist(), "raw": w[keep].tolist(),
            "median101": smooth[keep].tolist()}


def _eval_curves(trainer) -> dict[str, list]:
    """Each evaluation's SWD, critic estimate and class counts, with their iterations."""
    history = trainer.history
    return {"iteration": history.series("swd")[0],
            **{f: history.series(f)[1]
               for f in ("swd", "w_estimate_eval", "classes", "confident", "class_kl")}}


_CLASSIFIERS: dict[str, digits.DigitClassifier] = {}


def classifier_for(cache) -> digits.DigitClassifier:
    """The digit classifier trained on a cache's training digits (made once per process)."""
    key = str(Path(cache.path).resolve())
    if key not in _CLASSIFIERS:
        train, labels, _, _ = digits.split(cache)
        _CLASSIFIERS[key] = digits.DigitClassifier(train, labels)
    return _CLASSIFIERS[key]


def baselines(cache, n: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The table's reference rows, scored like a run: SWD against the held-out digits and the
    class count of ``n`` images.

    - ``real``: real training digits (n drawn with replacement; the SWD uses 300 of them): the
      floor a perfect generator would reach.
    - ``mean+noise``: the mean training digit plus Gaussian noise with each pixel's standard
      deviation, clipped to [-1, 1]: a generator that knows two moments per pixel.
    - ``one class``: real training digits of class 0 only: perfect samples, total collapse.

    Also ``classifier``: the classifier's accuracy on the held-out digits and its share of
    confident held-out digits.
    """
    train, labels, heldout, heldout_labels = digits.split(cache)
    classifier = classifier_for(cache)
    rng = torch.Generator().manual_seed(seed)
    zeros = train[torch.from_numpy(labels == 0)]
    m = max(n, len(heldout))
    sets = {
        "real": train[torch.randint(len(train), (m,), generator=rng)],
        "mean+noise": (train.mean(0) + train.std(0) * torch.randn(m, *train.shape[1:],
                                                                  generator=rng)).clamp(-1, 1),
        "one class": zeros[torch.randint(len(zeros), (m,), generator=rng)],
    }
    rows = {}
    for name, images in sets.items():
        coverage = classifier.count(images[:n])
        rows[name] = {"swd": metrics.swd_images(heldout, images[:len(heldout)], seed=seed)["swd"],
                      "classes": coverage.modes, "confident": coverage.hq_fraction,
                      "class_kl": coverage.reverse_kl}
    held = classifier.count(heldout)
    rows["classifier"] = {"accuracy": classifier.accuracy(heldout, heldout_labels),
                          "confident": held.hq_fraction, "classes": held.modes,
                          "class_kl": held.reverse_kl, "n_train": len(train),
                          "n_heldout": len(heldout), "threshold": digits.CONFIDENCE}
    return _rounded(rows)
