"""The server-rendered pages (Jinja2 templates, a little JavaScript in static/app.js): colorize, history, one
image with its before/after slider (zoom and pan in static/app.js) and re-colour controls, that image's files, and
the delete form, whose history page then says so with Undo for a few seconds. A visitor who
is not logged in is sent to /login; another user's image is 404, like one that does not exist."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from colorjax import serve
from colorjax.serve.api import image_response
from colorjax.serve.state import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    ApiError,
    AppState,
    State,
    login_redirect,
    small_form,
)
from colorjax.serve.storage import IMAGE_ID, SERVED_KINDS, has_preview

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def colorize_page(request: Request, state: State):
    if state.page_user(request) is None:
        return login_redirect()
    return state.render(
        request,
        "colorize.html",
        max_upload_mb=state.settings.max_upload_mb,
        max_megapixels=state.settings.max_pixels / 1e6,
        max_queued=state.settings.max_queued_per_user,
        models=state.service.names,
    )


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, state: State):
    user = state.page_user(request)
    if user is None:
        return login_redirect()
    return state.render(
        request, "history.html", images=state.database.history(user.id), **_deleted_notice(request, state, user)
    )


def _deleted_notice(request: Request, state: AppState, user) -> dict:
    """After a delete (/history?deleted=ID): the notice that says so, with Undo while the item can be restored."""
    image_id = request.query_params.get("deleted")
    if not image_id:
        return {}
    found = state.database.deleted_image(image_id, user.id) if IMAGE_ID.match(image_id) else None
    left = 0.0 if found is None else found[1] + state.settings.undo_s - time.time()
    return {"deleted": found[0] if found else None, "deleted_id": image_id, "undo_left_s": max(0.0, left)}


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, image_id: str, state: State):
    user = state.page_user(request)
    if user is None:
        return login_redirect()
    image = state.owned_image(image_id, user)
    preview = has_preview(image.width, image.height)
    service = state.service
    # This page handler runs in a worker thread: asking what the item's model takes loads it if it is not yet.
    model = service.made_by(image.model)
    return state.render(
        request,
        "image.html",
        image=image,
        # A large photo is shown as its previews first; "actual size" loads the full-resolution files.
        after_src=f"/images/{image.id}/{'preview.jpg' if preview else 'color.png'}",
        before_src=f"/images/{image.id}/{'gray_preview.jpg' if preview else 'gray.png'}",
        temperature_range=(MIN_TEMPERATURE, MAX_TEMPERATURE),
        default_temperature=service.default_temperature(model),
        takes_hints=service.takes_hints(model),
        model=model,
        models=service.names,
        max_hints=serve.MAX_HINTS,
    )


@router.get("/images/{image_id}/{kind}.{suffix}")
async def image_file(request: Request, image_id: str, kind: str, suffix: str, state: State, download: bool = False):
    user = state.page_user(request)
    if user is None:
        raise ApiError(404, "No such image.")
    record = state.owned_image(image_id, user)
    if kind not in SERVED_KINDS or suffix not in ("png", "jpg"):
        raise ApiError(404, "No such image.")
    return await image_response(state, record, kind, "JPEG" if suffix == "jpg" else "PNG", download)


@router.post("/images/{image_id}/delete")
async def delete_image_form(request: Request, image_id: str, state: State):
    form = await small_form(request)
    user = state.api_user(request, form.get("csrf_token"))
    state.delete_image(state.owned_image(image_id, user))
    return RedirectResponse(f"/history?deleted={image_id}", status_code=303)


@router.post("/images/{image_id}/restore")
async def restore_image_form(request: Request, image_id: str, state: State):
    """Undo, from the notice after a delete: the item back on its page, or a page that says it is too late."""
    form = await small_form(request)
    user = state.api_user(request, form.get("csrf_token"))
    if not state.restore_image(image_id, user):
        raise ApiError(404, "Too late to undo: the photo is deleted for good.")
    return RedirectResponse(f"/images/{image_id}", status_code=303)
