"""torchvision's VGG16-BN file for DDColor's perceptual loss: a registry name checked by the hash in its file name,
never taken for a colorization network, and read without torch into `models.vgg16_bn`'s variables."""

import jax
import numpy as np
import pytest

from colorjax.models.vgg16_bn import LAYER_NAMES, load_vgg16_bn_variables, vgg16_bn_variables
from colorjax.weights import registry


def test_registry_names_torchvisions_file_and_checks_its_hash_prefix(monkeypatch):
    monkeypatch.delenv("COLORJAX_WEIGHTS_BASE_URL", raising=False)
    entry = registry.known("vgg16_bn")
    assert entry.url == "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth"
    assert entry.sha256_prefix == "6c64b313"
    assert "vgg16_bn" not in registry.published_models()
    with pytest.raises(registry.WeightsError, match="not a colorization network; pass one of: eccv16"):
        registry.published_model("vgg16_bn")


def test_a_file_named_like_torchvisions_is_refused_as_a_colorizer(tmp_path):
    path = tmp_path / "vgg16_bn-6c64b313.pth"
    path.write_bytes(b"not read")
    with pytest.raises(registry.WeightsError, match="part of a training recipe"):
        registry.published_model(path)


def test_a_torch_saved_state_dict_loads_without_torch_as_the_in_memory_one(tmp_path):
    torch = pytest.importorskip("torch")
    from helpers.ddcolor_training import reference_vgg16_bn

    network = reference_vgg16_bn()
    path = tmp_path / "vgg16_bn-6c64b313.pth"
    torch.save(network.state_dict(), path)
    state_dict = {key: value.numpy() for key, value in network.state_dict().items()}
    outputs = ("conv1_1", "conv5_1")
    loaded, expected = load_vgg16_bn_variables(path, outputs), vgg16_bn_variables(state_dict, outputs)
    assert jax.tree.structure(loaded) == jax.tree.structure(expected)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(expected), strict=True))
    # conv5_1 needs every layer before it: 11 convs and the 10 BatchNorms before conv5_1's own (the pools hold
    # nothing), the classifier none.
    names = list(loaded["params"])
    assert sum(n.startswith("conv") for n in names) == 11 and sum(n.startswith("bn") for n in names) == 10
    assert set(names) == {n for n in LAYER_NAMES[: LAYER_NAMES.index("conv5_1") + 1] if n[:2] in ("co", "bn")}
