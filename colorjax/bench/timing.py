"""Timing helpers shared by the benchmarks: warm up, then take the median of repeated runs."""

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

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


def interleaved_median_seconds(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each fn, timed in turns (a, b, a, b, ...) so a load spike on this shared machine hits
    every contender alike instead of whichever happened to run then."""
    for fn in fns:
        jax.block_until_ready(fn())  # compile / warm up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, fn_times in zip(fns, times, strict=True):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            fn_times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


class Stages:
    """Wall time per named stage of a pipeline over repeated turns: `with stages("decode"): ...` in each turn, then
    `medians()`, {stage: median seconds} in the order the stages first ran. The body must return only when its work
    is done (NumPy results, or `jax.block_until_ready`)."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds.setdefault(name, []).append(time.perf_counter() - start)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(times) for name, times in self.seconds.items()}
