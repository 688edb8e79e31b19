"""The CIFAR-10 autoencoder: exact parameter count, output contract, the rgb_mse loss and a few training steps."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from skimage import color as skcolor

from colorjax.models import get_model
from colorjax.train.losses import get_loss


def test_parameter_count_and_shapes():
    model = get_model("cifar10_autoencoder")
    L = jnp.zeros((3, 32, 32, 1))
    variables = jax.eval_shape(model.init, jax.random.key(0), L)
    outputs = jax.eval_shape(model.apply, variables, L)
    # The report's 3.43M: exactly the Keras colorization autoencoder's count (3x3 kernels, Atienza 2018 ch. 3).
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
    np.testing.assert_allclose(offset["loss"], np.mean((shifted - rgb) ** 2, axis=(1, 2, 3)), rtol=1e-3)


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


@pytest.mark.parametrize("shape", [(2, 4, 4, 8), (1, 5, 3, 6)])
def test_conv_transpose_2x_is_flax_conv_transpose(shape):
    """Same parameters, outputs and gradients as nn.ConvTranspose(stride 2, "SAME"), odd and non-square sizes too."""
    from colorjax.models.cifar10_autoencoder import ConvTranspose2x

    x = jax.random.normal(jax.random.key(1), shape)
    reference = nn.ConvTranspose(5, (3, 3), strides=(2, 2), padding="SAME")
    variables = reference.init(jax.random.key(0), x)
    variables = jax.tree.map(lambda v: v + 0.1, variables)  # A non-zero bias counts too.
    ours = ConvTranspose2x(5)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, variables)

    def loss(module, variables):
        return jnp.sum(jnp.sin(module.apply(variables, x)))

    want, got = reference.apply(variables, x), ours.apply(variables, x)
    assert got.shape == want.shape == (shape[0], 2 * shape[1], 2 * shape[2], 5)
    np.testing.assert_allclose(got, want, atol=1e-5)
    grads_want = jax.grad(lambda v: loss(reference, v))(variables)
    grads_got = jax.grad(lambda v: loss(ours, v))(variables)
    for a, b in zip(jax.tree.leaves(grads_got), jax.tree.leaves(grads_want), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_width_scales_every_layer_but_the_latent():
    model = get_model("cifar10_autoencoder", width=0.25)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    params = variables["params"]
    assert params["latent"]["kernel"].shape == (4 * 4 * 64, 256)
    assert params["Dense_0"]["kernel"].shape == (256, 4 * 4 * 64)
    assert params["rgb_head"]["kernel"].shape == (3, 3, 16, 3)
