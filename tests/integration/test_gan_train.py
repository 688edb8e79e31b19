"""DDColor's GAN recipe in the trainer (`colorjax.train.gan`): one step equals the recipe written out with the loss
functions, resume equals an uninterrupted run, the divergence guard covers the discriminator, the config holds the
authors' numbers. Configs start from configs/ddcolor.py:tiny,cpu with a discriminator of nf 8 and a random
VGG16-BN file (`vgg16_bn_file`): nothing downloads."""

import functools
import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers.paths import REPO
from helpers.photos import make_photo
from helpers.runs import restored_state
from PIL import Image

from colorjax import color, config_lib, data, models, runs
from colorjax.train import ddcolor_objective as objective
from colorjax.train import gan as gan_lib
from colorjax.train import losses, optim
from colorjax.train import trainer as train


def gan_config(vgg16_bn_file, photos=None, **overrides):
    config = config_lib.load_config(REPO / "configs" / "ddcolor.py", "tiny,cpu")
    if photos is not None:
        config.data.update(
            source=f"folder:{photos}",
            eval_split="train",
            max_failed_fraction=0.5,  # the fixture folder holds a corrupt JPEG and a text file on purpose
            holdout_fraction=0.0,
            shuffle_buffer=16,
            prefetch=2,
        )
    config.gan.perceptual_weights = str(vgg16_bn_file)
    config.gan.discriminator_nf = 8
    config.batch_size = 2
    config.num_train_steps = 4
    config.schedule.update(name="constant", warmup_steps=0)
    config.log_every = 1
    config.eval_every = 0
    config.checkpoint_every = 2
    config.keep_checkpoints = 10
    for key, value in overrides.items():
        config[key] = value
    return config


def photo_batch(size: int, count: int) -> dict[str, jax.Array]:
    rng = np.random.default_rng(0)
    rgb = np.stack([make_photo(rng, size, size) for _ in range(count)]).astype(np.float32) / 255.0
    lab = color.rgb_to_lab(jnp.asarray(rgb))
    return {"L": lab[..., :1], "chroma": lab[..., 1:]}


def test_the_authors_numbers_are_the_configs_defaults():
    config = config_lib.load_config(REPO / "configs" / "ddcolor.py", "large")
    gan = config.gan
    assert gan.enabled and config.loss.name == "l1" and gan.discriminator_nf == 64
    assert (gan.pixel_weight, gan.perceptual_weight, gan.gan_weight) == (0.1, 5.0, 1.0)
    assert (gan.colorfulness_weight, gan.color_enhance_factor, gan.perceptual_weights) == (2.0, 1.2, "vgg16_bn")
    assert not config_lib.base_config().gan.enabled  # every other model trains without it
    config_lib.validate(config)
    # Both optimizers halve the rate at 80k and every 40k after (400k steps).
    _, generator = optim.make_optimizer(config)
    d_tx, discriminator = gan_lib.discriminator_optimizer(config)
    for step, rate in ((79_999, 1e-4), (80_000, 5e-5), (119_999, 5e-5), (120_000, 2.5e-5), (360_000, 1e-4 / 2**8)):
        assert math.isclose(float(generator(step)), rate, rel_tol=1e-6)
        assert math.isclose(float(discriminator(step)), rate, rel_tol=1e-6)
    # The discriminator's is Adam without weight decay: one step from zero gradients leaves the weights as they are.
    params = {"w": jnp.ones(3)}
    updates, _ = d_tx.update({"w": jnp.zeros(3)}, d_tx.init(params), params)
    assert np.all(np.asarray(updates["w"]) == 0)


def test_a_discriminator_on_photos_under_64_pixels_is_refused(vgg16_bn_file):
    config = gan_config(vgg16_bn_file)
    config.data.image_size = 32
    with pytest.raises(config_lib.ConfigError, match="at least 64 with config.gan.enabled"):
        config_lib.validate(config)


@pytest.mark.slow
def test_one_gan_step_equals_the_recipe_written_out(vgg16_bn_file):
    """The trainer's step against the authors' optimize_parameters written out with the objective's functions: the
    generator's update (D in train mode once), then D's on the real and the detached fake photos (twice more). With
    4 photos on one device, the authors' colourfulness term (0.5 x the *sum* over a GPU's 4 images) is the
    config's 2.0 x the batch mean. Plain SGD at rate 1 for both networks, so the new weights show the gradients
    themselves (Adam's first step divides a gradient by its own size: float noise in a gradient near 0 becomes a
    full step there); the recipe's optimizers are checked in test_the_authors_numbers_are_the_configs_defaults."""
    config = gan_config(vgg16_bn_file, batch_size=4)
    config.optimizer.update(name="sgd", learning_rate=1.0, momentum=0.0, weight_decay=0.0)
    config.gan.optimizer.update(name="sgd", learning_rate=1.0)
    model = models.from_config(config)
    loss_fn = losses.from_config(config)
    tx, schedule = optim.make_optimizer(config)
    recipe = gan_lib.from_config(config)
    size = config.data.image_size
    state = jax.jit(train.make_init_state(model, tx, size, recipe))(jax.random.key(0))
    state = state.replace(discriminator=state.discriminator.replace(perceptual=recipe.load_perceptual()))
    batch = photo_batch(size, 4)
    rng = jax.random.key(1)
    new_state, metrics = jax.jit(train.make_train_step(model, loss_fn, tx, schedule, gan=recipe))(state, batch, rng)

    disc = gan_lib.DynamicUNetDiscriminator(nf=8)

    def discriminate(params, spectral, photos):
        logits, mutated = disc.apply(
            {"params": params, "batch_stats": spectral}, photos, update_stats=True, mutable=["batch_stats"]
        )
        return logits, mutated["batch_stats"]

    def bce(logits, label):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))

    @jax.jit
    def reference(state, batch, rng):
        d, lightness = state.discriminator, batch["L"]

        def rgb(ab):
            return color.lab_to_rgb(jnp.concatenate([lightness, ab], axis=-1))

        real_rgb = objective.color_enhance(rgb(batch["chroma"]), 1.2)

        def generator_total(params):
            outputs, mutated = model.apply(
                {"params": params, "batch_stats": state.batch_stats, "frozen": state.frozen},
                lightness,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.fold_in(rng, 0)},
            )
            pred_rgb = rgb(outputs["chroma"])
            fake_logits, spectral = discriminate(d.params, d.spectral, pred_rgb)
            total = (
                0.1 * jnp.mean(jnp.abs(outputs["chroma"] - batch["chroma"]))
                + 5.0 * jnp.mean(objective.make_perceptual_loss(d.perceptual)(pred_rgb, real_rgb))
                + 1.0 * bce(fake_logits, 1.0)
                + 0.5 * jnp.sum(objective.colorfulness_loss(pred_rgb))
            )
            return total, (pred_rgb, spectral, mutated["batch_stats"])

        (g_total, (pred_rgb, spectral, batch_stats)), g_grads = jax.value_and_grad(generator_total, has_aux=True)(
            state.params
        )

        def discriminator_total(params):
            real_logits, after_real = discriminate(params, spectral, real_rgb)
            fake_logits, after_fake = discriminate(params, after_real, jax.lax.stop_gradient(pred_rgb))
            return bce(real_logits, 1.0) + bce(fake_logits, 0.0), after_fake

        (d_total, d_spectral), d_grads = jax.value_and_grad(discriminator_total, has_aux=True)(d.params)
        sgd = functools.partial(jax.tree.map, lambda p, g: p - g)
        return dict(
            g_total=g_total,
            d_total=d_total,
            params=sgd(state.params, g_grads),
            batch_stats=batch_stats,
            d_params=sgd(d.params, d_grads),
            spectral_after_generator=spectral,
            d_spectral=d_spectral,
            colorfulness=jnp.mean(objective.colorfulness(pred_rgb)),
        )

    expected = reference(state, batch, rng)

    def close(actual, expected, atol):
        leaves_a, leaves_e = jax.tree.leaves(actual), jax.tree.leaves(expected)
        assert len(leaves_a) == len(leaves_e) > 0
        for a, e in zip(leaves_a, leaves_e, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=1e-5)

    close(metrics["train/loss"], expected["g_total"], 1e-6)
    close(metrics["train/d_loss"], expected["d_total"], 1e-6)
    close(new_state.params, expected["params"], 1e-6)
    close(new_state.batch_stats, expected["batch_stats"], 1e-6)
    close(new_state.discriminator.params, expected["d_params"], 1e-6)
    close(new_state.discriminator.spectral, expected["d_spectral"], 1e-6)
    close(metrics["train/colorfulness"], expected["colorfulness"], 1e-6)
    # Three train-mode calls: the vectors after the generator's call alone are elsewhere.
    after_one, after_three = (
        jax.tree.leaves(x)[0] for x in (expected["spectral_after_generator"], expected["d_spectral"])
    )
    assert not np.allclose(np.asarray(after_one), np.asarray(after_three))
    assert int(new_state.step) == 1
    for name in ("g_pixel", "g_perceptual", "g_gan", "g_colorfulness", "d_real", "d_fake"):
        assert np.isfinite(float(metrics[f"train/{name}"])), name
    assert 0 < float(metrics["train/d_real"]) < 1 and 0 < float(metrics["train/d_fake"]) < 1


@pytest.mark.slow
def test_gan_resume_equals_uninterrupted_training_bitwise(vgg16_bn_file, photo_folder, tmp_path, monkeypatch):
    """4 steps straight == 2 steps, a crash in step 4, a rerun to 4: generator, discriminator, both optimizers, the
    spectral vectors and the VGG16-BN, every bit; and the run colours photos like any run. The straight run also
    evaluates at step 4 (an evaluation changes no state): it logs what a person training a GAN looks at, each
    network's loss, each term, D(real), D(fake), the colourfulness, and the gray | predicted | truth grid, in
    TensorBoard and images/ as an L1 run does."""
    config = gan_config(vgg16_bn_file, photo_folder)
    results = train.train_and_evaluate(gan_config(vgg16_bn_file, photo_folder, eval_every=4), tmp_path / "straight")
    for name in ("loss", "d_loss", "d_real", "d_fake", "colorfulness", "g_pixel", "g_perceptual", "g_gan"):
        assert np.isfinite(results[f"train/{name}"]), name
    assert np.isfinite(results["val/loss"])
    grid = np.asarray(Image.open(tmp_path / "straight" / runs.IMAGES_DIR / "step_0000004.png"))
    assert grid.ndim == 3 and grid.shape[1] >= 3 * config.data.image_size
    tags = logged_tags(tmp_path / "straight")
    assert {"train/d_loss", "train/g_colorfulness", "train/d_real", "train/d_fake", "train/colorfulness"} <= tags
    assert "val/gray_predicted_truth" in tags

    calls = {"n": 0}
    original_next = data.TrainStream.__next__

    def crash_after_three_batches(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("simulated crash")
        return original_next(self)

    monkeypatch.setattr(data.TrainStream, "__next__", crash_after_three_batches)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.train_and_evaluate(config, tmp_path / "resumed")
    monkeypatch.setattr(data.TrainStream, "__next__", original_next)
    assert runs.open_checkpoints(tmp_path / "resumed", read_only=True).latest_step() == 2
    train.train_and_evaluate(config, tmp_path / "resumed")

    straight, _ = restored_state(tmp_path / "straight")
    resumed, _ = restored_state(tmp_path / "resumed")
    assert int(resumed["step"]) == 4 and set(resumed) >= {"discriminator"}
    leaves_s, leaves_r = jax.tree.leaves(straight), jax.tree.leaves(resumed)
    assert len(leaves_s) == len(leaves_r)
    for a, b in zip(leaves_s, leaves_r, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Inference reads a GAN run as any other: the generator's variables, no discriminator.
    run = runs.load_run(tmp_path / "resumed", "latest")
    assert run.step == 4 and "params" in run.variables and "discriminator" not in run.variables


@pytest.mark.slow
def test_a_perceptual_weight_of_0_needs_no_vgg16_bn_file(photo_folder, tmp_path):
    """With config.gan.perceptual_weight 0 (the term off, e.g. where torchvision's 528 MB file cannot be
    downloaded) a fresh run reads no VGG16-BN (the configured file does not exist), holds none in its state and
    logs the term as 0; the other terms train as before, and the run resumes from its checkpoint."""
    absent = tmp_path / "no_such_vgg16_bn.pth"
    config = gan_config(absent, photo_folder, num_train_steps=2)
    config.gan.perceptual_weight = 0.0
    assert gan_lib.from_config(config).init(jax.random.key(0), config.data.image_size).perceptual == {}
    results = train.train_and_evaluate(config, tmp_path / "run")
    assert results["train/g_perceptual"] == 0.0
    for name in ("loss", "d_loss", "g_pixel", "g_gan", "g_colorfulness"):
        assert np.isfinite(results[f"train/{name}"]), name
    config.num_train_steps = 3
    train.train_and_evaluate(config, tmp_path / "run")
    state, _ = restored_state(tmp_path / "run")
    assert int(state["step"]) == 3 and not jax.tree.leaves(state["discriminator"].get("perceptual"))
    assert not absent.exists()


@pytest.mark.slow
def test_a_fresh_run_starts_its_encoder_from_the_convnext_file(vgg16_bn_file, photo_folder, tmp_path):
    """`config.model.encoder_init` (a file in Meta's ConvNeXt layout at the CPU widths, in place of the registry's
    ImageNet-22k names): after one step the encoder is the file's moved by about one learning rate, while the rest
    of the generator is freshly initialised."""
    torch = pytest.importorskip("torch")
    from helpers.ddcolor import authors_convnext, meta_convnext_state_dict, write_meta_checkpoint

    config = gan_config(vgg16_bn_file, photo_folder, num_train_steps=1, checkpoint_every=1)
    depths, dims = config.model.depths, config.model.dims
    state = meta_convnext_state_dict(torch, authors_convnext(torch, depths, dims))
    config.model.encoder_init = str(write_meta_checkpoint(torch, state, tmp_path / "convnext.pth"))
    train.train_and_evaluate(config, tmp_path / "run")
    encoder = runs.load_run(tmp_path / "run", "latest").variables["params"]["encoder"]
    stem = np.transpose(state["downsample_layers.0.0.weight"].numpy(), (2, 3, 1, 0))
    gamma = state["stages.2.0.gamma"].numpy()
    for ours, file in ((encoder["downsample_layers_0_0"]["kernel"], stem), (encoder["stages_2_0"]["gamma"], gamma)):
        assert np.max(np.abs(np.asarray(ours) - file)) <= 2 * config.optimizer.learning_rate


def logged_tags(workdir) -> set[str]:
    """The tags of a run's TensorBoard event files."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = set()
    for path in sorted((workdir / "tensorboard").rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            tags |= {value.tag for value in event_pb2.Event.FromString(record.numpy()).summary.value}
    return tags


def _blow_up_discriminator_at_step_3(monkeypatch, blow_up):
    real = train.make_train_step

    def make_train_step(*args, **kwargs):
        step_fn = real(*args, **kwargs)

        def train_step(state, batch, rng):
            new_state, metrics = step_fn(state, batch, rng)
            d = new_state.discriminator
            params = jax.tree.map(lambda x: jnp.where(state.step == 2, blow_up(x), x), d.params)
            return new_state.replace(discriminator=d.replace(params=params)), metrics

        return train_step

    monkeypatch.setattr(train, "make_train_step", make_train_step)


@pytest.mark.slow
@pytest.mark.parametrize("blown_up", ["nan", "huge"])
def test_a_discriminator_blown_up_on_a_save_step_is_not_saved(
    vgg16_bn_file, photo_folder, tmp_path, monkeypatch, blown_up
):
    good = gan_config(vgg16_bn_file, photo_folder, num_train_steps=2)
    train.train_and_evaluate(good, tmp_path / "run")
    _blow_up_discriminator_at_step_3(
        monkeypatch, (lambda x: x * jnp.nan) if blown_up == "nan" else (lambda x: x + 1e12)
    )
    bad = gan_config(vgg16_bn_file, photo_folder, num_train_steps=4, checkpoint_every=1)
    with pytest.raises(train.TrainingDiverged) as caught:
        train.train_and_evaluate(bad, tmp_path / "run")
    message = str(caught.value)
    assert "after step 3" in message and "the last good checkpoint is step 2" in message
    assert ("not finite" if blown_up == "nan" else "blew up (largest |w| 1e+12") in message
    assert runs.open_checkpoints(tmp_path / "run", read_only=True).all_steps() == [2]


def test_a_discriminator_loss_of_nan_stops_the_run_and_names_it():
    config = gan_config("unused")
    metrics = {"train/loss": 1.0, "train/grad_norm": 1.0, "train/d_loss": 0.5, "train/d_grad_norm": 2.0}
    pending = [metrics, {**metrics, "train/d_loss": float("nan")}]
    with pytest.raises(train.TrainingDiverged, match="the discriminator's loss became nan at step 6") as caught:
        train._check_and_average(pending, 6, config, 4)
    assert "Lower the discriminator's config.gan.optimizer.learning_rate (now 0.0001; try 1e-05)" in str(caught.value)
    generator = [{**metrics, "train/grad_norm": float("inf")}]
    with pytest.raises(train.TrainingDiverged, match="the training loss's gradient became inf at step 1") as caught:
        train._check_and_average(generator, 1, config, None)
    assert "Lower config.optimizer.learning_rate" in str(caught.value)
    assert train._check_and_average([metrics], 1, config, None)["train/d_loss"] == 0.5


@pytest.mark.slow
def test_one_gan_step_on_eight_devices_equals_one_device(vgg16_bn_file, photo_folder, tmp_path):
    """Data parallel over a Mesh: the GAN step on 8 fake CPU devices gives the same losses, generator (BatchNorm
    statistics over the global batch included) and discriminator (spectral vectors included) as on 1 device. SGD
    for both networks, as in test_one_gan_step_equals_the_recipe_written_out: Adam's first step turns float noise
    in a gradient near 0 (summed in another order over 8 devices) into a step of either sign (measured with
    Adam: one weight of 16 at 5.2e-6 on 8 devices, -5.6e-6 on 1)."""
    code = f"""
        import json, sys, jax
        sys.path.insert(0, {str(REPO / "tests")!r})
        sys.path.insert(0, {str(REPO / "tests" / "integration")!r})
        from test_gan_train import gan_config
        from colorjax.train import trainer as train
        config = gan_config({str(vgg16_bn_file)!r}, {str(photo_folder)!r}, batch_size=8, num_train_steps=1,
                            checkpoint_every=1)
        config.optimizer.update(name="sgd", learning_rate=1.0, momentum=0.0, weight_decay=0.0)
        config.gan.optimizer.update(name="sgd", learning_rate=1.0)
        workdir = {str(tmp_path)!r} + "/devices_" + str(jax.device_count())
        results = train.train_and_evaluate(config, workdir)
        print("RESULT", json.dumps({{"devices": jax.device_count(), "loss": results["train/loss"],
                                    "d_loss": results["train/d_loss"]}}))
    """
    outputs = {}
    for devices in ("1", "8"):
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": devices, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
        outputs[devices] = json.loads(line.split(" ", 1)[1])
    assert outputs["1"]["devices"] == 1 and outputs["8"]["devices"] == 8
    for name in ("loss", "d_loss"):
        assert abs(outputs["1"][name] - outputs["8"][name]) <= 1e-5, name
    one, _ = restored_state(tmp_path / "devices_1")
    eight, _ = restored_state(tmp_path / "devices_8")
    for part in ("params", "batch_stats", "discriminator"):
        leaves_one, leaves_eight = jax.tree.leaves(one[part]), jax.tree.leaves(eight[part])
        assert len(leaves_one) == len(leaves_eight) > 0
        for a, b in zip(leaves_one, leaves_eight, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
