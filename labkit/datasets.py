"""Real-data sources for the training loop: one interface, ``sample(n, generator) -> Tensor``.

The toy targets of :mod:`labkit.toys` already have it; :class:`ImageDataset` gives it to the uint8
image cache of :mod:`labkit.images`. A source returns real samples x ~ P_r as float tensors; an
image source reads only the rows it draws from the memory-mapped cache (nothing is decoded) and
converts them with :func:`labkit.images.to_unit_range`.
"""

from __future__ import annotations

import numpy as np
import torch

from labkit.images import ImageCache, to_unit_range


class ImageDataset:
    """Minibatches of real images drawn i.i.d. (with replacement) from a uint8 image cache.

    Algorithm 1 samples each batch {x^(i)} ~ P_r afresh; here P_r is the empirical distribution
    of the cache's first ``count - holdout`` images. The last ``holdout`` images are never trained
    on: they are the real set of the image metric (:func:`labkit.metrics.swd_images`).

    Under data parallelism (:mod:`labkit.distributed`) every rank draws the same n indices from the
    shared stream and loads only every ``world``-th one starting at ``rank``.

    Parameters
    ----------
    cache : ImageCache
        An opened cache (:func:`labkit.images.open_cache`), images of shape (N, 3, S, S).
    holdout : int
        Images kept out of training, 0 <= holdout < N.
    rank, world : int
        This process's share of every draw.

    Examples
    --------
    >>> import tempfile
    >>> from labkit.images import save_cache
    >>> pixels = np.zeros((5, 3, 16, 16), dtype=np.uint8)
    >>> data = ImageDataset(save_cache(pixels, tempfile.mkdtemp(), "zeros"), holdout=1)
    >>> data.sample(4, torch.Generator().manual_seed(0)).shape, data.count
    (torch.Size([4, 3, 16, 16]), 4)
    """

    def __init__(self, cache: ImageCache, holdout: int = 0, rank: int = 0, world: int = 1) -> None:
        if not 0 <= holdout < cache.count:
            raise ValueError(f"holdout={holdout} is not allowed; the cache at {str(cache.path)!r} "
                             f"holds {cache.count} images, so it must be in [0, {cache.count})")
        self.cache, self.holdout, self.rank, self.world = cache, holdout, rank, world
        self.count = cache.count - holdout
        self.dim = (3, cache.size, cache.size)

    def __repr__(self) -> str:
        return f"ImageDataset({str(self.cache.path)!r}, count={self.count}, holdout={self.holdout})"

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """This rank's share of n images drawn uniformly with replacement, values in [-1, 1].

        Returns
        -------
        Tensor (n // world, 3, S, S), float32
            Rows ``rank, rank + world, ...`` of the n drawn images.
        """
        rows = torch.randint(self.count, (n,), generator=generator)[self.rank::self.world]
        return to_unit_range(self.cache.images[rows.numpy()])

    def heldout(self) -> torch.Tensor:
        """The held-out images, (holdout, 3, S, S) float32 in [-1, 1]."""
        return to_unit_range(self.cache.images[self.count:])


def iters_for_epochs(n_images: int, epochs: float, batch_size: int, n_critic: int) -> int:
    """Generator iterations that consume ``epochs`` passes over ``n_images`` real images.

    Each critic step draws one real batch and a generator step draws none (the authors' loop), so
    one epoch is n_images / batch_size critic steps, i.e. n_images / (batch_size * n_critic)
    generator iterations, rounded up. Warm-up iterations (100 critic steps) are counted as
    ordinary ones, so a run with the warm-up sees slightly more than ``epochs`` passes. For LSUN
    bedrooms (3,033,042 images), batch 64, n_critic 5 and 25 epochs: 236,957 iterations (the
    authors' loop, which counts warm-up steps against the epoch, stops near 228k).

    >>> iters_for_epochs(3_033_042, 25, 64, 5)
    236957
    """
    return max(1, int(np.ceil(epochs * n_images / (batch_size * n_critic))))


def synthetic_images(n: int, size: int = 16, seed: int = 0, blobs: int = 3) -> np.ndarray:
    """``n`` synthetic colour images with coarse and fine structure, uint8 (n, 3, size, size).

    Each image is ``blobs`` Gaussian blobs of random position, width and colour on grey, plus one
    coloured stripe pattern of random orientation and a period of 2.5 to 6 pixels, so the set has
    content at every level of the image metric's pyramid. Not photographs: made for tests and for
    the quick CPU runs of notebook 04, and every figure made from them must say so.

    >>> synthetic_images(2, 16).shape
    (2, 3, 16, 16)
    """
    rng = np.random.default_rng(seed)
    pixels = np.arange(size) + 0.5
    y, x = pixels[None, None, :, None], pixels[None, None, None, :]
    centres = rng.uniform(0.1, 0.9, (n, blobs, 2, 1, 1)) * size
    widths = rng.uniform(0.08, 0.3, (n, blobs, 1, 1)) * size
    colours = rng.uniform(-1, 1, (n, blobs, 3, 1, 1))
    bumps = np.exp(-((y - centres[:, :, 0]) ** 2 + (x - centres[:, :, 1]) ** 2) / (2 * widths**2))
    angle = rng.uniform(0, np.pi, (n, 1, 1, 1))
    period = rng.uniform(2.5, 6.0, (n, 1, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1))
    stripes = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + phase)
    images = (colours * bumps[:, :, None]).sum(1) + rng.uniform(0.2, 0.5, (n, 3, 1, 1)) * stripes
    return np.clip(np.rint((np.tanh(images) + 1) * 127.5), 0, 255).astype(np.uint8)


__all__ = ["ImageDataset", "iters_for_epochs", "synthetic_images"]
