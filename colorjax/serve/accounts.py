"""The accounts' pages: sign up, log in (growing delays per username and per address, `auth`), log out, and the
account page: the API token, a new password, "delete all my photos" and deleting the account. Every form is
CSRF-checked, and a wrong current password counts as a failed log-in. In --single-user mode (no accounts) sign-up
and log-in only redirect home, and the account page only deletes all photos. Passwords, sessions and tokens are
`auth`'s."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from colorjax.serve import auth
from colorjax.serve.db import User
from colorjax.serve.state import ApiError, AppState, State, login_redirect, small_form

router = APIRouter(include_in_schema=False)


async def _credentials(request: Request, state: AppState):
    """The sign-up / log-in form (CSRF-checked), its normalised username and its password."""
    form = await small_form(request)
    state.check_csrf(request, "session", form.get("csrf_token"))
    username = auth.normalize_username(str(form.get("username", "")))
    return form, username, str(form.get("password", ""))


def _address(request: Request) -> str:
    # The connection's address: uvicorn rewrites it from X-Forwarded-For only for --forwarded-allow-ips.
    return request.client.host if request.client else "?"


def _wait_s(state: AppState, username: str, ip: str) -> int:
    """Whole seconds until a password for `username` from `ip` may be checked (`auth.throttle_wait_s`); 0: now."""
    wait = auth.throttle_wait_s(*state.database.recent_login_failures(username, ip, auth.FAILURE_WINDOW_S), time.time())
    return max(1, round(wait)) if wait > 0 else 0


def _start_session(request: Request, state: AppState, user: User) -> None:
    # A fresh session id and CSRF token at every log-in (no session fixation).
    old = request.session.get("sid")
    if old:
        state.database.delete_session(auth.digest(old))
    request.session.clear()
    session_id = auth.new_secret()
    state.database.create_session(auth.digest(session_id), user.id, auth.SESSION_LIFETIME_S)
    request.session.update({"sid": session_id, "csrf": auth.new_secret()})


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, state: State):
    if state.settings.single_user:
        return RedirectResponse("/", status_code=303)
    return state.render(request, "signup.html")


@router.post("/signup")
async def signup(request: Request, state: State):
    if state.settings.single_user:
        return RedirectResponse("/", status_code=303)
    form, username, password = await _credentials(request, state)
    problem = auth.signup_problem(username, password)
    if problem is None and password != form.get("password2", password):
        problem = "The two passwords differ."
    if problem is None:
        password_hash = await anyio.to_thread.run_sync(auth.hash_password, password)
        user = state.database.create_user(username, password_hash)
        if user is None:
            problem = f"The username {username!r} is taken; choose another."
    if problem:
        return state.render(request, "signup.html", status=400, error=problem, username=username)
    _start_session(request, state, user)
    return RedirectResponse("/", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: State):
    if state.settings.single_user or state.page_user(request):
        return RedirectResponse("/", status_code=303)
    notice = "Your account and its photos are deleted." if request.query_params.get("account_deleted") else None
    return state.render(request, "login.html", notice=notice)


@router.post("/login")
async def login(request: Request, state: State):
    if state.settings.single_user:
        return RedirectResponse("/", status_code=303)
    form, username, password = await _credentials(request, state)
    ip = _address(request)
    seconds = _wait_s(state, username, ip)
    if seconds:
        return state.render(
            request,
            "login.html",
            status=429,
            error=f"Too many failed log-ins for this account or from your address; try again in {seconds} "
            f"second{'s' if seconds > 1 else ''}.",
            username=username,
            headers={"Retry-After": str(seconds)},
        )
    found = state.database.user_by_name(username)
    ok = await anyio.to_thread.run_sync(auth.check_login, password, None if found is None else found[1])
    if not ok:
        state.database.record_login_failure(username, ip, auth.FAILURE_WINDOW_S)
        return state.render(
            request,
            "login.html",
            status=401,
            error="Wrong username or password.",
            username=username,
        )
    state.database.clear_login_failures(username)
    _start_session(request, state, found[0])
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request, state: State):
    form = await small_form(request)
    state.check_csrf(request, "session", form.get("csrf_token"))
    session_id = request.session.get("sid")
    if session_id:
        state.database.delete_session(auth.digest(session_id))
    request.session.clear()
    return login_redirect()


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, state: State):
    user = state.page_user(request)
    if user is None:
        return login_redirect()
    return _account(request, state, user)


def _account(request: Request, state: AppState, user: User, **context) -> HTMLResponse:
    return state.render(
        request,
        "account.html",
        user=user,
        has_token=state.database.has_api_token(user.id),
        images=state.database.image_count(user.id),
        **context,
    )


async def _account_form(request: Request, state: AppState, needs_account: bool = True) -> tuple[dict, User]:
    """The account page's form (CSRF-checked) and its user. These forms are the browser's: a bearer token (a
    script's) cannot change the password or delete anything from here. `needs_account`: a form about the
    account itself, which --single-user mode (no accounts, no passwords) does not have."""
    form = await small_form(request)
    if needs_account and state.settings.single_user:
        raise ApiError(404, "There are no accounts in --single-user mode: no password to change or account to delete.")
    user, how = state.authenticate(request)
    if user is None:
        raise ApiError(401, "Log in first.")
    if how == "bearer":
        raise ApiError(403, "Use the account page in a browser for this; an API token cannot do it.")
    state.check_csrf(request, how, form.get("csrf_token"))
    return form, user


async def _password_problem(request: Request, state: AppState, user: User, password: str) -> dict | None:
    """What the account page says (status, error, headers) when `password` is not the user's. A wrong one counts as a failed log-in of the account
    from this address, and the same growing delays apply before the next is checked: the account page is no
    faster way to guess a password than the log-in page."""
    ip = _address(request)
    seconds = _wait_s(state, user.username, ip)
    if seconds:
        return {
            "status": 429,
            "error": f"Too many wrong passwords; try again in {seconds} second{'s' if seconds > 1 else ''}.",
            "headers": {"Retry-After": str(seconds)},
        }
    found = state.database.user_by_name(user.username)
    if not await anyio.to_thread.run_sync(auth.check_login, password, None if found is None else found[1]):
        state.database.record_login_failure(user.username, ip, auth.FAILURE_WINDOW_S)
        return {"status": 400, "error": "The password is wrong."}
    return None


@router.post("/account/token")
async def new_token(request: Request, state: State):
    form, user = await _account_form(request, state)
    revoke = form.get("action") == "revoke"
    token = None if revoke else auth.new_api_token()
    state.database.set_api_token(user.id, None if revoke else auth.digest(token))
    return _account(request, state, user, new_token=token)


@router.post("/account/password")
async def change_password(request: Request, state: State):
    """A new password, given the current one. Every session of the account ends (another browser that knew the old
    password is logged out) and this browser gets a new one; the API token stays (revoke it here if it leaked)."""
    form, user = await _account_form(request, state)
    problem = await _password_problem(request, state, user, str(form.get("current_password", "")))
    new = str(form.get("new_password", ""))
    if problem is None:
        message = auth.signup_problem(user.username, new)
        if message is None and new != form.get("new_password2"):
            message = "The two new passwords differ."
        problem = None if message is None else {"status": 400, "error": message}
    if problem:
        return _account(request, state, user, **problem)
    state.database.set_password(user.id, await anyio.to_thread.run_sync(auth.hash_password, new))
    state.database.clear_login_failures(user.username)
    state.database.delete_sessions(user.id)
    _start_session(request, state, user)
    return _account(request, state, user, notice="Password changed. Your other sessions are logged out.")


@router.post("/account/photos/delete")
async def delete_all_photos(request: Request, state: State):
    """Deletes every photo of the user, files and rows, at once (no undo): the form's box must be ticked. Photos
    still being coloured are cancelled first, so none appears afterwards."""
    form, user = await _account_form(request, state, needs_account=False)
    if form.get("confirm") != "yes":
        return _account(request, state, user, status=400, error="Tick the box to confirm: this cannot be undone.")
    for job in state.jobs.of_user(user.id):
        state.jobs.cancel(job)
    count = await anyio.to_thread.run_sync(state.delete_all_images, user)
    return _account(request, state, user, notice=f"Deleted all your photos ({count}).")


@router.post("/account/delete")
async def delete_account(request: Request, state: State):
    """Deletes the account, given its password: its photos (files and rows), sessions, API token and the user; this
    browser is logged out and sees the log-in page say so."""
    form, user = await _account_form(request, state)
    problem = await _password_problem(request, state, user, str(form.get("password", "")))
    if problem:
        return _account(request, state, user, **problem)
    for job in state.jobs.of_user(user.id):
        state.jobs.cancel(job)
    await anyio.to_thread.run_sync(state.delete_all_images, user)
    state.database.delete_user(user.id)  # Its sessions and API token go with it.
    request.session.clear()
    return RedirectResponse("/login?account_deleted=1", status_code=303)
