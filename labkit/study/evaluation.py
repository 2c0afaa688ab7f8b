"""What the study measures besides the trainer: each seed's random streams, the final metrics
(modes, %HQ, reverse KL, exact W1), the critic's estimate, the optimiser-step cosine, the
critic's lag (a copy trained further) and the snapshots for figures (:class:`_Recorder`)."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from labkit import _checks
from labkit.gan.losses import critic_estimate
from labkit.study.results import _rounded
from labkit.train import seed_stream


def sample_metrics(fake: torch.Tensor, real: torch.Tensor, target) -> dict[str, float]:
    """Final metrics of one seed: modes, %HQ, reverse KL (VEEGAN / PacGAN) and exact W1.

    Parameters
    ----------
    fake, real : Tensor (n, 2)
        Generated and real samples (the table uses n = 2,500 of each).
    target : labkit.toys.GaussianMixture
        Gives the centres and std of the high-quality rule (within 3 std of a centre).

    Returns
    -------
    dict
        ``modes`` (int), ``hq_percent`` (100 x fraction), ``reverse_kl`` (nats; nan without
        high-quality samples) and ``w1_exact`` = W1(fake, real), Euclidean cost.
    """
    from labkit import metrics, ot

    fake, real = fake.detach().cpu().double(), real.detach().cpu().double()
    coverage = metrics.mode_coverage(fake, target.centers, target.std)
    w1 = ot.w1(fake, real) if torch.isfinite(fake).all() else math.nan
    return {"modes": int(coverage.modes), "hq_percent": 100.0 * coverage.hq_fraction,
            "reverse_kl": float(coverage.reverse_kl), "w1_exact": float(w1)}


def _final_points(trainer, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh (S, n, 2) real points and (S, n, nz) latent codes for the final table, drawn from
    each seed's stream 3 (training used 0-2)."""
    gens = [seed_stream(s, 3) for s in trainer.seeds]
    real = torch.stack([trainer.target.sample(n, generator=g) for g in gens])
    z = torch.stack([torch.randn(n, trainer.config.nz, generator=g) for g in gens])
    return real.to(trainer.device), z.to(trainer.device)


def grid_points(target, size: int = 20) -> torch.Tensor:
    """(size * size, 2) points of a square grid covering the target's centres with a margin of
    1.5, x varying fastest (row-major image order: ``values.reshape(size, size)``)."""
    lo = float(target.centers.min()) - 1.5
    hi = float(target.centers.max()) + 1.5
    axis = torch.linspace(lo, hi, size)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


def _estimate(loss: str, critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """:func:`labkit.gan.losses.critic_estimate` without gradients, one value per seed (S,)."""
    with torch.no_grad():
        return critic_estimate(loss, critic, real, fake).reshape(-1)


def update_cosine(optimizer: torch.optim.Optimizer, n_seeds: int) -> list[float]:
    """Cosine between the optimiser's last step and minus the gradient it was computed from.

    The step of RMSprop (no momentum) is -lr g / (sqrt(v) + eps), of Adam
    -lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected moments m_hat, v_hat (PyTorch's
    formulas), of SGD -lr g; the cosine with -g is 1 for SGD, positive for RMSprop (an
    elementwise positive rescaling of -g), and negative for Adam when the momentum points
    uphill for the current gradient (the paper's diagnostic, Section 4.2). Read right after a
    step, while ``.grad`` still holds that step's gradient (the trainer's "eval" event: the
    generator step leaves the critic's gradient alone). Steps before clipping.

    Parameters
    ----------
    optimizer : torch.optim.RMSprop, Adam or SGD
    n_seeds : int
        Parameters carry a leading seed dimension when > 1 (an ensemble); one cosine per seed.

    Returns
    -------
    list of float
        One cosine per seed (nan before the first step).
    """
    dots = torch.zeros(n_seeds, dtype=torch.float64)
    norms = torch.zeros(2, n_seeds, dtype=torch.float64)
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.RMSprop | torch.optim.SGD):
        raise _checks.BadValue("optimizer", optimizer, "torch.optim.Adam, RMSprop or SGD")
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if p.grad is None or (not state and not isinstance(optimizer, torch.optim.SGD)):
                return [math.nan] * n_seeds  # no step yet
            g = p.grad.double()
            if isinstance(optimizer, torch.optim.Adam):
                beta1, beta2 = group["betas"]
                t = float(state["step"])
                m_hat = state["exp_avg"].double() / (1 - beta1**t)
                v_hat = state["exp_avg_sq"].double() / (1 - beta2**t)
                step = m_hat / (v_hat.sqrt() + group["eps"])
            elif isinstance(optimizer, torch.optim.RMSprop):  # no momentum, not centred
                step = g / (state["square_avg"].double().sqrt() + group["eps"])
            else:  # plain SGD
                step = g
            g, step = g.reshape(n_seeds, -1), step.reshape(n_seeds, -1)
            dots += (g * step).sum(1)
            norms += torch.stack([g.square().sum(1), step.square().sum(1)])
    return (dots / norms.prod(0).sqrt()).tolist()


def retrained_estimate(trainer, steps: int) -> torch.Tensor:
    """The estimate of a copy of the critic after ``steps`` more critic steps (S,).

    The copy (with a copy of the optimiser's state) trains against the current, frozen
    generator on fresh batches from private streams (seeded by seed and iteration, so
    training is not disturbed and a resumed study draws the same), then is evaluated on the
    trainer's evaluation points. Beside the running critic's estimate on the same points it
    says how far the critic lags its optimum: a critic that keeps up gains little.
    """
    from labkit.train import build_optimizer

    critic = copy.deepcopy(trainer.critic)
    optimizer = build_optimizer(trainer.config, critic.parameters())
    # a deep copy: load_state_dict keeps tensors that need no conversion, which would let the
    # copy's steps move the running optimiser's moments
    optimizer.load_state_dict(copy.deepcopy(trainer.opt_critic.state_dict()))
    rngs = [torch.Generator().manual_seed(s * 1_000_003 + trainer.iteration + 7)
            for s in trainer.seeds]
    step = trainer.step.reference
    running = step.critic, step.opt_critic, step.rngs
    step.critic, step.opt_critic, step.rngs = critic, optimizer, rngs
    try:  # the trainer's own critic phase, on the copy
        step.critic_phase(steps)
    finally:
        step.critic, step.opt_critic, step.rngs = running
    evaluator = trainer.evaluator
    with torch.no_grad():
        fake = trainer.generator(evaluator.z)
    return _estimate(trainer.config.loss, critic, evaluator.real, fake)


class _Recorder:
    """Trainer callback: what the study records besides the trainer's own evaluations.

    At every evaluation: :func:`update_cosine` of the critic's optimiser per seed, and with
    ``lag_steps`` the :func:`retrained_estimate`; every ``snapshot_every``-th iteration, the
    first seed's evaluation samples (first 128) and its critic's values on a 20 x 20 grid
    (critic in eval mode, so spectral norm's power iteration is not advanced), to 4
    significant digits. Its records are part of the trainer's checkpoints (``state_dict``),
    so they survive a stop.
    """

    def __init__(self, snapshot_every: int, target, lag_steps: int = 0) -> None:
        self.every, self.grid, self.lag_steps = snapshot_every, grid_points(target), lag_steps
        self.snapshots: list[dict[str, Any]] = []
        self.extra: list[dict[str, Any]] = []

    def __call__(self, event) -> None:
        if event.name != "eval":
            return
        trainer = event.trainer
        row = {"iteration": trainer.iteration,
               "update_cosine": update_cosine(trainer.opt_critic, len(trainer.seeds))}
        if self.lag_steps:
            row["w_estimate_retrained"] = retrained_estimate(trainer, self.lag_steps).tolist()
        self.extra.append(_rounded(row))
        if trainer.iteration % self.every == 0:
            self.snapshots.append(self._snapshot(trainer))

    def _snapshot(self, trainer) -> dict[str, Any]:
        critic = trainer.critic
        was_training = critic.training
        critic.eval()
        with torch.no_grad():
            grid = self.grid.to(trainer.device)
            if trainer.ensemble:
                grid = grid.expand(len(trainer.seeds), *grid.shape)
            values = critic(grid)
        critic.train(was_training)
        values = values[0] if trainer.ensemble else values
        samples = trainer.samples()[1][0][:128]
        return {"iteration": trainer.iteration, "samples": _rounded(samples.tolist(), 4),
                "critic": _rounded(values.cpu().tolist(), 4)}

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots, "extra": self.extra}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots, self.extra = list(state["snapshots"]), list(state["extra"])
