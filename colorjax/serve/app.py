"""The colorization web app: `create_app(colorizer, data_dir, ...)` returns a FastAPI (ASGI) application.

Pages (server-rendered Jinja2, a little JavaScript in static/app.js): sign up, log in, colorize (drag and drop,
progress, then the result page with a before/after slider at full resolution, downloads and, for ECCV16, a
temperature control that re-colours; for a hint-capable model, SIGGRAPH17, colour points to click on the photo
and re-colour with), history, account (API token). The JSON API, documented at /docs (Swagger UI) and /redoc,
both served from the files of the `fastapi-offline` package, so they work without internet:

    POST   /api/colorize              multipart `image` (+ optional `temperature` or `hints`) -> image/png, input's size
    POST   /api/images/{id}/recolor   form `temperature` (ECCV16) or `hints` (SIGGRAPH17) -> image/png, in place
    GET    /api/history               the user's images, newest first
    GET    /api/images/{id}           the colorization as PNG (?format=jpeg for JPEG)
    DELETE /api/images/{id}
    GET    /healthz

Errors of the API are JSON `{"error": "..."}` with a 4xx status. Authentication: the browser's session cookie
(state-changing calls then need the page's CSRF token in `X-CSRF-Token`), or `Authorization: Bearer <token>` with
the API token from the account page (no CSRF token needed). With `single_user` there are no accounts: everything
belongs to one local user, and scripts need neither cookie nor token. Another user's image id answers 404, exactly
like an id that does not exist.

The model runs in worker threads, at most `model_concurrency` photos at a time, so pages and the API stay
responsive while it works.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware.sessions import SessionMiddleware

from colorjax import files, serve
from colorjax.hints import HintError, check_inside, parse_hints
from colorjax.inference.colorizer import Colorizer, InferenceError
from colorjax.serve import auth
from colorjax.serve.db import Database, ImageRecord, User
from colorjax.serve.storage import (
    IMAGE_ID,
    ImageStore,
    UploadError,
    decode_upload,
    display_name,
    download_name,
    encode,
    is_color,
    thumbnail,
)

PACKAGE_DIR = Path(__file__).parent
DOCS_ASSETS_URL = "/docs-assets"  # Swagger UI's and ReDoc's JavaScript and CSS, served locally.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 1.0
LOCAL_USERNAME = "local"  # The one user of --single-user mode.
_FORM_OVERHEAD = 64 * 1024  # Multipart boundaries, headers and option fields on top of the photo itself.
_STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
HINTS_EXAMPLE = '[{"x": 120, "y": 40, "color": "#3a7bd5"}]'
HINTS_SCHEMA = {
    "type": "string",
    "description": f"SIGGRAPH17 only: colour points as a JSON list, e.g. {HINTS_EXAMPLE}: x, y in the photo's "
    "full-resolution pixels (from the top left), the colour as #rrggbb (or 'ab': [a, b] in CIE Lab), optionally "
    f"an odd patch side 'size' (default 1); at most {serve.MAX_HINTS} points",
}
API_DESCRIPTION = (
    'Errors are JSON `{"error": "..."}` with a 4xx status. Scripts authenticate with '
    "`Authorization: Bearer <token>` (create the token on the account page); the browser's pages use the session "
    "cookie plus the page's CSRF token in `X-CSRF-Token`. In `--single-user` mode no authentication is needed. "
    "Another user's image id answers 404, like one that does not exist."
)


class ApiError(Exception):
    """A request the app refuses: JSON {"error": message} on /api/..., an error page elsewhere."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclasses.dataclass
class Settings:
    data_dir: Path
    single_user: bool
    max_upload_bytes: int
    max_pixels: int


class ColorService:
    """The model behind a bounded worker pool; ECCV16 colorizers per temperature are built once and kept.
    A hint-capable model (SIGGRAPH17) also takes the user's colour points (`colorjax.hints`)."""

    def __init__(self, colorizer: Colorizer, concurrency: int):
        self.colorizer = colorizer
        self.limiter = anyio.CapacityLimiter(concurrency)
        self._by_temperature: dict[float, Colorizer] = {}
        self._lock = threading.Lock()

    @property
    def has_temperature(self) -> bool:
        return hasattr(self.colorizer.model, "temperature")

    @property
    def takes_hints(self) -> bool:
        try:
            self.colorizer.check_takes_hints()
        except InferenceError:
            return False
        return True

    @property
    def default_temperature(self) -> float | None:
        return float(self.colorizer.model.temperature) if self.has_temperature else None

    def _colorizer_at(self, temperature: float | None) -> Colorizer:
        if temperature is None or temperature == self.default_temperature:
            return self.colorizer
        with self._lock:
            if temperature not in self._by_temperature:
                if len(self._by_temperature) >= 4:  # Each one holds its own compiled programs.
                    self._by_temperature.pop(next(iter(self._by_temperature)))
                self._by_temperature[temperature] = self.colorizer.with_temperature(temperature)
            return self._by_temperature[temperature]

    def _colorize(
        self, rgb: np.ndarray, temperature: float | None, hints: list[dict] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        # No points is the automatic mode: the model's plain program, not a second one fed empty hint maps.
        prediction = self._colorizer_at(temperature).predict(rgb, hints=hints or None)
        return prediction.rgb, prediction.gray()

    async def colorize(
        self, rgb: np.ndarray, temperature: float | None = None, hints: list[dict] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(colorization, gray version), both uint8 of the photo's size, computed off the event loop; `hints` are
        colour points already checked by `_hint_points` and `_check_hints_inside`."""
        return await anyio.to_thread.run_sync(self._colorize, rgb, temperature, hints, limiter=self.limiter)


def create_app(
    colorizer: Colorizer,
    data_dir: str | Path,
    *,
    single_user: bool = False,
    max_upload_mb: float = serve.MAX_UPLOAD_MB,
    max_pixels: int = serve.MAX_PIXELS,
    model_concurrency: int = serve.MODEL_CONCURRENCY,
    https_only_cookies: bool = False,
) -> FastAPI:
    """The app for one loaded model, storing its database and images under `data_dir` (created if needed)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir, single_user, int(max_upload_mb * 1024 * 1024), max_pixels)
    database = Database(data_dir / "colorjax.sqlite3")
    store = ImageStore(data_dir)
    service = ColorService(colorizer, model_concurrency)
    local_user = _local_user(database) if single_user else None
    templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")

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
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.state.database, app.state.store, app.state.service = database, store, service

    # Who is asking ----------------------------------------------------------------------------------------------

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = auth.new_secret()
        return request.session["csrf"]

    def authenticate(request: Request) -> tuple[User | None, str]:
        """(user, how): how is "bearer", "session", "single" or "none"."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            user = database.user_by_api_token(auth.digest(header[7:].strip()))
            if user is None:
                raise ApiError(401, "The API token is not valid; create a new one on the account page.")
            return user, "bearer"
        if single_user:
            return local_user, "single"
        session_id = request.session.get("sid")
        user = database.session_user(auth.digest(session_id)) if session_id else None
        return user, "session" if user else "none"

    def check_csrf(request: Request, how: str, form_token: str | None = None) -> None:
        if how == "bearer" or request.method not in _STATE_CHANGING:
            return
        given = form_token or request.headers.get("x-csrf-token")
        if auth.same_secret(given, request.session.get("csrf")):
            return
        # A script on this machine in single-user mode: no cookie and no Origin, so no browser sent it.
        if how == "single" and "cookie" not in request.headers and "origin" not in request.headers:
            return
        raise ApiError(
            403,
            "The form has expired or did not come from this site (CSRF check); reload the page.",
        )

    def api_user(request: Request, form_token: str | None = None) -> User:
        user, how = authenticate(request)
        if user is None:
            raise ApiError(401, "Log in first, or send 'Authorization: Bearer <token>' with your API token.")
        check_csrf(request, how, form_token)
        return user

    def page_user(request: Request) -> User | None:
        try:
            return authenticate(request)[0]
        except ApiError:  # A bad bearer token on a page: the page is for browsers, they have none.
            return None

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = context.pop("user", None) or page_user(request)
        return templates.TemplateResponse(
            request,
            name,
            {
                "user": user,
                "single_user": single_user,
                "csrf_token": csrf_token(request),
                "model_description": colorizer.description or type(colorizer.model).__name__,
                **context,
            },
            status_code=status,
        )

    def login_redirect() -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    def owned_image(image_id: str, user: User) -> ImageRecord:
        record = database.image(image_id, user.id) if IMAGE_ID.match(image_id) else None
        if record is None:
            raise ApiError(404, "No such image.")
        return record

    # Errors ----------------------------------------------------------------------------------------------------

    def error_response(request: Request, status: int, message: str, headers=None) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/healthz":
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return render(request, "error.html", status=status, message=message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        return error_response(request, error.status, error.message, error.headers)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, error: UploadError) -> Response:
        return error_response(request, error.status, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = {404: "Not found."}.get(error.status_code, str(error.detail))
        return error_response(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return error_response(request, 400, f"Bad request: {problems}")

    # Accounts --------------------------------------------------------------------------------------------------

    async def _credentials(request: Request):
        """The sign-up / log-in form (CSRF-checked), its normalised username and its password."""
        form = await _small_form(request)
        check_csrf(request, "session", form.get("csrf_token"))
        username = auth.normalize_username(str(form.get("username", "")))
        return form, username, str(form.get("password", ""))

    @app.get("/signup", response_class=HTMLResponse, include_in_schema=False)
    def signup_page(request: Request):
        if single_user:
            return RedirectResponse("/", status_code=303)
        return render(request, "signup.html")

    @app.post("/signup", include_in_schema=False)
    async def signup(request: Request):
        if single_user:
            return RedirectResponse("/", status_code=303)
        form, username, password = await _credentials(request)
        problem = auth.signup_problem(username, password)
        if problem is None and password != form.get("password2", password):
            problem = "The two passwords differ."
        if problem is None:
            password_hash = await anyio.to_thread.run_sync(auth.hash_password, password)
            user = database.create_user(username, password_hash)
            if user is None:
                problem = f"The username {username!r} is taken; choose another."
        if problem:
            return render(request, "signup.html", status=400, error=problem, username=username)
        _start_session(request, user)
        return RedirectResponse("/", status_code=303)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request):
        if single_user or page_user(request):
            return RedirectResponse("/", status_code=303)
        return render(request, "login.html")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        if single_user:
            return RedirectResponse("/", status_code=303)
        form, username, password = await _credentials(request)
        ip = request.client.host if request.client else "?"
        failures = database.recent_login_failures(username, ip, auth.FAILURE_WINDOW_S)
        wait = auth.throttle_wait_s(failures, time.time())
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return render(
                request,
                "login.html",
                status=429,
                error=f"Too many failed log-ins for this account from your address; try again in about "
                f"{minutes} minute{'s' if minutes > 1 else ''}.",
                username=username,
            )
        found = database.user_by_name(username)
        ok = await anyio.to_thread.run_sync(auth.check_login, password, None if found is None else found[1])
        if not ok:
            database.record_login_failure(username, ip)
            return render(
                request,
                "login.html",
                status=401,
                error="Wrong username or password.",
                username=username,
            )
        database.clear_login_failures(username, ip)
        _start_session(request, found[0])
        return RedirectResponse("/", status_code=303)

    def _start_session(request: Request, user: User) -> None:
        # A fresh session id and CSRF token at every log-in (no session fixation).
        old = request.session.get("sid")
        if old:
            database.delete_session(auth.digest(old))
        request.session.clear()
        session_id = auth.new_secret()
        database.create_session(auth.digest(session_id), user.id, auth.SESSION_LIFETIME_S)
        request.session.update({"sid": session_id, "csrf": auth.new_secret()})

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request):
        form = await _small_form(request)
        check_csrf(request, "session", form.get("csrf_token"))
        session_id = request.session.get("sid")
        if session_id:
            database.delete_session(auth.digest(session_id))
        request.session.clear()
        return login_redirect()

    @app.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account_page(request: Request):
        user = page_user(request)
        if user is None:
            return login_redirect()
        return render(request, "account.html", has_token=database.has_api_token(user.id))

    @app.post("/account/token", include_in_schema=False)
    async def new_token(request: Request):
        form = await _small_form(request)
        user = api_user(request, form.get("csrf_token"))
        revoke = form.get("action") == "revoke"
        token = None if revoke else auth.new_api_token()
        database.set_api_token(user.id, None if revoke else auth.digest(token))
        return render(request, "account.html", has_token=not revoke, new_token=token, user=user)

    # Pages -----------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def colorize_page(request: Request):
        if page_user(request) is None:
            return login_redirect()
        return render(
            request,
            "colorize.html",
            max_upload_mb=max_upload_mb,
            max_megapixels=max_pixels / 1e6,
        )

    @app.get("/history", response_class=HTMLResponse, include_in_schema=False)
    def history_page(request: Request):
        user = page_user(request)
        if user is None:
            return login_redirect()
        return render(request, "history.html", images=database.history(user.id))

    @app.get("/images/{image_id}", response_class=HTMLResponse, include_in_schema=False)
    def image_page(request: Request, image_id: str):
        user = page_user(request)
        if user is None:
            return login_redirect()
        return render(
            request,
            "image.html",
            image=owned_image(image_id, user),
            temperature_range=(MIN_TEMPERATURE, MAX_TEMPERATURE),
            default_temperature=service.default_temperature,
            takes_hints=service.takes_hints,
            max_hints=serve.MAX_HINTS,
        )

    @app.get("/images/{image_id}/{kind}.{suffix}", include_in_schema=False)
    def image_file(request: Request, image_id: str, kind: str, suffix: str, download: bool = False):
        user = page_user(request)
        if user is None:
            raise ApiError(404, "No such image.")
        record = owned_image(image_id, user)
        if kind not in ("input", "gray", "color", "thumb") or suffix not in ("png", "jpg"):
            raise ApiError(404, "No such image.")
        return _image_file(record, kind, "JPEG" if suffix == "jpg" else "PNG", download)

    def _image_file(record: ImageRecord, kind: str, image_format: str, download: bool) -> Response:
        path = store.path(record.id, kind)
        if not path.is_file():
            raise ApiError(404, "No such image.")
        suffix = "jpg" if image_format == "JPEG" else "png"
        headers = {"Cache-Control": "private, no-cache"}
        if download:
            name = download_name(record.name, suffix)
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        if path.suffix == f".{suffix}":
            return FileResponse(path, headers=headers, media_type=f"image/{_mime(suffix)}")
        from PIL import Image

        with Image.open(path) as image:
            data = encode(np.asarray(image.convert("RGB")), image_format, quality=95)
        return Response(data, media_type=f"image/{_mime(suffix)}", headers=headers)

    @app.post("/images/{image_id}/delete", include_in_schema=False)
    async def delete_image_form(request: Request, image_id: str):
        form = await _small_form(request)
        user = api_user(request, form.get("csrf_token"))
        _delete(owned_image(image_id, user))
        return RedirectResponse("/history", status_code=303)

    def _delete(record: ImageRecord) -> None:
        database.delete_image(record.id, record.user_id)
        store.delete(record.id)

    # API -------------------------------------------------------------------------------------------------------

    @app.get("/healthz", tags=["api"])
    def healthz() -> dict[str, Any]:
        """Liveness: the model is loaded and the database answers."""
        return {
            "ok": True,
            "model": type(colorizer.model).__name__,
            "description": colorizer.description,
            "images": database.image_count(),
        }

    @app.post(
        "/api/colorize",
        tags=["api"],
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}},
                "description": "The colorization, exactly the input's size; headers X-Image-Id and Location "
                "name the new history item.",
            },
            400: {"description": '{"error": "..."}: not an image, bad option, bad hints'},
            401: {"description": '{"error": "..."}: not logged in / bad token'},
            413: {"description": '{"error": "..."}: over --max-upload-mb or --max-pixels'},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "a JPEG, PNG, WebP, BMP or TIFF photo (colour or gray)",
                                },
                                "temperature": {
                                    "type": "number",
                                    "minimum": MIN_TEMPERATURE,
                                    "maximum": MAX_TEMPERATURE,
                                    "description": "ECCV16 only: annealed-mean temperature (default 0.38)",
                                },
                                "hints": HINTS_SCHEMA,
                            },
                        }
                    }
                },
            }
        },
    )
    async def api_colorize(request: Request) -> Response:
        """Colorizes one photo and adds it to the user's history. Any size up to the server's limits; the model
        sees a resized copy and its colour is recombined with the photo's full-resolution lightness."""
        user, how = authenticate(request)
        if user is None:
            raise ApiError(401, "Log in first, or send 'Authorization: Bearer <token>' with your API token.")
        upload, fields = await _read_upload(request, settings.max_upload_bytes)
        check_csrf(request, how, fields.get("csrf_token"))
        temperature = _temperature(fields.get("temperature"), service)
        hints = _hint_points(fields.get("hints"), service)
        rgb = await anyio.to_thread.run_sync(decode_upload, upload[1], settings.max_pixels)
        _check_hints_inside(hints, rgb)
        colorized, gray = await service.colorize(rgb, temperature, hints)
        record = ImageRecord(
            id=store.new_id(),
            user_id=user.id,
            name=display_name(upload[0]),
            width=rgb.shape[1],
            height=rgb.shape[0],
            was_color=is_color(rgb),
            temperature=temperature if temperature is not None else service.default_temperature,
            created=time.time(),
            hints=hints or None,
        )
        png = await anyio.to_thread.run_sync(functools.partial(_store_new, record, rgb, gray, colorized))
        return Response(
            png,
            media_type="image/png",
            headers={"X-Image-Id": record.id, "Location": f"/api/images/{record.id}"},
        )

    def _store_new(record: ImageRecord, rgb: np.ndarray, gray: np.ndarray, colorized: np.ndarray) -> bytes:
        png = encode(colorized)
        store.write(
            record.id,
            {
                "input": encode(rgb),
                "gray": encode(gray),
                "color": png,
                "thumb": thumbnail(colorized),
            },
        )
        try:
            database.add_image(record)
        except Exception:
            store.delete(record.id)
            raise
        return png

    @app.post(
        "/api/images/{image_id}/recolor",
        tags=["api"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "temperature": {
                                    "type": "number",
                                    "minimum": MIN_TEMPERATURE,
                                    "maximum": MAX_TEMPERATURE,
                                    "description": "ECCV16 only: annealed-mean temperature",
                                },
                                "hints": {**HINTS_SCHEMA, "description": HINTS_SCHEMA["description"] + "; [] for none"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def api_recolor(request: Request, image_id: str) -> Response:
        """Re-colours a history item in place from its stored photo: at another annealed-mean temperature (ECCV16,
        form field `temperature`) or with the user's colour points (SIGGRAPH17, form field `hints`, as for
        /api/colorize; `[]` goes back to the automatic colours). The item keeps its id; its colorization, thumbnail
        and saved points are replaced."""
        form = await _small_form(request)
        user = api_user(request, form.get("csrf_token"))
        record = owned_image(image_id, user)
        if not (service.has_temperature or service.takes_hints):
            raise ApiError(
                400,
                "This model has nothing to re-colour with: only ECCV16 has a temperature and only SIGGRAPH17 "
                "takes colour hints.",
            )
        temperature = _temperature(form.get("temperature"), service)
        hints = _hint_points(form.get("hints"), service)
        if temperature is None and hints is None:
            field = "temperature" if service.has_temperature else "hints"
            raise ApiError(400, f"Send the form field {field!r}.")
        from PIL import Image

        with Image.open(store.path(record.id, "input")) as image:
            rgb = np.asarray(image.convert("RGB"))
        _check_hints_inside(hints, rgb)
        colorized, _ = await service.colorize(rgb, temperature, hints)
        png = encode(colorized)
        store.write(record.id, {"color": png, "thumb": thumbnail(colorized)})
        if temperature is not None:
            database.set_temperature(record.id, temperature)
        if hints is not None:
            database.set_hints(record.id, hints or None)
        return Response(png, media_type="image/png")

    @app.get("/api/history", tags=["api"])
    def api_history(request: Request) -> dict[str, list[dict[str, Any]]]:
        """The user's colorizations, newest first."""
        user = api_user(request)
        return {
            "images": [
                {
                    **dataclasses.asdict(record),
                    "url": f"/api/images/{record.id}",
                    "page": f"/images/{record.id}",
                }
                for record in database.history(user.id)
            ]
        }

    @app.get(
        "/api/images/{image_id}",
        tags=["api"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    )
    def api_image(request: Request, image_id: str, format: str = "png") -> Response:
        """One colorization of the user's history, as PNG (or `?format=jpeg`)."""
        user = api_user(request)
        if format not in ("png", "jpeg", "jpg"):
            raise ApiError(400, "format is png or jpeg.")
        return _image_file(owned_image(image_id, user), "color", "PNG" if format == "png" else "JPEG", False)

    @app.delete("/api/images/{image_id}", tags=["api"])
    def api_delete(request: Request, image_id: str) -> dict[str, str]:
        """Deletes a colorization: its files and its history row."""
        user = api_user(request)
        _delete(owned_image(image_id, user))
        return {"deleted": image_id}

    return app


def _mime(suffix: str) -> str:
    return "jpeg" if suffix == "jpg" else "png"


def _temperature(value: Any, service: ColorService) -> float | None:
    if value is None or value == "":
        return None
    if not service.has_temperature:
        raise ApiError(400, "This model has no temperature option (only ECCV16 has).")
    try:
        temperature = round(float(value), 2)
    except ValueError:
        raise ApiError(400, f"temperature must be a number, got {str(value)[:20]!r}.") from None
    if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
        raise ApiError(400, f"temperature must be in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}].")
    return temperature


def _hint_points(value: Any, service: ColorService) -> list[dict] | None:
    """The form field `hints` (a JSON list of points, see `colorjax.hints`) validated, or None when absent;
    ApiError 400 with the one-line reason otherwise. Whether the points lie inside the photo is checked once it is
    decoded (`_check_hints_inside`)."""
    if value is None or value == "":
        return None
    if not service.takes_hints:
        raise ApiError(400, "This model takes no colour hints (only SIGGRAPH17 does); drop the 'hints' field.")
    try:
        points = json.loads(value)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"The form field 'hints' is not valid JSON ({e.msg} at column {e.colno}); send {HINTS_EXAMPLE}."
        ) from None
    try:
        parse_hints(points, source="hints")
    except HintError as e:
        raise ApiError(400, str(e)) from None
    if len(points) > serve.MAX_HINTS:
        raise ApiError(400, f"Too many hints: {len(points)} points, at most {serve.MAX_HINTS} per photo.")
    return points


def _check_hints_inside(hints: list[dict] | None, rgb: np.ndarray) -> None:
    if hints:
        try:
            check_inside(hints, rgb.shape[:2], source="hints")
        except HintError as e:
            raise ApiError(400, str(e)) from None


async def _small_form(request: Request):
    """A form without files (log-in, delete, recolor): anything else is refused, never spooled to disk."""
    try:
        return await request.form(max_files=0, max_fields=20, max_part_size=64 * 1024)
    except MultiPartException as e:
        raise ApiError(400, f"Bad form: {e.message}") from e


async def _read_upload(request: Request, max_bytes: int) -> tuple[tuple[str, bytes], dict[str, str]]:
    """((file name, bytes) of the `image` field, other fields) from a multipart body of at most `max_bytes` of
    photo. The whole body stays in memory (it is bounded), so nothing of a refused upload touches the disk."""
    limit = max_bytes + _FORM_OVERHEAD
    too_large = ApiError(
        413,
        f"The upload is larger than {max_bytes / 1024 / 1024:g} MB (--max-upload-mb); send a smaller photo.",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "Send the photo as multipart/form-data in the field 'image'.")

    async def bounded() -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large
            yield chunk

    parser = MultiPartParser(request.headers, bounded(), max_files=1, max_fields=20)
    parser.spool_max_size = limit  # Keep the file part in memory: no temporary file on disk.
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ApiError(400, f"Bad multipart body: {e.message}") from e
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "Send the photo in the multipart field 'image'.")
    data = await upload.read()
    await upload.close()
    if len(data) > max_bytes:
        raise too_large
    if not data:
        raise ApiError(400, "The uploaded file is empty.")
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return (upload.filename or "", data), fields


def _local_user(database: Database) -> User:
    found = database.user_by_name(LOCAL_USERNAME)
    if found:
        return found[0]
    # No password can match "!" (not a scrypt hash): the local user never logs in, --single-user only.
    return database.create_user(LOCAL_USERNAME, "!") or database.user_by_name(LOCAL_USERNAME)[0]


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
