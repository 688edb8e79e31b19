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

import sys

from colorjax import ColorjaxError
from colorjax.cli import common as cli

# colorjax.train.prior.DEFAULT_BATCH_SIZE, written out here: that module imports JAX, which --help does without
# (tests/integration/test_command_manners.py checks that the two agree).
DEFAULT_BATCH_SIZE = 64

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
    import numpy as np

    from colorjax import quantize
    from colorjax.train.prior import _check_out_path, compute_prior, save_prior

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
    except (ColorjaxError, ValueError, FileNotFoundError) as e:
        cli.print_error(e)
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


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
