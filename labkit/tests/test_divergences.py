"""Tests of labkit.divergences against closed forms (Gaussian KL, Gaussian TV through the normal
CDF, log 2 for disjoint supports), scipy quadrature, and the paper's Example 1 table."""

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy.integrate import quad, trapezoid

from labkit.divergences import example1, js, kl, tv

X = np.linspace(-30.0, 30.0, 60001)  # fine grid; Gaussians below are negligible at the ends


def normal(m, s):
    return st.norm.pdf(X, m, s)


def unit_mass(f, x):
    """Scale f so that its trapezoid-rule integral on x is exactly 1 (the rule the module uses)."""
    return f / trapezoid(f, x)


# ---- Example 1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [0.5, -1.0, 1e-3, 3])
def test_example1_table_apart(theta):
    d = example1(theta)
    assert d == {"W": abs(theta), "JS": math.log(2), "KL": math.inf, "TV": 1.0}


def test_example1_table_at_zero_and_vectorised():
    assert example1(0.0) == {"W": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}
    theta = np.array([[-0.5, 0.0], [0.25, 1.0]])
    d = example1(theta)
    np.testing.assert_array_equal(d["W"], [[0.5, 0.0], [0.25, 1.0]])
    np.testing.assert_array_equal(d["JS"], [[math.log(2), 0.0], [math.log(2), math.log(2)]])
    np.testing.assert_array_equal(d["KL"], [[math.inf, 0.0], [math.inf, math.inf]])
    np.testing.assert_array_equal(d["TV"], [[1.0, 0.0], [1.0, 1.0]])


def test_example1_js_and_tv_match_the_numeric_versions_on_disjoint_supports():
    # Along x the two laws of Example 1 are point masses at 0 and theta; any pair of densities
    # with disjoint supports has the same JS, KL and TV.
    x = np.linspace(-1.0, 2.0, 3001)
    p = unit_mass(np.where((x >= -0.5) & (x <= 0.5), 1.0, 0.0), x)
    q = unit_mass(np.where(x >= 1.0, 2.0 - x, 0.0), x)  # a triangle: the shape does not matter
    d = example1(1.5)
    assert js(p, q, x) == pytest.approx(d["JS"], rel=1e-12)
    assert tv(p, q, x) == pytest.approx(d["TV"], rel=1e-12)
    assert kl(p, q, x) == d["KL"] == kl(q, p, x)


# ---- KL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m1", "s1", "m2", "s2"), [(0.0, 1.0, 1.0, 2.0), (-2.0, 0.5, 1.5, 1.2)])
def test_kl_of_gaussians_matches_the_closed_form(m1, s1, m2, s2):
    expected = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert kl(normal(m1, s1), normal(m2, s2), X) == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_kl_is_zero_for_equal_densities_and_infinite_off_support():
    p = normal(0.0, 1.0)
    assert kl(p, p, X) == 0.0
    x = np.linspace(0.0, 1.0, 101)
    q = np.where(x <= 0.5, 2.0, 0.0)  # q = 0 < p on (0.5, 1]
    assert kl(np.ones_like(x), q, x) == math.inf


def test_kl_of_nested_uniforms_is_log_of_the_length_ratio():
    # KL(U[0, 1/2] || U[0, 1]) = log 2; 0 log 0 = 0 where p vanishes and q does not.
    x = np.linspace(0.0, 1.0, 100001)
    p = np.where(x <= 0.5, 2.0, 0.0)
    assert kl(p, np.ones_like(x), x) == pytest.approx(math.log(2), rel=1e-4)


# ---- JS --------------------------------------------------------------------------------------


def test_js_of_disjoint_uniforms_is_log2():
    x = np.linspace(0.0, 4.0, 4001)
    p = unit_mass(np.where(x <= 1.0, 1.0, 0.0), x)  # U[0, 1]
    q = unit_mass(np.where((x >= 2.0) & (x <= 3.0), 1.0, 0.0), x)  # U[2, 3]
    assert js(p, q, x) == pytest.approx(math.log(2), rel=1e-12)
    assert js(q, p, x) == pytest.approx(math.log(2), rel=1e-12)


def test_js_of_gaussians_matches_scipy_quad():
    p, q = st.norm(0.0, 1.0).pdf, st.norm(1.0, 1.5).pdf

    def integrand(t):
        m = 0.5 * (p(t) + q(t))
        return 0.5 * p(t) * math.log(p(t) / m) + 0.5 * q(t) * math.log(q(t) / m)

    expected = quad(integrand, -25, 25, points=[0.0, 1.0], limit=200)[0]
    assert js(p(X), q(X), X) == pytest.approx(expected, rel=1e-8)
    assert 0 < expected < math.log(2)


# ---- TV --------------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [0.0, 0.5, 1.0, 3.0])
def test_tv_of_unit_gaussians_matches_the_normal_cdf(delta):
    expected = 2 * st.norm.cdf(abs(delta) / 2) - 1
    assert tv(normal(0.0, 1.0), normal(delta, 1.0), X) == pytest.approx(expected, abs=1e-7)


# ---- validation ------------------------------------------------------------------------------

GRID = np.linspace(0.0, 1.0, 5)
ONES = np.ones(5)


@pytest.mark.parametrize("f", [kl, js, tv])
@pytest.mark.parametrize(
    ("p", "q", "x", "match"),
    [
        (np.ones(4), ONES, GRID, r"p must have the shape of x \(5,\), got \(4,\)"),
        (ONES, np.ones((5, 1)), GRID, r"q must have the shape of x"),
        (np.array([1.0, -0.5, 1, 1, 1]), ONES, GRID, r"p must be >= 0 \(a density\), got min -0.5"),
        (ONES, np.array([1.0, np.nan, 1, 1, 1]), GRID, r"q must be finite"),
        (ONES, ONES, GRID[::-1], r"x must be strictly increasing"),
        (ONES, ONES, np.array([0.0, 0.5, 0.5, 0.7, 1.0]), r"x must be strictly increasing"),
        (ONES, ONES, np.array([0.0, 0.5, np.inf, 0.7, 1.0]), r"x must be finite"),
        (np.ones(1), np.ones(1), np.zeros(1), r"x must be a 1-D grid of at least 2 points"),
        (ONES, ONES, GRID[None], r"x must be a 1-D grid"),
    ],
)
def test_bad_densities_raise(f, p, q, x, match):
    with pytest.raises(ValueError, match=match):
        f(p, q, x)


def test_example1_rejects_nan():
    with pytest.raises(ValueError, match=r"theta must be finite"):
        example1([0.0, np.nan])
