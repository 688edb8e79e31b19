"""The tests' shared fixtures: a pytest plugin, loaded by tests/conftest.py (`pytest_plugins`).

- `shared_dir`: the team's `../shared` folder (helpers.paths.SHARED_DIR); skips cleanly where its scene photos
  (`data/intel_scenes_150`) are absent, as on a user's fresh clone;
- `photo_folder`: generated photos in two class subfolders, plus a corrupt JPEG and a text file named .png.
"""

from pathlib import Path

import pytest

from helpers.paths import SHARED_DIR
from helpers.photos import make_photo


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED_DIR / "data" / "intel_scenes_150").is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}); this test needs the team's shared data")
    return SHARED_DIR


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
