"""`python -m colorjax.evaluate` end to end on a tiny trained run: files, numbers against a direct computation,
8 devices equal 1, the classifier and FID plumbing, and one-line errors."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.paths import REPO
from helpers.runs import save_run
from PIL import Image
from skimage import color as skcolor

from colorjax import config_lib, data, models, runs
from colorjax.cli import evaluate as evaluate_cli
from colorjax.evaluation import evaluate, evaluator, metrics, report

RESOLUTION = 32
# The sample photos, filed under two classes so the data has labels.
CLASSES = {
    "indoor": ("coffee", "chelsea", "astronaut"),
    "outdoor": ("rocket", "motorcycle", "china", "flower"),
}
NUM_IMAGES = 7
BRIGHT = 45.0  # the stand-in classifier's boundary on mean lightness: no sample photo lies within 2 of it


class MeanLightnessClassifier(nn.Module):
    """A stand-in classification head (registered only in these tests): "indoor" when the image is bright."""

    @nn.compact
    def __call__(self, L, *, train=False):
        scale = self.param("scale", nn.initializers.ones, ())
        brightness = jnp.mean(L, axis=(1, 2, 3)) - BRIGHT
        return {
            "chroma": jnp.zeros(L.shape[:-1] + (2,), jnp.float32),
            "class_logits": scale * jnp.stack([brightness, -brightness], axis=-1),
        }


def fake_features(variables, rgb):
    """A stand-in for Inception pool features: per-image channel means and spreads (N, 6)."""
    del variables
    return jnp.concatenate([jnp.mean(rgb, axis=(1, 2)), jnp.std(rgb, axis=(1, 2))], axis=-1)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory) -> Path:
    """The sample photos, shrunk to 64 px, in class subfolders."""
    root = tmp_path_factory.mktemp("photos")
    paths = data.sample_photo_paths()
    for class_name, names in CLASSES.items():
        (root / class_name).mkdir()
        for name in names:
            with Image.open(paths[name]) as image:
                image.convert("RGB").resize((64, 48)).save(root / class_name / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def initial_run(tmp_path_factory) -> Path:
    """A small regression model's run (initial weights: evaluation needs no trained model)."""
    model = models.get_model("regression", width=4)
    variables = model.init(jax.random.key(0), jnp.zeros((1, RESOLUTION, RESOLUTION, 1)))
    data_fields = {
        "source": "samples",
        "image_size": RESOLUTION,
        "color_space": "lab",
        "eval_split": "train",
    }
    return save_run(tmp_path_factory.mktemp("run"), "regression", {"width": 4}, variables, data_fields, sorted(CLASSES))


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    """A checkpoint of `MeanLightnessClassifier`, whose classes are the photo folder's."""
    data_fields = {"source": "samples", "image_size": RESOLUTION}
    params = {"params": {"scale": np.ones((), np.float32)}}
    return save_run(tmp_path_factory.mktemp("classifier"), "mean_lightness", {}, params, data_fields, sorted(CLASSES))


@pytest.fixture(scope="module")
def evaluated(initial_run, labelled_folder, classifier_run) -> Path:
    """One evaluation through the command line, with the classifier and a stand-in FID feature extractor."""
    inception_file = labelled_folder.parent / "fake_inception.bin"
    inception_file.write_bytes(b"stand-in")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(models.SPECS, "mean_lightness", models.ModelSpec(MeanLightnessClassifier))
        patch.setattr(
            evaluate,
            "load_feature_extractor",
            lambda path: evaluator.FeatureExtractor("stand-in", fake_features, {}),
        )
        code = evaluate_cli.main(
            [
                "--workdir", str(initial_run),
                "--data", f"folder:{labelled_folder}",
                "--batch-size", "4",
                "--num-grid", "3",
                "--classifier", str(classifier_run),
                "--inception", str(inception_file),
            ]
        )  # fmt: skip
    assert code == 0
    return initial_run / "eval" / "step_3"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def crops_and_prediction(run: Path, folder: Path):
    """The evaluated crops, read again, and the model's chroma on them, computed outside colorjax.evaluate."""
    loaded = runs.load_run(run)
    data_config, split = evaluate.eval_data_config(
        evaluate.default_data(loaded), f"folder:{folder}", None, RESOLUTION, "lab"
    )
    source = data.make_source(data_config, split)
    batches = list(data.eval_batches(source, data_config, local_batch_size=NUM_IMAGES, num_batches=1))
    L, true_ab, labels = (batches[0][k] for k in ("L", "chroma", "label"))
    predicted_ab = np.asarray(loaded.model.apply(loaded.variables, L, train=False)["chroma"])
    return source, L.astype(np.float64), true_ab.astype(np.float64), predicted_ab, labels


def psnr_rgb(L, ab_a, ab_b):
    """Per-image PSNR of the 8-bit renderings of two Lab images, with scikit-image's conversion."""

    def levels(ab):
        rgb = skcolor.lab2rgb(np.concatenate([L, ab], axis=-1))
        return np.round(np.clip(rgb, 0, 1) * 255)

    mse = np.mean((levels(ab_a) - levels(ab_b)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(255.0**2 / mse)


def test_evaluation_writes_every_output(evaluated):
    for name in (
        "metrics.json",
        "per_image.csv",
        "results.md",
        "auc_curves.png",
        "auc_rebalanced_curves.png",
        "grid_first.png",
        "grid_worst.png",
    ):
        assert (evaluated / name).is_file(), name
    document = json.loads((evaluated / "metrics.json").read_text())
    assert document["schema_version"] == report.SCHEMA_VERSION
    assert document["run"]["step"] == 3 and document["run"]["resolution"] == RESOLUTION
    assert document["run"]["split"] == "all"  # a folder without split folders: all of it (once called "test")
    assert set(document["baselines"]) == {"ground_truth", "gray", "mean_colour"}
    # The report finds the evaluation in the run directory.
    assert report.resolve_metrics_path(evaluated.parent.parent) == evaluated / "metrics.json"
    assert report.load_metrics(evaluated.parent.parent).name == evaluated.parent.parent.name
    with Image.open(evaluated / "grid_first.png") as grid:  # 3 rows of 32 px + gutters + caption
        assert grid.size == (3 * RESOLUTION + 4 * 2, 3 * RESOLUTION + 4 * 2 + 14)
        pixels = np.asarray(grid)
    assert not [p.name for p in evaluated.iterdir() if p.name.startswith(".")]  # no temporary file left
    # The gray column is the gray of the truth's lightness (lab_to_rgb of (L, 0, 0), as colorize and the app
    # show it), not L / 100.
    top, gutter = 14 + 2, 2
    gray = pixels[top : top + RESOLUTION, gutter : gutter + RESOLUTION].astype(int)
    left = gutter + 2 * (RESOLUTION + gutter)
    truth = pixels[top : top + RESOLUTION, left : left + RESOLUTION]
    L = skcolor.rgb2lab(truth / 255.0)[..., :1]
    want = np.round(np.clip(skcolor.lab2rgb(np.concatenate([L, 0 * L, 0 * L], -1)), 0, 1) * 255)
    assert np.abs(gray - want).max() <= 2
    assert np.abs(gray[..., 0] - np.round(L[..., 0] * 2.55)).max() > 3


def test_numbers_match_a_direct_computation_on_the_same_crops(evaluated, initial_run, labelled_folder):
    document = json.loads((evaluated / "metrics.json").read_text())
    prediction, baselines = document["prediction"], document["baselines"]
    rows = read_csv(evaluated / "per_image.csv")
    source, L, true_ab, predicted_ab, _ = crops_and_prediction(initial_run, labelled_folder)

    assert prediction["images"] == len(rows) == NUM_IMAGES
    assert [row["image"] for row in rows] == list(source.paths)
    assert baselines["ground_truth"]["auc_percent"] == 100.0
    assert baselines["ground_truth"]["auc_rebalanced_percent"] == 100.0

    error = np.linalg.norm(predicted_ab - true_ab, axis=-1)  # (N, H, W)
    np.testing.assert_allclose([float(row["ab_l2_error"]) for row in rows], error.mean(axis=(1, 2)), rtol=1e-4)
    assert prediction["ab_l2_error"] == pytest.approx(error.mean(), rel=1e-5)
    thresholds = np.arange(151)
    curve = (error.reshape(-1, 1) <= thresholds).mean(axis=0)
    auc = 100 * np.trapezoid(curve, thresholds) / 150
    assert prediction["auc_percent"] == pytest.approx(auc, abs=0.01)
    assert prediction["psnr_rgb_db"] == pytest.approx(psnr_rgb(L, predicted_ab, true_ab).mean(), abs=0.05)

    gray_error = np.linalg.norm(true_ab, axis=-1).mean()
    assert baselines["gray"]["ab_l2_error"] == pytest.approx(gray_error, rel=1e-5)
    mean_ab = true_ab.reshape(-1, 2).mean(axis=0)
    np.testing.assert_allclose(document["run"]["mean_colour_ab"], mean_ab, rtol=1e-5)
    mean_error = np.linalg.norm(true_ab - mean_ab, axis=-1).mean()
    assert baselines["mean_colour"]["ab_l2_error"] == pytest.approx(mean_error, rel=1e-4)

    # results.md lists the worst images, worst first, as the per-image errors rank them.
    worst = sorted(rows, key=lambda row: -float(row["ab_l2_error"]))[:3]
    markdown = (evaluated / "results.md").read_text()
    positions = [markdown.index(f"`{row['image']}`") for row in worst]
    assert positions == sorted(positions)


def test_classifier_top1_and_fid_plumbing(evaluated, initial_run, labelled_folder, classifier_run):
    document = json.loads((evaluated / "metrics.json").read_text())
    _, L, true_ab, predicted_ab, labels = crops_and_prediction(initial_run, labelled_folder)
    brightness = L.mean(axis=(1, 2, 3)) - BRIGHT
    assert np.min(np.abs(brightness)) > 1.0  # no image sits on the stand-in classifier's boundary
    expected = 100.0 * np.mean(np.where(brightness > 0, 0, 1) == labels)
    assert 0 < expected < 100  # the number can tell right from wrong
    for row in [document["prediction"], *document["baselines"].values()]:
        # The stand-in sees lightness only, which colour leaves unchanged: every row agrees with the truth.
        assert row["top1_ground_truth_percent"] == pytest.approx(expected)
        assert row["top1_colorized_percent"] == pytest.approx(expected)
        assert row["top1_agreement_percent"] == 100.0

    def features(ab):
        rgb = np.clip(skcolor.lab2rgb(np.concatenate([L, ab], axis=-1)), 0, 1)
        return np.concatenate([rgb.mean(axis=(1, 2)), rgb.std(axis=(1, 2))], axis=-1)

    assert document["baselines"]["ground_truth"]["fid"] == pytest.approx(0.0, abs=1e-6)
    direct = metrics.fid(features(predicted_ab), features(true_ab))
    assert document["prediction"]["fid"] == pytest.approx(direct, rel=1e-2, abs=1e-4)
    assert document["run"]["classifier"] == f"{classifier_run.name} step 3"


EIGHT_DEVICES = """
import sys, jax
assert jax.device_count() == 8, jax.devices()
from colorjax.cli import evaluate as evaluate_cli
sys.exit(evaluate_cli.main(sys.argv[1:]))
"""


def test_eight_devices_give_the_numbers_of_one(evaluated, initial_run, labelled_folder, tmp_path):
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="8", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    arguments = ["--workdir", str(initial_run), "--data", f"folder:{labelled_folder}"]
    arguments += ["--batch-size", "8", "--num-grid", "2", "--output", str(tmp_path)]
    completed = subprocess.run(
        [sys.executable, "-c", EIGHT_DEVICES, *arguments],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    one = json.loads((evaluated / "metrics.json").read_text())
    eight = json.loads((tmp_path / "metrics.json").read_text())
    assert eight["run"]["devices"] == 8 and one["run"]["devices"] == 1
    for row in ("prediction", "ground_truth", "gray", "mean_colour"):
        a = one["prediction"] if row == "prediction" else one["baselines"][row]
        b = eight["prediction"] if row == "prediction" else eight["baselines"][row]
        for key, value in b.items():  # the 1-device run also has classifier and FID numbers
            if value is None:
                assert a[key] is None, (row, key)
            else:
                # The mean-colour baseline paints ONE ab (a float32 mean, summed in another order on 8
                # devices) everywhere, and its RGB metrics round to 8-bit levels: a 1e-7 change of that
                # mean flips many pixels' levels at once (2e-5 relative seen when decoding went float).
                rtol = 1e-4 if row == "mean_colour" else 1e-6
                assert np.allclose(a[key], value, rtol=rtol, atol=1e-9), (row, key)
    rows_one, rows_eight = (
        read_csv(evaluated / "per_image.csv"),
        read_csv(tmp_path / "per_image.csv"),
    )
    assert [r["image"] for r in rows_eight] == [r["image"] for r in rows_one]
    for column in evaluator.PER_IMAGE_COLUMNS:  # printed to 6 significant digits
        np.testing.assert_allclose(
            [float(r[column]) for r in rows_eight], [float(r[column]) for r in rows_one], rtol=1e-5
        )


def test_grid_collector_keeps_the_first_and_the_worst_in_bounded_memory():
    collector = evaluator.GridCollector(3)
    errors = np.array([5.0, 1.0, 9.0, 2.0, 7.0, 3.0, 8.0, 0.5])
    fetched = []
    for start in range(0, len(errors), 2):
        ids = np.arange(start, start + 2)

        def images(ids=ids):
            fetched.append(int(ids[0]))
            return tuple(np.full((2, 1, 1, 3), ids[:, None, None, None], np.uint8) for _ in range(3))

        collector.add(ids, errors[start : start + 2], images)
        assert len(collector.worst()) <= 3
    assert [image_id for image_id, _ in collector.first] == [0, 1, 2]
    assert [(error, image_id) for error, image_id, _ in collector.worst()] == [
        (9.0, 2),
        (8.0, 6),
        (7.0, 4),
    ]
    assert int(collector.worst()[0][2][1][0, 0, 0]) == 2  # the pictures travel with their image
    assert fetched == [0, 2, 4, 6]  # every batch had a new worst image here ...
    collector.add(np.array([8, 9]), np.array([0.1, 0.2]), lambda: pytest.fail("fetched"))  # ... not this


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workdir", "{missing}"], "does not exist"),
        (["--workdir", "{empty}"], "No checkpoint in"),
        (["--workdir", "{run}", "--data", "ftp:photos"], "Unknown data source"),
        (["--workdir", "{run}", "--data", "folder:{empty}"], "No images"),
        (["--workdir", "{run}", "--output", "{file}/out"], "Cannot write to output folder"),
        (["--workdir", "{run}", "--batch-size", "0"], "positive multiple"),
        (["--weights", "{missing}", "--model", "eccv16", "--output", "{empty}"], "does not exist"),
        (["--weights", "{file}", "--output", "{empty}"], "needs --model"),
        (["--workdir", "{run}", "--classifier", "{run}"], "returns no class_logits"),
        (["--workdir", "{run}", "--inception", "{file}"], "not an HDF5 file"),
    ],
)
def test_bad_input_is_a_one_line_error(initial_run, tmp_path, capsys, arguments, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    file = tmp_path / "file.txt"
    file.write_text("not a folder")
    places = {"missing": tmp_path / "missing", "empty": empty, "run": initial_run, "file": file}
    code = evaluate_cli.main([argument.format(**places) for argument in arguments])
    error = capsys.readouterr().err.strip()
    assert code == 1
    assert message in error and "\n" not in error, error


def test_bad_step_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--workdir", "x", "--step", "newest"])
    assert "--step must be best, latest or a step number" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- skipped files, counted


def grey_photo(height: int = 48, width: int = 64) -> np.ndarray:
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
    return np.repeat(ramp[..., None], 3, axis=2)


def truncated_jpeg() -> bytes:
    """The first third of a noisy 64 x 64 JPEG: its header reads, its decoding fails (inside tf.data too)."""
    import io

    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()[: len(buffer.getvalue()) // 3]


@pytest.fixture
def folder_with_skips(labelled_folder, tmp_path) -> Path:
    """The labelled photos plus two grey photos and two unreadable files, the first and the last of the list (a
    truncated JPEG: its header reads, its decoding fails inside tf.data)."""
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(labelled_folder, root)
    (root / "indoor" / "aa_broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    (root / "outdoor" / "zz_broken.jpg").write_bytes(truncated_jpeg())
    Image.fromarray(grey_photo()).save(root / "indoor" / "grey_ramp.png")
    Image.fromarray(grey_photo(40, 56)).save(root / "outdoor" / "grey_scan.jpg", quality=95)
    return root


def test_every_skipped_file_is_named_once_and_counted_grey_apart(
    initial_run, folder_with_skips, tmp_path, capsys, caplog
):
    import logging

    output = tmp_path / "eval"
    argv = ["--workdir", str(initial_run), "--data", f"folder:{folder_with_skips}", "--output", str(output)]
    with caplog.at_level(logging.WARNING, logger="colorjax.data"):
        assert evaluate_cli.main([*argv, "--max-failed-fraction", "0.2", "--batch-size", "4"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping ")]
    broken = [str(folder_with_skips / "indoor" / "aa_broken.jpg"), str(folder_with_skips / "outdoor" / "zz_broken.jpg")]
    # Both passes (mean colour, then evaluation) read them: each is named once, the last of the list too.
    assert sorted(w.split(": ")[0].removeprefix("Skipping ") for w in warnings) == broken
    document = json.loads((output / "metrics.json").read_text())
    grey = [str(folder_with_skips / "indoor" / "grey_ramp.png"), str(folder_with_skips / "outdoor" / "grey_scan.jpg")]
    assert document["skipped"]["unreadable"] == 2 and sorted(document["skipped"]["unreadable_files"]) == broken
    assert document["skipped"]["grey"] == 2 and document["skipped"]["grey_files"] == grey
    # Grey photos are in no row: the numbers are the colour photos' alone.
    assert document["prediction"]["images"] == NUM_IMAGES
    assert all(row["images"] == NUM_IMAGES for row in document["baselines"].values())
    assert len(read_csv(output / "per_image.csv")) == NUM_IMAGES
    out = capsys.readouterr().out
    assert f"Evaluated {NUM_IMAGES} image(s)" in out and "skipped 2 unreadable and 2 grey" in out
    assert "2 unreadable and 2 grey" in (output / "results.md").read_text()

    # 2 of 11 files unreadable is more than the default 1%: one line, which names the option that allows more.
    assert evaluate_cli.main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "of the 11 images" in errors[0] and "--max-failed-fraction F" in errors[0], errors


def source_of(paths, fraction: float):
    """A folder source over `paths` in the given order, and a data config with that failure limit."""
    config = config_lib.base_config().data
    config.update(image_size=8, max_failed_fraction=fraction)
    return data.FileSource(paths, None, None, "test files"), config


def read_all(source, config):
    skipped = data.SkippedFiles()
    batches = data.eval_batches(source, config, local_batch_size=16, num_batches=5, skipped=skipped)
    assert sum(int(b["mask"].sum()) for b in batches) == source.num_examples - len(skipped.unreadable)
    return skipped


def test_the_failure_limit_counts_the_whole_split_whatever_the_order(tmp_path):
    good, bad = [], []
    for i in range(60):
        good.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(np.full((8, 8, 3), (200, 4 * i, 30), np.uint8)).save(good[-1])
    for i in range(4):  # Two refused from their header, two truncated JPEGs that fail inside tf.data.
        bad.append(tmp_path / f"bad_{i}.jpg")
        bad[-1].write_bytes(b"garbage" if i < 2 else truncated_jpeg())
    # 4 of 64 files: within 7% (4.48), over 6% (3.84), wherever the bad files lie.
    for paths in (bad + good, good + bad, good[:30] + bad + good[30:]):
        assert len(read_all(*source_of(paths, 0.07)).unreadable) == 4
        with pytest.raises(data.DataError, match="4 of the 64 images of test files could not be decoded"):
            read_all(*source_of(paths, 0.06))


def test_past_twenty_unreadable_files_are_counted_not_named(tmp_path, caplog):
    import logging

    paths = []
    for i in range(25):
        paths.append(tmp_path / f"bad_{i:02d}.png")
        paths[-1].write_text("not an image")
    paths.append(tmp_path / "good.png")
    Image.fromarray(np.full((8, 8, 3), (200, 40, 30), np.uint8)).save(paths[-1])
    with caplog.at_level(logging.WARNING, logger="colorjax.data"):
        skipped = read_all(*source_of(paths, 1.0))
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("Skipping ")]) == 20
    assert len([m for m in messages if "counted, no longer named" in m]) == 1
    assert len(skipped.unreadable) == 25


def test_a_folder_of_grey_photos_is_a_one_line_error(initial_run, tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    for i in range(3):
        Image.fromarray(grey_photo(20, 24 + i)).save(tmp_path / "scans" / f"{i}.png")
    argv = ["--workdir", str(initial_run), "--data", f"folder:{tmp_path / 'scans'}", "--output", str(tmp_path / "out")]
    assert evaluate_cli.main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == ["error: No image to evaluate: every file was unreadable or grey (no colour to score)."]
    assert not (tmp_path / "out").exists()  # an evaluation that wrote nothing leaves no empty --output folder


def test_a_checkpoint_whose_arrays_do_not_fit_its_model_is_one_line(tmp_path, capsys):
    """A width-8 model's arrays saved with a width-4 config (a checkpoint that moved between runs): colorize and
    evaluate once died in Flax's ScopeParamShapeError; one line names the parameter, both shapes and the field."""
    from colorjax.cli import colorize

    wide = models.get_model("regression", width=8)
    variables = wide.init(jax.random.key(0), jnp.zeros((1, RESOLUTION, RESOLUTION, 1)))
    data_fields = {"source": "samples", "image_size": RESOLUTION, "color_space": "lab", "eval_split": "train"}
    run = save_run(tmp_path / "run", "regression", {"width": 4}, variables, data_fields, None)
    config = json.loads(json.dumps(runs.open_checkpoints(run, read_only=True).restore_meta(3)["config"]))
    config["model"]["width"] = 8
    (run / "config.json").write_text(json.dumps(config))
    commands = [
        (colorize.main, ["--workdir", str(run), "--step", step, "samples", "--output", str(tmp_path / "out")])
        for step in ("latest", "best", "3")
    ]
    commands.append((evaluate_cli.main, ["--workdir", str(run), "--output", str(tmp_path / "eval")]))
    for main, arguments in commands:
        assert main(arguments) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "params/ConvBlock_0/BatchNorm_0/bias is (8,) there but (4,) in the model" in err
        assert "config.model.width: 4 -> 8" in err
