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
    centres, drawn_real, drawn_fake = (c.get_offsets() for c in visible[2].collections)
    np.testing.assert_allclose(centres, ring.centers.numpy(), rtol=1e-6)
    np.testing.assert_allclose(drawn_real, real[:40].numpy(), rtol=1e-6)
    np.testing.assert_allclose(drawn_fake, fakes["seed 2"][:40].numpy(), rtol=1e-6)


def test_toy_samples_rejects_bad_input():
    with pytest.raises(ValueError, match=r"real must have shape \(n, 2\)"):
        plots.toy_samples(np.zeros((3, 3)), {"a": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="fakes must hold at least one"):
        plots.toy_samples(np.zeros((3, 2)), {})
