"""Tests of the toy samples figure: the points drawn are exactly the points given."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from labkit import plots, toys  # noqa: E402


def test_toy_samples_draws_the_given_points_one_panel_per_run():
    ring = toys.ring()
    real = ring.sample(100, generator=torch.Generator().manual_seed(0))
    fakes = {f"seed {s}": torch.randn(50, 2, generator=torch.Generator().manual_seed(s))
             for s in range(5)}
    fig = plots.toy_samples(real, fakes, ring.centers, max_points=40)
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == list(fakes)
    assert len(fig.axes) == 8  # two rows of four, three panels switched off
    drawn = {c.get_label(): c for c in visible[2].collections}
    np.testing.assert_allclose(drawn["centres"].get_offsets(), ring.centers.numpy(), rtol=1e-6)
    np.testing.assert_allclose(drawn["real"].get_offsets(), real[:40].numpy(), rtol=1e-6)
    np.testing.assert_allclose(drawn["generated"].get_offsets(), fakes["seed 2"][:40].numpy(),
                               rtol=1e-6)
    # the targets on top of the generated cloud, and axes that say what they are
    order = [drawn[k].get_zorder() for k in ("generated", "real", "centres")]
    assert order == sorted(order) and len(set(order)) == 3
    assert (visible[4].get_xlabel(), visible[0].get_ylabel()) == ("x₁", "x₂")
    assert fig.get_size_inches()[0] >= 4 * 4.4


def test_toy_samples_rejects_bad_input():
    with pytest.raises(ValueError, match=r"real must have shape \(n, 2\)"):
        plots.toy_samples(np.zeros((3, 3)), {"a": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="fakes must hold at least one"):
        plots.toy_samples(np.zeros((3, 2)), {})


def test_notebook02_figures_carry_their_data():
    grid = np.linspace(-1, 1, 50)
    fig = plots.trained_distances(grid, {"W": np.abs(grid), "JS": np.full(50, np.log(2))},
                                  {"a": ([0.5], [0.4])}, {"b": ([0.5], [0.69])})
    w_ax, js_ax = fig.axes
    assert any(list(line.get_ydata()) == [0.4] for line in w_ax.get_lines())
    assert any(list(line.get_ydata()) == [0.69] for line in js_ax.get_lines())
    real, fake = np.exp(-(grid + 0.5) ** 2 / 0.01), np.exp(-(grid - 0.5) ** 2 / 0.01)
    critics = {"clipped": 1e-4 * grid, "GP": -3 * grid}
    fig = plots.figure2(grid, {"real density": real, "fake density": fake}, {"D": grid}, critics,
                        {"D": ([0, 10], [1.0, 1e-6])})
    d_ax, decay_ax, clip_ax, gp_ax = fig.axes
    assert list(decay_ax.get_lines()[0].get_ydata()) == [1.0, 1e-6]
    for ax, values in ((clip_ax, critics["clipped"]), (gp_ax, critics["GP"])):
        np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), values)  # unscaled
        assert ax.get_ylabel() == "f(x), unscaled"
    assert d_ax.get_ylabel().startswith("D(x)")
    fig = plots.loss_tracks({"run": {"iteration": [1, 2], "estimate": [3, 4], "w1_exact": [5, 6]}})
    assert len(fig.axes) == 2  # the estimate and, on a twin axis, the exact W1
    with pytest.raises(ValueError, match="runs must hold"):
        plots.loss_tracks({})


def test_gradient_agreement_draws_each_constraint_against_n_critic():
    from types import SimpleNamespace

    reports = {(w, n, c): SimpleNamespace(cosine=0.1 * n + w / 1000, ratio=10.0 ** (n - 3))
               for w in (32, 128) for n in (1, 5) for c in ("clip", "GP")}
    fig = plots.gradient_agreement(reports, (32, 128), (1, 5), ("clip", "GP"))
    cos_32, cos_128, ratio_32, ratio_128 = fig.axes
    line = cos_128.get_lines()[1]
    assert line.get_label() == "GP" and list(line.get_ydata()) == [0.1 + 0.128, 0.5 + 0.128]
    assert list(ratio_32.get_lines()[0].get_ydata()) == [1e-2, 1e2]
    assert ratio_128.get_yscale() == "log" and cos_32.get_ylim() == (-0.02, 1.02)


def test_layer_study_draws_norms_and_marks_the_clip_value():
    from types import SimpleNamespace

    reports = {"clip 0.01": SimpleNamespace(layer_norms=[1e-4, 1e-2], weights=[-0.01, 0.01]),
               "GP": SimpleNamespace(layer_norms=[1.0, 2.0], weights=[-0.3, 0.1, 0.2])}
    fig = plots.layer_study(reports, {"clip 0.01": 0.01})
    norm_ax, clip_ax, gp_ax = fig.axes
    assert [list(line.get_ydata()) for line in norm_ax.get_lines()] == [[1e-4, 1e-2], [1.0, 2.0]]
    fig = plots.layer_study({"clip": SimpleNamespace(layer_norms=[1e-4, 0.0, 0.0], weights=[0.0])},
                            {"clip": 0.01})
    (line,) = fig.axes[0].get_lines()
    assert np.isnan(line.get_ydata()[1:]).all() and line.get_label() == "clip (0 from layer 2)"
    assert sorted(line.get_xdata()[0] for line in clip_ax.get_lines()) == [-0.01, 0.01]
    assert not gp_ax.get_lines()


# --------------------------------------------------------------------------- notebook 03


def _snapshots(n: int) -> list[dict]:
    grid = np.linspace(-3, 3, 20)
    critic = np.add.outer(grid, grid).ravel()  # f(x, y) = x + y on the 20 x 20 grid
    return [{"iteration": 100 * k, "samples": [[0.1 * k, 0.0], [0.0, 0.1 * k]],
             "critic": [None, *critic[1:].tolist()]} for k in range(n)]


def _grid():
    return np.stack(np.meshgrid(np.linspace(-3, 3, 20), np.linspace(-3, 3, 20)), -1).reshape(-1, 2)


def test_training_snapshots_one_panel_per_method_and_checkpoint_then_baselines():
    ring = toys.ring()
    runs = {"A": _snapshots(3), "WGAN, clipping (paper: RMSprop 5e-5)": _snapshots(3)}
    support = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
    fig = plots.training_snapshots(runs, ring.centers, _grid(),
                                   baselines={"floor": support[:1], "support only": support})
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes[:3]] == ["iteration 0", "iteration 100",
                                                       "iteration 200"]
    assert fig.axes[3].get_ylabel() == "WGAN, clipping\n(paper: RMSprop\n5e-5)"
    assert [ax.get_title() for ax in fig.axes[6:8]] == ["baseline:\nfloor",
                                                        "baseline:\nsupport only"]
    np.testing.assert_allclose(fig.axes[7].collections[-1].get_offsets(), support)
    assert not fig.axes[8].axison  # nothing left to draw there
    fonts = [ax.title.get_fontsize() for ax in fig.axes[:8]]
    assert min(fonts) >= 9
    with pytest.raises(ValueError, match="at least one method"):
        plots.training_snapshots({}, ring.centers, _grid())


def test_checkpoint_panels_wrap_methods_and_baselines_into_rows():
    runs = {f"method {k}": _snapshots(3) for k in range(7)}
    fig = plots.checkpoint_panels(runs, 2, toys.ring().centers, _grid(),
                                  baselines={"floor": [[2.0, 0.0]], "support only": [[0, 2.0]]})
    assert len(fig.axes) == 10 and fig.get_size_inches()[0] <= 10  # 5 a row, at most 1000 px
    assert fig._suptitle.get_text() == "iteration 200"
    assert [ax.get_title() for ax in fig.axes[:2]] == ["method 0", "method 1"]
    assert fig.axes[8].get_title() == "baseline:\nsupport only"
    np.testing.assert_allclose(fig.axes[0].collections[-1].get_offsets(), [[0.2, 0], [0, 0.2]])


def test_estimate_vs_exact_draws_the_points_and_the_baselines():
    curves = {"w1_exact": [1.0, 0.5, None], "w_estimate": [0.2, 0.1, 0.05], "seed": [0, 0, 1]}
    fig = plots.estimate_vs_exact({"WGAN": curves}, baselines={"floor": 0.15,
                                                               "support only": 0.4})
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:2], [[1.0, 0.2], [0.5, 0.1]])
    xs = sorted(line.get_xdata()[0] for line in fig.axes[0].lines[:2])
    assert xs == [0.15, 0.4]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["baseline: floor",
                                                                  "baseline: support only"]


def test_convergence_panels_show_seeds_mean_verdict_and_baselines():
    runs = {"GAN": {"iterations": [0, 10, 20, 30], "values": [[2.0, 1.0, 1.5, 1.0],
                                                              [2.0, 1.2, None, 1.2]],
                    "verdict": "oscillating", "from_iteration": 22.5}}
    fig = plots.convergence_panels(runs, baselines={"floor": 0.1})
    ax = fig.axes[0]
    assert ax.get_title() == "GAN\noscillating" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [2.0, 1.1, 1.5, 1.1])  # mean, nan left out
    assert ax.lines[3].get_ydata()[0] == 0.1  # the floor
    assert ax.patches[0].get_x() == 22.5  # the shaded last quarter starts there


def test_mean_curves_mean_and_range_over_seeds():
    fig = plots.mean_curves({"ring": {"Adam": ([0, 10], [[0.5, -0.5], [0.1, -0.1]])}},
                            ylabel="cosine", zero_line=True)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), [[0, 0.3], [10, -0.3]])
    assert ax.lines[1].get_ydata()[0] == 0  # the zero line
    assert fig.legends[0].get_texts()[0].get_text() == "Adam"


def test_rank_tracking_one_marker_series_per_method():
    fig = plots.rank_tracking({"A": ([0.1, 1.0], [0.0, 0.9]), "B": ([2.0], [0.5])})
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), [[0.1, 0.0], [1.0, 0.9]])
    assert ax.get_xscale() == "log" and ax.get_legend().get_texts()[1].get_text() == "B"
