"""Tests of labkit.digits: the real digits reach the cache through the LSUN data path with the
stated pixel rule (checked against an independent bilinear resampling in numpy), the held-out
digits are the cache's last ones, and the classifier counts classes as it should."""

import csv
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from labkit import digits, images


def bilinear_enlarge(pixels: np.ndarray, size: int) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, size, size): bilinear with half-pixel centres and edge pixels
    repeated, rounded half up after the horizontal pass and after the vertical one (what PIL's
    BILINEAR computes when enlarging by a power of two, whose weights are exact in its fixed
    point)."""
    def one_axis(x: np.ndarray, axis: int) -> np.ndarray:
        n = x.shape[axis]
        u = (np.arange(size) + 0.5) * n / size - 0.5
        lo = np.floor(u).astype(int)
        w = (u - lo).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        a = np.take(x, np.clip(lo, 0, n - 1), axis=axis).astype(float)
        b = np.take(x, np.clip(lo + 1, 0, n - 1), axis=axis).astype(float)
        return np.floor(a * (1 - w) + b * w + 0.5)

    return one_axis(one_axis(pixels, 2), 1).astype(np.uint8)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return digits.export(tmp_path_factory.mktemp("digits") / "png")


@pytest.fixture(scope="module")
def cache16(export, tmp_path_factory):
    return images.prepare(export, tmp_path_factory.mktemp("cache16"), size=16, progress=False)


def test_grey_levels_are_the_rule():
    pixels, labels = digits.digit_pixels()
    raw = load_digits()
    np.testing.assert_array_equal(pixels, np.floor(raw.images * 255 / 16 + 0.5))  # no ties but 8
    assert sorted(set(pixels.ravel().tolist())) == [0, 16, 32, 48, 64, 80, 96, 112, 128, 143,
                                                    159, 175, 191, 207, 223, 239, 255]
    np.testing.assert_array_equal(labels, raw.target)


def test_export_order_holds_out_30_per_class_last():
    labels = load_digits().target
    order = digits.export_order(labels)
    assert sorted(order.tolist()) == list(range(1797))
    held = order[-digits.HOLDOUT:]
    assert np.bincount(labels[held]).tolist() == [30] * 10
    assert np.all(np.diff(order[:-digits.HOLDOUT]) > 0) and np.all(np.diff(held) > 0)
    np.testing.assert_array_equal(digits.export_labels(), labels[order])


@pytest.mark.parametrize("size", [16, 32])
def test_cache_holds_exactly_the_digits_under_the_pixel_rule(export, cache16, size, tmp_path):
    cache = cache16 if size == 16 else images.prepare(export, tmp_path, size=size, progress=False)
    raw = load_digits()
    order = digits.export_order(raw.target)
    grey = np.floor(raw.images[order] * 255 / 16 + 0.5).astype(np.uint8)
    expected = bilinear_enlarge(grey, size)
    assert cache.count == 1797 and cache.manifest["skipped"] == []
    np.testing.assert_array_equal(cache.images, np.repeat(expected[:, None], 3, axis=1))


def test_export_writes_lossless_pngs_and_labels(export):
    from PIL import Image

    rows = list(csv.DictReader(open(export / digits.LABELS_FILE)))
    assert len(rows) == 1797 and rows[0]["file"] == "0000_1.png"
    assert [r["split"] for r in rows].count("heldout") == digits.HOLDOUT
    assert all(r["split"] == "heldout" for r in rows[-digits.HOLDOUT:])
    pixels, labels = digits.digit_pixels()
    for row in rows[::97]:
        with Image.open(export / row["file"]) as image:
            assert image.mode == "L" and image.format == "PNG"
            np.testing.assert_array_equal(np.asarray(image), pixels[int(row["sklearn_index"])])
        assert int(row["label"]) == labels[int(row["sklearn_index"])]
    np.testing.assert_array_equal(digits.read_labels(export), digits.export_labels())


def test_export_again_is_kept_and_other_folders_are_refused(export, tmp_path):
    before = (export / "0000_1.png").stat().st_mtime_ns
    assert digits.export(export) == export
    assert (export / "0000_1.png").stat().st_mtime_ns == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not this export"):
        digits.export(tmp_path / "other")
    assert (tmp_path / "other" / "x.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert len(list(digits.export(tmp_path / "empty").glob("*.png"))) == 1797


@pytest.fixture(scope="module")
def classifier(cache16):
    train, labels, heldout, heldout_labels = digits.split(cache16)
    return digits.DigitClassifier(train, labels), heldout, heldout_labels, train, labels


def test_classifier_accuracy_on_heldout_digits(classifier):
    clf, heldout, heldout_labels, train, labels = classifier
    assert len(train) == 1497 and len(heldout) == 300
    accuracy = clf.accuracy(heldout, heldout_labels)
    assert accuracy >= 0.95
    assert accuracy == pytest.approx(289 / 300)  # deterministic (lbfgs)


def test_mode_count_of_one_class_and_of_the_real_digits(classifier):
    clf, heldout, _, train, labels = classifier
    one = clf.count(train[torch.from_numpy(labels == 4)])
    assert one.modes == 1 and one.counts[4] > 0
    assert one.reverse_kl == pytest.approx(math.log(10))
    real = clf.count(heldout)
    assert real.modes == 10
    assert real.reverse_kl < 0.02
    assert real.hq_fraction == pytest.approx(0.87)


def test_classifier_ignores_non_finite_images_and_checks_shapes(classifier):
    clf, heldout = classifier[0], classifier[1]
    x = heldout[:5].clone()
    x[2] = float("nan")
    p = clf.probabilities(x)
    assert np.isnan(p[2]).all() and np.allclose(p[[0, 1, 3, 4]].sum(1), 1)
    assert clf.count(x).counts.sum() == clf.count(heldout[[0, 1, 3, 4]]).counts.sum()
    with pytest.raises(ValueError, match=r"images must have shape \(N, 3, S, S\)"):
        clf.probabilities(torch.zeros(2, 16, 16))


def test_split_refuses_a_cache_of_other_images(tmp_path):
    cache = images.save_cache(np.zeros((20, 3, 16, 16), np.uint8), tmp_path, "zeros")
    with pytest.raises(ValueError, match="holds 20 images, not the 1797 digits"):
        digits.split(cache)
