"""config_check: unknown fields with the nearest one, impossible values, and a resumed run's config changes."""

import json

import ml_collections
import pytest
from helpers.paths import REPO

from colorjax import config_lib


@pytest.fixture
def demo():
    return config_lib.load_config(REPO / "configs" / "demo.py")


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("batch_sise", "batch_size"),
        ("learning_rate", "optimizer.learning_rate"),  # the right name in the wrong section
        ("optimiser.learning_rate", "optimizer.learning_rate"),
        ("data.imagesize", "data.image_size"),
        ("model.widht", "model.width"),
        ("eval_evry", "eval_every"),
    ],
)
def test_an_unknown_override_names_the_nearest_field(demo, typo, meant):
    (line,) = config_lib.unknown_override_errors(demo, [typo])
    assert line == f"unknown config field --config.{typo}; did you mean --config.{meant}?"


def test_overrides_that_exist_pass_and_nonsense_gets_no_guess(demo):
    assert config_lib.unknown_override_errors(demo, ["batch_size", "model.width", "data"]) == []
    (line,) = config_lib.unknown_override_errors(demo, ["xyz"])
    assert "did you mean" not in line and "colorjax/config_lib.py" in line


def test_override_paths_reads_every_form_absl_accepts():
    argv = [
        "prog",
        "--config",
        "c.py",
        "--config.a=1",
        "-config.b.c",
        "2",
        "--noconfig.d",
        "--workdir=w",
    ]
    assert config_lib.override_paths(argv) == ["a", "b.c", "d"]


def test_base_config_and_the_repo_configs_have_valid_values():
    assert config_lib.value_errors(config_lib.base_config()) == []
    for path in sorted((REPO / "configs").glob("*.py")):
        assert config_lib.value_errors(config_lib.load_config(path)) == [], path.name


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("batch_size", 0, "config.batch_size must be a positive integer"),
        ("data.image_size", 0, "config.data.image_size must be a positive integer"),
        ("num_train_steps", -5, "config.num_train_steps must be an integer >= 0, got -5"),
        (
            "optimizer.learning_rate",
            float("nan"),
            "config.optimizer.learning_rate must be a positive",
        ),
        ("data.crop_area", (0.5, 0.2), "config.data.crop_area must be (low, high)"),
        (
            "data.max_failed_fraction",
            1.5,
            "config.data.max_failed_fraction must be between 0 and 1",
        ),
        ("keep_checkpoints", 0, "config.keep_checkpoints must be an integer >= 1"),
        ("seed", -1, "config.seed must be an integer >= 0"),
        ("optimizer.grad_clip_norm", 0.0, "config.optimizer.grad_clip_norm must be None (off)"),
    ],
)
def test_an_impossible_value_is_one_line_naming_the_field(field, value, words):
    config = config_lib.base_config()
    section, _, name = field.rpartition(".")
    (config[section] if section else config)[name] = value
    (line,) = config_lib.value_errors(config)
    assert line.startswith(words) and "\n" not in line


def test_a_resize_smaller_than_the_crop_is_an_error():
    config = config_lib.base_config()
    config.data.train_crop = "resize_random_crop"
    config.data.resize_size = 100
    config.data.image_size = 176
    (line,) = config_lib.value_errors(config)
    assert "resize_size (100) must be at least config.data.image_size (176)" in line


def test_validate_lists_every_problem_one_line_each():
    config = config_lib.base_config()
    config.batch_size = 0
    config.num_train_steps = -5
    with config.unlocked():
        config.data.holdout_fracton = 0.1
    with pytest.raises(config_lib.ConfigError) as caught:
        config_lib.validate(config)
    assert caught.value.problems == [
        "config.data.holdout_fracton is not a config field; did you mean config.data.holdout_fraction?",
        "config.batch_size must be a positive integer (the global batch), got 0.",
        "config.num_train_steps must be an integer >= 0, got -5.",
    ]


def test_model_and_loss_fields_are_open():
    config = config_lib.base_config()
    config.model = ml_collections.ConfigDict(dict(name="eccv16", width=0.5, temperature=0.38))
    config.loss = ml_collections.ConfigDict(dict(name="zhang_classification", lam=0.5))
    assert config_lib.unknown_fields(config) == []


def test_every_repo_config_sets_only_fields_base_config_has():
    for path in sorted((REPO / "configs").glob("*.py")):
        assert config_lib.unknown_fields(config_lib.load_config(path)) == [], path.name


def test_config_changes_one_line_per_field(demo):
    previous = json.loads(demo.to_json_best_effort())  # as config.json stores it: tuples become lists
    assert config_lib.config_changes(previous, demo) == []
    current = ml_collections.ConfigDict(demo.to_dict())
    current.batch_size = 32
    current.model = ml_collections.ConfigDict(dict(name="regression", width=16))
    assert config_lib.config_changes(previous, current) == [
        "config.batch_size: 16 -> 32",
        'config.model.name: "eccv16" -> "regression"',
        "config.model.temperature: removed (was 0.38)",
        "config.model.width: 0.125 -> 16",
    ]


def test_keep_previous_config_numbers_the_old_files(demo, tmp_path):
    (tmp_path / "config.json").write_text(demo.to_json_best_effort())
    assert config_lib.keep_previous_config(tmp_path, demo) == (None, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]

    changed = ml_collections.ConfigDict(demo.to_dict())
    changed.num_train_steps = 2000
    kept, lines = config_lib.keep_previous_config(tmp_path, changed)
    assert kept == tmp_path / "config.1.json" and lines == ["config.num_train_steps: 1000 -> 2000"]
    assert json.loads(kept.read_text())["num_train_steps"] == 1000
    # config.json stays (the run always has one) until the caller replaces it with the new one.
    assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 1000

    (tmp_path / "config.json").write_text(changed.to_json_best_effort())
    kept, _ = config_lib.keep_previous_config(tmp_path, demo)
    assert kept == tmp_path / "config.2.json"
    assert json.loads(kept.read_text())["num_train_steps"] == 2000


def test_a_placeholder_field_can_be_set_to_none_on_the_command_line(tmp_path):
    """`train --config.optimizer.grad_clip_norm=None` (clipping off; demo.py sets 1.0) once failed: config_flags
    parses by the field's type, float("None"). (The command in a fresh process: absl's flags are global.)"""
    import subprocess
    import sys

    code = f"""
from colorjax.cli import train
from colorjax.train import trainer
trainer.train_and_evaluate = lambda config, workdir: print("GOT", config.optimizer.grad_clip_norm,
                                                            config.optimizer.learning_rate)
train.main(["--config={REPO / "configs" / "demo.py"}", "--workdir={tmp_path / "run"}",
            "--config.optimizer.grad_clip_norm=None", "--config.optimizer.learning_rate=0.5"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GOT None 0.5" in done.stdout.splitlines()
