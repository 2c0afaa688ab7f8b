"""Tests of labkit.metrics against hand computations on small point sets and scipy references."""

import dataclasses
import json
import math

import numpy as np
import pytest
import scipy.signal
import torch
from scipy.spatial.distance import cdist
from scipy.stats import entropy

from labkit.metrics import (
    ModeCoverage,
    class_coverage,
    critic_lipschitz,
    layer_grad_norms,
    median_filter,
    mode_coverage,
)

# Ring of 8 (PacGAN): radius 1, std 0.01, so the high-quality radius is 0.03.
RING = np.array([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])
STD = 0.01
# Offsets of length 0.02 < 0.03 in four directions.
NEAR = 0.02 * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def test_all_high_quality_samples_on_one_mode_give_log_k():
    cov = mode_coverage(RING[3] + NEAR, RING, std=STD)
    assert cov.modes == 1
    assert cov.hq_fraction == 1.0
    assert cov.reverse_kl == pytest.approx(math.log(8), abs=1e-12)
    assert cov.counts.tolist() == [0, 0, 0, 4, 0, 0, 0, 0]


def test_uniform_over_all_modes_gives_zero_reverse_kl():
    samples = np.concatenate([RING + NEAR[0], RING + NEAR[1]])
    cov = mode_coverage(samples, RING, std=STD)
    assert (cov.modes, cov.hq_fraction, cov.reverse_kl) == (8, 1.0, 0.0)
    assert cov.counts.tolist() == [2] * 8


def test_half_the_samples_far_away():
    # 2 samples on mode 0, 2 on mode 5, 4 at the origin (distance 1 from every centre).
    samples = np.concatenate([RING[0] + NEAR[:2], RING[5] + NEAR[2:], np.zeros((4, 2))])
    cov = mode_coverage(samples, RING, std=STD)
    assert cov.modes == 2
    assert cov.hq_fraction == 0.5
    # p_hat = (1/2, 1/2) on two of 8 modes: 2 * 1/2 * log(8/2) = log 4.
    assert cov.reverse_kl == pytest.approx(math.log(4), abs=1e-12)


def test_uneven_histogram_by_hand():
    centers = np.array([[0.0], [10.0]])
    samples = np.array([[0.1], [-0.2], [0.0], [9.9]])
    cov = mode_coverage(samples, centers, std=0.1)
    # p_hat = (3/4, 1/4), K = 2: 3/4 log(3/2) + 1/4 log(1/2).
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert cov.reverse_kl == pytest.approx(expected, abs=1e-12)
    assert cov.reverse_kl == pytest.approx(math.log(2) - entropy([3, 1]), abs=1e-12)


def test_threshold_is_strict_as_in_pacgan():
    # std 0.5, threshold 3: radius 1.5, all values exact in binary floating point.
    centers = np.zeros((1, 2))
    on_boundary = mode_coverage(np.array([[1.5, 0.0]]), centers, std=0.5)
    inside = mode_coverage(np.array([[0.0, 1.4999]]), centers, std=0.5)
    assert (on_boundary.modes, on_boundary.hq_fraction) == (0, 0.0)
    assert (inside.modes, inside.hq_fraction) == (1, 1.0)
    assert mode_coverage(np.array([[1.5, 0.0]]), centers, std=0.5, threshold=3.5).modes == 1


def test_sample_counts_only_for_its_nearest_centre():
    centers = np.array([[0.0, 0.0], [1.0, 0.0]])
    # Within 3 std of both centres, nearest to the second; the tie at 0.5 goes to the first.
    cov = mode_coverage(np.array([[0.6, 0.0], [0.5, 0.0]]), centers, std=1.0)
    assert cov.counts.tolist() == [1, 1]
    cov = mode_coverage(np.array([[0.6, 0.0]]), centers, std=1.0)
    assert (cov.modes, cov.counts.tolist()) == (1, [0, 1])


def test_no_high_quality_sample_gives_nan_reverse_kl_and_json():
    cov = mode_coverage(np.zeros((5, 2)), RING, std=STD)
    assert (cov.modes, cov.hq_fraction) == (0, 0.0)
    assert math.isnan(cov.reverse_kl)
    assert cov.counts.tolist() == [0] * 8
    restored = json.loads(json.dumps(cov.as_dict()))
    assert restored["modes"] == 0 and restored["counts"] == [0] * 8
    assert math.isnan(restored["reverse_kl"])


def test_non_finite_samples_are_never_high_quality():
    samples = np.array([[np.nan, 0.0], [np.inf, np.inf], [0.0, 0.0], [0.0, 0.01]])
    cov = mode_coverage(samples, np.zeros((1, 2)), std=0.1)
    assert cov.counts.tolist() == [2]
    assert cov.hq_fraction == 0.5


def test_matches_brute_force_cdist_reference():
    rng = np.random.default_rng(0)
    grid = np.array([[i, j] for i in range(-4, 5, 2) for j in range(-4, 5, 2)], dtype=float)
    samples = rng.uniform(-5, 5, size=(2500, 2))
    std = 0.3
    dist = cdist(samples, grid)
    hq = dist.min(axis=1) < 3 * std
    counts = np.bincount(dist.argmin(axis=1)[hq], minlength=25)

    cov = mode_coverage(samples, grid, std=std)
    np.testing.assert_array_equal(cov.counts, counts)
    assert 0 < cov.hq_fraction < 1
    assert cov.hq_fraction == hq.mean()
    assert cov.modes == np.count_nonzero(counts)
    assert cov.reverse_kl == pytest.approx(math.log(25) - entropy(counts), abs=1e-12)


def test_torch_input_and_as_dict_types():
    samples = torch.tensor(RING[2] + NEAR, dtype=torch.float32)
    cov = mode_coverage(samples, torch.tensor(RING), std=STD)
    assert cov.counts.tolist() == [0, 0, 4, 0, 0, 0, 0, 0]
    d = cov.as_dict()
    assert d == {
        "modes": 1,
        "hq_fraction": 1.0,
        "reverse_kl": pytest.approx(math.log(8)),
        "counts": [0, 0, 4, 0, 0, 0, 0, 0],
    }
    assert [type(d[k]) for k in ("modes", "hq_fraction", "reverse_kl")] == [int, float, float]
    assert all(type(c) is int for c in d["counts"])


def test_result_is_frozen():
    cov = mode_coverage(RING, RING, std=STD)
    assert isinstance(cov, ModeCoverage)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cov.modes = 3
    with pytest.raises(ValueError, match="read-only"):
        cov.counts[0] = 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": np.zeros(2)}, "samples must be a non-empty 2-D"),
        ({"samples": np.zeros((0, 2))}, r"samples .* got shape \(0, 2\)"),
        ({"centers": np.zeros((0, 2))}, "centers must be a non-empty 2-D"),
        ({"samples": np.zeros((3, 3))}, "same dimension d"),
        ({"centers": np.array([[np.nan, 0.0]])}, "centers must be finite"),
        ({"std": 0.0}, "std must be a finite number > 0, got 0.0"),
        ({"std": -1.0}, "std must be a finite number > 0, got -1.0"),
        ({"std": float("nan")}, "std must be a finite number > 0"),
        ({"threshold": 0}, "threshold must be a finite number > 0, got 0"),
    ],
)
def test_mode_coverage_rejects_bad_input(kwargs, message):
    args = {"samples": np.zeros((3, 2)), "centers": RING, "std": STD} | kwargs
    with pytest.raises(ValueError, match=message):
        mode_coverage(**args)


# ----------------------------------------------------------------------- class_coverage


def test_one_class_only_gives_one_class_and_log_k():
    p = np.full((1000, 10), 0.005)
    p[:, 3] = 0.955
    cov = class_coverage(p)
    assert (cov.modes, cov.hq_fraction, cov.counts.tolist()) == (1, 1.0, [0, 0, 0, 1000] + [0] * 6)
    assert cov.reverse_kl == pytest.approx(math.log(10))


def test_classes_equally_often_give_zero_kl_and_the_threshold_counts_confident_ones():
    p = np.eye(10)[np.arange(1000) % 10] * 0.9 + 0.01  # rows sum to 1, top class 0.91
    p[::2] = np.full(10, 0.1)  # every other sample undecided: below 0.9, never counted
    cov = class_coverage(p)
    assert cov.modes == 5 and cov.hq_fraction == 0.5  # the odd classes only
    assert cov.reverse_kl == pytest.approx(math.log(2))  # uniform over 5 of 10: log(10 / 5)
    assert class_coverage(p, threshold=0.91).modes == 5  # >=, not >
    assert class_coverage(p, threshold=0.92).counts.sum() == 0


def test_uneven_class_histogram_by_hand_and_against_scipy():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    p = np.eye(3)[labels]
    cov = class_coverage(torch.tensor(p))
    p_hat = np.array([0.6, 0.3, 0.1])
    assert cov.reverse_kl == pytest.approx(float(np.sum(p_hat * np.log(3 * p_hat))))
    assert cov.reverse_kl == pytest.approx(entropy(p_hat, np.full(3, 1 / 3)))
    assert cov.as_dict()["counts"] == [6, 3, 1]


@pytest.mark.parametrize(("p", "threshold", "message"), [
    (np.array([[0.5, 0.6]]), 0.9, "sum to 1"),
    (np.array([[np.nan, 1.0]]), 0.9, "must be finite"),
    (np.array([[-0.5, 1.5]]), 0.9, ">= 0"),
    (np.eye(2), 1.5, r"threshold must be a probability in \(0, 1\], got 1.5"),
    (np.eye(2), 0, "threshold must be a finite number > 0"),
    (np.ones(3), 0.9, "probabilities must be a non-empty 2-D"),
])
def test_class_coverage_rejects_bad_input(p, threshold, message):
    with pytest.raises(ValueError, match=message):
        class_coverage(p, threshold)


# ----------------------------------------------------------------------- critic_lipschitz


def _pair(batch=16, shape=(2,), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, *shape, generator=g, dtype=torch.float64),
        torch.randn(batch, *shape, generator=g, dtype=torch.float64),
    )


def test_lipschitz_of_linear_critic_is_norm_of_w():
    w = torch.tensor([3.0, -4.0], dtype=torch.float64)
    real, fake = _pair()
    assert critic_lipschitz(lambda x: x @ w, real, fake) == pytest.approx(5.0, abs=1e-12)


def test_lipschitz_of_image_critic_flattens_each_sample():
    w = torch.tensor([[[1.0, 2.0], [2.0, 4.0]]], dtype=torch.float64)  # ||w|| = 5
    real, fake = _pair(shape=(1, 2, 2))
    estimate = critic_lipschitz(lambda x: (x * w).sum(dim=(1, 2, 3)), real, fake)
    assert estimate == pytest.approx(5.0, abs=1e-12)


def test_lipschitz_of_half_squared_norm_by_hand():
    # f(x) = ||x||^2 / 2, grad f(x) = x: norms 5, 1 (real) and 1, 2 (fake); an interpolate lies
    # on a segment, where the convex ||x|| stays below its endpoint values: the estimate is 5.
    real = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    fake = torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    estimate = critic_lipschitz(lambda x: 0.5 * (x**2).sum(dim=1), real, fake)
    assert estimate == pytest.approx(5.0, rel=1e-6)


def test_lipschitz_uses_per_sample_interpolates_from_the_generator():
    # f(x) = -cos(x_1): |f'| = |sin x_1| is 0 at x_1 = +-pi (real, fake) and |sin(2 pi eps)| at
    # the interpolate eps pi + (1 - eps)(-pi), eps the generator's draws in shape (B, 1).
    real = torch.tensor([[math.pi, 0.0]] * 4, dtype=torch.float64)
    fake = -real
    eps = torch.rand((4, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = float(torch.sin(2 * math.pi * eps).abs().max())

    def critic(x):
        return -torch.cos(x[:, 0])

    estimate = critic_lipschitz(critic, real, fake, generator=torch.Generator().manual_seed(7))
    assert expected > 0.1
    assert estimate == pytest.approx(expected, abs=1e-12)


def test_lipschitz_of_ensemble_is_per_member():
    w = torch.tensor([[3.0, 4.0], [5.0, 12.0], [0.0, -1.0]], dtype=torch.float64)
    real, fake = _pair(batch=3 * 8)
    real, fake = real.view(3, 8, 2), fake.view(3, 8, 2)
    estimate = critic_lipschitz(lambda x: torch.einsum("sbd,sd->sb", x, w), real, fake)
    assert isinstance(estimate, np.ndarray) and estimate.shape == (3,)
    np.testing.assert_allclose(estimate, [5.0, 13.0, 1.0], atol=1e-12)


def test_lipschitz_leaves_parameter_grads_alone_and_works_under_no_grad():
    torch.manual_seed(0)
    linear = torch.nn.Linear(2, 1).double()
    real, fake = _pair()
    with torch.no_grad():
        estimate = critic_lipschitz(lambda x: linear(x).squeeze(1), real, fake)
    assert estimate == pytest.approx(float(linear.weight.detach().norm()), abs=1e-12)
    assert linear.weight.grad is None and linear.bias.grad is None


@pytest.mark.parametrize(
    ("critic", "real_shape", "message"),
    [
        (lambda x: x.sum(1), (4, 3), "real and fake must be non-empty tensors of the same shape"),
        (lambda x: x[:, :1], (4, 2), r"critic must map .* got input \(4, 2\) -> output \(4, 1\)"),
        (lambda x: x.sum(), (4, 2), r"critic must map .* output \(\)"),
    ],
)
def test_lipschitz_rejects_bad_shapes(critic, real_shape, message):
    with pytest.raises(ValueError, match=message):
        critic_lipschitz(critic, torch.zeros(real_shape), torch.zeros(4, 2))


# ----------------------------------------------------------------------- layer_grad_norms


def test_layer_grad_norms_by_hand():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        net[0].bias.zero_()
        net[1].weight.copy_(torch.tensor([[2.0, -1.0]]))
    net[1].bias.requires_grad_(False)
    net(torch.tensor([[1.0, 2.0, 2.0]])).sum().backward()
    # y1 = W0 x = (1, 2); dL/dy1 = W1 = (2, -1): grad W0 = (2, -1)^T (1, 2, 2), grad b0 = (2, -1),
    # grad W1 = y1 = (1, 2); the frozen bias has no gradient.
    norms = layer_grad_norms(net)
    assert list(norms) == ["0.weight", "0.bias", "1.weight"]
    assert norms["0.weight"] == pytest.approx(math.sqrt(45), rel=1e-6)
    assert norms["0.bias"] == pytest.approx(math.sqrt(5), rel=1e-6)
    assert norms["1.weight"] == pytest.approx(math.sqrt(5), rel=1e-6)


def test_layer_grad_norms_before_backward_is_empty():
    assert layer_grad_norms(torch.nn.Linear(2, 2)) == {}


def test_median_filter_is_the_running_median():
    values = np.random.default_rng(0).normal(size=500)
    ours = median_filter(values, 101)
    np.testing.assert_array_equal(ours[50:-50], scipy.signal.medfilt(values, 101)[50:-50])
    with pytest.raises(ValueError, match="width=100 is not allowed; it must be an odd integer"):
        median_filter(values, 100)
