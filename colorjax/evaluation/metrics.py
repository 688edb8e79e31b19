"""Evaluation metrics: per-image sufficient statistics in JAX, turned into the reported numbers on the host.

Every metric is split in two halves so that evaluation is batched, jit-able and data parallel like training, and so
that padding and the number of devices can never change a reported number:

    truth = views_from_chroma(L, batch["chroma"], "lab")             # ground truth: RGB, Lab ab, Luv uv
    pred = views_from_chroma(L, outputs["chroma"], "lab")            # or a baseline: gray_prediction(L), ...
    stats = image_statistics(pred, truth)                            # jit-able; every entry has a leading N axis
    reduced = reduce_statistics(stats, mask)                         # jit-able; counts summed over the batch
    accumulator.add(reduced)                                         # host: int64 totals, per-image float values
    numbers = finalize(accumulator)                                  # host: the reported metrics (a flat dict)

`image_statistics` returns two kinds of entries, told apart by dtype:
- integer entries are additive COUNTS (pixels, bin matches, the joint histogram of colour bin x ab-error bin behind
  every AuC variant). `reduce_statistics` sums them over the batch with the padding mask, on the device: integer
  sums are exact in any order, so any sharding of the batch over devices gives the same totals.
- floating entries are PER-IMAGE VALUES (per-image PSNR, colourfulness, sums over an image's pixels). They stay per
  image; the host drops padded rows and sums them with `math.fsum` (correctly rounded, so order-independent).
Under `jax.jit` with the batch sharded on a mesh's "data" axis, the counts come back replicated (XLA inserts the
all-reduce) and the per-image values come back sharded like the batch.

Conventions (also in `CONVENTIONS`, which `colorjax.evaluate` copies into metrics.json):
- RGB metrics (PSNR, colourfulness, saturation) use 8-bit levels: round(clip(rgb, 0, 1) * 255).
- PSNR is computed per image and averaged over images. An image whose MSE is 0 (identical images) or whose PSNR
  exceeds `PSNR_CAP_DB` = 100 dB is reported AS 100 dB (a 256x256 image one level off at a single pixel already
  reaches 101 dB), and the number of such images is reported next to the mean (`psnr_*_capped_images`), with
  the mean over the other images (`psnr_*_db_below_cap`, the "identical images excluded" reading). The cap keeps
  every row on the same images, but it favours the gray baseline on black-and-white ground truth (exactly
  reproduced): read the capped count alongside.
- PSNR on ab uses the peak `AB_PSNR_PEAK` = 220, the span of the ab range [-110, 110] (Zhang et al.'s output scale).
- AuC (Zhang et al. 2016): per-pixel ab L2 error e; the fraction of pixels with e <= t at t = 0, 1, ..., 150;
  the area under that curve by the trapezoid rule, divided by 150 and given in percent. Ground truth scores 100.
- Rebalanced AuC: each pixel weighted by the inverse frequency of its ground-truth colour class: the nearest of the
  313 ab bins by `quantize.nearest_bin`, the class the Zhang loss rebalances by. `auc_rebalanced_percent` takes the
  frequency from the evaluated images' own ground-truth histogram, i.e. every colour bin present in the ground truth
  counts equally. `auc_rebalanced_prior_percent` takes it from a
  fixed prior (default: the shipped ImageNet prior), which is what Zhang et al.'s ImageNet numbers mean. On ImageNet
  the two agree (the validation histogram is the prior); on another dataset the ImageNet prior gives weights up to
  1/6e-9 to colours ImageNet almost never shows, so the dataset's own histogram is the headline number.
- Colourfulness (Hasler & Suesstrunk 2003) per image on 0..255 RGB, averaged over images;
  delta-CF = |mean CF(prediction) - mean CF(ground truth)|.
- CF as the colorization papers compute it (`cf`, `delta_cf`: CT2's `segm/eval_colorfullness.py`, DDColor's
  `basicsr/metrics/colorfulness.py`, the numbers of their tables): the same formula on the ABSOLUTE opponent
  channels |R - G| and |(R + G) / 2 - B| (population std), per image on 8-bit levels, averaged over images. It
  differs from Hasler & Suesstrunk's signed channels (`colourfulness`) on every image with both signs of R - G.
- FID (`fid_inception_v3`, the papers' paired FID): see `colorjax.models.inception_v3` for the features; the
  colorized and the ground-truth images of the same photos are the two sets (`FeatureMoments`, `frechet_distance`).
- Acc.U / Acc.V (Hwang & Zhou): fraction of pixels whose predicted CIELUV 50-bin index (`quantize.uv_to_bins`)
  equals the true one, for u and v separately.
- Saturation difference (Hwang & Zhou; our reading of their "saturation difference"): the relative difference of
  the mean HSV saturation, 100 * |mean S(prediction) - mean S(truth)| / mean S(truth), means over all pixels.

The prediction's chroma in the model's own colour space is used as predicted (e.g. a Lab model's raw ab, even out of
gamut); the other space is derived from the displayed, clipped RGB. The gray baseline is exactly zero in both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.quantize import AB_NUM_BINS, load_prior, nearest_bin, uv_to_bins

AUC_MAX_THRESHOLD = 150
# An ab error e falls in histogram bin ceil(e) (0..150), or in the last bin when e > 150. For an integer t,
# e <= t exactly when ceil(e) <= t, so cumulative sums of this histogram give the AuC curve with no approximation.
NUM_ERROR_BINS = AUC_MAX_THRESHOLD + 2
PSNR_CAP_DB = 100.0
RGB_PEAK = 255.0
AB_PSNR_PEAK = 220.0
COLOURFULNESS_MEAN_WEIGHT = 0.3

CONVENTIONS = {
    "rgb": "8-bit levels round(clip(rgb, 0, 1) * 255)",
    "psnr": "per image, averaged over images; identical images (MSE 0) and PSNR above the cap count as the cap",
    "psnr_cap_db": PSNR_CAP_DB,
    "psnr_rgb_peak": RGB_PEAK,
    "psnr_ab_peak": AB_PSNR_PEAK,
    "auc_thresholds": [0, AUC_MAX_THRESHOLD],
    "auc_integration": "trapezoid over integer thresholds 0..150, divided by 150, in percent",
    "auc_rebalanced": "inverse frequency of the ground-truth 313-bin class in the evaluated ground truth",
    "auc_rebalanced_prior": "inverse of a fixed prior over the 313 bins (default: ImageNet prior)",
    "colourfulness": "Hasler & Suesstrunk 2003 on 0..255 RGB, per image, averaged over images",
    "delta_colourfulness": "|mean CF(prediction) - mean CF(ground truth)|",
    "cf": "CT2/DDColor's colourfulness: Hasler & Suesstrunk on |R - G|, |(R + G) / 2 - B| of 8-bit levels, per image",
    "delta_cf": "|mean cf(prediction) - mean cf(ground truth)|",
    "fid_inception_v3": "paired FID: torchvision InceptionV3 pool features, 299 bilinear, CT2's normalisation",
    "acc_uv": "fraction of pixels whose CIELUV 50-bin index (width 4 over [-100, 100]) matches, per channel",
    "saturation_difference": "100 * |mean HSV S(prediction) - mean S(truth)| / mean S(truth), over all pixels",
    "ab_l2_error": "mean over all pixels of the Euclidean ab error",
}


class ColourViews(NamedTuple):
    """One batch of images seen in every colour space a metric needs (a pytree, so it passes through jit).

    rgb: (N, H, W, 3) sRGB in [0, 1]; ab: (N, H, W, 2) CIE Lab a, b; uv: (N, H, W, 2) CIE Luv u, v.
    """

    rgb: jax.Array
    ab: jax.Array
    uv: jax.Array


# ----------------------------------------------------------------------------------------------------------------
# Colour views of predictions, ground truth and baselines.


def views_from_rgb(rgb: jax.Array) -> ColourViews:
    """Views of sRGB images (N, H, W, 3) in [0, 1] (video frames scored against their own colours)."""
    from colorjax import color

    return ColourViews(rgb=rgb, ab=color.rgb_to_lab(rgb)[..., 1:], uv=color.rgb_to_luv(rgb)[..., 1:])


def views_from_chroma(L: jax.Array, chroma: jax.Array, color_space: str) -> ColourViews:
    """Views of a prediction: lightness L (N, H, W, 1) and chroma (N, H, W, 2) in `color_space` ("lab" or "luv").

    The native chroma is kept as predicted; the other space is derived from the displayed (clipped) RGB.
    """
    if color_space not in ("lab", "luv"):
        raise ValueError(f"color_space must be 'lab' or 'luv', got {color_space!r}.")
    from colorjax import color

    rgb = jnp.clip(color.chroma_to_rgb(L, chroma, color_space), 0.0, 1.0)
    if color_space == "lab":
        return ColourViews(rgb=rgb, ab=chroma, uv=color.rgb_to_luv(rgb)[..., 1:])
    return ColourViews(rgb=rgb, ab=color.rgb_to_lab(rgb)[..., 1:], uv=chroma)


def gray_prediction(L: jax.Array) -> ColourViews:
    """The gray baseline: zero chroma (exactly, in both Lab and Luv) at the true lightness L (N, H, W, 1)."""
    from colorjax import color

    zeros = jnp.zeros(L.shape[:-1] + (2,), L.dtype)
    rgb = jnp.clip(color.chroma_to_rgb(L, zeros, "lab"), 0.0, 1.0)
    return ColourViews(rgb=rgb, ab=zeros, uv=zeros)


def mean_colour_prediction(L: jax.Array, mean_ab: jax.Array | np.ndarray) -> ColourViews:
    """The mean-colour baseline: every pixel gets the same ab (e.g. `ground_truth_mean_ab(accumulator)`)."""
    mean_ab = jnp.asarray(mean_ab, L.dtype)
    if mean_ab.shape != (2,):
        raise ValueError(f"mean_ab must hold the two numbers (a, b), got shape {mean_ab.shape}.")
    ab = jnp.broadcast_to(mean_ab, L.shape[:-1] + (2,))
    return views_from_chroma(L, ab, "lab")


def baseline_predictions(L: jax.Array, truth: ColourViews, mean_ab: jax.Array | np.ndarray) -> dict[str, ColourViews]:
    """The baseline rows of every evaluation, on the same images: ground truth, gray, and the mean colour."""
    return {
        "ground_truth": truth,
        "gray": gray_prediction(L),
        "mean_colour": mean_colour_prediction(L, mean_ab),
    }


# ----------------------------------------------------------------------------------------------------------------
# Per-image statistics (jit-able).


def rgb_levels(rgb: jax.Array) -> jax.Array:
    """8-bit levels 0..255 (`color.rgb_to_uint8`, as float32 for arithmetic) of sRGB in [0, 1]."""
    from colorjax import color

    return color.rgb_to_uint8(jnp.asarray(rgb)).astype(jnp.float32)


def psnr_db(mse: jax.Array, peak: float) -> tuple[jax.Array, jax.Array]:
    """PSNR in dB from mean squared errors, capped at `PSNR_CAP_DB`; returns (psnr, was_capped)."""
    safe_mse = jnp.where(mse > 0, mse, 1.0)
    raw = jnp.where(mse > 0, 10.0 * jnp.log10(peak**2 / safe_mse), jnp.inf)
    capped = raw >= PSNR_CAP_DB
    return jnp.where(capped, PSNR_CAP_DB, raw), capped


def colourfulness(levels: jax.Array) -> jax.Array:
    """Hasler & Suesstrunk (2003) colourfulness of each image; levels (N, H, W, 3) on 0..255 -> (N,)."""
    red, green, blue = levels[..., 0], levels[..., 1], levels[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    axes = (1, 2)
    spread = jnp.sqrt(jnp.var(rg, axis=axes) + jnp.var(yb, axis=axes))
    offset = jnp.sqrt(jnp.mean(rg, axis=axes) ** 2 + jnp.mean(yb, axis=axes) ** 2)
    return spread + COLOURFULNESS_MEAN_WEIGHT * offset


def papers_colourfulness(levels: jax.Array) -> jax.Array:
    """CT2's and DDColor's colourfulness of each image (their `image_colorfulness` / `calculate_cf`): Hasler &
    Suesstrunk's std + 0.3 * mean on the absolute opponent channels; levels (N, H, W, 3) on 0..255 -> (N,)."""
    red, green, blue = levels[..., 0], levels[..., 1], levels[..., 2]
    rg = jnp.abs(red - green)
    yb = jnp.abs(0.5 * (red + green) - blue)
    axes = (1, 2)
    spread = jnp.sqrt(jnp.var(rg, axis=axes) + jnp.var(yb, axis=axes))
    offset = jnp.sqrt(jnp.mean(rg, axis=axes) ** 2 + jnp.mean(yb, axis=axes) ** 2)
    return spread + COLOURFULNESS_MEAN_WEIGHT * offset


def hsv_saturation(levels: jax.Array) -> jax.Array:
    """HSV saturation (max - min) / max per pixel (0 for black); levels (..., 3) -> (...)."""
    brightest = jnp.max(levels, axis=-1)
    darkest = jnp.min(levels, axis=-1)
    return jnp.where(brightest > 0, (brightest - darkest) / jnp.where(brightest > 0, brightest, 1.0), 0.0)


def area_under_curve(cdf):
    """Zhang et al.'s AuC in percent from the fraction within each threshold 0..150 (..., 151); numpy or jax."""
    interior = cdf.sum(axis=-1) - 0.5 * (cdf[..., 0] + cdf[..., -1])
    return 100.0 * interior / AUC_MAX_THRESHOLD


def _check_views(pred: ColourViews, truth: ColourViews) -> None:
    for name, p, t in zip(ColourViews._fields, pred, truth, strict=True):
        if p.shape != t.shape:
            raise ValueError(f"prediction and ground truth disagree in {name} shape: {p.shape} vs {t.shape}.")
    if truth.rgb.ndim != 4 or truth.rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be (N, H, W, 3), got {truth.rgb.shape}.")
    if truth.ab.shape != truth.rgb.shape[:-1] + (2,) or truth.uv.shape != truth.ab.shape:
        raise ValueError(
            f"ab and uv must be (N, H, W, 2) matching rgb {truth.rgb.shape}, got {truth.ab.shape} and {truth.uv.shape}."
        )


def image_statistics(pred: ColourViews, truth: ColourViews) -> dict[str, jax.Array]:
    """Per-image sufficient statistics of a prediction against the ground truth (every entry has leading axis N).

    Integer entries are counts (summed over images by `reduce_statistics`); float entries are per-image values.
    """
    _check_views(pred, truth)
    n, height, width, _ = truth.rgb.shape
    pixels = height * width
    pred = ColourViews(*(jnp.asarray(x, jnp.float32) for x in pred))
    truth = ColourViews(*(jnp.asarray(x, jnp.float32) for x in truth))

    # 8-bit RGB: PSNR, colourfulness, saturation.
    pred_levels, true_levels = rgb_levels(pred.rgb), rgb_levels(truth.rgb)
    rgb_mse = jnp.mean(jnp.square(pred_levels - true_levels), axis=(1, 2, 3))
    psnr_rgb, psnr_rgb_capped = psnr_db(rgb_mse, RGB_PEAK)

    # ab error: PSNR, mean L2, and the joint histogram (ground-truth colour bin, ceil(error)) behind every AuC.
    ab_difference = pred.ab - truth.ab
    ab_squared_error_sum = jnp.sum(jnp.square(ab_difference), axis=(1, 2, 3))
    psnr_ab, psnr_ab_capped = psnr_db(ab_squared_error_sum / (2 * pixels), AB_PSNR_PEAK)
    ab_error = jnp.sqrt(jnp.sum(jnp.square(ab_difference), axis=-1))  # (N, H, W)
    error_bin = jnp.clip(jnp.ceil(ab_error), 0, NUM_ERROR_BINS - 1).astype(jnp.int32)
    colour_bin = nearest_bin(truth.ab)  # the colour class of the loss's rebalancing, too
    joint = (colour_bin * NUM_ERROR_BINS + error_bin).reshape(n, pixels)
    histogram = jax.vmap(lambda index: jnp.bincount(index, length=AB_NUM_BINS * NUM_ERROR_BINS))(joint).reshape(
        n, AB_NUM_BINS, NUM_ERROR_BINS
    )
    error_counts = jnp.sum(histogram, axis=1)  # (N, NUM_ERROR_BINS)
    image_cdf = jnp.cumsum(error_counts, axis=-1)[:, : AUC_MAX_THRESHOLD + 1] / pixels

    # CIELUV 50-bin accuracy.
    bins_match = uv_to_bins(pred.uv) == uv_to_bins(truth.uv)  # (N, H, W, 2)
    matches = jnp.sum(bins_match, axis=(1, 2)).astype(jnp.int32)  # (N, 2)

    pred_saturation = jnp.sum(hsv_saturation(pred_levels), axis=(1, 2))
    true_saturation = jnp.sum(hsv_saturation(true_levels), axis=(1, 2))

    def count(x):
        return jnp.broadcast_to(jnp.asarray(x, jnp.int32), (n,))

    return {
        # counts
        "images": count(1),
        "pixels": count(pixels),
        "psnr_rgb_capped": psnr_rgb_capped.astype(jnp.int32),
        "psnr_ab_capped": psnr_ab_capped.astype(jnp.int32),
        "ab_error_histogram": histogram.astype(jnp.int32),
        "u_bin_matches": matches[:, 0],
        "v_bin_matches": matches[:, 1],
        # per-image values
        "psnr_rgb_db": psnr_rgb,
        "psnr_ab_db": psnr_ab,
        "ab_l2_error": jnp.mean(ab_error, axis=(1, 2)),
        "ab_error_sum": jnp.sum(ab_error, axis=(1, 2)),
        "ab_squared_error_sum": ab_squared_error_sum,
        "auc_percent": area_under_curve(image_cdf),
        "colourfulness": colourfulness(pred_levels),
        "colourfulness_ground_truth": colourfulness(true_levels),
        "cf": papers_colourfulness(pred_levels),
        "cf_ground_truth": papers_colourfulness(true_levels),
        "acc_u_percent": 100.0 * matches[:, 0] / pixels,
        "acc_v_percent": 100.0 * matches[:, 1] / pixels,
        "saturation": pred_saturation / pixels,
        "saturation_ground_truth": true_saturation / pixels,
        "saturation_sum": pred_saturation,
        "saturation_ground_truth_sum": true_saturation,
        "ground_truth_ab_sum": jnp.sum(truth.ab, axis=(1, 2)),
    }


def classification_statistics(
    logits_colorized: jax.Array, logits_ground_truth: jax.Array, labels: jax.Array
) -> dict[str, jax.Array]:
    """Semantic interpretability counts (Zhang et al.): a classifier's top-1 on colorized vs ground-truth images.

    logits_*: (N, classes) from the same classifier on the colorized and on the true colour images; labels (N,).
    Merge the result into `image_statistics`' dict (or reduce it on its own) before `reduce_statistics`.
    """
    if logits_colorized.shape != logits_ground_truth.shape or logits_colorized.ndim != 2:
        raise ValueError(
            "logits must be two (N, classes) arrays of one shape, got "
            f"{logits_colorized.shape} and {logits_ground_truth.shape}."
        )
    if labels.shape != logits_colorized.shape[:1]:
        raise ValueError(f"labels must be (N,) = {logits_colorized.shape[:1]}, got {labels.shape}.")
    top1_colorized = jnp.argmax(logits_colorized, axis=-1)
    top1_truth = jnp.argmax(logits_ground_truth, axis=-1)
    return {
        "classified_images": jnp.ones(labels.shape, jnp.int32),
        "top1_correct_colorized": (top1_colorized == labels).astype(jnp.int32),
        "top1_correct_ground_truth": (top1_truth == labels).astype(jnp.int32),
        "top1_agreement": (top1_colorized == top1_truth).astype(jnp.int32),
    }


def reduce_statistics(stats: Mapping[str, jax.Array], mask: jax.Array) -> dict[str, jax.Array]:
    """Drops padded examples (mask False): counts summed over the batch, per-image values kept (padded rows 0).

    jit-able; the returned "mask" tells the host which per-image rows are real.
    """
    mask = jnp.asarray(mask).astype(bool)
    reduced = {}
    for name, value in stats.items():
        if value.shape[:1] != mask.shape:
            raise ValueError(f"statistic {name!r} has leading shape {value.shape[:1]}, mask {mask.shape}.")
        keep = mask.reshape(mask.shape + (1,) * (value.ndim - 1))
        # where, not multiply: a padded example may hold NaN or inf, which must not leak into any sum.
        kept = jnp.where(keep, value, jnp.zeros((), value.dtype))
        is_count = jnp.issubdtype(value.dtype, jnp.integer)
        reduced[name] = jnp.sum(kept, axis=0) if is_count else kept
    reduced["mask"] = mask
    return reduced


# ----------------------------------------------------------------------------------------------------------------
# Host side: accumulation and the reported numbers.


class MetricsAccumulator:
    """Running totals over an evaluation: int64 sums of the counts, and every real image's per-image values."""

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}
        self._values: dict[str, list[np.ndarray]] = {}

    def add(self, reduced: Mapping[str, jax.Array | np.ndarray]) -> None:
        """Adds one batch's `reduce_statistics` output (device arrays are fetched here)."""
        reduced = jax.device_get(dict(reduced))
        if "mask" not in reduced:
            raise ValueError("add() takes the output of reduce_statistics (it has no 'mask').")
        mask = np.asarray(reduced["mask"]).astype(bool)
        for name, value in reduced.items():
            if name == "mask":
                continue
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.integer):
                self.counts[name] = self.counts.get(name, 0) + value.astype(np.int64)
            else:
                self._values.setdefault(name, []).append(value[mask])

    def per_image(self) -> dict[str, np.ndarray]:
        """Per-image values of every real image seen so far, in evaluation order (for the per-image CSV)."""
        return {name: np.concatenate(parts) for name, parts in self._values.items()}


def ground_truth_mean_ab(accumulator: MetricsAccumulator) -> np.ndarray:
    """Mean ground-truth (a, b) over every pixel seen: the mean-colour baseline's guess."""
    sums = accumulator.per_image()["ground_truth_ab_sum"]
    pixels = int(accumulator.counts["pixels"])
    return np.array([math.fsum(sums[:, 0]) / pixels, math.fsum(sums[:, 1]) / pixels])


def _cumulative(histogram: np.ndarray) -> np.ndarray:
    """Count within each threshold 0..150 from counts per ceil(error) bin (last axis)."""
    return np.cumsum(histogram, axis=-1)[..., : AUC_MAX_THRESHOLD + 1]


def auc_curves(histogram: np.ndarray, prior: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The three AuC curves (fraction within t = 0..150) from the (313, NUM_ERROR_BINS) joint count histogram.

    "plain": every pixel counts 1. "rebalanced": pixel weight 1 / (its bin's pixel count), so each bin present in
    the ground truth counts equally. "rebalanced_prior": pixel weight 1 / prior[bin] (bins with prior 0 dropped).
    """
    histogram = np.asarray(histogram, np.float64)
    within = _cumulative(histogram)  # (313, 151)
    bin_pixels = histogram.sum(axis=1)
    plain = within.sum(axis=0) / bin_pixels.sum()
    present = bin_pixels > 0
    rebalanced = np.mean(within[present] / bin_pixels[present, None], axis=0)
    prior = load_prior() if prior is None else np.asarray(prior, np.float64)
    if prior.shape != bin_pixels.shape:
        raise ValueError(f"prior must have one entry per ab bin {bin_pixels.shape}, got {prior.shape}.")
    weight = np.where(prior > 0, 1.0 / np.where(prior > 0, prior, 1.0), 0.0)
    prior_weighted = (weight[:, None] * within).sum(axis=0) / np.sum(weight * bin_pixels)
    return {"plain": plain, "rebalanced": rebalanced, "rebalanced_prior": prior_weighted}


def finalize(accumulator: MetricsAccumulator, *, prior: np.ndarray | None = None) -> dict:
    """The reported numbers (a flat JSON-ready dict; None where undefined) from accumulated statistics.

    `prior`: class frequencies for `auc_rebalanced_prior_percent` (default: the shipped ImageNet prior).
    """
    counts = accumulator.counts
    if not counts or int(counts.get("images", 0)) == 0:
        raise ValueError("finalize() got no images: every example was masked out or nothing was added.")
    values = accumulator.per_image()
    images = int(counts["images"])
    pixels = int(counts["pixels"])

    def total(name):
        return math.fsum(values[name].ravel())

    def mean_below_cap(name):  # the "identical images excluded" reading of PSNR, for comparison
        below = values[name][values[name] < PSNR_CAP_DB]
        return math.fsum(below) / below.size if below.size else None

    curves = auc_curves(counts["ab_error_histogram"], prior)
    colourfulness_pred = total("colourfulness") / images
    colourfulness_true = total("colourfulness_ground_truth") / images
    cf_pred, cf_true = total("cf") / images, total("cf_ground_truth") / images
    saturation_pred = total("saturation_sum") / pixels
    saturation_true = total("saturation_ground_truth_sum") / pixels
    saturation_difference = (
        100.0 * abs(saturation_pred - saturation_true) / saturation_true if saturation_true > 0 else None
    )
    numbers = {
        "images": images,
        "pixels": pixels,
        "psnr_rgb_db": total("psnr_rgb_db") / images,
        "psnr_rgb_capped_images": int(counts["psnr_rgb_capped"]),
        "psnr_rgb_db_below_cap": mean_below_cap("psnr_rgb_db"),
        "psnr_ab_db": total("psnr_ab_db") / images,
        "psnr_ab_capped_images": int(counts["psnr_ab_capped"]),
        "psnr_ab_db_below_cap": mean_below_cap("psnr_ab_db"),
        "ab_l2_error": total("ab_error_sum") / pixels,
        "ab_rmse": math.sqrt(total("ab_squared_error_sum") / pixels),
        "auc_percent": float(area_under_curve(curves["plain"])),
        "auc_rebalanced_percent": float(area_under_curve(curves["rebalanced"])),
        "auc_rebalanced_prior_percent": float(area_under_curve(curves["rebalanced_prior"])),
        "colourfulness": colourfulness_pred,
        "colourfulness_ground_truth": colourfulness_true,
        "delta_colourfulness": abs(colourfulness_pred - colourfulness_true),
        "cf": cf_pred,
        "cf_ground_truth": cf_true,
        "delta_cf": abs(cf_pred - cf_true),
        "acc_u_percent": 100.0 * int(counts["u_bin_matches"]) / pixels,
        "acc_v_percent": 100.0 * int(counts["v_bin_matches"]) / pixels,
        "saturation": saturation_pred,
        "saturation_ground_truth": saturation_true,
        "saturation_difference_percent": saturation_difference,
        "ground_truth_mean_ab": ground_truth_mean_ab(accumulator).tolist(),
        "auc_curve": curves["plain"].tolist(),
        "auc_rebalanced_curve": curves["rebalanced"].tolist(),
    }
    if "classified_images" in counts:
        classified = int(counts["classified_images"])
        for key in ("top1_correct_colorized", "top1_correct_ground_truth", "top1_agreement"):
            label = key.replace("_correct", "")
            numbers[f"{label}_percent"] = 100.0 * int(counts[key]) / max(classified, 1)
    return numbers


# ----------------------------------------------------------------------------------------------------------------
# FID (host side; the caller extracts Inception pool features).


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, like pytorch-fid) of a (num_images, dim) feature matrix, in float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (num_images >= 2, dim), got shape {features.shape}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)) between two Gaussians.

    tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), a symmetric
    PSD matrix with the same spectrum, so symmetric eigensolvers suffice and no complex sqrtm residue appears.
    """
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape:
        raise ValueError(f"feature statistics differ in dimension: {mean_a.shape} vs {mean_b.shape}.")
    eigenvalues, eigenvectors = np.linalg.eigh(cov_a)
    root_a = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet Inception Distance between two sets of pool features (num_images, dim) (Heusel et al. 2017)."""
    return frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


class FeatureMoments:
    """Running mean and covariance of feature vectors from float64 sums, so FID needs no feature matrix in memory.

    Equals `gaussian_statistics` of all the rows added (up to float64 round-off).
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None

    def add(self, features: np.ndarray) -> None:
        """Adds a (num_images, dim) block of features."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be (num_images, dim), got shape {features.shape}.")
        if self.total is None:
            self.total = np.zeros(features.shape[1])
            self.outer = np.zeros((features.shape[1],) * 2)
        self.count += features.shape[0]
        self.total += features.sum(axis=0)
        self.outer += features.T @ features

    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, unbiased covariance) of every feature vector added."""
        if self.count < 2:
            raise ValueError(f"FID needs features of at least 2 images, got {self.count}.")
        mean = self.total / self.count
        covariance = (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        return mean, covariance
