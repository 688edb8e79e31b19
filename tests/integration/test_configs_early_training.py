"""The early systems' CPU-sized configs train: each variant, shrunk further here (a few steps, 32x32 photos, a tiny
width), trains with `train.train_and_evaluate` and its checkpoint colours a photo through `inference.open_colorizer`;
the CIFAR-10 recipe keeps its best checkpoint and runs at 32x32 whatever the photo's size. (Loading every variant:
tests/unit/test_configs_early.py.)
"""

from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from helpers.paths import REPO
from helpers.photos import make_photo

from colorjax import config_lib, runs
from colorjax.inference import colorizer as inference
from colorjax.inference import open_colorizer
from colorjax.train import trainer as train

CONFIGS = REPO / "configs"


def load(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    return config_lib.load_config(CONFIGS / f"{name}.py", arg)


def shrink(config: ml_collections.ConfigDict, source: str, **model_overrides) -> ml_collections.ConfigDict:
    """A config cut to seconds on a CPU: 2 steps of 4 photos at 32x32, a checkpoint at the end."""
    config.data.source = source
    config.data.image_size = 32
    config.data.eval_split = "train"  # The fixture folder has no test split.
    config.data.max_failed_fraction = 0.5  # It holds a corrupt JPEG and a text file named .png on purpose.
    config.data.holdout_fraction = 0.0
    config.data.shuffle_buffer = 16
    config.data.prefetch = 2
    config.model.update(model_overrides)
    config.batch_size = 4
    config.num_train_steps = 2
    config.log_every = 1
    config.eval_every = 0
    config.checkpoint_every = 2
    return config


def colorize_photo(workdir: Path, **overrides) -> tuple[np.ndarray, np.ndarray]:
    """A 45x61 photo coloured by the run's checkpoint, and coloured again with noise added to the model's weights."""
    photo = make_photo(np.random.default_rng(1), 45, 61)
    colorizer = open_colorizer(workdir=workdir, **overrides)
    colorized = colorizer.colorize(photo)
    rng = np.random.default_rng(2)
    colorizer.variables = {
        **colorizer.variables,
        "params": jax.tree.map(
            lambda v: v + rng.normal(0.0, 0.5, v.shape).astype(v.dtype),
            colorizer.variables["params"],
        ),
    }
    return colorized, colorizer.colorize(photo)


@pytest.mark.parametrize(
    ("name", "model_overrides"),
    [
        ("luv_vgg16", {"width": 1 / 16}),
        ("luv_vgg16_regression", {"width": 1 / 16}),
        ("koalarization", {"width": 1 / 16}),
    ],
)
def test_cpu_variant_trains_and_its_checkpoint_colours_a_photo(name, model_overrides, photo_folder, tmp_path):
    config = shrink(load(name, "cpu"), f"folder:{photo_folder}", **model_overrides)
    results = train.train_and_evaluate(config, tmp_path / "run")
    assert np.isfinite(results["train/loss"])
    colorized, with_other_weights = colorize_photo(tmp_path / "run")
    assert colorized.shape == (45, 61, 3) and colorized.dtype == np.uint8
    # The colours come from the checkpoint's model: other weights give another picture.
    assert np.mean(np.abs(colorized.astype(np.float32) - with_other_weights)) > 1.0


@pytest.mark.slow
def test_cifar10_recipe_trains_keeps_the_best_and_colours_any_size(photo_folder, tmp_path):
    """The full recipe, data cut to the fixture's photos: evaluations feed the plateau and the kept best checkpoint.

    (Not on `tfds.testing.mock_data`: its mocked file system is process-wide while `as_dataset` runs, and Orbax's
    asynchronous checkpoint writes in other threads then fail.)
    """
    config = shrink(load("cifar10_autoencoder"), f"folder:{photo_folder}")
    config.num_train_steps = 3
    config.eval_every = config.checkpoint_every = 1
    config.optimizer.reduce_on_plateau.patience = 1
    results = train.train_and_evaluate(config, tmp_path / "run")
    assert np.isfinite(results["val/loss"]) and 0.0 < results["val/psnr_rgb_db"] < 100.0
    checkpoints = runs.open_checkpoints(tmp_path / "run", read_only=True)
    assert checkpoints.best_step() in checkpoints.all_steps()

    colorized, with_other_weights = colorize_photo(tmp_path / "run", step="best")
    assert colorized.shape == (45, 61, 3)  # Run at 32x32, upsampled onto the photo's own lightness.
    assert np.mean(np.abs(colorized.astype(np.float32) - with_other_weights)) > 1.0
    with pytest.raises(inference.InferenceError, match="only runs at 32x32"):
        open_colorizer(workdir=tmp_path / "run", resolution=64)
