"""Checks on a critic: its Lipschitz constant estimated from input gradients, per-layer gradient
norms (WGAN-GP, Figure 1b), and its Wasserstein estimate next to the exact W1 of
:mod:`labkit.ot`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from labkit import _checks

Critic = Callable[[torch.Tensor], torch.Tensor]


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


