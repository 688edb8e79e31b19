"""Hints end to end: a tiny SIGGRAPH17 trained with simulated hints, then `colorize --hints FILE` /
`--hints-from REF` and `Colorizer.predict(rgb, hints=[...])`, with one-line errors for bad hints."""

import json
import re

import numpy as np
import pytest
from helpers.runs import tiny_config
from PIL import Image

from colorjax import runs
from colorjax.cli import colorize
from colorjax.cli import hint_sweep as hint_sweep_cli
from colorjax.inference import open_colorizer
from colorjax.inference.colorizer import Colorizer, InferenceError
from colorjax.train import trainer as train


@pytest.fixture(scope="module")
def hinted_run(tmp_path_factory):
    """Two training steps of a 1/16-width siggraph17 with the paper's simulated hints, on generated photos."""
    from helpers.photos import make_photo

    rng = np.random.default_rng(4)
    photos = tmp_path_factory.mktemp("hint_photos")
    for i in range(4):
        Image.fromarray(make_photo(rng, 40, 48)).save(photos / f"{i}.png")
    workdir = tmp_path_factory.mktemp("hint_run")
    config = tiny_config(
        f"folder:{photos}",
        model=dict(name="siggraph17", width=1 / 16),
        num_train_steps=2,
        checkpoint_every=2,
        hints=dict(simulate=True),
    )
    train.train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture
def photo(tmp_path):
    from helpers.photos import make_photo

    path = tmp_path / "photo.png"
    Image.fromarray(make_photo(np.random.default_rng(5), 30, 50)).save(path)
    return path


def test_the_run_trained_with_hints_and_colours_with_them(hinted_run, photo):
    assert runs.load_run(hinted_run, "latest").config.hints.simulate
    colorizer = open_colorizer(workdir=hinted_run)
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    plain = colorizer.predict(rgb).rgb.astype(int)
    points = [{"x": 10, "y": 12, "color": "#00ff00", "size": 9}, {"x": 40, "y": 5, "ab": [60, 60]}]
    hinted = colorizer.predict(rgb, hints=points).rgb.astype(int)
    assert hinted.shape == plain.shape == rgb.shape
    assert np.abs(hinted - plain).max() > 0  # the hints reach the output
    no_points = colorizer.predict(rgb, hints=[]).rgb.astype(int)
    assert np.abs(no_points - plain).max() <= 1  # an empty list is the automatic mode
    with pytest.raises(InferenceError, match=r"point 0 at x=50, y=0 lies outside the 50x30 photo"):
        colorizer.predict(rgb, hints=[{"x": 50, "y": 0, "ab": [0, 0]}])


def test_colorize_with_a_hints_file_and_a_reference(hinted_run, photo, tmp_path, capsys):
    hints_file = tmp_path / "hints.json"
    hints_file.write_text(json.dumps([{"x": 10, "y": 12, "color": "#00ff00", "size": 3}]))
    plain_dir, hinted_dir, reference_dir = tmp_path / "plain", tmp_path / "hinted", tmp_path / "ref"
    base = ["--workdir", str(hinted_run), str(photo)]
    assert colorize.main([*base, "--output", str(plain_dir)]) == 0
    assert colorize.main([*base, "--output", str(hinted_dir), "--hints", str(hints_file)]) == 0
    assert "Colouring with the 1 colour point(s) of" in capsys.readouterr().out
    # A reference of another size (resized to the photo), 5 points sampled from it.
    reference = tmp_path / "reference.png"
    Image.fromarray(np.full((60, 100, 3), (30, 160, 40), np.uint8)).save(reference)
    argv = [
        *base,
        "--output",
        str(reference_dir),
        "--hints-from",
        str(reference),
        "--num-hints",
        "5",
    ]
    assert colorize.main(argv) == 0
    assert "5 colour point(s) sampled from" in capsys.readouterr().out
    plain, hinted, from_reference = (
        np.asarray(Image.open(d / "photo.png")).astype(int) for d in (plain_dir, hinted_dir, reference_dir)
    )
    assert plain.shape == hinted.shape == from_reference.shape == (30, 50, 3)
    assert np.abs(hinted - plain).max() > 0 and np.abs(from_reference - plain).max() > 0


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"x": 10, "y": 12, "color": "green"}]', r"'color' must be a hex colour"),
        ('{"x": 10}', r"must be a list of points"),
        ("[{'x': 1}]", r"is not valid JSON"),
    ],
)
def test_colorize_rejects_a_bad_hints_file_in_one_line(hinted_run, photo, tmp_path, capsys, content, message):
    hints_file = tmp_path / "bad.json"
    hints_file.write_text(content)
    argv = ["--workdir", str(hinted_run), str(photo), "--output", str(tmp_path / "out")]
    assert colorize.main([*argv, "--hints", str(hints_file)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(hints_file) in err
    assert re.search(message, err)


def test_colorize_reports_a_point_outside_a_photo_and_goes_on(hinted_run, photo, tmp_path, capsys):
    hints_file = tmp_path / "far.json"
    hints_file.write_text(json.dumps([{"x": 45, "y": 35, "ab": [0, 40]}]))  # photo is 50 x 30
    output = tmp_path / "out"
    argv = ["--workdir", str(hinted_run), str(photo), "--output", str(output)]
    assert colorize.main([*argv, "--hints", str(hints_file)]) == 1
    err = capsys.readouterr().err
    assert f"{photo}: Hints file {hints_file}, point 0 at x=45, y=35 lies outside" in err
    assert not (output / "photo.png").exists()


def test_num_hints_goes_with_hints_from(photo, capsys):
    with pytest.raises(SystemExit):
        colorize.main(["--workdir", "x", str(photo), "--output", "o", "--num-hints", "3"])
    assert "--num-hints takes a count >= 0 and goes with --hints-from" in capsys.readouterr().err


def test_models_without_hint_inputs_refuse_hints(photo):
    import jax
    import jax.numpy as jnp
    import optax

    from colorjax.config_lib import base_config
    from colorjax.models import get_model
    from colorjax.train import losses

    model = get_model("regression", width=4)
    # Shapes suffice: the refusal comes before the model runs.
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    colorizer = Colorizer(model=model, variables=variables, resolution=16, description="a test")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    with pytest.raises(InferenceError, match="a test takes no colour hints; hints need a siggraph17"):
        colorizer.predict(rgb, hints=[])
    hints = base_config().hints
    hints.simulate = True
    with pytest.raises(ValueError, match="config.hints.simulate needs a model that takes colour"):
        train.make_train_step(model, losses.get_loss("l2"), optax.adam(1e-3), optax.constant_schedule(1e-3), hints)


def test_hint_sweep_measures_the_ab_error_and_draws_the_picture(hinted_run, tmp_path, capsys):
    from helpers.photos import make_photo

    from colorjax import color

    photos = tmp_path / "test"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(make_photo(np.random.default_rng(10 + i), 24, 32)).save(photos / f"{i}.png")
    picture = tmp_path / "docs" / "hints.png"
    argv = ["--workdir", str(hinted_run), str(photos), "--num-hints", "0", "3"]
    assert hint_sweep_cli.main([*argv, "--picture", str(picture), "--picture-rows", "2"]) == 0
    out = capsys.readouterr().out
    errors = [float(line.split()[-1]) for line in out.splitlines() if "mean ab error" in line]
    assert len(errors) == 2 and all(0 < e < 150 for e in errors) and "3 photos" in out
    # Two rows of gray with points | no hints | with hints | truth, 4 px gutters.
    grid = np.asarray(Image.open(picture))
    assert grid.shape == (2 * 28 + 4, 4 * 36 + 4, 3)
    # The gray column is the gray of the photo's lightness (lab_to_rgb of (L, 0, 0)), not L / 100, wherever no
    # hint patch is drawn.
    shown, truth = grid[4:28, 4:36].astype(int), grid[4:28, 4 + 3 * 36 : 4 + 3 * 36 + 32]
    L = np.asarray(color.rgb_to_lab(truth / np.float32(255.0)))[..., :1]
    plain = np.all(shown == shown[..., :1], axis=-1) & (shown[..., 0] > 0)  # not a patch, not an outline
    assert plain.mean() > 0.5
    assert np.mean(shown[plain] == color.gray_picture(L)[plain]) > 0.95
    assert np.mean(shown[plain][:, 0] == np.round(L[..., 0] * 2.55)[plain]) < 0.5
