"""The colorization web app (`colorjax.serve`) through Starlette's test client, and a small load test on loopback.

The model is a tiny untrained regression net (nothing is trained): what these tests check is the app's promise,
not colour quality — same-size PNGs that keep the photo's lightness, accounts, limits, ownership, persistence.
The colour-hint tests use `hint_colorizer` (tests/helpers/serve.py), a tiny SIGGRAPH17 whose weights are set by hand
to carry the hints through, so where a hint lands and what colour it gives are known.
"""

import io
import json
import re
import sqlite3
import struct
import time
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("itsdangerous")
pytest.importorskip("httpx")
pytest.importorskip("fastapi_offline")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from helpers.photos import make_photo  # noqa: E402
from helpers.serve import PASSWORD, csrf, hint_colorizer, log_in, png_bytes, sign_up, upload  # noqa: E402
from PIL import Image  # noqa: E402

from colorjax import color, models  # noqa: E402
from colorjax.inference.colorizer import Colorizer  # noqa: E402
from colorjax.serve import auth, db  # noqa: E402
from colorjax.serve.app import DOCS_ASSETS_URL, create_app  # noqa: E402


@pytest.fixture(scope="module")
def colorizer():
    model = models.get_model("regression", width=4)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
    return Colorizer(model=model, variables=dict(variables), resolution=32, description="tiny")


@pytest.fixture(scope="module")
def hints_model():
    return hint_colorizer()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def app(colorizer, data_dir):
    return create_app(colorizer, data_dir)


def lightness(rgb):
    return np.asarray(color.rgb_to_lab(np.asarray(rgb, np.float32) / 255.0))[..., 0]


def stored_files(data_dir):
    return sorted(p.relative_to(data_dir).as_posix() for p in (data_dir / "images").rglob("*"))


def test_sign_up_log_out_log_in_and_wrong_password(app):
    client = TestClient(app)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert sign_up(client).status_code == 303
    assert "alice" in client.get("/").text
    assert sign_up(TestClient(app)).status_code == 400  # The name is taken.
    token = csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    wrong = log_in(client, password="not the password")
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert log_in(client, username="nobody").status_code == 401
    assert log_in(client).status_code == 303
    assert client.get("/history").status_code == 200


def test_stored_password_is_a_scrypt_hash(app, data_dir):
    sign_up(TestClient(app))
    stored = app.state.database.user_by_name("alice")[1]
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
    assert auth.verify_password(PASSWORD, stored) and not auth.verify_password("x" + PASSWORD, stored)
    assert PASSWORD.encode() not in (data_dir / "colorjax.sqlite3").read_bytes()


def test_failed_logins_are_throttled_per_user_and_address(app):
    sign_up(TestClient(app), "alice")
    sign_up(TestClient(app), "bob")
    client = TestClient(app)
    for _ in range(auth.FREE_FAILURES_PER_USERNAME):
        assert log_in(client, password="wrong password").status_code == 401
    throttled = log_in(client)  # Even the right password waits now.
    assert throttled.status_code == 429 and "Too many failed log-ins" in throttled.text
    assert log_in(TestClient(app), "bob").status_code == 303  # Another account is not locked.


def test_requests_without_the_csrf_token_are_refused(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    photo = png_bytes(make_photo(np.random.default_rng(0), 20, 24))
    refused = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    forged = client.post("/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert "alice" in client.get("/").text  # Still logged in.
    login_without_token = TestClient(app).post(
        "/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False
    )
    assert login_without_token.status_code == 403
    assert stored_files(data_dir) == [] and app.state.database.image_count() == 0


def test_upload_gives_a_same_size_png_keeping_the_lightness(app):
    client = TestClient(app)
    sign_up(client)
    rng = np.random.default_rng(1)
    for height, width in ((37, 23), (5, 7)):
        photo = make_photo(rng, height, width)
        response = upload(client, png_bytes(photo))
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "PNG" and image.size == (width, height) and image.mode == "RGB"
            assert not image.info.get("exif") and not getattr(image, "text", {})
            colorized = np.asarray(image)
        # Only gamut clipping and 8-bit rounding move L: the photo's lightness is kept pixel by pixel.
        assert np.mean(np.abs(lightness(colorized) - lightness(photo))) < 1.0
        assert response.headers["x-image-id"] in client.get("/history").text
    assert len(client.get("/api/history").json()["images"]) == 2


def test_exif_orientation_is_applied_and_metadata_stripped(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    image = Image.fromarray(make_photo(np.random.default_rng(2), 20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
    exif[0x010F] = "SecretCam"
    response = upload(client, png_bytes(np.asarray(image), format="JPEG", exif=exif), "cam.jpg")
    with Image.open(io.BytesIO(response.content)) as colorized:
        assert colorized.size == (20, 40)  # Shown upright: width and height swapped.
    # The metadata stays only in the upload as sent (docs/serve.md), and no image the app sends carries it.
    for path in (data_dir / "images").rglob("*.*"):
        assert (b"SecretCam" in path.read_bytes()) == (path.name == "input.jpg"), path
    image_id = response.headers["x-image-id"]
    for name in ("input.png", "input.jpg", "input_preview.jpg", "color.png", "color.jpg", "gray.png", "thumb.jpg"):
        served = client.get(f"/images/{image_id}/{name}")
        assert served.status_code == 200 and b"SecretCam" not in served.content, name


def bomb_png(width=30000, height=30000) -> bytes:
    """A valid PNG header claiming width x height RGB pixels, with almost no data behind it."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def test_oversize_bomb_and_non_image_uploads_are_refused_with_nothing_stored(colorizer, data_dir):
    app = create_app(colorizer, data_dir, single_user=True, max_upload_mb=0.05, max_pixels=100_000)
    client = TestClient(app)
    noise = np.random.default_rng(3).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    too_big = upload(client, png_bytes(noise))  # ~77 kB > 50 kB.
    assert too_big.status_code == 413 and "--max-upload-mb" in too_big.json()["error"]
    bomb = upload(client, bomb_png())
    assert bomb.status_code == 413 and "--max-pixels" in bomb.json()["error"]
    over_pixels = upload(client, bomb_png(400, 300))  # 120,000 pixels > 100,000, refused from the header.
    assert over_pixels.status_code == 413 and "--max-pixels" in over_pixels.json()["error"]
    not_image = upload(client, b"GIF89a is not what this is" * 10, "photo.png")
    assert not_image.status_code == 400 and "not an image" in not_image.json()["error"]
    truncated = upload(client, png_bytes(make_photo(np.random.default_rng(4), 64, 64))[:300])
    assert truncated.status_code == 400
    declared = client.post(
        "/api/colorize",
        content=b"x" * 10,
        headers={"content-length": str(10**9), "content-type": "multipart/form-data; boundary=x"},
    )
    assert declared.status_code == 413
    assert stored_files(data_dir) == [] and app.state.database.image_count() == 0
    assert upload(client, png_bytes(make_photo(np.random.default_rng(5), 30, 30))).status_code == 200


def test_the_stored_gray_image_is_the_gray_of_the_photos_lightness(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    photo = make_photo(np.random.default_rng(11), 24, 20)
    image_id = upload(client, png_bytes(photo)).headers["x-image-id"]
    with Image.open(data_dir / "images" / image_id / "gray.png") as image:
        assert image.mode == "L"  # One channel: a third of the bytes of RGB.
        gray = np.asarray(image.convert("RGB"))
    want = color.gray_picture(color.rgb_to_lab(photo / np.float32(255.0))[..., :1])
    assert gray.shape == photo.shape and np.abs(gray.astype(int) - want).max() <= 1
    # The sRGB gray of (L, 0, 0), not L / 100 (which is 9 levels too light at L = 50).
    assert np.abs(gray[..., 0] - np.round(lightness(photo) * 2.55)).max() > 3


def test_a_failed_store_leaves_no_temporary_file_folder_or_row(colorizer, data_dir, monkeypatch):
    from colorjax import files
    from colorjax.serve.storage import ImageStore

    store = ImageStore(data_dir)
    real_replace, calls = files.os.replace, []

    def full_disk_on_second_file(source, destination):
        calls.append(destination)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(source, destination)

    monkeypatch.setattr(files.os, "replace", full_disk_on_second_file)
    upload_bytes = png_bytes(make_photo(np.random.default_rng(13), 8, 8))  # Named by its format: input.png.
    contents = {"input": upload_bytes, "gray": b"gray", "color": b"colour", "thumb": b"thumb"}
    with pytest.raises(OSError, match="No space"):
        store.write("A" * 16, contents)  # a new colorization: its folder appears whole or not at all
    assert stored_files(data_dir) == []

    monkeypatch.undo()
    store.write("B" * 16, contents)
    assert store.ids() == ["B" * 16]
    calls.clear()
    monkeypatch.setattr(files.os, "replace", full_disk_on_second_file)
    with pytest.raises(OSError, match="No space"):
        store.replace("B" * 16, {"color": b"new colour", "thumb": b"new thumb"})  # a recolour: file by file
    monkeypatch.undo()
    folder = f"images/{'B' * 16}"
    names = {**storage_names(), "input": "input.png"}
    assert stored_files(data_dir) == [folder] + sorted(f"{folder}/{names[kind]}" for kind in contents)
    assert (store.path("B" * 16, "color")).read_bytes() == b"new colour"
    assert (store.path("B" * 16, "thumb")).read_bytes() == b"thumb"  # the failed one kept its old contents

    # Through the app: an encoder that fails stores nothing and records nothing.
    app = create_app(colorizer, data_dir / "app", single_user=True)
    client = TestClient(app, raise_server_exceptions=False)

    def broken_jpeg_encoder(rgb, format="png", *options):
        if format == "jpg":
            raise OSError("encoder failed")
        return real_encode(rgb, format, *options)

    real_encode = files.encode_image
    monkeypatch.setattr(files, "encode_image", broken_jpeg_encoder)
    assert upload(client, png_bytes(make_photo(np.random.default_rng(12), 16, 16))).status_code == 500
    assert stored_files(data_dir / "app") == [] and app.state.database.image_count() == 0


def storage_names():
    from colorjax.serve.storage import FILE_NAMES

    return FILE_NAMES


def test_user_file_names_never_reach_the_file_system(app, data_dir, tmp_path):
    client = TestClient(app)
    sign_up(client)
    photo = png_bytes(make_photo(np.random.default_rng(6), 16, 16))
    for name in ("../../evil.png", "..\\..\\evil2.png", "/etc/passwd", "C:\\Windows\\x.png"):
        assert upload(client, photo, name).status_code == 200
    names = {item["name"] for item in client.get("/api/history").json()["images"]}
    assert names == {"evil.png", "evil2.png", "passwd", "x.png"}
    outside = [p for p in tmp_path.rglob("*") if "evil" in p.name or p.name == "passwd"]
    assert outside == []
    assert {p.name for p in (data_dir / "images").rglob("*") if p.is_file()} == {
        "input.png",
        "gray.png",
        "color.png",
        "thumb.jpg",
    }
    for path in ("/api/images/..%2Fsecret_key", "/images/..%2F..%2Fsecret_key/color.png"):
        assert client.get(path).status_code == 404


def test_another_users_image_is_404_like_a_missing_one(app):
    alice, bob = TestClient(app), TestClient(app)
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    image_id = upload(alice, png_bytes(make_photo(np.random.default_rng(7), 16, 20))).headers["x-image-id"]
    missing = bob.get("/api/images/AAAAAAAAAAAAAAAA")
    for response in (
        bob.get(f"/api/images/{image_id}"),
        bob.delete(f"/api/images/{image_id}", headers={"X-CSRF-Token": csrf(bob, "/")}),
        bob.get(f"/images/{image_id}"),
        bob.get(f"/images/{image_id}/color.png"),
        TestClient(app).get(f"/images/{image_id}/color.png"),  # Not logged in.
    ):
        assert response.status_code == 404
    assert bob.get(f"/api/images/{image_id}").json() == missing.json() == {"error": "No such image."}
    assert bob.get("/api/history").json() == {"images": []}
    assert alice.get(f"/api/images/{image_id}").status_code == 200


def test_delete_removes_the_files_and_the_row_once_its_undo_window_is_over(app, data_dir):
    client = TestClient(app)
    sign_up(client)
    first, second = (
        upload(client, png_bytes(make_photo(np.random.default_rng(s), 16, 16))).headers["x-image-id"] for s in (8, 9)
    )
    assert (data_dir / "images" / first / "color.png").is_file()
    token = csrf(client, "/")
    assert client.delete(f"/api/images/{first}", headers={"X-CSRF-Token": token}).status_code == 200
    page_delete = client.post(f"/images/{second}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert page_delete.status_code == 303
    assert app.state.database.image_count() == 0 and client.get(f"/api/images/{first}").status_code == 404
    state = app.state.colorjax
    assert state.purge_deleted(time.time() + state.settings.undo_s + 1) == 2  # The undo window, passed.
    assert stored_files(data_dir) == [] and app.state.database.image_ids() == set()


def test_restart_keeps_accounts_sessions_and_history(colorizer, app, data_dir):
    client = TestClient(app)
    sign_up(client)
    image_id = upload(client, png_bytes(make_photo(np.random.default_rng(10), 24, 16))).headers["x-image-id"]
    app.state.database.close()
    restarted = create_app(colorizer, data_dir)
    again = TestClient(restarted, cookies=client.cookies)  # The same browser, after the restart.
    assert [i["id"] for i in again.get("/api/history").json()["images"]] == [image_id]
    fresh = TestClient(restarted)
    assert log_in(fresh).status_code == 303
    with Image.open(io.BytesIO(fresh.get(f"/api/images/{image_id}").content)) as image:
        assert image.size == (16, 24)


def test_api_token_for_scripts(app):
    client = TestClient(app)
    sign_up(client)
    page = client.post("/account/token", data={"csrf_token": csrf(client, "/account")})
    token = re.search(r'id="token">([^<]+)<', page.text).group(1)
    script = TestClient(app)  # No cookies, no CSRF token: the bearer token alone.
    headers = {"Authorization": f"Bearer {token}"}
    photo = png_bytes(make_photo(np.random.default_rng(11), 16, 16))
    response = script.post("/api/colorize", files={"image": ("a.png", photo, "image/png")}, headers=headers)
    assert response.status_code == 200
    assert len(script.get("/api/history", headers=headers).json()["images"]) == 1
    bad = script.get("/api/history", headers={"Authorization": "Bearer cj_wrong"})
    assert bad.status_code == 401 and "error" in bad.json()
    assert script.get("/api/history").status_code == 401
    page = script.get("/history", headers={"Authorization": "Bearer cj_wrong"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"


def test_single_user_mode_needs_no_account(colorizer, data_dir):
    app = create_app(colorizer, data_dir, single_user=True)
    browser = TestClient(app)
    assert browser.get("/").status_code == 200 and browser.get("/login", follow_redirects=False).status_code == 303
    photo = png_bytes(make_photo(np.random.default_rng(12), 16, 16))
    assert upload(browser, photo).status_code == 200  # The page sends its CSRF token.
    script = TestClient(app)  # curl: no cookie, no Origin.
    assert upload(script, photo).status_code == 200
    cross_site = script.post(
        "/api/colorize",
        files={"image": ("a.png", photo, "image/png")},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert len(script.get("/api/history").json()["images"]) == 2


def test_temperature_recolours_an_eccv16_image(data_dir):
    model = models.get_model("eccv16", width=1 / 16)
    variables = model.init(jax.random.key(1), jnp.zeros((1, 32, 32, 1)), train=False)
    # Random logit biases: a peaked, non-uniform distribution that the temperature visibly reshapes.
    head = dict(variables["params"]["model8_6"])
    head["bias"] = 3.0 * jax.random.normal(jax.random.key(2), head["bias"].shape)
    variables = {**variables, "params": {**variables["params"], "model8_6": head}}
    eccv16 = Colorizer(model=model, variables=dict(variables), resolution=32, square=True)
    client = TestClient(create_app(eccv16, data_dir, single_user=True))
    photo = make_photo(np.random.default_rng(13), 24, 24)
    first = upload(client, png_bytes(photo))
    image_id = first.headers["x-image-id"]
    assert 'id="temperature"' in client.get(f"/images/{image_id}").text
    token = csrf(client, "/")
    plain_mean = client.post(
        f"/api/images/{image_id}/recolor",
        data={"temperature": "1.0"},
        headers={"X-CSRF-Token": token},
    )
    assert plain_mean.status_code == 200 and plain_mean.content != first.content
    assert client.get(f"/api/images/{image_id}").content == plain_mean.content
    assert client.get("/api/history").json()["images"][0]["temperature"] == 1.0
    out_of_range = client.post(
        f"/api/images/{image_id}/recolor",
        data={"temperature": "7"},
        headers={"X-CSRF-Token": token},
    )
    assert out_of_range.status_code == 400


def test_openapi_documents_the_api(app):
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert {"/api/colorize", "/api/history", "/api/images/{image_id}", "/healthz"} <= set(paths)
    assert "image" in str(paths["/api/colorize"]["post"]["requestBody"])
    assert TestClient(app).get("/healthz").json()["ok"] is True


def test_concurrent_users_get_exactly_their_own_history(colorizer, tmp_path):
    from colorjax.bench.serve import load_test, running_server

    photos = [make_photo(np.random.default_rng(s), 24, 32) for s in range(3)]
    with running_server(create_app(colorizer, tmp_path / "load")) as base_url:
        row = load_test(base_url, photos, users=5, requests_per_user=2)
    assert row["requests"] == 10 and row["p95_s"] >= row["p50_s"] > 0
    assert row["rss_peak_mb"] >= row["rss_before_mb"] > 0


def test_cli_help_exits_zero(capsys):
    from colorjax.cli.serve import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--single-user" in capsys.readouterr().out


def test_cli_reports_a_missing_run_in_one_line(tmp_path, capsys):
    from colorjax.cli.serve import main

    assert main(["--workdir", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_weights_by_name_errors_in_one_line(tmp_path, capsys, monkeypatch):
    """`--weights NAME` goes through the weights registry: an unknown name lists the known ones; a known name
    that cannot be downloaded says which URL failed and where to put the file (nothing reaches the internet)."""
    from colorjax.cli.serve import main

    assert main(["--weights", "nosuch", "--data-dir", str(tmp_path / "d")]) == 1
    assert "known names: eccv16, siggraph17" in capsys.readouterr().err
    monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")
    assert main(["--weights", "eccv16", "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "http://127.0.0.1:9/colorization_release_v2-9b330a0b.pth" in err


def chroma(rgb):
    return np.asarray(color.rgb_to_lab(np.asarray(rgb, np.float32) / 255.0))[..., 1:]


def decoded(response):
    with Image.open(io.BytesIO(response.content)) as image:
        return np.asarray(image.convert("RGB"))


RED = [{"x": 8, "y": 30, "color": "#ff0000"}]  # Far from its mirror image (x=30, y=8).


def test_a_red_hint_colours_its_point_red_and_recolours_in_place(hints_model, data_dir):
    client = TestClient(create_app(hints_model, data_dir, single_user=True))
    photo = make_photo(np.random.default_rng(14), 40, 48)
    plain = upload(client, png_bytes(photo))
    hinted = upload(client, png_bytes(photo), hints=json.dumps(RED))
    assert plain.status_code == hinted.status_code == 200
    red_ab = chroma(np.array([255, 0, 0], np.uint8))
    plain_rgb, hinted_rgb = decoded(plain), decoded(hinted)
    plain_distance = np.linalg.norm(chroma(plain_rgb)[30, 8] - red_ab)
    hinted_distance = np.linalg.norm(chroma(hinted_rgb)[30, 8] - red_ab)
    assert plain_distance > 60 and hinted_distance < 0.25 * plain_distance, (plain_distance, hinted_distance)
    assert hinted_rgb[30, 8, 0] > hinted_rgb[30, 8, 1] + 80  # Red at the point...
    far = np.abs(hinted_rgb.astype(int) - plain_rgb.astype(int))[:20, 18:]
    assert far.max() <= 1  # ...and nowhere far from it.
    assert np.mean(np.abs(lightness(hinted_rgb) - lightness(photo))) < 1.0  # The photo's own lightness.
    history = {item["id"]: item for item in client.get("/api/history").json()["images"]}
    assert history[hinted.headers["x-image-id"]]["hints"] == RED
    assert history[plain.headers["x-image-id"]]["hints"] is None

    # The page offers the points; re-colouring the plain item with them updates it in place.
    image_id = plain.headers["x-image-id"]
    page = client.get(f"/images/{image_id}").text
    assert 'id="hints"' in page and "data-points='[]'" in page
    token = csrf(client, "/")
    recolored = client.post(
        f"/api/images/{image_id}/recolor", data={"hints": json.dumps(RED)}, headers={"X-CSRF-Token": token}
    )
    assert recolored.status_code == 200 and recolored.content == hinted.content
    assert client.get(f"/api/images/{image_id}").content == hinted.content
    assert '"color": "#ff0000"' in client.get(f"/images/{image_id}").text
    history = client.get("/api/history").json()["images"]
    assert len(history) == 2 and {item["id"]: item["hints"] for item in history}[image_id] == RED
    cleared = client.post(f"/api/images/{image_id}/recolor", data={"hints": "[]"}, headers={"X-CSRF-Token": token})
    assert cleared.content == plain.content  # No points: the automatic colours again.
    assert {item["id"]: item["hints"] for item in client.get("/api/history").json()["images"]}[image_id] is None


@pytest.mark.parametrize(
    "hints, message",
    [
        ("[{x: 1}]", "'hints' is not valid JSON"),
        ('{"x": 1, "y": 2, "color": "#ff0000"}', "must be a list of points"),
        ('[{"x": 1, "y": 2, "color": "red"}]', "'color' must be a hex colour"),
        ('[{"x": 1.5, "y": 2, "color": "#ff0000"}]', "'x' must be an integer"),
        ('[{"x": 48, "y": 2, "color": "#ff0000"}]', "point 0 at x=48, y=2 lies outside the 48x40 photo"),
        ('[{"x": 3, "y": -1, "color": "#ff0000"}]', "lies outside"),
        (json.dumps([{"x": 1, "y": 1, "color": "#00ff00"}] * 101), "Too many hints: 101 points, at most 100"),
    ],
)
def test_bad_hints_are_refused_in_one_line_with_nothing_stored(hints_model, data_dir, hints, message):
    app = create_app(hints_model, data_dir, single_user=True)
    response = upload(TestClient(app), png_bytes(make_photo(np.random.default_rng(15), 40, 48)), hints=hints)
    error = response.json()["error"]
    assert response.status_code == 400 and message in error and "\n" not in error
    assert stored_files(data_dir) == [] and app.state.database.image_count() == 0


def test_a_model_without_hints_refuses_them_and_shows_no_hint_controls(app):
    client = TestClient(app)
    sign_up(client)
    photo = png_bytes(make_photo(np.random.default_rng(16), 16, 16))
    refused = upload(client, photo, hints=json.dumps(RED))
    assert refused.status_code == 400 and "takes no colour hints" in refused.json()["error"]
    image_id = upload(client, photo).headers["x-image-id"]
    assert 'id="hints"' not in client.get(f"/images/{image_id}").text
    recolor = client.post(
        f"/api/images/{image_id}/recolor", data={"hints": "[]"}, headers={"X-CSRF-Token": csrf(client, "/")}
    )
    assert recolor.status_code == 400 and "nothing to re-colour with" in recolor.json()["error"]


def test_a_version_1_database_gains_the_hints_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(db._MIGRATIONS[1] + "PRAGMA user_version = 1;")
        old.execute("INSERT INTO users (username, password_hash, created) VALUES ('ada', '!', 0)")
        old.execute("INSERT INTO images VALUES ('AAAAAAAAAAAAAAAA', 1, 'a.png', 4, 3, 0, NULL, 1.0)")
    old.close()
    database = db.Database(path)
    assert database.image("AAAAAAAAAAAAAAAA", 1).hints is None
    database.set_hints("AAAAAAAAAAAAAAAA", RED)
    assert database.history(1)[0].hints == RED
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION == 5


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_pages_load_their_scripts_from_this_server(app, page):
    client = TestClient(app)
    html = client.get(page).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assets = [url for url in urls if url.endswith((".js", ".css"))]
    assert assets and all(url.startswith(DOCS_ASSETS_URL + "/") for url in assets), urls
    assert not re.search(r"https?://|//cdn", html), "the docs page must not load anything from the internet"
    for url in assets:
        response = client.get(url)
        kind = "javascript" if url.endswith(".js") else "css"
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert len(response.content) > 100_000  # The real bundles (Swagger UI 5, ReDoc), not a stub.


def test_a_new_data_folder_is_private(colorizer, tmp_path):
    """The app's data (accounts, photos) once sat in a folder every local user could read (0755)."""
    import stat

    create_app(colorizer, tmp_path / "new" / "data", single_user=True)
    assert stat.S_IMODE((tmp_path / "new" / "data").stat().st_mode) == 0o700
