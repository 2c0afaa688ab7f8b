"""The mode-collapse study: metrics on samples of known coverage, Spearman against scipy, the
table pipeline, resuming, argument errors and the shipped results file."""

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from labkit import cli, study, toys
from labkit.tests.conftest import seeded

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "mode_collapse_study.json"
TINY = {"methods": ("gan", "wgan-sn"), "targets": ("ring",), "n_seeds": 2, "iters": 4,
        "batch_size": 16, "hidden": 8, "depth": 1, "curve_every": 2, "curve_samples": 50,
        "eval_samples": 100, "snapshot_every": 2, "threads": 1}


# --------------------------------------------------------------------------- metrics and table


def _known_coverage(n: int = 2500) -> tuple[torch.Tensor, toys.GaussianMixture]:
    """n samples on the 8-ring: all near centres 0, 1, 2 (equally often), half of them within
    1 std of their centre (high quality), the other half 5 std away (not)."""
    ring = toys.ring()
    k = torch.arange(n) % 3
    direction = torch.nn.functional.normalize(torch.randn(n, 2, generator=seeded(0)), dim=1)
    radius = torch.where(torch.arange(n) % 2 == 0, 1.0, 5.0) * ring.std
    return ring.centers[k] + radius[:, None] * direction, ring


def test_sample_metrics_on_known_coverage():
    samples, ring = _known_coverage()
    real = ring.sample(2500, generator=seeded(1))
    m = study.sample_metrics(samples, real, ring)
    assert m["modes"] == 3
    assert m["hq_percent"] == pytest.approx(50.0)
    # HQ histogram: 3 modes of 8, equally filled, so KL(p || U_8) = log(8 / 3).
    assert m["reverse_kl"] == pytest.approx(math.log(8 / 3), abs=2e-3)
    assert m["w1_exact"] > 1.0  # five of eight modes are missing
    uniform = ring.centers.repeat(10, 1)  # every centre hit equally: reverse KL 0
    u = study.sample_metrics(uniform, real, ring)
    assert (u["modes"], u["hq_percent"], u["reverse_kl"]) == (8, 100.0, 0.0)


def test_summary_table_means_and_standard_errors():
    finals = [{"seed": s, "modes": m, "hq_percent": hq, "reverse_kl": kl, "w1_exact": w}
              for s, (m, hq, kl, w) in enumerate([(3, 50.0, 0.0, 1.0), (5, 30.0, None, 2.0),
                                                  (7, 40.0, 0.2, 3.0)])]
    data = {"methods": {"gan": {"label": "GAN (minimax)"}},
            "runs": {"gan/ring": {"final": finals}}}
    (row,) = study.summary_table(data)
    assert (row["method"], row["target"], row["label"], row["n_seeds"]) == \
        ("gan", "ring", "GAN (minimax)", 3)
    assert row["modes"] == (5.0, pytest.approx(2 / math.sqrt(3)), 3)
    assert row["hq_percent"][:2] == (pytest.approx(40.0), pytest.approx(10 / math.sqrt(3)))
    assert row["reverse_kl"] == (pytest.approx(0.1), pytest.approx(0.1), 2)  # undefined left out
    assert study.format_cell(row["modes"], 1) == "5.0 +- 1.2"
    assert study.format_cell((math.nan, math.nan, 0)) == "-"


def test_mean_se_matches_scipy_sem():
    x = np.random.default_rng(0).normal(size=11)
    mean, se, n = study.mean_se(x)
    assert (mean, se, n) == (pytest.approx(x.mean()), pytest.approx(scipy.stats.sem(x)), 11)


# --------------------------------------------------------------------------- Spearman


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=30).astype(float)  # many ties
    y = x + rng.normal(scale=2.0, size=30)
    assert study.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    np.testing.assert_allclose(study.rankdata(x), scipy.stats.rankdata(x))


def test_spearman_edge_cases():
    assert study.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(study.spearman([1, 1, 1], [1, 2, 3]))  # constant side
    assert study.spearman([1, 2, float("nan"), 3], [1, 2, 5, 3]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x and y must be 1-D of one length"):
        study.spearman([1, 2], [1, 2, 3])


def test_loss_tracking_per_seed():
    curves = {"seed": [0, 0, 0, 0, 1, 1, 1, 1], "iteration": [0, 1, 2, 3] * 2,
              "w_estimate": [-9.0, 3.0, 2.0, 1.0, 9.0, 1.0, 2.0, 3.0],
              "w1_exact": [0.0, 0.3, 0.2, 0.1, 0.0, 0.3, 0.2, 0.1]}  # iteration 0 left out
    (row,) = study.loss_tracking({"runs": {"wgan-gp/grid": {"curves": curves}}})
    assert row["rho"] == [pytest.approx(1.0), pytest.approx(-1.0)]
    assert (row["mean"], row["se"]) == (pytest.approx(0.0), pytest.approx(1.0))


# --------------------------------------------------------------------------- running


def test_study_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    path = tmp_path / "study.json"
    config = study.StudyConfig(**TINY)
    real_run_one = study.run_one
    calls = []

    def interrupted_after_first(cfg, method, target, progress=False):
        calls.append(method)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_one(cfg, method, target, progress)

    monkeypatch.setattr(study, "run_one", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        study.run_study(config, path, progress=False, log=lambda _: None)
    assert list(study.load_results(path)["runs"]) == ["gan/ring"]

    calls.clear()
    monkeypatch.setattr(study, "run_one",
                        lambda *a, **k: calls.append(a[1]) or real_run_one(*a, **k))
    data = study.run_study(config, path, progress=False, log=lambda _: None)
    assert calls == ["wgan-sn"]  # gan/ring was kept, not redone
    assert list(data["runs"]) == ["gan/ring", "wgan-sn/ring"]
    assert data == json.loads(path.read_text())
    run = data["runs"]["wgan-sn/ring"]
    assert [r["seed"] for r in run["final"]] == [0, 1] and run["diverged"] is None
    assert run["curves"]["iteration"] == [0, 0, 2, 2, 4, 4]
    assert [s["iteration"] for s in run["snapshots"]] == [0, 2, 4]
    assert len(run["snapshots"][0]["critic"]) == 400

    with pytest.raises(ValueError, match=r"another config \(iters: file 4, asked 5\)"):
        study.run_study(study.StudyConfig(**{**TINY, "iters": 5}), path, progress=False)


def test_study_command_refuses_a_file_that_is_not_a_study(tmp_path, capsys):
    for text, why in (("{", "invalid JSON"), ("[1]", f"not a study file of format {study.FORMAT}")):
        (tmp_path / "s.json").write_text(text)
        assert cli.main(["study", "--quick", "--out", str(tmp_path / "s.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: path={str(tmp_path / 's.json')!r}") and why in err
        assert err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--iters", "0"], "error: iters=0 is not allowed; it must be an integer >= 1"),
    (["--methods", "wgan", "gan"], "error: methods=['wgan', 'gan'] is not allowed"),
    (["--targets", "ring", "ring"], "error: targets=['ring', 'ring'] is not allowed"),
    (["--first-seed", "-1"], "error: first_seed=-1 is not allowed"),
    (["--n-seeds", "two"], "error: argument --n-seeds: invalid int value: 'two'"),
])
def test_study_command_bad_arguments_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) if "argument" in message else contextlib.nullcontext():
        assert cli.main(["study", "--out", str(tmp_path / "s.json"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "s.json").exists()


# --------------------------------------------------------------------------- shipped file


def test_shipped_results_have_every_method_target_and_seed():
    data = study.load_results(SHIPPED)
    config = study.StudyConfig(**data["config"])
    assert set(config.methods) == set(study.METHODS) and set(config.targets) == set(study.TARGETS)
    assert config.n_seeds >= 8 and config.eval_samples == 2500
    assert data["labkit"] and data["torch"]
    seeds = list(range(config.first_seed, config.first_seed + config.n_seeds))
    for method in study.METHODS:
        for target in study.TARGETS:
            run = data["runs"][f"{method}/{target}"]
            assert [r["seed"] for r in run["final"]] == seeds
            assert all(set(study.TABLE_FIELDS) <= set(r) for r in run["final"])
            assert sorted(set(run["curves"]["seed"])) == seeds
    assert len(study.summary_table(data)) == len(study.METHODS) * len(study.TARGETS)


def test_parallel_jobs_give_the_same_results_as_one_process(tmp_path):
    config = study.StudyConfig(**TINY)
    data = study.run_study(config, tmp_path / "jobs.json", progress=False, log=lambda _: None,
                           jobs=2)
    assert list(data["runs"]) == ["gan/ring", "wgan-sn/ring"]  # table order, not finish order
    assert (data["jobs"], data["threads"]) == (2, 1)
    alone = study.run_one(config, "wgan-sn", "ring")
    for key in ("final", "curves", "snapshots"):
        assert data["runs"]["wgan-sn/ring"][key] == alone[key]
    with pytest.raises(ValueError, match="jobs=0 is not allowed"):
        study.run_study(config, tmp_path / "x.json", jobs=0)


def test_comparison_table_lists_ours_then_published():
    finals = [{"seed": s, "modes": 8, "hq_percent": 50.0 + s, "reverse_kl": 0.01,
               "w1_exact": 0.1} for s in range(2)]
    data = {"config": {"methods": ["wgan-gp"]},
            "methods": {"wgan-gp": {"label": "WGAN-GP (lambda 10)"}},
            "runs": {"wgan-gp/grid": {"final": finals}}}
    lines = study.comparison_lines(data, "grid")
    assert lines[2].split() == ["WGAN-GP", "(lambda", "10)", "8.0", "+-", "0.0", "50.5", "+-",
                                "0.5", "0.01", "+-", "0.00", "0.100", "+-", "0.000"]
    assert lines[-1].split()[-6:] == ["24.8", "+-", "0.2", "93.6", "+-", "0.6"]
    assert len(lines) == 3 + 1 + len(study.PUBLISHED)
    with pytest.raises(ValueError, match="target='line' is not known"):
        study.comparison_lines(data, "line")
