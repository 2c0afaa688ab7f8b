"""What a run measures at its evaluation iterations, chosen by the data it trains on.

:class:`ToyEvaluator`: exact W1 (POT) between fixed real points and generated ones, the critic's
estimate on the same points, and mode coverage for mixtures. :class:`ImageEvaluator`: the sliced
Wasserstein distance on Laplacian-pyramid patches against held-out real images, the critic's
estimate on them, and a sample grid from fixed noise. Both draw their fixed sets once, from the
run's evaluation stream, so evaluating never disturbs training and every evaluation of a run uses
the same inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from labkit import metrics, ot
from labkit.gan.losses import critic_estimate

#: Number of images in a sample grid (8 x 8, as the authors' 64-image grids).
GRID_SIZE = 64


class ToyEvaluator:
    """Exact W1, critic estimate and mode coverage of a toy run; one dict per seed.

    Parameters
    ----------
    target : toy target with ``sample(n, generator)`` (and ``centers``, ``std`` for mixtures)
    loss : str
    streams : list of torch.Generator
        One evaluation stream per seed; the fixed points are drawn from them at construction.
    n : int
        Evaluation points per seed (``config.eval_samples``).
    nz : int
    stack : callable
        Turns a list of per-seed tensors into the run's batch (stacked for an ensemble) on the
        run's device.
    """

    headline = "w1_exact"
    grid = None  # toys have no sample grid

    def __init__(self, target, loss: str, streams: list[torch.Generator], n: int, nz: int,
                 stack) -> None:
        self.target, self.loss, self.ensemble = target, loss, len(streams) > 1
        self.busy = f"exact W1 on {n} points"  # what the progress bar says while evaluating
        self.real = stack([target.sample(n, generator=g) for g in streams])
        self.z = stack([torch.randn(n, nz, generator=g) for g in streams])

    def _per_seed(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(x) if self.ensemble else [x]

    @torch.no_grad()
    def evaluate(self, generator: nn.Module, critic: nn.Module) -> list[dict[str, Any]]:
        """One dict per seed. The critic runs in eval mode, so that evaluating never advances
        spectral norm's power iteration (the toy critics have no BatchNorm or dropout, so
        nothing else changes): a run is then the same whatever its evaluation schedule."""
        fake = generator(self.z)
        was_training = critic.training
        critic.eval()
        try:
            estimate = critic_estimate(self.loss, critic, self.real, fake).reshape(-1)
        finally:
            critic.train(was_training)
        rows = []
        for fake_s, real_s, est in zip(self._per_seed(fake), self._per_seed(self.real), estimate,
                                       strict=True):
            fake_s, real_s = fake_s.cpu().double(), real_s.cpu().double()
            row = {"w1_exact": ot.w1(fake_s, real_s), "w_estimate_eval": float(est)}
            if getattr(self.target, "centers", None) is not None:
                row.update(metrics.mode_coverage(fake_s, self.target.centers,
                                                 self.target.std).as_dict())
                row.pop("counts", None)
            rows.append(row)
        return rows

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The evaluation points on the CPU: real (n, d) of the first seed, one fake per seed."""
        return self._per_seed(self.real)[0].cpu(), self._per_seed(generator(self.z).cpu())


class ImageEvaluator:
    """SWD against held-out real images, the critic's estimate, and a fixed-noise sample grid.

    Parameters
    ----------
    heldout : Tensor (n, 3, S, S)
        Real images never trained on, in [-1, 1], on the run's device.
    loss : str
    stream : torch.Generator
        The run's evaluation stream: draws the grid's 64 noise vectors, then the n used for SWD.
    nz, batch_size : int
        Fakes are generated, and the critic evaluated, ``batch_size`` at a time.
    seed : int
        Seeds SWD's patches and directions (the same at every evaluation).

    Attributes
    ----------
    grid : Tensor (64, 3, S, S) or None
        The fixed-noise samples of the last evaluation, on the CPU, in [-1, 1].
    """

    headline = "swd"

    def __init__(self, heldout: torch.Tensor, loss: str, stream: torch.Generator, nz: int,
                 batch_size: int, seed: int) -> None:
        device = heldout.device
        self.real, self.loss, self.batch_size, self.seed = heldout, loss, batch_size, seed
        self.busy = f"SWD on {len(heldout)} images"  # what the progress bar says meanwhile
        self.grid_z = torch.randn(GRID_SIZE, nz, generator=stream).to(device)
        self.z = torch.randn(len(heldout), nz, generator=stream).to(device)
        self.grid: torch.Tensor | None = None

    def _generate(self, generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([generator(b) for b in z.split(self.batch_size)])

    @torch.no_grad()
    def evaluate(self, generator: nn.Module, critic: nn.Module) -> list[dict[str, Any]]:
        self.grid = self._generate(generator, self.grid_z).cpu()
        fake = self._generate(generator, self.z)
        estimate = critic_estimate(self.loss, critic, self.real, fake, self.batch_size)
        return [{"w_estimate_eval": float(estimate),
                 **metrics.swd_images(self.real, fake, seed=self.seed)}]

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Real images (up to 64 held-out) and the fixed-noise grid, on the CPU."""
        return self.real[:GRID_SIZE].cpu(), [self._generate(generator, self.grid_z).cpu()]


__all__ = ["ToyEvaluator", "ImageEvaluator", "GRID_SIZE"]
