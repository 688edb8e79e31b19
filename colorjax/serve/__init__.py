"""The colorization web app: `python -m colorjax.serve --workdir RUN` (see `__main__` and docs/serve.md).

Accounts (or `--single-user`), upload, a before/after slider, downloads and a per-user history over a JSON API;
FastAPI on uvicorn, SQLite and image files under `--data-dir`. Needs the optional extra `colorjax[serve]`.
"""
