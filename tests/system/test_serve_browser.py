"""The colorization app in a real headless Chromium (Selenium + Debian's chromium-driver) against a real uvicorn.

Signs up, logs out and in, uploads a photo through the file picker, waits for the result, drags the before/after
slider, places colour points on the photo and re-colours with them, downloads the PNG, finds the item in the
history, opens the API documentation and logs out; queues, cancels and picks models; zooms and pans a large photo,
shows it at actual size, deletes it with undo and deletes the account; saving a screenshot at each step (into $COLORJAX_SCREENSHOTS
when set, else the test's temporary folder). The model is test_serve's `hint_colorizer`: a tiny SIGGRAPH17 that
carries the points' colours through. Skips only where no Chromium is installed.
"""

import base64
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("selenium")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no Chromium: apt-get install chromium chromium-driver (Debian) for the browser test",
)


@pytest.fixture(scope="module")
def colorizer():
    from helpers.serve import hint_colorizer

    return hint_colorizer()


@pytest.fixture
def photo(tmp_path):
    """A real scene photo where ../shared exists, else a generated one, as a JPEG file."""
    from helpers.paths import SHARED_DIR
    from helpers.photos import make_photo
    from PIL import Image

    scenes = sorted((SHARED_DIR / "data/intel_scenes_150/test/street").glob("*.jpg"))
    path = tmp_path / "street photo.jpg"
    if scenes:
        shutil.copy(scenes[0], path)
    else:
        Image.fromarray(make_photo(np.random.default_rng(0), 120, 160)).save(path, quality=92)
    return path


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_user_colours_a_photo_in_chromium(colorizer, photo, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from colorjax.bench.serve import running_server
    from colorjax.serve.app import create_app

    shots = Path(os.environ.get("COLORJAX_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    find = browser.find_element

    def fill(fields: dict[str, str], screenshot: str | None = None):
        for name, value in fields.items():
            find(By.ID, name).clear()
            find(By.ID, name).send_keys(value)
        if screenshot:
            browser.save_screenshot(str(shots / screenshot))
        find(By.ID, "submit").click()

    with running_server(create_app(colorizer, tmp_path / "data")) as base_url:
        browser.get(base_url + "/signup")
        fill(
            {"username": "ada", "password": "analytical engine", "password2": "analytical engine"},
            "1_signup.png",
        )
        wait_for(lambda: browser.current_url == base_url + "/", what="the colorize page")
        assert "ada" in find(By.CLASS_NAME, "who").text

        find(By.ID, "logout").click()
        wait_for(lambda: browser.current_url.endswith("/login"), what="the log-in page")
        fill({"username": "ada", "password": "analytical engine"})
        wait_for(lambda: browser.current_url == base_url + "/", what="the colorize page")
        browser.save_screenshot(str(shots / "2_colorize.png"))

        find(By.ID, "file").send_keys(str(photo))
        wait_for(lambda: "/images/" in browser.current_url, what="the result page")
        image_id = browser.current_url.rsplit("/", 1)[1]
        loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        wait_for(lambda: browser.execute_script(loaded), what="the images")
        with Image.open(photo) as original:
            size = original.size
        natural = browser.execute_script(
            "const i = document.getElementById('after'); return [i.naturalWidth, i.naturalHeight]"
        )
        assert tuple(natural) == size  # The slider shows the full-resolution colorization.
        browser.save_screenshot(str(shots / "3_result.png"))
        find(By.CSS_SELECTOR, 'input[name="before"][value="input"]').click()  # A colour upload: the original.
        wait_for(
            lambda: find(By.ID, "before").get_attribute("src").endswith("/input.png"),
            what="the original on the left",
        )
        find(By.CSS_SELECTOR, 'input[name="before"][value="gray"]').click()

        compare = find(By.ID, "compare")
        ActionChains(browser).move_to_element(compare).click_and_hold().move_by_offset(
            -compare.size["width"] // 4, 0
        ).release().perform()
        split = float(find(By.ID, "split").get_attribute("value"))
        assert 15 < split < 35, split  # Dragged from the middle to a quarter.
        browser.save_screenshot(str(shots / "4_slider.png"))

        # Colour points: click on the photo to place them, pick their colours, re-colour.
        stored = tmp_path / "data" / "images" / image_id / "color.png"
        with Image.open(stored) as image:
            automatic = np.asarray(image.convert("RGB")).astype(int)
        find(By.ID, "hint-mode").click()
        after = find(By.ID, "after")
        shown = after.size
        clicks = {"#e02020": (0.4, 0.3), "#2060e0": (0.75, 0.7)}  # colour: where, as fractions of the photo
        for where in clicks.values():
            ActionChains(browser).move_to_element_with_offset(
                after, round((where[0] - 0.5) * shown["width"]), round((where[1] - 0.5) * shown["height"])
            ).click().perform()
        rows = find(By.ID, "hint-list").find_elements(By.CLASS_NAME, "hint")
        assert len(rows) == len(find(By.ID, "hint-markers").find_elements(By.CLASS_NAME, "marker")) == 2
        assert float(find(By.ID, "split").get_attribute("value")) == split  # Placing points left the slider alone.
        points = [(int(row.get_attribute("data-x")), int(row.get_attribute("data-y"))) for row in rows]
        for (x, y), (fx, fy) in zip(points, clicks.values(), strict=True):
            assert abs(x - fx * size[0]) <= 2 and abs(y - fy * size[1]) <= 2, (x, y)  # Full-resolution pixels.
            picker = rows[points.index((x, y))].find_element(By.CSS_SELECTOR, "input[type=color]")
            start = [int(picker.get_attribute("value")[i : i + 2], 16) for i in (1, 3, 5)]
            assert np.abs(np.array(start) - automatic[y, x]).max() <= 2  # It starts as the colour there now.
        for row, hex_color in zip(rows, clicks, strict=True):
            picker = row.find_element(By.CSS_SELECTOR, "input[type=color]")
            # WebDriver cannot drive the native colour dialog: set the value as the dialog would.
            browser.execute_script(
                "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))", picker, hex_color
            )
        find(By.ID, "hint-recolor").click()
        wait_for(lambda: "Re-coloured with 2 points" in find(By.ID, "hint-status").text, what="the re-colouring")
        with Image.open(stored) as image:
            hinted = np.asarray(image.convert("RGB")).astype(int)
        (red_x, red_y), (blue_x, blue_y) = points
        redness, was = hinted[..., 0] - hinted[..., 2], automatic[..., 0] - automatic[..., 2]  # red minus blue
        assert redness[red_y, red_x] > was[red_y, red_x] + 60, "the red point did not turn its place red"
        assert redness[blue_y, blue_x] < was[blue_y, blue_x] - 60, "the blue point did not turn its place blue"
        assert find(By.ID, "after").get_attribute("src").startswith("blob:")  # The slider shows the new colours.
        assert find(By.ID, "hint-status").rect["y"] + 20 <= browser.execute_script("return window.innerHeight")
        browser.save_screenshot(str(shots / "4_hints.png"))  # The whole page at 1280 x 900, no scrolling.
        ActionChains(browser).move_to_element_with_offset(after, 0, 0).click().perform()  # A third point...
        assert len(find(By.ID, "hint-list").find_elements(By.CLASS_NAME, "hint")) == 3
        find(By.ID, "hint-list").find_elements(By.CLASS_NAME, "remove")[2].click()  # ...removed again.
        assert len(find(By.ID, "hint-markers").find_elements(By.CLASS_NAME, "marker")) == 2
        browser.refresh()  # The points were saved with the image.
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#hint-list .hint")) == 2, what="saved points")

        find(By.ID, "download-png").click()
        downloaded = wait_for(lambda: [p for p in browser.downloads.glob("*.png")], what="the download")[0]
        wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), what="the download")
        assert downloaded.name == "street_photo-colorized.png"
        with Image.open(io.BytesIO(downloaded.read_bytes())) as image:
            assert image.size == size and image.format == "PNG"

        # Drag and drop: a file dropped on the zone (a synthetic drop event carrying a real File).
        find(By.LINK_TEXT, "Colorize").click()
        wait_for(lambda: browser.current_url == base_url + "/", what="the colorize page")
        browser.execute_script(
            """const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
            document.getElementById("dropzone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));""",
            base64.b64encode(photo.read_bytes()).decode(),
        )
        wait_for(lambda: "/images/" in browser.current_url, what="the dropped photo's result")
        dropped_id = browser.current_url.rsplit("/", 1)[1]
        assert dropped_id != image_id

        find(By.LINK_TEXT, "History").click()
        wait_for(lambda: browser.current_url.endswith("/history"), what="the history page")
        items = browser.find_elements(By.CSS_SELECTOR, "#gallery .item")
        assert [item.get_attribute("data-image") for item in items] == [dropped_id, image_id]
        wait_for(lambda: browser.execute_script(loaded), what="the thumbnails")
        browser.save_screenshot(str(shots / "5_history.png"))

        # The API documentation works without internet: Swagger UI from this server renders the operations.
        find(By.LINK_TEXT, "API").click()
        wait_for(
            lambda: "/api/colorize" in [e.text for e in browser.find_elements(By.CLASS_NAME, "opblock-summary-path")],
            what="Swagger UI's list of operations",
        )
        browser.save_screenshot(str(shots / "6_docs.png"))
        browser.back()

        wait_for(lambda: browser.current_url.endswith("/history"), what="the history page")
        find(By.ID, "logout").click()
        wait_for(lambda: browser.current_url.endswith("/login"), what="the log-in page")
        browser.get(base_url + "/history")
        assert browser.current_url.endswith("/login")  # Logged out: the history is no longer shown.


def test_several_photos_dropped_at_once_queue_show_their_place_and_cancel(colorizer, photo, browser, tmp_path):
    """Three photos dropped at once become three jobs: while the first is held in the model, the page shows it
    colouring and the others queued with their place and an estimate; one is cancelled, the others finish."""
    import httpx
    from helpers.serve import HeldColorizer
    from selenium.webdriver.common.by import By

    from colorjax.bench.serve import running_server
    from colorjax.serve.app import create_app

    shots = Path(os.environ.get("COLORJAX_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    held = HeldColorizer(colorizer)
    with running_server(create_app(held, tmp_path / "data", single_user=True)) as base_url:
        with httpx.Client(base_url=base_url, timeout=60) as client:  # One photo first: it sets the estimate.
            assert client.post("/api/colorize", files={"image": ("a.jpg", photo.read_bytes())}).status_code == 200
        browser.get(base_url + "/")
        held.hold.set()
        try:
            browser.execute_script(
                """const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
                const transfer = new DataTransfer();
                for (const name of ["harbour.jpg", "market.jpg", "station.jpg"])
                    transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
                document.getElementById("dropzone").dispatchEvent(
                    new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));""",
                base64.b64encode(photo.read_bytes()).decode(),
            )
            assert held.entered.wait(60)

            def states():
                return [row.find_element(By.CLASS_NAME, "state").text for row in find_rows()]

            def find_rows():
                return browser.find_elements(By.CSS_SELECTOR, "#jobs .job")

            expected = ("Colouring for", "Queued (next in line)", "Queued (1 ahead)")

            def queue_shown():
                shown = states()
                return len(shown) == 3 and all(map(str.startswith, shown, expected)) and shown

            shown = wait_for(queue_shown, what="the queue")
            assert "left" in shown[2]  # An estimate, from the photo coloured before.
            assert browser.find_element(By.ID, "queue-summary").text == "2 queued · 1 colouring"
            browser.save_screenshot(str(shots / "7_queue.png"))
            find_rows()[2].find_element(By.CLASS_NAME, "cancel").click()
            wait_for(lambda: states()[2] == "Cancelled", what="the cancelled job")
        finally:
            held.hold.clear()
            held.release.set()
        wait_for(lambda: [s.split(" in ")[0] for s in states()] == ["Done", "Done", "Cancelled"], what="the jobs")
        opens = [row.find_elements(By.CLASS_NAME, "open") for row in find_rows()]
        assert [len(o) for o in opens] == [1, 1, 0]
        assert browser.find_element(By.ID, "queue-summary").text == "2 done"
        browser.save_screenshot(str(shots / "8_batch_done.png"))
        with httpx.Client(base_url=base_url, timeout=60) as client:
            names = sorted(image["name"] for image in client.get("/api/history").json()["images"])
        assert names == ["a.jpg", "harbour.jpg", "market.jpg"]
        opens[0][0].click()
        wait_for(lambda: "/images/" in browser.current_url, what="the first photo's result")


def test_a_user_picks_the_model_and_compares_two_models_on_the_slider(colorizer, photo, browser, tmp_path):
    """Two models: the photo is coloured by the one picked on the colorize page, then re-coloured by the other;
    the result page shows the first model's colours left of the handle, the second's right."""
    import jax
    import jax.numpy as jnp
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from colorjax import models
    from colorjax.bench.serve import running_server
    from colorjax.inference.colorizer import Colorizer
    from colorjax.serve.app import create_app

    def plain():
        model = models.get_model("regression", width=4)
        variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
        return Colorizer(model=model, variables=dict(variables), resolution=32, description="plain")

    shots = Path(os.environ.get("COLORJAX_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    find = browser.find_element
    app = create_app({"plain": plain, "sepia": colorizer}, tmp_path / "data", single_user=True)
    with running_server(app) as base_url:
        browser.get(base_url + "/")
        Select(find(By.ID, "model-choice")).select_by_value("plain")
        find(By.ID, "file").send_keys(str(photo))
        wait_for(lambda: "/images/" in browser.current_url, what="the result page")
        assert find(By.ID, "item-model").text == "plain"
        Select(find(By.ID, "other-model")).select_by_value("sepia")
        find(By.ID, "recolor-model").click()
        wait_for(lambda: browser.current_url.endswith("?compare=1"), what="the re-coloured page")
        wait_for(lambda: find(By.ID, "before").get_attribute("src").split("/")[-1].startswith("previous"), what="it")
        loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        wait_for(lambda: browser.execute_script(loaded), what="the images")
        assert find(By.ID, "item-model").text == "sepia" and find(By.ID, "before-tag").text == "plain"
        assert find(By.CSS_SELECTOR, ".tag.right").text == "sepia"
        browser.save_screenshot(str(shots / "9_compare_models.png"))


@pytest.fixture
def large_photo(tmp_path):
    """A photo larger than the page's previews (2048 px): a 14 x 10 mosaic of the real scenes where ../shared
    exists (each sharp at 1:1), else a generated one; as a JPEG file."""
    from helpers.paths import SHARED_DIR
    from helpers.photos import make_photo
    from PIL import Image

    scenes = sorted((SHARED_DIR / "data/intel_scenes_150/test").glob("*/*.jpg"))[::7][:140]
    path = tmp_path / "mosaic.jpg"
    if len(scenes) == 140:
        mosaic = Image.new("RGB", (14 * 150, 10 * 150))
        for i, scene in enumerate(scenes):
            with Image.open(scene) as tile:
                mosaic.paste(tile.convert("RGB").resize((150, 150)), (150 * (i % 14), 150 * (i // 14)))
        mosaic.save(path, quality=90)
    else:
        Image.fromarray(make_photo(np.random.default_rng(0), 1500, 2100)).save(path, quality=90)
    return path


def test_a_user_zooms_into_a_large_photo_deletes_it_with_undo_and_deletes_the_account(
    colorizer, large_photo, browser, tmp_path
):
    """At 1280 x 900 the result page shows the photo and every control (colour points, "Re-colour with", delete)
    without scrolling. Zoom (pinch, buttons, wheel) and pan (drag) move both photos together and leave the handle where it
    is, and a colour point placed while zoomed lands on the pixel clicked; "actual size" shows one photo pixel per screen pixel, from the full-resolution files, with the photo's point
    that was under the handle still under it, in the middle. Delete says so in the history with Undo, which brings
    the photo back; without Undo it is gone from the disk once its seconds are over. The account page changes the
    password, deletes all photos and then the account."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    from colorjax.bench.serve import running_server
    from colorjax.serve.app import create_app

    shots = Path(os.environ.get("COLORJAX_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    find = browser.find_element
    data_dir = tmp_path / "data"
    never_loaded = {"plain": lambda: pytest.fail("only its name is shown")}  # A second model: "Re-colour with".
    app = create_app({"sepia": colorizer, **never_loaded}, data_dir)
    with running_server(app) as base_url:
        browser.get(base_url + "/signup")
        for name, value in {
            "username": "ada",
            "password": "analytical engine",
            "password2": "analytical engine",
        }.items():
            find(By.ID, name).send_keys(value)
        find(By.ID, "submit").click()
        wait_for(lambda: browser.current_url == base_url + "/", what="the colorize page")
        find(By.ID, "file").send_keys(str(large_photo))
        wait_for(lambda: "/images/" in browser.current_url, what="the result page")
        image_id = browser.current_url.rsplit("/", 1)[1]
        loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        wait_for(lambda: browser.execute_script(loaded), what="the images")
        assert find(By.ID, "after").get_attribute("src").endswith("/preview.jpg")  # A large photo: previews first.
        natural = "return document.getElementById('before').naturalWidth"
        original, gray = (find(By.CSS_SELECTOR, f'input[name="before"][value="{kind}"]') for kind in ("input", "gray"))
        original.click()  # The original colour too: its preview, made from the upload as sent.
        wait_for(lambda: find(By.ID, "before").get_attribute("src").endswith("/input_preview.jpg"), what="it")
        wait_for(lambda: browser.execute_script(loaded), what="the original's preview")
        assert browser.execute_script(natural) == 2048
        gray.click()

        def rect(element_id):
            return browser.execute_script(
                "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
                "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height}",
                element_id,
            )

        height = browser.execute_script("return window.innerHeight")
        for control in ("compare", "hint-mode", "hint-recolor", "other-model", "recolor-model", "download-png"):
            assert rect(control)["bottom"] <= height, f"{control} is below the fold at 1280 x 900"
        assert (
            browser.execute_script("return document.querySelector('form.delete button').getBoundingClientRect().bottom")
            <= height
        )

        def photo_point_under_handle():  # In the photo's full-resolution pixels.
            after, handle = rect("after"), rect("handle")
            return (handle["left"] - after["left"]) / after["width"] * 2100

        frame = rect("compare")
        middle = (frame["left"] + frame["width"] / 2, frame["top"] + frame["height"] / 2)

        def touch(kind, *fingers):  # A real touch sequence through Chromium's input pipeline (DevTools protocol).
            points = [{"x": middle[0] + dx, "y": middle[1], "id": i} for i, dx in enumerate(fingers)]
            browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", -40, 40)  # Two fingers 80 px apart, spread to 160 px: a pinch to 2x.
        touch("touchMove", -80, 80)
        touch("touchEnd")
        assert find(By.ID, "zoom-level").text == "2.0×"
        assert float(find(By.ID, "split").get_attribute("value")) == 50  # The pinch moved no handle.
        find(By.ID, "zoom-fit").click()
        find(By.ID, "zoom-in").click()
        find(By.ID, "zoom-in").click()
        assert find(By.ID, "zoom-level").text == "2.3×"
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(find(By.ID, "compare")), 0, -300).perform()
        zoomed = rect("after")
        assert zoomed["width"] > 2.25 * frame["width"] * 1.2  # The wheel zoomed in further.
        assert rect("before") == zoomed  # Both photos, together.
        compare = find(By.ID, "compare")
        ActionChains(browser).move_to_element_with_offset(
            compare, frame["width"] // 4, 0
        ).click_and_hold().move_by_offset(-120, -60).release().perform()
        panned = rect("after")
        assert abs(panned["left"] - zoomed["left"] + 120) < 2 and abs(panned["top"] - zoomed["top"] + 60) < 2
        assert rect("before") == panned and float(find(By.ID, "split").get_attribute("value")) == 50
        # A colour point placed while zoomed in lands on the photo's pixel under the click.
        find(By.ID, "hint-mode").click()
        offset = round(frame["width"] / 4)
        ActionChains(browser).move_to_element_with_offset(compare, offset, 0).click().perform()
        row = find(By.CSS_SELECTOR, "#hint-list .hint")
        click = (frame["left"] + frame["width"] / 2 + offset, frame["top"] + frame["height"] / 2)
        expected = [
            (click[i] - panned[side]) / panned[extent] * n
            for i, side, extent, n in ((0, "left", "width", 2100), (1, "top", "height", 1500))
        ]
        placed = [int(row.get_attribute("data-x")), int(row.get_attribute("data-y"))]
        assert all(abs(p - e) <= 3 for p, e in zip(placed, expected, strict=True)), (placed, expected)
        row.find_element(By.CLASS_NAME, "remove").click()
        find(By.ID, "hint-mode").click()
        browser.execute_script(
            "const r = document.getElementById('split'); r.value = 40; r.dispatchEvent(new Event('input'))"
        )
        point = photo_point_under_handle()
        find(By.ID, "actual-size").click()
        assert find(By.ID, "zoom-level").text == "1:1"
        assert abs(rect("after")["width"] - 2100) < 1  # One photo pixel per screen pixel.
        assert abs(photo_point_under_handle() - point) < 1.5  # The same place of the photo...
        frame = rect("compare")
        assert abs(rect("handle")["left"] - (frame["left"] + frame["width"] / 2)) < 2  # ...in the middle.
        wait_for(lambda: find(By.ID, "after").get_attribute("src").endswith("/color.png"), what="the full size")
        wait_for(lambda: browser.execute_script(loaded), what="the full-size images")
        assert browser.execute_script("return document.getElementById('after').naturalWidth") == 2100
        original.click()  # At actual size, the original at full resolution.
        wait_for(lambda: find(By.ID, "before").get_attribute("src").endswith("/input.png"), what="the original")
        wait_for(lambda: browser.execute_script(loaded), what="the full-size original")
        assert browser.execute_script(natural) == 2100
        gray.click()
        browser.save_screenshot(str(shots / "10_zoom.png"))

        find(By.CSS_SELECTOR, "form.delete button").click()
        wait_for(lambda: "/history" in browser.current_url, what="the history")
        assert "Deleted “mosaic.jpg”." in find(By.ID, "deleted-notice").text
        assert not browser.find_elements(By.CSS_SELECTOR, f'#gallery [data-image="{image_id}"]')
        browser.save_screenshot(str(shots / "11_deleted.png"))
        find(By.ID, "undo").click()
        wait_for(lambda: browser.current_url.endswith(f"/images/{image_id}"), what="the photo back")
        browser.get(base_url + "/account")
        assert "1 photo in your history" in find(By.ID, "delete-photos-form").find_element(By.XPATH, "..").text
        browser.save_screenshot(str(shots / "12_account.png"))
        browser.get(base_url + f"/images/{image_id}")
        app.state.colorjax.settings.undo_s = 1.0  # This delete's window is short, to see it end.
        find(By.CSS_SELECTOR, "form.delete button").click()
        wait_for(lambda: "/history" in browser.current_url, what="the history")
        wait_for(lambda: not browser.find_elements(By.ID, "undo"), what="the end of the undo window")
        wait_for(lambda: not (data_dir / "images" / image_id).exists(), what="the files removed")

        browser.get(base_url + "/account")
        for name, value in {
            "current-password": "analytical engine",
            "new-password": "difference engine",
            "new-password2": "difference engine",
        }.items():
            find(By.ID, name).send_keys(value)
        find(By.ID, "change-password").click()
        wait_for(lambda: browser.find_elements(By.ID, "account-notice"), what="the password changed")
        assert "Password changed" in find(By.ID, "account-notice").text
        find(By.ID, "delete-account-password").send_keys("difference engine")
        find(By.ID, "delete-account").click()
        browser.switch_to.alert.accept()  # "Delete your account and all its photos for good?"
        wait_for(lambda: browser.find_elements(By.ID, "login-notice"), what="the log-in page")
        assert "Your account and its photos are deleted." in find(By.ID, "login-notice").text
        assert app.state.database.user_by_name("ada") is None
