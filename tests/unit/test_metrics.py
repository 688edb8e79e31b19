"""Metrics: each against a hand-computed number; baselines; padding changes nothing (data parallelism, 8 devices in
a fresh process: tests/integration/test_metrics_devices.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from colorjax import quantize
from colorjax.evaluation import metrics


def views_of(rgb: np.ndarray) -> metrics.ColourViews:
    """Ground-truth views prepared on the host with skimage (the reference conversions)."""
    rgb = np.asarray(rgb, np.float64)
    return metrics.ColourViews(
        rgb=rgb.astype(np.float32),
        ab=skcolor.rgb2lab(rgb)[..., 1:].astype(np.float32),
        uv=skcolor.rgb2luv(rgb)[..., 1:].astype(np.float32),
    )


def views(rgb=None, ab=None, uv=None, shape=(1, 1, 2)) -> metrics.ColourViews:
    """Views built directly from given arrays; missing ones are zeros of the right shape."""
    n, h, w = shape
    return metrics.ColourViews(
        rgb=np.zeros((n, h, w, 3), np.float32) if rgb is None else np.asarray(rgb, np.float32),
        ab=np.zeros((n, h, w, 2), np.float32) if ab is None else np.asarray(ab, np.float32),
        uv=np.zeros((n, h, w, 2), np.float32) if uv is None else np.asarray(uv, np.float32),
    )


@jax.jit
def evaluation_step(pred, truth, mask):
    """The jitted step an evaluation loop runs: per-image statistics, reduced over the (padded) batch."""
    return metrics.reduce_statistics(metrics.image_statistics(pred, truth), mask)


def evaluate(pred, truth, prior=None) -> dict:
    accumulator = metrics.MetricsAccumulator()
    accumulator.add(evaluation_step(pred, truth, np.ones(truth.rgb.shape[0], bool)))
    return metrics.finalize(accumulator, prior=prior)


def random_rgb(seed: int, shape=(2, 6, 5)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape + (3,)) / 255.0


# ---------------------------------------------------------------------------------------------------------------
# PSNR and ab error


def test_psnr_rgb_matches_hand_computation():
    truth_levels = np.array([[[[10, 20, 30], [40, 50, 60]]]])
    pred_levels = truth_levels + np.array([5, 0, 0])  # +5 in red at both pixels: MSE = 2 * 25 / 6
    result = evaluate(views(rgb=pred_levels / 255), views(rgb=truth_levels / 255))
    assert result["psnr_rgb_db"] == pytest.approx(10 * math.log10(255**2 / (50 / 6)), abs=1e-4)
    assert result["psnr_rgb_capped_images"] == 0


def test_psnr_of_identical_images_is_the_stated_cap():
    truth = views_of(random_rgb(0))
    result = evaluate(truth, truth)
    assert metrics.PSNR_CAP_DB == 100.0
    assert result["psnr_rgb_db"] == 100.0 and result["psnr_ab_db"] == 100.0
    assert result["psnr_rgb_capped_images"] == 2 and result["psnr_ab_capped_images"] == 2
    assert metrics.CONVENTIONS["psnr_cap_db"] == 100.0
    assert result["psnr_rgb_db_below_cap"] is None  # no image below the cap


def test_psnr_averages_per_image_values_with_identical_images_at_the_cap():
    truth_levels = np.full((2, 6, 5, 3), 100)
    pred_levels = truth_levels.copy()
    pred_levels[1] += 10  # image 2 off by 10 everywhere: 28.13 dB; image 1 identical: the 100 dB cap
    result = evaluate(
        views(rgb=pred_levels / 255, shape=(2, 6, 5)),
        views(rgb=truth_levels / 255, shape=(2, 6, 5)),
    )
    assert result["psnr_rgb_db"] == pytest.approx((100 + 10 * math.log10(255**2 / 100)) / 2, abs=1e-4)
    assert result["psnr_rgb_capped_images"] == 1
    assert result["psnr_rgb_db_below_cap"] == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-4)


def test_psnr_ab_and_ab_errors_match_hand_computation():
    true_ab = np.array([[[[10.0, -20.0], [30.0, 40.0]]]])
    pred_ab = true_ab + np.array([[[[3.0, 4.0], [0.0, 0.0]]]])  # errors 5 and 0
    result = evaluate(views(ab=pred_ab), views(ab=true_ab))
    # MSE over 2 pixels x 2 channels = 25 / 4; peak 220
    assert result["psnr_ab_db"] == pytest.approx(10 * math.log10(220**2 / (25 / 4)), abs=1e-4)
    assert result["ab_l2_error"] == pytest.approx(2.5)
    assert result["ab_rmse"] == pytest.approx(math.sqrt(25 / 2))


# ---------------------------------------------------------------------------------------------------------------
# AuC


def test_auc_matches_hand_computation():
    # Errors 0 and 5: half the pixels within t for t < 5, all from t = 5 on. Trapezoid area
    # 4 * 0.5 + (0.5 + 1) / 2 + 145 * 1 = 147.75, over 150 -> 98.5 %.
    true_ab = np.array([[[[0.0, 0.0], [20.0, -30.0]]]])
    pred_ab = true_ab + np.array([[[[0.0, 0.0], [3.0, 4.0]]]])
    result = evaluate(views(ab=pred_ab), views(ab=true_ab))
    assert result["auc_percent"] == pytest.approx(98.5, abs=1e-9)
    assert result["auc_curve"][4] == 0.5 and result["auc_curve"][5] == 1.0


def test_errors_beyond_150_never_count():
    true_ab = np.zeros((1, 1, 2, 2))
    pred_ab = np.array([[[[0.0, 0.0], [200.0, 0.0]]]])
    assert evaluate(views(ab=pred_ab), views(ab=true_ab))["auc_percent"] == pytest.approx(50.0)


def test_ground_truth_scores_exactly_100():
    truth = views_of(random_rgb(1))
    result = evaluate(truth, truth)
    assert result["auc_percent"] == 100.0
    assert result["auc_rebalanced_percent"] == 100.0
    assert result["auc_rebalanced_prior_percent"] == 100.0
    assert result["acc_u_percent"] == 100.0 and result["acc_v_percent"] == 100.0
    assert result["ab_l2_error"] == 0.0 and result["delta_colourfulness"] == 0.0


def test_rebalancing_weights_each_colour_bin_by_inverse_frequency():
    # Three pixels of bin (0, 0) predicted exactly; one pixel of bin (50, 50) off by 200 (never within).
    true_ab = np.array([[[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [50.0, 50.0]]]])
    pred_ab = true_ab + np.array([0.0, 0.0, 0.0, 200.0])[None, None, :, None] * np.array([1.0, 0.0])
    bins = quantize.ab_bin_centres()
    prior = np.full(len(bins), 0.001)
    prior[np.flatnonzero((bins == (0, 0)).all(1))] = 0.6
    prior[np.flatnonzero((bins == (50, 50)).all(1))] = 0.1
    result = evaluate(views(ab=pred_ab, shape=(1, 1, 4)), views(ab=true_ab, shape=(1, 1, 4)), prior=prior)
    assert result["auc_percent"] == pytest.approx(75.0)
    assert result["auc_rebalanced_percent"] == pytest.approx(50.0)  # each bin counts 1/2
    # prior weights 1/0.6 and 1/0.1: 3 / 0.6 / (3 / 0.6 + 10) = 1/3 within at every threshold
    assert result["auc_rebalanced_prior_percent"] == pytest.approx(100 / 3)


def synthetic_photo(height: int = 24, width: int = 32) -> np.ndarray:
    """A hue sweep across, saturation and value sweeps down, plus a gray band: many colour bins, some gray."""
    hue = np.linspace(0, 1, width, endpoint=False)[None, :].repeat(height, 0)
    saturation = np.linspace(0.0, 1.0, height)[:, None].repeat(width, 1)
    value = np.linspace(0.35, 1.0, height)[::-1, None].repeat(width, 1)
    rgb = skcolor.hsv2rgb(np.stack([hue, saturation, value], -1))
    return np.round(rgb * 255) / 255


def test_gray_baseline_auc_matches_direct_numpy_computation():
    rgb = synthetic_photo()[None]
    truth = views_of(rgb)
    gray_rgb = skcolor.lab2rgb(np.concatenate([skcolor.rgb2lab(rgb)[..., :1], np.zeros(rgb.shape[:-1] + (2,))], -1))
    gray = views(rgb=gray_rgb, shape=rgb.shape[:3])
    result = evaluate(gray, truth)

    # Direct computation: per-pixel error |ab| (the prediction is 0), fraction within t, trapezoid.
    error = np.linalg.norm(truth.ab.reshape(-1, 2), axis=-1)
    thresholds = np.arange(151)
    within = error[:, None] <= thresholds[None, :]
    expected = 100 * np.trapezoid(within.mean(0), thresholds) / 150
    centres = quantize.ab_bin_centres().astype(np.float64)
    nearest = np.argmin(((truth.ab.reshape(-1, 1, 2).astype(np.float64) - centres[None]) ** 2).sum(-1), axis=1)
    weight = 1.0 / np.bincount(nearest, minlength=len(centres))[nearest]
    expected_rebalanced = 100 * np.trapezoid((weight[:, None] * within).sum(0) / weight.sum(), thresholds) / 150
    prior_weight = 1.0 / quantize.load_prior()[nearest]
    expected_prior = 100 * np.trapezoid((prior_weight[:, None] * within).sum(0) / prior_weight.sum(), thresholds) / 150

    assert len(np.unique(nearest)) > 40  # the image really spans many colour classes
    assert result["auc_percent"] == pytest.approx(expected, abs=1e-9)
    assert result["auc_rebalanced_percent"] == pytest.approx(expected_rebalanced, abs=1e-9)
    assert result["auc_rebalanced_prior_percent"] == pytest.approx(expected_prior, abs=1e-9)
    assert 40 < result["auc_rebalanced_percent"] < result["auc_percent"] < 100


# ---------------------------------------------------------------------------------------------------------------
# Colourfulness, CIELUV accuracy, saturation


def test_colourfulness_matches_hasler_suesstrunk_by_hand():
    # Pixels (255, 0, 0) and (0, 0, 0): rg = [255, 0], yb = [127.5, 0]; mean and std of each are half the
    # first value, so CF = sqrt(127.5^2 + 63.75^2) * (1 + 0.3).
    red_black = np.array([[[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]])
    gray = np.full_like(red_black, 0.5)
    result = evaluate(views(rgb=gray), views(rgb=red_black))
    expected = 1.3 * math.hypot(127.5, 63.75)
    assert result["colourfulness_ground_truth"] == pytest.approx(expected, rel=1e-6)
    assert result["colourfulness"] == 0.0
    assert result["delta_colourfulness"] == pytest.approx(expected, rel=1e-6)


def test_acc_u_and_acc_v_count_matching_50_bins():
    # u: 1 and 3 share bin 25 (width 4 from -100); v: 1 is bin 25, -1 is bin 24. Second pixel identical.
    true_uv = np.array([[[[1.0, 1.0], [10.0, -10.0]]]])
    pred_uv = np.array([[[[3.0, -1.0], [10.0, -10.0]]]])
    result = evaluate(views(uv=pred_uv), views(uv=true_uv))
    assert result["acc_u_percent"] == 100.0
    assert result["acc_v_percent"] == 50.0


def test_saturation_difference_is_relative_difference_of_mean_hsv_saturation():
    # HSV saturation (max - min) / max: truth pixels 127/255 and 0 (gray); prediction 64/255 and 0.
    truth = np.array([[[[255, 128, 128], [90, 90, 90]]]]) / 255
    pred = np.array([[[[255, 191, 191], [90, 90, 90]]]]) / 255
    result = evaluate(views(rgb=pred), views(rgb=truth))
    assert result["saturation_ground_truth"] == pytest.approx(127 / 255 / 2, rel=1e-6)
    assert result["saturation"] == pytest.approx(64 / 255 / 2, rel=1e-6)
    assert result["saturation_difference_percent"] == pytest.approx(100 * 63 / 127, rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Semantic interpretability and FID


def test_top1_on_colorized_and_ground_truth_images():
    labels = jnp.array([0, 1, 2, 1])
    colorized = jax.nn.one_hot(jnp.array([0, 2, 2, 0]), 3)  # 2 of 4 right
    truth = jax.nn.one_hot(jnp.array([0, 1, 2, 0]), 3)  # 3 of 4 right; agrees with colorized on 3
    images = views_of(random_rgb(2))  # the top-1 counts ride along with two images' statistics
    accumulator = metrics.MetricsAccumulator()
    accumulator.add(evaluation_step(images, images, np.ones(2, bool)))
    classified = metrics.classification_statistics(colorized, truth, labels)
    accumulator.add(metrics.reduce_statistics(classified, jnp.ones(4, bool)))
    result = metrics.finalize(accumulator)
    assert result["top1_colorized_percent"] == 50.0
    assert result["top1_ground_truth_percent"] == 75.0
    assert result["top1_agreement_percent"] == 75.0


def test_fid_matches_scipy_sqrtm_and_is_zero_for_one_set():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 8))
    b = rng.normal(size=(150, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 1.0
    mean_a, cov_a = np.mean(a, 0), np.cov(a, rowvar=False)
    mean_b, cov_b = np.mean(b, 0), np.cov(b, rowvar=False)
    root = scipy_linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-8)
    assert abs(metrics.fid(a, a)) < 1e-9
    with pytest.raises(ValueError, match="features must be"):
        metrics.fid(a[:1], b)


# ---------------------------------------------------------------------------------------------------------------
# Padding and batching change nothing


def test_padded_batches_give_exactly_the_unpadded_numbers():
    truth = views_of(random_rgb(4, (5, 6, 5)))
    pred = views_of(random_rgb(5, (5, 6, 5)))
    whole = evaluate(pred, truth)

    accumulator = metrics.MetricsAccumulator()
    for start in (
        0,
        4,
    ):  # batches of 4: images 0-3, then image 4 and three padding rows full of NaN
        rows = slice(start, start + 4)

        def pad(x, rows=rows):
            chunk = np.asarray(x)[rows]
            filler = np.full((4 - len(chunk),) + chunk.shape[1:], np.nan, chunk.dtype)
            return np.concatenate([chunk, filler])

        mask = np.arange(start, start + 4) < 5
        accumulator.add(
            evaluation_step(metrics.ColourViews(*map(pad, pred)), metrics.ColourViews(*map(pad, truth)), mask)
        )
    assert metrics.finalize(accumulator) == whole
    assert whole["images"] == 5


# ---------------------------------------------------------------------------------------------------------------
# Baselines and colour views (need colorjax.color's JAX conversions)


def test_ground_truth_mean_ab_is_the_pixel_mean():
    truth = views_of(random_rgb(6))
    accumulator = metrics.MetricsAccumulator()
    accumulator.add(evaluation_step(truth, truth, np.ones(2, bool)))
    expected = truth.ab.reshape(-1, 2).astype(np.float64).mean(0)
    np.testing.assert_allclose(metrics.ground_truth_mean_ab(accumulator), expected, rtol=1e-5)


def test_baseline_predictions_on_real_conversions():
    pytest.importorskip("colorjax.color")
    from colorjax import color

    rgb = jnp.asarray(synthetic_photo(8, 12)[None], jnp.float32)
    truth = metrics.ColourViews(rgb=rgb, ab=color.rgb_to_lab(rgb)[..., 1:], uv=color.rgb_to_luv(rgb)[..., 1:])
    np.testing.assert_allclose(truth.ab, skcolor.rgb2lab(np.asarray(rgb, np.float64))[..., 1:], atol=0.05)
    L = color.rgb_to_lab(rgb)[..., :1]
    mean_ab = np.array([12.0, -7.0])
    baselines = metrics.baseline_predictions(L, truth, mean_ab)
    assert list(baselines) == ["ground_truth", "gray", "mean_colour"]
    gray = baselines["gray"]
    assert float(jnp.abs(gray.ab).max()) == 0.0 and float(jnp.abs(gray.uv).max()) == 0.0
    assert float(jnp.ptp(gray.rgb, axis=-1).max()) < 2e-3  # R = G = B
    np.testing.assert_allclose(baselines["mean_colour"].ab, np.broadcast_to(mean_ab, truth.ab.shape))
    # A Lab prediction equal to the truth reproduces the truth's colours (up to conversion round-off).
    echoed = metrics.views_from_chroma(L, truth.ab, "lab")
    assert float(jnp.abs(echoed.rgb - rgb).max()) < 2e-3
    result = evaluate(baselines["ground_truth"], truth)
    assert result["auc_percent"] == 100.0
    assert evaluate(gray, truth)["colourfulness"] < 0.5


def test_mismatched_shapes_are_a_clear_error():
    truth = views_of(random_rgb(7, (1, 4, 4)))
    pred = views_of(random_rgb(8, (1, 4, 3)))
    with pytest.raises(ValueError, match="rgb shape"):
        metrics.image_statistics(pred, truth)
    with pytest.raises(ValueError, match="color_space"):
        metrics.views_from_chroma(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 2)), "hsv")


def test_feature_moments_equal_the_statistics_of_all_features():
    features = np.random.default_rng(9).normal(3.0, 2.0, size=(50, 4))
    moments = metrics.FeatureMoments()
    for start in range(0, 50, 16):  # added in blocks, as evaluation batches arrive
        moments.add(features[start : start + 16])
    mean, covariance = moments.gaussian()
    expected_mean, expected_covariance = metrics.gaussian_statistics(features)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(covariance, expected_covariance, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 images"):
        metrics.FeatureMoments().gaussian()
