"""Iizuka et al.'s config (the paper's recipe, its dataset variants, the scene photos found from any directory), and
the one-line errors of a model without global features. Training and colorize are
tests/integration/test_iizuka_integration.py; the model, tests/unit/test_iizuka.py.
"""

from pathlib import Path

import numpy as np
import pytest
from helpers.configs import load_repo_config

from colorjax.inference import colorizer as inference


def load_iizuka_config(variant):
    return load_repo_config("iizuka_places365", variant)


def test_global_features_need_a_model_with_a_global_path():
    from colorjax.models import get_model

    colorizer = inference.Colorizer(get_model("regression", width=4), {}, description="a regression run")
    with pytest.raises(inference.InferenceError, match="regression run has no global features"):
        colorizer.encode_global(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(inference.InferenceError, match="regression run has no classifier"):
        colorizer.check_classifier()


def test_config_is_the_papers_recipe():
    config = load_iizuka_config(None)
    assert config.data.source == "tfds:places365_small" and config.model.num_classes == "auto"
    assert (config.data.image_size, config.data.resize_size, config.batch_size) == (224, 256, 128)
    assert config.data.train_crop == "resize_random_crop" and config.optimizer.name == "adadelta"
    assert config.loss.alpha == pytest.approx(1 / 300)
    assert config.num_train_steps == 11 * 1_803_460 // 128
    assert load_iizuka_config("imagenet2012").data.source == "tfds:imagenet2012"
    assert load_iizuka_config("folder").data.source.startswith("folder:")


def test_scenes_variant_finds_the_shared_photos_from_any_cwd(shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLORJAX_SHARED", str(shared_dir))
    scenes = load_iizuka_config("scenes")
    folder = Path(scenes.data.source.removeprefix("folder:"))
    assert folder.is_absolute() and (folder / scenes.data.eval_split / "forest").is_dir()

    monkeypatch.setenv("COLORJAX_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="intel_scenes_150/train and /test .* COLORJAX_SHARED"):
        load_iizuka_config("scenes")
