"""Tests of labkit.ot against independent truths: scipy's linear_sum_assignment and
wasserstein_distance, LP duality certificates, translations (W1 = ||v||), the parallel lines of
Example 1 (W1 = |theta|), finite-difference gradients, and the error messages."""

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from labkit.ot import optimal_transport, sliced_w, w1, w1_1d, w1_gradient
from labkit.toys import parallel_lines


def rng(seed=0):
    return np.random.default_rng(seed)


def simplex(n, seed):
    w = rng(seed).random(n) + 0.1
    return w / w.sum()


# ---- w1 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d"), [(1, 2), (50, 1), (200, 2), (120, 5)])
def test_w1_equals_the_optimal_assignment(n, d):
    x, y = rng(n).normal(size=(n, d)), rng(n + 1).normal(size=(n, d)) + 0.5
    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    expected = cost[rows, cols].mean()
    assert w1(x, y) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert w1(torch.tensor(x), torch.tensor(y)) == pytest.approx(expected, rel=1e-12)


def test_w1_with_weights_in_1d_equals_scipy():
    x, y = rng(1).normal(size=37), rng(2).normal(size=23) * 2
    a, b = simplex(37, 3), simplex(23, 4)
    expected = st.wasserstein_distance(x, y, a, b)
    assert w1(x[:, None], y[:, None], a, b) == pytest.approx(expected, rel=1e-10)


def test_w1_of_a_translation_is_the_length_of_the_shift():
    x = rng(5).normal(size=(60, 3))
    v = np.array([0.3, -1.2, 0.4])
    assert w1(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-12)
    # gradient of ||v|| is v / ||v|| (any optimal plan gives it: W1 is differentiable here)
    vt = torch.tensor(v, requires_grad=True)
    w = w1(torch.tensor(x), torch.tensor(x) + vt)
    w.backward()
    np.testing.assert_allclose(vt.grad.numpy(), v / np.linalg.norm(v), atol=1e-12)


@pytest.mark.filterwarnings("error")  # notebook 01's gradient in theta, without a torch warning
@pytest.mark.parametrize("theta", [-1.0, -0.3, 0.0, 0.7])
def test_w1_between_parallel_lines_is_abs_theta(theta):
    seed = torch.Generator().manual_seed(11)
    x0 = parallel_lines(0.0, 150, seed)
    t = torch.tensor(theta, requires_grad=True)
    w = w1(x0, parallel_lines(t, 150, torch.Generator().manual_seed(11)))
    assert w.dtype == torch.float32
    assert w.item() == pytest.approx(abs(theta), abs=1e-6)
    w.backward()
    # dW/dtheta = sign(theta); at theta = 0 the pairs coincide and the subgradient 0 comes out
    assert torch.isfinite(t.grad) and t.grad.item() == pytest.approx(np.sign(theta), abs=1e-6)


def test_w1_gradient_matches_central_finite_differences():
    x, y = rng(7).normal(size=(12, 2)), rng(8).normal(size=(17, 2))
    a, b = simplex(12, 9), simplex(17, 10)
    xt = torch.tensor(x, requires_grad=True)
    w1(xt, y, a, b).backward()
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i, j in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[i, j] = eps
        numeric[i, j] = (w1(x + step, y, a, b) - w1(x - step, y, a, b)) / (2 * eps)
    np.testing.assert_allclose(xt.grad.numpy(), numeric, atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
def test_exact_w1_gradient_equals_central_finite_differences(weighted):
    # The plan-weighted sum of unit vectors from matched y_j to x_i, against (W1(x + h e) -
    # W1(x - h e)) / 2h computed by the solver itself; the plan is unique for generic points.
    x, y = rng(11).normal(size=(15, 2)), rng(12).normal(size=(20, 2)) + [1.0, 0.0]
    a, b = (simplex(15, 13), simplex(20, 14)) if weighted else (None, None)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i, j in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[i, j] = h
        numeric[i, j] = (w1(x + step, y, a, b) - w1(x - step, y, a, b)) / (2 * h)
    exact = w1_gradient(x, y, a, b)
    np.testing.assert_allclose(exact, numeric, atol=1e-8)
    weights = np.full(15, 1 / 15) if a is None else a
    assert np.all(np.linalg.norm(exact, axis=1) <= weights + 1e-12)  # |grad_i| <= a_i


def test_exact_w1_gradient_of_a_translation_is_the_unit_shift_over_n():
    # y = x + v with |v| = 5 larger than the spread: the plan is the shift, every gradient -v/(5n).
    x = rng(5).random(size=(8, 2))
    v = np.array([3.0, 4.0])
    np.testing.assert_allclose(w1_gradient(x, x + v), np.tile(-v / 5 / 8, (8, 1)), atol=1e-12)
    assert not np.any(w1_gradient(x, x))  # coinciding points: the zero subgradient


def test_w1_gradient_is_finite_when_points_coincide():
    # x = y: the only zero-cost plan is the identity, and every matched pair coincides, where
    # sqrt(|x - y|^2) would give 0 * inf = NaN. The subgradient used is 0.
    y = torch.tensor(rng(3).normal(size=(20, 2)))
    x = y.clone().requires_grad_(True)
    w = w1(x, y)
    w.backward()
    assert w.item() == 0.0
    assert torch.all(x.grad == 0)
    # half of the points shared: still finite
    x = torch.cat([y[:10], torch.tensor(rng(4).normal(size=(10, 2)))]).requires_grad_(True)
    w1(x, y).backward()
    assert torch.isfinite(x.grad).all()


def test_w1_return_types():
    x = np.zeros((3, 2))
    assert type(w1(x, x + 1)) is float
    assert type(w1(torch.zeros(3, 2), torch.ones(3, 2))) is float
    w = w1(torch.zeros(3, 2, requires_grad=True), torch.ones(3, 2))
    assert isinstance(w, torch.Tensor) and w.ndim == 0 and w.requires_grad
    assert w.item() == pytest.approx(math.sqrt(2))


# ---- optimal_transport -----------------------------------------------------------------------


def test_optimal_transport_is_certified_by_lp_duality():
    x, y = rng(12).normal(size=(25, 2)), rng(13).normal(size=(31, 2)) + 1
    a, b = simplex(25, 14), simplex(31, 15)
    sol = optimal_transport(x, y, a, b)
    cost = cdist(x, y)
    # primal feasible
    assert (sol.plan >= 0).all()
    np.testing.assert_allclose(sol.plan.sum(axis=1), a, atol=1e-12)
    np.testing.assert_allclose(sol.plan.sum(axis=0), b, atol=1e-12)
    # dual feasible, equal objectives: the plan is optimal
    slack = cost - sol.f[:, None] - sol.g[None, :]
    assert (slack >= -1e-10).all()
    assert np.abs(slack[sol.plan > 0]).max() < 1e-10  # complementary slackness
    assert np.sum(sol.plan * cost) == pytest.approx(sol.w1, rel=1e-12)
    assert a @ sol.f + b @ sol.g == pytest.approx(sol.w1, rel=1e-10)
    assert w1(x, y, a, b) == pytest.approx(sol.w1, rel=1e-12)


# ---- w1_1d -----------------------------------------------------------------------------------


def test_w1_1d_equals_scipy_uniform_and_weighted():
    x, y = rng(20).normal(size=41), rng(21).exponential(size=29)
    assert w1_1d(x, y) == pytest.approx(st.wasserstein_distance(x, y), rel=1e-12)
    a, b = simplex(41, 22), simplex(29, 23)
    expected = st.wasserstein_distance(x, y, a, b)
    assert w1_1d(x[:, None], y[:, None], a, b) == pytest.approx(expected, rel=1e-12)
    assert w1_1d(torch.tensor(x), torch.tensor(y), a, b) == pytest.approx(expected, rel=1e-12)


def test_w1_1d_gradient_of_a_shift():
    # W1(X, X + s) = |s|, so dW1/ds = sign(s)
    x = torch.tensor(rng(24).normal(size=30))
    s = torch.tensor(-0.8, dtype=torch.float64, requires_grad=True)
    w = w1_1d(x, x + s)
    w.backward()
    assert w.item() == pytest.approx(0.8, rel=1e-12)
    assert s.grad.item() == pytest.approx(-1.0, rel=1e-12)


# ---- sliced_w --------------------------------------------------------------------------------


def test_sliced_w_of_a_translation_is_the_mean_projected_shift():
    x = rng(30).normal(size=(40, 3))
    v = np.array([1.0, -2.0, 0.5])
    u = rng(31).normal(size=(16, 3))
    expected = np.mean(np.abs(u @ v) / np.linalg.norm(u, axis=1))
    assert sliced_w(x, x + v, directions=u) == pytest.approx(expected, rel=1e-12)


def test_sliced_w_of_a_translation_with_random_directions_is_2_over_pi_norm():
    # for uniform directions on the circle, E|<v, u>| = (2 / pi) ||v||
    x = rng(32).normal(size=(30, 2))
    v = np.array([0.6, 0.8])
    assert sliced_w(x, x + v, n_projections=4000, seed=1) == pytest.approx(2 / np.pi, rel=0.02)


def test_sliced_w_of_clouds_on_a_line_scales_their_1d_w1():
    e = np.array([0.6, 0.8])  # unit vector: <u, s e> = s <u, e>
    s, t = rng(33).normal(size=25), rng(34).normal(size=35) + 1
    u = rng(35).normal(size=(10, 2))
    expected = np.mean(np.abs(u @ e) / np.linalg.norm(u, axis=1)) * st.wasserstein_distance(s, t)
    assert sliced_w(s[:, None] * e, t[:, None] * e, directions=u) == pytest.approx(expected)


def test_sliced_w_in_one_dimension_is_w1_for_any_seed():
    x, y = rng(36).normal(size=(20, 1)), rng(37).normal(size=(15, 1))
    expected = st.wasserstein_distance(x[:, 0], y[:, 0])
    for seed in (0, 1):
        assert sliced_w(x, y, n_projections=3, seed=seed) == pytest.approx(expected, rel=1e-12)


def test_sliced_w_matches_pot_with_p_equal_1_and_is_below_w1():
    import ot as pot

    x, y = rng(38).normal(size=(50, 4)), rng(39).normal(size=(60, 4)) * 1.5
    a, b = simplex(50, 40), simplex(60, 41)
    u = rng(42).normal(size=(32, 4))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    ours = sliced_w(x, y, a=a, b=b, directions=u)
    theirs = pot.sliced_wasserstein_distance(x, y, a, b, p=1, projections=u.T)
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert ours < w1(x, y, a, b)  # |<u, x - y>| <= ||x - y|| for every pair


def test_sliced_w_seed_and_gradient():
    x, y = rng(43).normal(size=(20, 2)), rng(44).normal(size=(20, 2))
    assert sliced_w(x, y, seed=3) == sliced_w(x, y, seed=3) != sliced_w(x, y, seed=4)
    # d/dv mean_k |<v, u_k>| = mean_k sign(<v, u_k>) u_k
    u = rng(45).normal(size=(8, 2))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.array([0.5, -0.25])
    vt = torch.tensor(v, requires_grad=True)
    sliced_w(torch.tensor(x), torch.tensor(x) + vt, directions=u).backward()
    expected = np.mean(np.sign(u @ v)[:, None] * u, axis=0)
    np.testing.assert_allclose(vt.grad.numpy(), expected, atol=1e-12)


# ---- errors ----------------------------------------------------------------------------------

P3 = np.zeros((3, 2))
P4 = np.ones((4, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.zeros(3)}, r"x must have shape \(n, d\), got \(3,\)"),
        ({"y": np.zeros((4, 3))}, r"x and y must have the same dimension d"),
        ({"x": np.zeros((0, 2))}, r"x must hold at least one point"),
        ({"y": np.array([[0.0, np.nan]] * 4)}, r"y must be finite, got NaN or inf"),
        ({"x": torch.full((3, 2), math.inf)}, r"x must be finite, got NaN or inf"),
        ({"a": [0.5, 0.7, -0.2]}, r"a must be >= 0, got min -0.2"),
        ({"b": [0.25, 0.25, 0.25, 0.2]}, r"b must sum to 1 \(tolerance 1e-06\), got 0.95"),
        ({"a": [0.5, 0.5]}, r"a must have shape \(3,\) to match its 3 points, got \(2,\)"),
        ({"b": [np.nan, 0.5, 0.5, 0.0]}, r"b must be finite"),
        ({"max_iter": 0}, r"max_iter must be an integer in \[1, 9223372036854775807\], got 0"),
        ({"max_bytes": -1}, r"max_bytes must be a finite number > 0, got -1"),
        ({"max_bytes": 100}, r"needs about .* GiB.*Subsample the point clouds, use sliced_w"),
    ],
)
def test_w1_bad_input_raises(kwargs, match):
    args = {"x": P3, "y": P4} | kwargs
    with pytest.raises(ValueError, match=match):
        w1(**args)


def test_w1_memory_check_happens_before_allocating():
    # 2e5 x 2e5 pairs: a float64 cost matrix alone is 320 GB. The check must fire at once,
    # not run out of memory.
    x = np.zeros((200_000, 2))
    with pytest.raises(ValueError, match=r"200000 and 200000 points.*GiB, more than max_bytes"):
        w1(x, x)


def test_w1_raises_when_max_iter_stops_short_of_optimality():
    x, y = rng(50).normal(size=(40, 2)), rng(51).normal(size=(40, 2))
    with pytest.raises(RuntimeError, match=r"stopped before optimality.*max_iter = 5"):
        w1(x, y, max_iter=5)
    with pytest.raises(RuntimeError, match=r"max_iter"):
        optimal_transport(x, y, max_iter=5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: w1_1d(np.zeros((3, 2)), np.zeros(3)), r"x must have shape \(n,\) or \(n, 1\)"),
        (lambda: w1_1d(np.zeros(3), np.zeros(0)), r"y must hold at least one point"),
        (lambda: w1_1d(np.zeros(3), np.zeros(2), b=[1.0]), r"b must have shape \(2,\)"),
        (lambda: sliced_w(P3, P4, n_projections=0), r"n_projections must be an integer >= 1"),
        (lambda: sliced_w(P3, P4, directions=np.ones((5, 3))), r"directions must have shape"),
        (lambda: sliced_w(P3, P4, directions=[[1.0, 0.0], [0.0, 0.0]]), r"non-zero vectors"),
        (lambda: sliced_w(P3, P4, directions=[[np.inf, 0.0]]), r"directions must be finite"),
        (lambda: sliced_w(P3, P4, a=[1.0, 0.0]), r"a must have shape \(3,\)"),
    ],
)
def test_w1_1d_and_sliced_w_bad_input_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
