"""The empirical ab prior of a configured dataset, for Zhang et al.'s class rebalancing (`compute_prior`,
`save_prior`); the command line is `colorjax/cli/prior.py` (`python -m colorjax.prior`).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import data, files, quantize

DEFAULT_BATCH_SIZE = 64


@dataclasses.dataclass(frozen=True)
class PriorResult:
    """A computed prior and what went into it."""

    prior: np.ndarray  # float64 (313,), sums to 1
    counts: np.ndarray  # int64 (313,): target pixels nearest to each bin, before smoothing
    num_images: int  # images counted
    num_colourless: int  # images skipped for having no colour signal

    def rebalance_range(self, lam: float = 0.5) -> tuple[float, float]:
        weights = quantize.rebalance_weights(self.prior, lam)
        return float(weights.min()), float(weights.max())


@functools.partial(jax.jit, static_argnames=("pixel_stride",))
def _count_batch(chroma: jax.Array, mask: jax.Array, min_chroma: jax.Array, pixel_stride: int):
    """Bin counts of the colourful, unpadded images of one batch, and how many of each kind there were."""
    # The training pipeline's `has_color` test, so the prior sees the photos training learns from.
    colourful = jnp.any(jnp.abs(chroma) > min_chroma, axis=(1, 2, 3))
    kept = colourful & mask
    targets = chroma[:, ::pixel_stride, ::pixel_stride]
    counts = quantize.bin_counts(targets, kept[:, None, None])
    return counts, jnp.sum(kept), jnp.sum(mask & ~colourful)


def compute_prior(
    data_config: Any,
    *,
    max_images: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pixel_stride: int = 4,
    sigma: float = 5.0,
    progress: bool = True,
) -> PriorResult:
    """The smoothed ab prior of `data_config`'s training split (see the module docstring for what is counted)."""
    if data_config.color_space != "lab":
        raise ValueError(
            f"The 313-bin prior is over CIE Lab ab, but config.data.color_space is "
            f"{data_config.color_space!r}; use a Lab config."
        )
    if pixel_stride < 1 or batch_size < 1:
        raise ValueError(f"--pixel-stride and --batch-size must be >= 1, got {pixel_stride}, {batch_size}.")
    if max_images is not None and max_images < 1:
        raise ValueError(f"--max-images must be >= 1, got {max_images}.")
    data.hide_accelerators_from_tensorflow()
    source = data.make_source(data_config, data_config.train_split)
    total = source.num_examples if max_images is None else min(source.num_examples, max_images)
    num_batches = data.num_eval_batches(source.num_examples, batch_size, max_images)
    min_chroma = jnp.float32(data_config.min_chroma)

    from tqdm import tqdm

    bar = tqdm(total=total, unit="image", desc="ab prior", disable=not progress, file=sys.stderr)
    counts = np.zeros(quantize.AB_NUM_BINS, np.int64)
    num_images = num_colourless = 0
    # Counting runs asynchronously on the device while tf.data decodes the next batch; results are fetched at the end.
    pending = []
    for batch in data.eval_batches(
        source,
        data_config,
        local_batch_size=batch_size,
        num_batches=num_batches,
        max_examples=max_images,
    ):
        pending.append(_count_batch(batch["chroma"], batch["mask"], min_chroma, pixel_stride))
        bar.update(int(batch["mask"].sum()))
        if len(pending) >= 64:  # bound the device memory held by results not yet fetched
            counts, num_images, num_colourless = _accumulate(pending, counts, num_images, num_colourless)
            pending = []
    counts, num_images, num_colourless = _accumulate(pending, counts, num_images, num_colourless)
    bar.close()
    if num_images == 0:
        raise data.DataError(
            f"No image of {source.description} has colour (every pixel within |a|,|b| <= "
            f"{float(min_chroma)}), or none could be decoded: there is no colour to build a prior from."
        )
    prior = quantize.smoothed_prior(counts, sigma)
    return PriorResult(prior, counts, num_images, num_colourless)


def _accumulate(pending, counts, num_images, num_colourless):
    for batch_counts, kept, colourless in jax.device_get(pending):
        counts = counts + np.asarray(batch_counts, np.int64)
        num_images += int(kept)
        num_colourless += int(colourless)
    return counts, num_images, num_colourless


def _check_out_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"--out {path}: the prior is written as a .npy file; name it *.npy.")
    return path


def save_prior(prior: np.ndarray, path: str | Path) -> Path:
    """Writes a prior as the float64 (313,) `.npy` that `quantize.load_prior` reads."""
    path = _check_out_path(path)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(prior, np.float64))
    return files.atomic_write(path, buffer.getvalue())
