"""The accounts' pages: sign up, log in (growing delays per username and per address, `auth`), log out, and the account page that
creates or revokes the API token. Every form is CSRF-checked; in --single-user mode sign-up and log-in only
redirect home. Passwords, sessions and tokens are `auth`'s."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from colorjax.serve import auth
from colorjax.serve.db import User
from colorjax.serve.state import AppState, State, login_redirect, small_form

router = APIRouter(include_in_schema=False)


async def _credentials(request: Request, state: AppState):
    """The sign-up / log-in form (CSRF-checked), its normalised username and its password."""
    form = await small_form(request)
    state.check_csrf(request, "session", form.get("csrf_token"))
    username = auth.normalize_username(str(form.get("username", "")))
    return form, username, str(form.get("password", ""))


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
    return state.render(request, "login.html")


@router.post("/login")
async def login(request: Request, state: State):
    if state.settings.single_user:
        return RedirectResponse("/", status_code=303)
    form, username, password = await _credentials(request, state)
    # The connection's address: uvicorn rewrites it from X-Forwarded-For only for --forwarded-allow-ips.
    ip = request.client.host if request.client else "?"
    wait = auth.throttle_wait_s(*state.database.recent_login_failures(username, ip, auth.FAILURE_WINDOW_S), time.time())
    if wait > 0:
        seconds = max(1, round(wait))
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
    return state.render(request, "account.html", has_token=state.database.has_api_token(user.id))


@router.post("/account/token")
async def new_token(request: Request, state: State):
    form = await small_form(request)
    user = state.api_user(request, form.get("csrf_token"))
    revoke = form.get("action") == "revoke"
    token = None if revoke else auth.new_api_token()
    state.database.set_api_token(user.id, None if revoke else auth.digest(token))
    return state.render(request, "account.html", has_token=not revoke, new_token=token, user=user)
