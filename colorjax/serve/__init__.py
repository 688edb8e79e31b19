"""The colorization web app: `python -m colorjax.serve --workdir RUN` (see `__main__` and docs/serve.md).

Accounts (or `--single-user`), upload, a before/after slider, downloads and a per-user history over a JSON API;
FastAPI on uvicorn, SQLite and image files under `--data-dir`. Needs the optional extra `colorjax[serve]`.
"""

# The app's limits, once (the command line's defaults and `create_app`'s).
MAX_UPLOAD_MB = 20.0
MAX_PIXELS = 25_000_000  # A 24-megapixel camera photo fits; the header is checked before decoding.
MODEL_CONCURRENCY = 1  # Photos the model colours at once; the others queue.
MAX_QUEUED_PER_USER = 4  # A user's photos waiting or being coloured at once; one more is refused (429).
MAX_HINTS = 100  # Colour points per photo (SIGGRAPH17): bounds a request and the page that lists them.
UNDO_S = 10.0  # Seconds a deleted item can be restored (Undo) before its row and files are removed.
