"""Tests of the image-run figures: grids place each image's pixels exactly, the W curve is the
paper's running median, and a grid PNG is written atomically."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pytest  # noqa: E402

from labkit import metrics, plots  # noqa: E402


def test_image_grid_places_pixels():
    x = np.zeros((3, 3, 16, 16))
    x[1] = 1.0                 # white image at row 0, column 1
    x[2, 0] = -1.0             # image at row 1, column 0: red channel black, others grey
    grid = plots.image_grid(x, nrow=2, padding=2)
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3) and grid.dtype == np.uint8
    assert (grid[2:18, 20:36] == 255).all()
    assert (grid[2:18, 2:18] == 128).all()  # round(127.5) = 128 (round half to even)
    assert (grid[20:36, 2:18, 0] == 0).all() and (grid[20:36, 2:18, 1:] == 128).all()
    assert (grid[20:36, 20:36] == 255).all()  # the empty slot stays white


def test_w_estimate_curves_draw_raw_and_filtered(tmp_path):
    its = np.arange(300)
    w = np.sin(its / 30) + np.random.default_rng(1).normal(0, 0.1, 300)
    fig = plots.w_estimate_curves({"run": (its, w)}, swd={"run": ([0, 100], [5.0, 3.0])},
                                  title="data: test; device: cpu")
    raw, smooth = fig.axes[0].lines
    np.testing.assert_array_equal(raw.get_ydata(), w)
    np.testing.assert_array_equal(smooth.get_ydata(), metrics.median_filter(w, 101))
    assert fig.axes[1].lines[0].get_ydata().tolist() == [5.0, 3.0]
    assert fig._suptitle.get_text() == "data: test; device: cpu"
    path = plots.save_image_grid(np.zeros((4, 3, 16, 16)), tmp_path / "g" / "grid.png", nrow=2)
    assert PIL.Image.open(path).size == (38, 38) and list(path.parent.iterdir()) == [path]


def test_grid_table_places_each_picture_at_its_row_and_column():
    a, b = np.zeros((3, 3, 16, 16)), np.ones((3, 3, 16, 16))
    picture = np.full((20, 38, 3), 7, dtype=np.uint8)
    fig = plots.grid_table({"WGAN": [a, picture], "GAN": [b, None]}, ["seed 0", "seed 1"],
                           title="data: test")
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["WGAN", "GAN"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["seed 0", "seed 1"]
    np.testing.assert_array_equal(axes[0, 0].images[0].get_array(), plots.image_grid(a))
    np.testing.assert_array_equal(axes[0, 1].images[0].get_array(), plots.image_grid(b))
    np.testing.assert_array_equal(axes[1, 0].images[0].get_array(), picture)
    assert not axes[1, 1].images  # None: an empty cell
    with pytest.raises(ValueError, match="column 'GAN' has 1 images for 2 rows"):
        plots.grid_table({"WGAN": [a, a], "GAN": [a]}, ["seed 0", "seed 1"], title="t")


def test_curve_table_draws_every_line_with_its_raw_values_faint():
    cells = {"left": {"w": {"WGAN seed 0": ([1, 2, 3], [3.0, 2.0, 1.0], [4.0, 1.0, 1.5])},
                      "swd": {"WGAN seed 0": ([0, 3], [200.0, 30.0])}},
             "right": {"w": {"GAN seed 0": ([1, 2], [0.5, 0.6])}}}
    fig = plots.curve_table(cells, {"w": "estimate", "swd": "SWD"}, title="data: test",
                            styles={"GAN seed 0": {"color": "C1", "ls": "--"}}, log_rows=("swd",))
    axes = np.array(fig.axes).reshape(2, 2)
    raw, smooth = axes[0, 0].lines
    assert raw.get_ydata().tolist() == [4.0, 1.0, 1.5] and raw.get_alpha() < 0.5
    assert smooth.get_ydata().tolist() == [3.0, 2.0, 1.0] and smooth.get_label() == "WGAN seed 0"
    (gan,) = axes[0, 1].lines
    assert gan.get_linestyle() == "--" and gan.get_color() == "C1"
    assert axes[1, 0].get_yscale() == "log" and not axes[1, 1].lines  # no SWD on the right
    assert axes[0, 0].get_ylabel() == "estimate" and axes[1, 0].get_xlabel().startswith("gen")
    assert axes[0, 0].get_ylim() == pytest.approx((0.8, 3.2))  # the filtered line's range + 10%
