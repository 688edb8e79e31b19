"""InputWaitTimer: the share of the loop's time spent waiting for the next batch."""

from colorjax.data.input_wait import InputWaitTimer


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_share_counts_only_time_inside_next_and_restarts_after_each_report():
    clock = FakeClock()
    timer = InputWaitTimer(clock)

    def stream(input_seconds):
        while True:
            clock.now += input_seconds  # the input pipeline's time for one batch
            yield "batch"

    slow = stream(0.3)
    for _ in range(10):
        assert timer.next(slow) == "batch"
        clock.now += 0.7  # the loop's own work (dispatch, the periodic metrics sync)
    assert abs(timer.percent_and_reset() - 30.0) < 1e-9
    clock.now += 5.0  # an evaluation: not training time
    timer.reset()
    fast = stream(0.0)
    for _ in range(4):
        timer.next(fast)
        clock.now += 1.0
    assert timer.percent_and_reset() == 0.0
