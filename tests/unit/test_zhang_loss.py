"""The Zhang et al. class-rebalanced cross-entropy (`zhang_classification`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.quantize import load_prior, nearest_bin, rebalance_weights, soft_encode
from colorjax.train.losses import get_loss, make_zhang_loss


def colourful_batch(seed: int, n: int = 2, size: int = 12) -> dict[str, jax.Array]:
    keys = jax.random.split(jax.random.key(seed), 2)
    return {
        "L": jax.random.uniform(keys[0], (n, size, size, 1), maxval=100.0),
        "chroma": jax.random.uniform(keys[1], (n, size, size, 2), minval=-60.0, maxval=60.0),
    }


def random_logits(seed: int, n: int = 2, size: int = 3) -> jax.Array:
    return 2.0 * jax.random.normal(jax.random.key(seed), (n, size, size, 313))


def test_loss_is_the_rebalanced_cross_entropy_on_every_4th_pixel():
    batch = colourful_batch(0)
    logits = random_logits(1)
    result = make_zhang_loss()({"logits": logits}, batch)
    assert set(result) >= {"loss", "cross_entropy", "bin_accuracy", "colourful"}
    assert all(v.shape == (2,) for v in result.values())

    targets = batch["chroma"][:, ::4, ::4]  # (2, 3, 3, 2): pixels 0, 4, 8 of each row and column
    soft = np.asarray(soft_encode(targets, k=5, sigma=5.0))
    log_p = np.asarray(jax.nn.log_softmax(logits, -1))
    cross_entropy = -np.sum(soft * log_p, -1)
    weights = rebalance_weights(load_prior(), 0.5)[np.asarray(nearest_bin(targets))]
    np.testing.assert_allclose(result["loss"], np.mean(weights * cross_entropy, (1, 2)), rtol=1e-5)
    np.testing.assert_allclose(result["cross_entropy"], np.mean(cross_entropy, (1, 2)), rtol=1e-5)

    plain = make_zhang_loss(rebalance=False)({"logits": logits}, batch)
    np.testing.assert_allclose(plain["loss"], np.mean(cross_entropy, (1, 2)), rtol=1e-5)
    assert get_loss("zhang_classification", rebalance=False)({"logits": logits}, batch)["loss"].shape == (2,)


def test_loss_gradient_matches_the_closed_form_and_finite_differences():
    batch = colourful_batch(2)
    logits = random_logits(3)
    loss_fn = make_zhang_loss(k=5, sigma=5.0)

    def total(x):
        return jnp.sum(loss_fn({"logits": x}, batch)["loss"])

    gradient = np.asarray(jax.grad(total)(logits))
    # d/dz of mean_pixels(w * CE(t, softmax z)) = w (softmax z - t) / num_pixels.
    targets = batch["chroma"][:, ::4, ::4]
    weights = rebalance_weights(load_prior(), 0.5)[np.asarray(nearest_bin(targets))]
    expected = weights[..., None] * (np.asarray(jax.nn.softmax(logits, -1)) - np.asarray(soft_encode(targets))) / 9.0
    np.testing.assert_allclose(gradient, expected, atol=1e-6)

    # Central differences along random directions (float32: step 1e-2, a few per mille of agreement).
    for seed in range(3):
        direction = jax.random.normal(jax.random.key(10 + seed), logits.shape)
        step = 1e-2
        numeric = (total(logits + step * direction) - total(logits - step * direction)) / (2 * step)
        analytic = np.sum(gradient * np.asarray(direction))
        assert abs(float(numeric) - analytic) <= 1e-2 * abs(analytic) + 1e-4


def test_an_image_without_colour_has_zero_loss_and_zero_gradient():
    batch = colourful_batch(4)
    gray = jax.random.uniform(jax.random.key(5), (12, 12, 2), minval=-5.0, maxval=5.0)
    barely = gray.at[7, 3, 1].set(-5.5)  # one pixel just beyond the threshold makes an image count
    batch["chroma"] = jnp.stack([gray, barely])
    logits = random_logits(6)
    loss_fn = make_zhang_loss(min_chroma=5.0)
    result = loss_fn({"logits": logits}, batch)
    np.testing.assert_array_equal(result["colourful"], [0.0, 1.0])
    # (near-gray pixels carry the smallest rebalancing weight, ~0.1, so the colourful one is still small)
    assert float(result["loss"][0]) == 0.0 and float(result["loss"][1]) > 0.1
    assert float(result["cross_entropy"][0]) > 1.0  # still reported as a metric
    gradient = jax.grad(lambda x: jnp.sum(loss_fn({"logits": x}, batch)["loss"]))(logits)
    assert float(jnp.abs(gradient[0]).max()) == 0.0 and float(jnp.abs(gradient[1]).max()) > 0.0


def test_the_soft_target_itself_minimises_the_loss():
    batch = colourful_batch(7)
    targets = soft_encode(batch["chroma"][:, ::4, ::4], k=5, sigma=5.0)
    best = jnp.log(targets + 1e-12)
    loss_fn = make_zhang_loss(rebalance=False)
    gradient = jax.grad(lambda x: jnp.sum(loss_fn({"logits": x}, batch)["loss"]))(best)
    assert float(jnp.abs(gradient).max()) < 1e-6
    entropy = -jnp.sum(targets * jnp.log(targets + 1e-12), -1).mean((1, 2))
    np.testing.assert_allclose(loss_fn({"logits": best}, batch)["loss"], entropy, atol=1e-5)
    assert np.all(loss_fn({"logits": random_logits(8)}, batch)["loss"] > entropy + 1.0)
    np.testing.assert_array_equal(loss_fn({"logits": best}, batch)["bin_accuracy"], 1.0)


def test_k_and_sigma_change_the_targets():
    batch = colourful_batch(9)
    logits = random_logits(10)
    base = make_zhang_loss(k=5)({"logits": logits}, batch)["loss"]
    assert not np.allclose(make_zhang_loss(k=10)({"logits": logits}, batch)["loss"], base)
    assert not np.allclose(make_zhang_loss(sigma=2.0)({"logits": logits}, batch)["loss"], base)


def test_a_custom_prior_changes_the_weights(tmp_path):
    batch = colourful_batch(11)
    logits = random_logits(12)
    np.save(tmp_path / "flat.npy", np.ones(313))
    flat = make_zhang_loss(prior_path=str(tmp_path / "flat.npy"))({"logits": logits}, batch)
    plain = make_zhang_loss(rebalance=False)({"logits": logits}, batch)
    # A flat prior gives every bin the weight 1: the same as no rebalancing.
    np.testing.assert_allclose(flat["loss"], plain["loss"], rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        make_zhang_loss(prior_path=str(tmp_path / "missing.npy"))


def test_logits_off_the_quarter_grid_are_rejected():
    batch = colourful_batch(13)
    with pytest.raises(ValueError, match="1/4-resolution target grid"):
        make_zhang_loss()({"logits": random_logits(14, size=4)}, batch)


def test_chroma_error_is_reported_when_the_model_decodes():
    batch = colourful_batch(15)
    outputs = {"logits": random_logits(16), "chroma": batch["chroma"] + 3.0}
    result = make_zhang_loss()(outputs, batch)
    np.testing.assert_allclose(result["chroma_l2_error"], 3.0 * np.sqrt(2), rtol=1e-5)
