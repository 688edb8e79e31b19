"""The evaluation statistics on 8 (fake CPU) devices in a fresh process: the numbers of 1 device, per-image values
sharded like the batch, counts summed across devices (tests/unit/test_metrics.py checks each metric by hand)."""

import json
import os
import subprocess
import sys

from helpers.paths import REPO

SHARDED_SCRIPT = """
import json, numpy as np, jax, jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from colorjax import quantize
from colorjax.evaluation import metrics

assert jax.device_count() == 8, jax.devices()
rng = np.random.default_rng(0)
n, h, w = 16, 6, 5
def batch():
    return metrics.ColourViews(
        rgb=rng.uniform(size=(n, h, w, 3)).astype(np.float32),
        ab=rng.uniform(-100, 100, size=(n, h, w, 2)).astype(np.float32),
        uv=rng.uniform(-100, 100, size=(n, h, w, 2)).astype(np.float32))
pred, truth = batch(), batch()
mask = np.arange(n) < 13  # the last three examples are padding

def step(p, t, m):
    return metrics.reduce_statistics(metrics.image_statistics(p, t), m)

def finalize(reduced):
    accumulator = metrics.MetricsAccumulator()
    accumulator.add(reduced)
    return metrics.finalize(accumulator), jax.device_get(reduced)

one_device, one_reduced = finalize(jax.jit(step)(pred, truth, mask))
mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
data = NamedSharding(mesh, P("data"))
with jax.set_mesh(mesh):
    sharded = jax.jit(step)(*jax.device_put((pred, truth, mask), data))
counts_replicated = sharded["ab_error_histogram"].sharding.spec == P()
values_sharded = sharded["psnr_rgb_db"].sharding.spec == P("data")
eight_devices, eight_reduced = finalize(sharded)
print(json.dumps({
    "same_numbers": one_device == eight_devices,
    "same_statistics": all(np.array_equal(one_reduced[k], eight_reduced[k]) for k in one_reduced),
    "auc": [one_device["auc_percent"], eight_devices["auc_percent"]],
    "images": eight_devices["images"],
    "counts_replicated": counts_replicated, "values_sharded": values_sharded}))
"""


def test_statistics_on_8_devices_equal_those_on_1():
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="8", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    completed = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["images"] == 13
    assert result["same_statistics"], result
    assert result["same_numbers"], result
    assert result["values_sharded"]  # per-image values stay sharded like the batch
    assert result["counts_replicated"]  # counts are summed across devices
