"""Measures of a trained GAN: mode coverage on Gaussian mixtures, and checks on the critic.

Mode coverage follows VEEGAN / PacGAN (modes captured, % high-quality samples, reverse KL); the
critic checks compare its Wasserstein estimate with the exact W1 of :mod:`labkit.ot`, estimate its
Lipschitz constant from gradients and report per-layer gradient norms (WGAN-GP, Figure 1b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

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
    radius = (_checks.finite_real("threshold", threshold, above=0)
              * _checks.finite_real("std", std, above=0))

    # (N, K) Euclidean distances, one centre at a time so memory stays O(N d + N K).
    dist = np.stack([np.linalg.norm(x - centre, axis=1) for centre in c], axis=1)
    dist = np.where(np.isnan(dist), np.inf, dist)
    nearest = dist.argmin(axis=1)
    high_quality = dist[np.arange(len(x)), nearest] < radius
    counts = np.bincount(nearest[high_quality], minlength=len(c)).astype(np.int64)
    counts.flags.writeable = False

    n_hq = int(counts.sum())
    if n_hq == 0:
        reverse_kl = float("nan")
    else:
        p_hat = counts[counts > 0] / n_hq
        reverse_kl = float(np.sum(p_hat * np.log(len(c) * p_hat)))
    return ModeCoverage(
        modes=int(np.count_nonzero(counts)),
        hq_fraction=n_hq / len(x),
        reverse_kl=reverse_kl,
        counts=counts,
    )


def _batch_dims(critic_out: torch.Tensor, x: torch.Tensor) -> int:
    """Leading batch axes of ``x``: 1 for a critic (B, ...) -> (B,), 2 for (S, B, ...) -> (S, B)."""
    k = critic_out.ndim
    if k not in (1, 2) or tuple(critic_out.shape) != tuple(x.shape[:k]) or x.ndim <= k:
        raise ValueError(
            "critic must map (B, ...) -> (B,) or, for an ensemble, (S, B, ...) -> (S, B); "
            f"got input {tuple(x.shape)} -> output {tuple(critic_out.shape)}"
        )
    return k


def _same_shape(real: torch.Tensor, fake: torch.Tensor) -> None:
    """ValueError unless ``real`` and ``fake`` are non-empty and of one shape."""
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
    _same_shape(real, fake)
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
    _same_shape(real, fake)
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
