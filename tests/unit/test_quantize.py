"""The 313-bin Lab quantization of Zhang et al.: soft-encoding, rebalancing, decoding, priors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import Delaunay
from skimage.color import rgb2lab

from colorjax import quantize


def srgb_gamut_ab(steps: int = 24) -> np.ndarray:
    """ab of an evenly spaced grid over the sRGB cube: every kind of colour a photo can hold."""
    values = np.linspace(0.0, 1.0, steps)
    rgb = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    return rgb2lab(rgb).reshape(-1, 3)[:, 1:].astype(np.float32)


def brute_force_sorted_distances(ab: np.ndarray, k: int) -> np.ndarray:
    centres = quantize.ab_bin_centres().astype(np.float64)
    squared = np.sum(np.square(ab[:, None, :].astype(np.float64) - centres[None]), axis=-1)
    return np.sqrt(np.sort(squared, axis=1)[:, :k])


def test_bin_centres_are_the_published_grid_in_published_order():
    centres = quantize.ab_bin_centres()
    assert centres.shape == (313, 2)
    assert np.all(centres % 10 == 0)
    # Published order: sorted by a, then b (published weights index their logits by it).
    order = np.lexsort((centres[:, 1], centres[:, 0]))
    np.testing.assert_array_equal(order, np.arange(313))
    assert centres[:, 0].min() == -90 and centres[:, 0].max() == 100
    assert centres[:, 1].min() == -110 and centres[:, 1].max() == 100


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_soft_encode_picks_the_k_nearest_bins_over_the_whole_srgb_gamut(k):
    ab = srgb_gamut_ab()
    indices, weights = jax.jit(lambda x: quantize.soft_encode_sparse(x, k=k))(ab)
    centres = quantize.ab_bin_centres()
    chosen = np.linalg.norm(centres[np.asarray(indices)] - ab[:, None, :], axis=-1)
    np.testing.assert_allclose(chosen, brute_force_sorted_distances(ab, k), atol=1e-3)
    assert np.all(np.diff(chosen, axis=1) >= -1e-4)  # nearest first


def brute_force_nearest(ab: np.ndarray) -> np.ndarray:
    centres = quantize.ab_bin_centres().astype(np.float64)
    return np.argmin(np.sum(np.square(ab[:, None, :] - centres[None]), axis=-1), axis=1)


def test_nearest_bin_is_the_exact_nearest_centre_over_the_whole_srgb_gamut():
    # One binning for the loss's rebalancing and the rebalanced AuC: both call nearest_bin.
    centres = quantize.ab_bin_centres()
    np.testing.assert_array_equal(np.asarray(quantize.nearest_bin(centres)), np.arange(313))
    ab = srgb_gamut_ab()
    np.testing.assert_array_equal(np.asarray(quantize.nearest_bin(ab)), brute_force_nearest(ab))


def test_nearest_bin_beyond_the_gamut_and_on_ties():
    # Beyond the gamut's edge the nearest grid point is no centre: the batch takes the search over all 313.
    rng = np.random.default_rng(0)
    beyond = rng.uniform(-140, 140, (4000, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(quantize.nearest_bin(beyond)), brute_force_nearest(beyond))
    # Exactly halfway between centres the lower index wins (argmin's rule), on the grid path too: every multiple
    # of 5 is a centre or a tie between two or four of them.
    fives = np.arange(-115.0, 120.0, 5.0, dtype=np.float32)
    ties = np.stack(np.meshgrid(fives, fives, indexing="ij"), axis=-1).reshape(-1, 2)
    np.testing.assert_array_equal(np.asarray(quantize.nearest_bin(ties)), brute_force_nearest(ties))
    inside = ties[np.all(np.abs(ties) <= 40, axis=1)]  # all four neighbours are centres: the grid path alone
    np.testing.assert_array_equal(np.asarray(quantize.nearest_bin(inside)), brute_force_nearest(inside))


def test_soft_encode_weights_are_normalised_gaussians_with_the_true_bin_largest():
    ab = jnp.asarray([[3.0, 4.0], [-47.0, 12.5], [61.0, -83.0], [0.0, 0.0]])
    sigma = 5.0
    dense = np.asarray(quantize.soft_encode(ab, k=5, sigma=sigma))
    assert dense.shape == (4, 313)
    np.testing.assert_allclose(dense.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(np.count_nonzero(dense, axis=-1) == 5)
    np.testing.assert_array_equal(dense.argmax(axis=-1), np.asarray(quantize.nearest_bin(ab)))
    # The weights are exp(-d^2 / (2 sigma^2)) up to one normalising factor per pixel.
    centres = quantize.ab_bin_centres()
    for row, point in zip(dense, np.asarray(ab), strict=True):
        support = np.flatnonzero(row)
        gaussian = np.exp(-np.sum(np.square(centres[support] - point), -1) / (2 * sigma**2))
        np.testing.assert_allclose(row[support], gaussian / gaussian.sum(), rtol=1e-5)


def test_soft_encode_sigma_controls_the_spread():
    ab = jnp.asarray([[4.0, -3.0]])
    narrow = quantize.soft_encode(ab, k=5, sigma=2.0).max()
    wide = quantize.soft_encode(ab, k=5, sigma=20.0).max()
    assert narrow > 0.9 and wide < 0.3


def test_soft_encode_on_a_bin_centre_with_k1_is_one_hot():
    centres = jnp.asarray(quantize.ab_bin_centres())
    dense = np.asarray(quantize.soft_encode(centres, k=1))
    np.testing.assert_array_equal(dense, np.eye(313, dtype=np.float32))


def test_soft_encode_far_outside_the_gamut_stays_finite():
    _, weights = quantize.soft_encode_sparse(jnp.asarray([[-120.0, 120.0], [127.0, 127.0]]), k=5)
    assert np.all(np.isfinite(weights)) and np.allclose(np.sum(weights, -1), 1.0)


def test_soft_encode_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        quantize.soft_encode(jnp.zeros((1, 2)), k=0)


def test_rebalance_weights_on_the_imagenet_prior():
    prior = quantize.load_prior()
    assert prior.shape == (313,) and abs(prior.sum() - 1) < 1e-12
    assert abs(prior.max() - 0.2012) < 1e-4
    assert tuple(quantize.ab_bin_centres()[prior.argmax()]) == (0, 0)
    weights = quantize.rebalance_weights(prior, lam=0.5)
    assert abs(np.sum(prior * weights) - 1.0) < 1e-6
    assert abs(weights.min() - 0.0965) < 5e-4
    assert abs(weights.max() - 6.175) < 5e-3
    # Rare colours weigh more: the weights fall as the prior rises.
    assert weights[prior.argmax()] == weights.min()


def test_rebalance_weights_lam_zero_is_inverse_frequency_and_one_is_flat():
    prior = quantize.load_prior()
    np.testing.assert_allclose(quantize.rebalance_weights(prior, lam=1.0), 1.0, rtol=1e-9)
    inverse = quantize.rebalance_weights(prior, lam=0.0)
    np.testing.assert_allclose(inverse * prior, 1.0 / 313, rtol=1e-9)


def test_rebalance_weights_counts_only_seen_bins():
    prior = np.zeros(313)
    prior[:10] = [0.55] + [0.05] * 9
    weights = quantize.rebalance_weights(prior, lam=0.5)
    # Q = 10 seen bins, not 313: w = (0.5 p + 0.05)^-1 = 3.125 and 13.33..., then scaled so sum p w = 1.
    raw = 1.0 / (0.5 * prior[:10] + 0.5 / 10)
    np.testing.assert_allclose(weights[:10], raw / np.sum(prior[:10] * raw), rtol=1e-12)
    # An unseen bin gets the finite (lam / Q)^-1, scaled alike: the largest weight.
    np.testing.assert_allclose(weights[10:], 20.0 / np.sum(prior[:10] * raw), rtol=1e-12)


def test_load_prior_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        quantize.load_prior(tmp_path / "missing.npy")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones(529))
    with pytest.raises(ValueError, match=r"wrong.npy has shape \(529,\)"):
        quantize.load_prior(wrong)
    negative = tmp_path / "negative.npy"
    np.save(negative, -np.ones(313))
    with pytest.raises(ValueError, match="non-negative"):
        quantize.load_prior(negative)
    good = tmp_path / "good.npy"
    np.save(good, np.arange(313.0))
    np.testing.assert_allclose(quantize.load_prior(good).sum(), 1.0)


def test_annealed_mean_at_t1_is_the_expectation():
    logits = jax.random.normal(jax.random.key(0), (3, 4, 313)) * 3
    expected = jax.nn.softmax(logits, -1) @ quantize.ab_bin_centres()
    np.testing.assert_allclose(quantize.annealed_mean(logits, 1.0), expected, atol=1e-4)


def test_annealed_mean_follows_the_definition_on_probabilities():
    logits = jax.random.normal(jax.random.key(1), (5, 313)) * 2
    z = np.asarray(jax.nn.softmax(logits, -1), np.float64)
    annealed = np.exp(np.log(z) / 0.38)
    annealed /= annealed.sum(-1, keepdims=True)
    np.testing.assert_allclose(quantize.annealed_mean(logits, 0.38), annealed @ quantize.ab_bin_centres(), atol=1e-3)


def test_annealed_mean_approaches_the_mode_as_t_falls():
    logits = jax.random.normal(jax.random.key(2), (64, 313)) * 2
    # A clear winner per pixel (a margin of 0.5 over the runner-up), so the mode is well defined.
    winners = jax.random.randint(jax.random.key(3), (64,), 0, 313)
    logits = logits.at[jnp.arange(64), winners].set(logits.max(-1) + 0.5)
    mode = quantize.ab_bin_centres()[winners]
    errors = [np.abs(np.asarray(quantize.annealed_mean(logits, t)) - mode).max() for t in (1.0, 0.38, 0.1, 0.01)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-2 and errors[0] > 5


def test_annealed_mean_is_stable_and_stays_inside_the_gamut_hull():
    hull = Delaunay(quantize.ab_bin_centres())
    logits = jnp.concatenate(
        [
            jax.random.normal(jax.random.key(3), (200, 313)) * 50,  # extreme logits
            jnp.full((1, 313), -1e30),  # all equal, huge
            jax.nn.one_hot(jnp.arange(313), 313) * 1e4,  # every corner
        ]
    )
    for temperature in (1.0, 0.38, 0.05):
        ab = np.asarray(quantize.annealed_mean(logits, temperature))
        assert np.all(np.isfinite(ab))
        # Inside the hull of the centres (small tolerance for points on its boundary).
        shrunk = ab * (1 - 1e-5)
        assert np.all(hull.find_simplex(shrunk) >= 0)


def test_smoothed_prior_spreads_a_single_bin_as_a_gaussian():
    counts = np.zeros(313)
    origin = int(np.flatnonzero(np.all(quantize.ab_bin_centres() == 0, axis=1))[0])
    counts[origin] = 1000
    prior = quantize.smoothed_prior(counts, sigma=5.0)
    assert abs(prior.sum() - 1) < 1e-12 and prior.argmax() == origin
    neighbour = int(np.flatnonzero(np.all(quantize.ab_bin_centres() == (10, 0), axis=1))[0])
    diagonal = int(np.flatnonzero(np.all(quantize.ab_bin_centres() == (10, 10), axis=1))[0])
    # exp(-d^2 / 2 sigma^2): d = 10 -> e^-2, d = 10 sqrt(2) -> e^-4 relative to the centre.
    np.testing.assert_allclose(prior[neighbour] / prior[origin], np.exp(-2.0), rtol=1e-9)
    np.testing.assert_allclose(prior[diagonal] / prior[origin], np.exp(-4.0), rtol=1e-9)
    np.testing.assert_allclose(quantize.smoothed_prior(counts, sigma=0.0)[origin], 1.0)


def test_smoothed_prior_of_photos_has_the_character_of_the_imagenet_prior(shared_dir):
    from PIL import Image

    photos = sorted((shared_dir / "data" / "intel_scenes_150" / "train").glob("*/*.jpg"))[::10]
    assert len(photos) >= 50
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB").resize((48, 48)), np.float32) / 255 for p in photos])
    counts = np.asarray(quantize.bin_counts(jnp.asarray(rgb2lab(rgb)[..., 1:])))
    assert counts.sum() == rgb.shape[0] * 48 * 48
    prior = quantize.smoothed_prior(counts)
    imagenet = quantize.load_prior()
    # Natural photos: mostly near-gray, the mass peaks at or beside (0, 0) and the two priors agree broadly.
    assert np.linalg.norm(quantize.ab_bin_centres()[prior.argmax()]) <= 15
    assert np.corrcoef(np.log(prior + 1e-8), np.log(imagenet + 1e-8))[0, 1] > 0.6
    weights = quantize.rebalance_weights(prior)
    assert abs(np.sum(prior * weights) - 1) < 1e-9 and weights.max() / weights.min() > 10
