"""The width multiplier every model takes (`width`, 1.0 = the published widths, below 1 for CPU-sized runs)."""


def scaled_width(channels: int, width: float) -> int:
    """Channel count of a layer of `channels` published channels under the multiplier `width` (at least 1)."""
    return max(1, round(channels * width))
