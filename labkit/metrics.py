"""Measures of a trained GAN: mode coverage on Gaussian mixtures, and checks on the critic.

Mode coverage follows VEEGAN / PacGAN (modes captured, % high-quality samples, reverse KL); the
critic checks compare its Wasserstein estimate with the exact W1 of :mod:`labkit.ot`, estimate its
Lipschitz constant from gradients and report per-layer gradient norms (WGAN-GP, Figure 1b).
For images, where no exact W1 is at hand, :func:`swd_images` measures sample quality without a
pretrained network: the sliced Wasserstein distance between Laplacian-pyramid patches of real and
generated images (Karras et al. 2018, Progressive GAN, Section 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from labkit import _checks, ot

Critic = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class ModeCoverage:
    """Mode-collapse metrics of a sample set against the centres of a Gaussian mixture.

    Attributes
    ----------
    modes : int
        Number of centres that are the nearest centre of at least one high-quality sample.
    hq_fraction : float
        High-quality samples / all samples, in [0, 1] (the papers' "%HQ" divided by 100).
    reverse_kl : float
        ``KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k)`` in nats, in [0, log K]; ``nan`` when no
        sample is high quality (``p_hat`` is then undefined).
    counts : numpy.ndarray, shape (K,), int64, read-only
        ``counts[k]`` = number of high-quality samples whose nearest centre is ``k``.
    """

    modes: int
    hq_fraction: float
    reverse_kl: float
    counts: np.ndarray

    def as_dict(self) -> dict[str, int | float | list[int]]:
        """The metrics as plain Python ``int`` / ``float`` / ``list`` values, ready for ``json``.

        An undefined ``reverse_kl`` stays ``float('nan')``, which ``json.dumps`` writes as ``NaN``.
        """
        return {
            "modes": int(self.modes),
            "hq_fraction": float(self.hq_fraction),
            "reverse_kl": float(self.reverse_kl),
            "counts": [int(c) for c in self.counts],
        }


def _as_float64_matrix(name: str, value: np.ndarray | torch.Tensor) -> np.ndarray:
    """``value`` as a float64 numpy array of shape (n, d) with n >= 1, d >= 1."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    array = _checks.float_array(name, value)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d); got shape {array.shape}")
    return array


def mode_coverage(
    samples: np.ndarray | torch.Tensor,
    centers: np.ndarray | torch.Tensor,
    std: float,
    threshold: float = 3.0,
) -> ModeCoverage:
    """Modes captured, fraction of high-quality samples and reverse KL (VEEGAN / PacGAN).

    Each sample is assigned to its nearest centre (Euclidean; ties go to the lower index). It is
    *high quality* if ``min_k ||x - c_k||_2 < threshold * std``, with a strict ``<`` as in PacGAN's
    ``MetricLogger`` (``if min_dis < self.dis_thre``, ``dis_thre=3``, distances in units of std).
    With ``p_hat`` the histogram of high-quality samples over their nearest centres:
    ``reverse_kl = KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k)`` (``0 log 0 = 0``), which equals
    ``log K - H(p_hat)``; PacGAN logs the entropy ``H(p_hat)``.

    Samples that are not finite (a diverged generator) are never high quality.

    Parameters
    ----------
    samples : numpy.ndarray or torch.Tensor, shape (N, d)
        Generated samples, N >= 1.
    centers : numpy.ndarray or torch.Tensor, shape (K, d)
        Finite mixture centres, K >= 1.
    std : float
        Standard deviation of each (isotropic) mixture component, > 0.
    threshold : float, default 3.0
        Radius of the high-quality ball in units of ``std``, > 0.

    Returns
    -------
    ModeCoverage
        ``modes``, ``hq_fraction``, ``reverse_kl`` (``nan`` without high-quality samples) and
        ``counts`` (K,).

    References
    ----------
    Srivastava et al., "VEEGAN", NeurIPS 2017, Table 1; Lin et al., "PacGAN", NeurIPS 2018,
    Table 1, computed by ``MetricLogger`` in ``synthetic_data_experiments/PacGAN/pacgan/
    extensions.py`` of github.com/fjxmlzn/PacGAN.

    Examples
    --------
    >>> centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> mode_coverage(np.array([[0.1, 0.0], [0.0, 5.0]]), centers, std=0.1).as_dict()
    {'modes': 1, 'hq_fraction': 0.5, 'reverse_kl': 0.6931471805599453, 'counts': [1, 0]}
    """
    x = _as_float64_matrix("samples", samples)
    c = _as_float64_matrix("centers", centers)
    if x.shape[1] != c.shape[1]:
        raise ValueError(
            f"samples and centers must have the same dimension d; got samples {x.shape}, "
            f"centers {c.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError("centers must be finite; got a nan or inf entry")
    threshold = _checks.finite_real("threshold", threshold, above=0)
    radius = threshold * _checks.finite_real("std", std, above=0)
    if not np.isfinite(radius):
        raise _checks.BadValue("std", std, f"small enough that threshold * std is finite "
                               f"(threshold {threshold:g})")
    _checks.fits_in_memory("samples", f"{len(x)} samples", 16 * len(x) * len(c),
                           f"the distances of {len(x)} samples to {len(c)} centres")

    # (N, K) Euclidean distances, one centre at a time so memory stays O(N d + N K).
    dist = np.stack([np.linalg.norm(x - centre, axis=1) for centre in c], axis=1)
    dist = np.where(np.isnan(dist), np.inf, dist)
    nearest = dist.argmin(axis=1)
    return _coverage(nearest, dist[np.arange(len(x)), nearest] < radius, len(c))


def _coverage(assigned: np.ndarray, high_quality: np.ndarray, n_modes: int) -> ModeCoverage:
    """:class:`ModeCoverage` from each sample's mode (N,) and whether it is high quality (N,)."""
    counts = np.bincount(assigned[high_quality], minlength=n_modes).astype(np.int64)
    counts.flags.writeable = False
    n_hq = int(counts.sum())
    if n_hq == 0:
        reverse_kl = float("nan")
    else:
        p_hat = counts[counts > 0] / n_hq
        reverse_kl = float(np.sum(p_hat * np.log(n_modes * p_hat)))
    return ModeCoverage(
        modes=int(np.count_nonzero(counts)),
        hq_fraction=n_hq / len(assigned),
        reverse_kl=reverse_kl,
        counts=counts,
    )


def class_coverage(probabilities: np.ndarray | torch.Tensor,
                   threshold: float = 0.9) -> ModeCoverage:
    """Mode count of generated images through a classifier: the rule of :func:`mode_coverage`
    with classes for modes and the classifier's confidence for quality.

    Sample i goes to class argmax_k p_ik and counts (is "high quality") if
    max_k p_ik >= ``threshold``. ``modes`` is the number of classes with at least one such
    sample, ``hq_fraction`` their
    share of all samples, ``reverse_kl`` = KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k) over
    their class histogram p_hat (nats, in [0, log K]; ``nan`` when no sample counts). One class
    only gives log K; a histogram uniform over the K classes gives 0. The stacked-MNIST mode
    count (Metz et al. 2017, Unrolled GAN; Srivastava et al. 2017, VEEGAN) on one digit.

    Parameters
    ----------
    probabilities : array or Tensor (N, K)
        Class probabilities of N samples (rows sum to 1), e.g. from a classifier trained on
        the real data.
    threshold : float, default 0.9
        Least probability of the chosen class, in (0, 1].

    Returns
    -------
    ModeCoverage
        ``counts[k]`` = confident samples of class k.

    Examples
    --------
    >>> p = np.array([[0.95, 0.05], [0.05, 0.95], [0.6, 0.4]])
    >>> class_coverage(p).as_dict()
    {'modes': 2, 'hq_fraction': 0.6666666666666666, 'reverse_kl': 0.0, 'counts': [1, 1]}
    """
    p = _as_float64_matrix("probabilities", probabilities)
    threshold = _checks.finite_real("threshold", threshold, above=0)
    if threshold > 1:
        raise _checks.BadValue("threshold", threshold, "a probability in (0, 1]")
    if not np.all(np.isfinite(p)) or p.min() < 0 or not np.allclose(p.sum(1), 1, atol=1e-6):
        raise ValueError("probabilities must be finite, >= 0 and sum to 1 in every row")
    return _coverage(p.argmax(1), p.max(1) >= threshold, p.shape[1])


def _batch_dims(critic_out: torch.Tensor, x: torch.Tensor) -> int:
    """Leading batch axes of ``x``: 1 for a critic (B, ...) -> (B,), 2 for (S, B, ...) -> (S, B)."""
    k = critic_out.ndim
    if k not in (1, 2) or tuple(critic_out.shape) != tuple(x.shape[:k]) or x.ndim <= k:
        raise ValueError(
            "critic must map (B, ...) -> (B,) or, for an ensemble, (S, B, ...) -> (S, B); "
            f"got input {tuple(x.shape)} -> output {tuple(critic_out.shape)}"
        )
    return k


def _same_shape(real: torch.Tensor, fake: torch.Tensor, critic: Critic | None = None) -> None:
    """ValueError unless ``real`` and ``fake`` are finite floating-point tensors, non-empty and
    of one shape (and ``critic``, when given, is callable)."""
    if critic is not None and not callable(critic):
        raise _checks.BadValue("critic", critic, "a callable f: (B, ...) -> (B,)")
    for name, value in (("real", real), ("fake", fake)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise _checks.BadValue(name, value, "a floating-point torch.Tensor")
        if not torch.isfinite(value).all():
            raise _checks.BadValue(name, "a tensor with NaN or inf", "finite")
    if real.shape != fake.shape or real.numel() == 0:
        raise ValueError(
            "real and fake must be non-empty tensors of the same shape; got "
            f"real {tuple(real.shape)}, fake {tuple(fake.shape)}"
        )


def _input_grad_norms(critic: Critic, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Per-sample ``||grad_x f(x)||_2``, shape (B,) or (S, B), and the number of batch axes."""
    x = x.detach().requires_grad_(True)
    out = critic(x)
    batch_dims = _batch_dims(out, x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.flatten(start_dim=batch_dims).norm(dim=-1), batch_dims


def critic_lipschitz(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> float | np.ndarray:
    """Lower estimate of the critic's Lipschitz constant from per-sample input gradients.

    ``L_hat = max_x ||grad_x f(x)||_2`` over the real samples, the fake samples and the random
    interpolates ``x_hat = eps * real + (1 - eps) * fake``, ``eps ~ U[0, 1]`` per sample (the
    points where WGAN-GP penalises the gradient). ``L_hat <= Lip(f)``; the paper's weight clipping
    only bounds ``Lip(f)`` by some unknown ``K``, this shows which.

    Per-sample gradients come from one backward pass of ``f(x).sum()``, so the critic must treat
    samples independently (no BatchNorm in training mode: call ``critic.eval()`` or use a critic
    without batch statistics). Gradients are taken with respect to the inputs only; the
    parameters' ``.grad`` are left untouched.

    Parameters
    ----------
    critic : callable
        ``f``: (B, ...) -> (B,), or an ensemble of S critics (S, B, ...) -> (S, B).
    real, fake : torch.Tensor, shape (B, ...) or (S, B, ...)
        Real and generated samples, same shape, on the critic's device.
    generator : torch.Generator, optional
        Source of ``eps`` (on the samples' device), for a reproducible estimate.

    Returns
    -------
    float or numpy.ndarray of shape (S,)
        ``L_hat``; for an ensemble critic, one estimate per member (max over its own samples).

    References
    ----------
    Gulrajani et al., "Improved Training of Wasserstein GANs" (WGAN-GP), NeurIPS 2017, Section 4
    (interpolates) and Proposition 1; Arjovsky et al. 2017, Section 3 (the K-Lipschitz critic).
    """
    _same_shape(real, fake, critic)
    with torch.enable_grad():
        norms_real, batch_dims = _input_grad_norms(critic, real)
        norms_fake, _ = _input_grad_norms(critic, fake)
        eps_shape = tuple(real.shape[:batch_dims]) + (1,) * (real.ndim - batch_dims)
        eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype, device=real.device)
        norms_mid, _ = _input_grad_norms(critic, eps * real + (1 - eps) * fake)
    norms = torch.cat([norms_real, norms_fake, norms_mid], dim=-1)
    estimate = norms.amax(dim=-1).double().cpu().numpy()
    return float(estimate) if batch_dims == 1 else estimate


def layer_grad_norms(module: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the current ``.grad`` of each parameter, keyed by parameter name.

    ``||grad_theta L||_2`` over all entries of each parameter tensor ``theta``, for the parameters
    that have a ``.grad`` (after ``loss.backward()``); frozen or unused parameters are left out.
    Keys are ``module.named_parameters()`` names, e.g. ``"net.0.weight"``.

    Parameters
    ----------
    module : torch.nn.Module
        The network, typically the critic right after its backward pass.

    Returns
    -------
    dict[str, float]
        ``{name: ||p.grad||_2}`` in the order of ``named_parameters()``.

    References
    ----------
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Figure 1b (per-layer
    gradient norms explode or vanish under weight clipping).
    """
    if not isinstance(module, torch.nn.Module):
        raise _checks.BadValue("module", module, "a torch.nn.Module")
    return {
        name: float(torch.linalg.vector_norm(p.grad.detach().double()))
        for name, p in module.named_parameters()
        if p.grad is not None
    }


def critic_vs_exact(
    critic: Critic, real: torch.Tensor, fake: torch.Tensor
) -> dict[str, float | np.ndarray]:
    """The critic's Wasserstein estimate next to the exact W1 between the same two sample sets.

    ``w_estimate = mean_i f(real_i) - mean_j f(fake_j)`` (``= -critic_loss``, computed without
    gradients) and ``w1_exact = W1(real, fake)`` with the Euclidean cost (:func:`labkit.ot.w1`).
    By Kantorovich-Rubinstein duality ``w_estimate <= K * w1_exact`` for a K-Lipschitz critic.

    Parameters
    ----------
    critic : callable
        ``f``: (B, ...) -> (B,), or an ensemble of S critics (S, B, ...) -> (S, B).
    real, fake : torch.Tensor, shape (B, ...) or (S, B, ...)
        Real and generated samples, same shape; each sample is flattened to a vector for W1.

    Returns
    -------
    dict
        ``{"w_estimate": float, "w1_exact": float}``; for an ensemble, numpy arrays of shape (S,),
        entry s computed from ``real[s]`` and ``fake[s]``.

    References
    ----------
    Arjovsky, Chintala, Bottou, "Wasserstein GAN", ICML 2017, Equation (2) and Theorem 3.
    """
    _same_shape(real, fake, critic)
    with torch.no_grad():
        f_real, f_fake = critic(real), critic(fake)
    batch_dims = _batch_dims(f_real, real)
    _batch_dims(f_fake, fake)
    w_estimate = (f_real.mean(dim=-1) - f_fake.mean(dim=-1)).double().cpu().numpy()
    real_flat = real.detach().flatten(start_dim=batch_dims)
    fake_flat = fake.detach().flatten(start_dim=batch_dims)
    if batch_dims == 1:
        return {"w_estimate": float(w_estimate), "w1_exact": float(ot.w1(real_flat, fake_flat))}
    w1_exact = [ot.w1(r, f) for r, f in zip(real_flat, fake_flat, strict=True)]
    return {"w_estimate": w_estimate, "w1_exact": np.array(w1_exact, dtype=np.float64)}


def median_filter(values, width: int = 101) -> np.ndarray:
    """Running median over ``width`` points (odd), the edges padded with the nearest value.

    The paper smooths its W curves this way (width 101; Figures 3 and 4).

    >>> median_filter([0, 0, 9, 0, 0], 3).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    import scipy.ndimage

    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or width % 2 == 0:
        raise ValueError(f"width={width!r} is not allowed; it must be an odd integer >= 1")
    return scipy.ndimage.median_filter(np.asarray(values, dtype=float), size=width,
                                       mode="nearest")


# --------------------------------------------------------------------------- images: SWD

#: The 5-tap binomial kernel of the Laplacian pyramid, [1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256.
PYRAMID_KERNEL = torch.outer(torch.tensor([1.0, 4, 6, 4, 1]), torch.tensor([1.0, 4, 6, 4, 1])) / 256


def _pyramid_blur(x: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of (N, C, H, W) with :data:`PYRAMID_KERNEL`, mirrored borders."""
    kernel = PYRAMID_KERNEL.to(x).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Laplacian pyramid of a batch of images, from full resolution down to ``min_size``.

    G_0 = images, G_{k+1} = blur(G_k)[::2, ::2]; level k is L_k = G_k - 4 blur(up(G_{k+1}))
    (``up`` inserts zeros), and the last level is the Gaussian level G_K of side ``min_size``
    itself, as in Progressive GAN's ``sliced_wasserstein.py`` (OpenCV's pyrDown / pyrUp).

    Parameters
    ----------
    images : Tensor (N, C, S, S)
        S = min_size * 2^K.
    min_size : int, default 16

    Returns
    -------
    list of Tensor
        K + 1 levels, of sides S, S/2, ..., min_size.

    >>> [tuple(level.shape) for level in laplacian_pyramid(torch.zeros(2, 3, 64, 64))]
    [(2, 3, 64, 64), (2, 3, 32, 32), (2, 3, 16, 16)]
    """
    levels, current = [], images
    while current.shape[-1] > min_size:
        down = _pyramid_blur(current)[..., ::2, ::2]
        up = torch.zeros_like(current)
        up[..., ::2, ::2] = down
        levels.append(current - 4 * _pyramid_blur(up))
        current = down
    return [*levels, current]


#: Side of the image metric's patches (Progressive GAN's 7 x 7).
_PATCH = 7


def patch_descriptors(level: torch.Tensor, per_image: int, generator: torch.Generator,
                      patch: int = _PATCH) -> torch.Tensor:
    """``per_image`` random ``patch`` x ``patch`` patches of every image, normalised per channel.

    Patch corners are uniform over the positions where the patch fits. Each channel is then
    standardised over all patches of the set (mean 0, population std 1), as Progressive GAN does
    per level and per set.

    Parameters
    ----------
    level : Tensor (N, C, H, W)
    per_image : int
    generator : torch.Generator
        Draws the corners (on ``level``'s device).

    Returns
    -------
    Tensor (N * per_image, C * patch * patch)
    """
    n, c, h, w = level.shape
    dev = level.device
    ys = torch.randint(h - patch + 1, (n, per_image, 1, 1), generator=generator, device=dev)
    xs = torch.randint(w - patch + 1, (n, per_image, 1, 1), generator=generator, device=dev)
    offsets = torch.arange(patch, device=dev)
    rows, cols = ys + offsets[:, None], xs + offsets[None, :]
    image = torch.arange(n, device=dev)[:, None, None, None]
    desc = level[image, :, rows, cols].permute(0, 1, 4, 2, 3).reshape(-1, c, patch, patch)
    desc = desc - desc.mean((0, 2, 3), keepdim=True)
    desc = desc / desc.std((0, 2, 3), correction=0, keepdim=True).clamp_min(1e-8)
    return desc.flatten(1)


def random_directions(dim: int, count: int, generator: torch.Generator,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` directions uniform on the unit sphere of R^dim, as the columns of (dim, count)."""
    dirs = torch.randn(dim, count, generator=generator, device=device)
    return dirs / torch.linalg.vector_norm(dirs, dim=0, keepdim=True)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """W1 between the projections of two equal-size point clouds on each given unit direction.

    W1(a u_k, b u_k) = (1/n) sum_i |sort(a u_k)_i - sort(b u_k)_i|: in one dimension the optimal
    coupling of two n-point empirical measures pairs the sorted values. The sliced Wasserstein
    distance is the mean over directions.

    Parameters
    ----------
    a, b : Tensor (n, d)
    directions : Tensor (d, k)
        Unit columns u_1, ..., u_k.

    Returns
    -------
    Tensor (k,)

    Examples
    --------
    >>> a, b = torch.tensor([[0.0], [2.0]]), torch.tensor([[3.0], [1.0]])
    >>> sliced_wasserstein(a, b, torch.tensor([[1.0, -1.0]])).tolist()  # pairs 0-1 and 2-3
    [1.0, 1.0]
    """
    for name, value in (("a", a), ("b", b), ("directions", directions)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise _checks.BadValue(name, value, "a floating-point torch.Tensor")
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"a and b must be (n, d) of one shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return (_sorted_columns(a @ directions) - _sorted_columns(b @ directions)).abs().mean(0)


def _sorted_columns(x: torch.Tensor) -> torch.Tensor:
    """Each column of (n, k) sorted ascending; numpy's sort on the CPU, which measured 4-5x
    faster than ``torch.sort`` there (38,400 x 128 floats: 0.21 s against 0.93 s, one thread,
    torch 2.13); the same values either way."""
    if x.device.type != "cpu" or x.requires_grad:
        return torch.sort(x, dim=0).values
    return torch.from_numpy(np.sort(x.numpy(), axis=0))


@torch.no_grad()
def swd_images(real: torch.Tensor, fake: torch.Tensor, per_image: int = 128,
               n_directions: int = 512, seed: int = 0, min_size: int = 16) -> dict[str, float]:
    """Sliced Wasserstein distance between Laplacian-pyramid patches of two image sets, x 1e3.

    The Progressive GAN recipe (Karras et al. 2018, Section 5 and ``sliced_wasserstein.py``):
    a Laplacian pyramid from full resolution down to ``min_size`` (:func:`laplacian_pyramid`);
    ``per_image`` random 7 x 7 x C patches per image and level, normalised per channel, per
    level and per set (:func:`patch_descriptors`); ``n_directions`` random unit directions
    (the recipe's 4 x 128); sorted projections; mean absolute difference
    (:func:`sliced_wasserstein`); times 1e3. Lower is better; 0 for identical patch sets.

    Parameters
    ----------
    real, fake : Tensor (N, C, S, S)
        Same shape; values in any fixed range ([-1, 1] here; the normalisation removes scale).
    per_image, n_directions : int
        128 and 512 in the recipe (which uses N = 16,384 images); >= 1.
    seed : int
        Seeds the patch positions and directions, so repeated evaluations are comparable.
    min_size : int
        Side of the pyramid's last level, >= 7 (a patch must fit); the images must be at least
        this large.

    Returns
    -------
    dict
        ``swd_S`` for each level side S (full resolution first) and ``swd``, their mean.
    """
    for name, value in (("real", real), ("fake", fake)):
        if not isinstance(value, torch.Tensor) or value.is_complex() or value.dtype == torch.bool:
            raise _checks.BadValue(name, value, "a real torch.Tensor of images (N, C, S, S)")
    if real.shape != fake.shape or real.ndim != 4:
        raise ValueError(f"real and fake must be (N, C, S, S) of one shape; got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    per_image = _checks.integer("per_image", per_image, minimum=1)
    n_directions = _checks.integer("n_directions", n_directions, minimum=1)
    seed = _checks.integer("seed", seed, 0, _checks.MAX_TORCH_SEED)
    min_size = _checks.integer("min_size", min_size, minimum=_PATCH)
    if min(real.shape[-2:]) < min_size:
        raise _checks.BadValue("real", f"images of {real.shape[-2]} x {real.shape[-1]}",
                               f"images of at least min_size = {min_size} pixels a side")
    for name, value in (("real", real), ("fake", fake)):
        if not torch.isfinite(value).all():
            raise _checks.BadValue(name, "a tensor with NaN or inf", "finite")
    n, c = real.shape[:2]
    _checks.fits_in_memory("per_image", per_image, 2 * 4 * n * per_image * c * _PATCH**2,
                           f"{per_image} patches of 7 x 7 x {c} from each of 2 x {n} images")
    rng = torch.Generator(real.device).manual_seed(seed)
    result = {}
    for level_a, level_b in zip(laplacian_pyramid(real.float(), min_size),
                                laplacian_pyramid(fake.float(), min_size), strict=True):
        desc_a = patch_descriptors(level_a, per_image, rng)
        desc_b = patch_descriptors(level_b, per_image, rng)
        per_direction = [  # 128 directions at a time bounds the memory of the projections
            sliced_wasserstein(desc_a, desc_b, random_directions(
                desc_a.shape[1], min(128, n_directions - k), rng, real.device))
            for k in range(0, n_directions, 128)]
        result[f"swd_{level_a.shape[-1]}"] = 1e3 * float(torch.cat(per_direction).mean())
    result["swd"] = sum(result.values()) / len(result)
    return result
