"""Shared test fixtures.

`shared_dir` is the team's `../shared` folder beside the checkout (override with COLORJAX_SHARED); tests that need its
scene photos (`data/intel_scenes_150`) skip cleanly where they are absent, as on a user's fresh clone.
"""

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(os.environ.get("COLORJAX_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED_DIR / "data" / "intel_scenes_150").is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}); this test needs the team's shared data")
    return SHARED_DIR


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


@pytest.fixture
def photo_folder(tmp_path):
    """A folder of generated photos in two class subfolders, plus a corrupt JPEG and a text file named .png."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for label, hue in (("cats", 0.0), ("dogs", 3.0)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            Image.fromarray(make_photo(rng, *size, hue_shift=hue)).save(root / label / f"{i}.jpg", quality=95)
    Image.fromarray(make_photo(rng, 5, 7)).save(root / "cats" / "tiny.png")
    good = (root / "cats" / "0.jpg").read_bytes()
    (root / "dogs" / "corrupt.jpg").write_bytes(good[: len(good) // 3])
    (root / "dogs" / "notes.png").write_text("not an image")
    return root
