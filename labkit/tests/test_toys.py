"""Tests of labkit.toys against analytic facts: exact centre positions, sampling laws checked with
scipy.stats (KS and chi-square at a fixed seed), seed determinism and input validation."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from labkit import toys


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- Example 1 -------------------------------------------------------------------------------


def test_parallel_lines_first_column_is_theta_and_z_is_uniform():
    x = toys.parallel_lines(0.7, 2000, gen(1))
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    assert torch.all(x[:, 0] == torch.tensor(0.7, dtype=torch.float32))
    assert st.kstest(x[:, 1].numpy(), "uniform").pvalue > 1e-3


def test_parallel_lines_share_z_under_the_same_seed():
    x0 = toys.parallel_lines(0, 100, gen(5))
    x1 = toys.parallel_lines(-0.4, 100, gen(5))
    assert torch.equal(x0[:, 1], x1[:, 1])
    assert torch.allclose(torch.linalg.norm(x1 - x0, dim=1), torch.full((100,), 0.4))
    assert not torch.equal(x0[:, 1], toys.parallel_lines(0, 100, gen(6))[:, 1])


def test_parallel_lines_keeps_the_gradient_of_theta():
    theta = torch.tensor(0.3, requires_grad=True)
    toys.parallel_lines(theta, 10, gen())[:, 0].sum().backward()
    assert theta.grad.item() == 10.0  # d/dtheta sum_i theta = n


# ---- Gaussian mixtures -----------------------------------------------------------------------


def test_ring_centres_by_hand():
    expected = [[2, 0], [0, 2], [-2, 0], [0, -2]]
    np.testing.assert_allclose(toys.ring(4, radius=2.0).centers.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("modes", [1, 3, 8, 25])
def test_ring_has_k_distinct_centres_on_the_circle(modes):
    c = toys.ring(modes, radius=1.5).centers.double().numpy()
    assert c.shape == (modes, 2)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.5, rtol=1e-6)
    if modes > 1:  # neighbours are a chord 2 R sin(pi / K) apart: no mode is duplicated
        d = np.linalg.norm(c[:, None] - c[None], axis=2) + np.diag(np.full(modes, np.inf))
        np.testing.assert_allclose(d.min(), 2 * 1.5 * math.sin(math.pi / modes), rtol=1e-5)


def test_grid_default_is_the_25_gaussian_benchmark():
    g = toys.grid()
    expected = sorted(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    assert sorted(map(tuple, g.centers.tolist())) == expected
    assert g.std == 0.05 and g.dim == 2
    assert toys.grid(1).centers.tolist() == [[0.0, 0.0]]


def test_mixture_samples_have_uniform_modes_and_the_right_spread():
    ring = toys.ring()  # radius 2, std 0.02: the modes cannot be confused
    x = ring.sample(8000, gen(2)).double()
    d = torch.cdist(x, ring.centers.double())
    k = d.argmin(dim=1)
    counts = np.bincount(k.numpy(), minlength=8)
    assert st.chisquare(counts).pvalue > 1e-3
    residual = (x - ring.centers.double()[k]).numpy()
    assert abs(residual.mean()) < 5 * 0.02 / math.sqrt(x.numel())
    assert residual.std() == pytest.approx(0.02, rel=0.03)
    assert st.kstest(residual.ravel() / 0.02, "norm").pvalue > 1e-3


def test_mixture_sampling_is_deterministic_per_seed():
    g = toys.grid(3, std=0.1)
    a, b, c = g.sample(50, gen(9)), g.sample(50, gen(9)), g.sample(50, gen(10))
    assert a.dtype == torch.float32 and a.shape == (50, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert g.sample(5, gen(), dtype=torch.float64).dtype == torch.float64


# ---- swiss roll ------------------------------------------------------------------------------


def test_swiss_roll_without_noise_lies_on_the_spiral_r_equals_t():
    scale = 1 / 7.5
    x = toys.swiss_roll(3000, noise=0.0, generator=gen(3), dtype=torch.float64).numpy() / scale
    t = np.linalg.norm(x, axis=1)  # (t cos t, t sin t) has norm t
    np.testing.assert_allclose(x, np.stack([t * np.cos(t), t * np.sin(t)], axis=1), atol=1e-9)
    lo, hi = 1.5 * np.pi, 4.5 * np.pi
    assert t.min() >= lo and t.max() <= hi
    assert st.kstest(t, "uniform", args=(lo, hi - lo)).pvalue > 1e-3


def test_swiss_roll_noise_is_gaussian_with_the_given_std():
    clean = toys.SwissRoll(noise=0.0, scale=1.0).sample(4000, gen(4), dtype=torch.float64)
    noisy = toys.SwissRoll(noise=0.5, scale=1.0).sample(4000, gen(4), dtype=torch.float64)
    z = ((noisy - clean) / 0.5).numpy().ravel()
    assert st.kstest(z, "norm").pvalue > 1e-3
    assert z.std() == pytest.approx(1.0, abs=0.03)


def test_swiss_roll_function_is_the_sampler_and_follows_gan_toy_defaults():
    roll = toys.SwissRoll()
    assert (roll.noise, roll.scale) == (0.25, 1 / 7.5)
    assert roll.dim == 2 and roll.centers is None and roll.std is None
    assert torch.equal(toys.swiss_roll(64, generator=gen(8)), roll.sample(64, gen(8)))


# ---- make_target -----------------------------------------------------------------------------


def test_make_target_builds_each_sampler():
    assert torch.equal(toys.make_target("ring", modes=5).centers, toys.ring(5).centers)
    assert toys.make_target("grid", side=3).centers.shape == (9, 2)
    roll = toys.make_target("swiss_roll", noise=0.1)
    assert isinstance(roll, toys.SwissRoll) and roll.noise == 0.1
    for name in ("ring", "grid", "swiss_roll"):
        assert toys.make_target(name).sample(7, gen()).shape == (7, 2)


def test_make_target_unknown_name_lists_the_known_ones():
    assert toys.TARGETS == ("ring", "grid", "swiss_roll")
    with pytest.raises(ValueError, match="name must be one of ring, grid, swiss_roll, got 'moons'"):
        toys.make_target("moons")


# ---- Figure 2 pair ---------------------------------------------------------------------------


def test_figure2_pair_densities_and_samples():
    pair = toys.figure2_pair()
    x = pair.grid(161)
    assert x[0] == -8.0 and x[-1] == 8.0 and len(x) == 161
    np.testing.assert_allclose(pair.real.pdf(x), st.norm.pdf(x, -5.0, 1.0), rtol=1e-12)
    np.testing.assert_allclose(pair.fake.pdf(x), st.norm.pdf(x, 5.0, 1.0), rtol=1e-12)
    s = pair.fake.sample(4000, gen(7), dtype=torch.float64)
    assert s.shape == (4000, 1)
    assert st.kstest(s.numpy().ravel(), "norm", args=(5.0, 1.0)).pvalue > 1e-3
    other = toys.figure2_pair(mu_real=0.0, mu_fake=2.0, std=0.5)
    np.testing.assert_allclose(other.fake.pdf(x), st.norm.pdf(x, 2.0, 0.5), rtol=1e-12)


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: toys.parallel_lines(0.0, 0), r"n must be an integer >= 1, got 0"),
        (lambda: toys.parallel_lines(0.0, 2.5), r"n must be an integer >= 1, got 2.5"),
        (lambda: toys.parallel_lines(0.0, True), r"n must be an integer >= 1"),
        (lambda: toys.parallel_lines(float("nan"), 3), r"theta must be a finite number"),
        (lambda: toys.parallel_lines([0.0, 1.0], 3), r"theta must be a finite number"),
        (lambda: toys.ring(modes=0), r"modes must be an integer >= 1, got 0"),
        (lambda: toys.ring(radius=-1.0), r"radius must be a finite number > 0, got -1.0"),
        (lambda: toys.ring(std=0.0), r"std must be a finite number > 0, got 0.0"),
        (lambda: toys.grid(side=0), r"side must be an integer >= 1, got 0"),
        (lambda: toys.grid(spacing=float("inf")), r"spacing must be a finite number > 0"),
        (lambda: toys.grid(std=-0.1), r"std must be a finite number > 0"),
        (lambda: toys.GaussianMixture([1.0, 2.0], 0.1), r"centers must have shape \(K, d\)"),
        (lambda: toys.GaussianMixture([[np.nan, 0.0]], 0.1), r"centers must be finite"),
        (lambda: toys.ring().sample(-1), r"n must be an integer >= 1, got -1"),
        (lambda: toys.SwissRoll(noise=-0.1), r"noise must be a finite number >= 0, got -0.1"),
        (lambda: toys.SwissRoll(scale=0), r"scale must be a finite number > 0, got 0"),
        (lambda: toys.swiss_roll(0), r"n must be an integer >= 1, got 0"),
        (lambda: toys.figure2_pair(std=0.0), r"std must be a finite number > 0, got 0.0"),
        (lambda: toys.figure2_pair(mu_real=np.inf), r"mean must be a finite number"),
        (lambda: toys.figure2_pair(x_range=(8, -8)), r"x_range must be finite \(x_min, x_max\)"),
        (lambda: toys.figure2_pair().grid(1), r"n_points must be an integer >= 2, got 1"),
        (lambda: toys.figure2_pair().real.sample(0), r"n must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
