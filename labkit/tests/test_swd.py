"""Tests of the image metric: the sliced Wasserstein distance on Laplacian-pyramid patches
(Progressive GAN's recipe), checked step by step against independent computations."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
import torch.nn.functional as F

from labkit import metrics
from labkit.datasets import synthetic_images
from labkit.images import to_unit_range


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (N, C, H, W) with a Gaussian of std ``sigma`` pixels (reflected borders)."""
    radius = int(3 * sigma) + 1
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@pytest.fixture(scope="module")
def images():
    """Two disjoint sets of 128 synthetic 32 x 32 images from one distribution."""
    x = to_unit_range(synthetic_images(256, 32, seed=1))
    return x[:128], x[128:]


# Fewer patches and directions than the recipe (128 per image, 512), so the tests stay fast.
SMALL = dict(per_image=32, n_directions=128)


def test_sliced_step_by_hand():
    # Along e1 the sorted projections are (0, 1) and (0, 3): mean |diff| = 1; along e2 all 0.
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    assert metrics.sliced_wasserstein(a, b, torch.eye(2)).tolist() == [1.0, 0.0]


def test_sliced_step_matches_scipy_on_random_directions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 5, generator=g, dtype=torch.float64), \
        torch.rand(300, 5, generator=g, dtype=torch.float64)
    dirs = metrics.random_directions(5, 7, g).double()
    assert torch.allclose(torch.linalg.vector_norm(dirs, dim=0), torch.ones(7, dtype=torch.float64))
    ours = metrics.sliced_wasserstein(a, b, dirs)
    truth = [scipy.stats.wasserstein_distance(a @ u, b @ u) for u in dirs.T]
    np.testing.assert_allclose(ours.numpy(), truth, rtol=1e-10)


def test_pyramid_matches_scipy_and_reconstructs(images):
    x = images[0][:4]
    levels = metrics.laplacian_pyramid(x, min_size=8)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8]
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    down = scipy.ndimage.convolve(x.numpy(), kernel[None, None], mode="mirror")[..., ::2, ::2]
    down2 = scipy.ndimage.convolve(down, kernel[None, None], mode="mirror")[..., ::2, ::2]
    np.testing.assert_allclose(levels[-1].numpy(), down2, atol=1e-5)
    # Collapsing the pyramid gives back the image: G_k = L_k + 4 blur(up(G_{k+1})).
    current = levels[-1]
    for lap in reversed(levels[:-1]):
        up = torch.zeros_like(lap)
        up[..., ::2, ::2] = current
        current = lap + 4 * metrics.swd._pyramid_blur(up)
    torch.testing.assert_close(current, x, atol=1e-5, rtol=0)


def test_patches_are_normalised_per_channel(images):
    desc = metrics.patch_descriptors(images[0], 16, torch.Generator().manual_seed(0))
    assert desc.shape == (128 * 16, 3 * 7 * 7)
    per_channel = desc.view(-1, 3, 49).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(1, correction=0), torch.ones(3), atol=1e-4, rtol=0)


def test_swd_near_zero_for_same_distribution_large_for_noise(images):
    # Measured: the set against itself (other patches) 22.6, against a disjoint set of the same
    # distribution 50.6 (128 images carry few stripe patterns each), against noise 154.
    real, other = images
    same = metrics.swd_images(real, real, **SMALL)
    twin = metrics.swd_images(real, other, **SMALL)
    noise = metrics.swd_images(real, torch.rand_like(real) * 2 - 1, **SMALL)
    assert set(noise) == {"swd_32", "swd_16", "swd"}
    assert noise["swd"] == pytest.approx((noise["swd_32"] + noise["swd_16"]) / 2)
    assert same["swd"] < 0.2 * noise["swd"]
    assert twin["swd"] < 0.4 * noise["swd"]
    # Identical patch sets (the same draws for both) give exactly 0.
    level = metrics.laplacian_pyramid(real)[0]
    desc = metrics.patch_descriptors(level, 8, torch.Generator().manual_seed(3))
    assert float(metrics.sliced_wasserstein(desc, desc, torch.eye(desc.shape[1])).max()) == 0.0


def test_swd_falls_as_blur_is_reduced(images):
    # Measured: 115, 76, 52 for sigma 2, 1, 0.5 pixels (50.6 without blur).
    real, other = images
    values = [metrics.swd_images(real, gaussian_blur(other, s), **SMALL)["swd"]
              for s in (2.0, 1.0, 0.5)]
    assert values[0] > 1.3 * values[1] > 1.3 * values[2]


def test_sorted_columns_equal_torch_sort():
    x = torch.randn(500, 7, generator=torch.Generator().manual_seed(0))
    x[3, 2] = x[4, 2]  # a tie
    assert torch.equal(metrics.swd._sorted_columns(x), torch.sort(x, dim=0).values)
