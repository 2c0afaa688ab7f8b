"""Real handwritten digits for the image lab: the data path an LSUN user takes, and a classifier
that counts the digit classes a generator covers.

scikit-learn's wheel ships 1,797 real 8 x 8 digits (``sklearn.datasets.load_digits``, the UCI
"optical recognition of handwritten digits" test set: values 0 to 16, 10 classes, about 180
each), so notebook 04 trains on real images without a download. :func:`export` writes them as a
folder of lossless PNGs, and ``python -m labkit lsun prepare --src DIR --out CACHE --size 16``
decodes that folder into the uint8 cache exactly as it decodes an LSUN LMDB. The pixel rule, end
to end (:data:`PIXEL_RULE`):

1. value v in 0..16 -> grey level round(v * 255 / 16), i.e. 0, 16, 32, ..., 239, 255, written as
   an 8 x 8 greyscale PNG (lossless: the PNG decodes to these levels exactly);
2. ``prepare`` (:func:`labkit.images.preprocess`): converted to RGB, which replicates the grey
   in the three channels; shorter side resized to ``size`` with PIL's bilinear filter; centre
   crop (nothing to crop: the digits are square).

The export puts :data:`HOLDOUT` digits last, :data:`HOLDOUT_PER_CLASS` of each class drawn with
a fixed seed. A cache is in export order, so they are its last 300 images: the ones a run with
``eval_samples=300`` never trains on and measures its samples against. ``labels.csv`` beside
the PNGs keeps every label; :func:`export_labels` gives the same in memory.

:class:`DigitClassifier` is a multinomial logistic regression on the grey pixels of the training
digits at the generators' resolution; with :func:`labkit.metrics.class_coverage` it counts the
classes among generated digits (the stacked-MNIST mode count of the mode-collapse literature, on
one digit instead of three).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from labkit import _checks, images, metrics

#: Digits held out of training per class, and in all (the cache's last images).
HOLDOUT_PER_CLASS = 30
HOLDOUT = 10 * HOLDOUT_PER_CLASS
#: Seed of the draw of the held-out digits.
SPLIT_SEED = 0
#: Least class probability for a generated digit to count (:func:`labkit.metrics.class_coverage`).
CONFIDENCE = 0.9
LABELS_FILE = "labels.csv"
PIXEL_RULE = ("grey = round(v * 255 / 16) for v in 0..16, stored as 8 x 8 greyscale PNG; "
              "prepare: grey replicated to RGB, shorter side resized to the cache size "
              "(PIL bilinear), centre crop")


def digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as grey levels, in scikit-learn's order.

    Returns
    -------
    pixels : ndarray (1797, 8, 8), uint8
        round(v * 255 / 16) of each value v in 0..16 (half to even; no value lands on a half
        but v = 8 -> 127.5 -> 128).
    labels : ndarray (1797,), int64
        The digit, 0 to 9.

    >>> pixels, labels = digit_pixels()
    >>> pixels.shape, sorted(set(pixels.ravel().tolist()))[:4], np.bincount(labels)[:3].tolist()
    ((1797, 8, 8), [0, 16, 32, 48], [178, 182, 177])
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return pixels, digits.target.astype(np.int64)


def export_order(labels: np.ndarray, per_class: int = HOLDOUT_PER_CLASS,
                 seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices into ``labels`` in export order: the training digits, then ``per_class`` digits
    of each class (drawn without replacement by ``numpy.random.default_rng(seed)``, class 0
    first); each part in scikit-learn's order.

    >>> order = export_order(np.array([0, 1, 0, 1, 0, 1]), per_class=1, seed=0)
    >>> len(order), sorted(order.tolist()) == list(range(6))
    (6, True)
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        held[rng.choice(members, per_class, replace=False)] = True
    return np.concatenate([np.flatnonzero(~held), np.flatnonzero(held)])


def export_labels() -> np.ndarray:
    """The labels of the digits in export order (= cache order), (1797,) int64."""
    labels = digit_pixels()[1]
    return labels[export_order(labels)]


def export(out: str | os.PathLike, progress: bool = False) -> Path:
    """Write the 1,797 digits into the folder ``out`` as ``NNNN_D.png`` (export position NNNN,
    digit D) plus ``labels.csv`` (file, label, split, index in scikit-learn's order).

    File names sort in export order, so ``lsun prepare --src out`` (which reads a folder in
    sorted order) makes a cache whose last :data:`HOLDOUT` images are the held-out digits. The
    folder is written beside ``out`` and renamed into place, so it is complete or absent. An
    ``out`` that already holds this export is returned as it is.

    Parameters
    ----------
    out : the folder to create (it must not exist, be empty, or hold this export)
    progress : show a progress bar

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        ``out`` is a file, or a folder holding anything else.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    out = Path(out)
    pixels, labels = digit_pixels()
    order = export_order(labels)
    rows = [(f"{k:04d}_{labels[i]}.png", int(labels[i]),
             "heldout" if k >= len(order) - HOLDOUT else "train", int(i))
            for k, i in enumerate(order)]
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        if _is_export(out, rows):
            return out
        raise ValueError(f"out={str(out)!r} already exists and is not this export of the "
                         "digits; choose a new or empty folder")
    tmp = out.with_name(f".{out.name}.exporting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for (name, *_), i in zip(tqdm(rows, desc="export", unit="img", disable=not progress),
                                 order, strict=True):
            Image.fromarray(pixels[i]).save(tmp / name, format="png")
        with open(tmp / LABELS_FILE, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "label", "split", "sklearn_index"])
            writer.writerows(rows)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _is_export(folder: Path, rows: list[tuple]) -> bool:
    """Whether ``folder`` holds exactly the export described by ``rows`` (names and labels)."""
    try:
        with open(folder / LABELS_FILE, newline="") as f:
            found = [tuple(r) for r in csv.reader(f)][1:]
    except (OSError, csv.Error):
        return False
    names = {p.name for p in folder.iterdir()}
    return found == [tuple(map(str, r)) for r in rows] and names == {
        LABELS_FILE, *(r[0] for r in rows)}


def read_labels(folder: str | os.PathLike) -> np.ndarray:
    """The labels listed in ``folder/labels.csv`` (an :func:`export`), in export order."""
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"folder: no {LABELS_FILE} in {str(folder)!r}; is it a digits "
                                "export (python -m labkit digits export)?")
    with open(path, newline="") as f:
        return np.array([int(row["label"]) for row in csv.DictReader(f)], dtype=np.int64)


def prepare_cache(work: str | os.PathLike, size: int = 16) -> images.ImageCache:
    """The learner's two data steps in one call: :func:`export` into ``work/digits_png`` and
    :func:`labkit.images.prepare` into ``work/digits{size}`` (each kept if already done)."""
    size = _checks.image_size("size", size)
    source = export(Path(work) / "digits_png")
    return images.prepare(source, Path(work) / f"digits{size}", size=size, progress=False)


class DigitClassifier:
    """Multinomial logistic regression on the grey pixels of real digits, for mode counts.

    p(k | x) = softmax_k(W g(x) + b), g(x) the channel mean of the image in [-1, 1] clipped to
    [-1, 1] (a flattened S x S vector; generated images may leave the range), fitted by
    scikit-learn's ``LogisticRegression`` (L2, ``C``, lbfgs), which is deterministic.

    Parameters
    ----------
    images : Tensor or ndarray (N, 3, S, S)
        Real training images in [-1, 1] (:func:`labkit.images.to_unit_range` of a cache).
    labels : ndarray (N,)
        Their digits.
    C : float, default 1.0
        Inverse strength of the L2 penalty (scikit-learn's default).

    Examples
    --------
    >>> x = torch.zeros(4, 3, 16, 16); x[2:, :, :8] = 1.0
    >>> DigitClassifier(x, np.array([0, 0, 1, 1])).probabilities(x).argmax(1).tolist()
    [0, 0, 1, 1]
    """

    def __init__(self, images, labels: np.ndarray, C: float = 1.0) -> None:
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=_checks.finite_real("C", C, above=0), max_iter=5000)
        with _one_blas_thread():
            self.model.fit(self.features(images), np.asarray(labels))

    @staticmethod
    def features(images) -> np.ndarray:
        """(N, 3, S, S) images in [-1, 1] -> (N, S * S) float64 grey pixels, clipped to [-1, 1]."""
        x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, S, S); got {x.shape}")
        return np.clip(x.mean(1), -1, 1).reshape(len(x), -1)

    def probabilities(self, images) -> np.ndarray:
        """Class probabilities, (N, 10); a non-finite image gets NaN probabilities."""
        x = self.features(images)
        finite = np.isfinite(x).all(1)
        p = np.full((len(x), len(self.model.classes_)), np.nan)
        if finite.any():
            with _one_blas_thread():
                p[finite] = self.model.predict_proba(x[finite])
        return p

    def accuracy(self, images, labels: np.ndarray) -> float:
        """Share of ``images`` whose most probable class is their label."""
        return float(np.mean(self.probabilities(images).argmax(1) == np.asarray(labels)))

    def count(self, images, threshold: float = CONFIDENCE) -> metrics.ModeCoverage:
        """:func:`labkit.metrics.class_coverage` of ``images``; non-finite images never count."""
        p = self.probabilities(images)
        finite = np.isfinite(p).all(1)
        p[~finite] = 1 / p.shape[1]  # uniform: below any threshold > 1/K, so never counted
        return metrics.class_coverage(p, threshold)


def _one_blas_thread():
    """BLAS on one thread (threadpoolctl, a dependency of scikit-learn): the fit takes 0.1 s
    so; with two threads and another busy process on two cores it took 8 s (measured)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def split(cache: images.ImageCache, holdout: int = HOLDOUT):
    """The training and held-out images of a digits cache in [-1, 1], with their labels:
    ``(train, train_labels, heldout, heldout_labels)``.

    Raises ``ValueError`` if the cache does not hold the 1,797 digits.
    """
    labels = export_labels()
    if cache.count != len(labels):
        raise ValueError(f"cache: {str(cache.path)!r} holds {cache.count} images, not the "
                         f"{len(labels)} digits; make it with python -m labkit digits export "
                         "and lsun prepare")
    n_train = cache.count - holdout
    x = images.to_unit_range(cache.images)
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]


__all__ = ["digit_pixels", "export_order", "export_labels", "export", "read_labels",
           "prepare_cache", "DigitClassifier", "split", "HOLDOUT", "HOLDOUT_PER_CLASS",
           "SPLIT_SEED", "CONFIDENCE", "PIXEL_RULE", "LABELS_FILE"]
