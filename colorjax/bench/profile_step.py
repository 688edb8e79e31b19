"""Where a trainer step's time goes: `python -m colorjax.bench profile` traces a few ECCV16 steps with
`jax.profiler` and prints the top kernels by time per step.

The step is `configs/zhang_eccv16.py`'s at full width, 176x176, batch 256 in bfloat16 on an accelerator (batch 2,
float32 on a CPU, where the kernels are XLA's thunks). The Perfetto trace (`perfetto_trace.json.gz`, open it at
ui.perfetto.dev) is written under $COLORJAX_BENCH_TRACE_DIR (default /tmp/colorjax_trace). Rows: kernel name,
milliseconds per step, share of the device's busy time.
"""

import collections
import gzip
import json
import os
from pathlib import Path

import jax

from colorjax.bench.train_step import config_train_step, repo_config

TRACED_STEPS = 5
TOP_KERNELS = 15


def _device_kernel_times(trace_file: Path) -> dict[str, float]:
    """Total microseconds per event name over the trace's device processes (GPU/TPU streams; the XLA CPU
    client's threads when there is no accelerator)."""
    with gzip.open(trace_file, "rt") as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {
        e["pid"]: e.get("args", {}).get("name", "")
        for e in events
        if e.get("ph") == "M" and e.get("name") == "process_name"
    }
    device_pids = {pid for pid, name in names.items() if "/device:" in name}
    if not device_pids:  # CPU: the host's XLA thunks
        device_pids = set(names)
    totals: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if e.get("ph") == "X" and e.get("pid") in device_pids and "dur" in e:
            totals[e["name"]] += float(e["dur"])
    return totals


def bench_profile(quick: bool) -> list[dict]:
    on_cpu = jax.default_backend() == "cpu"
    config = repo_config("zhang_eccv16.py")
    if quick or on_cpu:
        config.model.width, config.batch_size, config.data.image_size = (0.25, 2, 64)
    else:
        config.batch_size, config.data.image_size = 256, 176
    config.precision = "float32" if on_cpu else "bfloat16"
    one_step, _ = config_train_step(config)
    for _ in range(3):
        jax.block_until_ready(one_step())
    trace_dir = Path(os.environ.get("COLORJAX_BENCH_TRACE_DIR", "/tmp/colorjax_trace"))
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for _ in range(TRACED_STEPS):
            jax.block_until_ready(one_step())
    trace_file = max(trace_dir.rglob("perfetto_trace.json.gz"), key=lambda p: p.stat().st_mtime)
    totals = _device_kernel_times(trace_file)
    busy = sum(totals.values()) or 1.0
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_KERNELS]
    print(f"trace: {trace_file}", flush=True)
    return [
        {
            "kernel": name[:90],
            "ms_per_step": us / TRACED_STEPS / 1e3,
            "share_percent": 100 * us / busy,
            "batch": config.batch_size,
            "precision": config.precision,
        }
        for name, us in top
    ]
