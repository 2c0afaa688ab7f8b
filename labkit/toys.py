"""Toy distributions of the lab: the parallel lines of Example 1, 2-D Gaussian mixtures (ring,
grid), the swiss roll, and the 1-D Gaussian pair of Figure 2.

Every sampler returns a float32 torch tensor of shape (n, d) by default and takes an optional
``torch.Generator``: the same seed gives the same samples. The 2-D targets share one interface
(``.sample(n, generator)``, ``.dim``, ``.centers``, ``.std``) so training code treats them alike.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch

from labkit import _checks

__all__ = [
    "Figure2Pair",
    "GaussianMixture",
    "Normal1D",
    "SwissRoll",
    "TARGETS",
    "figure2_pair",
    "grid",
    "make_target",
    "parallel_lines",
    "ring",
    "swiss_roll",
]


def _check_sampling(n, generator, dtype, values: int, extra: int = 0) -> int:
    """Check a sampler's arguments: ``n`` an integer >= 1 whose samples fit in memory (each
    takes ``values`` numbers of ``dtype`` and ``extra`` bytes at the sampler's peak),
    ``generator`` a ``torch.Generator`` or None, ``dtype`` a floating torch dtype. Returns n."""
    n = _checks.integer("n", n, minimum=1)
    _checks.generator("generator", generator)
    _checks.float_dtype("dtype", dtype)
    _checks.fits_in_memory("n", n, n * (values * dtype.itemsize + extra), f"{n} samples")
    return n


def _check_fits(parts: dict[str, tuple[float, float]], dtype: torch.dtype) -> None:
    """Refuse samples that would overflow ``dtype`` (to inf, silently): ``parts`` maps each
    parameter name to (its value, the largest |x| it contributes); their sum bounds the
    samples, and the error names the largest contributor."""
    largest, top = sum(c for _, c in parts.values()), torch.finfo(dtype).max
    if not largest <= top:
        name = max(parts, key=lambda k: parts[k][1])
        raise _checks.BadValue(name, parts[name][0], f"small enough for "
                               f"{str(dtype).removeprefix('torch.')} samples (|x| up to about "
                               f"{largest:.3g} > {top:.3g})")


#: Largest |value| a float32 holds: the targets' centres are stored in float32.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)
#: Standard deviations that bound every Gaussian draw (``torch.randn`` never goes past ~9).
_SIGMAS = 10


def parallel_lines(theta, n: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sample the vertical line {theta} x [0, 1] of the paper's Example 1.

    Z ~ U[0, 1] and g_theta(z) = (theta, z), so P_theta is uniform on a segment and P_0 is
    ``parallel_lines(0, n)``. Two calls whose generators carry the same seed draw the same z,
    so the pairs (0, z_i), (theta, z_i) are exactly |theta| apart.

    Parameters
    ----------
    theta : float or 0-d torch.Tensor
        Horizontal position of the line. A tensor that requires grad keeps its gradient
        (the first column is ``theta`` broadcast), as in the paper's Figure 1.
    n : int
        Number of samples, >= 1.
    generator : torch.Generator, optional
        Source of randomness for z.
    dtype : torch.dtype, default torch.float32
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor, shape (n, 2)
        Rows (theta, z_i).

    Examples
    --------
    >>> x = parallel_lines(0.5, 3, torch.Generator().manual_seed(0))
    >>> x.shape, x[:, 0].tolist()
    (torch.Size([3, 2]), [0.5, 0.5, 0.5])
    """
    n = _check_sampling(n, generator, dtype, 3)
    if isinstance(theta, torch.Tensor):  # kept as a tensor so that a gradient flows through it
        if theta.ndim != 0 or not theta.is_floating_point() or not torch.isfinite(theta):
            raise _checks.BadValue("theta", theta, "a finite real scalar")
        _check_fits({"theta": (theta, abs(float(theta.detach())))}, dtype)
        theta = theta.to(dtype)
    else:
        value = _checks.finite_real("theta", theta)
        _check_fits({"theta": (theta, abs(value))}, dtype)
        theta = torch.tensor(value, dtype=dtype)
    z = torch.rand(n, generator=generator, dtype=dtype)
    return torch.stack([theta.expand(n), z], dim=1)


class GaussianMixture:
    """Equal-weight mixture of isotropic Gaussians N(c_k, std^2 I), k = 0..K-1.

    The mode-collapse benchmarks (ring, grid) of the unrolled-GAN, VEEGAN and PacGAN papers.

    Parameters
    ----------
    centers : array-like, shape (K, d)
        Mode centres c_k, K >= 1.
    std : float
        Standard deviation of every mode (per coordinate), > 0.

    Attributes
    ----------
    centers : torch.Tensor, shape (K, d), float32
    std : float
    dim : int
        d (2 for the lab's targets).

    Examples
    --------
    >>> gm = GaussianMixture([[0.0, 0.0], [1.0, 1.0]], std=0.1)
    >>> gm.sample(4, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
    """

    def __init__(self, centers, std: float):
        array = _checks.float_array("centers", centers)
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(
                f"centers must have shape (K, d) with K >= 1, got shape {tuple(array.shape)}"
            )
        if not np.isfinite(array).all():
            raise ValueError("centers must be finite, got NaN or inf")
        if np.abs(array).max() > FLOAT32_MAX:
            raise ValueError(f"centers must fit float32 (|c| <= {FLOAT32_MAX:.3g}), got "
                             f"|c| up to {np.abs(array).max():.3g}")
        self.centers = torch.as_tensor(array, dtype=torch.float32)
        self.std = _checks.finite_real("std", std, above=0)
        self.dim = int(array.shape[1])

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.centers.shape[0]}, dim={self.dim}, std={self.std})"

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw n points: mode k ~ U{0..K-1}, then x = c_k + std * N(0, I).

        Parameters
        ----------
        n : int
            Number of samples, >= 1.
        generator : torch.Generator, optional
            Source of randomness (mode indices first, then the Gaussian noise).
        dtype : torch.dtype, default torch.float32

        Returns
        -------
        torch.Tensor, shape (n, dim)
        """
        n = _check_sampling(n, generator, dtype, 2 * self.dim, extra=8)
        _check_fits({"centers": ("the centres", float(self.centers.abs().max())),
                     "std": (self.std, _SIGMAS * self.std)}, dtype)
        k = torch.randint(self.centers.shape[0], (n,), generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=dtype)
        return self.centers.to(dtype)[k] + self.std * noise


def ring(modes: int = 8, radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
    """Ring of Gaussians: centres radius * (cos a_k, sin a_k), a_k = 2 pi k / K, k = 0..K-1.

    Defaults are those of the unrolled-GAN / WGAN-GP ``gan_toy.py`` 8-Gaussian benchmark.
    The angles exclude 2 pi (a ``linspace(0, 2 pi, K)`` would put two modes on top of each other).

    Parameters
    ----------
    modes : int, default 8
        K >= 1.
    radius : float, default 2.0
        > 0.
    std : float, default 0.02
        Per-mode standard deviation, > 0.

    Returns
    -------
    GaussianMixture
        ``.centers`` of shape (K, 2).

    Examples
    --------
    >>> ring(4, radius=1.0).centers.round().tolist()
    [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
    """
    modes = _checks.integer("modes", modes, minimum=1)
    _checks.fits_in_memory("modes", modes, 48 * modes, f"a ring of {modes} centres")
    radius = _checks.finite_real("radius", radius, above=0)
    if radius > FLOAT32_MAX:
        raise _checks.BadValue("radius", radius, f"a number > 0 that fits float32 (<= "
                               f"{FLOAT32_MAX:.3g}), as the centres are stored in float32")
    angles = 2.0 * np.pi * np.arange(modes) / modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(centers, std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """Square grid of side x side Gaussians centred on the origin.

    Centres are spacing * (i - (side - 1) / 2, j - (side - 1) / 2) for i, j = 0..side-1, in
    row-major order (first coordinate slowest): {-4, -2, 0, 2, 4}^2 by default, the 25-Gaussian
    benchmark of WGAN-GP and PacGAN (unscaled).

    Parameters
    ----------
    side : int, default 5
        Modes per row, >= 1 (K = side^2).
    spacing : float, default 2.0
        Distance between neighbouring centres, > 0.
    std : float, default 0.05
        Per-mode standard deviation, > 0.

    Returns
    -------
    GaussianMixture
        ``.centers`` of shape (side^2, 2).

    Examples
    --------
    >>> grid(2, spacing=2.0).centers.tolist()
    [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
    """
    side = _checks.integer("side", side, minimum=1)
    _checks.fits_in_memory("side", side, 48 * side**2, f"a grid of {side} x {side} centres")
    spacing = _checks.finite_real("spacing", spacing, above=0)
    if spacing * (side - 1) / 2 > FLOAT32_MAX:
        raise _checks.BadValue("spacing", spacing, f"small enough that the centres fit float32 "
                               f"(spacing * (side - 1) / 2 <= {FLOAT32_MAX:.3g})")
    coords = spacing * (np.arange(side) - (side - 1) / 2.0)
    u, v = np.meshgrid(coords, coords, indexing="ij")
    return GaussianMixture(np.stack([u.ravel(), v.ravel()], axis=1), std)


class SwissRoll:
    """2-D swiss roll of WGAN-GP's ``gan_toy.py``.

    gan_toy takes sklearn's ``make_swiss_roll(noise=0.25)``, keeps coordinates (0, 2) and divides
    by 7.5. Here: t = 1.5 pi (1 + 2 u), u ~ U[0, 1], and
    x = scale * ((t cos t, t sin t) + noise * N(0, I_2)), so with the defaults the points lie in
    about [-1.9, 1.8]^2.

    Parameters
    ----------
    noise : float, default 0.25
        Standard deviation of the Gaussian noise, in sklearn's (unscaled) units, >= 0.
    scale : float, default 1 / 7.5
        Factor applied last, > 0.

    Attributes
    ----------
    dim : int
        2.
    centers, std : None
        A swiss roll has no modes; present so all 2-D targets expose the same attributes.

    Examples
    --------
    >>> SwissRoll().sample(5, torch.Generator().manual_seed(0)).shape
    torch.Size([5, 2])
    """

    dim = 2
    centers = None
    std = None

    def __init__(self, noise: float = 0.25, scale: float = 1.0 / 7.5):
        self.noise = _checks.finite_real("noise", noise, at_least=0)
        self.scale = _checks.finite_real("scale", scale, above=0)

    def __repr__(self) -> str:
        return f"SwissRoll(noise={self.noise}, scale={self.scale})"

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw n points of the roll (u first, then the noise, from ``generator``).

        Parameters
        ----------
        n : int
            Number of samples, >= 1.
        generator : torch.Generator, optional
        dtype : torch.dtype, default torch.float32

        Returns
        -------
        torch.Tensor, shape (n, 2)
        """
        n = _check_sampling(n, generator, dtype, 0, extra=80)  # float64: u, t, roll, noise
        _check_fits({"scale": (self.scale, self.scale * 4.5 * math.pi),  # |t| <= 4.5 pi
                     "noise": (self.noise, self.scale * _SIGMAS * self.noise)}, dtype)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        t = 1.5 * math.pi * (1.0 + 2.0 * u)
        roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.scale * (roll + self.noise * noise)).to(dtype)


def swiss_roll(n: int, noise: float = 0.25, generator: torch.Generator | None = None,
               scale: float = 1.0 / 7.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sample n points of the 2-D swiss roll; shorthand for ``SwissRoll(noise, scale).sample``.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    noise : float, default 0.25
        Noise standard deviation in unscaled units (see `SwissRoll`).
    generator : torch.Generator, optional
    scale : float, default 1 / 7.5
    dtype : torch.dtype, default torch.float32

    Returns
    -------
    torch.Tensor, shape (n, 2)
    """
    return SwissRoll(noise=noise, scale=scale).sample(n, generator=generator, dtype=dtype)


_BUILDERS = {"ring": ring, "grid": grid, "swiss_roll": SwissRoll}
TARGETS = tuple(_BUILDERS)
"""Names accepted by `make_target`: ("ring", "grid", "swiss_roll")."""


def make_target(name: str, **kwargs):
    """Build a 2-D target sampler by name.

    Parameters
    ----------
    name : {"ring", "grid", "swiss_roll"}
    **kwargs
        Passed to `ring`, `grid` or `SwissRoll`.

    Returns
    -------
    GaussianMixture or SwissRoll
        An object with ``.sample(n, generator=None)``, ``.dim``, ``.centers`` and ``.std``.

    Examples
    --------
    >>> make_target("ring", modes=4).centers.shape
    torch.Size([4, 2])
    """
    _checks.choice("name", name, TARGETS)
    builder = _BUILDERS[name]
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError:
        allowed = ", ".join(inspect.signature(builder).parameters)
        raise _checks.BadValue("kwargs", sorted(kwargs), f"parameters of {name}: {allowed}") \
            from None
    return builder(**kwargs)


@dataclass(frozen=True)
class Normal1D:
    """1-D Gaussian N(mean, std^2) with a numpy density and a torch sampler.

    Attributes
    ----------
    mean : float
    std : float
        > 0.
    dim : int
        1.
    """

    mean: float
    std: float
    dim = 1

    def __post_init__(self):
        object.__setattr__(self, "mean", _checks.finite_real("mean", self.mean))
        object.__setattr__(self, "std", _checks.finite_real("std", self.std, above=0))

    def pdf(self, x) -> np.ndarray:
        """Density exp(-(x - mean)^2 / (2 std^2)) / (std sqrt(2 pi)), elementwise on numpy x.

        Examples
        --------
        >>> round(float(Normal1D(0.0, 1.0).pdf(0.0)), 6)
        0.398942
        """
        z = (_checks.float_array("x", x) - self.mean) / self.std
        return np.exp(-0.5 * z * z) / (self.std * math.sqrt(2.0 * math.pi))

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw n samples mean + std * N(0, 1), shape (n, 1) (one feature, like the 2-D targets).

        Parameters
        ----------
        n : int
            >= 1.
        generator : torch.Generator, optional
        dtype : torch.dtype, default torch.float32

        Returns
        -------
        torch.Tensor, shape (n, 1)
        """
        n = _check_sampling(n, generator, dtype, 2)
        _check_fits({"mean": (self.mean, abs(self.mean)), "std": (self.std, _SIGMAS * self.std)},
                    dtype)
        return self.mean + self.std * torch.randn(n, 1, generator=generator, dtype=dtype)


@dataclass(frozen=True)
class Figure2Pair:
    """The two 1-D laws of the paper's Figure 2 and the plotting window.

    Attributes
    ----------
    real, fake : Normal1D
    x_range : tuple of float
        (x_min, x_max) of the figure.
    """

    real: Normal1D
    fake: Normal1D
    x_range: tuple[float, float]

    def grid(self, n_points: int = 801) -> np.ndarray:
        """Evenly spaced x over ``x_range`` (endpoints included), shape (n_points,).

        Examples
        --------
        >>> figure2_pair().grid(5).tolist()
        [-8.0, -4.0, 0.0, 4.0, 8.0]
        """
        n_points = _checks.integer("n_points", n_points, minimum=2)
        _checks.fits_in_memory("n_points", n_points, 8 * n_points, f"{n_points} grid points")
        return np.linspace(self.x_range[0], self.x_range[1], n_points)


def figure2_pair(mu_real: float = -5.0, mu_fake: float = 5.0, std: float = 1.0,
                 x_range: tuple[float, float] = (-8.0, 8.0)) -> Figure2Pair:
    """Real N(mu_real, std^2) and fake N(mu_fake, std^2) on x in [-8, 8], as in Figure 2.

    Values read off the paper's plot: real centred near -5, fake near +5, unit variance. There
    the optimal GAN discriminator saturates while the WGAN critic stays close to linear.

    Parameters
    ----------
    mu_real, mu_fake : float
        Means of the real and fake laws.
    std : float, default 1.0
        Common standard deviation, > 0.
    x_range : (float, float), default (-8, 8)
        Plotting window, x_min < x_max.

    Returns
    -------
    Figure2Pair
        ``.real`` and ``.fake`` each with ``.pdf(x)`` (numpy) and ``.sample(n, generator)``
        (torch, shape (n, 1)); ``.grid(n_points)`` for plots.

    Examples
    --------
    >>> pair = figure2_pair()
    >>> pair.real.mean, pair.fake.mean, pair.x_range
    (-5.0, 5.0, (-8.0, 8.0))
    """
    bounds = _checks.float_array("x_range", x_range)
    if bounds.shape != (2,) or not np.isfinite(bounds).all() or bounds[0] >= bounds[1]:
        raise ValueError(
            f"x_range must be finite (x_min, x_max) with x_min < x_max, got {x_range!r}"
        )
    return Figure2Pair(Normal1D(mu_real, std), Normal1D(mu_fake, std),
                       (float(bounds[0]), float(bounds[1])))
