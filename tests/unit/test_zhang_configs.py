"""The Zhang et al. configs (ECCV16, SIGGRAPH17, the demo): the paper's recipe and its switches, every variant builds
its model and loss (shapes only), and `runlocal` finds the team's scene photos from any directory. (Training one:
tests/integration/test_zhang_integration.py.)
"""

import jax
import jax.numpy as jnp
import pytest
from helpers.configs import load_repo_config

from colorjax.models import get_model
from colorjax.train.losses import get_loss


def zhang_config(variant: str | None):
    return load_repo_config("zhang_eccv16", variant)


def test_the_paper_recipe_and_its_switches():
    config = zhang_config(None)
    assert config.data.source == "tfds:imagenet2012" and config.data.image_size == 176
    assert (config.batch_size, config.num_train_steps) == (40, 450_000)
    optimizer = config.optimizer
    assert (optimizer.learning_rate, optimizer.b1, optimizer.b2, optimizer.weight_decay) == (
        3e-5,
        0.9,
        0.99,
        1e-3,
    )
    assert config.loss.name == "zhang_classification" and config.loss.rebalance and config.loss.k == 5
    assert config.model.name == "eccv16" and config.model.temperature == 0.38
    assert not zhang_config("norebalance").loss.rebalance
    assert zhang_config("places365,norebalance").data.source == "tfds:places365_small"
    assert zhang_config("folder").data.source.startswith("folder:")
    with pytest.raises(ValueError, match="Unknown variant"):
        zhang_config("imagenet21k")
    with pytest.raises(ValueError, match="no variant norebalance"):
        load_repo_config("siggraph17", "norebalance")


@pytest.mark.parametrize(
    "name, variant",
    [("zhang_eccv16", v) for v in (None, "norebalance", "runlocal")]
    + [("siggraph17", v) for v in (None, "runlocal")]
    + [("demo", v) for v in (None, "regression", "tiny")],
)
def test_every_config_builds_its_model_and_loss(name, variant):
    config = load_repo_config(name, variant)
    model_kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    model = get_model(config.model.name, **model_kwargs)
    loss_config = config.loss.to_dict()
    loss_fn = get_loss(loss_config.pop("name"), **loss_config)
    size = config.data.image_size
    L = jnp.zeros((2, size, size, 1))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), L))
    outputs = jax.eval_shape(lambda v: model.apply(v, L), variables)
    batch = {"L": L, "chroma": jnp.zeros((2, size, size, 2))}
    assert jax.eval_shape(loss_fn, outputs, batch)["loss"].shape == (2,)


def test_runlocal_finds_the_shared_photos_from_any_directory(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    for split in ("train", "test"):
        (shared / "data" / "intel_scenes_150" / split).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLORJAX_SHARED", str(shared))
    config = zhang_config("runlocal")
    assert config.data.source == f"folder:{shared / 'data' / 'intel_scenes_150'}"
    assert config.data.eval_split == "test"
    monkeypatch.setenv("COLORJAX_SHARED", str(tmp_path / "absent"))
    config = zhang_config("cpu")
    assert (config.data.source, config.data.eval_split) == ("samples", "train")
    assert config.model.width == 1 / 8 and config.data.image_size == 64
