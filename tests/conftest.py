"""The root of the test suite: tests by cost, the shared fixtures plugin.

- tests/unit: library calls in this process; no training run, no command, no subprocess. Fast.
- tests/integration: a training run or a command line (a command's `main()`, or one `python -m colorjax...` process).
- tests/system: processes or servers working together end to end (two-process training, a live run stopped by a
  signal, the app in a real browser against uvicorn, the launch scripts).

Each test gets the marker of its folder (`-m unit`, `-m "not system"`), set here; `slow` stays a marker of its own.
Helper functions are imported from `helpers` (tests/helpers/, on sys.path through pyproject's `pythonpath`), never
from another test module; fixtures are in the `helpers.fixtures` plugin.
"""

from pathlib import Path

import pytest

pytest_plugins = ["helpers.fixtures"]

TESTS = Path(__file__).resolve().parent
COSTS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/ (a path given on the command line)
            continue
        if folder in COSTS:
            item.add_marker(getattr(pytest.mark, folder))
