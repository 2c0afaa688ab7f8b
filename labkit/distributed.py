"""Data parallelism for the training loop: one process per device, gradients averaged by all-reduce.

``torchrun --nproc_per_node=K -m labkit lsun train ...`` starts K processes; each calls
:func:`init_from_env` and trains a full copy of both models. Semantics (what the tests pin):

- ``batch_size`` is the *global* batch m. Every rank draws the same m noise vectors and m image
  indices from the same seeded stream and keeps every K-th one (``x[rank::K]``), so the ranks'
  local batches are disjoint, of size m / K, and together form exactly the batch a single process
  would draw. ``batch_size`` must be divisible by K.
- After each backward pass the gradients are summed over ranks and divided by K (one coalesced
  all-reduce), which is the gradient of the global batch mean. Every rank then takes the same
  optimizer step from the same weights, so weight clipping and every other update keep the ranks
  identical without any broadcast.
- BatchNorm normalises with each rank's local statistics (m / K samples), as PyTorch's DDP does
  without SyncBatchNorm: with BatchNorm a K-process run is a slightly different estimator than one
  process; without BatchNorm it computes the same updates up to float rounding.
- Rank 0 evaluates and writes every output (history, grids, checkpoints); a Ctrl-C on any rank
  stops all of them at the same iteration.

The collective calls are plain ``torch.distributed`` ones, so the same code runs with gloo on the
CPU (the tests) and NCCL on GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def init_from_env(device: str) -> tuple[int, int]:
    """Join the process group described by torchrun's environment; return ``(rank, world)``.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is initialised and ``(0, 1)`` is
    returned. The backend is NCCL for CUDA devices and gloo otherwise; with ``device="cuda"``
    each process makes GPU number ``LOCAL_RANK`` its current device, so ``"cuda"`` means that GPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    """Number of processes in the group (1 when none was initialised)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when no group was initialised)."""
    return dist.get_rank() if dist.is_initialized() else 0


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every ``p.grad`` by its mean over ranks (one all-reduce of the flattened grads)."""
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The elementwise mean of ``values`` over ranks (a new tensor)."""
    total = values.clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a Ctrl-C)."""
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


__all__ = ["init_from_env", "shutdown", "world_size", "rank", "average_gradients",
           "mean_over_ranks", "any_rank"]
