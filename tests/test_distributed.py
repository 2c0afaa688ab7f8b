"""Data-parallel training under torchrun with 2 gloo processes on the CPU (labkit.distributed):
the ranks' parameters stay identical, and without BatchNorm a 2-process run computes what one
process computes at the same global batch, up to float rounding."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from labkit import checkpoint
from labkit.datasets import synthetic_images
from labkit.images import save_cache
from labkit.train import Trainer, image_config

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TINY = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--hidden", "16", "--batch-size", "8",
        "--n-critic", "2", "--eval-every", "3", "--eval-samples", "16", "--iters", "3", "--quiet"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return save_cache(synthetic_images(80, 16, seed=2), tmp_path_factory.mktemp("ddp-cache"),
                      "synthetic_images(80, 16, seed=2)")


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


RANKS_SCRIPT = textwrap.dedent("""
    import json, sys, torch, torch.distributed as dist
    from labkit import distributed
    from labkit.train import Trainer, image_config
    distributed.init_from_env("cpu")
    config = image_config(sys.argv[1], iters=3, image_size=16, ngf=4, ndf=4, batch_size=8,
                          n_critic=2, eval_every=3, eval_samples=16, clip_timing="before")
    trainer = Trainer(config, progress=False)   # DCGAN generator and critic, both with BatchNorm
    trainer.step.reference.critic_phase(100)     # plus the warm-up's 100 critic steps at once
    trainer.run()
    flat = torch.cat([p.detach().reshape(-1) for m in (trainer.generator, trainer.critic)
                      for p in m.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    if dist.get_rank() == 0:
        json.dump({"max_diff": float((gathered[0] - gathered[1]).abs().max()),
                   "moved": float((flat - flat.new_tensor(0)).abs().sum())}, open(sys.argv[2], "w"))
    dist.barrier()  # both ranks reach the teardown together (see the commit that added this)
    dist.destroy_process_group()
""")


def test_ranks_stay_identical_with_batchnorm(cache, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_SCRIPT)
    torchrun(str(script), str(cache.path), str(tmp_path / "result.json"), cwd=tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["max_diff"] == 0.0  # bit for bit: all-reduced gradients, the same update
    assert result["moved"] > 0


def test_two_processes_equal_one_without_batchnorm(cache, tmp_path):
    no_bn = ["--generator", "dcgan-nobn", "--no-critic-batchnorm"]
    out = tmp_path / "ddp"
    torchrun("-m", "labkit", "lsun", "train", "--data", str(cache.path), "--out", str(out),
             *TINY, *no_bn, cwd=Path(__file__).resolve().parents[1])
    ddp = checkpoint.load(out / "checkpoint.pt")
    assert sorted(p.name for p in (out / "samples").iterdir()) == \
        ["iter_000000.png", "iter_000003.png", "real.png"]

    single = Trainer(image_config(cache.path, iters=3, image_size=16, ngf=4, ndf=4, hidden=16,
                                  batch_size=8, n_critic=2, eval_every=3, eval_samples=16,
                                  generator="dcgan-nobn", critic_batchnorm=False),
                     progress=False)
    single.run()
    diffs = {name: max(float((module.state_dict()[k] - ddp[name][k]).abs().max())
                       for k in ddp[name])
             for name, module in (("generator", single.generator), ("critic", single.critic))}
    print(f"max |1-process - 2-process| parameter difference: {diffs}")
    assert max(diffs.values()) < 1e-5
    w_single = [r["w_estimate"] for r in single.history.rows]
    w_ddp = [r["w_estimate"] for r in ddp["history"]["rows"]]
    assert w_ddp == pytest.approx(w_single, rel=1e-4, abs=1e-7)
    torch.testing.assert_close(single.history.evals[-1]["swd"], ddp["history"]["evals"][-1]["swd"],
                               rtol=1e-3, atol=0)
