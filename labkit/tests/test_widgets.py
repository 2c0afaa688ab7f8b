"""Tests of labkit.widgets: the theta explorer's numbers against independent truths, and its DOM.

Closed forms are checked against the paper's values written out here (abs(theta), log 2, +inf, 1);
the sample W1 against scipy's ``linear_sum_assignment`` on the very same points; the widget by
setting slider values in Python and parsing the HTML readout, as a browser would see it.
"""

import math
from html.parser import HTMLParser

import ipywidgets
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from labkit import toys, widgets
from labkit.widgets import views

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Readout(HTMLParser):
    """Collect the table classes and the text of every ``<td data-key=...>`` cell."""

    def __init__(self):
        super().__init__()
        self.tables, self.cells, self._key = [], {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append(attrs.get("class"))
        if tag == "td" and "data-key" in attrs:
            self._key = attrs["data-key"]
            self.cells[self._key] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._key = None

    def handle_data(self, data):
        if self._key is not None:
            self.cells[self._key] += data


def parse(text):
    parser = _Readout()
    parser.feed(text)
    return parser.tables, parser.cells


def lsa_w1(theta, n, seed):
    """Exact W1 by the Hungarian algorithm on the explorer's points (independent z)."""
    real = toys.parallel_lines(0.0, n, generator=torch.Generator().manual_seed(seed))
    fake = toys.parallel_lines(theta, n, generator=torch.Generator().manual_seed(seed + 1))
    cost = cdist(real.double().numpy(), fake.double().numpy())
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].mean()


def parts(box):
    sliders = [c for c in box.children if type(c).__name__.endswith("Slider")]
    (html,) = [c for c in box.children if isinstance(c, ipywidgets.HTML)]
    (image,) = [c for c in box.children if isinstance(c, ipywidgets.Image)]
    return sliders, html, image


@pytest.mark.parametrize("theta", [-1.0, -0.5, 0.25, 1.0])
def test_readout_closed_forms_away_from_zero(theta):
    values = widgets.example1_readout(theta, 20)
    assert values["W"] == pytest.approx(abs(theta), abs=1e-12)
    assert values["JS"] == pytest.approx(math.log(2), abs=1e-12)
    assert values["KL"] == math.inf
    assert values["TV"] == 1.0


def test_readout_closed_forms_at_zero():
    values = widgets.example1_readout(0.0, 20)
    assert [values[k] for k in ("W", "JS", "KL", "TV")] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(("theta", "n", "seed"), [(0.5, 200, 0), (-0.3, 57, 3), (0.0, 120, 7)])
def test_w1_sample_equals_hungarian_matching(theta, n, seed):
    expected = lsa_w1(theta, n, seed)
    got = widgets.example1_readout(theta, n, seed)["W1_sample"]
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # independent z: never below abs(theta) (f(x, z) = x is 1-Lipschitz), and close to it
    assert abs(theta) - 1e-6 <= got <= abs(theta) + 0.1


def test_samples_have_independent_z_and_the_right_lines():
    real, fake = widgets.example1_samples(0.7, 300, seed=5)
    assert real.shape == fake.shape == (300, 2)
    assert torch.all(real[:, 0] == 0) and torch.allclose(fake[:, 0], torch.tensor(0.7))
    assert not torch.equal(real[:, 1], fake[:, 1])
    expected = toys.parallel_lines(0.0, 300, generator=torch.Generator().manual_seed(5))
    assert torch.equal(real, expected)


def test_readout_html_format():
    tables, cells = parse(
        widgets.readout_html(
            {"W": 0.5, "JS": math.log(2), "KL": math.inf, "TV": 1.0, "W1_sample": 0.123456}
        )
    )
    assert tables == ["labkit-readout"]
    assert cells == {
        "W": "0.5000",
        "JS": "0.6931",
        "KL": "inf",
        "TV": "1.0000",
        "W1_sample": "0.1235",
    }


def test_readout_html_needs_every_key():
    with pytest.raises(ValueError, match="W1_sample"):
        widgets.readout_html({"W": 0.5, "JS": 0.6931, "KL": math.inf, "TV": 1.0})


def test_explorer_dom_contract():
    box = widgets.theta_explorer()
    assert isinstance(box, ipywidgets.VBox)
    sliders, html, image = parts(box)
    theta, n = sliders
    assert box.children[0] is theta and isinstance(theta, ipywidgets.FloatSlider)
    assert (theta.description, theta.min, theta.max, theta.step, theta.value) == (
        "theta",
        -1.0,
        1.0,
        0.01,
        0.5,
    )
    assert isinstance(n, ipywidgets.IntSlider)
    assert (n.description, n.min, n.max, n.value) == ("n", 10, 1000, 200)
    tables, cells = parse(html.value)
    assert tables == ["labkit-readout"]
    assert list(cells) == list(widgets.KEYS) == ["W", "JS", "KL", "TV", "W1_sample"]
    assert cells["W"] == "0.5000" and cells["JS"] == "0.6931" and cells["KL"] == "inf"
    assert float(cells["W1_sample"]) == pytest.approx(lsa_w1(0.5, 200, 0), abs=6e-5)
    assert bytes(image.value).startswith(PNG_MAGIC)


def test_moving_theta_updates_readout_and_figure():
    box = widgets.theta_explorer(theta=0.5, n=200, seed=0)
    (theta, _), html, image = parts(box)
    before = bytes(image.value)
    theta.value = 0.25
    _, cells = parse(html.value)
    assert cells["W"] == "0.2500"
    assert cells["JS"] == "0.6931"
    assert cells["KL"] == "inf"
    assert cells["TV"] == "1.0000"
    assert float(cells["W1_sample"]) == pytest.approx(lsa_w1(0.25, 200, 0), abs=6e-5)
    assert bytes(image.value).startswith(PNG_MAGIC) and bytes(image.value) != before
    theta.value = 0.0
    _, cells = parse(html.value)
    assert [cells[k] for k in ("W", "JS", "KL", "TV")] == ["0.0000"] * 4
    assert float(cells["W1_sample"]) == pytest.approx(lsa_w1(0.0, 200, 0), abs=6e-5)


def test_moving_n_updates_sample_w1_only():
    box = widgets.theta_explorer(theta=-0.4, n=200, seed=2)
    (_, n), html, _ = parts(box)
    n.value = 37
    _, cells = parse(html.value)
    assert cells["W"] == "0.4000"
    assert float(cells["W1_sample"]) == pytest.approx(lsa_w1(-0.4, 37, 2), abs=6e-5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"theta": float("nan"), "n": 10}, "theta"),
        ({"theta": math.inf, "n": 10}, "theta"),
        ({"theta": "0.5", "n": 10}, "theta"),
        ({"theta": "half", "n": 10}, "theta"),
        ({"theta": True, "n": 10}, "theta"),
        ({"theta": 0.5, "n": 0}, "n"),
        ({"theta": 0.5, "n": 2.5}, "n"),
        ({"theta": 0.5, "n": True}, "n"),
        ({"theta": 0.5, "n": 10, "seed": -1}, "seed"),
    ],
)
def test_readout_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        widgets.example1_readout(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"theta": 1.5}, "theta"),
        ({"theta": -1.01}, "theta"),
        ({"theta": float("nan")}, "theta"),
        ({"n": 5}, "n"),
        ({"n": 1001}, "n"),
        ({"n": np.float64(100)}, "n"),
        ({"seed": -3}, "seed"),
    ],
)
def test_explorer_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        widgets.theta_explorer(**kwargs)


def test_slider_rounding_noise_reads_as_zero():
    box = widgets.theta_explorer(theta=0.03, n=50)
    (theta, _), html, _ = parts(box)
    theta.value = 0.03 - 0.01 - 0.01 - 0.01  # -3.5e-18 in floating point, as a browser may send
    _, cells = parse(html.value)
    assert [cells[k] for k in ("W", "JS", "KL", "TV")] == ["0.0000"] * 4


# --------------------------------------------------------------------------- clipping explorer


@pytest.fixture
def small_model():
    """A cheap explorer model: 64 points, critic width 16, n_critic x 5 steps."""
    return widgets.ClipExplorerModel(n=64, hidden=16, iters=5, grid=12)


def clip_parts(box):
    c, n_critic, depth, constraint, status, readout, image = box.children
    return c, n_critic, depth, constraint, status, readout, image


def test_clip_explorer_shows_the_numbers_its_update_function_returns(small_model):
    box = widgets.clip_explorer(model=small_model)
    c, n_critic, depth, constraint, status, readout, image = clip_parts(box)
    assert isinstance(c, ipywidgets.FloatLogSlider) and (c.min, c.max, c.value) == (-3, 0, 0.01)
    assert (n_critic.value, depth.value, constraint.value) == (5, 3, "clip")
    assert constraint.options == ("clip", "gp", "sn")
    before = bytes(image.value)
    c.value = 10**-1.5  # what a browser sends after two steps of the log slider from 0.1
    tables, cells = parse(readout.value)
    assert tables == ["labkit-clip-readout"] and list(cells) == list(widgets.CLIP_KEYS)
    # A fresh model (no cache) trained for the same c gives the same numbers, as displayed.
    fresh = widgets.ClipExplorerModel(n=64, hidden=16, iters=5, grid=12)
    values = fresh.update(0.0316228, 5, 3, "clip").values
    assert cells == {k: f"{values[k]:.4g}" for k in widgets.CLIP_KEYS}
    assert values["ratio"] == pytest.approx(values["estimate"] / values["w1_exact"])
    assert values["w1_exact"] == pytest.approx(
        lsa_cost(small_model.real, small_model.fake), rel=1e-9
    )
    assert "trained in" in status.value
    after = bytes(image.value)
    assert after.startswith(PNG_MAGIC) and after != before
    c.value = 0.01  # back: from the cache, same numbers as the first display
    assert "cached" in status.value
    assert parse(readout.value)[1] == {
        k: f"{v:.4g}" for k, v in small_model.update(0.01, 5, 3, "clip").values.items()
    }
    constraint.value = "gp"
    assert (
        parse(readout.value)[1]["ratio"]
        == f"{small_model.update(1.0, 5, 3, 'gp').values['ratio']:.4g}"
    )


def lsa_cost(real, fake):
    cost = cdist(real.double().numpy(), fake.double().numpy())
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].mean()


def test_clip_explorer_state_matches_its_figure_data(small_model):
    state = small_model.update(0.05, 2, 4, "clip")
    assert state.field.shape == (12, 12) and state.grad_fake.shape == (64, 2)
    assert state.report.layer_norms.shape == (5,)
    assert np.abs(state.report.weights).max() <= 0.05 + 1e-7
    assert state.clip == 0.05 and state.seconds > 0
    assert small_model.update(0.05, 2, 4, "clip").seconds == 0.0  # cached
    # c does not matter for GP and SN: one cache entry for all c.
    assert small_model.update(0.5, 1, 1, "sn").values == small_model.update(0.01, 1, 1, "sn").values


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"c": 0.0}, "c"),
        ({"c": -0.01}, "c"),
        ({"c": float("nan")}, "c"),
        ({"c": 2.0}, "c"),
        ({"depth": 0}, "depth"),
        ({"n_critic": 0}, "n_critic"),
        ({"constraint": "weight-norm"}, "constraint"),
    ],
)
def test_clip_explorer_rejects_bad_input(small_model, kwargs, name):
    args = {"c": 0.01, "n_critic": 5, "depth": 3, "constraint": "clip", **kwargs}
    with pytest.raises(ValueError, match=rf"^{name} must") as info:
        small_model.update(**args)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=rf"^{name} must"):
        widgets.clip_explorer(**args, model=small_model)


def test_snapshot_slider_redraws_on_move_and_checks_lengths():
    axis = np.linspace(-3, 3, 20)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    snaps = [{"iteration": k, "samples": [[0.0, float(k)]], "critic": [float(k)] * 400}
             for k in range(3)]
    box = widgets.snapshot_slider({"A": snaps, "B": snaps}, toys.ring().centers, grid,
                                  baselines={"floor": [[2.0, 0.0]]})
    slider, image = box.children
    assert (slider.min, slider.max, slider.value) == (0, 2, 2)
    before = image.value
    slider.value = 0
    assert image.value != before and image.value[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="one non-zero length"):
        widgets.snapshot_slider({"A": snaps, "B": snaps[:1]}, toys.ring().centers, grid)


# --------------------------------------------------------------------------- first contact


def test_explorer_controls_line_up_and_theta_is_wide():
    """Every control of both explorers has one description column and one width, and the theta
    slider's track leaves each of its 201 steps at least 2 px (ipywidgets' default slider has
    about 124 px of track; the browser test measures the real track)."""
    theta_box = widgets.theta_explorer()
    clip_box = widgets.clip_explorer(model=widgets.ClipExplorerModel(n=16, hidden=4, iters=1,
                                                                     grid=4))
    sliders = [*theta_box.children[:2], *clip_box.children[:3]]
    assert {c.style.description_width for c in [*sliders, clip_box.children[3]]} == {"80px"}
    assert {c.layout.width for c in sliders} == {widgets.CONTROL_WIDTH}
    assert "widget-inline-hbox" in clip_box.children[3]._dom_classes  # label beside the buttons
    track = int(widgets.CONTROL_WIDTH.removesuffix("px")) - 80 - 64  # less label and readout
    theta = theta_box.children[0]
    assert track / round((theta.max - theta.min) / theta.step) >= 2


def test_c_slider_is_disabled_without_clipping(small_model):
    box = widgets.clip_explorer(model=small_model)
    c, _, _, constraint, *_ = clip_parts(box)
    assert not c.disabled
    for name, disabled in (("gp", True), ("sn", True), ("clip", False)):
        constraint.value = name
        assert c.disabled is disabled


def test_clip_readout_never_prints_minus_zero():
    html = widgets.clip_readout_html({"estimate": -0.0, "w1_exact": 1.0, "ratio": -0.0,
                                      "cosine": 0.5})
    cells = parse(html)[1]
    assert cells["estimate"] == cells["ratio"] == "0"


def test_clip_explorer_view_draws_the_given_data():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    view = views.ClipExplorerView(real, fake, -fake, (-3, 3, -3, 3), depth_max=6)
    weights = rng.uniform(-0.01, 0.01, size=500)
    field = rng.normal(size=(10, 10))
    grad = rng.normal(size=(20, 2))
    view.update(field, grad, weights, [1e-3, 1e-2, 1e-1], 0.01, "clip c = 0.01")
    assert view.png().startswith(b"\x89PNG")
    np.testing.assert_array_equal(view._image.get_array(), field)
    counts, edges = np.histogram(weights, bins=40)
    np.testing.assert_array_equal(view._stairs.get_data().values, counts)
    np.testing.assert_allclose(view._norms.get_ydata(), [1e-3, 1e-2, 1e-1])
    assert [line.get_xdata()[0] for line in view._clip_lines] == [-0.01, 0.01]
    unit = grad / np.linalg.norm(grad, axis=1, keepdims=True)
    np.testing.assert_allclose(np.column_stack([view._quiver.U, view._quiver.V]), unit)
    view.update(field, grad, weights, [1.0, 2.0], None, "GP")
    assert not any(line.get_visible() for line in view._clip_lines)
    assert view._title.get_text() == "GP"


def test_clip_explorer_view_labels_never_collide():
    """The norm panel's tick labels stay clear of the histogram whatever the norms' scale (the
    layout is computed once), +-c is only named under clipping, and a norm of 0 is not drawn."""
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    view = views.ClipExplorerView(real, fake, -fake, (-3, 3, -3, 3), depth_max=6)
    _, _, hist_ax, norm_ax = view.axes
    for norms, clip in (([1e-28, 1e-20, 0.0], 0.001), ([3e4, 2e5], 1.0), ([0.5, 2.0], None)):
        view.update(rng.normal(size=(10, 10)), rng.normal(size=(20, 2)),
                    rng.uniform(-0.01, 0.01, 500), norms, clip, "setting")
        view.png()
        renderer = view.fig.canvas.get_renderer()
        hist_right = hist_ax.get_tightbbox(renderer).x1
        labels = [t for t in norm_ax.get_yticklabels() if t.get_visible() and t.get_text()]
        assert len(labels) >= 2
        assert min(t.get_window_extent(renderer).x0 for t in labels) > hist_right
        assert hist_ax.get_title() == ("weights (dotted: ±c)" if clip else "weights")
        drawn = view._norms.get_ydata()
        assert np.array_equal(np.isnan(drawn), np.asarray(norms) == 0)
