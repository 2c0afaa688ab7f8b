"""The maths of one generator iteration of Algorithm 1, as a step object.

A :class:`Step` is called as ``step(n_critic)``: (1) ``n_critic`` critic steps on
``E[f(real)] - E[f(fake)]`` under the Lipschitz constraint, then (2) one generator step; it
returns the iteration's values (W estimate, generator loss, critic and generator gradient norms),
shape (4, S), still on the device. :class:`ReferenceStep` is the reference implementation; the
fast path's :class:`~labkit.train.fast.FastStep` is another one with the same maths, which runs
the reference step's own critic and generator steps. The loop (:class:`~labkit.train.Trainer`)
holds one step and never looks inside it.

Several seeds of a toy train in one pass as an *ensemble* (stacked parameters, leading seed
dimension S): every tensor below then carries that extra leading dimension, and each loss is
reduced to one value per seed and summed, which gives each member exactly its own gradient.
Member s then follows the single run with seed ``seed + s`` up to float rounding, except under
the gradient penalty, whose interpolation weights all come from the first member's stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol

import torch
from torch import nn

from labkit import distributed
from labkit.gan import constraints, losses
from labkit.train.config import DRAWS, TrainConfig, seed_stream
from labkit.train.data import ImageData, ToyData, stack_members


class Step(Protocol):
    """One generator iteration of Algorithm 1 (see the module's docstring).

    Attributes
    ----------
    reference : ReferenceStep
        The reference step whose models, optimizers and random streams this step advances
        (itself for a :class:`ReferenceStep`).
    """

    reference: ReferenceStep

    def __call__(self, n_critic: int) -> torch.Tensor:
        """``n_critic`` critic steps then one generator step; the values, (4, S), on the device."""

    def reset(self) -> None:
        """Forget anything derived from the state (called after a checkpoint is loaded)."""


def build_optimizer(config: TrainConfig, params: Iterable[nn.Parameter], fast: bool = False,
                    capturable: bool = False) -> torch.optim.Optimizer:
    """RMSprop (paper), Adam with ``betas`` (WGAN-GP) or plain SGD, at ``config.lr``.

    PyTorch's default implementations are kept: on the CPU the multi-tensor (``foreach``) path
    measured no faster inside the loop (benchmarks/README.md). ``fast`` (the fast path) asks
    for the multi-tensor kernels: ``foreach`` for RMSprop, ``fused`` for Adam and SGD;
    ``capturable`` keeps the optimizer's step counters on the device for CUDA graphs.
    """
    params = list(params)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, foreach=fast or None,
                                   capturable=capturable)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=fast or None,
                                capturable=capturable)
    return torch.optim.SGD(params, lr=config.lr, fused=fast or None)


def grad_norm(module: nn.Module, ensemble: bool = False) -> torch.Tensor:
    """L2 norm of the module's gradient: () or, for an ensemble, one per member (S,)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if ensemble:
        return torch.stack([g.flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class ReferenceStep:
    """Algorithm 1's generator iteration, written out (the reference :class:`Step`).

    Builds the run's models (from ``data``), the constraint, the two optimizers and one stream of
    training draws per seed. Under data parallelism (``world`` > 1, :mod:`labkit.distributed`)
    every rank draws the same batch and keeps its share, and the gradients are averaged over
    the ranks before each update.

    Parameters
    ----------
    config : TrainConfig
    data : ToyData or ImageData
        What the run trains on (:func:`labkit.train.data.build_data`).
    device : torch.device
    rank, world : int
        This process and the number of processes.
    fast_optimizers, capturable : bool
        Passed to :func:`build_optimizer` (the fast path asks for them).
    """

    def __init__(self, config: TrainConfig, data: ToyData | ImageData, device: torch.device,
                 rank: int = 0, world: int = 1, fast_optimizers: bool = False,
                 capturable: bool = False) -> None:
        self.config, self.data, self.device = config, data, device
        self.rank, self.world = rank, world
        self.seeds = config.seeds
        self.ensemble = config.n_seeds > 1
        self.constraint = constraints.from_config(config)
        generator, critic = data.models(config)
        self.generator = generator.to(device)
        self.critic = self.constraint.prepare(critic.to(device))
        self.opt_generator = build_optimizer(config, self.generator.parameters(),
                                             fast_optimizers, capturable)
        self.opt_critic = build_optimizer(config, self.critic.parameters(), fast_optimizers,
                                          capturable)
        # Real and fake batches go through the critic together unless BatchNorm would mix them.
        self.joint_critic_pass = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                         for m in self.critic.modules())
        #: One stream of training draws per seed.
        self.rngs = [seed_stream(s, DRAWS) for s in self.seeds]
        #: Context of every forward pass of the steps (bf16 autocast on the fast path).
        self.forward_context: Callable[[], contextlib.AbstractContextManager] = \
            contextlib.nullcontext

    @property
    def reference(self) -> ReferenceStep:
        return self

    def reset(self) -> None:
        """Nothing to forget: every call reads the state afresh."""

    def __call__(self, n_critic: int) -> torch.Tensor:
        """(1) critic: ``n_critic`` steps, then (2) generator: one step; the values (4, S)."""
        loss_c = self.critic_phase(n_critic)
        return self.step_values(loss_c, self.generator_phase())

    # ----------------------------------------------------------------- sampling
    def sample_real(self, n: int) -> torch.Tensor:
        """A real batch: (n, d), or (S, n, d) for an ensemble; each seed draws from its own rng.
        Under data parallelism, this rank's n / world of the n drawn."""
        return stack_members([self.data.target.sample(n, generator=g) for g in self.rngs],
                             self.device)

    def sample_noise(self, n: int) -> torch.Tensor:
        """Latent noise z ~ N(0, I): (n, nz), or (S, n, nz) for an ensemble (this rank's share)."""
        draws = [torch.randn(n, self.config.nz, generator=g) for g in self.rngs]
        return stack_members([z[self.rank::self.world] if self.world > 1 else z for z in draws],
                             self.device)

    def _critic_batches(self, n_steps: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The (real, fake) batches of a critic phase: drawn all at once when the data says so
        (:attr:`~labkit.train.data.ToyData.whole_phase`), else one step at a time."""
        m, batch_dim = self.config.batch_size, 1 if self.ensemble else 0
        group = n_steps if self.data.whole_phase else 1
        for _ in range(n_steps // group):
            reals = self.sample_real(m * group)
            with torch.no_grad():
                fakes = self.generator(self.sample_noise(m * group))
            yield from zip(reals.split(m // self.world, batch_dim),
                           fakes.split(m // self.world, batch_dim), strict=True)

    # ----------------------------------------------------------------- Algorithm 1
    def critic_phase(self, n_steps: int) -> torch.Tensor:
        """(1) critic: ``n_steps`` steps maximising E[f(real)] - E[f(fake)] under the constraint.

        Returns the last step's critic loss ``E[f(fake)] - E[f(real)]``: shape () or (S,).
        """
        for real, fake in self._critic_batches(n_steps):
            loss_c = self.critic_step(real, fake)
        return loss_c

    def critic_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """One critic step on a (real, fake) pair of batches, the constraint's hooks around it
        (:func:`labkit.gan.constraints.critic_update`).

        ``real`` and ``fake``: (m, *dim), or (S, m, *dim) for an ensemble. Returns the critic loss
        ``E[f(fake)] - E[f(real)]`` of this step (before the update), shape () or (S,). Forward
        passes run under ``self.forward_context()`` (bf16 autocast on the fast path).
        """
        def losses_of_step() -> tuple[torch.Tensor, torch.Tensor | float]:
            with self.forward_context():
                if self.joint_critic_pass:
                    batch_dim = 1 if self.ensemble else 0
                    f_real, f_fake = self.critic(torch.cat([real, fake], batch_dim)).split(
                        real.shape[batch_dim], -1)
                else:
                    f_real, f_fake = self.critic(real), self.critic(fake)
                return (losses.critic_loss(self.config.loss, f_real, f_fake),
                        self.constraint.penalty(self.critic, real, fake, generator=self.rngs[0]))

        return constraints.critic_update(self.constraint, self.critic, self.opt_critic,
                                         losses_of_step, self._average_gradients)

    def generator_phase(self) -> torch.Tensor:
        """(2) generator: one step on the generator loss; the critic's weights get no gradient.

        Returns the generator loss, shape () or (S,).
        """
        return self.generator_step(self.sample_noise(self.config.batch_size))

    def generator_step(self, noise: torch.Tensor) -> torch.Tensor:
        """One generator step from latent ``noise`` (m, nz) or (S, m, nz); returns the generator
        loss, shape () or (S,). Only the generator's ``.grad`` are set."""
        with self.forward_context():
            loss_g = losses.generator_loss(self.config.loss, self.critic(self.generator(noise)))
        params = list(self.generator.parameters())
        grads = torch.autograd.grad(loss_g.sum(), params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self._average_gradients(self.generator)
        self.opt_generator.step()
        return loss_g.detach()

    def step_values(self, loss_c: torch.Tensor, loss_g: torch.Tensor) -> torch.Tensor:
        """The values a generator iteration records, from its last critic loss and generator loss:
        (W estimate, generator loss, critic and generator gradient norms), shape (4, S).

        The critic's gradient is still the last critic step's: the generator step sets only the
        generator's ``.grad``.
        """
        return torch.stack([losses.distance_estimate(self.config.loss, loss_c), loss_g,
                            grad_norm(self.critic, self.ensemble),
                            grad_norm(self.generator, self.ensemble)]).reshape(4, -1)

    def _average_gradients(self, module: nn.Module) -> None:
        if self.world > 1:
            distributed.average_gradients(module.parameters())


__all__ = ["Step", "ReferenceStep", "build_optimizer", "grad_norm"]
