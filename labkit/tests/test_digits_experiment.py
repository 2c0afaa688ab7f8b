"""Tests of labkit.digits_experiment at smoke size: the arms are the paper's settings, the results
file holds every run and resumes, a run stopped by Ctrl-C continues from its checkpoint to the
same result as one made in one go, and the levelling and table rules match hand computations."""

import functools
import json
import math
import os
import signal
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from labkit import digits, metrics
from labkit import digits_experiment as dx


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return digits.prepare_cache(tmp_path_factory.mktemp("work"), 16)


@pytest.fixture(autouse=True)
def small_swd(monkeypatch):
    """The image metric with 8 patches per image and 64 directions instead of 128 and 512, so
    that a smoke run's evaluations take a fraction of a second."""
    monkeypatch.setattr(metrics, "swd_images",
                        functools.partial(metrics.swd_images, per_image=8, n_directions=64))


def quick(**kwargs) -> dx.ExperimentConfig:
    return dx.ExperimentConfig(**{**dx.QUICK, **kwargs})


def test_arms_are_the_papers_settings():
    wgan = dx.ExperimentConfig().train_config("wgan/dcgan-const", 1, "cache")
    assert (wgan.loss, wgan.optimizer, wgan.lr, wgan.clip, wgan.clip_timing, wgan.n_critic,
            wgan.critic_warmup, wgan.constraint) == \
        ("wgan", "rmsprop", 5e-5, 0.01, "after", 5, True, "clip")
    assert (wgan.generator, wgan.ngf, wgan.ndf, wgan.batch_size, wgan.eval_samples, wgan.seed,
            wgan.nz, wgan.critic_batchnorm, wgan.mlp_critic) == \
        ("dcgan-const", 16, 16, 64, 300, 1, 100, True, False)
    gan = dx.ExperimentConfig().train_config("gan/mlp", 0, "cache")
    assert (gan.loss, gan.optimizer, gan.lr, gan.betas, gan.n_critic, gan.critic_warmup,
            gan.constraint, gan.generator, gan.hidden, gan.depth) == \
        ("gan-logd", "adam", 2e-4, (0.5, 0.999), 1, False, "none", "mlp", 512, 3)
    fail = dx.ExperimentConfig().train_config("wgan-mlp-critic/mlp", 0, "cache")
    assert (fail.mlp_critic, fail.lr, fail.loss, fail.clip) == (True, 1e-3, "wgan", 0.01)
    assert len(dx.ARMS) == 9


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arms": ("wgan/resnet",)}, "arms must be distinct keys among"),
    ({"iters": 10, "eval_every": 4}, r"iters must be a multiple of eval_every \(4\)"),
    ({"snapshots": (3,)}, "snapshots must be evaluation iterations"),
    ({"n_seeds": 0}, "n_seeds must be an integer >= 1, got 0"),
    ({"image_size": 24}, "image_size must be a power of two"),
])
def test_bad_config_is_one_line_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        quick(**kwargs)


def test_levelled_off_by_hand():
    # Last third of [0, 30]: t = 20, 25, 30 with v = 10, 9, 8: slope -0.2, drift -0.2 * 10 = -2,
    # relative to the mean 9: -0.222.
    its, values = [0, 5, 10, 15, 20, 25, 30], [50, 40, 30, 20, 10, 9, 8]
    drift, ok = dx.levelled_off(its, values, 0.1)
    assert drift == pytest.approx(-2 / 9) and not ok
    assert dx.levelled_off(its, values, 0.25) == (pytest.approx(-2 / 9), True)
    assert dx.levelled_off(its, values, 2.5, relative=False) == (pytest.approx(-2.0), True)
    assert math.isnan(dx.levelled_off([0, 10], [1, 2], 0.1)[0])


def fake_run(arm, seed, confident, classes, kl, swd=(200, 100, 50, 40), w=(4.0, 3.0, 2.0, 1.0)):
    """A results-file run with evaluations at 0, 500, 1000, 1500 and the estimate there."""
    its = [0, 500, 1000, 1500]
    return {"arm": arm, "seed": seed, "diverged": None,
            "final": {"confident": confident, "classes": classes, "class_kl": kl,
                      "swd": swd[-1]},
            "evals": {"iteration": its, "swd": list(swd)},
            "w": {"iteration": its, "median101": list(w), "raw": list(w)}}


def fake_results(runs):
    return {"config": {"first_seed": 0}, "runs": {f"{r['arm']}/{r['seed']}": r for r in runs}}


def test_run_states_by_the_stated_rules():
    assert dx.run_state(fake_run("gan/mlp", 0, 0.9, 10, 0.01)) == "samples"
    assert dx.run_state(fake_run("gan/mlp", 0, 0.2, 10, 0.01)) == "poor"
    assert dx.run_state(fake_run("gan/mlp", 0, 0.05, 10, 0.01)) == "no samples"
    assert dx.run_state(fake_run("gan/mlp", 0, 0.9, 7, 0.01)) == "collapsed"
    assert dx.run_state(fake_run("gan/mlp", 0, 0.9, 10, 0.5)) == "collapsed"
    assert dx.run_state(fake_run("gan/mlp", 0, None, 0, None)) == "no samples"
    assert dx.run_state({**fake_run("gan/mlp", 0, 0.9, 10, 0.01), "diverged": "x"}) == \
        "no samples"


def test_verdicts_hold_fail_or_cannot_be_decided_by_the_rules():
    falling, rising = (4.0, 3.0, 2.0, 1.0), (1.0, 2.0, 3.0, 4.0)
    data = fake_results([
        *(fake_run("wgan/dcgan", s, 0.5, 10, 0.1, w=falling) for s in (0, 1)),  # tracks: 1.0
        fake_run("wgan/mlp", 0, 0.4, 10, 0.1, w=falling),
        fake_run("wgan/mlp", 1, 0.4, 10, 0.1, w=rising),  # rho -1: the mean is 0 < 0.5
        *(fake_run("gan/dcgan", s, 0.6, 10, 0.1, w=rising) for s in (0, 1)),
        *(fake_run("gan/mlp", s, 0.8, 2, 1.6, w=rising) for s in (0, 1)),
        *(fake_run("wgan/dcgan-nobn", s, 0.35, 10, 0.1) for s in (0, 1)),
        fake_run("gan/dcgan-nobn", 0, 0.0, 0, None), fake_run("gan/dcgan-nobn", 1, 0.4, 10, 0.1),
        *(fake_run("wgan-mlp-critic/mlp", s, 0.98, 1, 2.3, w=(9.0, 0.0, 0.0, 0.0))
          for s in (0, 1))])
    found = dx.verdicts(data)
    assert found["Figure 3, top"]["verdict"] == "cannot be decided here"  # mlp: mean rho 0
    assert found["Figure 4"]["verdict"] == "holds here"  # JS rises while the SWD falls
    assert found["Figure 5"]["verdict"] == "holds here"
    assert found["Figure 6 (the authors' code's generator)"]["verdict"] == \
        "cannot be decided here"  # one GAN seed failed, the other learned
    assert found["Figure 7"]["verdict"] == "holds here"  # 2 classes, KL 1.6: collapsed
    assert found["Figure 3, bottom"]["verdict"] == "holds here"  # constant digits, flat at 0
    assert "Figure 6 (the paper's generator)" not in found  # not run
    assert "Spearman(estimate, SWD) 0.00 +- 1.00" in found["Figure 3, top"]["lines"][0]
    failing = fake_results([fake_run(f"{loss}/mlp", 0, 0.5, 10, 0.1)
                            for loss in ("wgan", "gan")])
    assert dx.verdicts(failing)["Figure 7"]["verdict"] == "fails here"  # no collapse


def _interrupt_at(iteration):
    def callback(event):
        if event.name == "eval" and event.iteration == iteration:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the trainer saves and stops
    return callback


def test_a_stopped_run_continues_from_its_checkpoint_to_the_one_go_result(cache, tmp_path):
    config = quick()
    one_go = dx.run_one(config, "wgan/dcgan", 0, cache.path, tmp_path / "a", tmp_path / "ga")
    stopped = dx.run_one(config, "wgan/dcgan", 0, cache.path, tmp_path / "b", tmp_path / "gb",
                         callbacks=(_interrupt_at(6),))
    folder = dx.run_folder(tmp_path / "b", "wgan/dcgan", 0)
    assert stopped is None and (folder / "checkpoint.pt").is_file()
    assert (folder / "INCOMPLETE").is_file()
    resumed = dx.run_one(config, "wgan/dcgan", 0, cache.path, tmp_path / "b", tmp_path / "gb")
    assert not (folder / "INCOMPLETE").exists()
    for part in ("final", "evals", "w", "levelled", "iterations"):
        assert resumed[part] == one_go[part], part
    assert one_go["evals"]["iteration"] == [0, 6, 12]
    assert set(one_go["final"]) == {"iteration", "swd", "w_estimate_eval", "classes",
                                    "confident", "class_kl"}
    assert 0 <= one_go["final"]["classes"] <= 10 and one_go["final"]["swd"] > 0
    assert len(one_go["w"]["raw"]) == 12 // config.w_every
    assert (tmp_path / "gb" / dx.grid_name("wgan/dcgan", 0)).read_bytes() == \
        (tmp_path / "ga" / dx.grid_name("wgan/dcgan", 0)).read_bytes()
    assert {p.name for p in (tmp_path / "ga").iterdir()} == {
        "wgan_dcgan_seed0.png", "wgan_dcgan_seed0_iter000000.png",
        "wgan_dcgan_seed0_iter000006.png"}
    grid = dx.load_grid(tmp_path / "ga", "wgan/dcgan", 0)
    assert grid.shape == (146, 146, 3) and grid.dtype == np.uint8  # 8 x 8 digits, 2-px gaps
    np.testing.assert_array_equal(dx.load_grid(tmp_path / "ga", "wgan/dcgan", 0, rows=4),
                                  grid[:2 + 4 * 18])
    assert dx.load_grid(tmp_path / "ga", "gan/dcgan", 0) is None


def test_results_file_holds_every_run_and_a_rerun_keeps_them(cache, tmp_path):
    config = quick(arms=("gan/dcgan", "gan/mlp"), n_seeds=2, iters=6)
    path, lines = tmp_path / "results.json", []
    work = cache.path.parent  # the cache is already there: prepare_cache keeps it
    data = dx.run_experiment(config, path, work, tmp_path / "grids", progress=False,
                             log=lines.append, command="python -m labkit digits experiment -x")
    assert list(data["runs"]) == ["gan/dcgan/0", "gan/dcgan/1", "gan/mlp/0", "gan/mlp/1"]
    saved = dx.load_results(path)
    assert saved == json.loads(json.dumps(data))
    assert saved["command"] == "python -m labkit digits experiment -x"
    assert saved["labkit"] and saved["config"] == config.to_dict()
    base = saved["baselines"]
    assert base["classifier"]["accuracy"] >= 0.95
    assert (base["one class"]["classes"], base["one class"]["class_kl"]) == \
        (1, pytest.approx(math.log(10), abs=1e-4))
    assert base["real"]["swd"] < base["mean+noise"]["swd"]
    mtime = path.stat().st_mtime_ns
    again = dx.run_experiment(config, path, work, tmp_path / "grids", progress=False,
                              log=lines.append)
    assert again["runs"] == saved["runs"] and path.stat().st_mtime_ns == mtime
    assert lines[-1] == "4 of 4 runs done before, kept"
    with pytest.raises(ValueError, match="holds an experiment with another config .*iters"):
        dx.run_experiment(quick(arms=("gan/dcgan", "gan/mlp"), n_seeds=2, iters=12), path,
                          work, tmp_path / "grids", progress=False)
    rows = dx.summary_table(saved)
    assert [r["arm"] for r in rows] == ["gan/dcgan", "gan/mlp", "real", "mean+noise",
                                        "one class"]
    swd = [saved["runs"][f"gan/mlp/{s}"]["final"]["swd"] for s in (0, 1)]
    assert rows[1]["swd"] == (pytest.approx(np.mean(swd)),
                              pytest.approx(np.std(swd, ddof=1) / math.sqrt(2)), 2)
    assert rows[2]["classes"][:2] == (base["real"]["classes"], pytest.approx(math.nan,
                                                                              nan_ok=True))
    assert dx.table_lines(saved)[2].startswith("GAN, DCGAN generator")


def test_in_parallel_starts_no_run_after_a_stopped_one():
    # Four runs on two workers; the second returns None (Ctrl-C: it saved and stopped). The
    # third may already be running beside it, the fourth must never start.
    started, saved = [], []
    results = {"a": {"run": "a"}, "b": None, "c": {"run": "c"}, "d": {"run": "d"}}

    def start(key):
        started.append(key)
        future = Future()
        future.set_result(results[key])
        return future

    with pytest.raises(KeyboardInterrupt):
        dx.in_parallel(["a", "b", "c", "d"], 2, start, saved.append)
    assert started == ["a", "b"] and saved == [{"run": "a"}]
    started.clear()
    dx.in_parallel(["a", "c", "d"], 2, start, saved.append)
    assert started == ["a", "c", "d"] and len(saved) == 4


def test_load_results_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no experiment results file"):
        dx.load_results(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"format": 1}')
    with pytest.raises(ValueError, match="not a digits experiment file"):
        dx.load_results(tmp_path / "x.json")


SHIPPED = Path(__file__).resolve().parents[2] / "data" / "digits_experiment.json"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="the full experiment has not been run yet "
                                                  "(python -m labkit digits experiment --jobs 2)")
def test_shipped_results_have_every_arm_and_seed_and_their_grids():
    data = dx.load_results(SHIPPED)
    config = dx.ExperimentConfig(**data["config"])
    assert set(config.arms) == set(dx.ARMS) and config.n_seeds >= 3 and config.n_count >= 1000
    assert data["labkit"] and data["torch"] and data["command"].startswith("python -m labkit")
    seeds = range(config.first_seed, config.first_seed + config.n_seeds)
    assert list(data["runs"]) == [f"{a}/{s}" for a in config.arms for s in seeds]
    for run in data["runs"].values():
        assert run["iterations"] == config.iters and set(dx.TABLE_FIELDS) <= set(run["final"])
        assert run["evals"]["iteration"][-1] == config.iters
        assert (SHIPPED.parent / "digits" / dx.grid_name(run["arm"], run["seed"])).is_file()
    assert data["baselines"]["classifier"]["accuracy"] >= 0.95
