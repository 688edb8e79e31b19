"""The app's defences (issue 21, points 1-8), each found with a real request: the log-in limit with forged proxy
headers, framing, an error page that logged the user out, memory per upload, image work on the event loop, DNS
rebinding, a re-colour racing a delete, crash leftovers, and what anonymous visitors learn.

The model is the session's shared trained run (`trained_run`, opened as the command opens it), except where a
test needs a model that re-colours: `hint_colorizer`. Tests that need requests running at the same time use a
real uvicorn on 127.0.0.1 (`running_server`) and `HeldColorizer`, which holds a photo inside the model until the
test lets it go; no assertion depends on how fast anything is, only on what is answered while a job is held.
"""

import io
import os
import re
import sqlite3
import stat
import threading
import time
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("itsdangerous")
pytest.importorskip("httpx")
pytest.importorskip("fastapi_offline")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from helpers.photos import make_photo  # noqa: E402
from helpers.serve import HeldColorizer, hint_colorizer, log_in, png_bytes, sign_up, upload  # noqa: E402
from PIL import Image  # noqa: E402

from colorjax import color  # noqa: E402
from colorjax.bench.serve import running_server  # noqa: E402
from colorjax.data import decode  # noqa: E402
from colorjax.inference.colorizer import open_colorizer  # noqa: E402
from colorjax.serve import auth, security, storage  # noqa: E402
from colorjax.serve.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def run_colorizer(trained_run):
    return open_colorizer(workdir=trained_run, step="best")


RED_POINT = '[{"x": 4, "y": 4, "color": "#ff0000"}]'  # A re-colour that changes the colorization's files.


@pytest.fixture
def photo():
    return png_bytes(make_photo(np.random.default_rng(0), 24, 32))


def _failures_back(data_dir, seconds):
    """Moves every recorded failed log-in `seconds` into the past (time passing, without waiting for it)."""
    with sqlite3.connect(data_dir / "colorjax.sqlite3") as connection:
        connection.execute("UPDATE login_failures SET at = at - ?", (seconds,))
    connection.close()


# 1. The log-in limit ---------------------------------------------------------------------------------------------


def test_a_forged_x_forwarded_for_does_not_reset_the_login_limit(run_colorizer, tmp_path):
    """Through uvicorn as the command starts it: each guess claims a new address in X-Forwarded-For."""
    app = create_app(run_colorizer, tmp_path / "data")
    with running_server(app) as base_url, httpx.Client(base_url=base_url) as owner:
        assert sign_up(owner).status_code == 303
        with httpx.Client(base_url=base_url) as guesser:
            answers = []
            for i in range(8):
                guesser.headers["X-Forwarded-For"] = f"203.0.113.{i}"
                answers.append(log_in(guesser, password=f"guess number {i}").status_code)
            guesser.headers["X-Forwarded-For"] = "203.0.113.99"
            right = log_in(guesser)
    assert answers == [401] * auth.FREE_FAILURES_PER_USERNAME + [429] * 3
    assert right.status_code == 429 and "try again in" in right.text


def test_the_login_limit_delays_per_username_and_per_address_and_never_locks(run_colorizer, tmp_path):
    data_dir = tmp_path / "data"
    app = create_app(run_colorizer, data_dir)
    sign_up(TestClient(app), "alice")
    sign_up(TestClient(app), "bob")

    def client(address):
        return TestClient(app, client=(address, 50000))

    # Per username, from any address.
    for i in range(auth.FREE_FAILURES_PER_USERNAME):
        assert log_in(client(f"10.0.0.{i}"), password="wrong password").status_code == 401
    waiting = log_in(client("10.0.1.1"))
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == str(int(auth.FIRST_DELAY_S))
    assert log_in(client("10.0.1.1"), "bob").status_code == 303  # Another account is not delayed.
    # A delay, not a lock: once it has passed the right password logs in (and the failures are forgotten).
    _failures_back(data_dir, auth.FIRST_DELAY_S + 0.5)
    assert log_in(client("10.0.1.2")).status_code == 303
    assert log_in(client("10.0.1.3"), password="one typo").status_code == 401
    assert log_in(client("10.0.1.3")).status_code == 303

    # Per address, for any username: one password tried on many accounts.
    sprayer = client("10.0.2.1")
    for i in range(auth.FREE_FAILURES_PER_ADDRESS):
        assert log_in(sprayer, f"user{i}", "password1").status_code == 401
    assert log_in(sprayer, "bob").status_code == 429
    assert log_in(client("10.0.2.2"), "bob").status_code == 303

    # The delays grow with the failures, up to a bound: the owner never waits longer than MAX_DELAY_S.
    free = auth.FREE_FAILURES_PER_USERNAME
    delays = [auth.failure_delay_s(n, free) for n in range(free - 1, free + 6)]
    assert delays == [0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 60.0] and auth.MAX_DELAY_S == 60.0
    assert auth.throttle_wait_s([100.0] * 7, [], now=110.0) == pytest.approx(10.0)  # 7 failures: 20 s after the last


def test_old_failed_logins_are_forgotten(run_colorizer, tmp_path):
    data_dir = tmp_path / "data"
    app = create_app(run_colorizer, data_dir)
    with sqlite3.connect(data_dir / "colorjax.sqlite3") as connection:
        connection.executemany(
            "INSERT INTO login_failures (username, ip, at) VALUES (?, ?, ?)",
            [(f"u{i}", "10.9.9.9", time.time() - auth.FAILURE_WINDOW_S - 60) for i in range(50)],
        )
    connection.close()
    assert log_in(TestClient(app), "nobody", "wrong password").status_code == 401
    with sqlite3.connect(data_dir / "colorjax.sqlite3") as connection:
        rows = connection.execute("SELECT username FROM login_failures").fetchall()
    connection.close()
    assert rows == [("nobody",)]


def test_the_command_believes_proxy_headers_only_when_told_and_checks_the_host(trained_run, tmp_path, monkeypatch):
    import uvicorn

    from colorjax.cli.serve import main

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: started.append(server.config))
    base = ["--workdir", str(trained_run), "--data-dir", str(tmp_path / "data"), "--single-user"]
    assert main(base) == 0
    assert main([*base, "--forwarded-allow-ips", "10.0.0.7", "--allowed-hosts", "photos.example,gpu-vm"]) == 0
    plain, proxied = started
    assert plain.proxy_headers is False
    assert proxied.proxy_headers is True and proxied.forwarded_allow_ips == "10.0.0.7"
    assert TestClient(plain.app, base_url="http://127.0.0.1:8000").get("/api/history").status_code == 200
    assert TestClient(plain.app, base_url="http://evil.example").get("/api/history").status_code == 400
    assert TestClient(plain.app, base_url="http://photos.example").get("/api/history").status_code == 400
    assert TestClient(proxied.app, base_url="http://photos.example").get("/api/history").status_code == 200
    assert TestClient(proxied.app, base_url="http://gpu-vm:8000").get("/api/history").status_code == 200


# 2. Framing and headers ------------------------------------------------------------------------------------------


def test_no_answer_can_be_framed_and_pages_run_no_inline_code(run_colorizer, tmp_path, photo):
    app = create_app(run_colorizer, tmp_path / "data")
    client, visitor = TestClient(app), TestClient(app)
    sign_up(client)
    image_id = upload(client, photo).headers["x-image-id"]
    pages = {path: client.get(path) for path in ("/", "/history", f"/images/{image_id}", "/account")}
    pages |= {"/login": visitor.get("/login"), "/signup": visitor.get("/signup")}
    pages["error page"] = client.get("/images/AAAAAAAAAAAAAAAA")
    others = {path: client.get(path) for path in ("/static/app.js", "/api/history", "/healthz", "/docs", "/redoc")}
    others[f"/images/{image_id}/color.png"] = client.get(f"/images/{image_id}/color.png")
    for path, response in {**pages, **others}.items():
        headers = response.headers
        assert headers.get("x-frame-options") == "DENY", path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("referrer-policy") == "same-origin", path
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), path
    for path, response in pages.items():
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, path
        html = response.text
        assert "<script" in html and not _inline_scripts(html), path  # The page's script is a file of its own.
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), f"{path}: an inline event handler"
        assert not re.search(r"<[^>]*\sstyle\s*=|<style", html), f"{path}: an inline style"


def _inline_scripts(html):
    return [tag for tag in re.findall(r"<script[^>]*>", html) if "src=" not in tag]


# 3. Error pages keep the session ---------------------------------------------------------------------------------


def test_an_error_page_never_replaces_the_users_session(run_colorizer, tmp_path, photo):
    app = create_app(run_colorizer, tmp_path / "data")
    browser = TestClient(app)
    sign_up(browser)
    image_id = upload(browser, photo).headers["x-image-id"]
    # Another site's form posts to the app: SameSite keeps the user's cookie out of that request.
    cross_site = TestClient(app).post(f"/images/{image_id}/delete", data={"csrf_token": "x"}, follow_redirects=False)
    assert cross_site.status_code == 401 and "set-cookie" not in cross_site.headers
    assert TestClient(app).get("/no/such/page").status_code == 404
    assert "set-cookie" not in TestClient(app).get("/no/such/page").headers
    assert browser.get("/images/AAAAAAAAAAAAAAAA").status_code == 404
    assert "alice" in browser.get("/").text and browser.get(f"/api/images/{image_id}").status_code == 200


# 4. Bounded memory -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "RGBA", "I;16"])
def test_an_upload_decodes_to_uint8_without_a_float_copy(mode):
    rgb = make_photo(np.random.default_rng(1), 600, 500)
    image = Image.fromarray(rgb)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257)
    elif mode != "RGB":
        image = image.convert(mode)
    data = png_bytes(np.asarray(image)) if mode in ("L", "RGB") else _encoded(image)
    expected = color.rgb_to_uint8(decode.decode(data, 10**8))
    tracemalloc.start()
    try:
        decoded = storage.decode_upload(data, 10**8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, expected)
    if mode in ("L", "RGB", "P"):  # 8-bit photos: no float32 copy (4 bytes a sample) on the way.
        # Pillow's bytes and the array: twice the photo's uint8 (a float32 copy alone would be four times).
        assert peak < 3 * decoded.nbytes, (peak, decoded.nbytes)


def _encoded(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_photos_wait_their_turn_undecoded_and_a_user_queues_only_a_few(run_colorizer, tmp_path, photo, monkeypatch):
    from colorjax.serve import api

    held = HeldColorizer(run_colorizer)
    app = create_app(held, tmp_path / "data", single_user=True, model_concurrency=1, max_queued_per_user=2)
    decoded = []
    real_decode = api.decode_upload
    monkeypatch.setattr(api, "decode_upload", lambda *args: decoded.append(1) or real_decode(*args))
    queued = app.state.service._queued
    answers = {}

    def send(name):
        with httpx.Client(base_url=base_url, timeout=120) as client:
            answers[name] = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")})

    held.hold.set()
    with running_server(app) as base_url:
        first = threading.Thread(target=send, args=("first",))
        first.start()
        assert held.entered.wait(60)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        deadline = time.monotonic() + 60
        while sum(queued.values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                third = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")})
            decoded_while_held = len(decoded)
        finally:
            held.release.set()
            first.join(120)
            second.join(120)
    assert third.status_code == 429 and "waiting or being coloured" in third.json()["error"]
    assert decoded_while_held == 1  # The queued photo is still its encoded bytes.
    assert answers["first"].status_code == answers["second"].status_code == 200 and len(decoded) == 2


def test_a_jpeg_download_is_encoded_in_the_models_bounded_pool(run_colorizer, tmp_path, photo, monkeypatch):
    from colorjax import files

    app = create_app(run_colorizer, tmp_path / "data", single_user=True)
    client = TestClient(app)
    image_id = upload(client, photo).headers["x-image-id"]
    workers_busy, real_encode = [], files.encode_image
    limiter = app.state.service.limiter
    monkeypatch.setattr(
        files,
        "encode_image",
        lambda *args, **kw: workers_busy.append(limiter.borrowed_tokens) or real_encode(*args, **kw),
    )
    for path in (f"/api/images/{image_id}?format=jpeg", f"/images/{image_id}/color.jpg?download=1"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", path
    assert workers_busy == [1, 1]  # A full-size photo in memory: a job like any other, counted in --concurrency.


# 5. No image work on the event loop ------------------------------------------------------------------------------


def test_healthz_answers_while_a_recolour_is_encoded(tmp_path, photo, monkeypatch):
    from colorjax import files

    app = create_app(hint_colorizer(), tmp_path / "data", single_user=True)
    hold, entered, release = threading.Event(), threading.Event(), threading.Event()
    real_encode = files.encode_image

    def slow_encoder(*args, **kwargs):  # Stands for a 20-megapixel PNG: seconds of work.
        if hold.is_set():
            entered.set()
            release.wait(60)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(files, "encode_image", slow_encoder)
    answers = {}
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        image_id = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")}).headers["x-image-id"]

        def recolour():
            with httpx.Client(base_url=base_url, timeout=120) as other:
                answers["recolor"] = other.post(f"/api/images/{image_id}/recolor", data={"hints": "[]"})

        hold.set()
        thread = threading.Thread(target=recolour)
        thread.start()
        try:
            assert entered.wait(60)
            health = client.get("/healthz", timeout=10)  # Generous: it answers at once unless the loop is busy.
        finally:
            release.set()
            thread.join(120)
    assert health.status_code == 200 and health.json()["ok"] is True
    assert answers["recolor"].status_code == 200


# 6. DNS rebinding ------------------------------------------------------------------------------------------------


def test_requests_naming_another_host_are_refused(run_colorizer, tmp_path):
    hosts = security.allowed_hosts("127.0.0.1", ["photos.example"])
    app = create_app(run_colorizer, tmp_path / "data", single_user=True, allowed_hosts=hosts)
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example:80"):
        refused = TestClient(app, base_url=f"http://{host}").get("/api/history")
        assert refused.status_code == 400 and "--allowed-hosts" in refused.text, host
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "photos.example", "LOCALHOST"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/history").status_code == 200, host
    assert security.allowed_hosts("0.0.0.0") == ["127.0.0.1", "::1", "localhost"]  # A wildcard is no name.


# 7. Races and crashes --------------------------------------------------------------------------------------------


def test_a_recolour_that_loses_to_a_delete_answers_404_and_writes_nothing(tmp_path, photo):
    held = HeldColorizer(hint_colorizer())
    app = create_app(held, tmp_path / "data", single_user=True)
    answers = {}
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        image_id = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")}).headers["x-image-id"]
        colours = (app.state.store.root / image_id / "color.png").read_bytes()

        def recolour():
            with httpx.Client(base_url=base_url, timeout=120) as other:
                answers["recolor"] = other.post(f"/api/images/{image_id}/recolor", data={"hints": RED_POINT})

        held.hold.set()
        thread = threading.Thread(target=recolour)
        thread.start()
        try:
            assert held.entered.wait(60)
            assert client.delete(f"/api/images/{image_id}").status_code == 200
        finally:
            held.release.set()
            thread.join(120)
        history = client.get("/api/history").json()["images"]
    assert answers["recolor"].status_code == 404 and answers["recolor"].json() == {"error": "No such image."}
    assert (app.state.store.root / image_id / "color.png").read_bytes() == colours  # Kept as it was, for an Undo.
    state = app.state.colorjax
    state.purge_deleted(time.time() + state.settings.undo_s + 1)  # The undo window, passed.
    assert history == [] and app.state.store.ids() == [] and not (app.state.store.root / image_id).exists()


def test_crash_leftovers_are_swept_at_start(run_colorizer, tmp_path, photo):
    data_dir = tmp_path / "data"
    app = create_app(run_colorizer, data_dir, single_user=True)
    image_id = upload(TestClient(app), photo).headers["x-image-id"]
    app.state.database.close()
    images = data_dir / "images"
    kept = sorted(p.name for p in (images / image_id).iterdir())
    (images / image_id / "input.png.partial").write_bytes(b"half")
    (images / image_id / ".color.png.0123456789abcdef.tmp.png").write_bytes(b"half")
    (images / ".AAAAAAAAAAAAAAAA.0123456789abcdef.tmp").mkdir()  # A new item's folder, never renamed.
    (images / "BBBBBBBBBBBBBBBB").mkdir()  # Files whose row was never committed.
    (images / "BBBBBBBBBBBBBBBB" / "input.png").write_bytes(b"photo")
    restarted = create_app(run_colorizer, data_dir, single_user=True)
    assert sorted(p.name for p in images.iterdir()) == [image_id]
    assert sorted(p.name for p in (images / image_id).iterdir()) == kept
    assert set(kept) <= {*storage.FILE_NAMES.values(), *storage.INPUT_NAMES} and "color.png" in kept
    assert "input.png" in kept  # The upload (a PNG), as sent.
    assert [item["id"] for item in TestClient(restarted).get("/api/history").json()["images"]] == [image_id]


def test_files_are_fsynced_before_their_row_is_committed(run_colorizer, tmp_path, photo, monkeypatch):
    app = create_app(run_colorizer, tmp_path / "data", single_user=True)
    synced, at_commit = [], []
    real_fsync, real_add = os.fsync, app.state.database.add_image
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    monkeypatch.setattr(
        app.state.database, "add_image", lambda record: at_commit.append(len(synced)) or real_add(record)
    )
    assert upload(TestClient(app), photo).status_code == 200
    # The four files, their folder and the images folder, before the row.
    assert at_commit and at_commit[0] >= 4 + 2


# 8. What anonymous visitors learn, and who can read the files ----------------------------------------------------


def test_anonymous_visitors_learn_only_the_model_name_and_the_data_is_private(
    run_colorizer, trained_run, tmp_path, photo
):
    data_dir = tmp_path / "data"
    app = create_app(run_colorizer, data_dir)
    alice, bob, visitor = TestClient(app), TestClient(app), TestClient(app)
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    upload(alice, photo)
    upload(alice, photo)
    upload(bob, photo)
    model = type(run_colorizer.model).__name__
    assert visitor.get("/healthz").json() == {"ok": True, "model": model}
    assert str(trained_run) in run_colorizer.description
    for page in ("/login", "/signup", "/no/such/page"):
        html = visitor.get(page).text
        assert str(trained_run) not in html and f"Model: {model}" in html, page
    mine = alice.get("/healthz").json()
    assert mine["images"] == 2 and mine["description"] == run_colorizer.description
    assert run_colorizer.description in alice.get("/").text
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # The database and the photos: their owner's only.


# 9. Speed and storage --------------------------------------------------------------------------------------------


def test_a_large_photo_is_stored_fast_and_shown_as_previews_first(run_colorizer, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "PREVIEW_SIDE", 64)  # "Larger than a screen", for a photo a test can afford.
    app = create_app(run_colorizer, tmp_path / "data", single_user=True)
    client = TestClient(app)
    photo = make_photo(np.random.default_rng(2), 80, 100)
    image_id = upload(client, png_bytes(photo)).headers["x-image-id"]
    small_id = upload(client, png_bytes(make_photo(np.random.default_rng(3), 40, 50))).headers["x-image-id"]
    folder, small_folder = (tmp_path / "data" / "images" / i for i in (image_id, small_id))
    with Image.open(folder / "preview.jpg") as preview, Image.open(folder / "gray_preview.jpg") as gray_preview:
        assert preview.size == gray_preview.size == (64, 51)
    with Image.open(small_folder / "gray.png") as gray, Image.open(folder / "color.png") as colour:
        assert gray.mode == "L" and colour.size == (100, 80)  # The gray is one channel; the colours full size.
    for png in (folder / "color.png", small_folder / "gray.png"):  # zlib's fastest (FLEVEL 0).
        data = png.read_bytes()
        assert data[data.index(b"IDAT") + 4 : data.index(b"IDAT") + 6] == b"\x78\x01", png
    # No full-size gray of the large photo on disk: the item holds at most twice the upload and its colours ...
    assert not (folder / "gray.png").exists()
    stored = sum(path.stat().st_size for path in folder.iterdir())
    assert stored <= 2 * (len(png_bytes(photo)) + (folder / "color.png").stat().st_size)
    # ... and "actual size" or a download makes it from the input: the gray of the model's own lightness.
    served = client.get(f"/images/{image_id}/gray.png?download=1")
    assert served.headers["content-type"] == "image/png" and "attachment" in served.headers["content-disposition"]
    expected = color.gray_picture(run_colorizer.lightness(photo))[..., 0]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(served.content))), expected)
    assert client.get(f"/images/{image_id}/gray.jpg").headers["content-type"] == "image/jpeg"
    page = client.get(f"/images/{image_id}").text
    assert f'src="/images/{image_id}/preview.jpg"' in page and f'src="/images/{image_id}/gray_preview.jpg"' in page
    assert client.get(f"/images/{image_id}/preview.jpg").headers["content-type"] == "image/jpeg"
    assert f'src="/images/{small_id}/color.png"' in client.get(f"/images/{small_id}").text  # Shown whole.
    assert not (tmp_path / "data" / "images" / small_id / "preview.jpg").exists()

    # A gray upload is its own gray version: stored once, as sent, and served as the gray too.
    gray_photo = np.asarray(Image.fromarray(make_photo(np.random.default_rng(4), 80, 100)).convert("L"))
    sent = png_bytes(np.repeat(gray_photo[..., None], 3, -1))
    gray_id = upload(client, sent).headers["x-image-id"]
    folder = tmp_path / "data" / "images" / gray_id
    assert not (folder / "gray.png").exists() and (folder / "gray_preview.jpg").is_file()
    assert (folder / "input.png").read_bytes() == sent
    served = np.asarray(Image.open(io.BytesIO(client.get(f"/images/{gray_id}/gray.png").content)).convert("RGB"))
    lab = color.rgb_to_lab(np.repeat(gray_photo[..., None], 3, -1) / np.float32(255.0))
    assert np.array_equal(served, color.gray_picture(lab[..., :1]))  # The gray of its lightness, level for level.


def test_a_large_photos_colour_preview_is_the_pipelines_colours_of_its_shrunk_lightness(
    run_colorizer, tmp_path, monkeypatch
):
    """The preview is recombined at preview size, from the photo's L shrunk (the gray preview's) and the model's
    chroma: shrinking the full-size colours took 0.13 s of a 20-megapixel photo's 0.34 s of encoding."""
    monkeypatch.setattr(storage, "PREVIEW_SIDE", 64)
    shrunk_shapes, real_shrunk = [], storage.shrunk
    monkeypatch.setattr(storage, "shrunk", lambda rgb, side: shrunk_shapes.append(rgb.shape) or real_shrunk(rgb, side))
    client = TestClient(create_app(run_colorizer, tmp_path / "data", single_user=True))
    photo = make_photo(np.random.default_rng(5), 80, 100)
    image_id = upload(client, png_bytes(photo)).headers["x-image-id"]
    assert (80, 100, 3) not in shrunk_shapes and shrunk_shapes  # Only the preview is shrunk (to the thumbnail).
    prediction = run_colorizer.predict(photo)
    small_L = storage.preview_lightness(prediction.L)
    expected = run_colorizer.recombine(small_L, prediction.chroma).astype(np.float32)
    with Image.open(tmp_path / "data" / "images" / image_id / "preview.jpg") as preview:
        preview = np.asarray(preview.convert("RGB"), np.float32)
    assert preview.shape == expected.shape == (51, 64, 3)
    assert np.abs(preview - expected).mean() < 3  # JPEG at quality 90.


def _camera_jpeg(rgb, orientation: int) -> bytes:
    """`rgb` as a camera writes it: a JPEG stored sideways with an EXIF orientation, and the place it was taken."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "taken at 52.37N 4.89E"  # A marker of the uploader's metadata, easy to look for in a response.
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 24.0)})  # GPS
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def _recolour(client, image_id, hints):
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)
    return client.post(f"/api/images/{image_id}/recolor", data={"hints": hints}, headers={"X-CSRF-Token": token})


def test_the_upload_is_stored_as_sent_and_every_reader_decodes_it_upright(tmp_path):
    app = create_app(hint_colorizer(), tmp_path / "data", single_user=True)
    client = TestClient(app)
    sideways = make_photo(np.random.default_rng(21), 40, 60)
    sent = _camera_jpeg(sideways, orientation=6)  # Shown turned a quarter clockwise: 40 wide, 60 high.
    upright = color.rgb_to_uint8(decode.decode(sent, 10**6))
    assert upright.shape == (60, 40, 3) and Image.open(io.BytesIO(sent)).getexif().get_ifd(0x8825)[1] == "N"
    image_id = upload(client, sent, "IMG_0001.JPG").headers["x-image-id"]
    folder = tmp_path / "data" / "images" / image_id
    assert (folder / "input.jpg").read_bytes() == sent and not (folder / "input.png").exists()
    item = client.get("/api/history").json()["images"][0]
    assert (item["width"], item["height"]) == (40, 60)
    # The original colour, as the page shows it and as JPEG: upright, the upload's pixels, and no metadata of it.
    for suffix, tolerance in (("png", 0), ("jpg", 12)):
        served = client.get(f"/images/{image_id}/input.{suffix}")
        assert served.status_code == 200 and b"52.37N" not in served.content and b"Exif" not in served.content
        with Image.open(io.BytesIO(served.content)) as image:
            assert not image.getexif() and "exif" not in image.info
            assert np.abs(np.asarray(image, np.int16) - upright).max() <= tolerance, suffix
    # A re-colour reads it upright too: the colour point at x=35, y=55 exists only in the upright photo.
    point = '[{"x": 35, "y": 55, "color": "#ff0000"}]'
    recoloured = _recolour(client, image_id, point)
    assert recoloured.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(recoloured.content))).shape == (60, 40, 3)
    assert app.state.store.sweep({image_id}) == 0 and (folder / "input.jpg").read_bytes() == sent


def test_items_stored_before_keep_working_and_other_formats_are_shown(tmp_path, monkeypatch):
    """An item stored before uploads were kept as sent has its decoded upload as input.png (colour, or one channel
    for a gray photo, whose gray.png it also is); a TIFF or a 16-bit PNG, which the server decodes and a browser may
    not show, is served as PNG and JPEG like any other upload, its preview included."""
    monkeypatch.setattr(storage, "PREVIEW_SIDE", 32)  # "Larger than a screen", for a photo a test can afford.
    app = create_app(hint_colorizer(), tmp_path / "data", single_user=True)
    client = TestClient(app)
    images = tmp_path / "data" / "images"

    photo = make_photo(np.random.default_rng(22), 24, 30)
    old_id = upload(client, png_bytes(photo, optimize=True)).headers["x-image-id"]
    (images / old_id / "input.png").write_bytes(storage.encode(photo))  # As the app stored it before.
    assert _recolour(client, old_id, RED_POINT).status_code == 200
    served = client.get(f"/images/{old_id}/input.png")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(served.content))), photo)

    gray = np.asarray(Image.fromarray(photo).convert("L"))
    gray_id = upload(client, png_bytes(gray)).headers["x-image-id"]
    (images / gray_id / "input.png").write_bytes(storage.encode(gray))  # One channel, before.
    assert not (images / gray_id / "gray.png").exists()
    served = client.get(f"/images/{gray_id}/gray.png")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(served.content))), gray)

    big = make_photo(np.random.default_rng(23), 48, 64)
    wide_gray = (np.asarray(Image.fromarray(big).convert("L"), np.uint16) * 257).astype(np.uint16)
    for name, sent, want in (
        ("input.tif", png_bytes(big, format="TIFF"), big),
        ("input.png", png_bytes(wide_gray), np.repeat((wide_gray // 257).astype(np.uint8)[..., None], 3, -1)),
    ):
        image_id = upload(client, sent).headers["x-image-id"]
        assert (images / image_id / name).read_bytes() == sent
        full = client.get(f"/images/{image_id}/input.png")
        with Image.open(io.BytesIO(full.content)) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(image), want)
        preview = client.get(f"/images/{image_id}/input_preview.jpg")
        with Image.open(io.BytesIO(preview.content)) as image:
            assert preview.headers["content-type"] == "image/jpeg" and image.size == (32, 24)
        with Image.open(io.BytesIO(client.get(f"/images/{image_id}/gray.png").content)) as image:
            assert image.mode == "L" and image.size == (64, 48)
    assert client.get(f"/images/{old_id}/input_preview.jpg").status_code == 200  # A small photo: itself.


def test_a_photo_has_colour_when_more_than_one_percent_of_its_pixels_have_channels_8_levels_apart():
    gray = np.repeat(make_photo(np.random.default_rng(24), 50, 40)[..., :1], 3, -1)
    noisy = gray.copy()
    noisy[..., 2] = np.clip(noisy[..., 2].astype(int) + 8, 0, 255)  # A scan's JPEG noise: 8 levels at most.
    assert not storage.is_color(gray) and not storage.is_color(noisy)
    tinted = gray.copy()
    tinted.reshape(-1, 3)[:20, 0] = np.where(tinted.reshape(-1, 3)[:20, 0] > 127, 0, 255)  # 20 of 2000 pixels: 1%.
    assert not storage.is_color(tinted)
    tinted.reshape(-1, 3)[20, 0] = 0 if tinted.reshape(-1, 3)[20, 0] > 127 else 255  # 21: more than 1%.
    assert storage.is_color(tinted) and storage.is_color(make_photo(np.random.default_rng(25), 50, 40))
