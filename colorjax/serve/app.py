"""The colorization web app: `create_app(colorizer, data_dir, ...)` returns a FastAPI (ASGI) application.

Pages (server-rendered Jinja2, a little JavaScript in static/app.js): sign up, log in, colorize (drag and drop,
progress, then the result page with a before/after slider at full resolution, downloads and, for ECCV16, a
temperature control that re-colours; for a hint-capable model, SIGGRAPH17, colour points to click on the photo
and re-colour with), history (a deleted item can be restored for a few seconds), account (API token, password change, delete all my photos, delete the account). The JSON API, documented at /docs (Swagger UI) and /redoc,
both served from the files of the `fastapi-offline` package, so they work without internet:

    POST   /api/colorize              multipart `image` (+ optional `model`, `temperature` or `hints`) -> image/png
    POST   /api/jobs                  the same form -> 202 and the job, at once (the pages use it)
    GET    /api/jobs, /api/jobs/{id}  the user's jobs / one job: status, queue position, elapsed, estimate, image id
    DELETE /api/jobs/{id}             cancels it (a queued job leaves the queue; a running one is discarded)
    POST   /api/images/{id}/recolor   form `temperature` (ECCV16), `hints` (SIGGRAPH17) or `model` -> image/png
    GET    /api/history               the user's images, newest first
    GET    /api/images/{id}           the colorization as PNG (?format=jpeg for JPEG)
    DELETE /api/images/{id}           deletes it; for `undo_s` seconds POST /api/images/{id}/restore undoes that
    GET    /healthz

Errors of the API are JSON `{"error": "..."}` with a 4xx status. Authentication: the browser's session cookie
(state-changing calls then need the page's CSRF token in `X-CSRF-Token`), or `Authorization: Bearer <token>` with
the API token from the account page (no CSRF token needed). With `single_user` there are no accounts: everything
belongs to one local user, and scripts need neither cookie nor token. Another user's image id answers 404, exactly
like an id that does not exist.

A photo's whole job (decode, model, encode, store; `jobs.JobBoard`) runs in a worker thread, at most `model_concurrency` at a time
and a few queued per user, so memory is bounded and pages and the API stay responsive while it works. In front of
every route, `security` refuses unknown Host names and adds the anti-framing and content-type headers.

`create_app` assembles the app from routers by concern: `accounts` (sign-up, log-in, log-out, the API token),
`pages` (the server-rendered pages and their image files) and `api` (the JSON API); what they share (settings,
database, image store, the model's bounded worker pool, who is asking, CSRF, rendering) is `state.AppState`,
kept on `app.state.colorjax` and reached through the dependency `state.State`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from colorjax import files, serve
from colorjax.inference.colorizer import Colorizer
from colorjax.serve import accounts, api, auth, pages, security
from colorjax.serve.db import Database, User
from colorjax.serve.jobs import JobBoard
from colorjax.serve.state import ApiError, AppState, ColorService, ModelSource, Settings
from colorjax.serve.storage import ImageStore, UploadError

PACKAGE_DIR = Path(__file__).parent
DOCS_ASSETS_URL = "/docs-assets"  # Swagger UI's and ReDoc's JavaScript and CSS, served locally.
LOCAL_USERNAME = "local"  # The one user of --single-user mode.
API_DESCRIPTION = (
    'Errors are JSON `{"error": "..."}` with a 4xx status. Scripts authenticate with '
    "`Authorization: Bearer <token>` (create the token on the account page); the browser's pages use the session "
    "cookie plus the page's CSRF token in `X-CSRF-Token`. In `--single-user` mode no authentication is needed. "
    "Another user's image id answers 404, like one that does not exist."
)


def create_app(
    colorizer: Colorizer | Mapping[str, ModelSource],
    data_dir: str | Path,
    *,
    single_user: bool = False,
    max_upload_mb: float = serve.MAX_UPLOAD_MB,
    max_pixels: int = serve.MAX_PIXELS,
    model_concurrency: int = serve.MODEL_CONCURRENCY,
    https_only_cookies: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    max_queued_per_user: int = serve.MAX_QUEUED_PER_USER,
    undo_s: float = serve.UNDO_S,
) -> FastAPI:
    """The app for one loaded model, or several ({name: colorizer or loader}, loaded at first use:
    `state.ColorService`), storing its database and images under `data_dir` (created if needed, readable
    by its owner only). `allowed_hosts`: the Host names it answers (`security.allowed_hosts`; the command always
    gives them), None for any (a test client). `undo_s`: how long a deleted item can be restored. What a crash left
    half-written in the image store is swept here, with the items deleted before the server stopped (their undo
    ended with it)."""
    data_dir = _private_folder(Path(data_dir).resolve())
    database = Database(data_dir / "colorjax.sqlite3")
    store = ImageStore(data_dir)
    database.purge_deleted()  # Their files go in the sweep: folders without a row.
    store.sweep(database.image_ids())
    service = ColorService(colorizer, model_concurrency, max_queued_per_user)
    state = AppState(
        settings=Settings(data_dir, single_user, max_upload_mb, max_pixels, max_queued_per_user, undo_s),
        database=database,
        store=store,
        service=service,
        jobs=JobBoard(service.run, model_concurrency),
        local_user=_local_user(database) if single_user else None,
        templates=Jinja2Templates(directory=PACKAGE_DIR / "templates"),
    )

    # FastAPI's own /docs and /redoc load their JavaScript from a CDN (blank pages offline, e.g. on a GPU VM without
    # internet); FastAPIOffline serves the same pages from the package's copy of Swagger UI 5 and ReDoc.
    app = FastAPIOffline(
        title="colorjax",
        summary="Colorize gray photos with a colorjax model.",
        description=API_DESCRIPTION,
        version="1",
        static_url=DOCS_ASSETS_URL,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=_secret_key(data_dir),
        session_cookie="colorjax_session",
        max_age=int(auth.SESSION_LIFETIME_S),
        same_site="lax",
        https_only=https_only_cookies,
    )
    app.add_middleware(security.SecurityMiddleware, hosts=allowed_hosts)  # Outermost: before the session is read.
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.state.colorjax = state
    app.state.database, app.state.store, app.state.service = state.database, state.store, state.service
    _add_error_handlers(app, state)
    for router in (accounts.router, pages.router, api.router):  # This order: the order routes are matched in.
        app.include_router(router)
    return app


def server_config(app: FastAPI, host: str, port: int, forwarded_allow_ips: str | None = None, **options: Any):
    """uvicorn's settings for the app. Proxy headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from
    the addresses in `forwarded_allow_ips` (--forwarded-allow-ips, e.g. a TLS proxy's), never by default: uvicorn
    itself trusts them from 127.0.0.1, where behind the documented SSH tunnel every visitor comes from, so anyone
    could give each log-in attempt a new address."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        **options,
    )


def _add_error_handlers(app: FastAPI, state: AppState) -> None:
    """ApiError, a refused upload, Starlette's own errors (404, 405) and a request FastAPI cannot validate: JSON
    `{"error": ...}` on /api/... and /healthz, the error page elsewhere."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        return state.error_response(request, error.status, error.message, error.headers)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, error: UploadError) -> Response:
        return state.error_response(request, error.status, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = {404: "Not found."}.get(error.status_code, str(error.detail))
        return state.error_response(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return state.error_response(request, 400, f"Bad request: {problems}")


def _local_user(database: Database) -> User:
    found = database.user_by_name(LOCAL_USERNAME)
    if found:
        return found[0]
    # No password can match "!" (not a scrypt hash): the local user never logs in, --single-user only.
    return database.create_user(LOCAL_USERNAME, "!") or database.user_by_name(LOCAL_USERNAME)[0]


def _private_folder(data_dir: Path) -> Path:
    """The data dir, created 0700: the database and every photo are the users' own, not the machine's. A folder
    that already holds the app's database (one made by an older colorjax), or nothing, is narrowed to 0700 too;
    any other existing folder is left as it is."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
        data_dir.chmod(0o700)  # mkdir's mode passes through the umask; this one must not.
    elif (data_dir / "colorjax.sqlite3").exists() or not any(data_dir.iterdir()):
        data_dir.chmod(0o700)
    return data_dir


def _secret_key(data_dir: Path) -> str:
    """The key that signs session cookies, created once per data dir (readable by the owner only) so sessions
    survive a restart."""
    path = data_dir / "secret_key"
    if not path.exists():
        # Whole or not at all (an empty key file would sign sessions with ""), and 0600 from its creation on.
        with files.atomic_path(path) as temporary:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as f:
                f.write(auth.new_secret())
    return path.read_text().strip()
