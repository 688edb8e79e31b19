"""Is training input-bound? `InputWaitTimer` measures the share of the loop's wall time spent waiting for batches.

The train step is dispatched asynchronously, so time the loop spends inside `next(stream)` is time the device may
sit idle for want of input; between two log points the loop syncs once (fetching the metrics), so wait time over
wall time is the share of step time lost to input. Near 0%: compute-bound; tens of percent: add input cores
(`python -m colorjax.bench jpeg_pipeline` gives photos/s per core) or lighten the preprocessing.
"""

import time
from collections.abc import Iterator
from typing import Any


class InputWaitTimer:
    """Wraps `next(stream)`; `percent_and_reset()` gives the share of wall time spent in it since the last call."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Starts a new interval (call after evaluations and checkpoint saves, which are not training time)."""
        self._waited = 0.0
        self._start = self._clock()

    def next(self, stream: Iterator[Any]) -> Any:
        start = self._clock()
        try:
            return next(stream)
        finally:
            self._waited += self._clock() - start

    def percent_and_reset(self) -> float:
        """Percent of the interval's wall time spent waiting for input (`train/input_wait_percent`)."""
        elapsed = self._clock() - self._start
        percent = 100.0 * self._waited / elapsed if elapsed > 0 else 0.0
        self.reset()
        return percent
