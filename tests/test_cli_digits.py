"""End-to-end tests of ``python -m labkit digits ...``: the export feeds ``lsun prepare`` as an
LSUN LMDB would, the experiment command writes its results with two worker processes, and bad
input is one line naming the option."""

import json

import numpy as np
import pytest

from labkit import digits, images
from labkit.tests.test_digits import bilinear_enlarge


def test_export_then_prepare_is_the_lsun_users_data_step(tmp_path, cli):
    _, out, _ = cli("digits", "export", "--out", tmp_path / "png", "--quiet")
    assert out.strip().endswith(f"next: python -m labkit lsun prepare --src {tmp_path / 'png'} "
                                "--out CACHE --size 16")
    assert len(list((tmp_path / "png").glob("*.png"))) == 1797
    cli("lsun", "prepare", "--src", tmp_path / "png", "--out", tmp_path / "cache", "--size", 16,
        "--quiet")
    cache = images.open_cache(tmp_path / "cache", 16, verify=True)
    pixels, labels = digits.digit_pixels()
    held = digits.export_order(labels)[-digits.HOLDOUT:]  # the last 300 are the held-out digits
    np.testing.assert_array_equal(cache.images[-digits.HOLDOUT:, 1],
                                  bilinear_enlarge(pixels[held], 16))


def test_export_into_a_foreign_folder_is_one_line(tmp_path, cli):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    status, _, err = cli("digits", "export", "--out", tmp_path / "mine", check=False)
    assert status == 2 and err.count("\n") == 1
    assert "already exists and is not this export of the digits" in err
    status, _, err = cli("digits", "export", "--out", tmp_path / "mine" / "notes.txt",
                         check=False)
    assert status == 2 and "is a file, not a folder" in err


@pytest.mark.parametrize(("args", "message"), [
    (("--iters", "10", "--eval-every", "4"), "--iters must be a multiple of eval_every (4)"),
    (("--arms", "gan/resnet"), "arms must be distinct keys among wgan/dcgan"),
    (("--jobs", "0"), "argument --jobs: '0' is not allowed"),
])
def test_experiment_bad_input_is_one_line(tmp_path, cli, args, message):
    status, _, err = cli("digits", "experiment", "--out", tmp_path / "r.json", "--work",
                         tmp_path / "w", "--grids", tmp_path / "g", *args, check=False)
    assert status == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow  # two spawned worker processes each import torch (about 10 s on two cores)
def test_experiment_with_two_jobs_writes_every_run(tmp_path, cli):
    _, out, _ = cli("digits", "experiment", "--quick", "--out", tmp_path / "r.json", "--work",
                    tmp_path / "w", "--grids", tmp_path / "g", "--jobs", 2, "--arms", "gan/dcgan",
                    "--n-seeds", 2, "--iters", 4, "--eval-every", 4, "--snapshots", 0)
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data["runs"]) == ["gan/dcgan/0", "gan/dcgan/1"]
    assert data["jobs"] == 2 and data["config"]["iters"] == 4
    assert data["command"].startswith("python -m labkit")
    assert "GAN, DCGAN generator" in out and "wrote " in out
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [
        "gan_dcgan_seed0.png", "gan_dcgan_seed0_iter000000.png", "gan_dcgan_seed1.png"]
    runs = data["runs"]
    assert runs["gan/dcgan/0"]["final"] != runs["gan/dcgan/1"]["final"]  # two seeds
