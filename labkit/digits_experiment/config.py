"""What the experiment trains: the arms (WGAN at the paper's settings and the standard GAN as the
DCGAN paper trains it, with four generators, and Figure 3's failing MLP pair) and its budget
(:class:`ExperimentConfig`)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from labkit import _checks, digits

#: WGAN as Algorithm 1 and the authors' code: RMSprop 5e-5, clipping 0.01 after each critic
#: step, n_critic 5, 100 critic steps for the first 25 generator iterations and every 500th.
WGAN = {"loss": "wgan", "constraint": "clip", "clip": 0.01, "optimizer": "rmsprop", "lr": 5e-5,
        "n_critic": 5, "critic_warmup": True}


#: The standard GAN as the DCGAN paper trains it (Radford et al. 2016, Section 3): Adam 2e-4,
#: beta1 0.5, one discriminator step per generator step, the -log D generator loss.
GAN = {"loss": "gan-logd", "constraint": "none", "optimizer": "adam", "lr": 2e-4,
       "betas": (0.5, 0.999), "n_critic": 1, "critic_warmup": False}


#: Learning rate of Figure 3's failing pair, fixed before any run: 20 times the paper's, so that
#: one RMSprop step moves a weight by about a tenth of the clipping box [-0.01, 0.01].
HIGH_LR = 1e-3


@dataclass(frozen=True)
class Arm:
    """One configuration of the experiment: what it trains, its label and the paper's figure."""

    label: str
    settings: dict[str, Any]
    figure: str


GENERATOR_LABELS = {"dcgan": "DCGAN generator", "dcgan-nobn": "no BatchNorm (authors' code)",
                    "dcgan-const": "no BatchNorm, constant width (paper)", "mlp": "MLP generator"}


_FIGURES = {"dcgan": "3 (top right), 4, 5", "dcgan-nobn": "6 (the authors' generator)",
            "dcgan-const": "6 (the paper's generator)", "mlp": "3 (top left), 4, 7"}


#: The arms, in table order: key ``loss/generator`` (``wgan-mlp-critic/mlp`` for Figure 3's
#: lower half).
ARMS: dict[str, Arm] = {
    **{f"{loss}/{g}": Arm(f"{loss.upper()}, {label}", {**settings, "generator": g},
                          _FIGURES[g])
       for g, label in GENERATOR_LABELS.items() for loss, settings in (("wgan", WGAN),
                                                                        ("gan", GAN))},
    "wgan-mlp-critic/mlp": Arm(f"WGAN, MLP generator and MLP critic, lr {HIGH_LR:g}",
                               {**WGAN, "generator": "mlp", "mlp_critic": True, "lr": HIGH_LR},
                               "3 (bottom)"),
}


@dataclass
class ExperimentConfig:
    """Budget and scope of the experiment; every arm gets the same budget and widths.

    Parameters
    ----------
    arms : tuple of str
        Keys of :data:`ARMS`.
    n_seeds, first_seed : int
        Seeds ``first_seed, ..., first_seed + n_seeds - 1`` of every arm.
    iters : int
        Generator iterations per run.
    image_size : int
        Side of the digits cache (16: the 8 x 8 digits upsampled twice).
    width : int
        ``ngf = ndf`` of the DCGAN generators and critic (the authors' 64, shrunk for the CPU).
    hidden, depth : int
        The MLP generator (and Figure 3's MLP critic): ``depth`` ReLU layers of ``hidden``.
    batch_size : int
        Batch m (64, the paper's).
    eval_every : int
        Iterations between evaluations (SWD, critic estimate, class count): the curves.
    n_count : int
        Generated digits the classifier counts at each evaluation.
    w_every : int
        Keep every ``w_every``-th value of the per-iteration estimate (raw and median-filtered).
    snapshots : tuple of int
        Iterations of the extra sample grids of each arm's first seed (beside the final grids).
    checkpoint_every : int
        Iterations between checkpoints of a run.
    warmup : bool
        The WGAN arms' critic warm-up (the authors'); off only in smoke runs.
    threads : int
        Torch threads per run (1: on two cores, two one-thread jobs are fastest).
    """

    arms: tuple[str, ...] = tuple(ARMS)
    n_seeds: int = 3
    first_seed: int = 0
    iters: int = 10_000
    image_size: int = 16
    width: int = 16
    hidden: int = 512
    depth: int = 3
    batch_size: int = 64
    eval_every: int = 500
    n_count: int = 1000
    w_every: int = 10
    snapshots: tuple[int, ...] = (0, 500, 2000)
    checkpoint_every: int = 1000
    warmup: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        self.arms, self.snapshots = tuple(self.arms), tuple(self.snapshots)
        bad = [a for a in self.arms if a not in ARMS]
        if bad or not self.arms or len(set(self.arms)) != len(self.arms):
            raise _checks.BadValue("arms", list(self.arms),
                                   f"distinct keys among {', '.join(ARMS)}")
        for name in ("n_seeds", "iters", "width", "hidden", "depth", "batch_size", "eval_every",
                     "n_count", "w_every", "checkpoint_every", "threads"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=1))
        self.first_seed = _checks.integer("first_seed", self.first_seed, minimum=0)
        self.image_size = _checks.image_size("image_size", self.image_size)
        self.warmup = _checks.boolean("warmup", self.warmup)
        self.snapshots = tuple(_checks.integer("snapshots", s, minimum=0)
                               for s in self.snapshots)
        if self.iters % self.eval_every:
            raise _checks.BadValue("iters", self.iters, f"a multiple of eval_every "
                                   f"({self.eval_every}), so that the last evaluation is final")
        if any(s % self.eval_every or s > self.iters for s in self.snapshots):
            raise _checks.BadValue("snapshots", list(self.snapshots), "evaluation iterations "
                                   f"(multiples of eval_every={self.eval_every}, <= iters)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def train_config(self, arm: str, seed: int, data: str | os.PathLike,
                     checkpoint: str | os.PathLike | None = None):
        """The :class:`labkit.train.TrainConfig` of one run: the authors' image configuration
        (:func:`labkit.train.image_config`) with the arm's settings and this budget."""
        from labkit.train import image_config

        settings = dict(ARMS[arm].settings)
        settings["critic_warmup"] = settings["critic_warmup"] and self.warmup
        return image_config(
            data, **settings, seed=seed, iters=self.iters, image_size=self.image_size,
            ngf=self.width, ndf=self.width, hidden=self.hidden, depth=self.depth,
            batch_size=self.batch_size, eval_every=self.eval_every, eval_samples=digits.HOLDOUT,
            checkpoint=None if checkpoint is None else str(checkpoint),
            checkpoint_every=self.checkpoint_every, threads=self.threads)


#: Overrides of :class:`ExperimentConfig` for a smoke run (``LABKIT_QUICK=1``, tests).
QUICK = {"arms": ("wgan/dcgan", "gan/dcgan"), "n_seeds": 1, "iters": 12, "width": 4,
         "hidden": 16, "batch_size": 16, "eval_every": 6, "n_count": 100, "w_every": 2,
         "snapshots": (0, 6), "checkpoint_every": 6, "warmup": False}
