"""The CIELUV VGG16 classifier (Hwang & Zhou) and its regression variant: shapes, decoding, loss, loader, training."""

import logging
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers.weights import parameter_count

from colorjax.models import get_model, load_pretrained
from colorjax.models.vgg16 import KERAS_NOTOP_FILE
from colorjax.quantize import bins_to_uv
from colorjax.train.losses import get_loss

TINY = {"width": 0.125}  # VGG16 channels 8..64, head 32, 16, 8


def init_variables(model, size: int = 32):
    # An "rbg" key: with this jax's partitionable threefry, compiling the init's random draws takes ~5x longer
    # (about 30 s of CPU for this model); the draws' values do not matter to these tests.
    return jax.jit(model.init)(jax.random.key(0, impl="rbg"), jnp.zeros((2, size, size, 1)))


@pytest.fixture(scope="module")
def tiny_classifier():
    model = get_model("luv_vgg16", **TINY)
    return model, init_variables(model)


@pytest.fixture(scope="module")
def tiny_regressor():
    model = get_model("luv_vgg16", head="regression", **TINY)
    return model, init_variables(model)


def synthetic_batch(size: int = 32, batch: int = 4) -> dict[str, jax.Array]:
    """Lightness in 4x4 patches, colour a function of it (u follows L, v flips sign at L = 50)."""
    rng = np.random.default_rng(0)
    patches = rng.uniform(5.0, 95.0, (batch, size // 4, size // 4, 1)).astype(np.float32)
    L = np.repeat(np.repeat(patches, 4, axis=1), 4, axis=2)
    uv = np.concatenate([1.6 * (L - 50.0), np.where(L > 50.0, 40.0, -40.0)], axis=-1)
    return {"L": jnp.asarray(L), "chroma": jnp.asarray(uv, jnp.float32)}


# ----------------------------------------------------------------------------------------- architecture


def test_parameter_count_at_full_width():
    shapes = jax.eval_shape(lambda: get_model("luv_vgg16").init(jax.random.key(0), jnp.zeros((1, 224, 224, 1))))
    params = shapes["params"]
    hypercolumn = 64 + 128 + 256 + 512 + 512
    head = 2 * hypercolumn  # hypercolumn BatchNorm scale, bias
    for c_in, c_out in ((hypercolumn, 256), (256, 128), (128, 64)):
        head += 9 * c_in * c_out + 2 * c_out  # bias-free 3x3 conv, then BatchNorm
    head += 2 * (64 * 50 + 50)  # the U and V 1x1 classifiers
    assert parameter_count(params["backbone"]) == 14_714_688  # Keras VGG16(include_top=False)
    assert parameter_count(params) == 14_714_688 + head == 18_485_156


@pytest.mark.parametrize(("height", "width"), [(32, 32), (36, 44)])
def test_output_shapes(height, width):
    for head in ("classification", "regression"):
        model = get_model("luv_vgg16", head=head, **TINY)
        outputs, _ = jax.eval_shape(
            lambda m=model: m.init_with_output(jax.random.key(0), jnp.zeros((3, height, width, 1)))
        )
        expected = {"chroma": (3, height, width, 2)}
        if head == "classification":
            expected |= {"u_logits": (3, height // 4, width // 4, 50)}
            expected |= {"v_logits": (3, height // 4, width // 4, 50)}
        assert {name: value.shape for name, value in outputs.items()} == expected
        assert outputs["chroma"].dtype == jnp.float32


def test_bad_config_values_are_rejected():
    L = jnp.zeros((1, 32, 32, 1))
    for kwargs, message in [
        ({"head": "softmax"}, "head"),
        ({"hypercolumn_layers": ("block6_conv1",)}, "hypercolumn_layers"),
        ({"hypercolumn_stride": 64}, "smaller than hypercolumn_stride"),
    ]:
        model = get_model("luv_vgg16", **TINY, **kwargs)
        with pytest.raises(ValueError, match=message):
            jax.eval_shape(lambda m=model: m.init(jax.random.key(0), L))


def test_chroma_is_the_argmax_bin_mean(tiny_classifier):
    """At hypercolumn_stride 1 there is no upsampling, so every pixel's uv must be exactly its argmax bin's mean."""
    model, variables = tiny_classifier
    L = synthetic_batch(size=16, batch=2)["L"]
    outputs = model.clone(hypercolumn_stride=1).apply(variables, L)
    assert outputs["u_logits"].shape == (2, 16, 16, 50)
    expected = bins_to_uv(jnp.stack([outputs["u_logits"].argmax(-1), outputs["v_logits"].argmax(-1)], axis=-1))
    np.testing.assert_allclose(outputs["chroma"], expected, atol=1e-4)
    # bin means are -98, -94, ..., 98
    assert np.allclose(np.mod(np.asarray(outputs["chroma"]) + 98.0, 4.0), 0.0, atol=1e-4)


# ------------------------------------------------------------------------------------------------- loss


def one_hot_logits(bin_index: int, shape=(2, 2, 2), value: float = math.log(49.0)) -> jax.Array:
    """Logits `value` at `bin_index`, 0 elsewhere: softmax gives that bin e^value / (e^value + 49)."""
    return jnp.zeros((*shape, 50)).at[..., bin_index].set(value)


def test_loss_on_uniform_logits_is_two_log_50():
    loss_fn = get_loss("luv_classification")
    outputs = {"u_logits": jnp.zeros((2, 2, 2, 50)), "v_logits": jnp.zeros((2, 2, 2, 50))}
    batch = {"chroma": jnp.zeros((2, 8, 8, 2))}
    result = loss_fn(outputs, batch)
    np.testing.assert_allclose(result["loss"], [2 * math.log(50.0)] * 2, rtol=1e-6)  # 7.824
    np.testing.assert_allclose(result["acc_u"], [0.0, 0.0])  # argmax of ties is bin 0; truth is bin 25


def test_loss_by_hand():
    """u = 0 is bin 25, v = 20 bin 30, v = -100 bin 0; with logit ln 49 on the predicted bin its p is 1/2."""
    loss_fn = get_loss("luv_classification")
    u_logits = one_hot_logits(25)
    v_logits = one_hot_logits(30)
    chroma = np.zeros((2, 8, 8, 2), np.float32)
    chroma[0, ..., 1] = 20.0  # example 0: both right
    chroma[1, ..., 1] = -100.0  # example 1: V wrong; its bin gets p = 1 / 98
    result = loss_fn({"u_logits": u_logits, "v_logits": v_logits}, {"chroma": jnp.asarray(chroma)})
    np.testing.assert_allclose(result["loss"], [2 * math.log(2.0), math.log(2.0) + math.log(98.0)], rtol=1e-5)
    np.testing.assert_allclose(result["acc_u"], [1.0, 1.0])
    np.testing.assert_allclose(result["acc_v"], [1.0, 0.0])


def test_targets_are_taken_at_each_cell_centre_pixel():
    """8x8 targets, 2x2 logits: cell (i, j) reads pixel (4i+2, 4j+2); other pixels must not matter."""
    chroma = np.full((1, 8, 8, 2), 60.0, np.float32)  # bin 40 everywhere ...
    chroma[0, 2::4, 2::4, :] = 0.0  # ... except the four centre pixels, bin 25
    result = get_loss("luv_classification")(
        {"u_logits": one_hot_logits(25, (1, 2, 2)), "v_logits": one_hot_logits(40, (1, 2, 2))},
        {"chroma": jnp.asarray(chroma)},
    )
    np.testing.assert_allclose(result["acc_u"], [1.0])
    np.testing.assert_allclose(result["acc_v"], [0.0])


# --------------------------------------------------------------------------------------------- training


def train(model, variables, loss_fn, batch, steps: int = 25, learning_rate: float = 1e-2) -> list[float]:
    optimizer = optax.adam(learning_rate)

    @jax.jit
    def step(params, batch_stats, opt_state):
        def objective(params):
            outputs, updates = model.apply(
                {"params": params, "batch_stats": batch_stats},
                batch["L"],
                train=True,
                mutable=["batch_stats"],
            )
            return loss_fn(outputs, batch)["loss"].mean(), updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = optimizer.init(params)
    losses = []
    for _ in range(steps):
        params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state)
        losses.append(float(loss))
    return losses


def test_classifier_training_steps_lower_the_loss(tiny_classifier):
    model, variables = tiny_classifier
    losses = train(model, variables, get_loss("luv_classification"), synthetic_batch())
    assert np.all(np.isfinite(losses))
    assert losses[0] > 6.0  # about 2 ln 50 = 7.8 at initialisation
    assert losses[-1] < 0.6 * losses[0], losses


def test_regression_training_steps_lower_the_loss(tiny_regressor):
    model, variables = tiny_regressor
    losses = train(model, variables, get_loss("l2", chroma_scale=100.0), synthetic_batch())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0], losses


# ------------------------------------------------------------------------------------ pretrained loader


def zeros_like_init(model, size: int = 32):
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 1))))
    return jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes)


def test_loader_fills_the_backbone_from_a_keras_file(tmp_path):
    keras = pytest.importorskip("keras")
    keras_model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / KERAS_NOTOP_FILE
    keras_model.save(path)
    kwargs = {"backbone_weights": str(path)}
    variables = zeros_like_init(get_model("luv_vgg16", **kwargs))

    loaded = load_pretrained("luv_vgg16", variables, kwargs)
    backbone = loaded["params"]["backbone"]
    assert len(backbone) == 13
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        kernel, bias = keras_model.get_layer(name).get_weights()
        np.testing.assert_array_equal(backbone[name]["kernel"], kernel)
        np.testing.assert_array_equal(backbone[name]["bias"], bias)
    # The head is not in the file: it keeps its initialisation (zeros here), and batch_stats are untouched.
    assert not np.any(loaded["params"]["u_classifier"]["kernel"])
    assert loaded["batch_stats"] is variables["batch_stats"]


def test_loader_without_weights_keeps_random_init_and_says_so(caplog):
    variables = {"params": {"backbone": {}}, "batch_stats": {}}
    for empty in (None, ""):  # "" is what a config (and its command line) can hold for "no file".
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert load_pretrained("luv_vgg16", variables, {"backbone_weights": empty}) is variables
        assert "random" in caplog.text and "backbone_weights" in caplog.text


def test_loader_errors_are_one_line_and_actionable(tmp_path):
    missing = tmp_path / KERAS_NOTOP_FILE
    with pytest.raises(FileNotFoundError) as error:
        load_pretrained("luv_vgg16", {}, {"backbone_weights": str(missing)})
    assert "storage.googleapis.com/tensorflow/keras-applications/vgg16/" + KERAS_NOTOP_FILE in str(error.value)
    assert "config.model.backbone_weights" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="width=1.0"):
        load_pretrained("luv_vgg16", {}, {"backbone_weights": str(missing), "width": 0.5})
