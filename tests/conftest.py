"""The root of the test suite: tests by cost, the shared fixtures plugin.

- tests/unit: library calls in this process; no training run, no command, no subprocess. Fast.
- tests/integration: a training run or a command line (a command's `main()`, or one `python -m colorjax...` process).
- tests/system: processes or servers working together end to end (two-process training, a live run stopped by a
  signal, the app in a real browser against uvicorn, the launch scripts).

Each test gets the marker of its folder (`-m unit`, `-m "not system"`), set here; `slow` stays a marker of its own.
Helper functions are imported from `helpers` (tests/helpers/, on sys.path through pyproject's `pythonpath`), never
from another test module; fixtures are in the `helpers.fixtures` plugin.

JAX's persistent compilation cache is on for the session and its subprocesses (environment variables, set here
before anything imports JAX): every compiled program is kept in .pytest_cache/jax of the checkout, so a second run
of a test, a subprocess that compiles what the session compiled, and the next session load it instead of compiling
again. A cached program is the same program: results are bit for bit those of a fresh compile. Set
JAX_COMPILATION_CACHE_DIR yourself to put the cache elsewhere, or to the empty string to turn it off.
"""

import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["helpers.fixtures"]

TESTS = Path(__file__).resolve().parent
COSTS = ("unit", "integration", "system")


def _use_a_persistent_compilation_cache() -> None:
    settings = {  # name: (default, type of jax.config's value)
        "JAX_COMPILATION_CACHE_DIR": (str(TESTS.parent / ".pytest_cache" / "jax"), str),
        # Every program, however quick to compile or small: the tests compile many small ones, and again in
        # each subprocess.
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": ("0", float),
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": ("0", int),
    }
    for name, (default, _) in settings.items():
        os.environ.setdefault(name, default)  # the user's own setting wins
    if "jax" in sys.modules:  # imported already (by another plugin): its config read the environment before this
        import jax

        for name, (_, kind) in settings.items():
            jax.config.update(name.lower(), kind(os.environ[name]))


_use_a_persistent_compilation_cache()


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/ (a path given on the command line)
            continue
        if folder in COSTS:
            item.add_marker(getattr(pytest.mark, folder))
