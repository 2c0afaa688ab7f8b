"""The losses of the GAN and WGAN games, one :class:`Loss` entry each in :data:`REGISTRY`.

Losses are written so the optimiser *minimises* them and reduce by the mean over the last (batch)
dimension, so single models give scalars and ensembles give one value per member. An entry holds
the critic's loss, the generator's loss and the distance estimate a trained critic certifies; the
training loop, the critic explorer (:mod:`labkit.critics`) and the evaluators read nothing else.
Adding a loss is one entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_LOG4 = math.log(4.0)


def _wgan_critic(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    return f_fake.mean(-1) - f_real.mean(-1)


def _bce_critic(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-f_real).mean(-1) + F.softplus(f_fake).mean(-1)


def _wgan_generator(f_fake: torch.Tensor) -> torch.Tensor:
    return -f_fake.mean(-1)


def _minimax_generator(f_fake: torch.Tensor) -> torch.Tensor:
    return -F.softplus(f_fake).mean(-1)


def _logd_generator(f_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-f_fake).mean(-1)


def _wasserstein_estimate(value):
    return -value


def _js_estimate(value):
    return (_LOG4 - value) / 2


@dataclass(frozen=True)
class Loss:
    """One game: what the critic and the generator minimise, and what the critic certifies.

    Attributes
    ----------
    name : str
        The ``loss`` value of :class:`~labkit.train.TrainConfig` and
        :class:`~labkit.critics.CriticConfig`.
    critic : callable ``(f_real (..., B), f_fake (..., B')) -> (...)``
        See :func:`critic_loss`.
    generator : callable ``f_fake (..., B) -> (...)``
        See :func:`generator_loss`.
    estimate : callable ``critic_loss -> distance``
        See :func:`distance_estimate`.
    fixed_pair : bool
        Offered by the critic explorer (:mod:`labkit.critics`), which trains a critic on a fixed
        pair of sample sets; a loss that differs from another one only in the generator's loss
        adds nothing there.
    """

    name: str
    critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    estimate: Callable
    fixed_pair: bool = True


#: Every loss, by name.
REGISTRY: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("wgan", _wgan_critic, _wgan_generator, _wasserstein_estimate),
    Loss("gan", _bce_critic, _minimax_generator, _js_estimate),
    Loss("gan-logd", _bce_critic, _logd_generator, _js_estimate, fixed_pair=False),
)}
#: The names of :data:`REGISTRY`.
LOSSES = tuple(REGISTRY)
#: The losses the critic explorer offers (:attr:`Loss.fixed_pair`).
FIXED_PAIR_LOSSES = tuple(name for name, loss in REGISTRY.items() if loss.fixed_pair)


def get(loss: str) -> Loss:
    """The :class:`Loss` named ``loss``; ``ValueError`` listing the names if there is none."""
    if loss not in REGISTRY:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
    return REGISTRY[loss]


def critic_loss(loss: str, f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """The loss the critic minimises, averaged over the last (batch) dimension.

    - ``"wgan"``: mean f(fake) - mean f(real), i.e. the critic maximises
      E_{P_r}[f] - E_{P_theta}[f] (paper, Algorithm 1, line 5, with the sign of a loss).
    - ``"gan"`` and ``"gan-logd"``: binary cross-entropy of D = sigmoid(f) with real = 1, fake = 0,
      -E log D(x) - E log(1 - D(g(z))) = mean softplus(-f(real)) + mean softplus(f(fake)),
      computed on logits so it stays finite when D saturates (Goodfellow et al. 2014, eq. 1).

    Parameters
    ----------
    loss : {"wgan", "gan", "gan-logd"}
    f_real, f_fake : Tensor (..., B)
        Critic values (logits for the GAN losses) on real and generated samples; leading dims
        (an ensemble's S) must match, the batch sizes may differ.

    Returns
    -------
    Tensor (...)
        ``()`` for a single critic, ``(S,)`` for an ensemble.
    """
    return get(loss).critic(f_real, f_fake)


def generator_loss(loss: str, f_fake: torch.Tensor) -> torch.Tensor:
    """The loss the generator minimises, averaged over the last (batch) dimension.

    - ``"wgan"``: -mean f(g(z)) (paper, Algorithm 1, line 10).
    - ``"gan"`` (minimax): mean log(1 - D(g(z))) = -mean softplus(f(g(z))); saturates when D
      rejects the samples (paper, Section 3 and Figure 2).
    - ``"gan-logd"`` (non-saturating): -mean log D(g(z)) = mean softplus(-f(g(z))).

    Parameters
    ----------
    loss : {"wgan", "gan", "gan-logd"}
    f_fake : Tensor (..., B)
        Critic values (logits) on generated samples.

    Returns
    -------
    Tensor (...)
    """
    return get(loss).generator(f_fake)


def distance_estimate(loss: str, critic_loss_value: torch.Tensor | float) -> torch.Tensor | float:
    """The distance between real and generated distributions that a trained critic certifies.

    - ``"wgan"``: W_est = -critic_loss = mean f(real) - mean f(fake), the Kantorovich-Rubinstein
      lower bound on W1 (paper, eq. 2) times the critic's Lipschitz constant (clipping fixes it
      only up to a factor); positive when the fake distribution is far from the real one.
    - ``"gan"`` / ``"gan-logd"``: the Jensen-Shannon lower bound (log 4 - critic_loss) / 2: with
      V = -critic_loss, max_D V = 2 JS - log 4 (Goodfellow et al. 2014, Theorem 1), so the bound
      reaches JS (in nats, at most log 2) at the optimal discriminator.

    Sign and the authors' ``Loss_D``: their ``main.py`` has the critic minimise
    ``netD(real) - netD(fake)`` (``backward(one)`` on real, ``backward(mone)`` on fake), so their
    network learns -f (high on fakes), and the printed ``Loss_D = netD(real) - netD(fake)`` equals
    this module's ``critic_loss`` = f(fake) - f(real): negative as soon as the critic has learned
    anything. The paper's curves plot ``-Loss_D``, i.e. the ``W_est`` returned here.

    Parameters
    ----------
    loss : {"wgan", "gan", "gan-logd"}
    critic_loss_value : Tensor (...) or float
        The output of :func:`critic_loss` (before any penalty is added).

    Returns
    -------
    Tensor (...) or float
        Same shape as ``critic_loss_value``.

    Examples
    --------
    >>> distance_estimate("wgan", -0.25)
    0.25
    >>> round(distance_estimate("gan", 0.0), 4)  # perfect discriminator: log 2
    0.6931
    """
    return get(loss).estimate(critic_loss_value)


def critic_estimate(loss: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                    chunk: int | None = None) -> torch.Tensor:
    """The distance ``critic`` certifies between the sample sets ``real`` and ``fake``.

    :func:`distance_estimate` of :func:`critic_loss` on ``critic(real)`` and ``critic(fake)``
    (two forward passes, no penalty): for ``"wgan"`` W_est = mean f(real) - mean f(fake), which is
    K * W1 at best for a K-Lipschitz f (paper, eq. 2). Gradients flow unless the caller turns
    them off. This is the one place where a critic is held against a pair of sample sets: the
    evaluators, the critic explorer and the study call it.

    Parameters
    ----------
    loss : str
        A name of :data:`REGISTRY`.
    critic : torch.nn.Module
        (*batch, ...) -> (*batch).
    real, fake : Tensor (n, ...) / (m, ...), or (S, n, ...) / (S, m, ...) for an ensemble
    chunk : int, optional
        The critic sees ``chunk`` real and ``chunk`` fake samples at a time along the first
        dimension (BatchNorm critics normalise per batch, as in training; ``real`` and ``fake``
        then have the same length) and the per-chunk critic losses are averaged.

    Returns
    -------
    Tensor (), or (S,) for an ensemble
    """
    if chunk:
        values = [critic_loss(loss, critic(r), critic(f))
                  for r, f in zip(real.split(chunk), fake.split(chunk), strict=True)]
        value = torch.stack(values).mean(0)
    else:
        value = critic_loss(loss, critic(real), critic(fake))
    return distance_estimate(loss, value)


__all__ = ["Loss", "REGISTRY", "LOSSES", "FIXED_PAIR_LOSSES", "get", "critic_loss",
           "generator_loss", "distance_estimate", "critic_estimate"]
