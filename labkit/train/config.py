"""What defines a run: :class:`TrainConfig` (Algorithm 1's defaults), the authors' image
configuration (:func:`image_config`), the critic's schedule (:func:`critic_steps`), and the two
things every run derives from its config the same way: torch's thread count
(:func:`set_threads`) and the seeds of its independent random streams (:func:`seed_stream`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import _checks, ot, toys
from labkit.datasets import iters_for_epochs
from labkit.gan.constraints import CLIP_TIMINGS, CONSTRAINTS, FAST_CONSTRAINTS
from labkit.gan.losses import LOSSES
from labkit.images import open_cache

OPTIMIZERS = ("rmsprop", "adam", "sgd")
#: The ``target`` of image runs (a uint8 cache at ``data``).
IMAGES = "images"
#: ``target`` values: the toy targets, or :data:`IMAGES`.
TARGETS = (*toys.TARGETS, IMAGES)
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

    ``fast`` picks the fast path of :mod:`labkit.train.fast` (data on the device, fused updates,
    CUDA graphs on a GPU; the same maths): None takes it for one-process image runs on CUDA
    under clipping or no constraint, True also on the CPU (eagerly, for tests), False never.
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
        for name, allowed in (("loss", LOSSES), ("constraint", CONSTRAINTS),
                              ("clip_timing", CLIP_TIMINGS), ("optimizer", OPTIMIZERS),
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
        if self.on_images:
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
        fields = (("batch_size", "image_size") if self.on_images else
                  ("batch_size", "n_critic")) if batch > params else (
                  "hidden", "depth", "nz", "ngf", "ndf", "n_seeds", "image_size")
        defaults = {**{f.name: f.default for f in dataclasses.fields(self)},
                    **(IMAGE_DEFAULTS if self.on_images else {})}
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

    @property
    def seeds(self) -> list[int]:
        """The members' seeds: ``seed``, ``seed + 1``, ..., one per member of the ensemble.

        >>> TrainConfig(seed=3, n_seeds=2).seeds
        [3, 4]
        """
        return [self.seed + s for s in range(self.n_seeds)]

    @property
    def on_images(self) -> bool:
        """Whether the run trains on an image cache (``target="images"``) rather than a toy."""
        return self.target == IMAGES

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


def set_threads(config: TrainConfig) -> int:
    """Set torch's CPU thread count for a run of ``config`` (:func:`choose_threads`); returns it."""
    threads = choose_threads(config)
    torch.set_num_threads(threads)
    return threads


#: The independent streams of a member, by child number of ``SeedSequence(seed)`` (see
#: :func:`stream_seed`): its initial weights, its training draws (batches, noise, the penalty's
#: interpolation weights), and its evaluation set. Numbers from 3 on are free for other uses.
WEIGHTS, DRAWS, EVALUATION = 0, 1, 2


def stream_seed(seed: int, child: int) -> int:
    """The seed of ``seed``'s independent stream number ``child``: the first 64-bit word of
    ``numpy.random.SeedSequence(seed).spawn(child + 1)[child]``, halved to fit torch's int64.

    The streams of one seed never overlap, and stream ``child`` does not depend on how many
    others are spawned.

    >>> stream_seed(0, 1) == member_seeds(0)[1]
    True
    """
    state = np.random.SeedSequence(seed).spawn(child + 1)[child].generate_state(1, np.uint64)
    return int(state[0] >> 1)


def seed_stream(seed: int, child: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`stream_seed` ``(seed, child)``:
    the one way the lab derives a random stream from a seed."""
    return torch.Generator(device).manual_seed(stream_seed(seed, child))


def member_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for a member's initial weights, training draws and evaluation set.

    Streams :data:`WEIGHTS`, :data:`DRAWS` and :data:`EVALUATION` of :func:`stream_seed`
    (``numpy.random.SeedSequence(seed).spawn(3)``), so the three never overlap.
    """
    return tuple(stream_seed(seed, child) for child in (WEIGHTS, DRAWS, EVALUATION))


#: The authors' image configuration (martinarjovsky/WassersteinGAN, ``main.py``) on top of
#: Algorithm 1's defaults: nz 100, DCGAN generator, the 100-step critic warm-up; grids every 500
#: generator iterations as theirs; 1,024 held-out images for the image metric.
IMAGE_DEFAULTS = {"target": IMAGES, "nz": 100, "generator": "dcgan", "critic_warmup": True,
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
    if config.on_images:
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



def check_runtime(config: TrainConfig, world: int) -> None:
    """Raise :class:`~labkit._checks.BadValue` if ``world`` > 1 processes cannot run ``config``
    data-parallel: a toy run, or a batch they cannot split evenly."""
    if world > 1 and not config.on_images:
        raise _checks.BadValue("target", config.target, f"'images' with {world} processes",
                               " (only image runs are data-parallel)")
    if world > 1 and config.fast:
        raise _checks.BadValue("fast", config.fast, f"False or None with {world} processes",
                               " (the fast path runs in one process)")
    if config.batch_size % world:
        raise _checks.BadValue("batch_size", config.batch_size,
                               f"divisible by the {world} processes")


def use_fast(config: TrainConfig, world: int = 1) -> bool:
    """Whether a run takes the fast path (:mod:`labkit.train.fast`): ``config.fast``, or when
    it is None, for a one-process image run on CUDA under a constraint the fast path runs
    (:data:`~labkit.gan.constraints.FAST_CONSTRAINTS`)."""
    if config.fast is not None:
        return config.fast
    return (config.on_images and config.device.startswith("cuda") and world == 1
            and config.constraint in FAST_CONSTRAINTS)


def check_fast_config(config: TrainConfig) -> None:
    """Raise :class:`~labkit._checks.BadValue` naming ``fast`` if ``fast=True`` cannot apply
    to ``config``."""
    if not config.fast:
        return
    if not config.on_images:
        raise _checks.BadValue("fast", config.fast, "False or None for a toy target",
                               " (the fast path trains on images, target='images')")
    if config.constraint not in FAST_CONSTRAINTS:
        raise _checks.BadValue("fast", config.fast,
                               f"False or None with constraint={config.constraint!r}",
                               f" (the fast path supports {', '.join(FAST_CONSTRAINTS)})")


__all__ = ["TrainConfig", "critic_steps", "image_config", "epoch_iters", "step_bytes",
           "choose_threads", "set_threads", "member_seeds", "stream_seed", "seed_stream",
           "check_runtime", "use_fast", "check_fast_config", "WEIGHTS", "DRAWS", "EVALUATION",
           "DEFAULT_THREADS", "ONE_THREAD_BELOW", "OPTIMIZERS", "IMAGES", "TARGETS",
           "GENERATORS", "IMAGE_FIELDS", "IMAGE_DEFAULTS", "RESUMABLE_FIELDS", "MAX_SEEDS",
           "MAX_THREADS_PER_CPU"]
