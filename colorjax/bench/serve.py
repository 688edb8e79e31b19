"""The web app under load: concurrent colorize requests from several users against a real uvicorn on loopback.

`python -m colorjax.bench serve` starts `colorjax.serve` on 127.0.0.1 (a free port, a fresh data dir), signs up
5 users, gives each an API token, then sends 50 `POST /api/colorize` at once (10 per user, from 50 threads) and
checks that every one is answered with a PNG of its photo's size, that no id is lost or shared, and that each
user's `GET /api/history` holds exactly their own images. Rows: requests, users, p50/p95/max latency (s),
throughput (images/s), the slowest `GET /healthz` polled meanwhile (the event loop stays free), and the peak
resident memory of this process (the server runs in a thread of it, beside the loopback clients) sampled during the
burst, with its value just before (`rss_before_mb`, `rss_peak_mb`):

- full: the regression baseline at the default width (32) working at 256 px with the model running one and two
  photos at a time (`--concurrency`), and the full-width ECCV16 at the authors' 256x256 (random weights: the speed
  of the published model), on 150x150 scene photos from ../shared when present (else generated 256x192 photos);
- `--quick`: a width-4 regression on 48x40 generated photos, 10 requests from 5 users.

With the model running one photo at a time (`--concurrency 1`, the app's default) the latency of a request is
mostly its wait in that queue, so throughput is the number to compare.

`--photo-megapixels N` (issue 21: a 20-megapixel JPEG took 101-125 s) times one big photo instead: a scene photo
upscaled to N megapixels (3:2, `bench.photos`) as a JPEG at quality 92, coloured by the full-width ECCV16 at the
authors' 256x256 (random weights; `--quick`: the width-4 regression). A row with the seconds of each stage of the
app's job, timed in this process with the functions the job calls (median of 3 turns after a warm-up): `decode`
(the upload), `predict` (`Colorizer.predict`, the model's own time), and its steps timed one by one: `lab` (the
photo's full-size lightness, `Colorizer.lightness`), `forward` (the network alone at its working size),
`recombination` (`Colorizer.recombine`: chroma upsampling and recombination with the full-size L); `checks` (whether
the photo has colour, whether it is gray: `storage.is_color`, `is_gray`), `encode` (every file the item stores) and
`store` (writing them, fsync'ed); `request_s`, one `POST /api/colorize` to its answer through uvicorn (the median of `REQUESTS` after a first one); its ratios to the
model's own time (`request_vs_predict`: the goal is at most 2) and to the forward; the item's bytes on disk
against the bound (2 x (upload + colour PNG)); and the bytes the result page downloads (its HTML and images) and
that "actual size" adds (the full-size colour and gray PNGs).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# Requests timed for the big photo's row (after one that warms up): their median is its `request_s`.
REQUESTS = 5
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """Serves `app` with uvicorn on 127.0.0.1 on a free port in a background thread, with the command's settings
    (`serve.app.server_config`: no proxy headers believed); yields its base URL."""
    import uvicorn

    from colorjax.serve.app import server_config

    server = uvicorn.Server(server_config(app, "127.0.0.1", 0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start on 127.0.0.1")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def sign_up(base_url: str, username: str, password: str) -> str:
    """Creates an account through the pages (as a browser would) and returns a new API token for it."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=60) as client:
        token = CSRF.search(client.get("/signup").text).group(1)
        response = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "username": username,
                "password": password,
                "password2": password,
            },
        )
        if response.status_code != 303:
            raise RuntimeError(f"sign-up of {username} failed: {response.status_code}")
        page = client.get("/account").text
        response = client.post("/account/token", data={"csrf_token": CSRF.search(page).group(1), "action": "new"})
        return re.search(r'id="token">([^<]+)<', response.text).group(1)


def load_test(base_url: str, photos: list[np.ndarray], users: int, requests_per_user: int) -> dict[str, float]:
    """Fires users * requests_per_user colorize requests at once; checks every answer and every history.

    Returns {"requests", "users", "p50_s", "p95_s", "max_s", "images_per_s", "healthz_max_s" (the slowest
    GET /healthz polled during the load: how responsive the app stays), "rss_before_mb", "rss_peak_mb" (this
    process's resident memory before the burst and its peak during it, sampled with every poll)}; raises AssertionError naming the
    first broken guarantee (a failed or lost request, a wrong size, a history with someone else's image).
    """
    import httpx
    from PIL import Image

    tokens = [sign_up(base_url, f"user{i}", f"password-{i}-secret") for i in range(users)]
    jobs = [
        (user, photos[(user * requests_per_user + k) % len(photos)])
        for user in range(users)
        for k in range(requests_per_user)
    ]
    encoded = {}
    for _, photo in jobs:
        if id(photo) not in encoded:
            buffer = io.BytesIO()
            Image.fromarray(photo).save(buffer, format="PNG")
            encoded[id(photo)] = buffer.getvalue()
    start_barrier = threading.Barrier(len(jobs))

    def send(job):
        user, photo = job
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        with httpx.Client(base_url=base_url, timeout=600) as client:
            start_barrier.wait()
            started = time.perf_counter()
            response = client.post(
                "/api/colorize",
                files={"image": ("photo.png", encoded[id(photo)], "image/png")},
                headers=headers,
            )
            latency = time.perf_counter() - started
        return user, photo.shape, response, latency

    done = threading.Event()
    health_latencies = []
    rss_before = resident_bytes()
    rss_samples = [rss_before]

    def poll_health():  # A page-like request while the model is busy: does the app still answer at once?
        with httpx.Client(base_url=base_url, timeout=600) as client:
            while not done.wait(0.25):
                asked = time.perf_counter()
                client.get("/healthz").raise_for_status()
                health_latencies.append(time.perf_counter() - asked)
                rss_samples.append(resident_bytes())

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    wall = time.perf_counter() - started
    done.set()
    poller.join()

    expected: dict[int, set[str]] = {user: set() for user in range(users)}
    for user, shape, response, _ in results:
        assert response.status_code == 200, f"request failed: {response.status_code} {response.text[:200]}"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (shape[1], shape[0]), f"wrong size {image.size} for {shape}"
        expected[user].add(response.headers["x-image-id"])
    ids = [response.headers["x-image-id"] for _, _, response, _ in results]
    assert len(set(ids)) == len(jobs), "two requests were given the same image id"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for user, token in enumerate(tokens):
            history = client.get("/api/history", headers={"Authorization": f"Bearer {token}"})
            held = {item["id"] for item in history.json()["images"]}
            assert held == expected[user], f"user{user}'s history is not exactly their images"
    latencies = sorted(latency for *_, latency in results)
    return {
        "requests": len(jobs),
        "users": users,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "max_s": latencies[-1],
        "images_per_s": len(jobs) / wall,
        "healthz_max_s": max(health_latencies, default=0.0),
        "rss_before_mb": rss_before / 1e6,
        "rss_peak_mb": max(rss_samples) / 1e6,
    }


def resident_bytes() -> int:
    """This process's resident memory now (Linux's /proc/self/status VmRSS; 0 where there is no /proc)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _photos(quick: bool) -> tuple[list[np.ndarray], str]:
    from PIL import Image

    from colorjax.config_lib import scene_photos_folder

    folder = scene_photos_folder()
    scenes = sorted((folder / "test").glob("*/*.jpg"))[::40][:25] if folder else []
    if scenes and not quick:
        return [np.asarray(Image.open(p).convert("RGB")) for p in scenes], "150x150 scene photos"
    rng = np.random.default_rng(0)
    height, width = (40, 48) if quick else (192, 256)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    photos = []
    for _ in range(5):
        phase = rng.uniform(0, 2 * np.pi, 3)
        rgb = 0.5 + 0.4 * np.sin(6 * (x[..., None] + y[..., None]) + phase)
        photos.append((rgb * 255).astype(np.uint8))
    return photos, f"{width}x{height} generated photos"


def bench_serve(quick: bool) -> list[dict]:
    megapixels = os.environ.get("COLORJAX_BENCH_PHOTO_MEGAPIXELS")
    if megapixels:
        return [big_photo_row(float(megapixels), quick)]
    import jax
    import jax.numpy as jnp

    from colorjax import models
    from colorjax.inference.colorizer import Colorizer
    from colorjax.serve.app import create_app

    # (label, model name, model kwargs, Colorizer settings, --concurrency)
    if quick:
        contenders = [("regression width 4, 32 px", "regression", {"width": 4}, {"resolution": 32}, 1)]
    else:
        regression = ("regression", {"width": 32}, {"resolution": 256})
        contenders = [
            ("regression width 32, 256 px", *regression, 1),
            ("regression width 32, 256 px", *regression, 2),
            ("eccv16 full width, 256x256", "eccv16", {}, {"resolution": 256, "square": True}, 1),
        ]
    photos, what = _photos(quick)
    users, per_user = (5, 2) if quick else (5, 10)
    rows = []
    for label, name, model_kwargs, settings, concurrency in contenders:
        model = models.get_model(name, **model_kwargs)
        variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
        colorizer = Colorizer(model=model, variables=dict(variables), **settings)
        for shape in {photo.shape for photo in photos}:  # Compile for each photo size before timing.
            colorizer.colorize(next(p for p in photos if p.shape == shape))
        with tempfile.TemporaryDirectory() as data_dir:
            # Each user's requests all at once: the per-user queue must hold them (429 beyond it).
            app = create_app(colorizer, data_dir, model_concurrency=concurrency, max_queued_per_user=per_user)
            with running_server(app) as base_url:
                row = load_test(base_url, photos, users=users, requests_per_user=per_user)
        rows.append({"contender": label, "concurrency": concurrency, "photos": what, **row})
    return rows


def _colorizer(quick: bool):
    """The app's model for the big photo: the full-width ECCV16 at the authors' 256x256 (random weights: the speed
    of the published one), or a width-4 regression at 32 px with `quick`."""
    import jax
    import jax.numpy as jnp

    from colorjax import models
    from colorjax.inference.colorizer import Colorizer

    name, kwargs, settings = ("regression", {"width": 4}, {"resolution": 32}) if quick else ("eccv16", {}, {})
    model = models.get_model(name, **kwargs)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
    settings = settings or {"resolution": 256, "square": True}
    return Colorizer(model=model, variables=dict(variables), **settings), f"{name} {settings}"


def stage_seconds(colorizer, upload: bytes, max_pixels: int, data_dir: str | Path, turns: int = 3) -> dict[str, float]:
    """Median seconds of each stage of the app's job on one upload (`api._colorize_new`'s calls; the module
    docstring names them), `turns` turns after a warm-up turn."""
    import jax
    import jax.numpy as jnp

    from colorjax.bench.timing import Stages
    from colorjax.models.jit import jitted_apply
    from colorjax.serve.storage import (
        ImageStore,
        colour_files,
        decode_upload,
        gray_files,
        input_files,
        is_color,
        is_gray,
        previews,
    )

    store, forward = ImageStore(data_dir), jitted_apply(colorizer.model, train=False)
    stages = Stages()
    for turn in range(turns + 1):
        if turn == 1:
            stages = Stages()  # The warm-up turn compiled everything; it is not counted.
        with stages("decode"):
            rgb = decode_upload(upload, max_pixels)
        with stages("lab"):
            lightness = colorizer.lightness(rgb)
        lightness = jax.block_until_ready(jnp.asarray(lightness))  # As predict holds it (bench.endtoend).
        L_work = jnp.zeros((1, *colorizer.working_size(*rgb.shape[:2]), 1), jnp.float32)
        with stages("forward"):
            chroma = jax.block_until_ready(forward(colorizer.variables, L_work)["chroma"][0])
        with stages("recombination"):
            colorizer.recombine(lightness, chroma)
        with stages("predict"):
            prediction = colorizer.predict(rgb)
        with stages("checks"):
            is_color(rgb), is_gray(rgb)
        with stages("encode"):  # The previews (`AppState.predict`'s) and the files.
            colours_of = functools.partial(colorizer.recombine, chroma=prediction.chroma)
            small_L, small_colours = previews(prediction.L, colours_of) or (None, None)
            contents = {
                **input_files(upload),
                **gray_files(prediction.L, True, small_L),
                **colour_files(prediction.rgb, small_colours),
            }
        with stages("store"):
            store.write(store.new_id(), contents)
    return stages.medians()


def big_photo_summary(
    seconds: dict[str, float], request_s: float, upload_bytes: int, colour_bytes: int, stored_bytes: int
) -> dict:
    """The row's columns from the measured ones: each stage's seconds, `in_process_s` (the job's stages one after
    another: decode, predict, checks, encode, store), the request's ratios to the model's own time (`predict_s`) and
    to the network's (`forward_s`), and the item's bytes against the bound 2 x (upload + colour PNG)."""
    bound = 2 * (upload_bytes + colour_bytes)
    return {
        **{f"{name}_s": s for name, s in seconds.items()},
        "in_process_s": sum(seconds[name] for name in ("decode", "predict", "checks", "encode", "store")),
        "request_s": request_s,
        "request_vs_predict": request_s / seconds["predict"],
        "request_vs_forward": request_s / seconds["forward"],
        "upload_mb": upload_bytes / 1e6,
        "stored_mb": stored_bytes / 1e6,
        "bound_mb": bound / 1e6,
        "stored_within_bound": stored_bytes <= bound,
    }


def big_photo_row(megapixels: float, quick: bool) -> dict:
    """One big photo through the app: its stage times, the request end to end, its bytes (module docstring)."""
    import httpx

    from colorjax.bench.devices import machine_columns
    from colorjax.bench.photos import encoded, scene_photos
    from colorjax.serve.app import create_app

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    photos, source = scene_photos(1, height, width)
    upload = encoded(photos[0], "JPEG")
    del photos
    colorizer, model = _colorizer(quick)
    limits = {"max_pixels": max(height * width, 1), "max_upload_mb": len(upload) / 1e6 + 1}
    with tempfile.TemporaryDirectory() as data_dir:
        seconds = stage_seconds(colorizer, upload, limits["max_pixels"], Path(data_dir) / "stages")
        app = create_app(colorizer, Path(data_dir) / "app", single_user=True, **limits)
        with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=600) as client:
            token = CSRF.search(client.get("/").text).group(1)

            def send() -> tuple[httpx.Response, float]:
                started = time.perf_counter()
                answer = client.post(
                    "/api/colorize",
                    files={"image": ("photo.jpg", upload, "image/jpeg")},
                    headers={"X-CSRF-Token": token},
                )
                answer.raise_for_status()
                return answer, time.perf_counter() - started

            requests = [send() for _ in range(1 + REQUESTS)][1:]  # The first warms the app's own paths.
            request_s = statistics.median(s for _, s in requests)
            image_id = requests[-1][0].headers["x-image-id"]
            folder = Path(data_dir) / "app" / "images" / image_id
            stored = sum(path.stat().st_size for path in folder.iterdir())
            page = client.get(f"/images/{image_id}").text
            shown = re.findall(r'<img[^>]* src="(/images/[^"]+)"', page)
            page_bytes = len(page.encode()) + sum(len(client.get(src).content) for src in shown)
            full_size = sum(len(client.get(f"/images/{image_id}/{kind}.png").content) for kind in ("color", "gray"))
            colour_bytes = (folder / "color.png").stat().st_size
    return {
        "contender": f"{megapixels:g} MP photo, {model}",
        "photo": f"{source}, JPEG",
        **big_photo_summary(seconds, request_s, len(upload), colour_bytes, stored),
        "page_mb": page_bytes / 1e6,
        "actual_size_mb": full_size / 1e6,
        **machine_columns(),
    }
