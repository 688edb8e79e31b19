"""The benchmarks' honesty: FLOPs from the lowered program equal XLA's CPU-compiled count, MFU only against a known
bf16 peak, and the device printed."""

import jax
import jax.numpy as jnp
import pytest

from colorjax.bench import devices
from colorjax.models import get_model


def _tiny_eccv16():
    model = get_model("eccv16", width=0.125)
    L = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), maxval=100.0)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), L))
    variables = jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), shapes)
    return model, variables, L


def _compiled_flops(jitted, *args) -> float:
    return jitted.lower(*args).compile().cost_analysis()["flops"]


def test_lowered_flops_equal_the_cpu_compiled_count_for_inference_and_a_training_gradient():
    model, variables, L = _tiny_eccv16()
    forward = jax.jit(model.apply)

    def loss(params):
        outputs, _ = model.apply({**variables, "params": params}, L, train=True, mutable=["batch_stats"])
        return jnp.mean(outputs["logits"] ** 2)

    gradient = jax.jit(jax.grad(loss))
    for jitted, args in ((forward, (variables, L)), (gradient, (variables["params"],))):
        lowered, compiled = devices.lowered_flops(jitted, *args), _compiled_flops(jitted, *args)
        assert lowered > 1e7  # the convolutions are counted (a GPU-compiled count leaves them out)
        # XLA's passes rewrite some elementwise work (BatchNorm, the gradient's reductions): 0.002% of the forward,
        # 0.5% of the gradient at this 1/8 width; the convolutions are counted identically.
        assert lowered == pytest.approx(compiled, rel=1e-2)
    # The gradient costs about twice the forward on top of it (a training step ~3x inference).
    ratio = devices.lowered_flops(gradient, variables["params"]) / devices.lowered_flops(forward, variables, L)
    assert 2.0 < ratio < 4.0


@pytest.mark.parametrize(
    "kind, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("TPU v4", 275e12),
        ("TPU v5 lite", 197e12),
        ("TPU v5p", 459e12),
        ("TPU v6 lite", 918e12),
        ("cpu", None),
        ("AMD EPYC 9654", None),
    ],
)
def test_bf16_peak_by_device_kind(kind, peak):
    assert devices.peak_bf16_flops(kind) == peak


def test_no_mfu_without_a_known_peak_and_the_device_is_described():
    cpu = jax.devices("cpu")[0]
    columns = devices.speed_columns(2e12, 0.5, cpu)
    assert columns == {"tflops_per_s": 4.0}
    assert "CPU" in devices.describe_device(cpu) and "no MFU" in devices.describe_device(cpu)
