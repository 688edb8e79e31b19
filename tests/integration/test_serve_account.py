"""The app's delete with undo and its account page (issue 21, point 12), through Starlette's test client.

A deleted item is gone for everything at once (history, its page and files, counts, re-colours) but can be restored
for `undo_s` seconds; then, or at the next start, its row and files are removed. The account page changes the
password (the current one is checked with the log-in's delays; other sessions end), deletes all the user's photos
and deletes the account, each leaving other users' items alone. The model is a tiny untrained regression net.
"""

import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("itsdangerous")
pytest.importorskip("httpx")
pytest.importorskip("fastapi_offline")

from fastapi.testclient import TestClient  # noqa: E402
from helpers.photos import make_photo  # noqa: E402
from helpers.serve import PASSWORD, csrf, log_in, png_bytes, sign_up, upload  # noqa: E402

from colorjax import models  # noqa: E402
from colorjax.inference.colorizer import Colorizer  # noqa: E402
from colorjax.serve import auth  # noqa: E402
from colorjax.serve.app import create_app  # noqa: E402

NEW_PASSWORD = "a much better passphrase"


@pytest.fixture(scope="module")
def colorizer():
    model = models.get_model("regression", width=4)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
    return Colorizer(model=model, variables=dict(variables), resolution=32, description="tiny")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def app(colorizer, data_dir):
    return create_app(colorizer, data_dir)


def add_photos(client, count, seed=0):
    return [
        upload(client, png_bytes(make_photo(np.random.default_rng(seed + i), 16, 20))).headers["x-image-id"]
        for i in range(count)
    ]


def folders(data_dir):
    return sorted(p.name for p in (data_dir / "images").iterdir())


def after_the_undo_window(app):
    state = app.state.colorjax
    return state.purge_deleted(time.time() + state.settings.undo_s + 1)


def post(client, path, page="/account", **fields):
    return client.post(path, data={"csrf_token": csrf(client, page), **fields}, follow_redirects=False)


# Delete, with undo -----------------------------------------------------------------------------------------------


def test_a_deleted_item_is_gone_everywhere_until_it_is_restored(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    kept, deleted = add_photos(client, 2)
    headers = {"X-CSRF-Token": csrf(client, "/")}
    answer = client.delete(f"/api/images/{deleted}", headers=headers).json()
    assert answer == {"deleted": deleted, "undo": f"/api/images/{deleted}/restore", "undo_s": 10.0}
    for response in (
        client.get(f"/api/images/{deleted}"),
        client.get(f"/images/{deleted}"),
        client.get(f"/images/{deleted}/color.png?download=1"),
        client.post(f"/api/images/{deleted}/recolor", data={"model": "model"}, headers=headers),
        client.delete(f"/api/images/{deleted}", headers=headers),  # Deleted already.
    ):
        assert response.status_code == 404
    assert [item["id"] for item in client.get("/api/history").json()["images"]] == [kept]
    assert client.get("/healthz").json()["images"] == 1 and app.state.database.image_count() == 1
    assert folders(data_dir) == sorted([kept, deleted])  # Its files wait for the undo window.

    assert client.post(f"/api/images/{deleted}/restore", headers=headers).json()["restored"] == deleted
    assert client.get(f"/api/images/{deleted}").status_code == 200
    assert client.get("/healthz").json()["images"] == 2
    assert after_the_undo_window(app) == 0  # Restored: nothing to remove.
    assert folders(data_dir) == sorted([kept, deleted])

    client.delete(f"/api/images/{deleted}", headers=headers)
    assert after_the_undo_window(app) == 1
    assert folders(data_dir) == [kept] and app.state.database.image_ids() == {kept}
    too_late = client.post(f"/api/images/{deleted}/restore", headers=headers)
    assert too_late.status_code == 404 and "seconds after its delete" in too_late.json()["error"]


def test_the_undo_window_is_the_commands_flag_with_its_default_in_the_base_config(colorizer, tmp_path, monkeypatch):
    """`python -m colorjax.serve --undo-seconds N` sets how long a deleted item can be restored; without it, the one
    default, `base_config().serve.undo_s`; the window the API then names is that one."""
    import uvicorn

    from colorjax import config_lib
    from colorjax.cli import serve as command
    from colorjax.inference import colorizer as colorizer_module
    from colorjax.serve import app as app_module

    made = []
    real_create_app = app_module.create_app
    monkeypatch.setattr(colorizer_module, "open_colorizer", lambda **kwargs: colorizer)
    monkeypatch.setattr(
        app_module, "create_app", lambda *args, **kwargs: made.append(real_create_app(*args, **kwargs)) or made[-1]
    )
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # Everything the command does but serve.
    default = config_lib.base_config().serve.undo_s
    for flags, window in (([], default), (["--undo-seconds", "2.5"], 2.5)):
        data_dir = tmp_path / f"data{len(made)}"
        argv = [
            "--workdir",
            str(tmp_path),
            "--single-user",
            "--data-dir",
            str(data_dir),
            "--allowed-hosts",
            "testserver",
        ]
        argv += flags
        assert command.main(argv) == 0
        client = TestClient(made[-1])
        (image_id,) = add_photos(client, 1)
        answer = client.delete(f"/api/images/{image_id}", headers={"X-CSRF-Token": csrf(client, "/")}).json()
        assert answer["undo_s"] == window
    assert default == 10.0 and command.build_parser().parse_args(["--workdir", "run"]).undo_seconds == default
    with pytest.raises(SystemExit):
        command.main(["--workdir", str(tmp_path), "--undo-seconds", "-1"])


def test_the_pages_say_an_item_was_deleted_and_undo_brings_it_back(app):
    client = TestClient(app)
    sign_up(client)
    (image_id,) = add_photos(client, 1)
    deleted = post(client, f"/images/{image_id}/delete", page=f"/images/{image_id}")
    assert deleted.status_code == 303 and deleted.headers["location"] == f"/history?deleted={image_id}"
    page = client.get(deleted.headers["location"]).text
    assert 'id="deleted-notice"' in page and "Deleted “photo.png”." in page
    assert f'action="/images/{image_id}/restore"' in page and 'id="undo"' in page
    assert f'data-image="{image_id}"' not in page  # Not in the gallery any more.

    other = TestClient(app)  # Another user cannot undo it, nor learn its name.
    sign_up(other, "bob")
    assert "photo.png" not in other.get(f"/history?deleted={image_id}").text
    assert post(other, f"/images/{image_id}/restore", page="/history").status_code == 404

    undone = post(client, f"/images/{image_id}/restore", page="/history")
    assert undone.status_code == 303 and undone.headers["location"] == f"/images/{image_id}"
    assert client.get(f"/images/{image_id}").status_code == 200

    post(client, f"/images/{image_id}/delete", page=f"/images/{image_id}")
    after_the_undo_window(app)
    page = client.get(f"/history?deleted={image_id}").text
    assert "Deleted." in page and 'id="undo"' not in page
    assert post(client, f"/images/{image_id}/restore", page="/history").status_code == 404


def test_the_undo_window_ends_by_itself(colorizer, data_dir):
    app = create_app(colorizer, data_dir, single_user=True, undo_s=0.05)
    client = TestClient(app)
    first, second = add_photos(client, 2)
    assert client.delete(f"/api/images/{first}", headers={"X-CSRF-Token": csrf(client, "/")}).status_code == 200
    # The second is deleted "later" than the first timer's turn: that timer's run must set the next one.
    user = app.state.colorjax.local_user
    assert app.state.database.mark_deleted(second, user.id, time.time() + 0.3)
    deadline = time.monotonic() + 60  # Timers remove them; no assertion on how soon.
    while folders(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert folders(data_dir) == [] and app.state.database.image_ids() == set()


def test_items_deleted_before_a_restart_are_removed_at_start(colorizer, data_dir):
    app = create_app(colorizer, data_dir, single_user=True)
    client = TestClient(app)
    kept, deleted = add_photos(client, 2)
    client.delete(f"/api/images/{deleted}", headers={"X-CSRF-Token": csrf(client, "/")})
    app.state.database.close()
    restarted = create_app(colorizer, data_dir, single_user=True)
    assert folders(data_dir) == [kept] and restarted.state.database.image_ids() == {kept}
    assert TestClient(restarted).post(f"/api/images/{deleted}/restore").status_code == 404


# The account page -----------------------------------------------------------------------------------------------


def test_a_password_change_needs_the_current_password_and_ends_the_other_sessions(app):
    client, other_browser = TestClient(app), TestClient(app)
    sign_up(client)
    assert log_in(other_browser).status_code == 303
    fields = {"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    no_csrf = client.post("/account/password", data={"current_password": PASSWORD, **fields})
    assert no_csrf.status_code == 403
    wrong = post(client, "/account/password", current_password="not it", **fields)
    assert wrong.status_code == 400 and "The password is wrong." in wrong.text
    differ = post(client, "/account/password", current_password=PASSWORD, new_password=NEW_PASSWORD, new_password2="x")
    assert differ.status_code == 400 and "differ" in differ.text
    short = post(client, "/account/password", current_password=PASSWORD, new_password="short", new_password2="short")
    assert short.status_code == 400 and "at least 8" in short.text

    changed = post(client, "/account/password", current_password=PASSWORD, **fields)
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert client.get("/history", follow_redirects=False).status_code == 200  # This browser stays logged in...
    assert other_browser.get("/history", follow_redirects=False).headers["location"] == "/login"  # ...not the other.
    assert log_in(TestClient(app), password=PASSWORD).status_code == 401
    assert log_in(TestClient(app), password=NEW_PASSWORD).status_code == 303


def test_guessing_the_current_password_meets_the_log_in_delays(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    fields = {"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for _ in range(auth.FREE_FAILURES_PER_USERNAME):
        assert post(client, "/account/password", current_password="guess", **fields).status_code == 400
    refused = post(client, "/account/password", current_password=PASSWORD, **fields)  # Even the right one.
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert post(client, "/account/delete", password=PASSWORD).status_code == 429
    assert log_in(TestClient(app)).status_code == 429  # The same counter as the log-in page.


def test_delete_all_my_photos_removes_their_files_and_rows_and_leaves_other_users_alone(app, data_dir):
    alice, bob = TestClient(app), TestClient(app)
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    alices = add_photos(alice, 2)
    (bobs,) = add_photos(bob, 1, seed=5)
    alice.delete(f"/api/images/{alices[0]}", headers={"X-CSRF-Token": csrf(alice, "/")})  # In its undo window.
    assert "2 photos" not in alice.get("/account").text and "1 photo " in alice.get("/account").text
    unconfirmed = post(alice, "/account/photos/delete")
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    assert folders(data_dir) == sorted([*alices, bobs])

    done = post(alice, "/account/photos/delete", confirm="yes")
    assert done.status_code == 200 and "Deleted all your photos (2)." in done.text
    assert folders(data_dir) == [bobs] and app.state.database.image_ids() == {bobs}
    assert alice.get("/api/history").json() == {"images": []}
    assert [item["id"] for item in bob.get("/api/history").json()["images"]] == [bobs]
    assert bob.get(f"/api/images/{bobs}").status_code == 200


def test_delete_my_account_removes_its_photos_sessions_and_user(app, data_dir):
    alice, alice_elsewhere, bob = TestClient(app), TestClient(app), TestClient(app)
    sign_up(alice, "alice")
    log_in(alice_elsewhere, "alice")
    sign_up(bob, "bob")
    add_photos(alice, 2)
    (bobs,) = add_photos(bob, 1, seed=5)
    post(alice, "/account/token", action="new")
    wrong = post(alice, "/account/delete", password="not it")
    assert wrong.status_code == 400 and len(folders(data_dir)) == 3

    gone = post(alice, "/account/delete", password=PASSWORD)
    assert gone.status_code == 303 and gone.headers["location"] == "/login?account_deleted=1"
    assert "Your account and its photos are deleted." in alice.get(gone.headers["location"]).text
    assert folders(data_dir) == [bobs] and app.state.database.image_ids() == {bobs}
    for browser in (alice, alice_elsewhere):
        assert browser.get("/history", follow_redirects=False).headers["location"] == "/login"
    assert log_in(TestClient(app), "alice").status_code == 401
    assert app.state.database.user_by_name("alice") is None
    assert [item["id"] for item in bob.get("/api/history").json()["images"]] == [bobs]
    assert sign_up(TestClient(app), "alice").status_code == 303  # The name is free again.


def test_single_user_mode_has_no_password_or_account_to_delete_but_can_delete_all_photos(colorizer, data_dir):
    client = TestClient(create_app(colorizer, data_dir, single_user=True))
    add_photos(client, 2)
    page = client.get("/account").text
    assert "Delete all my photos" in page and "Change password" not in page and "Delete my account" not in page
    token = csrf(client, "/account")
    for path in ("/account/password", "/account/delete"):
        refused = client.post(path, data={"csrf_token": token, "password": "x"})
        assert refused.status_code == 404 and "single-user" in refused.text
    assert client.post("/account/photos/delete", data={"confirm": "yes"}).status_code == 403  # A browser's: CSRF.
    done = client.post("/account/photos/delete", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200 and folders(data_dir) == []


def test_an_api_token_cannot_change_the_password_or_delete_the_account(app):
    client = TestClient(app)
    sign_up(client)
    page = post(client, "/account/token", action="new").text
    token = page.split('id="token">')[1].split("<")[0]
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    for path, fields in (
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 9, "new_password2": "x" * 9}),
        ("/account/delete", {"password": PASSWORD}),
        ("/account/photos/delete", {"confirm": "yes"}),
    ):
        assert bearer.post(path, data=fields).status_code == 403
    assert log_in(TestClient(app)).status_code == 303


def test_the_new_pages_run_no_inline_code(app):
    """The strict CSP (no inline script, handler or style) holds on the pages this point added or changed."""
    client = TestClient(app)
    sign_up(client)
    (image_id,) = add_photos(client, 1)
    post(client, f"/images/{image_id}/delete", page="/history")
    pages = [client.get(path) for path in (f"/history?deleted={image_id}", "/account", "/history")]
    pages.append(post(client, "/account/password", current_password="wrong"))
    pages.append(TestClient(app).get("/login?account_deleted=1"))
    for response in pages:
        html = response.text
        assert "script-src 'self';" in response.headers["content-security-policy"]
        assert not [tag for tag in re.findall(r"<script[^>]*>", html) if "src=" not in tag]
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html) and not re.search(r"<[^>]*\sstyle\s*=|<style", html)
