"""Pictures for people: gray | predicted | truth grids, PNG files, and side-by-side panels."""

from pathlib import Path

import jax
import numpy as np

from colorjax import color


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def gray_rgb(L: np.ndarray) -> np.ndarray:
    """Lightness (..., 1) in [0, 100] shown as a gray RGB image in [0, 1] (what the model sees)."""
    return np.repeat(np.clip(np.asarray(L, np.float32) / 100.0, 0.0, 1.0), 3, axis=-1)


def comparison_grid(
    L: np.ndarray,
    predicted_chroma: np.ndarray,
    true_chroma: np.ndarray | None,
    mask: np.ndarray | None,
    color_space: str,
    max_rows: int = 8,
) -> np.ndarray:
    """uint8 image with one row per example: gray | predicted | truth (truth omitted when `true_chroma` is None)."""
    keep = np.arange(len(L)) if mask is None else np.flatnonzero(mask)
    keep = keep[:max_rows]
    L = np.asarray(L)[keep]
    panels = [
        gray_rgb(L),
        np.asarray(
            jax.device_get(color.chroma_to_rgb(L, np.asarray(predicted_chroma)[keep], color_space))
        ),
    ]
    if true_chroma is not None:
        panels.append(
            np.asarray(
                jax.device_get(color.chroma_to_rgb(L, np.asarray(true_chroma)[keep], color_space))
            )
        )
    rows = [np.concatenate([p[i] for p in panels], axis=1) for i in range(len(keep))]
    return to_uint8(np.concatenate(rows, axis=0))


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Writes a uint8 (H, W, 3) image, creating folders as needed."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path
