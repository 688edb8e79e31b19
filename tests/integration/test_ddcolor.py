"""DDColor (Kang et al., ICCV 2023): the Flax port against the authors' own PyTorch modules, the import traps, the
published file layouts and the parameter counts.

The reference is piddnad/DDColor's code as the `modelscope` wheel ships it (`colorjax.bench.ddcolor_torch`; needs
`pip install modelscope==1.40.2` and torch, else those tests skip saying so), built at a CPU-sized width with
random weights in the published layout; the Flax model gets them through the real importer. Every comparison is
of float32 outputs on a batch of two non-square (64 x 96) pictures.
"""

import json
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.ddcolor import numpy_state_dict, randomise

import colorjax.models.ddcolor as ddcolor_module
from colorjax.models import get_model
from colorjax.models.ddcolor import SIZES, ConvNeXtBlock, CrossAttentionLayer, SelfAttentionLayer, pixel_shuffle
from colorjax.models.ddcolor_import import (
    DDColorImportError,
    converted_arrays,
    ddcolor_fields,
    load_ddcolor,
    spectral_norm_weight,
    state_dict_to_variables,
)

# A CPU-sized DDColor: 4 decoder layers, so the colour decoder cycles back to its first scale.
TINY = dict(
    depths=(1, 1, 1, 1),
    dims=(8, 16, 32, 64),
    nf=32,
    num_queries=4,
    hidden_dim=16,
    num_heads=2,
    dim_feedforward=32,
    dec_layers=4,
)
TOLERANCE = 1e-4  # max |Flax - PyTorch| on outputs of order 1 to 30
PUBLISHED_PARAMETERS = {"large": 227_869_328, "tiny": 55_006_640}  # the authors' sum(p.numel() for p in parameters())


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def template(model, size=(32, 32)):
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *size, 1), jnp.float32)))


def count(tree) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


# --- the authors' modules -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def authors_arch(torch):
    from colorjax.bench.ddcolor_torch import authors_modules

    try:
        return authors_modules()
    except ImportError as error:
        pytest.skip(str(error))


def nhwc(tensor) -> np.ndarray:
    return tensor.detach().numpy().transpose(0, 2, 3, 1)


def nchw(torch, array):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, np.float32).transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def authors(torch, authors_arch):
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    torch.manual_seed(0)
    model = authors_ddcolor(**TINY)
    randomise(model)
    return model


@pytest.fixture(scope="module")
def state_dict(authors):
    return numpy_state_dict(authors)


@pytest.fixture(scope="module")
def ported(state_dict):
    model = get_model("ddcolor", size="tiny", **TINY)
    return model, state_dict_to_variables(state_dict, template(model))


@pytest.fixture(scope="module")
def photos():
    """Two 64 x 96 lightness maps (smooth ramps plus texture) and their grey RGB as the authors make it
    (`cv2.cvtColor` of (L, 0, 0) from Lab to RGB, float32)."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:96] / 64.0
    lightness = np.stack([100 * (0.5 + 0.4 * np.sin(3 * x + k + 2 * y)) for k in range(2)])
    lightness = np.clip(lightness + rng.normal(0, 5, lightness.shape), 0, 100).astype(np.float32)[..., None]
    lab = np.concatenate([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=-1)
    rgb = np.stack([cv2.cvtColor(picture, cv2.COLOR_LAB2RGB) for picture in lab])
    return lightness, rgb


@pytest.fixture(scope="module")
def torch_blocks(torch, authors, photos):
    """The authors' network block by block (their forward hooks give the encoder features), NHWC NumPy."""
    _, rgb = photos
    with torch.no_grad():
        image = nchw(torch, rgb)
        x = authors.normalize(image)
        authors.encoder(x)
        features = [hook.feature for hook in authors.encoder.hooks]
        layers = authors.decoder.layers
        out0 = layers[0](features[3])
        out1 = layers[1](out0)
        out2 = layers[2](out1)
        pixel_embedding = authors.decoder.last_shuf(out2)
        color_maps = authors.decoder.color_decoder([out0, out1, out2], pixel_embedding)
        fused = authors.refine_net(torch.cat([color_maps, x], dim=1))
        ab = authors(image)
    return {
        "x": nhwc(x),
        "features": [nhwc(f) for f in features],
        "pixel": [nhwc(o) for o in (out0, out1, out2, pixel_embedding)],
        "color_maps": nhwc(color_maps),
        "fused": nhwc(fused),
        "ab": nhwc(ab),
    }


def run_blocks(model, variables, blocks):
    """Each Flax block on the authors' inputs to that block (so an error shows where it arises), in one jit."""

    def blockwise(module, x, features, pixel, color_maps):
        encoder = module.encoder(x)
        layers = module.decoder.layers
        unet = [layers[0](features[3], features[2]), layers[1](pixel[0], features[1]), layers[2](pixel[1], features[0])]
        return {
            "features": encoder,
            "unet": unet,
            "pixel_embedding": module.decoder.last_shuf(pixel[2]),
            "pixel_decoder": module.decoder.pixel_decoder(features),
            "color_maps": module.decoder.color_decoder(tuple(pixel[:3]), pixel[3]),
            "fused": module.refine_net(jnp.concatenate([color_maps, x], axis=-1)),
        }

    return jax.jit(nn.apply(blockwise, model))(
        variables, blocks["x"], blocks["features"], blocks["pixel"], blocks["color_maps"]
    )


@pytest.fixture(scope="module")
def flax_blocks(ported, torch_blocks):
    return run_blocks(*ported, torch_blocks)


# --- equivalence, block by block and end to end -------------------------------------------------------------------


@pytest.mark.parametrize("stage", range(4))
def test_encoder_stages_match_the_authors(flax_blocks, torch_blocks, stage):
    ours, theirs = flax_blocks["features"][stage], torch_blocks["features"][stage]
    assert ours.shape == theirs.shape == (2, 64 // 4 // 2**stage, 96 // 4 // 2**stage, TINY["dims"][stage])
    assert max_diff(ours, theirs) < TOLERANCE


@pytest.mark.parametrize("block", range(3))
def test_unet_blocks_match_the_authors(flax_blocks, torch_blocks, block):
    ours, theirs = flax_blocks["unet"][block], torch_blocks["pixel"][block]
    assert ours.shape == theirs.shape
    assert max_diff(ours, theirs) < TOLERANCE


def test_pixel_decoder_matches_the_authors(flax_blocks, torch_blocks):
    # The last x4 upsampling alone, then the whole pixel decoder from the encoder features.
    assert flax_blocks["pixel_embedding"].shape == (2, 64, 96, TINY["nf"] // 2)
    assert max_diff(flax_blocks["pixel_embedding"], torch_blocks["pixel"][3]) < TOLERANCE
    for ours, theirs in zip(flax_blocks["pixel_decoder"], torch_blocks["pixel"], strict=True):
        assert max_diff(ours, theirs) < TOLERANCE


def test_colour_decoder_matches_the_authors(flax_blocks, torch_blocks):
    assert flax_blocks["color_maps"].shape == (2, 64, 96, TINY["num_queries"])
    assert max_diff(flax_blocks["color_maps"], torch_blocks["color_maps"]) < TOLERANCE


def test_fusion_matches_the_authors(flax_blocks, torch_blocks):
    assert max_diff(flax_blocks["fused"], torch_blocks["fused"]) < TOLERANCE


@pytest.fixture(scope="module")
def end_to_end(ported, photos):
    model, variables = ported
    lightness, rgb = photos
    from_lightness = jax.jit(model.apply)(variables, jnp.asarray(lightness))["chroma"]
    from_rgb = jax.jit(lambda v, x: model.apply(v, x, method=model.colorize_rgb))(variables, jnp.asarray(rgb))
    return from_lightness, from_rgb


def test_end_to_end_from_rgb_and_from_lightness_matches_the_authors(end_to_end, torch_blocks):
    from_lightness, from_rgb = end_to_end
    theirs = torch_blocks["ab"]
    assert np.abs(theirs).max() > 1.0  # the comparison is not of near-zero outputs
    assert max_diff(from_rgb, theirs) < TOLERANCE
    # From L (the colorjax contract): the grey RGB is made by colorjax's OpenCV-style Lab -> RGB, not cv2.
    assert from_lightness.shape == (2, 64, 96, 2) and from_lightness.dtype == jnp.float32
    assert max_diff(from_lightness, theirs) < TOLERANCE


def test_outputs_have_the_contract_shapes_at_any_size():
    # 40 x 50 is padded to 64 x 64 inside and cropped back.
    model = get_model("ddcolor", size="tiny", **TINY)
    L = jnp.full((1, 40, 50, 1), 50.0)
    outputs = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), L))[0]
    assert outputs["chroma"].shape == (1, 40, 50, 2) and outputs["chroma"].dtype == jnp.float32


# --- the import traps ---------------------------------------------------------------------------------------------


def test_spectral_norm_is_folded_from_the_stored_u_and_v_not_an_svd(authors, state_dict, ported, photos, torch_blocks):
    # PyTorch's eval-mode weight (set by spectral_norm's pre-hook during the forward above) is weight_orig over
    # u . (W v) from the stored vectors; the top singular value is a different number.
    svd_off = []
    for name, module in authors.named_modules():
        if not hasattr(module, "weight_orig"):
            continue
        ours = spectral_norm_weight(
            state_dict[f"{name}.weight_orig"], state_dict[f"{name}.weight_u"], state_dict[f"{name}.weight_v"]
        )
        np.testing.assert_allclose(ours, module.weight.detach().numpy(), rtol=1e-5, atol=1e-7)
        matrix = state_dict[f"{name}.weight_orig"].reshape(ours.shape[0], -1)
        svd_off.append(max_diff(matrix / np.linalg.svd(matrix, compute_uv=False)[0], ours.reshape(matrix.shape)))
    assert len(svd_off) == 8 and max(svd_off) > 0.01
    # Folding with the SVD's sigma instead moves the colours far beyond the tolerance.
    model, variables = ported
    svd_state = dict(state_dict)
    for name, module in authors.named_modules():
        if hasattr(module, "weight_orig"):
            matrix = state_dict[f"{name}.weight_orig"].reshape(module.weight_orig.shape[0], -1)
            _, _, vt = np.linalg.svd(matrix)
            u_top = matrix @ vt[0] / np.linalg.norm(matrix @ vt[0])
            svd_state[f"{name}.weight_u"], svd_state[f"{name}.weight_v"] = u_top, vt[0]
    svd_variables = state_dict_to_variables(svd_state, template(model))
    svd_ab = jax.jit(lambda v, x: model.apply(v, x, method=model.colorize_rgb))(svd_variables, photos[1])
    assert max_diff(svd_ab, torch_blocks["ab"]) > 100 * TOLERANCE


def test_pixel_shuffle_uses_pytorchs_channel_order(torch):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 3 * 16)).astype(np.float32)
    theirs = nhwc(torch.nn.PixelShuffle(4)(nchw(torch, x)))
    np.testing.assert_array_equal(np.asarray(pixel_shuffle(jnp.asarray(x), 4)), theirs)
    # TensorFlow's depth_to_space order ((i * r + j) * C + c) is a different picture.
    depth_to_space = x.reshape(2, 3, 5, 4, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 12, 20, 3)
    assert max_diff(depth_to_space, theirs) > 1.0


def test_gelu_is_the_exact_erf_form(ported, torch_blocks, flax_blocks, monkeypatch):
    model, variables = ported

    def encoder(v, x):
        return model.apply(v, x, method=lambda module, x: module.encoder(x))

    assert max_diff(flax_blocks["features"][3], torch_blocks["features"][3]) < TOLERANCE
    monkeypatch.setattr(ddcolor_module, "gelu_exact", lambda x: jax.nn.gelu(x, approximate=True))
    tanh_features = jax.jit(encoder)(variables, torch_blocks["x"])
    assert (
        max(max_diff(ours, theirs) for ours, theirs in zip(tanh_features, torch_blocks["features"], strict=True))
        > 10 * TOLERANCE
    )


def test_in_proj_is_split_into_q_k_v_in_that_order(ported, state_dict, torch_blocks, flax_blocks):
    model, _ = ported
    assert max_diff(flax_blocks["color_maps"], torch_blocks["color_maps"]) < TOLERANCE
    # The rows taken as [k; q; v] instead of [q; k; v] give other colour maps.
    swapped = dict(state_dict)
    for key, value in state_dict.items():
        if key.endswith(("in_proj_weight", "in_proj_bias")):
            q, k, v = np.split(value, 3)
            swapped[key] = np.concatenate([k, q, v])
    variables = state_dict_to_variables(swapped, template(model))
    maps = run_blocks(model, variables, torch_blocks)["color_maps"]
    assert max_diff(maps, torch_blocks["color_maps"]) > 100 * TOLERANCE


def test_positions_are_added_to_queries_and_keys_only(torch, authors_arch):
    """The authors' attention layers against Flax's, with non-zero positions; adding them to the values too (the
    mistake) would be a different output."""
    transformer = sys.modules[authors_arch.__name__.replace(".ddcolor", ".utils.transformer_utils")]
    rng = np.random.default_rng(1)
    tgt, query_pos = (rng.normal(size=(5, 2, 16)).astype(np.float32) for _ in range(2))
    memory, pos = (rng.normal(size=(12, 2, 16)).astype(np.float32) for _ in range(2))
    t = {
        name: torch.from_numpy(value)
        for name, value in dict(tgt=tgt, query_pos=query_pos, memory=memory, pos=pos).items()
    }

    def batch_first(x):
        return jnp.asarray(np.asarray(x).transpose(1, 0, 2))

    cross = transformer.CrossAttentionLayer(16, 2).eval()
    self_attention = transformer.SelfAttentionLayer(16, 2).eval()
    randomise(cross, seed=1)
    randomise(self_attention, seed=2)
    with torch.no_grad():
        theirs_cross = cross(t["tgt"], t["memory"], pos=t["pos"], query_pos=t["query_pos"]).numpy()
        theirs_self = self_attention(t["tgt"], query_pos=t["query_pos"]).numpy()
        attention = cross.multihead_attn
        wrong = cross.norm(
            t["tgt"] + attention(t["tgt"] + t["query_pos"], t["memory"] + t["pos"], t["memory"] + t["pos"])[0]
        )
    assert max_diff(wrong.numpy(), theirs_cross) > 100 * TOLERANCE

    flax_cross = CrossAttentionLayer(16, 2)
    arguments = (batch_first(tgt), batch_first(memory), batch_first(pos), batch_first(query_pos))
    variables = state_dict_to_variables(
        numpy_state_dict(cross), jax.eval_shape(flax_cross.init, jax.random.key(0), *arguments)
    )
    ours_cross = flax_cross.apply(variables, *arguments)
    assert max_diff(ours_cross, theirs_cross.transpose(1, 0, 2)) < TOLERANCE

    flax_self = SelfAttentionLayer(16, 2)
    arguments = (batch_first(tgt), batch_first(query_pos))
    variables = state_dict_to_variables(
        numpy_state_dict(self_attention), jax.eval_shape(flax_self.init, jax.random.key(0), *arguments)
    )
    assert max_diff(flax_self.apply(variables, *arguments), theirs_self.transpose(1, 0, 2)) < TOLERANCE


@pytest.mark.parametrize("as_shifts", [True, False], ids=["shifts", "grouped_conv"])
def test_depthwise_kernel_layout(torch, authors_arch, as_shifts):
    """The 7 x 7 depthwise conv as XLA's grouped convolution and as 49 shifted multiply-adds (the CPU default)."""
    convnext = sys.modules[authors_arch.__name__.replace(".ddcolor", ".utils.convnext")]
    block = convnext.Block(dim=8).eval()
    randomise(block, seed=3)
    x = np.random.default_rng(2).normal(size=(2, 9, 11, 8)).astype(np.float32)
    with torch.no_grad():
        theirs = nhwc(block(nchw(torch, x)))
    flax_block = ConvNeXtBlock(8, depthwise_as_shifts=as_shifts)
    state = numpy_state_dict(block)
    variables = state_dict_to_variables(state, jax.eval_shape(flax_block.init, jax.random.key(0), x))
    assert variables["params"]["dwconv"]["kernel"].shape == (7, 7, 1, 8)
    assert max_diff(flax_block.apply(variables, x), theirs) < TOLERANCE
    # Reading the (8, 1, 7, 7) weight by a reshape instead of the axis permutation scrambles the filters.
    reshaped = jax.tree.map(lambda leaf: leaf, variables)
    reshaped["params"]["dwconv"]["kernel"] = jnp.asarray(state["dwconv.weight"].reshape(7, 7, 1, 8))
    assert max_diff(flax_block.apply(reshaped, x), theirs) > 100 * TOLERANCE


def test_the_fast_paths_compute_the_authors_network(ported, photos, torch_blocks):
    """The default (folded fusion, depthwise convs as shifts on a CPU, mixing before the upsampling) and the
    authors' order of operations (fold_fusion=False, grouped convolutions) give the same ab, also in bfloat16."""
    model, variables = ported
    _, rgb = photos
    rgb = jnp.asarray(rgb)

    def ab(module):
        return jax.jit(lambda v, x: module.apply(v, x, method=module.colorize_rgb))(variables, rgb)

    plain = model.clone(fold_fusion=False, depthwise_as_shifts=False)
    assert max_diff(ab(model), ab(plain)) < TOLERANCE
    assert max_diff(ab(plain), torch_blocks["ab"]) < TOLERANCE
    bf16, bf16_plain = model.clone(dtype=jnp.bfloat16), plain.clone(dtype=jnp.bfloat16)
    scale = np.abs(torch_blocks["ab"]).max()
    assert max_diff(ab(bf16), torch_blocks["ab"]) < 0.05 * scale
    assert max_diff(ab(bf16), ab(bf16_plain)) < 0.05 * scale


# --- files, errors, widths, counts --------------------------------------------------------------------------------


def test_both_published_file_layouts_read_without_torch(torch, authors, ported, tmp_path):
    # DDColor-models' {'params': state_dict} and the per-model repos' raw pytorch_model.bin, head_cls included.
    model, variables = ported
    torch.save({"params": authors.state_dict()}, tmp_path / "ddcolor_test.pth")
    torch.save(authors.state_dict(), tmp_path / "pytorch_model.bin")
    np.savez(tmp_path / "expected.npz", **{"/".join(k): np.asarray(v) for k, v in _flat(variables).items()})
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import numpy as np
        from colorjax.models.ddcolor_import import load_ddcolor
        expected = np.load({str(tmp_path / "expected.npz")!r})
        for name in ("ddcolor_test.pth", "pytorch_model.bin"):
            module, variables = load_ddcolor({str(tmp_path)!r} + "/" + name, num_heads={TINY["num_heads"]})
            flat = {{}}
            def walk(tree, prefix):
                for key, value in tree.items():
                    if isinstance(value, dict):
                        walk(value, prefix + (key,))
                    else:
                        flat["/".join(prefix + (key,))] = np.asarray(value)
            walk(variables, ())
            assert sorted(flat) == sorted(expected.files), name
            assert all(np.array_equal(flat[key], expected[key]) for key in flat), name
            assert (module.depths, module.dims, module.nf, module.num_queries) == ((1, 1, 1, 1), (8, 16, 32, 64), 32, 4)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def _flat(variables) -> dict:
    from flax import traverse_util

    return traverse_util.flatten_dict(variables)


@pytest.mark.parametrize(
    "edit, named",
    [
        (
            lambda sd: sd.pop("decoder.color_decoder.transformer_ffn_layers.1.linear2.bias"),
            "transformer_ffn_layers.1.linear2.bias",
        ),
        (lambda sd: sd.pop("decoder.layers.2.conv.0.weight_v"), "decoder.layers.2.conv.0.weight_v"),
        (
            lambda sd: sd.update({"decoder.color_decoder.extra_proj.weight": np.zeros((4, 4), np.float32)}),
            "extra_proj.weight",
        ),
        (lambda sd: sd.update({"mean": np.zeros((1, 3, 1, 1), np.float32)}), "'mean'"),
        (lambda sd: sd.update({"refine_net.0.0.bias": np.zeros(3, np.float32)}), "refine_net.0.0.bias"),
    ],
)
def test_a_missing_extra_or_misshaped_entry_is_one_line_naming_it(ported, state_dict, edit, named):
    model, _ = ported
    damaged = dict(state_dict)
    edit(damaged)
    with pytest.raises(DDColorImportError) as error:
        state_dict_to_variables(damaged, template(model), source="weights.pth")
    message = str(error.value)
    assert "\n" not in message and named in message and message.startswith("weights.pth")


def test_the_unused_entries_are_accepted_present_or_absent(ported, state_dict):
    model, variables = ported
    assert {"encoder.arch.head_cls.weight", "encoder.arch.norm.weight"} <= set(state_dict)
    trimmed = {k: v for k, v in state_dict.items() if not k.startswith(("encoder.arch.head_cls", "encoder.arch.norm."))}
    again = state_dict_to_variables(trimmed, template(model))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), again, variables))


def test_widths_come_from_the_state_dicts_shapes(state_dict):
    expected = {k: v for k, v in TINY.items() if k != "num_heads"}
    assert ddcolor_fields(state_dict) == {"size": "tiny", **expected}


@pytest.mark.parametrize("size", ["tiny", "large"])
def test_the_published_layouts_fit_and_their_size_is_recognised(torch, authors_arch, size, monkeypatch):
    """The authors' published networks, built on PyTorch's meta device (shapes only): ddcolor_fields names the
    size, and every entry of their state dict maps onto `ddcolor(size=...)` (head_cls and the final norm dropped),
    checked on zero-stride arrays, so nothing of the 228M parameters is allocated."""
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    # Their ConvNeXt reads its drop-path rates with .item(), which the meta device cannot: those stay on the CPU.
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *args, **kwargs: linspace(*args, **{**kwargs, "device": "cpu"}))
    with torch.device("meta"):
        theirs = authors_ddcolor(**SIZES[size])
    shapes = {key: tuple(value.shape) for key, value in theirs.state_dict().items()}
    zero_stride = {key: np.broadcast_to(np.float32(0), shape) for key, shape in shapes.items()}
    zero_stride["mean"] = np.float32([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    zero_stride["std"] = np.float32([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    fields = ddcolor_fields(zero_stride)
    assert fields == {
        "size": size,
        "nf": 512,
        "num_queries": 100,
        "hidden_dim": 256,
        "dim_feedforward": 2048,
        "dec_layers": 9,
    }
    model = get_model("ddcolor", **fields)
    with np.errstate(divide="ignore", invalid="ignore"):  # sigma of an all-zero weight is 0
        arrays = converted_arrays(zero_stride, template(model))
    ours = count(template(model)["params"]) + count(template(model)["batch_stats"])
    assert sum(a.size for a in arrays.values()) == ours
    # Their parameters: ours, the unused final norm and head_cls (modelscope's ConvNeXt still has it).
    unused = 2 * SIZES[size]["dims"][-1] + (4 * SIZES[size]["dims"][-1] + 4)
    assert sum(p.numel() for p in theirs.parameters()) == count(template(model)["params"]) + unused


@pytest.mark.parametrize("size", ["large", "tiny"])
def test_parameter_counts_are_the_published_ones(size):
    # Counted as PyTorch's sum(p.numel() for p in model.parameters()) (weight_orig, not the u/v buffers), from
    # shapes only; the authors' count includes their encoder's final `norm`, which colorjax leaves out (unused).
    params = template(get_model("ddcolor", size=size))["params"]
    final_norm = 2 * SIZES[size]["dims"][-1]
    assert count(params) + final_norm == PUBLISHED_PARAMETERS[size]


def test_parameter_count_at_the_test_width_equals_the_authors(authors):
    ours = count(template(get_model("ddcolor", size="tiny", **TINY))["params"])
    head_cls, final_norm = 4 * TINY["dims"][-1] + 4, 2 * TINY["dims"][-1]
    assert ours + final_norm + head_cls == sum(p.numel() for p in authors.parameters())


def test_load_ddcolor_infers_the_widths_and_published_loader_dispatches(torch, authors, ported, photos, tmp_path):
    from colorjax.models.published import load_weights_file

    torch.save({"params": authors.state_dict()}, tmp_path / "tiny_test.pth")
    module, variables = load_weights_file("ddcolor", tmp_path / "tiny_test.pth", num_heads=TINY["num_heads"])
    assert {field: getattr(module, field) for field in TINY} == TINY
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), variables, ported[1]))
    with pytest.raises(DDColorImportError, match="dims|does not fit"):
        load_ddcolor(tmp_path / "tiny_test.pth", size="large", depths=(1, 1, 1, 1), dims=(16, 16, 32, 64))


def test_the_registry_names_the_four_published_files_with_their_whole_sha256(monkeypatch, tmp_path):
    import hashlib

    from colorjax.weights import registry

    entries = {
        name: registry.KNOWN_WEIGHTS[name]
        for name in ("ddcolor_modelscope", "ddcolor_paper", "ddcolor_artistic", "ddcolor_paper_tiny")
    }
    for name, entry in entries.items():
        assert entry.model == "ddcolor" and entry.file_name == f"{name}.pth" and len(entry.sha256) == 64
        assert entry.url == f"https://huggingface.co/piddnad/DDColor-models/resolve/main/{name}.pth"
        assert entry.model_kwargs == {"size": "tiny" if name.endswith("tiny") else "large"}
    assert entries["ddcolor_modelscope"].sha256.startswith("17c460d7e55b")
    assert registry.KNOWN_WEIGHTS["eccv16"].sha256_prefix == "9b330a0b"  # the Zhang entries keep their name's hash

    # The whole digest is checked: a file whose hash shares the first 12 hex digits is still refused.
    payload = b"not the published weights"
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path))
    monkeypatch.setitem(
        registry.KNOWN_WEIGHTS,
        "ddcolor_fake",
        registry.KnownWeights(
            name="ddcolor_fake",
            model="ddcolor",
            file_name="ddcolor_fake.pth",
            description="",
            sha256=digest[:12] + "0" * 52,
        ),
    )

    def fetch(weights, partial, target, progress):  # the download, without a server: the bytes land in the partial
        partial.write_bytes(payload)
        return digest

    monkeypatch.setattr(registry, "_fetch", fetch)
    with pytest.raises(registry.WeightsError) as error:
        registry.download("ddcolor_fake", progress=False)
    assert "\n" not in str(error.value) and "the registry promises" in str(error.value)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(
        registry.KNOWN_WEIGHTS,
        "ddcolor_fake",
        registry.KnownWeights(
            name="ddcolor_fake", model="ddcolor", file_name="ddcolor_fake.pth", description="", sha256=digest
        ),
    )
    assert registry.download("ddcolor_fake", progress=False).read_bytes() == payload


LOAD_PEAK_SCRIPT = """
import json, sys
import jax
from colorjax.models.ddcolor_import import load_ddcolor

module, variables = load_ddcolor(sys.argv[1])
with open("/proc/self/status") as status:  # VmHWM: a child's ru_maxrss starts at its parent's high-water mark
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps([module.dims, sum(leaf.size for leaf in jax.tree.leaves(variables)), peak]))
"""


@pytest.mark.slow
def test_loading_the_912_mb_large_checkpoint_peaks_under_2_5_gb(torch, authors_arch, tmp_path):
    """The authors' DDColor-L at random weights saved as the published `{'params': state_dict}` (912 MB, as
    ddcolor_modelscope.pth), read by the torch-free reader and imported in a fresh process: peak RSS < 2.5 GB
    (about 1.2 GiB: the reader reads each storage once into its array, the importer lets each go once converted)."""
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    path = tmp_path / "ddcolor_large_random.pth"
    torch.manual_seed(0)
    torch.save({"params": authors_ddcolor().state_dict()}, path)
    assert path.stat().st_size > 900e6
    result = subprocess.run(
        [sys.executable, "-c", LOAD_PEAK_SCRIPT, str(path)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dims, numbers, peak = json.loads(result.stdout.splitlines()[-1])
    assert dims == [192, 384, 768, 1536] and numbers > PUBLISHED_PARAMETERS["large"]
    assert peak < 2.5e9, peak
