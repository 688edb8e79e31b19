"""The CIFAR-10 autoencoder: exact parameter count, output contract, the rgb_mse loss and a few training steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from skimage import color as skcolor

from colorjax.losses import get_loss
from colorjax.models import get_model


def test_parameter_count_and_shapes():
    model = get_model("cifar10_autoencoder")
    L = jnp.zeros((3, 32, 32, 1))
    variables = jax.eval_shape(model.init, jax.random.key(0), L)
    outputs = jax.eval_shape(model.apply, variables, L)
    # FACTS.md: 3.43M; exactly the Keras model's count with 3x3 kernels.
    assert sum(leaf.size for leaf in jax.tree.leaves(variables)) == 3_431_811
    assert set(variables) == {"params"}
    assert outputs["rgb"].shape == (3, 32, 32, 3)
    assert outputs["chroma"].shape == (3, 32, 32, 2)


def test_wrong_size_is_one_line_error():
    model = get_model("cifar10_autoencoder")
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 1\).*got \(1, 64, 64, 1\)"):
        jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 1)))


def _lab_batch(rgb: np.ndarray) -> dict[str, jax.Array]:
    lab = skcolor.rgb2lab(rgb).astype(np.float32)
    return {"L": jnp.asarray(lab[..., :1]), "chroma": jnp.asarray(lab[..., 1:])}


def test_rgb_mse_loss_rebuilds_the_target_photo():
    rgb = np.random.default_rng(0).uniform(0.0, 1.0, (2, 8, 8, 3))
    batch = _lab_batch(rgb)
    loss_fn = get_loss("rgb_mse")
    exact = loss_fn({"rgb": jnp.asarray(rgb, jnp.float32), "chroma": batch["chroma"]}, batch)
    assert exact["loss"].shape == (2,)
    assert float(jnp.max(exact["loss"])) < 1e-8  # Lab -> RGB round trip is float32 round-off.

    shifted = np.clip(rgb, 0.0, 0.9) + 0.1
    offset = loss_fn({"rgb": jnp.asarray(shifted, jnp.float32), "chroma": batch["chroma"]}, batch)
    np.testing.assert_allclose(
        offset["loss"], np.mean((shifted - rgb) ** 2, axis=(1, 2, 3)), rtol=1e-3
    )


def test_chroma_output_is_the_ab_of_the_rgb_output():
    model = get_model("cifar10_autoencoder")
    L = jnp.asarray(np.random.default_rng(1).uniform(0, 100, (2, 32, 32, 1)), jnp.float32)
    variables = jax.jit(model.init)(jax.random.key(0), L)
    outputs = jax.jit(model.apply)(variables, L)
    rgb = np.asarray(outputs["rgb"])
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_allclose(outputs["chroma"], skcolor.rgb2lab(rgb)[..., 1:], atol=0.05)


def test_a_few_adam_steps_lower_the_loss():
    model = get_model("cifar10_autoencoder")
    loss_fn = get_loss("rgb_mse")
    # Smooth colour gradients, so the target is learnable from L in a few steps.
    y, x = np.mgrid[0:32, 0:32] / 31.0
    rgb = np.stack([np.stack([x, y, 1 - x], -1), np.stack([y, 1 - y, x], -1)]).astype(np.float32)
    batch = _lab_batch(rgb)
    params = jax.jit(model.init)(jax.random.key(0), batch["L"])["params"]
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss(params):
            return jnp.mean(loss_fn(model.apply({"params": params}, batch["L"]), batch)["loss"])

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for _ in range(12):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0]  # Measured 0.018 from 0.089 (Adam 1e-3, Keras' default).
