"""The empirical ab prior of a configured dataset, for Zhang et al.'s class rebalancing.

    python -m colorjax.prior --config configs/zhang_eccv16.py:places365 --out priors/places365.npy
    python -m colorjax.prior --config configs/zhang_eccv16.py:folder --config.data.source=folder:~/photos \\
        --out priors/photos.npy --max-images 20000

then train with `--config.loss.prior_path=priors/places365.npy` (a config's `loss.prior_path`; None = the shipped
ImageNet prior).

What is counted: every image of the config's training split once (`config.data.train_split`, or the first
`--max-images`), as the evaluation pipeline delivers it: shorter side resized to `config.data.image_size` (or
`eval_resize_size`), centre crop. Deterministic crops make the prior reproducible and count each photo once; the
training stream's random resized crops see the same photos at much the same scales, so the histogram differs little,
but it would depend on the seed and the number of epochs. Photos without colour (every |a|, |b| <= `min_chroma`)
are skipped, as training skips them. Each image's ab values are taken at every `--pixel-stride`th pixel (4 by default:
the grid on which the loss takes its targets), assigned to their nearest of the 313 bins (`quantize.bin_counts`),
and the histogram is smoothed by a Gaussian of sigma = 5 ab units (`quantize.smoothed_prior`), as the authors made
their ImageNet prior. The output is a float64 (313,) `.npy` that `quantize.load_prior` reads.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import cli, data, quantize

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
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(prior, np.float64))
    return path


USAGE = """usage: python -m colorjax.prior --config CONFIG[:VARIANT] --out F.npy [--max-images N]
                                [--config.FIELD=VALUE ...]

Counts the ab colours of the config's training split into the smoothed 313-bin prior that Zhang et al.'s class
rebalancing uses; train with --config.loss.prior_path=F.npy."""
FLAG_NAMES = ("config", "out", "max-images", "batch-size", "pixel-stride", "sigma")


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m colorjax.prior --config configs/X.py[:arg] --out F.npy [--max-images N]`."""
    from absl import flags
    from ml_collections import config_flags

    argv = list(sys.argv if argv is None else ["colorjax.prior", *argv])
    # Own FlagValues (not absl's global FLAGS), so main() can run more than once in a process (tests).
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Path to a config file (configs/X.py[:arg]); --config.FIELD=VALUE overrides.",
        flag_values=flag_values,
        lock_config=True,
        sys_argv=argv,
    )
    flags.DEFINE_string("out", None, "The .npy file to write.", flag_values=flag_values)
    flags.DEFINE_integer("max-images", None, "Count only the first N images of the split.", flag_values=flag_values)
    flags.DEFINE_integer("batch-size", DEFAULT_BATCH_SIZE, "Images per counting batch.", flag_values=flag_values)
    flags.DEFINE_integer(
        "pixel-stride",
        4,
        "Count every Nth pixel (4: the loss's target grid).",
        flag_values=flag_values,
    )
    flags.DEFINE_float("sigma", 5.0, "Gaussian smoothing over the ab plane, in ab units.", flag_values=flag_values)
    try:
        cli.parse_absl_flags(argv, USAGE, FLAG_NAMES, flag_values=flag_values)
        if flag_values.config is None or flag_values.out is None:
            raise cli.UsageError(["--config and --out are required; see --help"])
    except cli.HelpShown:
        return 0
    except cli.UsageError as e:
        cli.print_error(e)
        return cli.USAGE_ERROR
    config = flag_values.config
    try:
        _check_out_path(flag_values.out)  # before the long part
        result = compute_prior(
            config.data,
            max_images=flag_values["max-images"].value,
            batch_size=flag_values["batch-size"].value,
            pixel_stride=flag_values["pixel-stride"].value,
            sigma=flag_values.sigma,
        )
        path = save_prior(result.prior, flag_values.out)
    except (data.DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    lam = config.loss.lam if "lam" in config.loss else quantize.REBALANCE_LAMBDA
    low, high = result.rebalance_range(lam)
    a, b = quantize.ab_bin_centres()[int(np.argmax(result.prior))]
    skipped = f" ({result.num_colourless} without colour skipped)" if result.num_colourless else ""
    print(
        f"Counted {result.num_images} images{skipped}, {int(result.counts.sum()):,} pixels; "
        f"wrote {path}.\nMost frequent bin: a={a:g}, b={b:g} (p={result.prior.max():.4f}); "
        f"{int(np.count_nonzero(result.counts))} of {quantize.AB_NUM_BINS} bins seen.\n"
        f"Rebalancing weights (lambda={lam}) span {low:.4g} to {high:.4g} "
        "(the shipped ImageNet prior: 0.0965 to 6.175).\n"
        f"Use it with --config.loss.prior_path={path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
