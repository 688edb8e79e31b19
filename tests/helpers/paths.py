"""Where things are: the repository, the team's shared data, the tests' data files."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
TEST_DATA = TESTS / "data"
# The team's `../shared` folder beside the checkout (override with COLORJAX_SHARED); tests that need its scene photos
# (`data/intel_scenes_150`) skip cleanly where they are absent, as on a user's fresh clone.
SHARED_DIR = Path(os.environ.get("COLORJAX_SHARED", REPO.parent / "shared"))
