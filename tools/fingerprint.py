"""Fingerprints of short training runs, to check that a refactoring changes no result.

Trains a few short runs that between them take every branch of the training loop (weight
clipping after and before the critic step, gradient penalty, spectral norm, the standard GAN
loss, an 8-seed ensemble, an image run on the plain path and one on the fast path, eagerly on
the CPU), and the critic explorer's fixed-pair critic under each constraint and the GAN loss,
and writes, for each, the sha256 of the final generator and critic ``state_dict``
tensors (their bytes, in key order) and of the history (``rows`` without the wall-clock
``time`` column, and ``evals``, as ``json.dumps(sort_keys=True)``). Run it before and after a
change and compare the two JSON files: a pure restructuring leaves every hash unchanged.

Only the public API is used, so the script runs unchanged on both sides of a change::

    python tools/fingerprint.py --out before.json
    python tools/fingerprint.py --out after.json
    cmp before.json after.json

Under a minute on one idle core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

# The labkit of the checkout this script lives in, not whichever one the environment installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.critics import CriticConfig, train_critic  # noqa: E402
from labkit.datasets import synthetic_images  # noqa: E402
from labkit.images import save_cache  # noqa: E402
from labkit.train import TrainConfig, Trainer, image_config  # noqa: E402

#: Small toy runs (3 x 32 MLPs, 300 generator iterations, two evaluations).
TOY = dict(target="grid", hidden=32, iters=300, eval_every=150, eval_samples=200,
           threads=1)
TOYS = {
    "clip_after": dict(constraint="clip", clip_timing="after"),
    "clip_before": dict(constraint="clip", clip_timing="before", critic_warmup=True),
    "gp": dict(constraint="gp", optimizer="adam", lr=1e-4, gp_lambda=0.1),
    "sn": dict(constraint="sn", optimizer="adam", lr=1e-4),
    "gan": dict(loss="gan-logd", constraint="none", optimizer="adam", lr=1e-4),
    "ensemble8": dict(constraint="clip", n_seeds=8, seed=3, iters=150),
}
#: The critic explorer (:func:`labkit.critics.train_critic`) on a fixed pair of 2-D point sets.
CRITICS = {
    "critic_clip": dict(constraint="clip"),
    "critic_gp": dict(constraint="gp"),
    "critic_sn": dict(constraint="sn"),
    "critic_gan": dict(loss="gan", constraint="none"),
}
#: A tiny image run: 16 x 16 synthetic images, ngf = ndf = 8, 30 iterations, two evaluations.
IMAGE = dict(iters=30, image_size=16, ngf=8, ndf=8, batch_size=16, n_critic=3,
             critic_warmup=False, eval_every=15, eval_samples=32, threads=1)


def tensors_sha256(module: torch.nn.Module) -> str:
    """sha256 over the bytes of every tensor of ``module.state_dict()``, with its key."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def history_sha256(history) -> str:
    """sha256 of the history's rows (wall-clock ``time`` left out) and evaluations."""
    rows = [{k: v for k, v in row.items() if k != "time"} for row in history.rows]
    text = json.dumps({"rows": rows, "evals": history.evals}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(config: TrainConfig) -> dict[str, str]:
    """Train ``config`` and hash what it ends with."""
    trainer = Trainer(config, progress=False)
    history = trainer.run()
    return {"generator": tensors_sha256(trainer.generator),
            "critic": tensors_sha256(trainer.critic),
            "history": history_sha256(history),
            "rows": len(history.rows), "evals": len(history.evals)}


def critic_fingerprint(settings: dict) -> dict[str, str]:
    """Train the explorer's critic on a fixed pair and hash it and its record."""
    real = torch.randn(128, 2, generator=torch.Generator().manual_seed(0))
    fake = torch.randn(96, 2, generator=torch.Generator().manual_seed(1)) + 1.5
    fit = train_critic(real, fake, CriticConfig(steps=200, hidden=32, **settings),
                       record_every=50)
    text = json.dumps({"estimate": fit.estimate, "history": fit.history}, sort_keys=True)
    return {"critic": tensors_sha256(fit.critic),
            "history": hashlib.sha256(text.encode()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    results = {}
    for name, extra in TOYS.items():
        results[name] = fingerprint(TrainConfig(**{**TOY, **extra}))
        print(name, results[name]["history"][:12], flush=True)
    for name, settings in CRITICS.items():
        results[name] = critic_fingerprint(settings)
        print(name, results[name]["history"][:12], flush=True)
    with tempfile.TemporaryDirectory() as folder:
        cache = save_cache(synthetic_images(160, 16), folder, "synthetic_images(160, 16)")
        for name, fast in (("images", False), ("images_fast", True)):
            results[name] = fingerprint(image_config(cache.path, **IMAGE, fast=fast))
            print(name, results[name]["history"][:12], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
