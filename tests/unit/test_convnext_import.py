"""DDColor's encoder starts from Meta's ImageNet-22k ConvNeXt (`colorjax.models.convnext_import`): a random
checkpoint written by torch in Meta's layout (`{'model': state_dict}`, with the classifier's `norm` and `head`)
imports into `ddcolor`'s encoder, which then gives the features of the authors' ConvNeXt (modelscope's copy, with
their per-stage norms at PyTorch's init, as their `strict=False` load leaves them). Nothing downloads: files are
local paths, and a published name of other widths is refused before any download. Skipped without torch or
modelscope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.ddcolor import authors_convnext, meta_convnext_state_dict, write_meta_checkpoint
from helpers.paths import REPO

from colorjax import config_lib, models
from colorjax.models.convnext_import import ConvNeXtImportError, load_ddcolor_encoder
from colorjax.models.ddcolor import ConvNeXt

DEPTHS, DIMS = (1, 1, 2, 1), (8, 16, 32, 64)
SIZE = 64


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("modelscope")
    return torch


@pytest.fixture(scope="module")
def convnext(torch):
    return authors_convnext(torch, DEPTHS, DIMS)


def fresh_variables():
    """(encoder, variables): DDColor's encoder at the test widths, initialised, inside a DDColor-shaped tree whose
    other parts the import must leave alone (a decoder leaf stands for them)."""
    encoder = ConvNeXt(DEPTHS, DIMS)
    params = jax.jit(encoder.init)(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))["params"]
    return encoder, jax.device_get({"params": {"encoder": params, "decoder": {"kernel": np.arange(3.0)}}})


def model_kwargs(encoder_init):
    return dict(size="tiny", depths=DEPTHS, dims=DIMS, encoder_init=encoder_init)


def test_the_encoder_gives_the_authors_convnext_features(torch, convnext, tmp_path):
    path = write_meta_checkpoint(
        torch, meta_convnext_state_dict(torch, convnext), tmp_path / "convnext_test_22k_224.pth"
    )
    encoder, variables = fresh_variables()
    loaded = models.load_pretrained("ddcolor", variables, model_kwargs(str(path)))
    # The rest of DDColor and the per-stage norms are as initialised; the encoder's convs are the file's.
    assert loaded["params"]["decoder"] is variables["params"]["decoder"]
    assert np.array_equal(loaded["params"]["encoder"]["norm2"]["scale"], np.ones(DIMS[2]))

    rgb = np.random.default_rng(1).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    ours = jax.jit(encoder.apply)({"params": loaded["params"]["encoder"]}, jnp.asarray(rgb))
    theirs = []
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
        for stage in range(4):
            x = convnext.stages[stage](convnext.downsample_layers[stage](x))
            theirs.append(getattr(convnext, f"norm{stage}")(x).permute(0, 2, 3, 1).numpy())
    for stage, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(np.asarray(a), b, atol=1e-4 * np.abs(b).max(), rtol=0, err_msg=f"stage {stage}")


def test_a_missing_or_unknown_entry_is_one_line_naming_it(torch, convnext, tmp_path):
    _, variables = fresh_variables()
    state = meta_convnext_state_dict(torch, convnext)
    missing = dict(state)
    del missing["stages.2.1.gamma"]
    path = write_meta_checkpoint(torch, missing, tmp_path / "missing.pth")
    with pytest.raises(ConvNeXtImportError, match=r"has no 'stages\.2\.1\.gamma'") as error:
        load_ddcolor_encoder(variables, model_kwargs(str(path)))
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    path = write_meta_checkpoint(torch, {**state, "stages.3.1.gamma": torch.ones(DIMS[3])}, tmp_path / "deeper.pth")
    with pytest.raises(ConvNeXtImportError, match=r"has 'stages\.3\.1\.gamma', which DDColor's ConvNeXt"):
        load_ddcolor_encoder(variables, model_kwargs(str(path)))


def test_a_published_encoder_of_other_widths_is_refused_before_downloading(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")  # nothing listens: a download fails
    _, variables = fresh_variables()
    with pytest.raises(
        ConvNeXtImportError, match=r"is the tiny ConvNeXt .* config\.model builds depths \(1, 1, 2, 1\)"
    ):
        load_ddcolor_encoder(variables, model_kwargs("convnext_tiny_22k"))
    assert not (tmp_path / "cache").exists()


def test_the_recipes_name_their_encoder_and_the_cpu_network_starts_random():
    for size in ("large", "tiny"):
        config = config_lib.load_config(REPO / "configs" / "ddcolor.py", size)
        assert config.model.encoder_init == f"convnext_{size}_22k"
    cpu = config_lib.load_config(REPO / "configs" / "ddcolor.py", "tiny,cpu")
    assert cpu.model.encoder_init is None
    _, variables = fresh_variables()
    assert load_ddcolor_encoder(variables, model_kwargs(None)) is variables
