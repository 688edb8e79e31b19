"""Pictures for people: gray | prediction | truth grids.

The one place that lays out comparison grids (the trainer's TensorBoard grids and `evaluate`'s first-N and worst-N
grids, both from `evaluator.GridCollector`). Their gray column is `colorjax.color.gray_picture` of L, the gray
every picture for people shows; files are written by `colorjax.files` (`save_png`).

- `image_grid(gray, prediction, truth)` composes already rendered images, one row per example, pixel-exactly;
- `save_comparison_grid(...)` writes it as a PNG with a caption row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from colorjax import color, files

GRID_LABELS = ("gray", "prediction", "truth")
GRID_GUTTER = 2  # White pixels between and around the panels.
_CAPTION_HEIGHT = 14


def _as_rgb_uint8(images: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W), (N, H, W, 1) or (N, H, W, 3), uint8 or float in [0, 1] -> (N, H, W, 3) uint8."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W), (N, H, W, 1) or (N, H, W, 3), got {images.shape}.")
    if images.dtype != np.uint8:
        images = color.rgb_to_uint8(np.asarray(images))
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def image_grid(
    gray: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray | None = None,
    *,
    gutter: int = GRID_GUTTER,
) -> np.ndarray:
    """One row per image, columns gray | prediction | truth (truth left out when None) between white gutters.

    Each argument holds N same-sized images, uint8 or float in [0, 1], with 1 or 3 channels. Returns uint8
    (rows, cols, 3).
    """
    named = zip((gray, prediction, truth), GRID_LABELS, strict=True)
    columns = [_as_rgb_uint8(images, name) for images, name in named if images is not None]
    if len({c.shape for c in columns}) != 1:
        raise ValueError(
            f"{', '.join(GRID_LABELS[: len(columns)])} must hold the same number of same-sized images, got "
            + ", ".join(str(c.shape[:3]) for c in columns)
        )
    n, height, width, _ = columns[0].shape
    grid = np.full(
        (n * height + (n + 1) * gutter, len(columns) * width + (len(columns) + 1) * gutter, 3),
        255,
        dtype=np.uint8,
    )
    for row in range(n):
        top = gutter + row * (height + gutter)
        for column, images in enumerate(columns):
            left = gutter + column * (width + gutter)
            grid[top : top + height, left : left + width] = images[row]
    return grid


def save_comparison_grid(
    gray: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray | None,
    path: str | Path,
    *,
    header: bool = True,
) -> Path:
    """Saves `image_grid(gray, prediction, truth)` as a PNG, with a "gray | prediction | truth" caption row on top
    when `header`."""
    from PIL import Image, ImageDraw

    grid = image_grid(gray, prediction, truth)
    if header:
        columns = 2 if truth is None else 3
        width = (grid.shape[1] - GRID_GUTTER) // columns
        captioned = Image.new("RGB", (grid.shape[1], grid.shape[0] + _CAPTION_HEIGHT), "white")
        captioned.paste(Image.fromarray(grid), (0, _CAPTION_HEIGHT))
        draw = ImageDraw.Draw(captioned)
        for column, label in enumerate(GRID_LABELS[:columns]):
            draw.text((GRID_GUTTER + column * width + 2, 1), label, fill="black")
        grid = np.asarray(captioned)
    return files.save_png(grid, path)
