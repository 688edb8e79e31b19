"""Timing helpers shared by the benchmarks: warm up, then take the median of repeated runs."""

import statistics
import time
from collections.abc import Callable

import jax


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()`, blocking on any JAX arrays it returns (so async dispatch is counted)."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)
