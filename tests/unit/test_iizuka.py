"""Iizuka et al. 2016 fusion network: shapes, size, the shared low-level network, the global path, the loss,
training, global-feature transfer and bounded-memory tiled inference."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from colorjax.inference.colorizer import top_k_labels
from colorjax.models import get_model
from colorjax.models.iizuka import Iizuka
from colorjax.models.iizuka_inference import colorize_large
from colorjax.train.losses import get_loss, make_iizuka_loss

TINY = {"width": 1 / 16, "global_size": 64}


def smooth_L(key, shape, grid=8):
    """Smooth random lightness in [0, 100]: a coarse random grid upsampled bilinearly."""
    n, height, width = shape
    coarse = jax.random.uniform(key, (n, grid, grid, 1), minval=5.0, maxval=95.0)
    return jax.image.resize(coarse, (n, height, width, 1), method="bilinear")


def init(model, L, seed=0, gain=2.0):
    """Normal kernels of variance gain / fan_in (2: He, 1: LeCun, Flax's default), zero biases, unit BatchNorm:
    the model's variables without compiling `model.init`.

    He scaling keeps activations alive through the ReLUs, so even an untrained model's outputs are not flat.

    `jax.jit(model.init)` of this model spends ~35 s of CPU compiling its ~40 truncated-normal initialisers even at
    width 1/16; the shapes come from `jax.eval_shape` (under a second) and the values from numpy.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(seed), L)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.normal(size=leaf.shape) * np.sqrt(gain / fan_in), jnp.float32)
        if name in ("scale", "var"):
            return jnp.ones(leaf.shape, jnp.float32)
        return jnp.zeros(leaf.shape, jnp.float32)  # biases, BatchNorm offsets and running means

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (224, 224), (250, 333)])
def test_output_shapes_and_ranges(size):
    model = Iizuka(num_classes=7, **TINY)
    L = smooth_L(jax.random.key(1), (2, *size))
    outputs = jax.jit(model.apply)(init(model, L), L)
    height, width = size
    assert outputs["chroma"].shape == (2, height, width, 2)
    assert outputs["chroma"].dtype == jnp.float32
    assert outputs["ab_unit"].shape == (2, -(-height // 2), -(-width // 2), 2)
    assert outputs["class_logits"].shape == (2, 7)
    assert outputs["global_features"].shape == (2, 16)
    assert float(jnp.min(outputs["ab_unit"])) >= 0.0 and float(jnp.max(outputs["ab_unit"])) <= 1.0
    # chroma decodes the sigmoid map as ab = 200 * sigmoid - 100 (bilinear upsampling keeps the mean)
    decoded_mean = float(jnp.mean(200.0 * outputs["ab_unit"] - 100.0))
    assert abs(float(jnp.mean(outputs["chroma"])) - decoded_mean) < 0.05
    assert float(jnp.max(jnp.abs(outputs["chroma"]))) <= 100.0


def test_classifier_off_and_registry():
    model = get_model("iizuka", num_classes=0, **TINY)
    L = smooth_L(jax.random.key(1), (1, 40, 48))
    variables = init(model, L)
    assert "classifier" not in variables["params"]
    assert "class_logits" not in model.apply(variables, L)
    with pytest.raises(ValueError, match="multiple of 32"):
        jax.eval_shape(Iizuka(global_size=100).init, jax.random.key(0), L)
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\)"):
        model.apply(variables, L[..., 0])


def test_parameter_count_matches_paper():
    model = Iizuka(num_classes=205)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 1))))
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes["params"]))
    assert abs(count / 42.35e6 - 1) < 1e-3, count
    fc_1024 = shapes["params"]["global_net"]["DenseReLU_0"]["Dense_0"]["kernel"]
    assert fc_1024.shape == (7 * 7 * 512, 1024)  # 25.7M of them


def test_global_path_sees_only_the_rescale():
    """Global features of one scene rendered at 160, 224, 336 and 448 pixels agree; another scene's do not."""
    model = Iizuka(num_classes=5, width=1 / 16)  # global_size 224
    base = smooth_L(jax.random.key(3), (1, 448, 448), grid=12)
    variables = init(model, base)
    encode_global = jax.jit(partial(model.apply, method="encode_global"))

    def global_features(L):
        return np.asarray(encode_global(variables, L)["global_features"])[0]

    at_224 = jax.image.resize(base, (1, 224, 224, 1), "bilinear")
    # The full model at 224 x 224 (which shares one low-level pass between the paths) agrees with the global path.
    reference = np.asarray(jax.jit(model.apply)(variables, at_224)["global_features"])[0]
    scale = np.linalg.norm(reference)
    assert np.linalg.norm(global_features(at_224) - reference) / scale < 1e-5
    for side in (160, 336, 448):
        rescaled = jax.image.resize(base, (1, side, side, 1), "bilinear")
        assert np.linalg.norm(global_features(rescaled) - reference) / scale < 0.05, side
    other_scene = smooth_L(jax.random.key(4), (1, 224, 224), grid=12)
    assert np.linalg.norm(global_features(other_scene) - reference) / scale > 0.2


def test_low_level_weights_are_shared_and_trained_by_both_paths():
    model = Iizuka(num_classes=4, **TINY)
    L = smooth_L(jax.random.key(5), (2, 64, 64))  # not the global size: the two paths run separately
    variables = init(model, L)
    params = variables["params"]
    # One low-level network: the only kernel reading the 1-channel input is its first conv.
    first_convs = [k for k in jax.tree.leaves(params) if k.ndim == 4 and k.shape[2] == 1]
    assert len(first_convs) == 1
    assert "low_level" in params and not any("low" in name for name in params if name != "low_level")

    def objective(p, stop_global):
        v = {**variables, "params": p}
        global_features = model.apply(v, L, method="encode_global")["global_features"]
        if stop_global:
            global_features = jax.lax.stop_gradient(global_features)
        chroma = model.apply(v, L, global_features=global_features)["chroma"]
        return jnp.mean(jnp.square(chroma - 20.0))

    @jax.jit
    def gradients(p):
        return jax.grad(objective)(p, False), jax.grad(objective)(p, True)

    full, local_only = gradients(params)
    via_global = jax.tree.map(jnp.subtract, full, local_only)

    def low_level_norm(grads):
        return float(optax.global_norm(grads["low_level"]))

    assert low_level_norm(local_only) > 0.01 * low_level_norm(full)
    assert low_level_norm(via_global) > 0.01 * low_level_norm(full)
    assert float(optax.global_norm(local_only["global_net"])) == 0.0
    assert float(optax.global_norm(full["global_net"])) > 0.0


# --- the loss -----------------------------------------------------------------------------------------------------


def test_loss_target_at_half_resolution_and_class_term():
    loss_fn = get_loss("iizuka")
    ab = jax.random.uniform(jax.random.key(0), (2, 7, 9, 2), minval=-100.0, maxval=100.0)
    unit = (ab + 100.0) / 200.0
    padded = jnp.pad(unit, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    box_mean = padded.reshape(2, 4, 2, 5, 2, 2).mean(axis=(2, 4))
    batch = {"L": jnp.zeros((2, 7, 9, 1)), "chroma": ab}
    perfect = loss_fn({"ab_unit": box_mean}, batch)
    assert set(perfect) == {"loss", "color_loss"} and perfect["loss"].shape == (2,)
    assert float(jnp.max(perfect["loss"])) < 1e-12
    off_by_a_tenth = loss_fn({"ab_unit": box_mean + 0.1}, batch)
    np.testing.assert_allclose(off_by_a_tenth["color_loss"], 0.01, rtol=1e-5)

    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    labelled = {**batch, "label": jnp.array([0, 2])}
    values = make_iizuka_loss(alpha=0.5)({"ab_unit": box_mean, "class_logits": logits}, labelled)
    cross_entropy = -jax.nn.log_softmax(logits)[jnp.arange(2), jnp.array([0, 2])]
    np.testing.assert_allclose(values["class_loss"], cross_entropy, rtol=1e-6)
    np.testing.assert_allclose(values["loss"], 0.5 * cross_entropy, atol=1e-6)
    np.testing.assert_array_equal(values["class_accuracy"], [1.0, 0.0])
    # alpha = 0 switches the classifier off: no class term and no class metrics
    assert "class_loss" not in make_iizuka_loss(alpha=0.0)({"ab_unit": box_mean}, labelled)
    with pytest.raises(ValueError, match="num_classes"):
        loss_fn({"ab_unit": box_mean}, labelled)


# --- a short training run on generated labelled scenes ------------------------------------------------------------

CLASS_AB = np.array([[45.0, 35.0], [-45.0, 40.0], [15.0, -50.0]], np.float32)  # red, green, blue-ish


def labelled_scenes(key, n, size=32):
    """Class 0: horizontal stripes, class 1: vertical stripes, class 2: checkerboard; ab set by the class."""
    label_key, phase_key = jax.random.split(key)
    labels = jax.random.randint(label_key, (n,), 0, 3)
    phase = jax.random.uniform(phase_key, (n, 1, 1), maxval=2 * np.pi)
    coords = jnp.arange(size, dtype=jnp.float32) * (2 * np.pi / 8)
    rows, cols = jnp.sin(coords[None, :, None] + phase), jnp.sin(coords[None, None, :] + phase)
    patterns = jnp.stack([rows + 0 * cols, cols + 0 * rows, rows * cols], axis=1)
    pattern = patterns[jnp.arange(n), labels]
    L = (50.0 + 30.0 * pattern)[..., None]
    chroma = jnp.broadcast_to(jnp.asarray(CLASS_AB)[labels][:, None, None, :], (n, size, size, 2))
    return {"L": L, "chroma": chroma, "label": labels.astype(jnp.int32)}


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained for 200 Adam steps with the paper's loss (about 30 s of CPU, mostly compilation)."""
    model = Iizuka(num_classes=3, width=1 / 8, global_size=32)
    # alpha = 1/300: Adam still trains the classifier head at full speed
    loss_fn = make_iizuka_loss()
    eval_batch = labelled_scenes(jax.random.key(1000), 48)
    # LeCun scale: converged in 3 of 3 seeds (colour loss 0.040 -> <= 0.0009); He scale stalled in 1 of 3.
    variables = init(model, eval_batch["L"][:2], gain=1.0)
    optimizer = optax.adam(3e-3)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, batch_stats, opt_state, key):
        batch = labelled_scenes(key, 24)

        def loss(p):
            outputs, updates = model.apply(
                {"params": p, "batch_stats": batch_stats},
                batch["L"],
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.mean(loss_fn(outputs, batch)["loss"]), updates

        (_, updates), grads = jax.value_and_grad(loss, has_aux=True)(params)
        changes, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, changes), updates["batch_stats"], opt_state

    @jax.jit
    def evaluate(params, batch_stats):
        outputs = model.apply({"params": params, "batch_stats": batch_stats}, eval_batch["L"])
        return {k: jnp.mean(v) for k, v in loss_fn(outputs, eval_batch).items()}

    before = evaluate(params, batch_stats)
    for i in range(200):
        params, batch_stats, opt_state = step(params, batch_stats, opt_state, jax.random.key(i))
    after = evaluate(params, batch_stats)
    variables = {"params": params, "batch_stats": batch_stats}
    return model, variables, eval_batch, before, after


def test_short_training_run_lowers_both_losses(trained):
    _, _, _, before, after = trained
    assert float(after["color_loss"]) < 0.2 * float(before["color_loss"]), (before, after)
    assert float(after["class_loss"]) < 0.2 * float(before["class_loss"]), (before, after)
    assert float(after["class_accuracy"]) > 0.9


def test_global_feature_transfer_changes_the_output(trained):
    """Colouring a scene with another class's global features moves its colours (the paper's style transfer)."""
    model, variables, eval_batch, _, _ = trained
    labels = np.asarray(eval_batch["label"])
    first_of = [int(np.flatnonzero(labels == c)[0]) for c in range(3)]
    apply = jax.jit(model.apply)
    changes = []
    for image_class, reference_class in [(a, b) for a in range(3) for b in range(3) if a != b]:
        image = eval_batch["L"][first_of[image_class]][None]
        reference = eval_batch["L"][first_of[reference_class]][None]
        # Any size: only the reference's global_size rescale is used.
        reference = jax.image.resize(reference, (1, 40, 48, 1), "bilinear")
        own = apply(variables, image)
        transferred = apply(variables, image, global_L=reference)
        # The classifier reports the scene of the image that fed the global path.
        assert int(jnp.argmax(own["class_logits"])) == image_class
        assert int(jnp.argmax(transferred["class_logits"])) == reference_class
        changes.append(float(jnp.mean(jnp.abs(transferred["chroma"] - own["chroma"]))))
    # global_L and global_features from encode_global are the same transfer.
    features = model.apply(variables, reference, method="encode_global")["global_features"]
    via_features = apply(variables, image, global_features=features)
    np.testing.assert_allclose(transferred["chroma"], via_features["chroma"], atol=1e-3)
    assert np.mean(changes) > 5.0, changes  # ab units (class colours are 50 to 90 apart)


def test_top_k_labels():
    logits = np.array([[0.1, 2.0, -1.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    names = ["beach", "forest", "kitchen", "street"]
    top = top_k_labels(logits, names, k=2)
    assert [name for name, _ in top[0]] == ["forest", "street"]
    assert [name for name, _ in top[1]][0] == "beach"
    assert abs(sum(p for _, p in top_k_labels(logits[0], names, k=10)[0]) - 1.0) < 1e-9
    with pytest.raises(ValueError, match="4 classes but 3 class names"):
        top_k_labels(logits, names[:3])


# --- bounded-memory inference ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vivid_model():
    """A tiny random model whose output conv is scaled up so chroma spans most of +-100 (a meaningful comparison)."""
    model = Iizuka(num_classes=5, width=1 / 8, global_size=64)
    L = smooth_L(jax.random.key(7), (1, 301, 419), grid=24)
    variables = init(model, L)
    output = variables["params"]["colorization"]["output"]
    output = {**output, "kernel": output["kernel"] * 8.0}
    colorization = {**variables["params"]["colorization"], "output": output}
    variables = {**variables, "params": {**variables["params"], "colorization": colorization}}
    return model, variables, L


def test_tiled_inference_matches_untiled(vivid_model):
    model, variables, L = vivid_model
    full, full_info = colorize_large(model, variables, L)
    assert full_info["mode"] == "full"
    np.testing.assert_allclose(full["chroma"], model.apply(variables, L)["chroma"], atol=1e-3)
    assert float(np.std(full["chroma"])) > 10.0  # the comparison below is not between near-constant maps

    tiled, info = colorize_large(model, variables, L, max_pixels=224 * 224)
    tile_h, tile_w = info["tile_size"]
    assert info["mode"] == "tiled" and info["num_tiles"] == 24 and tile_h * tile_w <= 224 * 224
    assert "tiled" in info["message"]
    assert tiled["chroma"].shape == (1, 301, 419, 2)
    # Every core pixel has more context than the local path's receptive reach: the whole image matches
    # (measured max error 0.0 ab units on CPU; 1e-3 leaves room for other convolution algorithms).
    assert float(np.max(np.abs(tiled["chroma"] - full["chroma"]))) < 1e-3
    np.testing.assert_allclose(tiled["class_logits"], full["class_logits"], atol=1e-5)

    # A margin inside the receptive reach would show seams; the function refuses it.
    with pytest.raises(ValueError, match="receptive reach"):
        colorize_large(model, variables, L, max_pixels=224 * 224, tile_margin=32)
    with pytest.raises(ValueError, match="too small"):
        colorize_large(model, variables, L, max_pixels=100 * 100)


def test_downscaled_inference_says_so(vivid_model):
    model, variables, L = vivid_model
    down, info = colorize_large(model, variables, L, max_pixels=150 * 200, strategy="downscale")
    assert info["mode"] == "downscaled" and "downscaled" in info["message"]
    small_h, small_w = info["local_size"]
    assert small_h % 8 == 0 and small_w % 8 == 0 and small_h * small_w <= 150 * 200
    assert small_h * small_w > 0.7 * 150 * 200  # the largest size within the budget, near enough
    assert down["chroma"].shape == (1, 301, 419, 2)
    # The local path ran on the downscaled image with the global features of the whole image, then was upsampled.
    small = jax.image.resize(L, (1, small_h, small_w, 1), "bilinear")
    expected = jax.image.resize(
        model.apply(variables, small, global_features=down["global_features"])["chroma"],
        (1, 301, 419, 2),
        "bilinear",
    )
    assert float(np.max(np.abs(down["chroma"] - np.asarray(expected)))) < 1e-3


def test_tiled_inference_with_transferred_global_features(vivid_model):
    model, variables, L = vivid_model
    reference = smooth_L(jax.random.key(8), (1, 120, 90), grid=5)
    whole = model.apply(variables, L, global_L=reference)["chroma"]
    tiled, _ = colorize_large(model, variables, L, max_pixels=224 * 224, global_L=reference)
    assert float(np.max(np.abs(tiled["chroma"] - np.asarray(whole)))) < 1e-3
