"""A short LSUN-style training run on the fast path, for a GPU session (part 3 of
``tools/gpu_check.sh``): the authors' settings (``image_config``: batch 64, 64 x 64, DCGAN,
RMSprop 5e-5, clipping 0.01, n_critic 5 with the 100-step warm-up) on a cache of *generated*
pictures (``benchmarks/gpu_lsun.py``'s LMDB: synthetic WebP pictures, not LSUN photographs).

Trains up to ``--max-iters`` generator iterations, as many as ``--seconds`` allow at the rate
``--rate`` (generator iterations/s without warm-up; e.g. ``gpu_lsun.py``'s ``c_fast_fp32``), and
writes the W-estimate and SWD curves to ``--json`` (rewritten at every evaluation, so a run that
is stopped keeps its curves) and one figure (curves and sample grids) to ``--png``. A timer sends
this process SIGINT at ``--seconds``: the Trainer then finishes its step and stops, as on Ctrl-C.

    python tools/gpu_short_run.py --cache /tmp/gpu_lsun/cache64 --json run.json --png run.png \\
        --seconds 90 --rate 100
    python tools/gpu_short_run.py --cache CACHE16 --smoke ...    # CPU, 16 x 16, tiny models
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.metrics.curves import median_filter  # noqa: E402
from labkit.plots.grids import image_grid  # noqa: E402
from labkit.train import Trainer, critic_steps, image_config  # noqa: E402
from labkit.train.fast import FastStep  # noqa: E402
from labkit.train.step import build_optimizer  # noqa: E402

LABEL = "generated data (synthetic WebP pictures, not LSUN)"


def planned_iters(config, rate: float, seconds: float, max_iters: int,
                  share: float = 0.6) -> int:
    """Most generator iterations (<= ``max_iters``) whose training, at ``rate`` warm-up-free
    iterations/s, fits ``share`` of ``seconds`` (the rest: setup, evaluations, the figure); a
    warm-up iteration costs (100 + 1) / (n_critic + 1) ordinary ones."""
    budget, used, n = share * seconds * rate, 0.0, 0
    while n < max_iters:
        used += (critic_steps(config, n) + 1) / (config.n_critic + 1)
        if used > budget:
            break
        n += 1
    return n


def curves(trainer: Trainer) -> dict:
    history = trainer.history
    its, w = history.series("w_estimate")
    eval_its, swd = history.series("swd")
    _, w_eval = history.series("w_estimate_eval")
    return {"w_estimate": {"iteration": its, "value": w},
            "swd": {"iteration": eval_its, "value": swd},
            "w_estimate_eval": {"iteration": eval_its, "value": w_eval}}


def figure(trainer: Trainer, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(trainer)
    real, (fake,) = trainer.samples()
    fig = plt.figure(figsize=(13, 6.5))
    grid = fig.add_gridspec(2, 3)
    ax = fig.add_subplot(grid[0, 0])
    its, w = np.asarray(data["w_estimate"]["iteration"]), np.asarray(data["w_estimate"]["value"])
    if len(w):
        width = min(101, len(w) - 1 + len(w) % 2) or 1
        ax.plot(its, w, color="C0", alpha=0.25, lw=0.6)
        ax.plot(its, median_filter(w, width), color="C0", label=f"median of {width}")
        ax.legend(fontsize=8)
    ax.set_ylabel("W estimate (-Loss_D)")
    ax = fig.add_subplot(grid[1, 0], sharex=ax)
    ax.plot(data["swd"]["iteration"], data["swd"]["value"], "o-", color="C1", ms=3)
    ax.set_ylabel("SWD x 1e3 (held-out)")
    ax.set_xlabel("generator iterations")
    for col, (name, images) in enumerate((("generated (fixed noise)", fake),
                                          ("real: held-out generated pictures", real)), start=1):
        ax = fig.add_subplot(grid[:, col])
        ax.imshow(image_grid(images[:64]))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="uint8 cache folder (labkit prepare)")
    parser.add_argument("--json", required=True)
    parser.add_argument("--png", required=True)
    parser.add_argument("--seconds", type=float, required=True,
                        help="wall-clock budget of this run, setup included")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="expected generator iterations/s without warm-up")
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, 16 x 16, ngf = ndf = 8, batch 16")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = (dict(image_size=16, ngf=8, ndf=8, batch_size=16, eval_samples=32, device="cpu",
                  fast=True) if args.smoke else dict(device=args.device))
    probe = image_config(args.cache, iters=1, **model)
    iters = planned_iters(probe, args.rate, args.seconds, args.max_iters)
    report = {"data": LABEL, "cache": args.cache, "rate_assumed": args.rate,
              "seconds_budget": args.seconds, "iters_planned": iters, "complete": False}
    if iters < 30:
        report["skipped"] = f"{iters} iterations fit the budget; fewer than 30 are not run"
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(report["skipped"], flush=True)
        return report
    eval_every = max(25, iters // 20)
    config = image_config(args.cache, iters=iters, eval_every=eval_every, **model)
    where = torch.cuda.get_device_name() if config.device.startswith("cuda") else "CPU"

    def write(trainer: Trainer) -> None:
        report.update({"iters_done": trainer.iteration, "seconds": time.perf_counter() - started,
                       "config": config.to_dict(), "fast_path": type(trainer.step).__name__,
                       "graphs": bool(getattr(trainer.step, "graphs", False)),
                       **curves(trainer)})
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps(report) + "\n")
        os.replace(tmp, args.json)

    def on_event(event) -> None:
        if event.name == "eval":
            write(event.trainer)
            print(f"iteration {event.iteration}: SWD {event.evals[0]['swd']:.1f}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

    trainer = Trainer(config, callbacks=[on_event], progress=False)
    left = args.seconds - (time.perf_counter() - started)
    # the guard: at the budget (less time for the figure), Ctrl-C as a user would press it
    timer = threading.Timer(max(1.0, left - 8), os.kill, (os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    train_start = time.perf_counter()
    try:
        trainer.run()
    except Exception as error:  # one device session: the graphs failing must not cost the run
        if not getattr(trainer.step, "graphs", False):
            raise
        report["graphs_error"] = f"{type(error).__name__}: {error}"
        print(f"the CUDA-graph run failed ({report['graphs_error']}); again without graphs",
              flush=True)
        trainer = Trainer(config, callbacks=[on_event], progress=False)
        reference = trainer.step.reference
        reference.opt_critic = build_optimizer(config, reference.critic.parameters(), fast=True)
        reference.opt_generator = build_optimizer(config, reference.generator.parameters(),
                                                  fast=True)
        trainer.step = FastStep(reference, graphs=False)
        trainer.run()
    timer.cancel()
    path = ("plain loop" if not isinstance(trainer.step, FastStep) else
            "fast path fp32, " + ("CUDA graphs" if trainer.step.graphs else "eager"))
    title = f"{LABEL}: {{done}} generator iterations, {path}, authors' settings, {where}"
    report["train_seconds"] = time.perf_counter() - train_start
    report["interrupted"] = trainer.interrupted
    report["complete"] = True
    write(trainer)
    figure(trainer, title.format(done=trainer.iteration), Path(args.png))
    print(f"{trainer.iteration} of {iters} generator iterations in "
          f"{report['train_seconds']:.1f} s (interrupted: {trainer.interrupted}); wrote "
          f"{args.json} and {args.png}", flush=True)
    return report


if __name__ == "__main__":
    main()
