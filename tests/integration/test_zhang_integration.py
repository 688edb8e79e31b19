"""Zhang et al. through the whole package: its config trains with the trainer, the run colours photos, and the
published-weight path (`colorize --weights`) reproduces the model's own decoding. (The recipes and their switches:
tests/unit/test_zhang_configs.py.)

Kept cheap: one 50-step training run of a 1/16-width ECCV16 on 32 px crops (shared by the tests that need a run),
and one full-width forward pass at 256 x 256 for the published layout.
"""

import json
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from helpers.configs import load_repo_config
from helpers.paths import TEST_DATA
from helpers.photos import make_photo
from PIL import Image

from colorjax import color, quantize
from colorjax.cli import colorize
from colorjax.inference import colorizer as inference
from colorjax.models.eccv16 import upsample4_bilinear
from colorjax.models.published import load_published
from colorjax.train import trainer as train

LAYOUTS = json.loads((TEST_DATA / "torch_state_dict_layouts.json").read_text())
STEPS = 50


def zhang_config(variant: str | None):
    return load_repo_config("zhang_eccv16", variant)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Colourful generated photos of assorted sizes in two class folders (as the `photo_folder` fixture)."""
    root = tmp_path_factory.mktemp("zhang") / "photos"
    rng = np.random.default_rng(0)
    for label, hue in (("cats", 0.0), ("dogs", 3.0)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            Image.fromarray(make_photo(rng, *size, hue_shift=hue)).save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def zhang_run(photos, tmp_path_factory):
    """The `runlocal` variant, shrunk further, trained for 50 steps: (workdir, printed output, final metrics)."""
    import contextlib
    import io

    config = zhang_config("runlocal")
    config.data.source = f"folder:{photos}"
    config.data.image_size = 32
    config.data.holdout_fraction = 0.0
    config.data.eval_split = "train"
    config.data.prefetch = 2
    config.model.width = 1 / 16
    config.batch_size = 4
    config.num_train_steps = STEPS
    config.schedule.warmup_steps = 5
    # Adam moves each weight by about the learning rate per step: 50 steps at the config's 1e-3 cannot move the
    # 313 logits far from their near-uniform start. 1e-2 lowers the loss by about 20% in 50 steps.
    config.optimizer.learning_rate = 1e-2
    config.log_every = 10
    config.eval_every = STEPS
    config.eval_max_images = 8
    config.num_grid_images = 4
    config.checkpoint_every = STEPS
    workdir = tmp_path_factory.mktemp("zhang_run") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = train.train_and_evaluate(config, workdir)
    return workdir, printed.getvalue(), results


def test_runlocal_config_trains_and_lowers_the_zhang_loss(zhang_run):
    workdir, printed, results = zhang_run
    losses = [float(v) for v in re.findall(r"step +\d+/\d+  loss (\S+)", printed)]
    assert len(losses) == STEPS // 10, printed
    print(f"tiny eccv16 through the trainer: loss per 10 steps {losses}")
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.9 * losses[0], losses
    # Evaluation ran with the Zhang loss and wrote the picture grid.
    assert np.isfinite(results["val/loss"]) and 0.0 <= results["val/bin_accuracy"] <= 1.0
    assert (workdir / "images" / f"step_{STEPS:07d}.png").exists()


def saturation(rgb: np.ndarray) -> float:
    lab = np.asarray(color.rgb_to_lab(jnp.asarray(rgb, jnp.float32) / 255.0))
    return float(np.mean(np.linalg.norm(lab[..., 1:], axis=-1)))


def test_the_run_colours_photos_and_temperature_changes_the_decoding(zhang_run, tmp_path):
    workdir, _, _ = zhang_run
    colorizer = inference.open_colorizer(workdir=workdir)
    assert colorizer.model.temperature == 0.38  # the paper's annealed mean, from the run's config
    photo = make_photo(np.random.default_rng(1), 50, 70)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    outputs = {}
    for temperature in ("1", "0.1"):
        out = tmp_path / f"T{temperature}"
        status = colorize.main(
            ["--workdir", str(workdir), str(tmp_path / "photo.png"), "--output", str(out)]
            + ["--temperature", temperature]
        )
        assert status == 0
        outputs[temperature] = np.asarray(Image.open(out / "photo.png"))
        assert outputs[temperature].shape == (50, 70, 3)
    difference = np.abs(outputs["1"].astype(int) - outputs["0.1"].astype(int))
    assert difference.mean() > 1.0
    # T = 1 is the plain mean, which averages the modes; a low T moves toward the mode: more colour.
    assert saturation(outputs["0.1"]) > saturation(outputs["1"])


def random_published_eccv16(path: Path) -> Path:
    """An .npz state dict with the layout of the authors' ECCV16 checkpoint: random convs, random BN statistics."""
    rng = np.random.default_rng(0)
    state = {}
    for key, shape, dtype in LAYOUTS["eccv16"]["state_dict"]:
        if key.endswith("num_batches_tracked"):
            state[key] = np.zeros(shape, np.int64)
        elif key == "model_out.weight":
            state[key] = (quantize.ab_bin_centres().T / 110.0)[:, :, None, None]
        elif len(shape) == 4:  # conv (out, in, kh, kw) or transposed conv (in, out, kh, kw): He-scaled
            fan_in = shape[1] * shape[2] * shape[3] if not key.startswith("model8.0") else shape[0] * 4
            state[key] = rng.normal(0, np.sqrt(2 / fan_in), shape)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, shape)
        elif key.endswith("running_mean") or key.endswith("bias"):
            state[key] = rng.normal(0, 0.1, shape)
        else:  # BatchNorm weight
            state[key] = rng.uniform(0.5, 1.5, shape)
        state[key] = state[key].astype(dtype)
    np.savez(path, **state)
    return path


@pytest.mark.slow
def test_colorize_with_published_weights_reproduces_the_plain_mean(tmp_path):
    weights = random_published_eccv16(tmp_path / "eccv16.npz")
    square = make_photo(np.random.default_rng(2), 256, 256)
    small = make_photo(np.random.default_rng(3), 60, 90)
    Image.fromarray(square).save(tmp_path / "square.png")
    Image.fromarray(small).save(tmp_path / "small.png")
    out = tmp_path / "out"
    status = colorize.main(
        ["--weights", str(weights), "--model", "eccv16", "--temperature", "1"]
        + [str(tmp_path / "square.png"), str(tmp_path / "small.png"), "--output", str(out)]
    )
    assert status == 0
    square_out = np.asarray(Image.open(out / "square.png"))
    assert square_out.shape == (256, 256, 3)
    assert np.asarray(Image.open(out / "small.png")).shape == (60, 90, 3)

    # The authors' demo size is used as is: no resize, so the model sees exactly this photo's lightness.
    assert inference.open_colorizer(weights=weights, model="eccv16").working_size(256, 256) == (256, 256)
    # What the PyTorch port returns: the expectation of the bin centres (T = 1), upsampled x4.
    model, variables = load_published("eccv16", weights)
    L = color.rgb_to_lab(jnp.asarray(square, jnp.float32) / 255.0)[..., :1]
    logits = model.apply(variables, L[None], train=False)["logits"]
    ab = upsample4_bilinear(quantize.annealed_mean(logits, temperature=1.0))[0]
    expected = np.asarray(color.rgb_to_uint8(color.chroma_to_rgb(L, ab, "lab")))
    difference = np.abs(square_out.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01
    assert saturation(expected) > 2.0  # random weights still give colour, so the comparison means something
