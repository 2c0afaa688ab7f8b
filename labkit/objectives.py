"""Objectives of the GAN and WGAN games and the Lipschitz constraints on the critic.

Losses are written so the optimiser *minimises* them and reduce by the mean over the last (batch)
dimension, so single models give scalars and ensembles give one value per member. Constraints
(weight clipping, gradient penalty, spectral normalisation) share one protocol, :class:`Constraint`,
whose hooks the training loop calls around every critic step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from labkit import _checks
from labkit.models import CONV_LAYERS, EnsembleLinear

LOSSES = ("wgan", "gan", "gan-logd")
CONSTRAINTS = ("clip", "gp", "sn", "none")
CLIP_TIMINGS = ("after", "before")
_LOG4 = math.log(4.0)


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")


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
    _check_loss(loss)
    if loss == "wgan":
        return f_fake.mean(-1) - f_real.mean(-1)
    return F.softplus(-f_real).mean(-1) + F.softplus(f_fake).mean(-1)


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
    _check_loss(loss)
    if loss == "wgan":
        return -f_fake.mean(-1)
    if loss == "gan":
        return -F.softplus(f_fake).mean(-1)
    return F.softplus(-f_fake).mean(-1)


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
    _check_loss(loss)
    if loss == "wgan":
        return -critic_loss_value
    return (_LOG4 - critic_loss_value) / 2


# --------------------------------------------------------------------------- constraints


class Constraint:
    """No constraint, and the protocol every Lipschitz constraint on the critic follows.

    The training loop calls, for a critic built once and updated n_critic times per generator
    step: ``critic = c.prepare(critic)`` once after building it; then for every critic step
    ``c.before_critic_step(critic)`` before the forward pass, adds
    ``c.penalty(critic, real, fake, generator)`` to :func:`critic_loss`, steps the optimiser, and
    calls ``c.after_critic_step(critic)``. Each hook here does nothing.
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def prepare(self, critic: nn.Module) -> nn.Module:
        """Called once when the critic is built; returns the critic to train (here unchanged)."""
        return critic

    def before_critic_step(self, critic: nn.Module) -> None:
        """Called at the start of each critic step, before its forward pass."""

    def penalty(
        self,
        critic: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | float:
        """Term added to the critic loss; ``generator`` is a random-number generator. Here 0."""
        return 0.0

    def after_critic_step(self, critic: nn.Module) -> None:
        """Called right after ``optimizer.step()`` of each critic step."""


def clip_parameters_(module: nn.Module, clip: float) -> nn.Module:
    """Clamp every parameter of ``module`` to [-clip, clip] in place, in two fused calls.

    w <- clip(w, -c, c) for all parameters, BatchNorm's included (paper, Algorithm 1, line 7; the
    authors' ``p.data.clamp_`` loop), with ``torch._foreach_clamp_min_`` / ``_foreach_clamp_max_``
    instead of one kernel launch per parameter.

    Parameters
    ----------
    module : torch.nn.Module
    clip : float
        c > 0.

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    parameters = list(module.parameters())
    if parameters:
        with torch.no_grad():
            torch._foreach_clamp_min_(parameters, -clip)
            torch._foreach_clamp_max_(parameters, clip)
    return module


@dataclass
class WeightClipping(Constraint):
    """Weight clipping: every critic parameter in [-clip, clip] (paper, Algorithm 1).

    Parameters
    ----------
    clip : float, default 0.01
        c > 0; the paper's default.
    timing : {"after", "before"}, default "after"
        ``"after"``: clamp right after each critic update (paper, Algorithm 1), so every critic
        that is used, by the next critic step and by the generator, is clipped. ``"before"``: clamp
        at the start of each critic step (the authors' ``main.py``), so the parameters after the
        last critic step of a phase, which the generator step sees, may exceed c by one update.
    """

    clip: float = 0.01
    timing: str = "after"

    def __post_init__(self) -> None:
        self.clip = _checks.finite_real("clip", self.clip, above=0)
        _checks.choice("timing", self.timing, CLIP_TIMINGS)

    def before_critic_step(self, critic: nn.Module) -> None:
        if self.timing == "before":
            clip_parameters_(critic, self.clip)

    def after_critic_step(self, critic: nn.Module) -> None:
        if self.timing == "after":
            clip_parameters_(critic, self.clip)


@dataclass
class GradientPenalty(Constraint):
    """WGAN-GP's penalty lam * E[(||grad_x f(x_hat)||_2 - 1)^2] at random interpolates.

    x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample; the norm is taken per sample
    over all of its coordinates (Gulrajani et al. 2017, Algorithm 1). The gradient is built with
    ``create_graph=True`` so the penalty trains the critic. A critic's output shape is its batch
    shape: ``critic.batch_ndim`` leading input dims (1 if absent; 2 for ensembles, (S, B)).

    Parameters
    ----------
    lam : float, default 10.0
        lambda >= 0 (WGAN-GP's 10; its ``gan_toy.py`` uses 0.1 on toys).
    """

    lam: float = 10.0

    def __post_init__(self) -> None:
        self.lam = _checks.finite_real("lam", self.lam, at_least=0)

    def penalty(
        self,
        critic: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The penalty, averaged over the last batch dimension.

        Parameters
        ----------
        critic : torch.nn.Module
            Maps (*batch, ...) to (*batch).
        real, fake : Tensor (*batch, ...)
            Same shape; detached here (the penalty trains the critic only).
        generator : torch.Generator, optional
            Random-number generator for eps (global RNG if None), on ``real``'s device.

        Returns
        -------
        Tensor (*batch[:-1])
            ``()`` for a single critic, ``(S,)`` for an ensemble, like :func:`critic_loss`.
        """
        if real.shape != fake.shape:
            raise ValueError(
                f"real and fake must have the same shape; got {tuple(real.shape)} and "
                f"{tuple(fake.shape)}"
            )
        batch_ndim = getattr(critic, "batch_ndim", 1)
        batch_shape = real.shape[:batch_ndim]
        eps_shape = (*batch_shape, *[1] * (real.dim() - batch_ndim))
        eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
        x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        f = critic(x_hat)
        if f.shape != batch_shape:
            raise ValueError(
                f"critic output must have the batch shape {tuple(batch_shape)}; got "
                f"{tuple(f.shape)} (set critic.batch_ndim for critics with several batch dims)"
            )
        (grad,) = torch.autograd.grad(f.sum(), x_hat, create_graph=True)
        norm = torch.linalg.vector_norm(grad.reshape(*batch_shape, -1), dim=-1)
        return self.lam * (norm - 1).square().mean(-1)


class EnsembleSpectralNorm(nn.Module):
    """Spectral normalisation of an ensemble's stacked weight, one power iteration per member.

    A parametrisation for :class:`labkit.models.EnsembleLinear`: the weight (S, in, out) holds
    member s's ``nn.Linear`` weight transposed, A_s = weight[s].T of shape (out, in). Each forward
    pass in training mode runs ``n_power_iterations`` steps of the power method on every A_s at
    once, u_s <- normalize(A_s v_s), v_s <- normalize(A_s^T u_s), and returns weight[s] / sigma_s
    with sigma_s = u_s^T A_s v_s, exactly the rule of
    ``torch.nn.utils.parametrizations.spectral_norm`` applied to each member (Miyato et al.
    2018, Algorithm 1). In eval mode u and v stay fixed.

    Parameters
    ----------
    weight : Tensor (S, in, out)
        The weight to normalise (used for the shapes and the 15 warm-up power iterations).
    n_power_iterations : int, default 1
    eps : float, default 1e-12
        Added to norms when normalising u and v.
    generator : torch.Generator, optional
        Source of the random starting vectors (global RNG if None): for each member in turn,
        u_s ~ N(0, I_out) then v_s ~ N(0, I_in), as torch draws them for one layer.

    Attributes
    ----------
    _u : buffer (S, out)
    _v : buffer (S, in)
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, eps: float = 1e-12,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if weight.dim() != 3:
            raise ValueError(f"weight must have shape (S, in, out); got {tuple(weight.shape)}")
        self.n_power_iterations, self.eps = n_power_iterations, eps
        n_members, n_in, n_out = weight.shape
        draws = [(torch.randn(n_out, generator=generator), torch.randn(n_in, generator=generator))
                 for _ in range(n_members)]
        u = torch.stack([d[0] for d in draws]).to(weight)
        v = torch.stack([d[1] for d in draws]).to(weight)
        self.register_buffer("_u", F.normalize(u, dim=1, eps=eps))
        self.register_buffer("_v", F.normalize(v, dim=1, eps=eps))
        self._power_method(weight, 15)

    @torch.no_grad()
    def _power_method(self, weight: torch.Tensor, n_iterations: int) -> None:
        """u <- normalize(A v), v <- normalize(A^T u) per member, in place (A_s = weight[s].T)."""
        for _ in range(n_iterations):
            F.normalize(torch.einsum("sio,si->so", weight, self._v), dim=1, eps=self.eps,
                        out=self._u)
            F.normalize(torch.einsum("sio,so->si", weight, self._u), dim=1, eps=self.eps,
                        out=self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_method(weight, self.n_power_iterations)
        # Clones, as torch does, so a graph built before the next in-place update stays valid.
        u, v = self._u.clone(memory_format=torch.contiguous_format), self._v.clone(
            memory_format=torch.contiguous_format)
        sigma = (u * torch.einsum("sio,si->so", weight, v)).sum(1)
        return weight / sigma[:, None, None]


@dataclass
class SpectralNorm(Constraint):
    """Spectral normalisation: W -> W / sigma(W) in every Linear and convolution (SN-GAN).

    sigma(W) is the largest singular value of W (of W reshaped to (out, in * k * k) for
    convolutions), estimated by ``n_power_iterations`` power iterations per training forward pass
    (Miyato et al. 2018; ``torch.nn.utils.parametrizations.spectral_norm``). In an ensemble critic
    each member of every :class:`labkit.models.EnsembleLinear` is normalised by its own sigma
    (:class:`EnsembleSpectralNorm`). The power iteration's random starting vectors come from
    ``seed``, for single critics too, so a run never depends on the state of torch's global RNG.

    Parameters
    ----------
    n_power_iterations : int, default 1
    eps : float, default 1e-12
    seed : int, default 0
        Seed of the power iteration's random starting vectors.
    """

    n_power_iterations: int = 1
    eps: float = 1e-12
    seed: int = 0

    def __post_init__(self) -> None:
        self.n_power_iterations = _checks.integer("n_power_iterations", self.n_power_iterations,
                                                  minimum=1)
        self.eps = _checks.finite_real("eps", self.eps, above=0)

    def prepare(self, critic: nn.Module) -> nn.Module:
        """Wrap each Linear / convolution / EnsembleLinear of ``critic`` in place (already
        wrapped ones are kept)."""
        generator = torch.Generator().manual_seed(self.seed)
        # torch's spectral_norm draws its starting vectors from the global RNG (the critic's
        # device's): seed that from ``seed`` and give it back unchanged afterwards.
        cuda = sorted({p.device.index or 0 for p in critic.parameters() if p.is_cuda})
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            for m in list(critic.modules()):
                if isinstance(m, (nn.Linear, *CONV_LAYERS, EnsembleLinear)) and not (
                    parametrize.is_parametrized(m, "weight")
                ):
                    if isinstance(m, EnsembleLinear):
                        norm = EnsembleSpectralNorm(m.weight.detach(), self.n_power_iterations,
                                                    self.eps, generator)
                        parametrize.register_parametrization(m, "weight", norm)
                    else:
                        spectral_norm(m, n_power_iterations=self.n_power_iterations,
                                      eps=self.eps)
        return critic


class Compose(Constraint):
    """Several constraints applied together (e.g. spectral norm plus a gradient penalty).

    Hooks run in the given order; penalties are summed.

    Parameters
    ----------
    *constraints : Constraint
    """

    def __init__(self, *constraints: Constraint) -> None:
        bad = [c for c in constraints if not isinstance(c, Constraint)]
        if bad:
            raise ValueError(f"constraints must be Constraint instances; got {bad!r}")
        self.constraints = constraints

    def __repr__(self) -> str:
        return f"Compose{self.constraints!r}"

    def prepare(self, critic: nn.Module) -> nn.Module:
        for c in self.constraints:
            critic = c.prepare(critic)
        return critic

    def before_critic_step(self, critic: nn.Module) -> None:
        for c in self.constraints:
            c.before_critic_step(critic)

    def penalty(
        self,
        critic: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | float:
        return sum(c.penalty(critic, real, fake, generator) for c in self.constraints)

    def after_critic_step(self, critic: nn.Module) -> None:
        for c in self.constraints:
            c.after_critic_step(critic)


def make_constraint(name: str, **kwargs) -> Constraint:
    """Build a constraint by name: ``"clip"``, ``"gp"``, ``"sn"`` or ``"none"``.

    Parameters
    ----------
    name : {"clip", "gp", "sn", "none"}
        :class:`WeightClipping`, :class:`GradientPenalty`, :class:`SpectralNorm` or
        :class:`Constraint` (no constraint).
    **kwargs
        Passed to the class (e.g. ``clip=0.01, timing="before"`` or ``lam=10.0``).

    Examples
    --------
    >>> make_constraint("clip", clip=0.05)
    WeightClipping(clip=0.05, timing='after')
    """
    classes = {
        "clip": WeightClipping,
        "gp": GradientPenalty,
        "sn": SpectralNorm,
        "none": Constraint,
    }
    if name not in classes:
        raise ValueError(f"name must be one of {CONSTRAINTS}; got {name!r}")
    return classes[name](**kwargs)
