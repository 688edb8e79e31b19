"""`python -m colorjax.colorize`: a trained run colours files and folders of any size; bad input gets one line."""

import shutil

import numpy as np
import pytest
from PIL import Image
from test_train import tiny_config

from colorjax import colorize, train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from conftest import make_photo

    rng = np.random.default_rng(1)
    photos = tmp_path_factory.mktemp("train_photos")
    for i in range(6):
        Image.fromarray(make_photo(rng, 40, 56)).save(photos / f"{i}.png")
    workdir = tmp_path_factory.mktemp("run")
    train.train_and_evaluate(tiny_config(f"folder:{photos}", num_train_steps=4, checkpoint_every=4), workdir)
    return workdir


@pytest.fixture
def inputs(tmp_path, photo_folder):
    """A folder with photos of several sizes (7x5 and a large odd one), a gray photo, a corrupt file, a subfolder."""
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    from conftest import make_photo

    Image.fromarray(make_photo(rng, 5, 7)).save(folder / "tiny_7x5.png")
    Image.fromarray(make_photo(rng, 333, 250)).save(folder / "sub" / "big.jpg", quality=95)
    Image.fromarray(make_photo(rng, 64, 80)).convert("L").save(folder / "gray.png")
    shutil.copy(photo_folder / "dogs" / "corrupt.jpg", folder / "corrupt.jpg")
    return folder


def test_colorizes_a_folder_keeping_sizes_and_structure(trained_run, inputs, tmp_path, capsys):
    output = tmp_path / "out"
    status = colorize.main(["--workdir", str(trained_run), str(inputs), "--output", str(output)])
    captured = capsys.readouterr()
    assert status == 1  # One file could not be read: reported, the rest done.
    assert "error: Cannot read image" in captured.err and "corrupt.jpg" in captured.err
    assert "Colorized 3 image(s) with step 4" in captured.out
    for name, size in (
        ("tiny_7x5.png", (7, 5)),
        ("sub/big.png", (250, 333)),
        ("gray.png", (80, 64)),
    ):
        with Image.open(output / name) as image:
            assert image.size == size and image.mode == "RGB"
    assert not (output / "corrupt.png").exists()


def test_output_keeps_the_inputs_full_resolution_lightness(trained_run, inputs, tmp_path):
    from skimage.color import rgb2lab

    output = tmp_path / "out"
    colorize.main(["--workdir", str(trained_run), str(inputs / "sub" / "big.jpg"), "--output", str(output)])
    original = np.asarray(Image.open(inputs / "sub" / "big.jpg").convert("RGB")) / 255.0
    coloured = np.asarray(Image.open(output / "big.png")) / 255.0
    # Colour changes L only through gamut clipping and 8-bit rounding: detail survives at full resolution.
    lightness_error = np.abs(rgb2lab(original)[..., 0] - rgb2lab(coloured)[..., 0])
    assert np.median(lightness_error) < 1.0


def test_samples_and_side_by_side(trained_run, tmp_path):
    output = tmp_path / "out"
    assert colorize.main(["--workdir", str(trained_run), "samples", "--output", str(output), "--side-by-side"]) == 0
    chelsea = Image.open(output / "chelsea.png")
    side = Image.open(output / "chelsea_side.png")
    assert side.size[0] >= 2 * chelsea.size[0] and side.size[1] == chelsea.size[1]


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda run, tmp: ["--workdir", str(tmp / "missing"), "samples"], "does not exist"),
        (lambda run, tmp: ["--workdir", str(tmp), "samples"], "No checkpoint in"),
        (
            lambda run, tmp: ["--workdir", str(run), str(tmp / "nope.jpg")],
            "Input .*nope.jpg does not exist",
        ),
        (
            lambda run, tmp: ["--workdir", str(run), "--step", "999", "samples"],
            "No checkpoint for step 999",
        ),
    ],
)
def test_bad_input_is_one_line(trained_run, tmp_path, capsys, make_arguments, message):
    status = colorize.main([*make_arguments(trained_run, tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: ")
    import re

    assert re.search(message, err), err


def test_unwritable_output_is_one_line(trained_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status = colorize.main(["--workdir", str(trained_run), "samples", "--output", str(blocker / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and err.startswith("error: Cannot write to output folder") and len(err.splitlines()) == 1


def test_an_unreadable_single_file_is_reported(trained_run, inputs, tmp_path, capsys):
    status = colorize.main(
        [
            "--workdir",
            str(trained_run),
            str(inputs / "corrupt.jpg"),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert status == 1 and "Cannot read image" in capsys.readouterr().err
