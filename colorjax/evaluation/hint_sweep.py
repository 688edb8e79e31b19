"""How much colour hints help a hint model (SIGGRAPH17): `sweep` samples N points from each photo's own colours as
the authors' evaluation does (`test_sweep.py` in richzhang/colorization-pytorch) and measures the mean ab error at
each N; `tile` lays out the before/after picture. The command line, and what it prints and draws, is
`colorjax/cli/hint_sweep.py` (`python -m colorjax.hint_sweep`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from colorjax import color, hints
from colorjax.inference.colorizer import Colorizer, read_image

GUTTER = 4


def sweep(
    colorizer: Colorizer,
    paths: Sequence[Path],
    counts: Sequence[int],
    *,
    hint_size: int,
    seed: int = 0,
    picture_rows: int = 0,
) -> tuple[dict[int, float], list[list[np.ndarray]]]:
    """Mean ab error per count over the photos (each photo weighted by its pixels), and the picture's rows."""
    from tqdm import tqdm

    error_sums = dict.fromkeys(counts, 0.0)
    pixels = 0
    rows = []
    key = jax.random.key(seed)
    for index, path in enumerate(tqdm(paths, unit="photo", file=sys.stderr)):
        rgb = read_image(path)
        lab = np.asarray(color.rgb_to_lab(rgb / np.float32(255.0)))
        truth = lab[..., 1:]
        pixels += truth.shape[0] * truth.shape[1]
        predictions = {}
        for count in counts:
            points = hints.hints_from_reference(rgb, count, jax.random.fold_in(key, index), size=hint_size)
            chroma = colorizer.predict_chroma(rgb, hints=points if count else None)
            error_sums[count] += float(np.linalg.norm(chroma - truth, axis=-1).sum())
            predictions[count] = (points, chroma)
        if index < picture_rows:
            rows.append(_picture_row(colorizer, rgb, lab[..., :1], predictions, max(counts), min(counts)))
    return {count: total / pixels for count, total in error_sums.items()}, rows


def _picture_row(colorizer, rgb, L, predictions, most, fewest) -> list[np.ndarray]:
    """gray with the hint patches of `most` | colours with `fewest` | with `most` | truth, uint8 images (`L`: the
    photo's lightness, (H, W, 1))."""
    points, _ = predictions[most]
    maps = hints.hint_maps(points, rgb.shape[:2])
    shown = np.where(
        maps.mask > 0,
        color.rgb_to_uint8(np.asarray(color.chroma_to_rgb(L, maps.ab, "lab"))),
        color.gray_picture(L),
    )
    # A black outline around each patch, so that small points stay visible.
    for point in points:
        half = point.size // 2 + 1
        top, left = max(point.y - half, 0), max(point.x - half, 0)
        bottom, right = point.y + half, point.x + half
        for rows, cols in (
            (slice(top, bottom + 1), slice(left, left + 1)),
            (slice(top, bottom + 1), slice(right, right + 1)),
            (slice(top, top + 1), slice(left, right + 1)),
            (slice(bottom, bottom + 1), slice(left, right + 1)),
        ):
            shown[rows, cols] = 0
    return [
        shown,
        colorizer.combine(rgb, predictions[fewest][1]),
        colorizer.combine(rgb, predictions[most][1]),
        rgb,
    ]


def tile(rows: list[list[np.ndarray]], gutter: int = GUTTER) -> np.ndarray:
    """Rows of same-sized uint8 images -> one uint8 image with white gutters."""
    height, width = rows[0][0].shape[:2]
    columns = len(rows[0])
    grid = np.full(
        (len(rows) * (height + gutter) + gutter, columns * (width + gutter) + gutter, 3),
        255,
        np.uint8,
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = gutter + r * (height + gutter), gutter + c * (width + gutter)
            grid[top : top + height, left : left + width] = image
    return grid
