"""ECCV16's CPU fast paths compute the same network: the 1-channel first conv as a matmul (im2col) and the dilated
blocks 5-6 on space-to-batch sub-grids, against plain convolutions, in inference and training mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.variables import numpy_init

from colorjax.models import get_model
from colorjax.models.eccv16 import batch_to_space, conv_as_tap_matmuls, fold_batch_norms, space_to_batch


def test_space_to_batch_round_trips_and_splits_the_interleaved_sub_grids():
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    sub = space_to_batch(x)
    assert sub.shape == (8, 2, 3, 3)
    np.testing.assert_array_equal(sub[2 * 1 + 0], x[0, 0::2, 1::2])  # (p, q) = (0, 1), image 0
    np.testing.assert_array_equal(batch_to_space(sub), x)


@pytest.mark.parametrize("size", [(32, 32), (40, 48)])  # block 5's grid 4x4 (sub-grids), 5x6 (odd: dilated)
@pytest.mark.parametrize("train", [False, True])
def test_fast_paths_equal_plain_convolutions(size, train):
    plain = get_model("eccv16", width=0.125, first_conv_as_matmul=False, dilation_as_space_to_batch=False)
    fast = get_model("eccv16", width=0.125, first_conv_as_matmul=True, dilation_as_space_to_batch=True)
    L = jax.random.uniform(jax.random.key(0), (2, *size, 1), maxval=100.0)
    variables = numpy_init(plain, L)
    # Running statistics of this batch, so inference mode sees normalised, order-one activations too.
    _, stats = jax.jit(lambda v: plain.apply(v, L, train=True, mutable=["batch_stats"]))(variables)
    variables = {**variables, **stats}
    assert jax.tree.structure(variables) == jax.tree.structure(numpy_init(fast, L))
    kwargs = {"train": train, "mutable": ["batch_stats"]} if train else {}
    out_plain = jax.jit(lambda v: plain.apply(v, L, **kwargs))(variables)
    out_fast = jax.jit(lambda v: fast.apply(v, L, **kwargs))(variables)
    if not train:
        logits = np.asarray(out_plain["logits"])
        assert np.abs(logits).max() > 0.1  # logits well above the tolerance below
        for a, b in zip(jax.tree.leaves(out_plain), jax.tree.leaves(out_fast), strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
        return
    # Training mode normalises by the statistics of a 2-photo batch, which amplifies float32 rounding (the sums
    # run in another order): logits agree to 1e-4 of their scale, the annealed mean (T = 0.38) to 0.02 ab units.
    (outputs_plain, stats_plain), (outputs_fast, stats_fast) = out_plain, out_fast
    scale = np.abs(np.asarray(outputs_plain["logits"])).max()
    np.testing.assert_allclose(outputs_fast["logits"], outputs_plain["logits"], atol=1e-4 * scale)
    np.testing.assert_allclose(outputs_fast["chroma"], outputs_plain["chroma"], atol=0.02)
    for a, b in zip(jax.tree.leaves(stats_plain), jax.tree.leaves(stats_fast), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("size", [(32, 32), (40, 44)])
@pytest.mark.parametrize("sub_grids", [False, True])
def test_batch_norms_folded_at_load_time_give_the_same_outputs(size, sub_grids):
    model = get_model("eccv16", width=0.125, dilation_as_space_to_batch=sub_grids)
    L = jax.random.uniform(jax.random.key(0), (2, *size, 1), maxval=100.0)
    variables = numpy_init(model, L)
    # BatchNorms far from the identity, negative scales included, so that a wrong fold or padding shows.
    rng = np.random.default_rng(1)
    params = dict(variables["params"])
    stats = dict(variables["batch_stats"])
    for name, moments in stats.items():
        channels = moments["mean"].shape
        stats[name] = {"mean": rng.normal(0, 2, channels), "var": rng.uniform(0.1, 4, channels)}
        params[name] = {
            "scale": rng.choice([-1, 1], channels) * rng.uniform(0.3, 3, channels),
            "bias": rng.normal(0, 1, channels),
        }
    variables = jax.tree.map(jnp.float32, {"params": params, "batch_stats": stats})
    folded = fold_batch_norms(variables)
    assert len(folded["batch_stats"]) == 1  # only block 7's, before the transposed conv, stays
    folded_model = model.clone(batch_norm_folded=True)
    assert jax.tree.structure(folded) == jax.tree.structure(numpy_init(folded_model, L))
    expected = jax.jit(model.apply)(variables, L)
    got = jax.jit(folded_model.apply)(folded, L)
    scale = np.abs(np.asarray(expected["logits"])).max()
    assert scale > 0.1
    np.testing.assert_allclose(got["logits"], expected["logits"], atol=2e-5 * scale)
    np.testing.assert_allclose(got["chroma"], expected["chroma"], atol=0.01)  # ab units, of +-110 (T = 0.38)
    with pytest.raises(ValueError, match="inference"):
        folded_model.apply(folded, L, train=True, mutable=["batch_stats"])


def test_bfloat16_with_float32_accumulation_multiplies_bf16_and_accumulates_in_float32():
    model = get_model("eccv16", width=0.125)
    L = jax.random.uniform(jax.random.key(0), (1, 32, 32, 1), maxval=100.0)
    variables = numpy_init(model, L)
    mixed = model.clone(dtype=jnp.bfloat16, accumulation_dtype=jnp.float32)
    jaxpr = jax.make_jaxpr(mixed.apply)(variables, L)
    products = [e for e in jaxpr.eqns if e.primitive.name in ("conv_general_dilated", "dot_general")]
    # The first conv's matmul, 18 3x3 convs in blocks 1-7, the transposed conv, 2 3x3 convs and the 1x1 (the
    # annealed mean's decode of the float32 logits is inside a nested jaxpr).
    assert len(products) == 23
    for eqn in products:
        assert [str(v.aval.dtype) for v in eqn.invars] == ["bfloat16", "bfloat16"]
        assert str(eqn.outvars[0].aval.dtype) == "float32"
    expected = np.asarray(jax.jit(model.apply)(variables, L)["logits"])
    got = np.asarray(jax.jit(mixed.apply)(variables, L)["logits"])
    np.testing.assert_allclose(got, expected, atol=0.05 * np.abs(expected).max())


def test_an_onnx_export_runs_the_model_without_the_xla_cpu_fast_paths():
    """`colorize --runtime onnx` and the lever bench's onnxruntime contender export the plain first conv; a model
    without fast paths (SIGGRAPH17) goes through as it is."""
    from colorjax.inference.export import without_xla_cpu_fast_paths

    fast = get_model("eccv16", width=0.125, first_conv_as_matmul=True)
    assert without_xla_cpu_fast_paths(fast) == fast.clone(first_conv_as_matmul=False)
    siggraph17 = get_model("siggraph17", width=0.125)
    assert without_xla_cpu_fast_paths(siggraph17) is siggraph17


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding"),
    [(3, 1, 1, ((1, 1), (1, 1))), (3, 2, 1, ((1, 1), (1, 1))), (3, 1, 2, ((2, 2), (2, 2))), (1, 1, 1, "SAME")],
)
def test_a_conv_as_per_tap_matmuls_equals_the_conv(kernel, stride, dilation, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 9, 10, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, 5, 7)), jnp.float32)
    args = ((stride, stride), padding)
    kwargs = {"rhs_dilation": (dilation, dilation), "dimension_numbers": ("NHWC", "HWIO", "NHWC")}
    expected = jax.lax.conv_general_dilated(x, w, *args, **kwargs)
    got = conv_as_tap_matmuls(x, w, *args, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # bfloat16 operands with float32 accumulation: float32 products of the same bf16 numbers, summed in another order.
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    expected = jax.lax.conv_general_dilated(xb, wb, *args, **kwargs, preferred_element_type=jnp.float32)
    got = conv_as_tap_matmuls(xb, wb, *args, **kwargs, preferred_element_type=jnp.float32)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_convs_as_per_tap_matmuls_give_the_same_model(dtype):
    model = get_model("eccv16", width=0.125, dtype=dtype, accumulation_dtype=jnp.float32)
    L = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), maxval=100.0)
    plain = model.clone(dtype=jnp.float32)
    variables = numpy_init(plain, L)
    # Running statistics of this batch, so inference mode sees normalised, order-one activations.
    _, stats = jax.jit(lambda v: plain.apply(v, L, train=True, mutable=["batch_stats"]))(variables)
    variables = {**variables, **stats}
    matmuls = model.clone(matmul_blocks=(1, 2, 3, 4, 5, 6, 7, 8))
    assert jax.tree.structure(numpy_init(matmuls, L)) == jax.tree.structure(variables)
    products = [e.primitive.name for e in jax.make_jaxpr(matmuls.apply)(variables, L).eqns]
    assert products.count("conv_general_dilated") == 1  # the transposed conv
    expected = np.asarray(jax.jit(model.apply)(variables, L)["logits"], np.float32)
    got = np.asarray(jax.jit(matmuls.apply)(variables, L)["logits"], np.float32)
    scale = np.abs(expected).max()
    assert scale > 0.1
    # float32: rounding only; bfloat16: the same bf16 operands and float32 sums, but bf16 activations between the
    # layers, where a sum in another order can round to the neighbouring bf16 number.
    np.testing.assert_allclose(got, expected, atol=(1e-5 if dtype == jnp.float32 else 1e-3) * scale)
