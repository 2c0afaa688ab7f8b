"""Benchmarks that tests can run: the GPU benchmark's CPU smoke mode (``benchmarks/gpu_lsun.py
--smoke``) writes consistent numbers; the study-step benchmark's rates agree with its FLOP count."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from labkit.datasets import iters_for_epochs

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_lsun.py"


@pytest.fixture(scope="module")
def gpu_lsun():
    spec = importlib.util.spec_from_file_location("gpu_lsun", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_lsun"] = module  # so that its LMDB workers find their function by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_lsun", None)


def test_gpu_benchmark_smoke_mode_runs_every_loop_on_the_cpu(gpu_lsun, tmp_path):
    out = tmp_path / "smoke.json"
    gpu_lsun.main(["--smoke", "--out", str(out), "--dir", str(tmp_path / "data")])
    report = json.loads(out.read_text())
    results = report["results"]
    assert set(results) == {"a_reference_on_device", "a_reference_end_to_end", "b_labkit_plain",
                            "c_fast_fp32"}  # bf16 skipped on the CPU, with a note
    assert any("bf16" in note for note in report["notes"])
    base = results["a_reference_on_device"]["it_per_s"]
    for row in results.values():
        assert row["it_per_s"] > 0 and row["peak_gpu_gib"] is None
        assert row["vs_reference_on_device"] == pytest.approx(row["it_per_s"] / base)
        assert row["tflop_per_s"] == pytest.approx(
            report["gflop_per_iteration"] * row["it_per_s"] / 1e3)
    assert results["a_reference_end_to_end"]["vs_reference_end_to_end"] == 1
    assert report["prepare"]["images"] == 160 and report["prepare"]["images_per_s"] > 0
    config = report["config"]
    assert (config["image_size"], config["batch_size"], config["fast"]) == (16, 16, None)
    assert report["projection"]["generator_iterations"] == iters_for_epochs(
        3_033_042 - config["eval_samples"], 25, config["batch_size"], config["n_critic"])
    assert all(goal["met"] is None for goal in report["goals"].values())  # smoke: not judged


def test_gpu_benchmark_makes_its_lmdb_in_parallel_and_stops_at_its_time_limit(gpu_lsun, tmp_path):
    import hashlib
    import io

    from PIL import Image

    from labkit.lsun import LmdbReader

    assert gpu_lsun.make_lmdb(tmp_path / "all", 300, 16, workers=2) == 300
    with LmdbReader(tmp_path / "all") as reader:
        assert len(reader) == 300
        assert set(reader.keys()) == {hashlib.sha1(f"0-{i}".encode()).hexdigest().encode()
                                      for i in range(300)}  # make_fake_lmdb's keys
        for _, value in reader.records(count=5):
            picture = Image.open(io.BytesIO(value))
            assert picture.format == "WEBP" and min(picture.size) == 16
    # out of time at once: it stops at the first whole shard holding at least `minimum`
    made = gpu_lsun.make_lmdb(tmp_path / "some", 100_000, 16, workers=2, seconds=0, minimum=300)
    assert made == 2 * gpu_lsun.SHARD
    with LmdbReader(tmp_path / "some") as reader:
        assert len(reader) == made


def test_study_step_benchmark_reports_consistent_rates():
    spec = importlib.util.spec_from_file_location(
        "study_step", SCRIPT.parent / "study_step.py")
    study_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study_step)
    from labkit import study

    r = study_step.measure("gan", threads=1, iters=1, repeats=1, warmup=0, gemm_repeats=1)
    config = study.StudyConfig(methods=("gan",)).train_config("gan", "ring")
    assert r["flops"] == study.step_flops(config)
    assert r["products"] == 4 + 11 + 8 + 4 + 4 + 3  # 4 layers; see study.step_matmuls
    assert r["achieved"] == pytest.approx(r["flops"] / r["step_s"] / 1e9)
    assert r["percent"] == pytest.approx(100 * r["achieved"] / r["gemm_rate"])
    a, b = study_step.gemm_operands("grad_weight", 2, 5, 3, 4)
    assert torch.bmm(a, b).shape == (2, 3, 4)  # x^T (S, i, B) times grad (S, B, o)
