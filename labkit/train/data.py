"""What a run trains on, chosen once from its config: a toy target or an image cache.

:func:`build_data` picks the kind (:class:`ToyData` or :class:`ImageData`) and everything that
differs between toys and images is asked of it: the real data P_r (``sample(n, generator)``),
the models (:func:`build_models`), the evaluator (:mod:`labkit.train.evaluators`), whether a
critic phase draws its batches at once, whether the fast path applies. Models and evaluation
sets are drawn from each member's own seed streams (:func:`~labkit.train.config.seed_stream`).
"""

from __future__ import annotations

import torch
from torch import nn

from labkit import _checks, toys
from labkit.datasets import ImageDataset
from labkit.images import open_cache
from labkit.models import (
    DCGANCritic,
    DCGANGenerator,
    EnsembleMLPCritic,
    EnsembleMLPGenerator,
    MLPCritic,
    MLPGenerator,
)
from labkit.train.config import EVALUATION, WEIGHTS, TrainConfig, seed_stream, stream_seed
from labkit.train.evaluators import ImageEvaluator, ToyEvaluator


def stack_members(draws: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """One draw per seed -> the run's batch on ``device``: the draw itself, or (S, ...) stacked."""
    return (torch.stack(draws) if len(draws) > 1 else draws[0]).to(device)


class ToyData:
    """A toy target of :mod:`labkit.toys`, for one seed or an ensemble of them.

    A critic phase draws all its ``n_critic`` batches at once (the generator is frozen in the
    phase; +13-21% at 3 x 128).
    """

    #: Whether a critic phase draws all its batches at once.
    whole_phase = True
    #: Whether the fast path (:mod:`labkit.train.fast`) can train on it.
    fast_path = False

    def __init__(self, config: TrainConfig, rank: int = 0, world: int = 1) -> None:
        self.config = config
        self.target = toys.make_target(config.target)

    @staticmethod
    def models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
        """The generator and critic: MLPs, or an ensemble of them when ``n_seeds > 1``.

        Member ``s`` is initialised exactly as a single run with seed ``config.seed + s``, so an
        ensemble member starts from the same weights as the corresponding single run.
        """
        dim = toys.make_target(config.target).dim
        pairs = []
        for seed in config.seeds:
            rng = seed_stream(seed, WEIGHTS)
            pairs.append((MLPGenerator(config.nz, (dim,), config.hidden, config.depth,
                                       generator=rng),
                          MLPCritic((dim,), config.hidden, config.depth, generator=rng)))
        if config.n_seeds == 1:
            return pairs[0]
        return (EnsembleMLPGenerator.from_members([g for g, _ in pairs]),
                EnsembleMLPCritic.from_members([c for _, c in pairs]))

    def evaluator(self, device: torch.device) -> ToyEvaluator:
        """Exact W1 and mode coverage on fixed points drawn from each seed's evaluation stream."""
        config = self.config
        streams = [seed_stream(seed, EVALUATION) for seed in config.seeds]
        return ToyEvaluator(self.target, config.loss, streams, config.eval_samples, config.nz,
                            lambda draws: stack_members(draws, device))


class ImageData:
    """This rank's share of the uint8 image cache at ``config.data``, its last ``eval_samples``
    images held out for evaluation.

    A critic phase draws one batch per step, as the authors do (one batch in memory, BatchNorm
    statistics over m samples).
    """

    whole_phase = False
    fast_path = True

    def __init__(self, config: TrainConfig, rank: int = 0, world: int = 1) -> None:
        self.config = config
        cache = open_cache(config.data, config.image_size, size_name="image_size",
                           path_name="data")
        if config.eval_samples >= cache.count:
            raise _checks.BadValue("eval_samples", config.eval_samples,
                                   f"fewer than the {cache.count} images of the cache at "
                                   f"{config.data!r}", " (the rest are trained on)")
        self.target = ImageDataset(cache, holdout=config.eval_samples, rank=rank, world=world)

    @staticmethod
    def models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
        """The generator named by ``config.generator`` and the DCGAN critic (or, with
        ``mlp_critic``, the MLP critic), for 3-channel images.

        Both draw their initial weights (the authors' N(0, 0.02) for convolutions, PyTorch's
        default for the MLPs) from the run's weight stream, generator first.
        """
        rng = seed_stream(config.seed, WEIGHTS)
        shape = (3, config.image_size, config.image_size)
        if config.generator == "mlp":
            generator = MLPGenerator(config.nz, shape, config.hidden, config.depth, generator=rng)
        else:
            generator = DCGANGenerator(config.image_size, config.nz, 3, config.ngf,
                                       batchnorm=config.generator == "dcgan",
                                       constant_width=config.generator == "dcgan-const",
                                       generator=rng)
        if config.mlp_critic:
            critic = MLPCritic(shape, config.hidden, config.depth, generator=rng)
        else:
            critic = DCGANCritic(config.image_size, 3, config.ndf,
                                 batchnorm=config.critic_batchnorm, generator=rng)
        return generator, critic

    def evaluator(self, device: torch.device) -> ImageEvaluator:
        """SWD against the held-out images and a fixed-noise grid, from the evaluation stream."""
        config = self.config
        return ImageEvaluator(self.target.heldout().to(device), config.loss,
                              seed_stream(config.seed, EVALUATION), config.nz,
                              config.batch_size, seed=stream_seed(config.seed, EVALUATION))


def data_kind(config: TrainConfig) -> type[ToyData] | type[ImageData]:
    """The kind of data ``config`` trains on."""
    return ImageData if config.on_images else ToyData


def build_data(config: TrainConfig, rank: int = 0, world: int = 1) -> ToyData | ImageData:
    """The data of a run: this rank's share of it, under data parallelism."""
    return data_kind(config)(config, rank, world)


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The (generator, critic) pair of a run, initialised from its weight stream."""
    return data_kind(config).models(config)


__all__ = ["ToyData", "ImageData", "build_data", "build_models", "data_kind", "stack_members"]
