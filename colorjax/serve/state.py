"""What the app's routers share: its settings, the model's worker pool, and `AppState`, which the routes reach
through the FastAPI dependency `State` (it lives on `app.state.colorjax`).

`AppState` also answers who is asking (session cookie, bearer token or the single local user), checks CSRF
tokens and renders the server-side pages; `ApiError` is the one way a route refuses a request (JSON on /api/...,
an error page elsewhere: the handlers in `app`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.formparsers import MultiPartException

from colorjax import serve
from colorjax.inference.colorizer import Colorizer, InferenceError
from colorjax.serve import auth
from colorjax.serve.db import Database, ImageRecord, User
from colorjax.serve.jobs import Job, JobBoard
from colorjax.serve.storage import IMAGE_ID, ImageStore, previews

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 1.0
ONE_MODEL = "model"  # The name of the one model of an app made with a single Colorizer.
_STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the app refuses: JSON {"error": message} on /api/..., an error page elsewhere."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclasses.dataclass
class Settings:
    data_dir: Path
    single_user: bool
    max_upload_mb: float
    max_pixels: int
    max_queued_per_user: int
    undo_s: float  # How long a deleted item can be restored (seconds).

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


T = TypeVar("T")


ModelSource = Colorizer | Callable[[], Colorizer]  # A loaded model, or what loads it at its first use.


class ColorService:
    """The server's models behind a bounded worker pool. `models` maps the names users pick from to a loaded
    `Colorizer` or a function that loads one: each is loaded at its first use (`model`, in a worker), so a model
    nobody asks for costs nothing; the first name is the default. ECCV16 colorizers per temperature are built once
    and kept; a hint-capable model (SIGGRAPH17) also takes the user's colour points (`colorjax.hints`).

    A photo's whole job (decode, model, encode, store: `run`) holds one of the `concurrency` workers, so at most
    that many full-size photos are in memory however many requests arrive; the rest wait as their encoded bytes
    (bounded by --max-upload-mb), at most `max_queued_per_user` per user (`queued`). No image work runs on the
    event loop, so every other request is answered while photos are coloured."""

    def __init__(
        self,
        models: Colorizer | Mapping[str, ModelSource],
        concurrency: int,
        max_queued_per_user: int = serve.MAX_QUEUED_PER_USER,
    ):
        if not isinstance(models, Mapping):
            models = {ONE_MODEL: models}
        if not models:
            raise ValueError("The app needs at least one model.")
        self.names = list(models)
        self.default = self.names[0]
        self._sources = dict(models)
        self._loaded = {name: m for name, m in models.items() if hasattr(m, "predict")}
        self._load_locks = {name: threading.Lock() for name in models}
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.max_queued_per_user = max_queued_per_user
        self._queued: collections.Counter[int] = collections.Counter()  # Touched on the event loop only.
        self._by_temperature: dict[tuple[str, float], Colorizer] = {}
        self._lock = threading.Lock()

    def model_choice(self, value: Any) -> str:
        """The form field `model` checked against the server's names (absent: the default); ApiError 400 else."""
        if value is None or value == "":
            return self.default
        if value not in self._sources:
            raise ApiError(400, f"No model {str(value)[:40]!r} here; this server has {', '.join(self.names)}.")
        return value

    def made_by(self, model: str | None) -> str:
        """The name of the model that coloured an item whose recorded model is `model`: an item made by a model this
        server no longer has (started with other --weights, or made before models were recorded) counts as the
        default's."""
        return model if model in self.names else self.default

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def model(self, name: str | None = None) -> Colorizer:
        """The colorizer `name` (the default for None), loaded at its first use: call it in a worker (`run`) or a
        page handler that runs in a thread, never on the event loop."""
        name = name or self.default
        if name not in self._loaded:
            with self._load_locks[name]:
                if name not in self._loaded:
                    log.info("Loading the model %s (its first use).", name)
                    self._loaded[name] = self._sources[name]()
        return self._loaded[name]

    @property
    def colorizer(self) -> Colorizer:
        """The default model (loaded if it was not)."""
        return self.model()

    def describe(self, name: str | None = None, full: bool = True) -> str:
        """What the pages say about a model without loading it: its description (which names the run's folder)
        when `full`, else its class name; a model not loaded yet is its name."""
        loaded = self._loaded.get(name or self.default)
        if loaded is None:
            return name or self.default
        return (loaded.description if full else None) or type(loaded.model).__name__

    def has_temperature(self, name: str | None = None) -> bool:
        return hasattr(self.model(name).model, "temperature")

    def takes_hints(self, name: str | None = None) -> bool:
        try:
            self.model(name).check_takes_hints()
        except InferenceError:
            return False
        return True

    def default_temperature(self, name: str | None = None) -> float | None:
        return float(self.model(name).model.temperature) if self.has_temperature(name) else None

    def _colorizer_at(self, name: str | None, temperature: float | None) -> Colorizer:
        name = name or self.default
        if temperature is None or temperature == self.default_temperature(name):
            return self.model(name)
        with self._lock:
            if (name, temperature) not in self._by_temperature:
                if len(self._by_temperature) >= 4:  # Each one holds its own compiled programs.
                    self._by_temperature.pop(next(iter(self._by_temperature)))
                self._by_temperature[name, temperature] = self.model(name).with_temperature(temperature)
            return self._by_temperature[name, temperature]

    def predict(
        self,
        rgb: np.ndarray,
        temperature: float | None = None,
        hints: list[dict] | None = None,
        model: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """(colorization uint8 (H, W, 3), lightness L float32 (H, W, 1), and for a photo larger than a screen its
        L and colours at preview size (`storage.previews`), else None) of the photo, by `model` (the default for
        None); call it inside a job (`run`). `hints` are colour points already checked by `api._hint_points` and
        `api._check_hints_inside`. The gray version is made from this L, the lightness the model's pipeline
        computed (`storage.gray_files`), not from a second Lab conversion."""
        colorizer = self._colorizer_at(model, temperature)
        # No points is the automatic mode: the model's plain program, not a second one fed empty hint maps.
        prediction = colorizer.predict(rgb, hints=hints or None)
        small = previews(prediction.L, lambda L: colorizer.recombine(L, prediction.chroma))
        return prediction.rgb, prediction.L, small

    def reserve(self, user_id: int) -> None:
        """Counts a request or job of `user_id` that will run in the pool, from before its upload is read until it
        ends (`release`); ApiError 429 when the user already has `max_queued_per_user` of them. Event loop only."""
        if self._queued[user_id] >= self.max_queued_per_user:
            raise ApiError(
                429,
                f"You have {self._queued[user_id]} photos waiting or being coloured already; send the next one "
                "when one of them is done.",
                {"Retry-After": "5"},
            )
        self._queued[user_id] += 1

    def release(self, user_id: int) -> None:
        self._queued[user_id] -= 1
        if not self._queued[user_id]:
            del self._queued[user_id]

    @contextlib.asynccontextmanager
    async def queued(self, user_id: int) -> AsyncIterator[None]:
        """`reserve` for the span of a request."""
        self.reserve(user_id)
        try:
            yield
        finally:
            self.release(user_id)

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """`job(*args)` in a worker thread, at most `concurrency` jobs at once, off the event loop."""
        return await anyio.to_thread.run_sync(job, *args, limiter=self.limiter)


@dataclasses.dataclass
class AppState:
    """Everything the routes share: one per app, built by `create_app`."""

    settings: Settings
    database: Database
    store: ImageStore
    service: ColorService
    jobs: JobBoard
    templates: Jinja2Templates
    local_user: User | None  # The one user of --single-user mode, else None.
    # The one pending timer that removes deleted items once their undo window is over (`_purge_later`).
    _purge_timer: threading.Timer | None = dataclasses.field(default=None, init=False, repr=False)
    _purge_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False, repr=False)

    # Who is asking ----------------------------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = auth.new_secret()
        return request.session["csrf"]

    def authenticate(self, request: Request) -> tuple[User | None, str]:
        """(user, how): how is "bearer", "session", "single" or "none"."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            user = self.database.user_by_api_token(auth.digest(header[7:].strip()))
            if user is None:
                raise ApiError(401, "The API token is not valid; create a new one on the account page.")
            return user, "bearer"
        if self.settings.single_user:
            return self.local_user, "single"
        session_id = request.session.get("sid")
        user = self.database.session_user(auth.digest(session_id)) if session_id else None
        return user, "session" if user else "none"

    def check_csrf(self, request: Request, how: str, form_token: str | None = None) -> None:
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

    def api_user(self, request: Request, form_token: str | None = None) -> User:
        user, how = self.authenticate(request)
        if user is None:
            raise ApiError(401, "Log in first, or send 'Authorization: Bearer <token>' with your API token.")
        self.check_csrf(request, how, form_token)
        return user

    def page_user(self, request: Request) -> User | None:
        try:
            return self.authenticate(request)[0]
        except ApiError:  # A bad bearer token on a page: the page is for browsers, they have none.
            return None

    def owned_job(self, job_id: str, user: User) -> Job:
        job = self.jobs.get(job_id, user.id)
        if job is None:
            raise ApiError(404, "No such job.")
        return job

    def owned_image(self, image_id: str, user: User) -> ImageRecord:
        record = self.database.image(image_id, user.id) if IMAGE_ID.match(image_id) else None
        if record is None:
            raise ApiError(404, "No such image.")
        return record

    # Deleting ---------------------------------------------------------------------------------------------------

    def delete_image(self, record: ImageRecord) -> None:
        """Deletes an item for the user at once (history, counts, files, re-colours: it is gone) but keeps its row
        and files for `settings.undo_s` seconds, so `restore_image` can bring it back; a timer then removes both
        (`purge_deleted`), and if the server stops first, the next start does."""
        if self.database.mark_deleted(record.id, record.user_id, time.time()):
            self._purge_later(self.settings.undo_s)

    def _purge_later(self, delay_s: float) -> None:
        """Runs `purge_deleted` in `delay_s` seconds, unless a timer is pending already: deletes come in time order,
        so a pending timer is due first, and when it has run it sets the next one for the oldest deleted item left.
        At most one waiting thread however many items are deleted."""
        with self._purge_lock:
            if self._purge_timer is not None:
                return
            self._purge_timer = threading.Timer(delay_s + 0.1, self._purge_due)
            self._purge_timer.daemon = True
            self._purge_timer.start()

    def _purge_due(self) -> None:
        with self._purge_lock:
            self._purge_timer = None  # A delete from now on sets a timer of its own.
        self.purge_deleted()
        try:
            oldest = self.database.oldest_deletion()
        except sqlite3.ProgrammingError:  # The app's database was closed.
            return
        if oldest is not None:
            self._purge_later(max(0.0, oldest + self.settings.undo_s - time.time()))

    def restore_image(self, image_id: str, user: User) -> bool:
        """Undoes `delete_image` while its row is there; False when it is not (never deleted, or removed)."""
        return IMAGE_ID.match(image_id) is not None and self.database.restore_image(image_id, user.id)

    def purge_deleted(self, now: float | None = None) -> int:
        """Removes the rows, then the files, of the items deleted more than `settings.undo_s` ago (a crash between
        the two leaves a folder without a row: the sweep at start removes it). Returns how many went."""
        cutoff = (time.time() if now is None else now) - self.settings.undo_s
        try:
            gone = self.database.purge_deleted(cutoff)
        except sqlite3.ProgrammingError:  # The app's database was closed (a test's app, a timer after shutdown).
            return 0
        for image_id in gone:
            self.store.delete(image_id)
        return len(gone)

    def delete_all_images(self, user: User) -> int:
        """Removes every item of the user at once, rows then files, deleted ones included (no undo: the page asks
        first). Returns how many there were."""
        gone = self.database.delete_user_images(user.id)
        for image_id in gone:
            self.store.delete(image_id)
        return len(gone)

    # Answers ----------------------------------------------------------------------------------------------------

    def model_name(self, user: User | None) -> str:
        """What the pages and /healthz say about the models: a model's description (which names the run's folder)
        to a user, its class name only to an anonymous visitor; a model not loaded yet by its name."""
        service = self.service
        return ", ".join(service.describe(name, full=user is not None) for name in service.names)

    def render(
        self, request: Request, name: str, status: int = 200, headers=None, new_session: bool = True, **context: Any
    ) -> HTMLResponse:
        """A page. `new_session=False` (the error page): a visitor without a session gets none, so the answer
        sets no cookie; a cross-site request arrives without the user's cookie (SameSite), and a fresh cookie in
        its answer would replace theirs and log them out."""
        user = context.pop("user", None) or self.page_user(request)
        csrf_token = self.csrf_token(request) if new_session else request.session.get("csrf", "")
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "user": user,
                "single_user": self.settings.single_user,
                "csrf_token": csrf_token,
                "model_description": self.model_name(user),
                **context,
            },
            status_code=status,
            headers=headers,
        )

    def error_response(self, request: Request, status: int, message: str, headers=None) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/healthz":
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return self.render(request, "error.html", status=status, headers=headers, new_session=False, message=message)


async def app_state(request: Request) -> AppState:
    return request.app.state.colorjax


State = Annotated[AppState, Depends(app_state)]


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


async def small_form(request: Request):
    """A form without files (log-in, delete, recolor): anything else is refused, never spooled to disk."""
    try:
        return await request.form(max_files=0, max_fields=20, max_part_size=64 * 1024)
    except MultiPartException as e:
        raise ApiError(400, f"Bad form: {e.message}") from e
