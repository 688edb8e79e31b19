"""Generated photos: smooth gradients and a blob, so they carry real colour signal."""


def make_photo(rng, height: int, width: int, hue_shift: float = 0.0):
    """A smooth, colourful uint8 RGB image (gradients and a blob), so it carries real colour signal."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    cy, cx = rng.uniform(0.2, 0.8, size=2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.05)
    phase = hue_shift + rng.uniform(0, 2 * np.pi)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (x + y) + phase + k * 2.1) * (0.5 + 0.5 * blob) for k in range(3)]
    return (np.clip(np.stack(channels, -1), 0, 1) * 255).astype(np.uint8)
