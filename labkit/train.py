"""The training loop of the lab: :class:`TrainConfig` (Algorithm 1's defaults) and :class:`Trainer`.

Toys and images run through the same loop. What differs is built from the config: the real data
(a toy target, or an :class:`~labkit.datasets.ImageDataset` over a uint8 cache), the models
(:func:`build_models`) and the evaluator (:mod:`labkit.evaluators`: exact W1 and mode coverage
for toys, a sample grid and the sliced Wasserstein distance for images). :func:`image_config`
gives the authors' LSUN configuration. Under ``torchrun`` the loop runs data-parallel with the
semantics stated in :mod:`labkit.distributed`.

The loop reads like Algorithm 1 of Arjovsky, Chintala & Bottou (2017): for each generator iteration,
phase "(1) critic" takes ``n_critic`` steps on ``E[f(real)] - E[f(fake)]`` under a Lipschitz
constraint, then phase "(2) generator" takes one step. One callback hook (``"eval"``,
``"checkpoint"``, ``"end"``) feeds progress bars, plots and widgets. Runs never lose work:
checkpoints are atomic and resume bit-exactly, Ctrl-C saves one, and a divergence stops the run
naming the iteration while keeping the last good checkpoint.

Several seeds of a toy train in one pass as an *ensemble* (stacked parameters, leading seed
dimension S): every tensor below then carries that extra leading dimension, and each loss is
reduced to one value per seed and summed, which gives each member exactly its own gradient.
Member s then follows the single run with seed ``seed + s`` up to float rounding, except under
the gradient penalty, whose interpolation weights all come from the first member's stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit import _checks, checkpoint, distributed, ot, toys
from labkit.datasets import ImageDataset, iters_for_epochs
from labkit.evaluators import ImageEvaluator, ToyEvaluator
from labkit.fast import FastStep, check_fast_config, use_fast
from labkit.gan import constraints, losses
from labkit.gan.constraints import CONSTRAINTS
from labkit.images import open_cache
from labkit.models import (
    DCGANCritic,
    DCGANGenerator,
    EnsembleMLPCritic,
    EnsembleMLPGenerator,
    MLPCritic,
    MLPGenerator,
)

OPTIMIZERS = ("rmsprop", "adam", "sgd")
#: ``target`` values: the toy targets, or ``"images"`` (a uint8 cache at ``data``).
TARGETS = (*toys.TARGETS, "images")
#: Generators of image runs (paper, Figures 5 to 7); toys always use the MLP. ``dcgan-nobn`` is
#: the authors' ``DCGAN_G_nobn`` (DCGAN's halving widths), ``dcgan-const`` the paper's Figure 6
#: generator (no BatchNorm, ``ngf`` filters in every layer).
GENERATORS = ("dcgan", "dcgan-nobn", "dcgan-const", "mlp")
#: Fields that only image runs read.
IMAGE_FIELDS = ("data", "image_size", "generator", "ngf", "ndf", "critic_batchnorm", "mlp_critic")

#: Most seeds one ensemble run may train together.
MAX_SEEDS = 256
#: Most torch threads a run may ask for, per CPU it may use (beyond a few thousand threads,
#: torch's thread pool crashes the process).
MAX_THREADS_PER_CPU = 4

#: Fields a resumed run may change: how far to go, where/how often to save, how many threads,
#: the memory budget of the exact solver.
RESUMABLE_FIELDS = ("iters", "checkpoint", "checkpoint_every", "threads", "eval_max_gib")


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults are Algorithm 1's (paper, Section 3).

    Algorithm 1: RMSProp, ``lr`` = 5e-5, clipping ``clip`` = 0.01, batch ``m`` = 64,
    ``n_critic`` = 5. The toy models default to the authors' MLP (3 hidden ReLU layers of 512)
    with a 2-D latent as in WGAN-GP's ``gan_toy.py``.

    ``critic_warmup`` switches on the authors' schedule: 100 critic steps for each of the first
    25 generator iterations and for every 500th. ``seed`` and ``n_seeds`` select members
    ``seed, seed+1, ..., seed+n_seeds-1``; more than one trains them together as an ensemble.
    ``eval_every`` evaluates at iterations 0, eval_every, 2*eval_every, ...: exact W1 (POT)
    between ``eval_samples`` generated and real points, the critic's estimate on the same points,
    and for mixtures the mode coverage. The exact solver needs about ``48 * eval_samples**2``
    bytes, which must fit ``eval_max_gib`` (checked here, before anything runs). ``threads``
    sets torch's CPU threads for the run; 0 lets :func:`choose_threads` pick by model size.

    Image runs (``target="images"``) read the uint8 cache folder ``data`` of ``image_size``
    pixels, train the DCGAN critic (``ndf``, with BatchNorm unless ``critic_batchnorm=False``;
    with ``mlp_critic=True`` the authors' ``--mlp_D`` instead: ``depth`` ReLU layers of
    ``hidden``, the paper's Figure 3, lower half) against ``generator``: ``"dcgan"`` (``ngf``),
    ``"dcgan-nobn"`` (the authors' ``--noBN``), ``"dcgan-const"`` (no BatchNorm and ``ngf``
    filters in every layer, the paper's Figure 6) or ``"mlp"`` (``depth`` ReLU layers of
    ``hidden``, the authors' ``--mlp_G --ngf 512``). The last
    ``eval_samples`` images of the cache are held out: each evaluation computes the sliced
    Wasserstein distance between them and as many generated images, and a 64-image grid from
    fixed noise. :func:`image_config` fills in the authors' settings.

    ``fast`` picks the fast path of :mod:`labkit.fast` (data on the device, fused updates, CUDA
    graphs on a GPU; the same maths): None takes it for one-process image runs on CUDA under
    clipping or no constraint, True also on the CPU (eagerly, for tests), False never.
    """

    loss: str = "wgan"
    constraint: str = "clip"
    clip: float = 0.01
    clip_timing: str = "after"
    gp_lambda: float = 10.0
    optimizer: str = "rmsprop"
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 64
    n_critic: int = 5
    critic_warmup: bool = False
    iters: int = 5000
    target: str = "ring"
    nz: int = 2
    hidden: int = 512
    depth: int = 3
    seed: int = 0
    n_seeds: int = 1
    device: str = "cpu"
    eval_every: int = 500
    eval_samples: int = 2500
    eval_max_gib: float = ot.DEFAULT_MAX_BYTES / 2**30
    checkpoint: str | None = None
    checkpoint_every: int = 1000
    threads: int = 0
    data: str | None = None
    image_size: int = 64
    generator: str = "mlp"
    ngf: int = 64
    ndf: int = 64
    critic_batchnorm: bool = True
    mlp_critic: bool = False
    fast: bool | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field and normalise it in place (numpy scalars become Python ones, betas a
        tuple of floats); raise :class:`~labkit._checks.BadValue` (a ``ValueError``) naming the
        first bad field, its value and what is allowed.

        Bools are not integers, strings are not bools, ``nan``/``inf`` are refused, the device
        must exist, and ``eval_samples`` must fit the exact solver's memory budget
        ``eval_max_gib`` (its cost matrix and plan grow as ``eval_samples**2``).
        """
        for name, allowed in (("loss", losses.LOSSES), ("constraint", CONSTRAINTS),
                              ("clip_timing", constraints.CLIP_TIMINGS), ("optimizer", OPTIMIZERS),
                              ("target", TARGETS), ("generator", GENERATORS)):
            setattr(self, name, _checks.choice(name, getattr(self, name), allowed))
        for name in ("clip", "lr", "eval_max_gib"):
            setattr(self, name, _checks.finite_real(name, getattr(self, name), above=0))
        self.gp_lambda = _checks.finite_real("gp_lambda", self.gp_lambda, at_least=0)
        self.betas = _betas(self.betas)
        for name in ("batch_size", "n_critic", "nz", "hidden", "depth", "eval_every",
                     "eval_samples", "checkpoint_every", "ndf"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=1))
        for name in ("iters", "seed"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=0))
        self.threads = _checks.integer("threads", self.threads, 0,  # 0: chosen by model size
                                       MAX_THREADS_PER_CPU * _checks.usable_cpus())
        self.n_seeds = _checks.integer("n_seeds", self.n_seeds, minimum=1)
        if self.n_seeds > MAX_SEEDS:
            raise _checks.BadValue(
                "n_seeds", self.n_seeds, f"at most {MAX_SEEDS}",
                " (each seed is a whole model with its own optimizer state, evaluated on its own: "
                "memory and time grow with the count); split the seeds over several runs")
        self.ngf = _checks.integer("ngf", self.ngf, minimum=2)
        for name in ("critic_warmup", "critic_batchnorm", "mlp_critic"):
            setattr(self, name, _checks.boolean(name, getattr(self, name)))
        self.device = _checks.device("device", self.device)
        if self.checkpoint is not None and not isinstance(self.checkpoint, str | Path):
            raise _checks.BadValue("checkpoint", self.checkpoint, "a path or None")
        self.checkpoint = None if self.checkpoint is None else str(self.checkpoint)
        if self.data is not None and not isinstance(self.data, str | Path):
            raise _checks.BadValue("data", self.data, "a path or None")
        self.data = None if self.data is None else str(self.data)
        self.fast = None if self.fast is None else _checks.boolean("fast", self.fast)
        check_fast_config(self)
        if self.target == "images":
            self._validate_images()
        else:
            self._validate_toys()
        self._check_memory()

    def _validate_toys(self) -> None:
        """The fields only toy runs read: the MLP generator, and the exact W1 solver's budget."""
        if self.generator != "mlp":
            raise _checks.BadValue("generator", self.generator,
                                   "'mlp' for toy targets (the others need target='images')")
        need = ot.exact_solver_bytes(self.eval_samples, self.eval_samples)
        if need > self.eval_max_gib * 2**30:
            raise _checks.BadValue(
                "eval_samples", self.eval_samples, "small enough for the exact W1 solver",
                f": {self.eval_samples} x {self.eval_samples} points need about "
                f"{need / 2**30:.1f} GiB, more than the budget of {self.eval_max_gib:g} GiB "
                "(eval_max_gib, --eval-max-gib on the command line); lower it, or raise the "
                "budget if the memory is there")
        _checks.fits_in_memory("eval_samples", self.eval_samples, need,
                               f"the exact W1 solver on {self.eval_samples} x "
                               f"{self.eval_samples} points")

    def _check_memory(self) -> None:
        """Refuse a config whose training step cannot fit in memory (:func:`step_bytes`, a lower
        estimate), naming the field furthest above its default: the batch's fields if the
        batch needs more than the parameters, else the models'."""
        params, batch = step_bytes(self)
        fields = (("batch_size", "image_size") if self.target == "images" else
                  ("batch_size", "n_critic")) if batch > params else (
                  "hidden", "depth", "nz", "ngf", "ndf", "n_seeds", "image_size")
        defaults = {**{f.name: f.default for f in dataclasses.fields(self)},
                    **(IMAGE_DEFAULTS if self.target == "images" else {})}
        name = max(fields, key=lambda f: getattr(self, f) / defaults[f])
        _checks.fits_in_memory(name, getattr(self, name), params + batch,
                               "the models and batch of one training step")

    def _validate_images(self) -> None:
        """The fields only image runs read (the exact W1 solver is not used for images)."""
        if self.data is None:
            raise _checks.BadValue("data", self.data, "the folder of an image cache "
                                   "(python -m labkit lsun prepare) when target='images'")
        self.image_size = _checks.image_size("image_size", self.image_size)
        if self.n_seeds != 1:
            raise _checks.BadValue("n_seeds", self.n_seeds, "1 for image runs")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready types (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict; unknown keys raise ``ValueError`` listing the known ones."""
        if not isinstance(values, Mapping):
            raise _checks.BadValue("values", values, "a dict of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def _betas(value: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2): two finite numbers in [0, 1)."""
    allowed = "two numbers in [0, 1)"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _checks.BadValue("betas", value, allowed)
    values = tuple(value)
    if len(values) != 2:
        raise _checks.BadValue("betas", value, allowed)
    try:
        betas = tuple(_checks.finite_real("betas", b, at_least=0) for b in values)
    except _checks.BadValue:
        raise _checks.BadValue("betas", value, allowed) from None
    if not all(b < 1 for b in betas):
        raise _checks.BadValue("betas", value, allowed)
    return betas


def critic_steps(config: TrainConfig, gen_iteration: int) -> int:
    """Critic steps before generator iteration ``gen_iteration`` (0-based).

    ``n_critic``, or 100 under the authors' warm-up when ``gen_iteration < 25`` or
    ``gen_iteration % 500 == 0`` (martinarjovsky/WassersteinGAN, ``main.py``).

    >>> critic_steps(TrainConfig(critic_warmup=True), 24), critic_steps(TrainConfig(), 24)
    (100, 5)
    """
    if config.critic_warmup and (gen_iteration < 25 or gen_iteration % 500 == 0):
        return 100
    return config.n_critic


#: torch's own thread count when labkit was imported (one per physical core).
DEFAULT_THREADS = torch.get_num_threads()
#: Multiply-adds of one hidden layer on one batch (m x hidden^2 x seeds) below which one thread.
ONE_THREAD_BELOW = 2**23


def choose_threads(config: TrainConfig) -> int:
    """Torch CPU threads for a run: ``config.threads`` if set, else one for small models.

    A hidden layer's matmul costs m * hidden^2 * n_seeds multiply-adds. Below
    :data:`ONE_THREAD_BELOW` (8.4 M; e.g. 3 x 128 at batch 256, one seed: 4.2 M) one thread is
    chosen: a second one gains up to about 1.5x on an idle machine (81 against 125 it/s at that
    size) but, when another process is busy on the cores, slows each step 7x or more
    (benchmarks/README.md), so a notebook stays usable beside other work; above it (3 x 512 at
    batch 64, or an 8-seed ensemble of 3 x 128) torch's default, one thread per core, is kept.

    >>> small = TrainConfig(hidden=128, batch_size=256)
    >>> choose_threads(small), choose_threads(TrainConfig(threads=3))
    (1, 3)
    """
    if config.threads:
        return config.threads
    work = config.batch_size * config.hidden**2 * config.n_seeds
    return 1 if work < ONE_THREAD_BELOW else DEFAULT_THREADS


def member_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for a member's initial weights, training draws and evaluation set.

    Derived with ``numpy.random.SeedSequence(seed).spawn(3)`` so the three streams never overlap.
    """
    children = np.random.SeedSequence(seed).spawn(3)
    return tuple(int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for c in children)


#: The authors' image configuration (martinarjovsky/WassersteinGAN, ``main.py``) on top of
#: Algorithm 1's defaults: nz 100, DCGAN generator, the 100-step critic warm-up; grids every 500
#: generator iterations as theirs; 1,024 held-out images for the image metric.
IMAGE_DEFAULTS = {"target": "images", "nz": 100, "generator": "dcgan", "critic_warmup": True,
                  "eval_every": 500, "eval_samples": 1024, "checkpoint_every": 500}


def _mlp_weights(n_in: int, hidden: int, depth: int, n_out: int) -> int:
    """Weights of an MLP ``n_in -> hidden (x depth) -> n_out`` (:class:`MLPGenerator`)."""
    return n_in * hidden + (depth - 1) * hidden**2 + hidden * n_out if depth else n_in * n_out


def _dcgan_weights(first: int, width: int, size: int) -> int:
    """A lower count of the 4 x 4 convolution weights of a DCGAN critic with ``first`` input
    channels and ``ndf = width`` at image side ``size`` (channels ``width, 2 width, ...,
    width size / 8``); a generator (``first = nz``, ``width = ngf``) mirrors it."""
    channels = [width * 2**k for k in range(size.bit_length() - 3)]
    pairs = sum(a * b for a, b in zip(channels[:-1], channels[1:], strict=True))
    return 16 * (first * channels[0] + pairs + channels[-1])


def step_bytes(config: TrainConfig) -> tuple[int, int]:
    """A lower estimate of the memory one training step of ``config`` takes, in bytes.

    Returns ``(parameters, batch)``: 12 bytes a weight (the weight, its gradient and one
    optimizer buffer, float32) of both models, and 4 bytes a value for the samples one critic
    phase draws (a toy draws all ``n_critic`` batches at once, or 100 under the warm-up) and
    the first hidden layer's activations on a real and a fake batch; times ``n_seeds``.
    Everything else a step needs comes on top, so a config refused by it cannot run.

    Algorithm 1 on a toy (3 x 512 MLPs, nz 2, batch 64, n_critic 5): 12 x (526,336 + 525,824)
    weights and 4 x (2 x 320 x 2 samples + 2 x 64 x 512 activations):

    >>> step_bytes(TrainConfig())
    (12625920, 267264)
    """
    m, seeds = config.batch_size, config.n_seeds
    if config.target == "images":
        size = config.image_size
        dim = 3 * size * size
        generator = (_mlp_weights(config.nz, config.hidden, config.depth, dim)
                     if config.generator == "mlp" else _dcgan_weights(config.nz, config.ngf, size))
        weights = generator + _dcgan_weights(3, config.ndf, size)
        draws, first_layer = m, config.ndf * (size // 2) ** 2
    else:
        dim = 2
        weights = (_mlp_weights(config.nz, config.hidden, config.depth, dim)
                   + _mlp_weights(dim, config.hidden, config.depth, 1))
        draws, first_layer = m * max(critic_steps(config, 0), config.n_critic), config.hidden
    return 12 * seeds * weights, 4 * seeds * (2 * draws * dim + 2 * m * first_layer)


def epoch_iters(values: Mapping[str, Any], epochs: float) -> int:
    """Generator iterations that make ``epochs`` passes over the training images of an image
    run with config fields ``values``: the cache at ``values["data"]`` less its held-out
    ``eval_samples`` (:func:`labkit.datasets.iters_for_epochs`); other fields default as in
    :data:`IMAGE_DEFAULTS` and :class:`TrainConfig`.
    """
    epochs = _checks.finite_real("epochs", epochs, above=0)
    values = {**IMAGE_DEFAULTS, **values}
    size = values.get("image_size", TrainConfig.image_size)
    cache = open_cache(values["data"], size, size_name="image_size", path_name="data")
    n_train = cache.count - values["eval_samples"]
    return iters_for_epochs(max(n_train, 1), epochs,
                            values.get("batch_size", TrainConfig.batch_size),
                            values.get("n_critic", TrainConfig.n_critic))


def image_config(data: str | Path, epochs: float = 25, **overrides: Any) -> TrainConfig:
    """The authors' LSUN configuration for the cache at ``data``, with ``overrides`` applied.

    Batch 64, nz 100, ngf = ndf = 64, image 64 x 64, RMSprop 5e-5, clipping 0.01 (after each
    critic step, as Algorithm 1; ``clip_timing="before"`` is the authors' code), n_critic 5 with
    the warm-up, DCGAN critic and generator. Unless ``iters`` is given, it is set to ``epochs``
    passes over the training images (:func:`labkit.datasets.iters_for_epochs`; 25 epochs of
    LSUN bedrooms are about 237k generator iterations).
    """
    values = {**IMAGE_DEFAULTS, "data": str(data), **overrides}
    if "iters" not in overrides:
        values["iters"] = epoch_iters(values, epochs)
    return TrainConfig(**values)


def build_toy_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The generator and critic of a toy run: MLPs, or an ensemble of them when ``n_seeds > 1``.

    Member ``s`` is initialised exactly as a single run with seed ``config.seed + s``, so an
    ensemble member starts from the same weights as the corresponding single run.
    """
    dim = toys.make_target(config.target).dim
    pairs = []
    for s in range(config.n_seeds):
        rng = torch.Generator().manual_seed(member_seeds(config.seed + s)[0])
        pairs.append((MLPGenerator(config.nz, (dim,), config.hidden, config.depth, generator=rng),
                      MLPCritic((dim,), config.hidden, config.depth, generator=rng)))
    if config.n_seeds == 1:
        return pairs[0]
    return (EnsembleMLPGenerator.from_members([g for g, _ in pairs]),
            EnsembleMLPCritic.from_members([c for _, c in pairs]))


def build_image_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The generator named by ``config.generator`` and the DCGAN critic (or, with
    ``mlp_critic``, the MLP critic), for 3-channel images.

    Both draw their initial weights (the authors' N(0, 0.02) for convolutions, PyTorch's default
    for the MLPs) from the run's weight stream, generator first.
    """
    rng = torch.Generator().manual_seed(member_seeds(config.seed)[0])
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
        critic = DCGANCritic(config.image_size, 3, config.ndf, batchnorm=config.critic_batchnorm,
                             generator=rng)
    return generator, critic


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The (generator, critic) pair of a run: :func:`build_image_models` or
    :func:`build_toy_models`."""
    if config.target == "images":
        return build_image_models(config)
    return build_toy_models(config)


def build_target(config: TrainConfig, rank: int = 0, world: int = 1):
    """The real data P_r: a toy target, or this rank's share of the image cache at ``data``."""
    if config.target != "images":
        return toys.make_target(config.target)
    cache = open_cache(config.data, config.image_size, size_name="image_size", path_name="data")
    if config.eval_samples >= cache.count:
        raise _checks.BadValue("eval_samples", config.eval_samples,
                               f"fewer than the {cache.count} images of the cache at "
                               f"{config.data!r}", " (the rest are trained on)")
    return ImageDataset(cache, holdout=config.eval_samples, rank=rank, world=world)


def build_evaluator(config: TrainConfig, target, device: torch.device):
    """The evaluator the data calls for, with its fixed sets drawn from each seed's evaluation
    stream (so that evaluating never disturbs training)."""
    streams = [torch.Generator().manual_seed(member_seeds(config.seed + s)[2])
               for s in range(config.n_seeds)]
    if isinstance(target, ImageDataset):
        return ImageEvaluator(target.heldout().to(device), config.loss, streams[0], config.nz,
                              config.batch_size, seed=member_seeds(config.seed)[2])
    return ToyEvaluator(target, config.loss, streams, config.eval_samples, config.nz,
                        lambda draws: stack_members(draws, device))


def stack_members(draws: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """One draw per seed -> the run's batch on ``device``: the draw itself, or (S, ...) stacked."""
    return (torch.stack(draws) if len(draws) > 1 else draws[0]).to(device)


def build_constraint(config: TrainConfig) -> constraints.Constraint:
    """The Lipschitz constraint named by ``config.constraint`` with the config's parameters."""
    return constraints.from_config(config)


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


class DivergenceError(RuntimeError):
    """A loss or parameter became NaN or infinite. The message says whether a checkpoint exists;
    ``iteration`` is the first bad one and ``saved_iteration`` that of the last good checkpoint
    (None if none was written)."""

    def __init__(self, iteration: int, what: str, checkpoint: str | None,
                 saved_iteration: int | None) -> None:
        self.iteration, self.saved_iteration = iteration, saved_iteration
        kept = ("no checkpoint was written before it" if saved_iteration is None else
                f"the last good checkpoint, iteration {saved_iteration}, is kept at "
                f"{checkpoint!r}")
        super().__init__(f"diverged at iteration {iteration}: {what}; {kept}")


class History:
    """Per-iteration records of a run, one row per (iteration, seed).

    Columns: ``iteration`` (generator iterations done), ``seed``, ``w_estimate`` (critic's
    estimate: W for WGAN, the JS lower bound for GANs, from the last critic step's batch),
    ``loss_g``, ``grad_norm_critic``, ``grad_norm_generator``, ``time`` (wall seconds since the
    run started, summed over resumes). Rows at evaluation iterations also carry ``w1_exact``,
    ``w_estimate_eval`` and, for mixtures, ``modes``, ``hq_fraction``, ``reverse_kl``.
    Everything except ``time`` is reproducible bit for bit.
    """

    STEP_FIELDS = ("w_estimate", "loss_g", "grad_norm_critic", "grad_norm_generator")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []

    def add_steps(self, first_iteration: int, seeds: list[int], values: torch.Tensor,
                  times: list[float]) -> None:
        """Append rows for consecutive iterations from a (T, 4, S) tensor of step values."""
        for t, (per_field, elapsed) in enumerate(zip(values.tolist(), times, strict=True)):
            for s, seed in enumerate(seeds):
                row = {"iteration": first_iteration + t, "seed": seed}
                row.update({k: v[s] for k, v in zip(self.STEP_FIELDS, per_field, strict=True)})
                row["time"] = elapsed
                self.rows.append(row)

    def add_eval(self, iteration: int, seed: int, values: dict[str, Any]) -> None:
        """Record evaluation results of one seed at ``iteration``."""
        self.evals.append({"iteration": iteration, "seed": seed, **values})

    def as_dict(self) -> dict[str, list]:
        """Columns as plain lists, evaluation results merged into the rows of their iteration.

        Iteration 0 (before training) has an evaluation but no step values; it gets a row too.
        """
        evals = {(e["iteration"], e["seed"]): e for e in self.evals}
        rows = [{"iteration": e["iteration"], "seed": e["seed"]}
                for e in self.evals if e["iteration"] == 0] + self.rows
        columns = ["iteration", "seed", *self.STEP_FIELDS, "time",
                   *sorted({k for e in self.evals for k in e} - {"iteration", "seed"})]
        merged = [{**row, **evals.get((row["iteration"], row["seed"]), {})} for row in rows]
        return {c: [row.get(c) for row in merged] for c in columns}

    def to_csv(self, path: str | Path) -> None:
        """Write :meth:`as_dict` as CSV (empty cells where a value was not measured)."""
        cols = self.as_dict()
        with open(path, "w") as f:
            f.write(",".join(cols) + "\n")
            for values in zip(*cols.values(), strict=True):
                f.write(",".join("" if v is None else repr(v) for v in values) + "\n")

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`as_dict` as JSON."""
        Path(path).write_text(json.dumps(self.as_dict()))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "evals": self.evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows, self.evals = list(state["rows"]), list(state["evals"])


Callback = Callable[[str, "Trainer"], None]
#: The trainer's attributes whose ``state_dict`` a checkpoint holds.
_STATEFUL = ("generator", "critic", "opt_generator", "opt_critic")


class Trainer:
    """Trains a generator against a critic by Algorithm 1, on a toy target or on images.

    Parameters
    ----------
    config : TrainConfig
    callbacks : iterable of callables ``fn(event, trainer)``
        Called with ``event`` in ``"eval"`` (after each evaluation; ``trainer.last_eval`` holds
        one dict per seed), ``"checkpoint"`` (after each save) and ``"end"``. Under data
        parallelism only rank 0 evaluates, saves and emits ``"eval"`` and ``"checkpoint"``.
        A callback with ``state_dict()`` / ``load_state_dict(state)`` has that state saved in
        every checkpoint and restored on resume, so what it records survives a stop.
    progress : bool
        Show a ``tqdm.auto`` progress bar with the running W estimate (median of the step
        estimates over the last 100 iterations, updated every 100) and the evaluator's headline
        number at the last evaluation (exact W1 for toys, SWD for images).

    Examples
    --------
    >>> trainer = Trainer(TrainConfig(iters=3, eval_every=3, eval_samples=50, hidden=8),
    ...                   progress=False)
    >>> history = trainer.run()
    >>> trainer.iteration, len(history.rows)
    (3, 3)
    """

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (),
                 progress: bool = True) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.progress = progress
        self.device = torch.device(config.device)
        torch.set_num_threads(choose_threads(config))
        self.seeds = [config.seed + s for s in range(config.n_seeds)]
        self.ensemble = config.n_seeds > 1
        self.rank, self.world = distributed.rank(), distributed.world_size()
        check_runtime(config, self.world)
        self.target = build_target(config, self.rank, self.world)

        self.constraint = build_constraint(config)
        generator, critic = build_models(config)
        self.generator = generator.to(self.device)
        self.critic = self.constraint.prepare(critic.to(self.device))
        fast = use_fast(config, self.world)
        graphs = fast and self.device.type == "cuda"
        self.opt_generator = build_optimizer(config, self.generator.parameters(), fast, graphs)
        self.opt_critic = build_optimizer(config, self.critic.parameters(), fast, graphs)
        # Real and fake batches go through the critic together unless BatchNorm would mix them.
        self.joint_critic_pass = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                         for m in self.critic.modules())

        self.rngs = [torch.Generator().manual_seed(member_seeds(s)[1]) for s in self.seeds]
        self.iteration = 0
        self.saved_iteration: int | None = None  # iteration of the last checkpoint on disk
        self.elapsed = 0.0
        self.history = History()
        self.last_eval: list[dict[str, Any]] = []
        #: Context of every forward pass of the steps (bf16 autocast on the fast path).
        self.forward_context: Callable[[], contextlib.AbstractContextManager] = \
            contextlib.nullcontext
        #: The fast path's generator iteration (:class:`labkit.fast.FastStep`), or None.
        self.fast_step = FastStep(self, graphs=graphs) if fast else None
        self.evaluator = build_evaluator(config, self.target, self.device) if self.rank == 0 \
            else None

    # ----------------------------------------------------------------- sampling
    def sample_real(self, n: int) -> torch.Tensor:
        """A real batch: (n, d), or (S, n, d) for an ensemble; each seed draws from its own rng.
        Under data parallelism, this rank's n / world of the n drawn."""
        return stack_members([self.target.sample(n, generator=g) for g in self.rngs], self.device)

    def sample_noise(self, n: int) -> torch.Tensor:
        """Latent noise z ~ N(0, I): (n, nz), or (S, n, nz) for an ensemble (this rank's share)."""
        draws = [torch.randn(n, self.config.nz, generator=g) for g in self.rngs]
        return stack_members([z[self.rank::self.world] if self.world > 1 else z for z in draws],
                             self.device)

    def _critic_batches(self, n_steps: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The (real, fake) batches of a critic phase. The generator is frozen in the phase, so
        toys draw all of them at once (+13-21% at 3x128); images draw one step at a time, as
        the authors do (one batch in memory, BatchNorm statistics over m samples)."""
        m, batch_dim = self.config.batch_size, 1 if self.ensemble else 0
        group = 1 if self.config.target == "images" else n_steps
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
        """One critic step on a (real, fake) pair of batches, the constraint's hooks around it.

        ``real`` and ``fake``: (m, *dim), or (S, m, *dim) for an ensemble. Returns the critic loss
        ``E[f(fake)] - E[f(real)]`` of this step (before the update), shape () or (S,). Forward
        passes run under ``self.forward_context()`` (bf16 autocast on the fast path).
        """
        def losses_of_step():
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
            loss_g = losses.generator_loss(self.config.loss,
                                               self.critic(self.generator(noise)))
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

    # ----------------------------------------------------------------- evaluation
    def evaluate(self) -> list[dict[str, Any]]:
        """The evaluator's measures of the current models, one dict per seed
        (:mod:`labkit.evaluators`)."""
        return self.evaluator.evaluate(self.generator, self.critic)

    def samples(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The evaluator's fixed real samples and one generated set per seed, on the CPU."""
        return self.evaluator.samples(self.generator)

    def _record_eval(self, bar) -> None:
        """Evaluate, record and report; the progress bar says so meanwhile (seconds per seed at
        a few thousand points)."""
        bar.set_description_str(self.evaluator.busy)
        self.last_eval = self.evaluate()
        bar.set_description_str(_BAR_TITLE)
        bar.set_postfix(self._postfix())
        for seed, row in zip(self.seeds, self.last_eval, strict=True):
            self.history.add_eval(self.iteration, seed, row)
        self._emit("eval")

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: models, optimizers, RNG states, counters,
        config, history, and the state of the callbacks that have one (``state_dict()``)."""
        return {"config": self.config.to_dict(), "iteration": self.iteration,
                "elapsed": self.elapsed, **{k: getattr(self, k).state_dict() for k in _STATEFUL},
                "rng": checkpoint.rng_state(self.rngs), "history": self.history.state_dict(),
                "callbacks": [c.state_dict() for c in self._stateful_callbacks()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a differing config (``iters`` and checkpoint fields
        aside) raises ``ValueError`` naming the fields. A field the checkpoint lacks (one added
        to :class:`TrainConfig` after it was saved) counts as its default."""
        saved = {**TrainConfig().to_dict(), **state["config"]}
        diffs = checkpoint.config_differences(saved, self.config.to_dict(),
                                              ignore=RESUMABLE_FIELDS)
        if diffs:
            raise ValueError("checkpoint was made with a different config: " + "; ".join(diffs))
        for key in _STATEFUL:
            getattr(self, key).load_state_dict(state[key])
        checkpoint.set_rng_state(state["rng"], self.rngs)
        self.iteration, self.elapsed = state["iteration"], state["elapsed"]
        if self.fast_step is not None:
            self.fast_step.reset()
        self.history.load_state_dict(state["history"])
        saved, stateful = state.get("callbacks", []), self._stateful_callbacks()
        if saved and len(saved) != len(stateful):
            raise ValueError(f"checkpoint holds the state of {len(saved)} callback(s), this "
                             f"trainer has {len(stateful)} with a state_dict")
        for callback, callback_state in zip(stateful, saved, strict=False):
            callback.load_state_dict(callback_state)

    def _stateful_callbacks(self) -> list:
        """The callbacks whose state a checkpoint keeps: those with ``state_dict`` and
        ``load_state_dict`` (e.g. :mod:`labkit.study`'s snapshots), in the order given."""
        return [c for c in self.callbacks if hasattr(c, "state_dict")]

    @classmethod
    def resume(cls, path: str | Path, config: TrainConfig, **kwargs: Any) -> Trainer:
        """A trainer for ``config`` restored from the checkpoint at ``path``."""
        trainer = cls(config, **kwargs)
        trainer.load_state_dict(checkpoint.load(path))
        trainer.saved_iteration = trainer.iteration
        return trainer

    def save(self) -> Path | None:
        """Write the checkpoint to ``config.checkpoint`` (atomically); refuse non-finite weights."""
        if self.config.checkpoint is None:
            return None
        self._check_finite_parameters()
        if self.rank != 0:
            return None
        path = checkpoint.save_atomic(self.state_dict(), self.config.checkpoint)
        self.saved_iteration = self.iteration
        self._emit("checkpoint")
        return path

    def _check_finite_parameters(self) -> None:
        for module in (self.generator, self.critic):
            for name, p in module.named_parameters():
                if not torch.isfinite(p).all():
                    raise self._diverged(self.iteration, f"parameter {name!r} is not finite")

    def _diverged(self, iteration: int, what: str) -> DivergenceError:
        return DivergenceError(iteration, what, self.config.checkpoint, self.saved_iteration)

    def _emit(self, event: str) -> None:
        for callback in self.callbacks:
            callback(event, self)

    # ----------------------------------------------------------------- the loop
    def train_step(self) -> torch.Tensor:
        """One generator iteration of Algorithm 1: (1) critic, then (2) generator.

        On the fast path (``config.fast``) :attr:`fast_step` runs it with the same maths.
        Returns the step's values (W estimate, generator loss, critic and generator gradient
        norms), shape (4, S) with S = 1 for a single run.
        """
        n_steps = critic_steps(self.config, self.iteration)
        if self.fast_step is not None:
            return self.fast_step(n_steps)
        loss_c = self.critic_phase(n_steps)
        return self.step_values(loss_c, self.generator_phase())

    def _stop_requested(self, interrupt: threading.Event) -> bool:
        """Whether Ctrl-C was pressed (on any rank, so that all ranks stop together)."""
        if self.world > 1:
            return distributed.any_rank(interrupt.is_set(), self.device)
        return interrupt.is_set()

    def run(self) -> History:
        """Train up to ``config.iters`` generator iterations (continuing a resumed run).

        Ctrl-C (SIGINT), also during the first evaluation, finishes the current step, saves a
        checkpoint and returns with ``self.interrupted = True``; a second Ctrl-C raises
        ``KeyboardInterrupt`` at once (an unfinished checkpoint write is then discarded). A run
        with nothing to do (``iters`` reached) still saves, so that it can be resumed. A NaN or
        inf raises :class:`DivergenceError` naming the first bad iteration; the last checkpoint
        written stays the last good one.
        """
        cfg = self.config
        self.interrupted = False
        start = time.perf_counter() - self.elapsed
        pending: list[torch.Tensor] = []
        times: list[float] = []
        saved = False
        bar = _progress_bar(cfg.iters, self.iteration, self.progress)
        with _sigint_flag() as interrupt, contextlib.closing(bar):
            evaluating = self.rank == 0  # under data parallelism rank 0 evaluates for all
            if self.iteration == 0 and not self.history.evals and evaluating:
                self._record_eval(bar)
            stop = False  # Ctrl-C is looked at before each step (also after the first
            # evaluation or a save) and after it; under data parallelism all ranks agree on it
            while self.iteration < cfg.iters and not (stop := self._stop_requested(interrupt)):
                pending.append(self.train_step())
                self.iteration += 1
                times.append(time.perf_counter() - start)
                bar.update(1)
                eval_now = self.iteration % cfg.eval_every == 0 and evaluating
                save_now = self.iteration % cfg.checkpoint_every == 0
                end = self.iteration == cfg.iters or self._stop_requested(interrupt)
                if eval_now or save_now or end or len(pending) == 100:
                    self._flush(pending, times)
                    bar.set_postfix(self._postfix(), refresh=False)
                    if eval_now:
                        self._record_eval(bar)
                    self.elapsed = time.perf_counter() - start
                    if save_now or end:
                        self.save()
                        saved = True
            if not saved or self.saved_iteration != self.iteration:  # e.g. Ctrl-C in an eval
                self.save()
            self.interrupted = stop or interrupt.is_set()
        self._emit("end")
        return self.history

    def _flush(self, pending: list[torch.Tensor], times: list[float]) -> None:
        """Move buffered step values into the history (one device sync per flush), stopping
        at the first non-finite value."""
        values = torch.stack(pending)
        if self.world > 1:  # the ranks' estimates on their local batches -> the global batch's
            values = distributed.mean_over_ranks(values)
        values = values.cpu()
        first = self.iteration - len(pending) + 1
        bad = (~torch.isfinite(values)).flatten(1).any(1).nonzero()
        if len(bad):
            raise self._diverged(first + int(bad[0]), "a loss or gradient norm is NaN or inf")
        self.history.add_steps(first, self.seeds, values, times)
        pending.clear()
        times.clear()

    def _postfix(self) -> dict[str, str]:
        """The progress bar's numbers for the first seed: ``W_est``, the median of the step
        estimates over the last (up to) 100 generator iterations (the paper's median filter,
        narrower), updated every 100 iterations whatever the evaluation schedule; and the
        evaluator's headline number at the last evaluation. Either is left out until it exists.
        """
        seed, shown = self.seeds[0], {}
        recent = [row["w_estimate"] for row in self.history.rows[-100 * len(self.seeds):]
                  if row["seed"] == seed]
        if recent:
            shown["W_est"] = f"{statistics.median(recent):.4g}"
        if self.last_eval:
            headline = self.evaluator.headline
            shown[headline] = f"{self.last_eval[0][headline]:.4g}"
        return shown

    def final_metrics(self) -> list[dict[str, Any]]:
        """Evaluation at the current iteration plus the last step's values, one dict per seed.

        Depends only on the state reached, not on the evaluation schedule or on resumes; an
        evaluation the run already made at this iteration is reused, not recomputed.
        """
        last = {r["seed"]: r for r in self.history.rows if r["iteration"] == self.iteration}
        done = {e["seed"]: e for e in self.history.evals if e["iteration"] == self.iteration}
        evals = ([{k: v for k, v in done[s].items() if k not in ("iteration", "seed")}
                  for s in self.seeds] if len(done) == len(self.seeds) else self.evaluate())
        return [{"seed": seed, "iteration": self.iteration,
                 "w_estimate": last.get(seed, {}).get("w_estimate", math.nan), **row}
                for seed, row in zip(self.seeds, evals, strict=True)]


def check_runtime(config: TrainConfig, world: int) -> None:
    """Raise :class:`~labkit._checks.BadValue` if ``world`` > 1 processes cannot run ``config``
    data-parallel: a toy run, or a batch they cannot split evenly."""
    if world > 1 and config.target != "images":
        raise _checks.BadValue("target", config.target, f"'images' with {world} processes",
                               " (only image runs are data-parallel)")
    if world > 1 and config.fast:
        raise _checks.BadValue("fast", config.fast, f"False or None with {world} processes",
                               " (the fast path runs in one process)")
    if config.batch_size % world:
        raise _checks.BadValue("batch_size", config.batch_size,
                               f"divisible by the {world} processes")


def grad_norm(module: nn.Module, ensemble: bool = False) -> torch.Tensor:
    """L2 norm of the module's gradient: () or, for an ensemble, one per member (S,)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if ensemble:
        return torch.stack([g.flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


_BAR_TITLE = "generator iterations"


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it", dynamic_ncols=True,
                desc=_BAR_TITLE)


@contextlib.contextmanager
def _sigint_flag():
    """While active, Ctrl-C sets a flag instead of raising; a second Ctrl-C raises at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["TrainConfig", "Trainer", "History", "DivergenceError", "critic_steps", "image_config",
           "build_models", "build_toy_models", "build_image_models", "build_target",
           "build_evaluator", "build_constraint", "build_optimizer",
           "member_seeds", "grad_norm", "check_runtime", "stack_members", "choose_threads",
           "DEFAULT_THREADS", "ONE_THREAD_BELOW", "OPTIMIZERS", "CONSTRAINTS", "TARGETS",
           "GENERATORS", "IMAGE_FIELDS", "IMAGE_DEFAULTS", "RESUMABLE_FIELDS", "MAX_SEEDS",
           "MAX_THREADS_PER_CPU", "step_bytes", "epoch_iters"]
