"""DDColor everywhere a model runs: colorize (photos, a video with the temporal stabiliser), evaluate, export, serve,
`weights to-run` and fine-tuning from published weights (`--config.model_init`).

The model is the authors' DDColor at the CPU width of configs/ddcolor.py:cpu with random weights, written by torch in
the published `.pth` layout (`helpers.ddcolor.authors_weights_file`) and passed as `--weights FILE --model ddcolor`,
as a user passes a downloaded file: the importer reads its widths from its shapes. Nothing downloads.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.ddcolor import authors_weights_file
from helpers.paths import REPO
from helpers.photos import make_photo
from PIL import Image

from colorjax import config_lib, runs
from colorjax.inference import open_colorizer

CONFIGS = REPO / "configs"


def cpu_config(arg: str = "cpu"):
    return config_lib.load_config(CONFIGS / "ddcolor.py", arg)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from colorjax.bench.ddcolor_torch import authors_modules

    try:
        authors_modules()
    except ImportError as error:
        pytest.skip(str(error))
    widths = {key: value for key, value in cpu_config().model.items() if key not in ("name", "size", "encoder_init")}
    return authors_weights_file(torch, tmp_path_factory.mktemp("weights") / "my_ddcolor.pth", widths)


@pytest.fixture(scope="module")
def weights_args(weights_file) -> list[str]:
    return ["--weights", str(weights_file), "--model", "ddcolor"]


@pytest.fixture(scope="module")
def colorizer(weights_file):
    return open_colorizer(weights=str(weights_file), model="ddcolor")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return make_photo(np.random.default_rng(3), 75, 100)


@pytest.fixture(scope="module")
def published_dir(weights_file, tmp_path_factory) -> Path:
    """`weights to-run FILE --model ddcolor`: a run directory holding the file's network."""
    from colorjax.cli import weights

    return weights.to_run(weights_file, tmp_path_factory.mktemp("runs") / "ddcolor_published", model="ddcolor")


def test_the_file_imports_at_its_own_widths_with_the_authors_pipeline(colorizer, photo):
    model = colorizer.model
    assert (model.depths, model.dims, model.num_queries, model.dec_layers) == ((1, 1, 1, 1), (8, 16, 32, 64), 4, 3)
    assert (colorizer.resolution, colorizer.square, colorizer.chroma_upsampling) == (512, True, "nearest")
    colorized = colorizer.colorize(photo)
    assert colorized.shape == photo.shape and colorized.std() > 5


def test_colorize_a_photo_and_a_video(weights_args, colorizer, photo, tmp_path, capsys):
    from colorjax.bench.video import pan_frames, read_clip, write_clip
    from colorjax.cli import colorize

    Image.fromarray(photo).save(tmp_path / "photo.png")
    frames = list(pan_frames(make_photo(np.random.default_rng(4), 120, 160), 96, 64, 6))
    clip = write_clip(tmp_path / "clip.mp4", frames, 12, audio=False)
    output = tmp_path / "out"
    argv = [*weights_args, str(tmp_path / "photo.png"), str(clip), "--output", str(output), "--frames"]
    assert colorize.main(argv) == 0, capsys.readouterr().err
    assert "Colorized 1 image(s) and 1 video(s)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(output / "photo.png")), colorizer.colorize(photo))
    pngs = sorted((output / "clip_frames").glob("*.png"))
    assert len(pngs) == 6 and (output / "clip.mp4").is_file()
    # A shot's first frame has nothing to stabilise against: it is the photo colorizer's picture of that frame.
    first = read_clip(clip)[0]
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[0])), colorizer.colorize(first))


def test_colorize_resolution_and_bilinear_chroma_are_per_call_options(
    weights_file, weights_args, colorizer, photo, tmp_path
):
    from colorjax.cli import colorize

    Image.fromarray(photo).save(tmp_path / "photo.png")
    argv = [*weights_args, str(tmp_path / "photo.png"), "--resolution", "256", "--chroma-upsampling", "bilinear"]
    assert colorize.main([*argv, "--output", str(tmp_path / "out")]) == 0
    expected = open_colorizer(
        weights=str(weights_file), model="ddcolor", resolution=256, chroma_upsampling="bilinear"
    ).colorize(photo)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "photo.png")), expected)
    assert not np.array_equal(expected, colorizer.colorize(photo))


def test_evaluate_a_folder(weights_args, photo_folder, tmp_path, capsys):
    from colorjax.cli import evaluate

    output = tmp_path / "eval"
    argv = [*weights_args, "--data", f"folder:{photo_folder}", "--split", "all", "--output", str(output)]
    assert evaluate.main([*argv, "--resolution", "64", "--max-failed-fraction", "0.5"]) == 0, capsys.readouterr().err
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["prediction"]["images"] == 13  # the 12 generated photos and a 5 x 7 one
    assert "Evaluated 13 image(s)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
def test_export_records_the_pipeline(fmt, weights_args, colorizer, tmp_path):
    """StableHLO and ONNX, polymorphic in batch at a fixed side (the sine positions need a concrete size)."""
    from colorjax.cli import export
    from colorjax.inference.export import load_export

    if fmt == "onnx":
        pytest.importorskip("jax2onnx")
        pytest.importorskip("onnxruntime")
    output = tmp_path / "exported"
    assert export.main([*weights_args, "--format", fmt, "--output", str(output), "--size", "64"]) == 0
    manifest = json.loads((output / "export.json").read_text())
    assert manifest["model"] == "DDColor" and manifest["input"]["shape"] == ["batch", 64, 64, 1]
    assert (manifest["color_conversion"], manifest["input_resize"], manifest["chroma_upsampling"]) == (
        "opencv",
        "color_bilinear",
        "nearest",
    )
    L = np.random.default_rng(0).uniform(0, 100, (3, 64, 64, 1)).astype(np.float32)
    ours = colorizer.model.apply(colorizer.variables, L)["chroma"]
    np.testing.assert_allclose(load_export(output)(L)["chroma"], ours, atol=1e-3)


def test_weights_to_run_colours_exactly_as_the_weights_file(published_dir, weights_args, colorizer, photo):
    config = runs.read_config(published_dir)
    assert config["model"]["name"] == "ddcolor" and config["model"]["dims"] == [8, 16, 32, 64]
    assert {key: config["inference"][key] for key in ("resolution", "square", "chroma_upsampling")} == {
        "resolution": 512,
        "square": True,
        "chroma_upsampling": "nearest",
    }
    from_run = open_colorizer(workdir=published_dir)
    np.testing.assert_array_equal(from_run.colorize(photo), colorizer.colorize(photo))


def test_serve_colours_with_ddcolor(colorizer, photo, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    pytest.importorskip("httpx")
    import io

    from fastapi.testclient import TestClient

    from colorjax.cli import serve
    from colorjax.serve.app import create_app

    # The app's model is chosen on its command line, from the registry's models.
    args = serve.build_parser().parse_args(["--weights", "my_ddcolor.pth", "--model", "ddcolor"])
    assert (args.weights, args.model) == ("my_ddcolor.pth", "ddcolor")
    client = TestClient(create_app(colorizer, tmp_path / "data", single_user=True))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    response = client.post("/api/colorize", files={"image": ("photo.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), colorizer.colorize(photo))


@pytest.mark.parametrize("start", ["run_directory", "registry_name"])
def test_fine_tuning_starts_from_the_published_weights(
    start, published_dir, weights_file, photo_folder, vgg16_bn_file, tmp_path, monkeypatch
):
    """`--config.model_init` takes a `weights to-run` directory or the registry's name itself
    (`ddcolor_paper_tiny`, here the random file placed in the cache under that name: nothing downloads); the
    generator starts from the file, the discriminator fresh, and the GAN recipe trains."""
    from colorjax.train import trainer as train

    config = cpu_config()
    if start == "registry_name":
        monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path / "cache"))
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "ddcolor_paper_tiny.pth").write_bytes(weights_file.read_bytes())
        config.model_init = "ddcolor_paper_tiny"
    else:
        config.model_init = str(published_dir)
    config.gan.perceptual_weights = str(vgg16_bn_file)  # the recipe's VGG16-BN, random: nothing downloads
    config.data.source = f"folder:{photo_folder}"
    config.data.eval_split = "train"
    config.data.max_failed_fraction = 0.5  # the fixture folder holds a corrupt JPEG and a text file on purpose
    config.data.holdout_fraction = 0.0
    config.data.shuffle_buffer = 16
    config.data.prefetch = 2
    config.batch_size = 2
    config.num_train_steps = 2
    config.log_every = 1
    config.eval_every = 0
    config.checkpoint_every = 2
    config.optimizer.learning_rate = 1e-4
    results = train.train_and_evaluate(config, tmp_path / "tuned")
    assert np.isfinite(results["train/loss"]) and np.isfinite(results["train/d_loss"])
    published, tuned = runs.load_run(published_dir), runs.load_run(tmp_path / "tuned", "latest")
    assert tuned.step == 2 and tuned.config.loss.name == "l1"
    # Two small steps from the published weights: every array moved a little, none was re-initialised.
    start = published.variables["params"]["decoder"]["color_decoder"]["query_feat"]["embedding"]
    end = tuned.variables["params"]["decoder"]["color_decoder"]["query_feat"]["embedding"]
    assert 0 < np.max(np.abs(np.asarray(end) - np.asarray(start))) < 0.01
