"""The repository's config files, loaded as the trainer's `--config configs/NAME.py:VARIANT` does."""

import importlib.util

from helpers.paths import REPO


def load_repo_config(name: str, variant: str | None):
    """`get_config(variant)` of configs/NAME.py (None: the file's default recipe)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)
