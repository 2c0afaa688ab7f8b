"""The mode-collapse study's cost: achieved GFLOP/s of its ensemble step against the machine's own
batched matrix-multiply rate at the same shapes and thread count.

One generator iteration of the study (``labkit.study.StudyConfig()``: 8 seeds as one ensemble,
MLPs 3 x 128, batch 256, on the ring) does the batched matrix products listed by
``labkit.study.step_matmuls`` (forward passes, input and weight gradients), 2 S B i o FLOPs each
(``labkit.study.step_flops``; a test checks the count against ``torch.utils.flop_counter``). This
script times, in one process and interleaved (step, GEMM, step, GEMM, ...):

* the step: ``Trainer.train_step()`` of the study's config, evaluation excluded;
* the GEMMs alone: ``torch.bmm`` on tensors of exactly those shapes and layouts (forward
  (S, B, i) x (S, i, o); input gradient (S, B, o) x (S, i, o)^T; weight gradient
  (S, B, i)^T x (S, B, o)), each as often as the step does it;

at the study's thread count (its workers run one thread each), and prints the FLOPs per
iteration, both rates and **the step's rate as a percentage of the GEMM rate**: the share of the
step spent on useful matrix work if the GEMMs ran as fast inside the loop as alone. Medians over
``--repeats`` interleaved pairs. Speed under load is unreliable: read the ratio, note the load.

    .venv/bin/python benchmarks/study_step.py                 # clipping and GAN, about 1 minute
    .venv/bin/python benchmarks/study_step.py --methods wgan-clip --repeats 9
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections import Counter

import torch

from labkit import study
from labkit.train import Trainer


def gemm_operands(kind: str, s: int, b: int, i: int, o: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two operands of one product of :func:`labkit.study.step_matmuls`, laid out as
    autograd lays them out for ``torch.baddbmm(bias, x, weight)`` and its backward."""
    g = torch.Generator().manual_seed(0)
    x, w, grad = (torch.randn(s, b, i, generator=g), torch.randn(s, i, o, generator=g),
                  torch.randn(s, b, o, generator=g))
    if kind == "forward":
        return x, w
    if kind == "grad_input":
        return grad, w.transpose(1, 2)
    return x.transpose(1, 2), grad


def time_gemms(matmuls, repeats: int = 20) -> float:
    """Seconds the products of one step take alone (each shape timed ``repeats`` times; the
    median, times how often the step does it)."""
    total = 0.0
    for (kind, s, b, i, o), count in Counter(matmuls).items():
        a, c = gemm_operands(kind, s, b, i, o)
        torch.bmm(a, c)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.bmm(a, c)
            times.append(time.perf_counter() - start)
        total += count * statistics.median(times)
    return total


def time_steps(trainer: Trainer, iters: int) -> float:
    """Seconds per generator iteration of ``trainer`` (median of ``iters`` single steps)."""
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(method: str, threads: int, iters: int, repeats: int, warmup: int = 3,
            gemm_repeats: int = 20) -> dict:
    """The step's and the GEMMs' times for ``method`` (medians of ``repeats`` interleaved
    timings), the FLOPs, both rates in GFLOP/s and the step's percentage of the GEMM rate."""
    config = study.StudyConfig(methods=(method,), threads=threads)
    train = config.train_config(method, "ring")
    train.eval_samples, train.eval_every = 10, 10**9
    trainer = Trainer(train, progress=False)  # sets the thread count
    matmuls = study.step_matmuls(train)
    flops = study.step_flops(train)
    for _ in range(warmup):
        trainer.train_step()
    steps, gemms = [], []
    for _ in range(repeats):
        steps.append(time_steps(trainer, iters))
        gemms.append(time_gemms(matmuls, gemm_repeats))
    step, gemm = statistics.median(steps), statistics.median(gemms)
    return {"flops": flops, "step_s": step, "gemm_s": gemm, "achieved": flops / step / 1e9,
            "gemm_rate": flops / gemm / 1e9, "percent": 100 * gemm / step,
            "products": len(matmuls)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["wgan-clip", "gan"],
                        help="study methods with clipping or no constraint (default wgan-clip "
                             "gan)")
    parser.add_argument("--threads", type=int, default=study.StudyConfig().threads,
                        help="torch threads (default: the study's, 1 per worker)")
    parser.add_argument("--iters", type=int, default=10, help="steps per timing (default 10)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved step / GEMM timings (default 5)")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    config = study.StudyConfig()
    print(f"# benchmarks/study_step.py  {datetime.datetime.now().isoformat(timespec='minutes')}"
          f"  {platform.machine()}, {os.cpu_count()} cpus  torch {torch.__version__}  "
          f"threads {args.threads}  load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# study step: {config.n_seeds} seeds, MLPs {config.depth} x {config.hidden}, batch "
          f"{config.batch_size}, ring; medians of {args.repeats} interleaved (step, GEMM) "
          f"timings of {args.iters} steps")
    print(f"{'method':<20} {'GFLOP/it':>8} {'step ms':>8} {'GEMM ms':>8} {'GFLOP/s':>8} "
          f"{'GEMM GFLOP/s':>12} {'% of GEMM':>9}")
    for method in args.methods:
        r = measure(method, args.threads, args.iters, args.repeats)
        print(f"{method:<20} {r['flops'] / 1e9:>8.3f} {1e3 * r['step_s']:>8.1f} "
              f"{1e3 * r['gemm_s']:>8.1f} {r['achieved']:>8.1f} {r['gemm_rate']:>12.1f} "
              f"{r['percent']:>8.0f}%", flush=True)
    load = os.getloadavg()
    print(f"# load avg at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
