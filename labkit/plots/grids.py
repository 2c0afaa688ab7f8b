"""Image batches as pictures: tiled into one grid (as the authors' sample grids), written as a
PNG, and shown side by side or in a table."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.figure import Figure

from labkit import rundir


def image_grid(images, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images in [-1, 1] into one uint8 RGB picture (white gaps), as the authors' grids.

    Parameters
    ----------
    images : array or tensor (N, 3, S, S), values in [-1, 1]
    nrow : int
        Images per row.
    padding : int
        Pixels between images.

    Returns
    -------
    ndarray (rows * (S + padding) + padding, nrow * (S + padding) + padding, 3), uint8
        Pixel p = round((x + 1) * 127.5), clipped to [0, 255].

    >>> image_grid(np.zeros((3, 3, 16, 16)), nrow=2).shape
    (38, 38, 3)
    """
    x = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=float)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, S, S); got {x.shape}")
    n, _, h, w = x.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, 3), 255,
                   dtype=np.uint8)
    pixels = np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for k, image in enumerate(pixels):
        top, left = padding + (k // nrow) * (h + padding), padding + (k % nrow) * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_image_grid(images, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG at ``path``, atomically (temporary file
    and ``os.replace``, so a reader never sees half a picture)."""
    path = Path(path)
    with rundir.atomic_path(path) as tmp:
        PIL.Image.fromarray(image_grid(images, nrow)).save(tmp, format="png")
    return path


def sample_grids(grids: Mapping[str, object], *, title: str, nrow: int = 8) -> Figure:
    """Image grids side by side, one panel each (e.g. per iteration or per generator).

    Parameters
    ----------
    grids : mapping of panel title -> images (N, 3, S, S) in [-1, 1]
    title : str
        Say which data and which device produced the images.
    nrow : int
        Images per row of each grid.
    """
    if not grids:
        raise ValueError("grids must hold at least one set of images")
    fig, axes = plt.subplots(1, len(grids), figsize=(3.3 * len(grids), 3.8), squeeze=False)
    for ax, (name, images) in zip(axes.flat, grids.items(), strict=True):
        ax.imshow(image_grid(images, nrow), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(str(name), fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid_table(columns: Mapping[str, Sequence], rows: Sequence[str], *, title: str,
               scale: float = 2.0) -> Figure:
    """Sample grids in a table: one column per key of ``columns`` (the paper's figures put WGAN
    left and the standard GAN right), one row per entry of ``rows`` (e.g. seeds).

    Parameters
    ----------
    columns : mapping of column title -> sequence of one image per row
        Each image is a picture (H, W, 3) uint8, as read from a grid PNG, or a batch
        (N, 3, S, S) in [-1, 1], tiled by :func:`image_grid`; None leaves the cell empty.
    rows : sequence of str
        Row titles, written on the left.
    title : str
        Say which data and which device produced the images.
    scale : float
        Screen pixels per image pixel at the figure's dpi (2: a 16 x 16 digit shows as 32 x 32).
    """
    if not columns or not rows:
        raise ValueError("columns and rows must each hold at least one entry")
    for name, images in columns.items():
        if len(images) != len(rows):
            raise ValueError(f"column {name!r} has {len(images)} images for {len(rows)} rows")
    pictures = [[None if im is None else
                 image_grid(im) if hasattr(im, "detach") or np.ndim(im) == 4 else np.asarray(im)
                 for im in images] for images in columns.values()]
    shapes = [p.shape for column in pictures for p in column if p is not None]
    height, width = (max(s[0] for s in shapes), max(s[1] for s in shapes)) if shapes else (1, 1)
    inches = scale / plt.rcParams["figure.dpi"]
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(len(columns) * width * inches + 0.6,
                                      len(rows) * height * inches + 0.3 * len(rows) + 0.6))
    for j, (name, column) in enumerate(zip(columns, pictures, strict=True)):
        for i, picture in enumerate(column):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if picture is not None:
                ax.imshow(picture, interpolation="nearest")
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
