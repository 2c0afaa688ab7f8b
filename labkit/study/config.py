"""What a study runs: the methods (loss, constraint, optimiser, with their sources), the targets,
the budget (:class:`StudyConfig`) and the overrides of the smoke run and of the diagnostics."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from labkit import _checks

TARGETS = ("ring", "grid")


#: Row labels of the baselines: a second real sample, and a generator that knows the support only.
BASELINES = ("floor", "support only")


@dataclass(frozen=True)
class Method:
    """One row of the study: a loss, a Lipschitz constraint and an optimiser, with their source.

    Attributes
    ----------
    label : str
        Name printed in tables.
    settings : dict
        :class:`labkit.train.TrainConfig` fields that define the method (loss, constraint,
        optimizer, lr, betas, n_critic, clip, gp_lambda).
    source : str
        Where the settings come from, and what was changed.
    """

    label: str
    settings: dict[str, Any]
    source: str


_ADAM_GP = {"optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.9)}


_CLIP = {"loss": "wgan", "constraint": "clip", "clip": 0.01, "n_critic": 5}


_CLIP_TENFOLD = {**_CLIP, "optimizer": "rmsprop", "lr": 5e-4}


#: The methods of the study, in table order. GANs take one discriminator step per generator step
#: (Goodfellow et al. 2014; as in VEEGAN's and PacGAN's baselines); the WGANs take n_critic = 5.
METHODS: dict[str, Method] = {
    "gan": Method("GAN (minimax)", {"loss": "gan", "constraint": "none", "n_critic": 1,
                                    **_ADAM_GP},
                  "Goodfellow et al. 2014, log(1 - D) generator loss; Adam 1e-4, betas (0.5, 0.9) "
                  "as WGAN-GP's gan_toy.py"),
    "gan-logd": Method("GAN (-log D)", {"loss": "gan-logd", "constraint": "none", "n_critic": 1,
                                        **_ADAM_GP},
                       "Goodfellow et al. 2014, non-saturating -log D loss; Adam as above"),
    "wgan-clip": Method("WGAN, clipping (RMSprop 5e-4)", _CLIP_TENFOLD,
                        "Algorithm 1 with the learning rate raised tenfold (a toy calibration "
                        "found 5e-5 slow on the ring); c = 0.01, n_critic = 5"),
    "wgan-clip-paper": Method("WGAN, clipping (paper: RMSprop 5e-5)",
                              {**_CLIP, "optimizer": "rmsprop", "lr": 5e-5},
                              "Algorithm 1 exactly: RMSprop 5e-5, c = 0.01, n_critic = 5"),
    "wgan-clip-adam": Method("WGAN, clipping (Adam 5e-4)",
                             {**_CLIP, "optimizer": "adam", "lr": 5e-4, "betas": (0.5, 0.999)},
                             "as wgan-clip with the authors' --adam option (betas (0.5, 0.999)) "
                             "instead of RMSprop: the paper's momentum warning (Section 4.2)"),
    "wgan-gp": Method("WGAN-GP (lambda 10)", {"loss": "wgan", "constraint": "gp",
                                              "gp_lambda": 10.0, "n_critic": 5, **_ADAM_GP},
                      "Gulrajani et al. 2017: lambda = 10, n_critic = 5, Adam 1e-4, betas "
                      "(0.5, 0.9) as in its gan_toy.py"),
    "wgan-sn": Method("WGAN, spectral norm", {"loss": "wgan", "constraint": "sn", "n_critic": 5,
                                              **_ADAM_GP},
                      "Miyato et al. 2018 spectral normalisation of every critic layer (one "
                      "power iteration per step), WGAN loss, n_critic = 5, Adam as WGAN-GP"),
}


#: Variants of the tenfold-rate clipped WGAN for the diagnostics (:data:`DIAGNOSTICS`): does the
#: critic fall behind (n_critic 1 and 25 beside the study's 5), and what do high learning rates do
#: (the paper's Figure 3, lower half)?
DIAGNOSTIC_METHODS: dict[str, Method] = {
    "wgan-clip-ncritic1": Method("WGAN, clipping, n_critic 1", {**_CLIP_TENFOLD, "n_critic": 1},
                                 "wgan-clip with one critic step per generator step"),
    "wgan-clip-ncritic25": Method("WGAN, clipping, n_critic 25",
                                  {**_CLIP_TENFOLD, "n_critic": 25},
                                  "wgan-clip with 25 critic steps per generator step"),
    "wgan-clip-lr5e-3": Method("WGAN, clipping (RMSprop 5e-3)", {**_CLIP_TENFOLD, "lr": 5e-3},
                               "wgan-clip at 100 times the paper's learning rate"),
    "wgan-clip-lr5e-2": Method("WGAN, clipping (RMSprop 5e-2)", {**_CLIP_TENFOLD, "lr": 5e-2},
                               "wgan-clip at 1,000 times the paper's learning rate"),
}


#: Every method a study may run: the study's and the diagnostics' variants.
ALL_METHODS: dict[str, Method] = {**METHODS, **DIAGNOSTIC_METHODS}


@dataclass
class StudyConfig:
    """The budget and scope of a study; every method and target gets the same budget.

    The defaults are the shipped study's (``python -m labkit study`` reproduces it).

    Parameters
    ----------
    methods, targets : tuple of str
        Keys of :data:`ALL_METHODS` and of :data:`TARGETS`.
    n_seeds : int, default 8
        Seeds ``first_seed, ..., first_seed + n_seeds - 1``, trained together as one ensemble.
    iters : int, default 8000
        Generator iterations per run (batch 256: 2.05 M samples, 21 times the 96,000 of the
        first study).
    batch_size : int, default 256
        Batch m (WGAN-GP's ``gan_toy.py``; Algorithm 1's is 64).
    hidden, depth, nz
        The MLPs: ``depth`` hidden ReLU layers of ``hidden`` (128 for every method); latent
        dimension ``nz``.
    curve_every, curve_samples : int
        Evaluate every ``curve_every`` iterations on ``curve_samples`` fixed points per seed
        (exact W1, critic estimate, modes, the optimiser-step cosine): the curves.
    eval_samples : int, default 2500
        Fresh samples per seed for the final table (VEEGAN / PacGAN use 2,500).
    snapshot_every : int
        Iterations between the snapshots (seed ``first_seed``'s samples and critic on a grid).
    checkpoint_every : int, default 250
        Iterations between the trainer's checkpoints inside a pair (what a stop can lose).
    lag_steps : int, default 0
        If > 0, at every curve evaluation a copy of the critic takes this many more critic
        steps against the frozen generator, and its estimate is recorded beside the running
        critic's (``w_estimate_retrained``): how far the critic lags its optimum.
    threads : int, default 1
        Torch threads per run (0: labkit's choice by model size). Part of what a result depends
        on: matrix products split over other thread counts round differently.
    """

    methods: tuple[str, ...] = tuple(METHODS)
    targets: tuple[str, ...] = TARGETS
    n_seeds: int = 8
    first_seed: int = 0
    iters: int = 8000
    batch_size: int = 256
    hidden: int = 128
    depth: int = 3
    nz: int = 2
    curve_every: int = 100
    curve_samples: int = 500
    eval_samples: int = 2500
    snapshot_every: int = 1000
    checkpoint_every: int = 250
    lag_steps: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name, allowed in (("methods", tuple(ALL_METHODS)), ("targets", TARGETS)):
            values = getattr(self, name)
            values = (values,) if isinstance(values, str) else tuple(values)
            if not values or len(set(values)) != len(values) or any(
                    not isinstance(v, str) or v not in allowed for v in values):
                raise _checks.BadValue(name, list(values),
                                       "distinct values among " + ", ".join(allowed))
            setattr(self, name, values)
        for name in ("n_seeds", "iters", "batch_size", "hidden", "depth", "nz", "curve_every",
                     "curve_samples", "eval_samples", "snapshot_every", "checkpoint_every"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=1))
        for name in ("first_seed", "lag_steps", "threads"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def seeds(self) -> list[int]:
        """The seeds of every ensemble."""
        return list(range(self.first_seed, self.first_seed + self.n_seeds))

    def train_config(self, method: str, target: str, checkpoint: str | None = None):
        """The :class:`labkit.train.TrainConfig` of one (method, target) ensemble."""
        from labkit.train import TrainConfig

        return TrainConfig(target=target, iters=self.iters, batch_size=self.batch_size,
                           hidden=self.hidden, depth=self.depth, nz=self.nz,
                           seed=self.first_seed, n_seeds=self.n_seeds,
                           eval_every=self.curve_every, eval_samples=self.curve_samples,
                           checkpoint=checkpoint, checkpoint_every=self.checkpoint_every,
                           threads=self.threads, **ALL_METHODS[method].settings)


QUICK = {"n_seeds": 2, "iters": 60, "batch_size": 64, "curve_every": 5, "curve_samples": 200,
         "eval_samples": 500, "snapshot_every": 30, "checkpoint_every": 20}
"""Overrides of :class:`StudyConfig` for a smoke run (``--quick``, ``LABKIT_QUICK=1``)."""


DIAGNOSTICS = {"methods": ("wgan-clip-ncritic1", "wgan-clip", "wgan-clip-ncritic25",
                           "wgan-clip-adam", "wgan-clip-lr5e-3", "wgan-clip-lr5e-2"),
               "targets": ("ring",), "n_seeds": 4, "iters": 2000, "curve_every": 50,
               "snapshot_every": 500, "lag_steps": 200}
"""Overrides of :class:`StudyConfig` for the diagnostics (``study --diagnostics``): the
tenfold-rate clipped WGAN on the ring with n_critic 1, 5 and 25, with Adam, and at learning
rates 5e-3 and 5e-2; 4 seeds, 2,000 iterations, curves every 50 with the critic's lag
(200 more critic steps). With ``--quick``, :data:`QUICK` applies on top (``lag_steps`` 5)."""


QUICK_DIAGNOSTICS = {**QUICK, "lag_steps": 5}
