"""The mode-collapse study: metrics on samples of known coverage, the baselines against scipy and
analytic %HQ, the convergence criterion on synthetic curves, the optimiser-step cosine against the
step an optimiser really takes, Spearman against scipy, the table pipeline, resuming inside a run,
argument errors and the shipped results file."""

import contextlib
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.spatial
import scipy.stats
import torch

from labkit import cli, metrics, rundir, study, toys
from labkit.tests.conftest import seeded
from labkit.train import TrainConfig, Trainer

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "mode_collapse_study.json"
TINY = {"methods": ("gan", "wgan-sn"), "targets": ("ring",), "n_seeds": 2, "iters": 12,
        "batch_size": 16, "hidden": 8, "depth": 1, "curve_every": 2, "curve_samples": 50,
        "eval_samples": 100, "snapshot_every": 4, "checkpoint_every": 4, "threads": 1}


def quiet(_line: str) -> None:
    pass


def lsa_w1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W1 between two equal-size uniform clouds by scipy's assignment solver."""
    cost = scipy.spatial.distance.cdist(x.double().numpy(), y.double().numpy())
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


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


def _finals(rows):
    return [{"seed": s, "modes": m, "hq_percent": hq, "reverse_kl": kl, "w1_exact": w}
            for s, (m, hq, kl, w) in enumerate(rows)]


def test_summary_table_means_and_standard_errors():
    data = {"methods": {"gan": {"label": "GAN (minimax)"}},
            "runs": {"gan/ring": {"final": _finals([(3, 50.0, 0.0, 1.0), (5, 30.0, None, 2.0),
                                                    (7, 40.0, 0.2, 3.0)])}},
            "baselines": {"floor/ring": {"final": _finals([(8, 99.0, 0.0, 0.1)] * 2)}}}
    row, floor = study.summary_table(data)
    assert (row["method"], row["target"], row["label"], row["n_seeds"], row["kind"]) == \
        ("gan", "ring", "GAN (minimax)", 3, "method")
    assert row["modes"] == (5.0, pytest.approx(2 / math.sqrt(3)), 3)
    assert row["hq_percent"][:2] == (pytest.approx(40.0), pytest.approx(10 / math.sqrt(3)))
    assert row["reverse_kl"] == (pytest.approx(0.1), pytest.approx(0.1), 2)  # undefined left out
    assert (floor["method"], floor["kind"], floor["w1_exact"]) == ("floor", "baseline",
                                                                   (0.1, 0.0, 2))
    assert study.format_cell(row["modes"], 1) == "5.0 +- 1.2"
    assert study.format_cell((math.nan, math.nan, 0)) == "-"


def test_mean_se_matches_scipy_sem():
    x = np.random.default_rng(0).normal(size=11)
    mean, se, n = study.mean_se(x)
    assert (mean, se, n) == (pytest.approx(x.mean()), pytest.approx(scipy.stats.sem(x)), 11)


def test_captures_modes_needs_both_columns_beyond_the_standard_error():
    support = {"hq_percent": (6.0, 0.3, 8), "w1_exact": (0.39, 0.004, 8)}
    good = {"hq_percent": (30.0, 5.0, 8), "w1_exact": (0.20, 0.02, 8)}
    assert study.captures_modes(good, support)
    # better %HQ but W1 within the combined error (0.39 - 0.37 = 0.02 < sqrt(0.02^2 + 0.004^2))
    assert not study.captures_modes({**good, "w1_exact": (0.37, 0.02, 8)}, support)
    assert not study.captures_modes({**good, "hq_percent": (7.0, 1.0, 8)}, support)  # 1 < 1.04


@pytest.mark.parametrize("verdict, modes, hq, w1, kind", [
    ("oscillating", 2.0, 1.0, 1.5, "unconverged: swinging"),
    ("falling", 7.0, 30.0, 0.2, "unconverged: still moving"),
    ("converged", 8.0, 30.0, 0.20, "captures the modes"),
    ("converged", 2.0, 90.0, 1.40, "converged onto few modes"),  # VEEGAN's GAN row
    ("converged", 7.5, 3.0, 0.39, "converged, spread between the modes"),
    ("converged", 0.0, 0.0, 2722.0, "converged, away from the data"),  # frozen far away
    ("unsettled", 7.0, 3.0, 0.40, "unconverged: still moving"),
])
def test_collapse_kind_names_what_the_numbers_show(verdict, modes, hq, w1, kind):
    support = {"modes": (8.0, 0.0, 8), "hq_percent": (7.6, 0.1, 8), "w1_exact": (0.38, 0.002, 8)}
    row = {"modes": (modes, 0.3, 8), "hq_percent": (hq, 1.0, 8), "w1_exact": (w1, 0.01, 8)}
    assert study.collapse_kind(row, support, verdict, 8) == kind


# --------------------------------------------------------------------------- baselines


def test_floor_w1_agrees_with_scipy_assignment_on_the_same_points():
    config = study.StudyConfig(targets=("ring", "grid"), n_seeds=2, eval_samples=300)
    rows = study.baselines(config)
    for target in ("ring", "grid"):
        for seed, row in zip(config.seeds, rows[f"floor/{target}"]["final"], strict=True):
            fake, real = study.baseline_points("floor", target, 300, seed)
            assert row["seed"] == seed
            assert row["w1_exact"] == pytest.approx(lsa_w1(fake, real), rel=1e-4)
            assert row["w1_exact"] > 0.01  # two real samples of 300 are not the same points


def test_support_spread_is_the_least_w1_of_the_candidates_by_scipy():
    candidates = [0.0, 0.05, 0.3]
    search = study.choose_spread("ring", 200, seeds=(1000,), candidates=candidates)
    truth = [lsa_w1(*study.baseline_points("support only", "ring", 200, 1000, c))
             for c in candidates]
    assert search["w1"] == pytest.approx(truth, rel=1e-9)
    assert search["spread"] == candidates[int(np.argmin(truth))]
    assert search["seeds"] == [1000]


def _ring_support_hq(spread: float, r0: float = 2.0, r: float = 0.06, modes: int = 8) -> float:
    """Expected high-quality fraction of support-only points on the ring, by integration: a
    point at radius R and angle phi from its nearest centre (R0, 0) is within r of it iff
    R^2 + R0^2 - 2 R R0 cos(phi) < r^2, an arc |phi| < phi*(R); the angle is uniform."""
    def arc(radius):
        c = (radius**2 + r0**2 - r**2) / (2 * radius * r0)
        return math.acos(c) if c < 1 else 0.0

    if spread == 0:
        return modes * 2 * arc(r0) / (2 * math.pi)
    integrand = lambda x: modes * 2 * arc(x) / (2 * math.pi) * scipy.stats.norm.pdf(  # noqa: E731
        x, r0, spread)
    return scipy.integrate.quad(integrand, r0 - r, r0 + r, points=[r0])[0]


@pytest.mark.parametrize("spread", [0.0, 0.02, 0.05])
def test_support_only_ring_covers_every_mode_at_the_analytic_hq(spread):
    ring, n = toys.ring(), 200_000
    points = study.support_only_points("ring", n, spread, seeded(3))
    coverage = metrics.mode_coverage(points, ring.centers, ring.std)
    expected = _ring_support_hq(spread)
    assert coverage.modes == 8
    assert coverage.hq_fraction == pytest.approx(expected, abs=4 * math.sqrt(expected / n))
    if spread == 0:  # on the circle: the arc of a disc of radius 3 std, 8 arccos(1 - r^2/8) / pi
        assert expected == pytest.approx(8 * math.acos(1 - 0.06**2 / 8) / math.pi)


def test_support_only_grid_hq_is_the_area_of_the_discs():
    grid, n, half = toys.grid(), 200_000, 4.6
    points = study.support_only_points("grid", n, half, seeded(4))
    assert float(points.abs().max()) <= half
    coverage = metrics.mode_coverage(points, grid.centers, grid.std)
    expected = 25 * math.pi * (3 * grid.std) ** 2 / (2 * half) ** 2
    assert coverage.modes == 25
    assert coverage.hq_fraction == pytest.approx(expected, abs=4 * math.sqrt(expected / n))


def test_study_baseline_rows_cover_every_mode():
    config = study.StudyConfig(targets=("ring",), n_seeds=3, eval_samples=800)
    rows = study.baselines(config)
    support = rows["support only/ring"]
    assert support["spread"] in study.SPREADS["ring"]
    assert all(r["modes"] == 8 for r in support["final"])
    floor = rows["floor/ring"]["final"]
    # a real sample: P(|x - centre| < 3 std) = 1 - exp(-9/2) for a 2-D Gaussian
    p = 1 - math.exp(-4.5)
    assert np.mean([r["hq_percent"] for r in floor]) == pytest.approx(
        100 * p, abs=300 * math.sqrt(p * (1 - p) / 2400))  # 3 standard errors


# --------------------------------------------------------------------------- convergence

T = np.arange(0, 6001, 100)


def _curves(level=0.4, drift=0.0, noise=0.0, seed=0, seeds=8):
    """Synthetic W1 curves: ``drift`` = relative change over the last quarter (linear in t)."""
    rng = np.random.default_rng(seed)
    trend = level * (1 + drift * (T - T[-1] * 0.875) / (T[-1] / 4))
    return trend + noise * level * rng.normal(size=(seeds, len(T)))


def test_convergence_flat_curves_pass():
    c = study.convergence(T, _curves(noise=0.01))
    assert c["verdict"] == "converged" and c["converged"]
    assert c["level"] == pytest.approx(0.4, rel=0.01) and c["points"] == 16
    assert c["bound"] < 0.05 and c["fluctuation"] == pytest.approx(0.01, rel=0.3)


def test_convergence_a_drift_fails():
    c = study.convergence(T, _curves(drift=-0.2, noise=0.01))
    assert c["verdict"] == "falling" and not c["converged"]
    assert c["drift"] / c["level"] == pytest.approx(-0.2, abs=0.02)
    assert study.convergence(T, _curves(drift=0.1, noise=0.01))["verdict"] == "rising"


@pytest.mark.parametrize("noise", [0.02, 0.05, 0.1, 0.2, 0.4])
def test_convergence_noise_around_a_drift_fails(noise):
    # A 10% drift hidden in noise of every size, over many draws: never "converged".
    verdicts = {study.convergence(T, _curves(drift=-0.1, noise=noise, seed=k))["verdict"]
                for k in range(40)}
    assert "converged" not in verdicts


def test_convergence_swinging_seeds_are_oscillating():
    rng = np.random.default_rng(1)
    phases = rng.uniform(0, 2 * np.pi, size=(8, 1))
    swings = 1.0 + 0.5 * np.sin(T / 200 + phases)  # each seed swings by +-50%, no common trend
    c = study.convergence(T, swings)
    assert c["verdict"] == "oscillating" and c["fluctuation"] > 0.2


def test_convergence_smooth_seeds_drifting_apart_are_unsettled():
    drifts = np.array([-0.3, 0.3, -0.25, 0.25])[:, None]  # each seed smooth, no common trend
    c = study.convergence(T, 1.0 + drifts * (T - T[-1] * 0.875) / (T[-1] / 4))
    assert c["verdict"] == "unsettled" and c["fluctuation"] < 1e-9 and abs(c["drift"]) < 1e-9


def test_convergence_refuses_what_it_cannot_judge():
    with pytest.raises(ValueError, match="values must be an array"):
        study.convergence(T, _curves(seeds=1))
    with pytest.raises(ValueError, match="at least 3 there"):
        study.convergence([0, 10, 20], [[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="values must be finite"):
        study.convergence([0, 1, 2, 3, 4, 5], [[1, 1, 1, 1, 1, math.nan]] * 2)
    run = {"diverged": None, "curves": {"iteration": [0, 1, 0, 1], "seed": [0, 0, 1, 1],
                                        "w1_exact": [1.0, 1.0, 1.0, 1.0]}}
    assert study.run_convergence(run)["verdict"] == "undecided"
    assert study.run_convergence({**run, "diverged": "diverged at 3"})["verdict"] == "diverged"


# --------------------------------------------------------------------------- the Adam cosine


@pytest.mark.parametrize("optimizer, kwargs", [
    (torch.optim.Adam, {"lr": 1e-2, "betas": (0.9, 0.999)}),
    (torch.optim.RMSprop, {"lr": 1e-2}),
    (torch.optim.SGD, {"lr": 0.1}),
])
def test_update_cosine_is_that_of_the_step_the_optimizer_takes(optimizer, kwargs):
    S = 3
    w = torch.nn.Parameter(torch.randn(S, 4, 5, dtype=torch.float64, generator=seeded(0)))
    b = torch.nn.Parameter(torch.randn(S, 1, 5, dtype=torch.float64, generator=seeded(1)))
    opt = optimizer([w, b], **kwargs)
    assert all(math.isnan(c) for c in study.update_cosine(opt, S))  # no step yet
    direction = torch.randn(S, 4, 5, dtype=torch.float64, generator=seeded(2))
    cosines = []
    for k in range(6):  # the gradient flips after 4 steps: momentum then points uphill
        opt.zero_grad()
        sign = 1.0 if k < 4 else -1.0
        (sign * (w * direction).sum() + 1e-3 * (b**2).sum()).backward()
        before = [w.detach().clone(), b.detach().clone()]
        opt.step()
        step = torch.cat([(w - before[0]).reshape(S, -1), (b - before[1]).reshape(S, -1)], 1)
        grad = torch.cat([w.grad.reshape(S, -1), b.grad.reshape(S, -1)], 1)
        truth = torch.nn.functional.cosine_similarity(step.detach(), -grad, dim=1)
        cosines.append(study.update_cosine(opt, S))
        assert cosines[-1] == pytest.approx(truth.tolist(), abs=1e-9)
    if optimizer is torch.optim.Adam:
        assert max(cosines[4]) < 0  # the paper's sign of trouble
    else:
        assert min(min(c) for c in cosines) > 0


def test_critic_lag_measure_leaves_training_untouched_and_finds_a_better_critic():
    config = study.StudyConfig(**{**TINY, "methods": ("wgan-gp",), "lag_steps": 3})
    with_lag = study.run_one(config, "wgan-gp", "ring")
    alone = study.run_one(study.StudyConfig(**{**TINY, "methods": ("wgan-gp",)}), "wgan-gp",
                          "ring")
    assert with_lag["final"] == alone["final"]
    assert {k: v for k, v in with_lag["curves"].items() if k != "w_estimate_retrained"} == \
        alone["curves"]
    fast = TrainConfig(**{**config.train_config("wgan-gp", "ring").to_dict(), "lr": 1e-2})
    trainer = Trainer(fast, progress=False)
    running = study.evaluation._estimate("wgan", trainer.critic, trainer.evaluator.real,
                              trainer.generator(trainer.evaluator.z).detach())
    retrained = study.retrained_estimate(trainer, 60)
    assert (retrained > running + 0.2).all()  # an untrained critic is far from its optimum
    assert trainer.iteration == 0 and trainer.opt_critic.state == {}  # the copy trained


# --------------------------------------------------------------------------- Spearman


@pytest.mark.parametrize("seed", range(5))
def test_spearman_is_the_rank_formula_without_ties(seed):
    # Without ties rho = 1 - 6 sum d_i^2 / (n (n^2 - 1)), d_i the difference of the two ranks.
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=30), rng.normal(size=30)
    d = np.argsort(np.argsort(x)) - np.argsort(np.argsort(y))
    assert study.spearman(x, y) == pytest.approx(1 - 6 * (d @ d) / (30 * (30**2 - 1)), abs=1e-12)


def test_spearman_with_ties_by_hand():
    # ranks of x: 1, 2.5, 2.5, 4 (the tie shares ranks 2 and 3); of y: 1, 2, 3, 4
    # centred: (-1.5, 0, 0, 1.5) and (-1.5, -0.5, 0.5, 1.5): rho = 4.5 / sqrt(4.5 * 5)
    assert study.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_an_exact_one_half_is_one_half():
    # ranks d = (-2, 0, 2, -1, 1): rho = 1 - 6 * 10 / 120 = 0.5 exactly; scipy's float gives
    # 0.49999999999999994, which would fail the study's "tracks if rho >= 0.5" rule
    assert scipy.stats.spearmanr([1, 2, 3, 4, 5], [3, 2, 1, 5, 4]).statistic < 0.5
    assert study.spearman([1, 2, 3, 4, 5], [3, 2, 1, 5, 4]) == 0.5


def test_spearman_edge_cases():
    assert study.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(study.spearman([1, 1, 1], [1, 2, 3]))  # constant side


@pytest.mark.parametrize("call, message", [
    (lambda: study.spearman([1, 2, float("nan")], [1, 2, 3]), "x must be finite numbers"),
    (lambda: study.spearman([1, 2, 3], [1, float("inf"), 3]), "y must be finite numbers"),
    (lambda: study.spearman([1, 2], [1, 2, 3]), "y must be as many values as x"),
    (lambda: study.spearman([1], [1]), "x must be at least 2 values"),
    (lambda: study.spearman([[1, 2]], [[1, 2]]), "x must be a 1-D sequence"),
    (lambda: study.spearman(["a", "b"], [1, 2]), "x must be an array of real numbers"),
    (lambda: study.mean_se([1.0, float("nan")]), "values must be finite numbers"),
    (lambda: study.mean_se([1.0, float("inf")]), r"values must be finite numbers.*inf at index 1"),
    (lambda: study.summary_table({"runs": []}), "data must be study results"),
    (lambda: study.summary_table({"methods": {"gan": {}}, "runs": {"gan/line": {"final": []}}}),
     "runs keyed 'method/target'"),
    (lambda: study.summary_table({"methods": {"gan": {"label": "GAN"}}, "runs": {
        "gan/ring": {"final": _finals([(3, 50.0, 0.1, float("nan"))])}}}),
     r"data\['runs'\]\['gan/ring'\]\['final'\]\[0\]\['w1_exact'\] must be a finite number"),
    (lambda: study.loss_tracking([]), "data must be study results"),
    (lambda: study.comparison_lines({"methods": {}, "runs": {}}, "line"),
     "target must be one of ring, grid"),
])
def test_numeric_entry_points_refuse_non_finite_and_wrong_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_loss_tracking_per_seed_and_the_range_of_w1():
    curves = {"seed": [0, 0, 0, 0, 1, 1, 1, 1], "iteration": [0, 1, 2, 3] * 2,
              "w_estimate": [-9.0, 3.0, 2.0, 1.0, 9.0, 1.0, 2.0, None],
              "w1_exact": [0.0, 0.3, 0.2, 0.1, 0.0, 0.3, 0.2, 0.1]}  # iteration 0 left out
    data = {"methods": {"wgan-gp": {"label": "WGAN-GP"}},
            "runs": {"wgan-gp/grid": {"curves": curves, "final": []}}}
    (row,) = study.loss_tracking(data)
    assert row["rho"] == [pytest.approx(1.0), pytest.approx(-1.0)]  # the None pair left out
    assert row["w1_range"] == [pytest.approx(0.2 / 0.2), pytest.approx(0.1 / 0.25)]
    assert (row["mean"], row["se"]) == (pytest.approx(0.0), pytest.approx(1.0))


# --------------------------------------------------------------------------- running


def test_study_stopped_inside_a_run_resumes_to_the_results_of_one_go(tmp_path, monkeypatch):
    config = study.StudyConfig(**TINY)
    whole = study.run_study(config, tmp_path / "whole.json", progress=False, log=quiet,
                            work=tmp_path / "w1")
    assert not (tmp_path / "w1").exists()  # finished runs' folders are removed

    record, stopped = study.evaluation._Recorder.__call__, []

    def ctrl_c_in_the_second_run(self, event):  # a real SIGINT, mid-run
        record(self, event)
        if event.name == "eval" and event.iteration == 6 \
                and event.trainer.config.constraint == "sn" and not stopped:
            stopped.append(event.iteration)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(study.evaluation._Recorder, "__call__", ctrl_c_in_the_second_run)
    path, work = tmp_path / "study.json", tmp_path / "w2"
    with pytest.raises(KeyboardInterrupt, match="wgan-sn/ring stopped at iteration 6"):
        study.run_study(config, path, progress=False, log=quiet, work=work)
    assert list(study.load_results(path)["runs"]) == ["gan/ring"]
    assert study.progress_report(config, path, work) == (
        f"{str(path)!r} holds 1 of 2 finished (method, target) runs; checkpoints in "
        f"{str(work)!r}: wgan-sn/ring at iteration 6")  # saved at the stop, not at 4

    again = study.run_study(config, path, progress=False, log=quiet, work=work)
    for key in whole["runs"]:
        for field in ("final", "curves", "snapshots", "convergence", "iterations"):
            assert again["runs"][key][field] == whole["runs"][key][field], (key, field)
    assert again["baselines"] == whole["baselines"]
    run = again["runs"]["wgan-sn/ring"]
    assert run["curves"]["iteration"] == [t for t in range(0, 13, 2) for _ in (0, 1)]
    assert [s["iteration"] for s in run["snapshots"]] == [0, 4, 8, 12]
    assert len(run["snapshots"][0]["critic"]) == 400
    assert not work.exists()

    with pytest.raises(ValueError, match=r"another config \(iters: file 12, asked 13\)"):
        study.run_study(study.StudyConfig(**{**TINY, "iters": 13}), path, progress=False)


def test_study_command_ctrl_c_says_what_was_kept_and_how_to_go_on(tmp_path, monkeypatch,
                                                                 capsys):
    record = study.evaluation._Recorder.__call__

    def ctrl_c_at_iteration_6(self, event):  # a real SIGINT, inside the first run
        record(self, event)
        if event.name == "eval" and event.iteration == 6:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(study.evaluation._Recorder, "__call__", ctrl_c_at_iteration_6)
    monkeypatch.chdir(tmp_path)
    argv = ["study", "--out", "s.json", "--jobs", "1", "--quiet",
            *[f for k, v in TINY.items() for f in
              ("--" + k.replace("_", "-"), *(v if isinstance(v, tuple) else [str(v)]))]]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err == ("interrupted: 's.json' holds 0 of 2 finished (method, target) runs; "
                   "checkpoints in 'runs/s': gan/ring at iteration 6; continue with: "
                   f"{study.command_line(argv)}\n")


def test_a_runs_seconds_count_its_training_once(monkeypatch):
    record = study.evaluation._Recorder.__call__

    def slow_evaluation(self, event):  # 0.2 s inside training at each evaluation
        record(self, event)
        if event.name == "eval":
            time.sleep(0.2)

    monkeypatch.setattr(study.evaluation._Recorder, "__call__", slow_evaluation)
    started = time.perf_counter()
    run = study.run_one(study.StudyConfig(**TINY), "gan", "ring")
    wall = time.perf_counter() - started
    slept = 0.2 * len(set(run["curves"]["iteration"]))  # 7 evaluations: 1.4 s
    assert slept <= run["seconds"] <= wall  # the old sum counted the training twice


def test_parallel_jobs_give_the_same_results_as_one_process(tmp_path):
    config = study.StudyConfig(**TINY)
    data = study.run_study(config, tmp_path / "jobs.json", progress=False, log=quiet, jobs=2,
                           work=tmp_path / "w")
    assert list(data["runs"]) == ["gan/ring", "wgan-sn/ring"]  # table order, not finish order
    assert data["jobs"] == 2
    alone = study.run_one(config, "wgan-sn", "ring")
    for key in ("final", "curves", "snapshots"):
        assert data["runs"]["wgan-sn/ring"][key] == alone[key]
    with pytest.raises(ValueError, match="jobs must be an integer >= 1, got 0"):
        study.run_study(config, tmp_path / "x.json", jobs=0)


def test_a_second_study_on_the_same_file_is_refused(tmp_path, capsys):
    out = tmp_path / "s.json"
    with rundir.claim_file(out, "--out", "study"):
        assert cli.main(["study", "--quick", "--out", str(out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --out {str(out)!r} is in use by another study (process "
                   f"{os.getpid()}); wait for it to end or choose another --out\n")
    assert not out.exists()


def test_study_command_refuses_a_file_that_is_not_a_study(tmp_path, capsys):
    for text, why in (("{", "invalid JSON"), ("[1]", f"not a study file of format {study.FORMAT}"),
                      ('{"format": 1}', "a study file of format 1, from another labkit")):
        (tmp_path / "s.json").write_text(text)
        assert cli.main(["study", "--quick", "--out", str(tmp_path / "s.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: path={str(tmp_path / 's.json')!r}") and why in err
        assert err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--iters", "0"], "error: --iters must be an integer >= 1, got 0"),
    (["--methods", "wgan", "gan"], "error: --methods must be distinct values among gan, "),
    (["--targets", "ring", "ring"], "error: --targets must be distinct values among ring, grid"),
    (["--first-seed", "-1"], "error: --first-seed must be an integer >= 0, got -1"),
    (["--n-seeds", "two"], "error: argument --n-seeds: invalid int value: 'two'"),
    (["--jobs", "0"], "error: argument --jobs: '0' is not allowed"),
])
def test_study_command_bad_arguments_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) if "argument" in message else contextlib.nullcontext():
        assert cli.main(["study", "--out", str(tmp_path / "s.json"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "s.json").exists()


def test_comparison_table_lists_ours_then_baselines_then_published():
    finals = _finals([(8, 50.0 + s, 0.01, 0.1) for s in range(2)])
    data = {"config": {"methods": ["wgan-gp"]},
            "methods": {"wgan-gp": {"label": "WGAN-GP (lambda 10)"}},
            "runs": {"wgan-gp/grid": {"final": finals, "diverged": None, "curves": {
                "iteration": [0, 0], "seed": [0, 1], "w1_exact": [1.0, 1.0]}}},
            "baselines": {"floor/grid": {"final": _finals([(25, 99.0, 0.0, 0.2)] * 2)},
                          "support only/grid": {"final": _finals([(23, 2.0, 0.3, 0.7)] * 2),
                                                "spread": 4.6}}}
    lines = study.comparison_lines(data, "grid")
    assert lines[2].split() == ["WGAN-GP", "(lambda", "10)", "8.0", "+-", "0.0", "50.5", "+-",
                                "0.5", "0.01", "+-", "0.00", "0.100", "+-", "0.000",
                                "undecided", "yes"]
    assert lines[3].split()[:2] == ["floor", "25.0"]
    assert lines[4].split()[:6] == ["support", "only", "(half-width", "4.6)", "23.0", "+-"]
    assert lines[-1].split()[-6:] == ["24.8", "+-", "0.2", "93.6", "+-", "0.6"]
    assert len(lines) == 3 + 2 + 1 + len(study.PUBLISHED)


def test_step_flops_counts_what_torch_counts():
    from torch.utils.flop_counter import FlopCounterMode

    for method, seeds in (("wgan-clip", 3), ("gan", 1), ("wgan-clip-ncritic25", 2)):
        config = TrainConfig(target="ring", iters=2, batch_size=16, hidden=8, depth=2,
                             n_seeds=seeds, eval_every=5, eval_samples=10, threads=1,
                             **study.ALL_METHODS[method].settings)
        trainer = Trainer(config, progress=False)
        with FlopCounterMode(display=False) as counter:
            trainer.train_step()
        assert study.step_flops(config) == counter.get_total_flops(), method
    with pytest.raises(ValueError, match="a toy config with clipping or no constraint"):
        study.step_flops(TrainConfig(constraint="gp", eval_samples=10))


# --------------------------------------------------------------------------- shipped file


def test_shipped_results_have_every_method_target_seed_baseline_and_verdict():
    data = study.load_results(SHIPPED)
    config = study.StudyConfig(**data["config"])
    assert config == study.StudyConfig()  # `python -m labkit study` reproduces it
    assert config.n_seeds >= 8 and config.eval_samples == 2500 and config.batch_size == 256
    assert config.iters * config.batch_size >= 10 * 96_000
    assert data["labkit"] and data["torch"]
    for method in study.METHODS:
        for target in study.TARGETS:
            run = data["runs"][f"{method}/{target}"]
            assert [r["seed"] for r in run["final"]] == config.seeds
            assert all(set(study.TABLE_FIELDS) <= set(r) for r in run["final"])
            assert sorted(set(run["curves"]["seed"])) == config.seeds
            assert run["convergence"] == study.results._rounded(study.run_convergence(run))
            assert run["convergence"]["verdict"] in ("converged", "oscillating", "unsettled",
                                                     "falling", "rising", "diverged")
    for key in ("floor/ring", "floor/grid", "support only/ring", "support only/grid"):
        assert [r["seed"] for r in data["baselines"][key]["final"]] == config.seeds
    rows = study.summary_table(data)
    assert len(rows) == len(study.METHODS) * len(study.TARGETS) + 4
