"""The configs of the early systems (CIELUV VGG16 classifier and regression, Deep Koalarization, CIFAR-10 autoencoder).

Every variant loads with its recipe's numbers and builds its model, loss and optimizer; the CPU-sized variants'
training runs are tests/integration/test_configs_early_training.py. Parameter counts and output shapes are the model
tests' business.
"""

import json
import math
import re

import ml_collections
import numpy as np
import pytest
from helpers.paths import REPO

from colorjax import checkpointing, config_lib, models, runs
from colorjax.inference import colorizer as inference
from colorjax.train import losses, optim

CONFIGS = REPO / "configs"

VARIANTS = [
    *[("luv_vgg16", arg) for arg in (None, "imagenet", "places", "folder", "cpu")],
    *[("luv_vgg16_regression", arg) for arg in (None, "imagenet", "places", "folder", "cpu")],
    *[("koalarization", arg) for arg in (None, "vgg16", "places", "vgg16,folder", "cpu")],
    *[("cifar10_autoencoder", arg) for arg in (None, "cpu")],
]


def load(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    return config_lib.load_config(CONFIGS / f"{name}.py", arg)


def section_fields(config: ml_collections.ConfigDict) -> set[str]:
    """Top-level fields and `section.field` names, leaving out the model and loss (their fields are kwargs)."""
    names = set()
    for key, value in config.items():
        if key in ("model", "loss"):
            continue
        names.add(key)
        if isinstance(value, ml_collections.ConfigDict):
            names.update(f"{key}.{field}" for field in value)
    return names


@pytest.mark.parametrize(("name", "arg"), VARIANTS)
def test_every_variant_loads_and_builds(name, arg):
    config = load(name, arg)
    # A misspelt field would be silently ignored by the trainer: every field must be one base_config() defines.
    assert section_fields(config) <= section_fields(config_lib.base_config())
    models.from_config(config)
    loss_config = config.loss.to_dict()
    losses.get_loss(loss_config.pop("name"), **loss_config)
    optim.make_optimizer(config)
    if arg != "cpu":
        datasets = [part for part in (arg or "").split(",") if part in config_lib.DATASETS]
        dataset = datasets[0] if datasets else "imagenet"
        if name != "cifar10_autoencoder":
            assert config.data.source == config_lib.DATASETS[dataset]["source"]


def parse_command_line(spec: str, *overrides: str) -> ml_collections.ConfigDict:
    """The config `python -m colorjax.train --config spec overrides...` would run (absl + ml_collections)."""
    from absl import flags
    from ml_collections import config_flags

    argv = ["train", f"--config={CONFIGS / spec}", *overrides]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config file", flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
    return flag_values.config


@pytest.mark.parametrize(
    ("spec", "extra"),
    [
        ("luv_vgg16.py:cpu", ["--config.model.backbone_weights=/weights/vgg16.pth"]),
        ("koalarization.py:cpu", ["--config.model.embedder_input_size=75"]),
        ("cifar10_autoencoder.py", ["--config.eval_max_images=500"]),
        ("demo.py", ["--config.eval_max_images=4"]),  # demo.py sets None (every image)
    ],
)
def test_fields_without_a_default_can_be_set_on_the_command_line(spec, extra):
    """absl cannot parse a value for a field holding a plain None: such fields must be typed placeholders."""
    config = parse_command_line(
        spec,
        "--config.resume=runs/a",
        "--config.model_init=runs/b",
        "--config.data.tfds_data_dir=/data/tfds",
        "--config.data.eval_resize_size=40",
        "--config.optimizer.grad_clip_norm=2",
        "--config.inference.resolution=64",
        *extra,
    )
    assert (config.resume, config.model_init, config.data.tfds_data_dir) == (
        "runs/a",
        "runs/b",
        "/data/tfds",
    )
    assert config.data.eval_resize_size == 40 and config.optimizer.grad_clip_norm == 2.0
    assert config.inference.resolution == 64
    field, value = extra[0].removeprefix("--config.").split("=")
    section, _, name = field.rpartition(".")
    assert str((config[section] if section else config)[name]) == value


def test_luv_recipes_share_one_body():
    classification, regression = load("luv_vgg16"), load("luv_vgg16_regression")
    assert classification.data.color_space == "luv" and classification.data.image_size == 224
    assert classification.data.source == "tfds:imagenet2012"
    assert classification.loss.name == "luv_classification"
    assert classification.model.backbone_weights.endswith(
        ".keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert (regression.model.head, regression.loss.name) == ("regression", "l2")
    # Same data, backbone, optimizer and schedule: only the head, its loss and the kept checkpoint differ.
    differing = {"model", "loss", "best_metric"}
    for key in classification:
        if key not in differing:
            assert regression[key] == classification[key], key
    assert regression.model.backbone_weights == classification.model.backbone_weights
    for arg in ("cpu",):
        cpu = load("luv_vgg16", arg)
        assert cpu.model.width < 1 and not cpu.model.backbone_weights
        assert 64 <= cpu.data.image_size <= 96


def test_koalarization_recipe():
    config = load("koalarization")
    assert (config.model.embedder, config.batch_size) == ("inception_resnet_v2", 100)
    assert (config.optimizer.name, config.optimizer.learning_rate) == ("adam", 1e-3)
    assert config.model.embedder_weights.endswith("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5")
    vgg = load("koalarization", "vgg16,places")
    assert vgg.model.embedder == "vgg16" and vgg.data.source == "tfds:places365_small"
    assert vgg.model.embedder_weights.endswith("vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    assert load("koalarization", "cpu").model.embedder == "tiny"
    with pytest.raises(ValueError, match="one dataset"):
        load("koalarization", "places,imagenet")


def test_cifar10_recipe():
    config = load("cifar10_autoencoder")
    steps_per_epoch = math.ceil(50_000 / 32)
    assert config.data.source == "tfds:cifar10" and config.data.image_size == 32
    assert config.batch_size == 32 and config.num_train_steps == 50 * steps_per_epoch
    assert config.eval_every == config.checkpoint_every == steps_per_epoch
    plateau = config.optimizer.reduce_on_plateau
    assert math.isclose(plateau.factor, math.sqrt(0.1)) and plateau.patience == 5
    assert (config.best_metric, config.best_mode, config.plateau_metric) == (
        "val/loss",
        "min",
        "val/loss",
    )
    assert config.keep_best_checkpoints >= 1 and config.inference.fixed_size == 32


@pytest.mark.parametrize("name", ["luv_vgg16", "luv_vgg16_regression", "cifar10_autoencoder"])
def test_unknown_variant_is_one_line_error(name):
    with pytest.raises(ValueError, match="Unknown variant 'imagenet21k'"):
        load(name, "imagenet21k")


def test_missing_pretrained_files_name_the_download_and_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # An empty ~/.keras: the default paths point at nothing.
    cases = [
        (
            "luv_vgg16",
            None,
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "backbone_weights",
        ),
        (
            "koalarization",
            None,
            "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
            "embedder_weights",
        ),
        (
            "koalarization",
            "vgg16",
            "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "embedder_weights",
        ),
    ]
    for name, arg, filename, field in cases:
        config = load(name, arg)
        variables = {"params": {}, "frozen": {"embedder": {}}}
        with pytest.raises(FileNotFoundError) as error:
            models.load_pretrained(name, variables, models.model_kwargs(config))
        message = str(error.value)
        assert "\n" not in message and f"config.model.{field}" in message
        assert str(tmp_path / ".keras" / "models" / filename) in message
        url = rf"https://storage\.googleapis\.com/tensorflow/keras-applications/\w+/{re.escape(filename)}"
        assert re.search(url, message), message


def test_cpu_variants_train_on_the_scene_photos_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORJAX_SHARED", str(tmp_path))
    assert load("luv_vgg16", "cpu").data.source == "samples"
    (tmp_path / "data" / "intel_scenes_150" / "train").mkdir(parents=True)
    # No test/ split yet: nothing to evaluate on, so still the samples.
    assert load("luv_vgg16", "cpu").data.source == "samples"
    (tmp_path / "data" / "intel_scenes_150" / "test").mkdir()
    for name in ("luv_vgg16", "luv_vgg16_regression", "koalarization", "cifar10_autoencoder"):
        config = load(name, "cpu")
        assert config.data.source == f"folder:{tmp_path / 'data' / 'intel_scenes_150'}"
        assert config.data.eval_split == "test"


@pytest.mark.parametrize(("mode", "expected"), [("min", 2), ("max", 3)])
def test_step_best_read_only_is_the_checkpoint_the_run_kept(tmp_path, mode, expected):
    """`colorize --step best` (a read-only open, no config given) must pick by the run's own best_metric."""
    (tmp_path / "config.json").write_text(json.dumps({"best_metric": "val/loss", "best_mode": mode}))
    writer = checkpointing.Checkpoints(tmp_path / "checkpoints", keep_latest=1, best_metric="val/loss", best_mode=mode)
    for step, loss in ((1, 0.5), (2, 0.1), (3, 0.7), (4, 0.3)):
        writer.save(step, {"w": np.full(2, step, np.float32)}, {"step": step}, {"val/loss": loss})
    writer.close()
    reader = runs.open_checkpoints(tmp_path, read_only=True)
    assert reader.resolve_step("best") == expected and reader.resolve_step("latest") == 4


def test_colorizer_fixed_size_ignores_the_photo_shape():
    colorizer = inference.Colorizer(model=None, variables={}, fixed_size=32, resolution=256)
    assert colorizer.working_size(45, 61) == (32, 32)
    assert colorizer.working_size(1000, 300) == (32, 32)
    assert inference.Colorizer(model=None, variables={}, resolution=64).working_size(64, 128) == (
        64,
        128,
    )
