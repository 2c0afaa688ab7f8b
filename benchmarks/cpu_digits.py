"""CPU speed of notebook 04's digits experiment, and the wall time it projects for the full set.

For each arm of ``labkit.digits_experiment`` (at the experiment's widths, one thread, batch 64,
16 x 16 digits) it times ``--iters`` generator iterations of ``Trainer.train_step`` without the
warm-up, one critic step (for the warm-up's extra 95 critic steps at the first 25 iterations and
every 500th), and one evaluation (SWD on 300 held-out digits, critic estimate, class count of
1,000 generated digits). From these it projects the experiment's time: per run
``iters / rate + warm-up + evaluations x evaluation time``, summed over arms and seeds, shared by
``--jobs`` one-thread processes (longest runs first). Prints the load average: timings on shared
cores are worth little without it.

    python benchmarks/cpu_digits.py [--width 16] [--iters 200] [--jobs 2]
"""

from __future__ import annotations

import argparse
import heapq
import os
import tempfile
import time

from labkit import digits
from labkit import digits_experiment as dx
from labkit.train import Trainer, critic_steps


def measure(config: dx.ExperimentConfig, arm: str, cache_path, iters: int) -> dict[str, float]:
    """Seconds per generator iteration (no warm-up), per critic step, and per evaluation."""
    train_config = config.train_config(arm, 0, cache_path)
    trainer = Trainer(train_config, progress=False)
    trainer.evaluator = dx.DigitEvaluator(trainer.evaluator, dx.classifier_for(
        trainer.target.cache), config.n_count, train_config.nz, 0, trainer.device)
    trainer.train_step()  # allocators and kernels warm
    start = time.perf_counter()
    for _ in range(iters):
        trainer.step(train_config.n_critic)  # (1) critic x n_critic, (2) generator
    per_iteration = (time.perf_counter() - start) / iters
    start = time.perf_counter()
    trainer.step.reference.critic_phase(20)
    per_critic_step = (time.perf_counter() - start) / 20
    start = time.perf_counter()
    trainer.evaluate()
    return {"iteration": per_iteration, "critic_step": per_critic_step,
            "evaluation": time.perf_counter() - start}


def run_seconds(config: dx.ExperimentConfig, arm: str, times: dict[str, float]) -> float:
    """Projected seconds of one run of ``arm``."""
    train_config = config.train_config(arm, 0, "unused")
    extra = sum(critic_steps(train_config, i) - train_config.n_critic for i in range(config.iters))
    evaluations = config.iters // config.eval_every + 1
    return (config.iters * times["iteration"] + extra * times["critic_step"]
            + evaluations * times["evaluation"])


def wall_seconds(runs: list[float], jobs: int) -> float:
    """Finish time of ``runs`` on ``jobs`` workers that each take the next run, longest first."""
    workers = [0.0] * jobs
    for seconds in sorted(runs, reverse=True):
        heapq.heappush(workers, heapq.heappop(workers) + seconds)
    return max(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=dx.ExperimentConfig.width,
                        help="ngf = ndf (default the experiment's)")
    parser.add_argument("--iters", type=int, default=200, help="timed iterations per arm")
    parser.add_argument("--experiment-iters", type=int, default=dx.ExperimentConfig.iters,
                        help="generator iterations of each run in the projection")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    snapshots = tuple(i for i in dx.ExperimentConfig.snapshots if i <= args.experiment_iters)
    try:  # the experiment's own checks (iters a multiple of eval_every, ...) in one line
        config = dx.ExperimentConfig(width=args.width, iters=args.experiment_iters,
                                     snapshots=snapshots)
    except ValueError as error:
        parser.error(f"--experiment-iters {args.experiment_iters} / --width {args.width}: {error}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = digits.prepare_cache(tmp, config.image_size)
        runs = []
        for arm in config.arms:
            times = measure(config, arm, cache.path, args.iters)
            seconds = run_seconds(config, arm, times)
            runs += [seconds] * config.n_seeds
            print(f"{arm:<22} {1 / times['iteration']:6.1f} it/s, critic step "
                  f"{1e3 * times['critic_step']:5.1f} ms, evaluation {times['evaluation']:5.2f} s; "
                  f"a run of {config.iters}: {seconds / 60:5.1f} min "
                  f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    print(f"projected: {len(runs)} runs, {sum(runs) / 3600:.2f} CPU-hours, "
          f"{wall_seconds(runs, args.jobs) / 3600:.2f} h on {args.jobs} one-thread job(s) "
          f"(width {config.width}, {config.iters} iterations, evaluations every "
          f"{config.eval_every})")


if __name__ == "__main__":
    main()
