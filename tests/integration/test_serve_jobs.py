"""Colorize requests as jobs (issue 21 point 10): queue position, elapsed time, estimate, cancel, per-user jobs, a
batch of photos; and several models in one server (point 11).

A real uvicorn on 127.0.0.1 (`running_server`): jobs outlive the request that sent them. `HeldColorizer` holds a
photo inside the model until the test lets it go, so what the queue looks like meanwhile is known exactly; no
assertion depends on how fast anything is.
"""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("itsdangerous")
pytest.importorskip("httpx")
pytest.importorskip("fastapi_offline")

import httpx  # noqa: E402
from helpers.photos import make_photo  # noqa: E402
from helpers.serve import HeldColorizer, hint_colorizer, png_bytes  # noqa: E402

from colorjax.bench.serve import running_server, sign_up  # noqa: E402
from colorjax.inference.colorizer import open_colorizer  # noqa: E402
from colorjax.serve.app import create_app  # noqa: E402

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def run_colorizer(trained_run):
    return open_colorizer(workdir=trained_run, step="best")


@pytest.fixture
def photo():
    return png_bytes(make_photo(np.random.default_rng(0), 24, 32))


def client_for(base_url, username):
    token = sign_up(base_url, username, PASSWORD)
    return httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})


def submit(client, photo, name="photo.png", **fields):
    return client.post("/api/jobs", files={"image": (name, photo, "image/png")}, data=fields)


def wait_for(client, job_id, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


def test_jobs_queue_report_their_place_and_cancel_per_user(run_colorizer, tmp_path, photo):
    held = HeldColorizer(run_colorizer)
    app = create_app(held, tmp_path / "data", max_queued_per_user=3)
    held.hold.set()
    with running_server(app) as base_url, client_for(base_url, "alice") as alice, client_for(base_url, "bob") as bob:
        try:
            first = submit(alice, photo, "first.png")
            assert first.status_code == 202 and first.headers["location"] == f"/api/jobs/{first.json()['id']}"
            assert held.entered.wait(60)
            first = wait_for(alice, first.json()["id"], {"running"})
            assert first["position"] is None and first["estimate_s"] is None  # No job has finished yet.
            second = submit(alice, photo, "second.png").json()
            third = submit(alice, photo, "third.png").json()
            assert (second["status"], second["position"]) == ("queued", 0)
            assert (third["status"], third["position"]) == ("queued", 1)
            refused = submit(alice, photo, "fourth.png")  # Three of alice's are waiting or running.
            assert refused.status_code == 429
            time.sleep(0.1)
            again = alice.get(f"/api/jobs/{third['id']}").json()
            assert again["elapsed_s"] > third["elapsed_s"] and again["name"] == "third.png"

            # Another user's job is a 404, like a missing one, for reading and for cancelling.
            assert bob.get(f"/api/jobs/{second['id']}").status_code == 404
            assert bob.delete(f"/api/jobs/{second['id']}").status_code == 404
            assert bob.get("/api/jobs").json() == {"jobs": []}
            assert alice.get("/api/jobs/" + "x" * 16).status_code == 404

            # A queued job leaves the queue at once: the one behind moves up and the user's place is free again.
            cancelled = alice.delete(f"/api/jobs/{second['id']}").json()
            assert cancelled["status"] == "cancelled" and cancelled["position"] is None
            assert alice.get(f"/api/jobs/{third['id']}").json()["position"] == 0
            fourth = submit(alice, photo, "fourth.png")
            assert fourth.status_code == 202 and fourth.json()["position"] == 1
            # A running job finishes its colouring but is discarded: nothing reaches the history.
            assert alice.delete(f"/api/jobs/{first['id']}").json()["status"] == "cancelling"
        finally:
            held.hold.clear()
            held.release.set()
        done = [wait_for(alice, job["id"], {"done"}) for job in (third, fourth.json())]
        assert wait_for(alice, first["id"], {"cancelled", "done"})["status"] == "cancelled"
        history = alice.get("/api/history").json()["images"]
        assert sorted(image["id"] for image in history) == sorted(job["image_id"] for job in done)
        assert {image["name"] for image in history} == {"third.png", "fourth.png"}
        assert done[0]["page"] == f"/images/{done[0]['image_id']}" and done[0]["position"] is None
        statuses = [job["status"] for job in alice.get("/api/jobs").json()["jobs"]]
        assert statuses == ["cancelled", "cancelled", "done", "done"]  # In the order they were sent.
    assert len(list((tmp_path / "data" / "images").iterdir())) == 2  # The discarded job left no files.


def test_the_estimate_comes_from_the_models_recent_jobs(run_colorizer, tmp_path, photo):
    held = HeldColorizer(run_colorizer)
    app = create_app(held, tmp_path / "data", single_user=True)
    board = app.state.colorjax.jobs
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        wait_for(client, submit(client, photo).json()["id"], {"done"})
        typical = board.typical_s(app.state.colorjax.model_name(None))
        assert typical > 0
        held.hold.set()
        try:
            running = submit(client, photo).json()
            assert held.entered.wait(60)
            queued = submit(client, photo).json()
            # Behind one running job: what is left of it (at most a typical run) plus its own typical run.
            assert queued["position"] == 0
            assert typical - 0.05 <= queued["estimate_s"] <= 2 * typical + 0.05
            running = client.get(f"/api/jobs/{running['id']}").json()
            assert running["status"] == "running" and 0 <= running["estimate_s"] <= typical + 0.05
        finally:
            held.hold.clear()
            held.release.set()
        assert wait_for(client, queued["id"], {"done"})["estimate_s"] is None


def test_a_batch_of_photos_becomes_several_jobs_and_a_bad_one_fails_alone(run_colorizer, tmp_path):
    app = create_app(run_colorizer, tmp_path / "data", single_user=True)
    rng = np.random.default_rng(1)
    photos = {f"{i}.png": png_bytes(make_photo(rng, 20 + 4 * i, 24)) for i in range(3)}
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        jobs = [submit(client, data, name).json() for name, data in photos.items()]
        bad = submit(client, b"not an image", "notes.png").json()
        done = [wait_for(client, job["id"], {"done", "failed"}) for job in jobs]
        failed = wait_for(client, bad["id"], {"done", "failed"})
        history = {image["id"]: image for image in client.get("/api/history").json()["images"]}
        # The synchronous endpoint is still there for scripts, and is a job too.
        sync = client.post("/api/colorize", files={"image": ("sync.png", photos["0.png"], "image/png")})
        sync_job = client.get(f"/api/jobs/{sync.headers['x-job-id']}").json()
    assert [job["status"] for job in done] == ["done"] * 3
    assert [history[job["image_id"]]["name"] for job in done] == list(photos)
    assert [history[job["image_id"]]["height"] for job in done] == [20, 24, 28]
    assert failed["status"] == "failed" and "not an image" in failed["error"] and failed["image_id"] is None
    assert sync.status_code == 200 and sync.headers["content-type"] == "image/png"
    assert sync_job["status"] == "done" and sync_job["image_id"] == sync.headers["x-image-id"]


def test_a_cancelled_synchronous_request_answers_409(run_colorizer, tmp_path, photo):
    held = HeldColorizer(run_colorizer)
    app = create_app(held, tmp_path / "data", single_user=True)
    answers = {}

    def send():
        with httpx.Client(base_url=base_url, timeout=60) as client:
            answers["sync"] = client.post("/api/colorize", files={"image": ("a.png", photo, "image/png")})

    held.hold.set()
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        thread = threading.Thread(target=send)
        thread.start()
        try:
            assert held.entered.wait(60)
            (job,) = client.get("/api/jobs").json()["jobs"]
            assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "cancelling"
        finally:
            held.release.set()
            thread.join(60)
        assert client.get("/api/history").json() == {"images": []}
    assert answers["sync"].status_code == 409 and "cancelled" in answers["sync"].json()["error"]


def test_several_models_load_at_first_use_and_recolour_an_item_with_another(trained_run, tmp_path, photo):
    """Two models, as `--workdir A --workdir B` gives them: neither is loaded until a photo asks for it; the user
    picks one per photo and re-colours an item with the other; colour points only where the model takes them."""
    loads = []

    def loader(name, load):
        return lambda: loads.append(name) or load()

    models = {
        "run": loader("run", lambda: open_colorizer(workdir=trained_run, step="best")),
        "points": loader("points", hint_colorizer),
    }
    app = create_app(models, tmp_path / "data", single_user=True)
    red = '[{"x": 10, "y": 10, "color": "#ff0000"}]'
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        health = client.get("/healthz").json()
        assert health["models"] == ["run", "points"] and health["loaded"] == [] and loads == []
        page = httpx.get(base_url + "/").text  # Its own client: a page's cookie would make the API ask for CSRF.
        assert '<option value="run">' in page and '<option value="points">' in page and loads == []
        assert submit(client, photo, model="other").status_code == 400
        job = wait_for(client, submit(client, photo, model="points", hints=red).json()["id"], {"done", "failed"})
        assert job["status"] == "done" and job["model"] == "points" and loads == ["points"]
        (item,) = client.get("/api/history").json()["images"]
        assert item["model"] == "points" and item["hints"] is not None
        hinted = client.get(f"/api/images/{item['id']}").content

        # The default model takes no points: refused once it is loaded, without storing anything.
        refused = wait_for(client, submit(client, photo, hints=red).json()["id"], {"done", "failed"})
        assert refused["status"] == "failed" and "takes no colour hints" in refused["error"]
        assert loads == ["points", "run"]

        recolour = client.post(f"/api/images/{item['id']}/recolor", data={"model": "run"})
        assert recolour.status_code == 200 and recolour.headers["x-model"] == "run"
        (item,) = client.get("/api/history").json()["images"]
        assert item["model"] == "run" and item["hints"] is None and item["previous_model"] == "points"
        assert client.get(f"/api/images/{item['id']}").content != hinted
        # The points model's colours are kept, to compare on the slider.
        assert client.get(f"/images/{item['id']}/previous.png").content == hinted
        page = httpx.get(f"{base_url}/images/{item['id']}").text
        assert 'value="previous"' in page and '<option value="points">' in page
        assert client.post(f"/api/images/{item['id']}/recolor", data={"hints": red}).status_code == 400
        assert loads == ["points", "run"]  # Each model loaded once.
        # An item made by a model this server no longer has counts as the default's.
        app.state.database.set_model(item["id"], "gone", None)
        again = client.post(f"/api/images/{item['id']}/recolor", data={"model": "points"})
        assert again.status_code == 200
        (item,) = client.get("/api/history").json()["images"]
        assert (item["model"], item["previous_model"]) == ("points", "run")


def test_the_command_serves_several_runs_loading_none_at_start(trained_run, tmp_path, monkeypatch, capsys):
    import uvicorn

    from colorjax.cli.serve import main

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: started.append(server.config))
    base = ["--data-dir", str(tmp_path / "data"), "--single-user"]
    assert main(["--workdir", str(trained_run), "--workdir", str(trained_run), *base]) == 0
    service = started[0].app.state.service
    assert service.names == [trained_run.name, f"{trained_run.name}-2"]
    assert not any(service.is_loaded(name) for name in service.names)
    assert f"the models {trained_run.name}, {trained_run.name}-2" in capsys.readouterr().out
    assert main(["--workdir", str(trained_run), "--workdir", str(tmp_path / "nowhere"), *base]) == 1
    assert "no such run folder" in capsys.readouterr().err
