"""The fast path of image training: the same Algorithm 1 as :class:`labkit.train.Trainer`, without
the overheads that starve a GPU (``docs/paper_facts.md``, "Measured for this project").

:class:`FastStep` is another :class:`~labkit.train.step.Step`: the Trainer holds it instead of the
:class:`~labkit.train.step.ReferenceStep` it wraps; warm-up schedule, evaluation, checkpoints,
exact resume and Ctrl-C stay the Trainer's. It runs the reference step's own
:meth:`~labkit.train.step.ReferenceStep.critic_step`,
:meth:`~labkit.train.step.ReferenceStep.generator_step` and
:meth:`~labkit.train.step.ReferenceStep.step_values`, so the maths is the plain loop's, and
changes only where the data lives and how the work is launched:

- the training images of the uint8 cache sit on the device (:class:`DeviceImages`), or in pinned
  host memory with asynchronous copies when they do not fit in the free GPU memory;
- batch indices and noise are drawn where the images are, from the run's seeded stream
  (``reference.rngs[0]``; a device generator with the same seed when the images are on the GPU);
- the optimizers take their multi-tensor (``foreach`` / ``fused``) paths, clipping is two
  ``torch._foreach_clamp_*`` calls (:func:`labkit.gan.constraints.clip_parameters_`);
- no host synchronisation: step values stay on the device until the Trainer's logging points;
- on CUDA, one critic step and one generator step are each captured as a CUDA graph and replayed
  into static input buffers; optional bf16 autocast and channels_last.

With ``graphs=False`` everything runs eagerly, on the CPU too: on the CPU the draws are the plain
loop's own, so the two give the same parameters up to float rounding (``tests/test_fast.py``).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labkit.datasets import ImageDataset
from labkit.gan.constraints import FAST_CONSTRAINTS
from labkit.train.config import DRAWS, seed_stream

if TYPE_CHECKING:
    from labkit.train.step import ReferenceStep

#: GPU memory left free beside a resident cache, for the models, activations and evaluation.
DEVICE_HEADROOM = 4 << 30
#: Images read from the memory-mapped cache per copy when the fast path loads it.
UPLOAD_CHUNK = 16384
#: Warm-up iterations on a side stream before capture (PyTorch's CUDA-graph recipe).
CAPTURE_WARMUP = 3


def choose_placement(n_bytes: int, device: torch.device) -> str:
    """``"device"`` if ``n_bytes`` of images fit in the free memory of ``device`` with
    :data:`DEVICE_HEADROOM` to spare (always on the CPU), else ``"host"`` (pinned memory)."""
    if device.type != "cuda":
        return "device"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if n_bytes + DEVICE_HEADROOM <= free else "host"


class DeviceImages:
    """The training images of an :class:`~labkit.datasets.ImageDataset`, as uint8, where the fast
    path draws its real batches from.

    Parameters
    ----------
    dataset : ImageDataset
        Its first ``count`` images (the held-out ones excluded), (count, 3, S, S) uint8.
    device : torch.device
        Where batches are used.
    placement : {"device", "host"} or None
        ``"device"``: the images on ``device`` (indices drawn there); ``"host"``: in host memory,
        pinned on CUDA, rows gathered on the host into one of two pinned staging buffers and
        copied asynchronously. None: :func:`choose_placement`.
    """

    def __init__(self, dataset: ImageDataset, device: torch.device,
                 placement: str | None = None) -> None:
        if dataset.world != 1:
            raise ValueError(f"dataset world={dataset.world} is not allowed; the fast path "
                             "runs in one process")
        shape = (dataset.count, *dataset.dim)
        placement = placement or choose_placement(int(np.prod(shape)), device)
        if placement not in ("device", "host"):
            raise ValueError(f"placement={placement!r} is not known; choose device or host")
        self.count, self.device, self.placement = dataset.count, device, placement
        pin = device.type == "cuda" and placement == "host"
        self.pixels = torch.empty(shape, dtype=torch.uint8, pin_memory=pin,
                                  device=device if placement == "device" else "cpu")
        for start in range(0, self.count, UPLOAD_CHUNK):  # never the whole memmap in RAM twice
            stop = min(start + UPLOAD_CHUNK, self.count)
            chunk = np.array(dataset.cache.images[start:stop])
            self.pixels[start:stop].copy_(torch.from_numpy(chunk))
        self.draw_device = self.pixels.device
        if self.pixels.device != device:  # pinned staging buffers, made at the first draw
            self._staging: list[torch.Tensor] = []
            self._copied = [torch.cuda.Event(), torch.cuda.Event()]
            self._slot, self._row_shape = 0, dataset.dim

    def draw(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fill ``out`` (m, 3, S, S) float32 with m images drawn uniformly with replacement,
        in [-1, 1] (``x = p / 127.5 - 1``); the indices come from ``generator``, on the
        images' device."""
        rows = torch.randint(self.count, (len(out),), generator=generator,
                             device=self.draw_device)
        if self.pixels.device == out.device:
            out.copy_(self.pixels.index_select(0, rows))
        else:
            out.copy_(self._upload(rows))
        return out.div_(127.5).sub_(1.0)

    def _upload(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows gathered into a pinned staging buffer and copied to the device asynchronously;
        a buffer is reused only once its previous copy has finished (an event wait)."""
        if not self._staging:
            self._staging = [torch.empty((len(rows), *self._row_shape), dtype=torch.uint8,
                                         pin_memory=True) for _ in range(2)]
            self._device_u8 = torch.empty_like(self._staging[0], device=self.device)
        slot = self._slot
        self._slot = 1 - slot
        self._copied[slot].synchronize()
        torch.index_select(self.pixels, 0, rows, out=self._staging[slot])
        self._device_u8.copy_(self._staging[slot], non_blocking=True)
        self._copied[slot].record()
        return self._device_u8


class FastStep:
    """One generator iteration of Algorithm 1 on the fast path (a :class:`~labkit.train.step.Step`),
    advancing the state of ``reference``.

    Called as ``step(n_steps)``: ``n_steps`` critic steps (each on a fresh real batch and fresh
    noise) then one generator step; returns the step values of
    :meth:`~labkit.train.step.ReferenceStep.step_values`, shape (4, 1), still on the device.

    Parameters
    ----------
    reference : ReferenceStep
        The reference step of an image run in one process (the Trainer wraps its own in a
        FastStep when ``config.fast`` says so; wrap it again to change the options below,
        ``reference.step = FastStep(reference.step.reference, ...)``).
    graphs : bool or None
        Capture the critic step and the generator step as CUDA graphs (at the first call, after
        any resume). None: on CUDA. The optimizers must be ``capturable``
        (``build_optimizer(..., capturable=True)``).
    bf16 : bool
        Forward passes under ``torch.autocast(dtype=torch.bfloat16)``; not the plain loop's
        maths to the bit.
    channels_last : bool
        Models and real batches in ``torch.channels_last`` memory format.
    placement : {"device", "host"} or None
        Where the training images live (:class:`DeviceImages`).
    """

    def __init__(self, reference: ReferenceStep, graphs: bool | None = None, bf16: bool = False,
                 channels_last: bool = False, placement: str | None = None) -> None:
        device, config = reference.device, reference.config
        graphs = device.type == "cuda" if graphs is None else graphs
        if graphs and device.type != "cuda":
            raise ValueError(f"graphs=True is not allowed on device={config.device!r}; CUDA "
                             "graphs need device='cuda' (use graphs=False on the CPU)")
        if not reference.data.fast_path:
            raise ValueError(f"target={config.target!r} is not allowed on the fast path; it "
                             "trains on images")
        if config.constraint not in FAST_CONSTRAINTS:
            raise ValueError(f"constraint={config.constraint!r} is not allowed on the fast "
                             f"path; use one of {', '.join(FAST_CONSTRAINTS)}")
        if graphs and not all(opt.defaults.get("capturable", True)
                              for opt in (reference.opt_critic, reference.opt_generator)):
            raise ValueError("graphs=True needs capturable optimizers; build them with "
                             "build_optimizer(config, params, fast=True, capturable=True)")
        self.reference, self.graphs = reference, graphs
        self.images = DeviceImages(reference.data.target, device, placement)
        if self.images.draw_device != reference.rngs[0].device:  # draws on the GPU, same seed
            reference.rngs[0] = seed_stream(config.seed, DRAWS, self.images.draw_device)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            reference.generator.to(memory_format=memory_format)
            reference.critic.to(memory_format=memory_format)
        reference.forward_context = (functools.partial(torch.autocast, device.type,
                                                       dtype=torch.bfloat16, cache_enabled=False)
                                     if bf16 else contextlib.nullcontext)
        m = config.batch_size
        self.real = torch.empty((m, *reference.data.target.dim), device=device,
                                memory_format=memory_format)
        self.noise = torch.empty((m, config.nz), device=device)
        self.loss_c: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self._graphs: tuple[Any, Any] | None = None

    def reset(self) -> None:
        """Forget captured graphs (the Trainer calls it after loading a state: the optimizers'
        state tensors are new, so the graphs are captured again at the next call)."""
        self._graphs = None

    # ------------------------------------------------------------------ draws
    def _draw_noise(self) -> None:
        generator = self.reference.rngs[0]
        self.noise.copy_(torch.randn(self.noise.shape, generator=generator,
                                     device=generator.device), non_blocking=True)

    def _draw_critic_batch(self) -> None:
        """A real batch then the noise of its fake batch, in the plain loop's order."""
        self.images.draw(self.real, self.reference.rngs[0])
        self._draw_noise()

    # ------------------------------------------------------------------ the two steps
    def _critic_body(self) -> None:
        reference = self.reference
        with torch.no_grad(), reference.forward_context():
            fake = reference.generator(self.noise)
        self.loss_c = reference.critic_step(self.real, fake)

    def _generator_body(self) -> None:
        reference = self.reference
        self.values = reference.step_values(self.loss_c, reference.generator_step(self.noise))

    def __call__(self, n_steps: int) -> torch.Tensor:
        """``n_steps`` critic steps and one generator step; the values, (4, 1), on the device."""
        if self.graphs and self._graphs is None:
            self._capture()
        critic, generator = (self._graphs if self.graphs
                             else (self._critic_body, self._generator_body))
        for _ in range(n_steps):
            self._draw_critic_batch()
            critic()
        self._draw_noise()
        generator()
        return self.values.clone()  # the graphs overwrite self.values at every replay

    # ------------------------------------------------------------------ CUDA graphs
    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a step changes in place: parameters, buffers, optimizer states."""
        reference = self.reference
        tensors = [*reference.generator.parameters(), *reference.generator.buffers(),
                   *reference.critic.parameters(), *reference.critic.buffers()]
        for opt in (reference.opt_generator, reference.opt_critic):
            tensors += [v for s in opt.state.values() for v in s.values()
                        if isinstance(v, torch.Tensor)]
        return tensors

    def _capture(self) -> None:
        """Warm up on a side stream, capture one critic step and one generator step, then put
        the models, optimizer states and the draw stream back as they were before the warm-up
        (in place, so the graphs keep their addresses; optimizer states first created by the
        warm-up go back to zero, the optimizers' own initial value)."""
        reference = self.reference
        before = {id(t): t.detach().clone() for t in self._state_tensors()}
        rng_state = reference.rngs[0].get_state()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(CAPTURE_WARMUP):
                self._draw_critic_batch()
                self._critic_body()
                self._generator_body()
        torch.cuda.current_stream().wait_stream(side)
        critic_graph, generator_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(critic_graph):
            self._critic_body()
        with torch.cuda.graph(generator_graph):
            self._generator_body()
        with torch.no_grad():
            for t in self._state_tensors():
                saved = before.get(id(t))
                t.copy_(saved) if saved is not None else t.zero_()
        reference.rngs[0].set_state(rng_state)
        self._graphs = (critic_graph.replay, generator_graph.replay)


__all__ = ["FastStep", "DeviceImages", "choose_placement",
           "FAST_CONSTRAINTS", "DEVICE_HEADROOM"]
