"""Iizuka end to end: trained by the trainer on labelled photos (class metrics logged beside the colour loss), then
`colorize` at any size, tiled past --max-pixels, with another photo's global features, and with its top classes;
without labels the run has no classifier and says so. (The paper's recipe: tests/unit/test_iizuka_config.py.)"""

import json
import re

import numpy as np
import pytest
from helpers.runs import restored_state, tiny_config
from PIL import Image

from colorjax.cli import colorize
from colorjax.train import trainer as train

TINY_IIZUKA = dict(name="iizuka", num_classes="auto", width=1 / 16, global_size=32)


def write_photos(root, classes=("cats", "dogs"), per_class=6, seed=0):
    """Generated colourful photos of 40-90 pixels, in one subfolder per class (no subfolders for classes=())."""
    from helpers.photos import make_photo

    rng = np.random.default_rng(seed)
    for index, label in enumerate(classes or ("",)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            photo = make_photo(rng, *size, hue_shift=3.0 * index)
            Image.fromarray(photo).save(root / label / f"{i}.jpg", quality=95)
    return root


def iizuka_config(source, **overrides):
    # 40 steps (the compilation costs far more): BatchNorm's running statistics, which inference uses, then have
    # left their initial values (0.9^40 = 1.5% remains), so the global features visibly steer the colours.
    settings = dict(
        model=TINY_IIZUKA,
        loss=dict(name="iizuka", alpha=1 / 300),
        num_train_steps=40,
        checkpoint_every=40,
        log_every=20,
        eval_every=40,
    )
    config = tiny_config(source, **{**settings, **overrides})
    config.data.image_size = 32
    return config


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """40 steps of a 1/16-width model on two classes of generated photos, with an evaluation at the end."""
    photos = write_photos(tmp_path_factory.mktemp("labelled"))
    workdir = tmp_path_factory.mktemp("labelled_run")
    results = train.train_and_evaluate(iizuka_config(f"folder:{photos}"), workdir)
    return workdir, results, photos


SIZES = ((5, 7), (45, 61), (171, 203))  # (height, width); the largest is tiled below


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory):
    """Photos of odd sizes (the tests reuse them: every new size costs compilations)."""
    from helpers.photos import make_photo

    folder = tmp_path_factory.mktemp("odd_inputs")
    rng = np.random.default_rng(3)
    for height, width in SIZES:
        Image.fromarray(make_photo(rng, height, width)).save(folder / f"{height}x{width}.png")
    return folder


def colorize_main(capsys, *arguments):
    status = colorize.main([str(a) for a in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_labelled_run_logs_class_loss_and_accuracy_beside_the_colour_loss(labelled_run):
    workdir, results, _ = labelled_run
    for key in ("class_loss", "class_accuracy", "color_loss"):
        assert np.isfinite(results[f"train/{key}"]) and np.isfinite(results[f"val/{key}"])
    assert 0.0 <= results["val/class_accuracy"] <= 1.0
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["num_classes"] == 2 and config["loss"]["alpha"] == pytest.approx(1 / 300)

    import tensorflow as tf

    tags = set()
    for events in (workdir / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags |= {value.tag for value in event.summary.value}
    assert {
        "train/class_loss",
        "train/class_accuracy",
        "val/class_accuracy",
        "val/color_loss",
    } <= tags


def test_any_size_in_size_out_at_full_resolution(labelled_run, odd_inputs, tmp_path, capsys):
    workdir = labelled_run[0]
    status, out, _ = colorize_main(capsys, "--workdir", workdir, odd_inputs, "--output", tmp_path / "out")
    assert status == 0
    for height, width in SIZES:
        with Image.open(tmp_path / "out" / f"{height}x{width}.png") as image:
            assert image.size == (width, height)
        # One line per photo says how the model ran on it: natively, at the photo's own size.
        assert f"local path at full resolution {height}x{width}" in out


def test_max_pixels_tiles_without_seams_or_downscales_and_says_so(labelled_run, odd_inputs, tmp_path, capsys):
    photo = odd_inputs / "171x203.png"
    workdir = labelled_run[0]
    outputs = {}
    for name, options in (
        ("full", []),
        ("tiled", ["--max-pixels", 160 * 160]),
        ("downscaled", ["--max-pixels", 160 * 160, "--large-image", "downscale"]),
    ):
        status, out, _ = colorize_main(capsys, "--workdir", workdir, photo, "--output", tmp_path / name, *options)
        assert status == 0
        lines = [line for line in out.splitlines() if line.startswith(str(photo))]
        assert len(lines) == 1, out
        outputs[name] = np.asarray(Image.open(tmp_path / name / "171x203.png"), np.int16)
        assert outputs[name].shape == (171, 203, 3)
        if name == "tiled":
            assert re.search(r"past the budget of 25600 pixels: local path tiled .* \d+ tiles", lines[0])
        if name == "downscaled":
            assert "local path downscaled to" in lines[0]
    # Tiles keep a context margin wider than the receptive field: the same picture as one pass (8-bit rounding).
    assert np.abs(outputs["tiled"] - outputs["full"]).max() <= 1


def test_global_from_colours_with_the_references_global_features(labelled_run, odd_inputs, tmp_path, capsys):
    workdir = labelled_run[0]
    image, reference = odd_inputs / "45x61.png", odd_inputs / "171x203.png"
    status, out, _ = colorize_main(capsys, "--workdir", workdir, image, "--output", tmp_path / "own")
    assert status == 0
    status, out, _ = colorize_main(
        capsys,
        "--workdir",
        workdir,
        image,
        "--output",
        tmp_path / "transferred",
        "--global-from",
        reference,
    )
    assert status == 0 and f"global features of {reference}" in out
    own = np.asarray(Image.open(tmp_path / "own" / "45x61.png"), np.float32)
    transferred = np.asarray(Image.open(tmp_path / "transferred" / "45x61.png"), np.float32)
    assert own.shape == transferred.shape
    # RGB levels (3.1 measured); a model whose global features did not reach the colours would give 0.
    assert np.abs(own - transferred).mean() > 1.0


def test_labels_prints_the_top_classes_by_name(labelled_run, odd_inputs, tmp_path, capsys):
    workdir = labelled_run[0]
    status, out, _ = colorize_main(capsys, "--workdir", workdir, odd_inputs, "--output", tmp_path / "out", "--labels")
    assert status == 0
    lines = [line for line in out.splitlines() if "classes:" in line]
    assert len(lines) == 3, out  # one per photo
    for line in lines:
        # Two classes in the run: both are listed (top-5 or all, if fewer), best first, probabilities sum to 1.
        found = re.findall(r"(cats|dogs) (\d+\.\d)%", line.split("top-2 classes: ")[1])
        assert sorted(name for name, _ in found) == ["cats", "dogs"], line
        probabilities = [float(p) for _, p in found]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(100.0, abs=0.11)


def test_without_labels_the_classifier_is_off_and_says_so(tmp_path, capsys):
    photos = write_photos(tmp_path / "unlabelled", classes=(), per_class=8)
    workdir = tmp_path / "run"
    results = train.train_and_evaluate(
        iizuka_config(f"folder:{photos}", num_train_steps=2, checkpoint_every=2, eval_every=0),
        workdir,
    )
    out = capsys.readouterr().out
    assert re.search(r"Classifier off: the training data has no class labels .*alpha -> 0", out)
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["num_classes"] == 0 and config["loss"]["alpha"] == 0.0
    state, meta = restored_state(workdir)
    assert meta["model_kwargs"]["num_classes"] == 0
    assert "classifier" not in state["params"] and "global_net" in state["params"]
    assert "train/class_loss" not in results and np.isfinite(results["train/color_loss"])

    status, _, err = colorize_main(capsys, "--workdir", workdir, photos, "--output", tmp_path / "out", "--labels")
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert "has no classifier" in err
