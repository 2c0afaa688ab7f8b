"""Exact optimal transport for the lab, through POT: the Wasserstein-1 distance with Euclidean
ground cost (network simplex), its fast 1-D form, the optimal plan with dual potentials, and the
sliced Wasserstein-1 distance.

These are the ground truths the critics' estimates are checked against. Inputs are numpy arrays
or torch tensors; when a torch input requires grad the result is a 0-d tensor that carries it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import reduce

import numpy as np
import ot as pot
import torch
from scipy.spatial.distance import cdist

from labkit import _checks

__all__ = [
    "DEFAULT_MAX_BYTES",
    "exact_solver_bytes",
    "OptimalTransport",
    "optimal_transport",
    "sliced_w",
    "w1",
    "w1_1d",
    "w1_gradient",
]

DEFAULT_MAX_BYTES = 4 * 2**30
"""Default memory budget of the exact solver (4 GiB): about 9,400 points against 9,400."""

# Peak memory of ot.emd2 per pair (i, j), measured at n = m = 3000: about 41 bytes
# (cost matrix 8, plan 8, network-simplex arrays about 25). Rounded up.
_BYTES_PER_PAIR = 48
# Tolerance on the total mass of user weights (POT itself checks 6 decimals).
_WEIGHT_ATOL = 1e-6
# POT's ot.emd2 result_code meaning "optimal".
_OPTIMAL = 1
# Largest iteration cap POT's network simplex takes (a C unsigned 64-bit integer).
_MAX_ITER = 2**63 - 1


def exact_solver_bytes(n: int, m: int) -> int:
    """Peak memory in bytes of the exact solver (`w1`, `optimal_transport`) for n against m points.

    About 48 n m: the (n, m) cost matrix and plan and the network simplex's arrays. Callers
    compare it with their budget before sampling anything.

    >>> exact_solver_bytes(1000, 1000) / 2**20  # MiB
    45.7763671875
    """
    return _BYTES_PER_PAIR * n * m


@dataclass
class _Inputs:
    """Validated inputs: points and weights in one backend (numpy or torch), all float64."""

    x: np.ndarray | torch.Tensor
    y: np.ndarray | torch.Tensor
    a: np.ndarray | torch.Tensor
    b: np.ndarray | torch.Tensor
    needs_grad: bool
    dtype: torch.dtype | None  # dtype of the returned tensor when needs_grad


def _check_finite(name: str, v) -> None:
    finite = torch.isfinite(v).all() if isinstance(v, torch.Tensor) else np.isfinite(v).all()
    if not finite:
        raise ValueError(f"{name} must be finite, got NaN or inf")


def _largest(v) -> float:
    """max |v| as a Python float (v numpy or torch, non-empty)."""
    return float(v.detach().abs().max() if isinstance(v, torch.Tensor) else np.abs(v).max())


def _check_distances_fit(x, y) -> None:
    """Refuse points so large that a distance between them overflows float64: every distance
    is at most sqrt(d) (max |x| + max |y|), and an overflow would make W1 silently inf."""
    big_x, big_y = _largest(x), _largest(y)
    if not np.isfinite((big_x + big_y) * np.sqrt(x.shape[1])):
        name, big = ("x", big_x) if big_x >= big_y else ("y", big_y)
        raise ValueError(f"{name} must have entries small enough that distances between x and y "
                         f"fit float64 (max |x| + max |y| <= 1.7e308 / sqrt(d)), got max "
                         f"|{name}| = {big:.3g}")


def _prepare(x, y, a, b, *, one_d: bool) -> _Inputs:
    """Validate points (n, d), (m, d) (or (n,), (n, 1) when ``one_d``) and weights; pick a backend.

    The torch backend is used only when some input requires grad; otherwise everything is numpy.
    """
    named = {"x": x, "y": y, "a": a, "b": b}
    tensors = [v for v in named.values() if isinstance(v, torch.Tensor)]
    needs_grad = any(t.requires_grad for t in tensors)
    if needs_grad:
        device = tensors[0].device
        dtype = reduce(torch.promote_types, [t.dtype for t in tensors if t.is_floating_point()])

        def convert(v, name):
            if isinstance(v, torch.Tensor):
                return v.to(device, torch.float64)
            return torch.as_tensor(_checks.float_array(name, v), device=device)
    else:
        dtype = None

        def convert(v, name):
            return _checks.float_array(name, v)

    points = {}
    for name in ("x", "y"):
        v = convert(named[name], name)
        if one_d and v.ndim == 1:
            v = v.reshape(-1, 1)
        if v.ndim != 2 or (one_d and v.shape[1] != 1):
            allowed = "(n,) or (n, 1)" if one_d else "(n, d)"
            raise ValueError(f"{name} must have shape {allowed}, got {tuple(v.shape)}")
        if v.shape[0] == 0 or v.shape[1] == 0:
            raise ValueError(f"{name} must hold at least one point, got shape {tuple(v.shape)}")
        _check_finite(name, v)
        points[name] = v
    if points["x"].shape[1] != points["y"].shape[1]:
        raise ValueError(
            f"x and y must have the same dimension d, got x {tuple(points['x'].shape)} "
            f"and y {tuple(points['y'].shape)}"
        )
    _check_distances_fit(points["x"], points["y"])
    weights = {}
    for name, pts in (("a", points["x"]), ("b", points["y"])):
        n = pts.shape[0]
        if named[name] is None:
            w = convert(np.full(n, 1.0 / n), name)
        else:
            w = convert(named[name], name)
            if tuple(w.shape) != (n,):
                raise ValueError(
                    f"{name} must have shape ({n},) to match its {n} points, got {tuple(w.shape)}"
                )
            _check_finite(name, w)
            if (w < 0).any():
                raise ValueError(f"{name} must be >= 0, got min {float(w.min())!r}")
            total = float(w.sum())
            if abs(total - 1.0) > _WEIGHT_ATOL:
                raise ValueError(f"{name} must sum to 1 (tolerance {_WEIGHT_ATOL}), got {total!r}")
        weights[name] = w
    return _Inputs(points["x"], points["y"], weights["a"], weights["b"], needs_grad, dtype)


def _result(value, inp: _Inputs):
    """A 0-d tensor of the inputs' dtype when gradients are needed, else a Python float."""
    return value.to(inp.dtype) if inp.needs_grad else float(value)


def _emd(inp: _Inputs, max_iter, max_bytes, return_matrix: bool):
    """Euclidean cost matrix and ot.emd2; raise instead of returning a non-optimal value."""
    n, m = inp.x.shape[0], inp.y.shape[0]
    if max_iter is None:
        max_iter = max(100_000, n * m)
    max_iter = _checks.integer("max_iter", max_iter, 1, _MAX_ITER)
    need = exact_solver_bytes(n, m)
    _check_budget(need, max_bytes, f"x and y have {n} and {m} points: the exact solver",
                  "Subsample the point clouds, use sliced_w, or raise max_bytes.")
    if inp.needs_grad:
        # Exact differences: zero subgradient where points coincide, no |x|^2 - 2xy cancellation.
        cost = torch.cdist(inp.x, inp.y, compute_mode="donot_use_mm_for_euclid_dist")
    else:
        cost = cdist(inp.x, inp.y)  # scipy: exact differences as well (ot.dist uses the expansion)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="numItermax reached")
        value, log = pot.emd2(inp.a, inp.b, cost, numItermax=int(max_iter), log=True,
                              return_matrix=return_matrix)
    if log["result_code"] != _OPTIMAL:
        reason = log["warning"] or f"result_code {log['result_code']}"
        raise RuntimeError(
            f"the exact solver stopped before optimality ({reason}) with max_iter = {max_iter} "
            f"for {n} x {m} points; pass a larger max_iter (or None for max(1e5, n*m))"
        )
    return value, log


def _check_budget(need: float, max_bytes, what: str, advice: str) -> None:
    """Refuse (``ValueError``) before allocating if ``what`` needs ``need`` bytes, more than
    ``max_bytes`` or than this process may use (:func:`labkit._checks.memory_limit`)."""
    max_bytes = _checks.finite_real("max_bytes", max_bytes, above=0)
    limit = min(max_bytes, _checks.memory_limit())
    if need > limit:
        budget = (f"max_bytes = {max_bytes / 2**30:.2f} GiB" if limit == max_bytes else
                  f"the {limit / 2**30:.2f} GiB this process may use")
        raise ValueError(f"{what} needs about {need / 2**30:.2f} GiB, more than {budget}. "
                         f"{advice}")


def w1(x, y, a=None, b=None, max_iter: int | None = None, max_bytes: float = DEFAULT_MAX_BYTES):
    """Exact Wasserstein-1 distance with Euclidean ground cost between two discrete laws.

    W1(P, Q) = min over couplings gamma of sum_ij gamma_ij ||x_i - y_j||_2 (paper, Eq. 1), with
    P = sum_i a_i delta_{x_i}, Q = sum_j b_j delta_{y_j}; solved exactly by POT's network simplex
    (``ot.emd2``). The gradient w.r.t. the cost is the optimal plan, so dW1/dx_i =
    sum_j gamma_ij (x_i - y_j) / ||x_i - y_j|| (0 for coinciding points).

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, d)
    y : array-like or torch.Tensor, shape (m, d)
    a : array-like, shape (n,), optional
        Weights of x, >= 0, summing to 1; uniform 1/n if omitted.
    b : array-like, shape (m,), optional
        Weights of y; uniform 1/m if omitted.
    max_iter : int, optional
        Iteration cap of the network simplex; default max(100000, n * m). (POT's own default,
        100000, stops short from about n = m = 4000.) If the cap is hit, RuntimeError.
    max_bytes : float, default 4 GiB
        Memory budget; the solver needs about 48 n m bytes. Larger problems raise ValueError
        before anything is allocated.

    Returns
    -------
    float, or 0-d torch.Tensor
        A tensor (dtype of the torch inputs) carrying gradients when x, y, a or b requires grad.

    Raises
    ------
    ValueError
        Bad shapes, empty inputs, NaN/inf, bad weights, or too large for ``max_bytes``.
    RuntimeError
        ``max_iter`` reached before optimality.

    Examples
    --------
    >>> w1([[0.0, 0.0], [0.0, 1.0]], [[3.0, 4.0], [3.0, 5.0]])
    5.0
    """
    inp = _prepare(x, y, a, b, one_d=False)
    value, _ = _emd(inp, max_iter, max_bytes, return_matrix=False)
    return _result(value, inp)


@dataclass(frozen=True)
class OptimalTransport:
    """Solution of the exact W1 problem between sum_i a_i delta_{x_i} and sum_j b_j delta_{y_j}.

    Attributes
    ----------
    w1 : float
        The optimal cost sum_ij plan_ij ||x_i - y_j||.
    plan : np.ndarray, shape (n, m)
        Optimal coupling gamma: rows sum to a, columns to b.
    f : np.ndarray, shape (n,)
        Dual potential on x.
    g : np.ndarray, shape (m,)
        Dual potential on y: f_i + g_j <= ||x_i - y_j||, with equality where plan_ij > 0, and
        w1 = sum_i a_i f_i + sum_j b_j g_j (Kantorovich duality, the discrete form of Eq. 2).
    """

    w1: float
    plan: np.ndarray
    f: np.ndarray
    g: np.ndarray


def optimal_transport(x, y, a=None, b=None, max_iter: int | None = None,
                      max_bytes: float = DEFAULT_MAX_BYTES) -> OptimalTransport:
    """Exact W1 with its optimal plan and dual potentials (numpy, no gradients).

    Same problem, inputs and errors as `w1`; use it to draw the plan or to compare a critic with
    the exact Kantorovich potentials.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, d)
    y : array-like or torch.Tensor, shape (m, d)
    a, b : array-like, shapes (n,) and (m,), optional
        Weights (uniform if omitted).
    max_iter : int, optional
        As in `w1`.
    max_bytes : float, default 4 GiB
        As in `w1`.

    Returns
    -------
    OptimalTransport
        Fields ``w1``, ``plan`` (n, m), ``f`` (n,), ``g`` (m,).

    Examples
    --------
    >>> sol = optimal_transport([[0.0], [3.0]], [[1.0], [2.0]])
    >>> sol.w1, sol.plan.tolist()
    (1.0, [[0.5, 0.0], [0.0, 0.5]])
    """
    inp = _prepare(_detach(x), _detach(y), _detach(a), _detach(b), one_d=False)
    value, log = _emd(inp, max_iter, max_bytes, return_matrix=True)
    return OptimalTransport(float(value), log["G"], log["u"], log["v"])


def w1_gradient(x, y, a=None, b=None, max_iter: int | None = None,
                max_bytes: float = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Exact gradient of W1 with respect to each point of ``x``, from POT's optimal plan.

    dW1/dx_i = sum_j gamma_ij (x_i - y_j) / ||x_i - y_j||: by the envelope (Danskin) theorem the
    derivative of min_gamma sum_ij gamma_ij ||x_i - y_j|| is that of the cost at the optimal plan.
    Row i of gamma sums to a_i, so the gradient is a_i (1/n for uniform weights) times a convex
    combination of unit vectors pointing from the matched y_j to x_i; its negative is the direction
    in which moving x_i lowers W1 fastest, the gradient a generator would ideally receive (paper,
    Section 3 and Theorem 3: grad_theta W = -E_z[grad_theta f(g_theta(z))] for the optimal critic
    f). Pairs with x_i = y_j contribute 0 (a subgradient). The gradient exists where the plan is
    unique and no x_i coincides with a matched y_j; elsewhere this is one subgradient.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, d)
        The points moved (generated samples).
    y : array-like or torch.Tensor, shape (m, d)
        The fixed points (real samples).
    a, b : array-like, shapes (n,) and (m,), optional
        Weights (uniform if omitted).
    max_iter, max_bytes
        As in `w1`.

    Returns
    -------
    np.ndarray, shape (n, d)
        Row i is dW1/dx_i, of norm at most a_i.

    Examples
    --------
    >>> w1_gradient([[0.0, 0.0], [0.0, 1.0]], [[3.0, 4.0], [3.0, 5.0]]).tolist()
    [[-0.3, -0.4], [-0.3, -0.4]]
    """
    sol = optimal_transport(x, y, a, b, max_iter=max_iter, max_bytes=max_bytes)
    xs = np.asarray(_detach(x), dtype=np.float64)
    ys = np.asarray(_detach(y), dtype=np.float64)
    i, j = np.nonzero(sol.plan)
    diff = xs[i] - ys[j]
    norm = np.linalg.norm(diff, axis=1, keepdims=True)
    unit = np.divide(diff, norm, out=np.zeros_like(diff), where=norm > 0)
    grad = np.zeros_like(xs)
    np.add.at(grad, i, sol.plan[i, j, None] * unit)
    return grad


def _detach(v):
    return v.detach() if isinstance(v, torch.Tensor) else v


def _w1_columns(u, v, a, b):
    """W1 between the columns of u (n, L) and v (m, L) with weights a, b: shape (L,)."""
    return pot.wasserstein_1d(u, v, a, b, p=1)  # for p = 1 this is W1 itself (W_p^p in general)


def w1_1d(x, y, a=None, b=None):
    """Exact Wasserstein-1 distance between two 1-D discrete laws, in O((n + m) log(n + m)).

    W1(P, Q) = int_0^1 |F_P^{-1}(t) - F_Q^{-1}(t)| dt = int |F_P(s) - F_Q(s)| ds, through
    ``ot.wasserstein_1d(p=1)`` (which returns W_p^p, that is W1 for p = 1).

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n,) or (n, 1)
    y : array-like or torch.Tensor, shape (m,) or (m, 1)
    a, b : array-like, shapes (n,) and (m,), optional
        Weights, >= 0, summing to 1 (uniform if omitted).

    Returns
    -------
    float, or 0-d torch.Tensor carrying gradients when an input requires grad.

    Examples
    --------
    >>> w1_1d([0.0, 1.0], [2.0, 3.0])
    2.0
    """
    inp = _prepare(x, y, a, b, one_d=True)
    return _result(_w1_columns(inp.x, inp.y, inp.a, inp.b)[0], inp)


def sliced_w(x, y, n_projections: int = 128, seed: int | None = 0, a=None, b=None,
             directions=None, max_bytes: float = DEFAULT_MAX_BYTES):
    """Sliced Wasserstein-1 distance: mean over unit directions u_k of W1(<u_k, X>, <u_k, Y>).

    SW1(P, Q) = (1/L) sum_{k=1}^L W1(u_k # P, u_k # Q), each term exact in 1-D (see `w1_1d`).
    This is a plain mean of W1 values; for p = 1 it equals POT's
    ``ot.sliced_wasserstein_distance(p=1)``, which in general returns (mean W_p^p)^(1/p). The
    directions are L = n_projections standard Gaussian vectors normalised to unit length, drawn
    from ``numpy.random.default_rng(seed)``. SW1 <= W1 and it scales to large clouds.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, d)
    y : array-like or torch.Tensor, shape (m, d)
    n_projections : int, default 128
        L, the number of random directions (ignored when ``directions`` is given).
    seed : int or None, default 0
        Seed of the random directions.
    a, b : array-like, shapes (n,) and (m,), optional
        Weights (uniform if omitted).
    directions : array-like, shape (L, d), optional
        Explicit directions, non-zero rows; each is normalised to unit length.
    max_bytes : float, default 4 GiB
        Memory budget: the directions and the projections of x and y take at least
        8 L (n + m + d) bytes; more raises ValueError before anything is allocated.

    Returns
    -------
    float, or 0-d torch.Tensor carrying gradients when an input requires grad.

    Examples
    --------
    >>> sliced_w([[0.0, 0.0]], [[3.0, 4.0]], directions=[[1.0, 0.0], [0.0, 2.0]])
    3.5
    """
    inp = _prepare(x, y, a, b, one_d=False)
    n, d = inp.x.shape
    if directions is None:
        n_projections = _checks.integer("n_projections", n_projections, minimum=1)
        if seed is not None:
            seed = _checks.integer("seed", seed, minimum=0)
        _check_budget(8 * n_projections * (n + inp.y.shape[0] + d), max_bytes,
                      f"n_projections = {n_projections} for {n} and {inp.y.shape[0]} points",
                      "Use fewer projections, or raise max_bytes.")
        u = np.random.default_rng(seed).standard_normal((n_projections, d))
    else:
        u = _checks.float_array("directions", _detach(directions))
        if u.ndim != 2 or u.shape[0] < 1 or u.shape[1] != d:
            raise ValueError(f"directions must have shape (L, {d}), got {u.shape}")
        if not np.isfinite(u).all():
            raise ValueError("directions must be finite, got NaN or inf")
        _check_budget(8 * u.shape[0] * (n + inp.y.shape[0]), max_bytes,
                      f"directions with {u.shape[0]} rows for {n} and {inp.y.shape[0]} points",
                      "Use fewer directions, or raise max_bytes.")
    scale = np.abs(u).max(axis=1, keepdims=True)  # first, so that the norm cannot overflow
    if not (scale > 0).all():
        raise ValueError("directions must be non-zero vectors")
    u = u / scale
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    if inp.needs_grad:
        u = torch.as_tensor(u, dtype=torch.float64, device=inp.x.device)
    values = _w1_columns(inp.x @ u.T, inp.y @ u.T, inp.a, inp.b)
    return _result(values.mean(), inp)

