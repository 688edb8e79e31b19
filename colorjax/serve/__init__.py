"""The colorization web app: `python -m colorjax.serve --workdir RUN` (see `__main__` and docs/serve.md).

Accounts (or `--single-user`), upload, a before/after slider, downloads and a per-user history over a JSON API;
FastAPI on uvicorn, SQLite and image files under `--data-dir`. Needs the optional extra `colorjax[serve]`.
"""

from colorjax import config_lib

# The app's limits, whose one default is `config_lib.base_config().serve` (the command line's defaults and
# `create_app`'s).
_DEFAULTS = config_lib.base_config().serve
MAX_UPLOAD_MB = _DEFAULTS.max_upload_mb
MAX_PIXELS = _DEFAULTS.max_pixels
MODEL_CONCURRENCY = _DEFAULTS.model_concurrency
MAX_QUEUED_PER_USER = _DEFAULTS.max_queued_per_user
MAX_HINTS = _DEFAULTS.max_hints
UNDO_S = _DEFAULTS.undo_s
