"""The Lipschitz constraints on the critic, one :class:`ConstraintKind` entry each in
:data:`REGISTRY`.

Weight clipping (the paper's), the gradient penalty (WGAN-GP) and spectral normalisation
(SN-GAN) share one protocol, :class:`Constraint`, whose hooks every loop that trains a critic
calls around each critic step through :func:`critic_update`. A registry entry also says which
config fields set the constraint (:attr:`ConstraintKind.settings`) and whether the fast path
can run it; adding a constraint is one class and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from labkit import _checks
from labkit.models import CONV_LAYERS, EnsembleLinear

#: When weight clipping clamps: ``"after"`` each critic update (paper, Algorithm 1) or
#: ``"before"`` each critic step (the authors' ``main.py``); see :class:`WeightClipping`.
CLIP_TIMINGS = ("after", "before")


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


def critic_update(constraint: Constraint, critic: nn.Module, optimizer: torch.optim.Optimizer,
                  losses: Callable[[], tuple[torch.Tensor, torch.Tensor | float]],
                  reduce_gradients: Callable[[nn.Module], None] | None = None) -> torch.Tensor:
    """One constrained critic update, the constraint's hooks in the training loop's order.

    ``constraint.before_critic_step(critic)``; ``loss, penalty = losses()`` (the forward passes:
    the critic loss, () or (S,), and the constraint's penalty); zero the gradients, backward of
    ``(loss + penalty).sum()`` (the sum over an ensemble's members gives each its own gradient),
    ``reduce_gradients(critic)`` if given (data parallelism), ``optimizer.step()``;
    ``constraint.after_critic_step(critic)``. Every loop that trains a critic calls this: the
    training step (:mod:`labkit.train.step`) and the critic explorer (:mod:`labkit.critics`).

    Returns
    -------
    Tensor, () or (S,)
        The critic loss of this step (before the update), detached.
    """
    constraint.before_critic_step(critic)
    loss, penalty = losses()
    optimizer.zero_grad(set_to_none=True)
    (loss + penalty).sum().backward()
    if reduce_gradients is not None:
        reduce_gradients(critic)
    optimizer.step()
    constraint.after_critic_step(critic)
    return loss.detach()


@dataclass(frozen=True)
class ConstraintKind:
    """One entry of :data:`REGISTRY`: a constraint and how a config sets it.

    Attributes
    ----------
    name : str
        The ``constraint`` value of :class:`~labkit.train.TrainConfig` and
        :class:`~labkit.critics.CriticConfig`.
    make : callable ``**kwargs -> Constraint``
        The class.
    settings : callable ``config -> dict``
        Its keyword arguments from a config's fields (``clip``, ``clip_timing``, ``gp_lambda``,
        ``seed``: every config that names a constraint has them).
    fast : bool
        Whether the fast path (:mod:`labkit.train.fast`) runs it: its hooks draw nothing on the
        host, so a CUDA graph can replay them (the gradient penalty draws its interpolation
        weights, so it cannot).
    """

    name: str
    make: Callable[..., Constraint]
    settings: Callable[[Any], dict[str, Any]]
    fast: bool


#: Every constraint, by name.
REGISTRY: dict[str, ConstraintKind] = {kind.name: kind for kind in (
    ConstraintKind("clip", WeightClipping, lambda c: {"clip": c.clip, "timing": c.clip_timing},
                   fast=True),
    ConstraintKind("gp", GradientPenalty, lambda c: {"lam": c.gp_lambda}, fast=False),
    ConstraintKind("sn", SpectralNorm, lambda c: {"seed": c.seed}, fast=False),
    ConstraintKind("none", Constraint, lambda c: {}, fast=True),
)}
#: The names of :data:`REGISTRY`.
CONSTRAINTS = tuple(REGISTRY)
#: The constraints the fast path runs (:attr:`ConstraintKind.fast`).
FAST_CONSTRAINTS = tuple(name for name, kind in REGISTRY.items() if kind.fast)


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
    if name not in REGISTRY:
        raise ValueError(f"name must be one of {CONSTRAINTS}; got {name!r}")
    return REGISTRY[name].make(**kwargs)


def from_config(config) -> Constraint:
    """The constraint ``config.constraint`` names, set by the config's fields
    (:attr:`ConstraintKind.settings`); ``config`` is a :class:`~labkit.train.TrainConfig` or a
    :class:`~labkit.critics.CriticConfig`."""
    kind = REGISTRY[config.constraint]
    return kind.make(**kind.settings(config))


__all__ = ["Constraint", "WeightClipping", "GradientPenalty", "SpectralNorm",
           "EnsembleSpectralNorm", "Compose", "ConstraintKind", "REGISTRY", "CONSTRAINTS",
           "FAST_CONSTRAINTS", "CLIP_TIMINGS", "clip_parameters_", "critic_update",
           "make_constraint", "from_config"]
