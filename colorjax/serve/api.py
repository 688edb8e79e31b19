"""The JSON API, documented at /docs: /healthz, colorize (at once or as jobs), recolor, history, one image (get,
delete, restore within the undo window) and one job (get, cancel).

Errors are `ApiError`s (JSON `{"error": "..."}`); the options a photo is coloured with (`temperature` for ECCV16,
`hints` for SIGGRAPH17) are validated here, and the upload is read with a bound on its size before anything of it
is decoded. `image_response` also serves the pages' image files.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from colorjax import serve
from colorjax.hints import HintError, check_inside, parse_hints
from colorjax.serve.db import ImageRecord
from colorjax.serve.jobs import Job, JobCancelled
from colorjax.serve.state import MAX_TEMPERATURE, MIN_TEMPERATURE, ApiError, AppState, ColorService, State, small_form
from colorjax.serve.storage import (
    STAND_INS,
    colour_files,
    decode_upload,
    display_name,
    download_name,
    encode,
    gray_files,
    gray_picture_of,
    input_files,
    input_preview,
    is_color,
    is_gray,
    read_input,
)

_FORM_OVERHEAD = 64 * 1024  # Multipart boundaries, headers and option fields on top of the photo itself.
HINTS_EXAMPLE = '[{"x": 120, "y": 40, "color": "#3a7bd5"}]'
HINTS_SCHEMA = {
    "type": "string",
    "description": f"SIGGRAPH17 only: colour points as a JSON list, e.g. {HINTS_EXAMPLE}: x, y in the photo's "
    "full-resolution pixels (from the top left), the colour as #rrggbb (or 'ab': [a, b] in CIE Lab), optionally "
    f"an odd patch side 'size' (default 1); at most {serve.MAX_HINTS} points",
}
_COLORIZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "The colorization, exactly the input's size; headers X-Image-Id and Location "
        "name the new history item.",
    },
    400: {"description": '{"error": "..."}: not an image, bad option, bad hints'},
    401: {"description": '{"error": "..."}: not logged in / bad token'},
    413: {"description": '{"error": "..."}: over --max-upload-mb or --max-pixels'},
    429: {
        "description": f'{{"error": "..."}}: the user already has {serve.MAX_QUEUED_PER_USER} photos waiting or '
        "being coloured"
    },
}
_COLORIZE_BODY = {
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
}
_RECOLOR_BODY = {
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
}

router = APIRouter(tags=["api"])


@router.get("/healthz")
async def healthz(request: Request, state: State) -> dict[str, Any]:
    """Liveness: the model is loaded and the app answers (never waiting for a worker: it runs on the event loop).
    Anonymous visitors get `ok` and the model's name only; a user also gets the model's description (which names
    the run's folder) and the count of their own images."""
    user = state.page_user(request)
    health: dict[str, Any] = {"ok": True, "model": state.model_name(None)}
    if user is not None:
        health.update(
            description=state.model_name(user),
            models=state.service.names,
            loaded=[name for name in state.service.names if state.service.is_loaded(name)],
            images=state.database.image_count(user.id),
        )
    return health


@router.post("/api/colorize", response_class=Response, responses=_COLORIZE_RESPONSES, openapi_extra=_COLORIZE_BODY)
async def api_colorize(request: Request, state: State) -> Response:
    """Colorizes one photo and adds it to the user's history, answering when it is done (for scripts; the pages
    use /api/jobs). Any size up to the server's limits; the model sees a resized copy and its colour is recombined
    with the photo's full-resolution lightness. A user has at most a few photos waiting at once (429 beyond)."""
    job = await _submit_upload(request, state, keep_result=True)
    await job.done.wait()
    if job.status == "cancelled":
        raise ApiError(409, "The job was cancelled (DELETE /api/jobs/{id}) before it was done.")
    if job.status == "failed":
        error, job.exception = job.exception, None
        raise error
    png, job.result = job.result, None
    return Response(
        png,
        media_type="image/png",
        headers={"X-Image-Id": job.image_id, "Location": f"/api/images/{job.image_id}", "X-Job-Id": job.id},
    )


@router.post(
    "/api/jobs",
    status_code=202,
    responses={k: v for k, v in _COLORIZE_RESPONSES.items() if k != 200},
    openapi_extra=_COLORIZE_BODY,
)
async def api_submit_job(request: Request, state: State) -> JSONResponse:
    """Queues one photo to be coloured and answers at once (202) with its job: follow it with GET /api/jobs/{id}
    until its status is done (its `image_id` is then the new history item), failed (`error` says why) or
    cancelled. Send several photos as several jobs; a user has at most a few waiting or running (429 beyond)."""
    job = await _submit_upload(request, state)
    return JSONResponse(state.jobs.describe(job), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})


@router.get("/api/jobs")
def api_jobs(request: Request, state: State) -> dict[str, list[dict[str, Any]]]:
    """The user's jobs of the last hour (and those not finished), oldest first."""
    user = state.api_user(request)
    return {"jobs": [state.jobs.describe(job) for job in state.jobs.of_user(user.id)]}


@router.get("/api/jobs/{job_id}")
def api_job(request: Request, job_id: str, state: State) -> dict[str, Any]:
    """Where a job stands: `status` (queued, running, cancelling, done, failed, cancelled), `position` (queued jobs
    ahead of it, anyone's), `elapsed_s` since it was sent, `estimate_s` (seconds until done, from the model's
    recent jobs; null before any ran), `image_id` and `page` once done, `error` once failed."""
    user = state.api_user(request)
    return state.jobs.describe(state.owned_job(job_id, user))


@router.delete("/api/jobs/{job_id}")
def api_cancel_job(request: Request, job_id: str, state: State) -> dict[str, Any]:
    """Cancels a job: a queued one leaves the queue at once; a running one cannot be stopped inside the model, so
    it says `cancelling` until its colouring ends and is then discarded (nothing reaches the history). A finished
    job is left as it is (delete its item with DELETE /api/images/{id})."""
    user = state.api_user(request)
    job = state.owned_job(job_id, user)
    state.jobs.cancel(job)
    return state.jobs.describe(job)


async def _submit_upload(request: Request, state: AppState, keep_result: bool = False) -> Job:
    """The upload of a colorize request, read and checked, as a queued job; the user's place in the queue is held
    from before the upload is read until the job ends."""
    user, how = state.authenticate(request)
    if user is None:
        raise ApiError(401, "Log in first, or send 'Authorization: Bearer <token>' with your API token.")
    service = state.service
    service.reserve(user.id)
    try:
        upload, fields = await _read_upload(request, state.settings.max_upload_bytes)
        state.check_csrf(request, how, fields.get("csrf_token"))
        model = service.model_choice(fields.get("model"))
        temperature = _temperature(fields.get("temperature"))
        hints = _hint_points(fields.get("hints"))
        if service.is_loaded(model):  # Else the job checks them once the model is loaded.
            _check_options(service, model, temperature, hints)
    except BaseException:
        service.release(user.id)
        raise
    return state.jobs.submit(
        user.id,
        display_name(upload[0]),
        model,
        functools.partial(_colorize_new, state, user.id, upload, model, temperature, hints),
        on_end=functools.partial(service.release, user.id),
        keep_result=keep_result,
    )


def _colorize_new(
    state: AppState,
    user_id: int,
    upload: tuple[str, bytes],
    model: str,
    temperature: float | None,
    hints: list[dict] | None,
    job: Job,
) -> tuple[ImageRecord, bytes]:
    """A new photo's job, in a worker (`JobBoard`): decode, colour, encode, store its files, then its row; a job
    cancelled meanwhile stops after the model and writes nothing (`JobCancelled`)."""
    service = state.service
    _check_options(service, model, temperature, hints)  # Loads the model at its first use.
    rgb = decode_upload(upload[1], state.settings.max_pixels)
    _check_hints_inside(hints, rgb)
    colorized, lightness, small = service.predict(rgb, temperature, hints, model)
    job.check()
    record = ImageRecord(
        id=state.store.new_id(),
        user_id=user_id,
        name=display_name(upload[0]),
        width=rgb.shape[1],
        height=rgb.shape[0],
        was_color=is_color(rgb),
        temperature=temperature if temperature is not None else service.default_temperature(model),
        created=time.time(),
        hints=hints or None,
        model=model,
    )
    small_L, small_colours = small or (None, None)
    colour = colour_files(colorized, small_colours)
    gray_upload = is_gray(rgb)  # Its own gray version: stored once, as the input.
    job.check()
    gray = gray_files(lightness, not gray_upload, small_L)
    state.store.write(record.id, {**input_files(upload[1]), **gray, **colour})
    try:
        committed = job.commit(lambda: state.database.add_image(record))
    except Exception:
        state.store.delete(record.id)
        raise
    if not committed:
        state.store.delete(record.id)
        raise JobCancelled
    return record, colour["color"]


@router.post(
    "/api/images/{image_id}/recolor",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    openapi_extra=_RECOLOR_BODY,
)
async def api_recolor(request: Request, image_id: str, state: State) -> Response:
    """Re-colours a history item in place from its stored photo: at another annealed-mean temperature (ECCV16,
    form field `temperature`), with the user's colour points (SIGGRAPH17, form field `hints`, as for
    /api/colorize; `[]` goes back to the automatic colours), or with another of the server's models (form field
    `model`; its points or temperature, if any, in the same form). The item keeps its id; its colorization,
    thumbnail, model and saved points are replaced. An item deleted while it was being re-coloured answers 404 and
    stays deleted."""
    form = await small_form(request)
    user = state.api_user(request, form.get("csrf_token"))
    record = state.owned_image(image_id, user)
    service = state.service
    model = service.model_choice(form.get("model") or service.made_by(record.model))
    temperature = _temperature(form.get("temperature"))
    hints = _hint_points(form.get("hints"))
    if temperature is None and hints is None and not form.get("model"):
        raise ApiError(400, "Send the form field 'temperature' (ECCV16), 'hints' (SIGGRAPH17) or 'model'.")
    async with service.queued(user.id):
        png = await service.run(_recolor, state, record, model, temperature, hints)
    if png is None:
        raise ApiError(404, "No such image.")
    return Response(png, media_type="image/png", headers={"X-Model": model})


def _recolor(
    state: AppState, record: ImageRecord, model: str, temperature: float | None, hints: list[dict] | None
) -> bytes | None:
    """A re-colour's job, in a worker: the stored photo, coloured again, replacing the item's colorization and
    thumbnail, then its row; None when the item was deleted meanwhile (nothing is written then; a delete in the
    instant between that check and the files' replacement leaves the new colours in the files of an item that Undo
    can bring back with its old row)."""
    service = state.service
    own = service.made_by(record.model)
    if model == own and not (service.has_temperature(model) or service.takes_hints(model)):
        raise ApiError(
            400,
            "This model has nothing to re-colour with: only ECCV16 has a temperature and only SIGGRAPH17 "
            "takes colour hints.",
        )
    _check_options(service, model, temperature, hints)
    try:
        rgb = read_input(state.store.path(record.id, "input"))
    except FileNotFoundError:
        return None
    _check_hints_inside(hints, rgb)
    colorized, _, small = service.predict(rgb, temperature, hints, model)
    colour = colour_files(colorized, None if small is None else small[1])
    if state.database.image(record.id, record.user_id) is None:
        return None  # Deleted meanwhile: its files stay as they were, for an Undo (and the store's own check below).
    previous_model = record.previous_model
    if model != own:  # Another model: the item's colours are kept to compare with.
        previous_model = own
        if not state.store.keep_previous(record.id):
            return None
    if not state.store.replace(record.id, colour):
        return None
    png = colour["color"]
    if temperature is None:
        temperature = service.default_temperature(model)
    kept = state.database.set_temperature(record.id, temperature)
    kept = state.database.set_hints(record.id, hints or None) and kept
    kept = state.database.set_model(record.id, model, previous_model) and kept
    return png if kept else None


@router.get("/api/history")
def api_history(request: Request, state: State) -> dict[str, list[dict[str, Any]]]:
    """The user's colorizations, newest first."""
    user = state.api_user(request)
    return {
        "images": [
            {
                **dataclasses.asdict(record),
                "url": f"/api/images/{record.id}",
                "page": f"/images/{record.id}",
            }
            for record in state.database.history(user.id)
        ]
    }


@router.get(
    "/api/images/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
)
async def api_image(request: Request, image_id: str, state: State, format: str = "png") -> Response:
    """One colorization of the user's history, as PNG (or `?format=jpeg`)."""
    user = state.api_user(request)
    if format not in ("png", "jpeg", "jpg"):
        raise ApiError(400, "format is png or jpeg.")
    record = state.owned_image(image_id, user)
    return await image_response(state, record, "color", "PNG" if format == "png" else "JPEG")


@router.delete("/api/images/{image_id}")
def api_delete(request: Request, image_id: str, state: State) -> dict[str, Any]:
    """Deletes a colorization: it leaves the history at once (its id answers 404), and for `undo_s` seconds
    POST `undo` (/api/images/{id}/restore) brings it back; then its row and files are removed."""
    user = state.api_user(request)
    state.delete_image(state.owned_image(image_id, user))
    return {"deleted": image_id, "undo": f"/api/images/{image_id}/restore", "undo_s": state.settings.undo_s}


@router.post("/api/images/{image_id}/restore")
def api_restore(request: Request, image_id: str, state: State) -> dict[str, str]:
    """Undoes a delete within its `undo_s` seconds; 404 once the item is gone for good (or was never deleted)."""
    user = state.api_user(request)
    if not state.restore_image(image_id, user):
        raise ApiError(404, "No deleted image with this id; it can be restored only in the seconds after its delete.")
    return {"restored": image_id, "page": f"/images/{image_id}"}


# Shared with the pages ------------------------------------------------------------------------------------------


async def image_response(
    state: AppState, record: ImageRecord, kind: str, image_format: str, download: bool = False
) -> Response:
    """One image of `record` (a kind of `storage.SERVED_KINDS`) as PNG or JPEG; `download` names it as an
    attachment. A stored file in the asked format is sent as it is. The rest is made as a job of the model's pool
    (`ColorService.run`: a full-size photo in memory, so no more of them at once than the photos being coloured):
    a file in the other format re-encoded, and whatever is served from the stored upload (`_from_input`), which is
    never sent as it is: it keeps the uploader's metadata (EXIF, GPS), and its format may be one a browser cannot
    show (TIFF, 16-bit PNG)."""
    source = "input" if kind == "input_preview" else kind
    path = state.store.path(record.id, source)
    while not path.is_file() and source in STAND_INS:
        source = STAND_INS[source]
        path = state.store.path(record.id, source)
    if not path.is_file():
        raise ApiError(404, "No such image.")
    suffix = "jpg" if image_format == "JPEG" else "png"
    headers = {"Cache-Control": "private, no-cache"}
    if download:
        name = download_name(record.name, suffix)
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if source == "input":
        data = await state.service.run(_from_input, state, record, path, kind, image_format)
    elif path.suffix == f".{suffix}":
        return FileResponse(path, headers=headers, media_type=f"image/{_mime(suffix)}")
    else:
        data = await state.service.run(_reencode, path, image_format)
    if data is None:
        raise ApiError(404, "No such image.")
    return Response(data, media_type=f"image/{_mime(suffix)}", headers=headers)


def _reencode(path, image_format: str) -> bytes | None:
    """The image at `path` (one of the app's own files) in `image_format`; None when it was deleted meanwhile."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return encode(np.asarray(image.convert("RGB")), image_format, quality=95)
    except FileNotFoundError:
        return None


def _from_input(state: AppState, record: ImageRecord, path, kind: str, image_format: str) -> bytes | None:
    """An image made from the item's stored upload at `path` (`storage.read_input`): the upload itself ("input"),
    its preview ("input_preview"), or the full-size gray of a photo larger than a screen or of a gray upload, by
    the item's model's pipeline (`storage.gray_picture_of`); None when the item was deleted meanwhile."""
    try:
        if kind == "input_preview":
            return encode(input_preview(path), image_format, quality=90)
        rgb = read_input(path)
    except FileNotFoundError:
        return None
    if kind == "input":
        return encode(rgb, image_format, quality=95)
    lightness = state.service.model(state.service.made_by(record.model)).lightness
    return encode(gray_picture_of(rgb, lightness), image_format, quality=95)


# Checking the request --------------------------------------------------------------------------------------------


def _mime(suffix: str) -> str:
    return "jpeg" if suffix == "jpg" else "png"


def _temperature(value: Any) -> float | None:
    """The form field `temperature` parsed and range-checked, or None when absent (which models take one is
    `_check_options`'s question)."""
    if value is None or value == "":
        return None
    try:
        temperature = round(float(value), 2)
    except ValueError:
        raise ApiError(400, f"temperature must be a number, got {str(value)[:20]!r}.") from None
    if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
        raise ApiError(400, f"temperature must be in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}].")
    return temperature


def _hint_points(value: Any) -> list[dict] | None:
    """The form field `hints` (a JSON list of points, see `colorjax.hints`) validated, or None when absent;
    ApiError 400 with the one-line reason otherwise. Whether the model takes them is `_check_options`'s question,
    whether they lie inside the photo `_check_hints_inside`'s once it is decoded."""
    if value is None or value == "":
        return None
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


def _check_options(service: ColorService, model: str, temperature: float | None, hints: list[dict] | None) -> None:
    """ApiError 400 when `model` takes no temperature or no colour points and was sent some (`[]`, no points, is
    fine for any model). Loads the model at its first use: call it in a worker, or where it is loaded."""
    if temperature is not None and not service.has_temperature(model):
        raise ApiError(400, f"The model {model} has no temperature option (only ECCV16 has).")
    if hints and not service.takes_hints(model):
        raise ApiError(400, f"The model {model} takes no colour hints (only SIGGRAPH17 does); drop the 'hints' field.")


def _check_hints_inside(hints: list[dict] | None, rgb: np.ndarray) -> None:
    if hints:
        try:
            check_inside(hints, rgb.shape[:2], source="hints")
        except HintError as e:
            raise ApiError(400, str(e)) from None


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
