"""The training loop of the lab: :class:`TrainConfig` (Algorithm 1's defaults) and :class:`Trainer`.

Toys and images run through the same loop. What differs is chosen once from the config
(:mod:`labkit.train.data`): the real data (a toy target, or an
:class:`~labkit.datasets.ImageDataset` over a uint8 cache), the models (:func:`build_models`) and
the evaluator (:mod:`labkit.train.evaluators`: exact W1 and mode coverage for toys, a sample grid
and the sliced Wasserstein distance for images). :func:`image_config` gives the authors' LSUN
configuration. Under ``torchrun`` the loop runs data-parallel with the semantics stated in
:mod:`labkit.distributed`.

The loop reads like Algorithm 1 of Arjovsky, Chintala & Bottou (2017): for each generator
iteration, phase "(1) critic" takes ``n_critic`` steps on ``E[f(real)] - E[f(fake)]`` under a
Lipschitz constraint, then phase "(2) generator" takes one step; that maths is one step object
(:mod:`labkit.train.step`; the fast path's :mod:`labkit.train.fast` is another with the same
maths). Callbacks ``fn(event)`` are told of each step, evaluation, checkpoint and the end by an
:class:`Event` carrying what happened (:mod:`labkit.train.callbacks`; the progress bar is one);
the record is a :class:`History`.

Modules: :mod:`~labkit.train.config` (what defines a run), :mod:`~labkit.train.data`,
:mod:`~labkit.train.step`, :mod:`~labkit.train.fast`, :mod:`~labkit.train.loop` (the Trainer),
:mod:`~labkit.train.callbacks`, :mod:`~labkit.train.history`, :mod:`~labkit.train.evaluators`.
"""

from labkit.train.callbacks import Event
from labkit.train.config import (
    DEFAULT_THREADS,
    GENERATORS,
    IMAGE_DEFAULTS,
    IMAGE_FIELDS,
    MAX_SEEDS,
    MAX_THREADS_PER_CPU,
    ONE_THREAD_BELOW,
    OPTIMIZERS,
    RESUMABLE_FIELDS,
    TARGETS,
    TrainConfig,
    check_runtime,
    choose_threads,
    critic_steps,
    epoch_iters,
    image_config,
    member_seeds,
    seed_stream,
    set_threads,
    step_bytes,
    stream_seed,
    use_fast,
)
from labkit.train.data import build_data, build_models
from labkit.train.history import History
from labkit.train.loop import DivergenceError, Trainer
from labkit.train.step import ReferenceStep, Step, build_optimizer, grad_norm

__all__ = ["TrainConfig", "Trainer", "Event", "History", "DivergenceError", "Step", "ReferenceStep",
           "critic_steps", "image_config", "epoch_iters", "step_bytes", "build_data",
           "build_models", "build_optimizer", "grad_norm", "member_seeds", "stream_seed",
           "seed_stream", "choose_threads", "set_threads", "check_runtime", "use_fast",
           "DEFAULT_THREADS", "ONE_THREAD_BELOW", "OPTIMIZERS", "TARGETS", "GENERATORS",
           "IMAGE_FIELDS", "IMAGE_DEFAULTS", "RESUMABLE_FIELDS", "MAX_SEEDS",
           "MAX_THREADS_PER_CPU"]
