"""Shared test fixtures.

`shared_dir` is the team's `../shared` folder beside the checkout (override with COLORJAX_SHARED); tests that need its
photos or reference figures skip cleanly where it is absent, as on a user's fresh clone.
"""

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(os.environ.get("COLORJAX_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED_DIR / "FACTS.md").exists():
        pytest.skip(f"../shared is absent ({SHARED_DIR}); this test needs the team's shared data")
    return SHARED_DIR
