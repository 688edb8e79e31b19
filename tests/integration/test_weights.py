"""colorjax.weights: weights by name from a local HTTP server (never the internet), the cache, and `to-run`.

The served file is a real `torch.save` of ECCV16's state dict at 1/8 width (random weights), named after its own
SHA-256 as torch.hub names files; a test registry entry points at it.
"""

import hashlib
import http.server
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import REPO, TEST_DATA

from colorjax import runs
from colorjax.cli import evaluate as evaluate_cli
from colorjax.cli import weights as weights_cli
from colorjax.inference import open_colorizer
from colorjax.weights import pth
from colorjax.weights import registry as weights
from colorjax.weights.registry import KnownWeights, WeightsError

TINY_WIDTH = 1 / 8


@pytest.fixture(scope="module")
def served_files(tmp_path_factory):
    """A folder with `eccv16_tiny-<sha256[:8]>.pth` and a copy under a name whose hash is wrong."""
    torch = pytest.importorskip("torch")
    from colorjax.bench.zhang import torch_eccv16

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("served")
    staging = folder / "staging.pth"
    torch.save(torch_eccv16(torch, TINY_WIDTH).state_dict(), staging)
    data = staging.read_bytes()
    staging.unlink()
    digest = hashlib.sha256(data).hexdigest()
    good = folder / f"eccv16_tiny-{digest[:8]}.pth"
    good.write_bytes(data)
    wrong_prefix = "00000000" if not digest.startswith("00000000") else "11111111"
    (folder / f"eccv16_wronghash-{wrong_prefix}.pth").write_bytes(data)
    return folder, good.name


class Server:
    """http.server on 127.0.0.1 in a thread, recording each GET's path (`requests`) and Range header (`ranges`).

    It honours `Range: bytes=N-` as a file server does (206 with Content-Range; 416 past the end) unless
    `ignore_range` (then 200 with the whole file, as servers without range support answer). `truncate` announces
    the whole answer but sends half of it, then hangs up; `pause` seconds between 4 kB pieces slow it down.
    """

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        self.ranges: list[str | None] = []
        self.truncate = False
        self.ignore_range = False
        self.pause = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                server.ranges.append(self.headers.get("Range"))
                path = folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                start = int(asked.group(1)) if asked and not server.ignore_range else 0
                if start >= len(data) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate:
                    body = body[: len(body) // 2]
                    self.close_connection = True
                for offset in range(0, len(body), 4096):
                    self.wfile.write(body[offset : offset + 4096])
                    time.sleep(server.pause)
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(served_files, monkeypatch, tmp_path):
    """The local server as COLORJAX_WEIGHTS_BASE_URL, an empty cache, and test entries in the registry."""
    folder, good_name = served_files
    running = Server(folder)
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", running.url)
    monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path / "cache"))
    tiny = {"width": TINY_WIDTH, "temperature": 0.38}
    wrong_name = next(p.name for p in folder.iterdir() if "wronghash" in p.name)
    registry = {
        **weights.KNOWN_WEIGHTS,
        "eccv16_tiny": KnownWeights("eccv16_tiny", "eccv16", good_name, "test", tiny),
        "eccv16_wronghash": KnownWeights("eccv16_wronghash", "eccv16", wrong_name, "test", tiny),
    }
    monkeypatch.setattr(weights, "KNOWN_WEIGHTS", registry)
    yield running
    running.close()


def cache_files(tmp_path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_a_name_downloads_once_and_then_comes_from_the_cache(server, served_files, tmp_path):
    folder, good_name = served_files
    path = weights.resolve_weights("eccv16_tiny", progress=False)
    assert path == tmp_path / "cache" / good_name
    assert path.read_bytes() == (folder / good_name).read_bytes()
    assert server.requests == [f"/{good_name}"]
    assert weights.resolve_weights("eccv16_tiny", progress=False) == path
    assert len(server.requests) == 1  # the second call made no request
    assert cache_files(tmp_path) == [good_name]  # no temporary file left behind
    state = pth.read_state_dict(path)
    assert state["model1.0.weight"].shape == (8, 1, 3, 3)


def test_a_path_keeps_working_and_an_unknown_name_lists_the_known_ones(server, served_files):
    folder, good_name = served_files
    assert weights.resolve_weights(str(folder / good_name)) == folder / good_name
    with pytest.raises(WeightsError, match=r"'eccv61' does not exist and is not a known name; known names: eccv16"):
        weights.resolve_weights("eccv61")
    assert server.requests == []


def test_a_wrong_hash_deletes_the_download_and_says_so(server, tmp_path):
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("eccv16_wronghash", progress=False)
    message = str(error.value)
    assert "\n" not in message and "SHA-256" in message and "deleted it" in message
    assert server.url + "eccv16_wronghash-" in message
    assert cache_files(tmp_path) == []


def test_server_down_names_the_url_and_where_to_put_the_file(server, monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", f"http://127.0.0.1:{port}")
    target = weights.cached_path("eccv16_tiny")
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("eccv16_tiny", progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert f"Cannot download http://127.0.0.1:{port}/{target.name}" in message
    assert f"put the file by hand at {target}" in message
    assert cache_files(tmp_path) == []


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused: the offline case)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_interrupted_download_is_kept_and_resumed_with_a_range_request(
    server, served_files, monkeypatch, tmp_path, capsys
):
    folder, good_name = served_files
    data = (folder / good_name).read_bytes()
    partial = weights.partial_path("eccv16_tiny")
    stale = partial.with_name(f"{good_name}.0123456789abcdef.partial")  # another file's kept bytes: never resumed
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x" * 100)
    server.truncate = True
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("eccv16_tiny", progress=False)
    message, half = str(error.value), len(data) // 2
    assert "\n" not in message and f"Download of {server.url}{good_name} stopped at" in message
    assert f"kept them in {partial}: run the same command again to resume" in message
    assert f"put the file by hand at {weights.cached_path('eccv16_tiny')}" in message
    assert cache_files(tmp_path) == [partial.name]  # the kept bytes only: the stale partial and the lock are gone
    assert partial.read_bytes() == data[:half]
    assert weights_cli.listing().count(f"partial {weights.megabytes(half)} MB of ? MB") == 1

    # Offline meanwhile: one line, and the kept bytes stay.
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(WeightsError, match="^Cannot download http://127.0.0.1:") as error:
        weights.resolve_weights("eccv16_tiny", progress=False)
    assert f"the {weights.megabytes(half)} MB kept so far resume on the next try" in str(error.value)
    assert partial.read_bytes() == data[:half]

    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", server.url)
    server.truncate = False
    capsys.readouterr()
    path = weights.resolve_weights("eccv16_tiny", progress=False)
    assert path.read_bytes() == data
    assert server.ranges == [None, f"bytes={half}-"]  # the second request asked only for the rest
    said = capsys.readouterr().err
    assert said == f"resuming eccv16_tiny at {weights.megabytes(half)} of {weights.megabytes(len(data))} MB\n"
    assert cache_files(tmp_path) == [good_name]


def test_a_server_that_ignores_range_is_read_again_from_the_start(server, served_files, tmp_path, capsys):
    folder, good_name = served_files
    data = (folder / good_name).read_bytes()
    server.truncate = True
    with pytest.raises(WeightsError, match="stopped at"):
        weights.resolve_weights("eccv16_tiny", progress=False)
    server.truncate, server.ignore_range = False, True
    capsys.readouterr()
    assert weights.resolve_weights("eccv16_tiny", progress=False).read_bytes() == data
    assert server.ranges == [None, f"bytes={len(data) // 2}-"]
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "ignores HTTP Range" in said and "from the start" in said
    assert cache_files(tmp_path) == [good_name]


def test_a_whole_kept_file_is_checked_and_a_wrong_one_leaves_nothing(server, served_files, tmp_path):
    folder, good_name = served_files
    data = (folder / good_name).read_bytes()
    partial = weights.partial_path("eccv16_tiny")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data)  # an earlier run stopped after the last byte, before the check
    assert weights.resolve_weights("eccv16_tiny", progress=False).read_bytes() == data
    assert server.ranges == [f"bytes={len(data)}-"]  # answered 416: nothing after it
    weights.cached_path("eccv16_tiny").unlink()
    partial.write_bytes(b"\0" * (len(data) // 3))  # kept bytes that are not this file's: the hash says so
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("eccv16_tiny", progress=False)
    message = str(error.value)
    assert "\n" not in message and "SHA-256" in message and "deleted it" in message
    assert cache_files(tmp_path) == []


def test_a_server_offering_another_size_than_the_registrys_is_refused(server, served_files, monkeypatch, tmp_path):
    folder, good_name = served_files
    entry = weights.KNOWN_WEIGHTS["eccv16_tiny"]
    sized = KnownWeights(entry.name, entry.model, entry.file_name, "test", entry.model_kwargs, size=123)
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "eccv16_tiny", sized)
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("eccv16_tiny", progress=False)
    size = (folder / good_name).stat().st_size
    assert str(error.value).startswith(f"{server.url}{good_name} serves {size} bytes, but eccv16_tiny is 123:")
    assert cache_files(tmp_path) == []


def test_two_downloads_of_one_file_take_turns(server, served_files, tmp_path, capsys):
    """Two threads (separate open files, so separate locks, as two processes) download at once from a slow
    server: one downloads, the other waits for it, says so, and finds the file cached."""
    folder, good_name = served_files
    server.pause = 0.002
    results, errors = [], []

    def fetch():
        try:
            results.append(weights.resolve_weights("eccv16_tiny", progress=False))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 2
    assert results[0] == results[1] and results[0].read_bytes() == (folder / good_name).read_bytes()
    assert server.requests == [f"/{good_name}"]
    assert "waiting for another download of eccv16_tiny" in capsys.readouterr().err
    assert cache_files(tmp_path) == [good_name]


def test_cli_list_download_and_help(server, tmp_path, capsys):
    assert weights_cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "eccv16" in listing and "siggraph17" in listing and "not downloaded" in listing
    assert "colorization_release_v2-9b330a0b.pth" in listing
    rows = {line.split()[0]: line.split() for line in listing.splitlines() if " model " in line}
    for name in ("ddcolor_modelscope", "ddcolor_artistic"):  # name, model, size in MB, state
        assert rows[name][1:6] == ["model", "ddcolor", "912", "MB", "not"], rows[name]
    # No size in the authors' docs: estimated from the parameter count (float32), and marked so.
    estimates = {"ddcolor_paper": "~912", "ddcolor_paper_tiny": "~220", "eccv16": "~129", "siggraph17": "~137"}
    for name, estimate in estimates.items():
        assert rows[name][3:5] == [estimate, "MB"], rows[name]
    assert weights_cli.main(["download", "eccv16_tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(weights.cached_path("eccv16_tiny"))
    assert weights_cli.main(["download", "nope"]) == 1
    assert "known names: eccv16, siggraph17" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        weights_cli.main(["--help"])
    assert exit_.value.code == 0


def test_the_registry_holds_the_authors_files_and_their_hash_prefixes(monkeypatch):
    monkeypatch.delenv("COLORJAX_WEIGHTS_BASE_URL", raising=False)
    eccv16, siggraph17 = weights.KNOWN_WEIGHTS["eccv16"], weights.KNOWN_WEIGHTS["siggraph17"]
    base = "https://colorizers.s3.us-east-2.amazonaws.com/"
    assert eccv16.url == base + "colorization_release_v2-9b330a0b.pth"
    assert (eccv16.sha256_prefix, eccv16.model) == ("9b330a0b", "eccv16")
    assert siggraph17.url == base + "siggraph17-df00044c.pth"
    assert (siggraph17.sha256_prefix, siggraph17.model) == ("df00044c", "siggraph17")


def test_a_file_without_a_published_hash_downloads_and_prints_the_hash_it_got(
    server, served_files, monkeypatch, tmp_path, capsys
):
    """Meta's ConvNeXt files have no published SHA-256: the entry says so, and the download prints the one it got."""
    folder, good_name = served_files
    entry = KnownWeights("convnext_test", "convnext", good_name, "test", colorizer=False, unverified=True)
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "convnext_test", entry)
    path = weights.resolve_weights("convnext_test", progress=False)
    assert path.read_bytes() == (folder / good_name).read_bytes()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (
        f"no SHA-256 is published for {server.url}{good_name}, so this download is not checked; its SHA-256 is "
        f"{digest}." in capsys.readouterr().err
    )
    monkeypatch.delenv("COLORJAX_WEIGHTS_BASE_URL")
    for size in ("tiny", "large"):  # the files piddnad/DDColor's Encoder.load_pretrain_model loads
        published = weights.KNOWN_WEIGHTS[f"convnext_{size}_22k"]
        assert published.url == f"https://dl.fbaipublicfiles.com/convnext/convnext_{size}_22k_224.pth"
        assert published.unverified and not published.colorizer


def test_to_run_writes_a_run_that_colours_like_the_weights_file(server, tmp_path):
    """`to-run` of the tiny entry: the run's model, variables and sizing are the file's (the equivalence at full
    width, through Colorizer.from_published, is test_a_published_run_colours_exactly_like_the_published_weights)."""
    import jax

    from colorjax.models.published import load_weights_file

    workdir = tmp_path / "run"
    assert weights_cli.main(["to-run", "eccv16_tiny", "--workdir", str(workdir)]) == 0
    assert (workdir / "config.json").is_file()
    colorizer = open_colorizer(workdir=workdir)
    module, variables = load_weights_file(
        "eccv16", weights.cached_path("eccv16_tiny"), width=TINY_WIDTH, temperature=0.38
    )
    assert colorizer.model == module
    assert (colorizer.resolution, colorizer.square) == (256, True)
    assert jax.tree.structure(colorizer.variables) == jax.tree.structure(variables)
    for ours, theirs in zip(jax.tree.leaves(colorizer.variables), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # A second to-run into the same workdir is refused, not overwritten.
    with pytest.raises(WeightsError, match="already holds a run"):
        weights_cli.to_run("eccv16_tiny", workdir)
    with pytest.raises(WeightsError, match="holds eccv16 weights, not siggraph17"):
        weights_cli.to_run("eccv16_tiny", tmp_path / "other", model="siggraph17")


def test_a_published_run_colours_exactly_like_the_published_weights(tmp_path):
    """Full width (the published layout, random weights, as .npz: 130 MB): `to-run` then `from_run` gives the
    pixels `from_published` gives."""
    from colorjax.quantize import ab_bin_centres

    layouts = TEST_DATA / "torch_state_dict_layouts.json"
    import json

    rng = np.random.default_rng(0)
    state = {}
    for key, shape, dtype in json.loads(layouts.read_text())["eccv16"]["state_dict"]:
        if dtype == "int64":
            state[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            fan_in = np.prod(shape[1:]) if len(shape) > 1 else 1
            state[key] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    state["model_out.weight"] = (ab_bin_centres().T / 110.0)[:, :, None, None].astype(np.float32)
    path = tmp_path / "eccv16_random.npz"
    np.savez(path, **state)

    weights_cli.to_run(path, tmp_path / "run", model="eccv16")
    from_run = open_colorizer(workdir=tmp_path / "run")
    published = open_colorizer(weights=path, model="eccv16")
    for field in ("resolution", "square", "fixed_size", "color_space", "max_pixels", "multiple"):
        assert getattr(from_run, field) == getattr(published, field), field
    photo = np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    np.testing.assert_array_equal(from_run.colorize(photo), published.colorize(photo))


def test_colorize_and_evaluate_take_weights_by_name_with_one_line_errors(server, monkeypatch, tmp_path, capsys):
    from colorjax.cli import colorize

    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    out = str(tmp_path / "out")
    cases = [
        (["--weights", "eccv61"], "known names: eccv16, siggraph17"),
        (
            ["--weights", "eccv16", "--model", "siggraph17"],
            "eccv16 holds eccv16 weights, not siggraph17",
        ),
        (["--weights", str(photo)], "A weights file needs --model"),
    ]
    for arguments, message in cases:
        assert colorize.main([*arguments, str(photo), "--output", out]) == 1
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    # A model without published weights is not among --model's choices (the registry's): a usage error.
    with pytest.raises(SystemExit) as usage:
        colorize.main(["--weights", "eccv16", "--model", "iizuka", str(photo), "--output", out])
    error = capsys.readouterr().err
    assert usage.value.code == 2 and "invalid choice: 'iizuka'" in error and error.count("\n") == 1, error
    # No network: the one line names the URL and where to put the file by hand.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", f"http://127.0.0.1:{port}/")
    assert colorize.main(["--weights", "eccv16", str(photo), "--output", out]) == 1
    error = capsys.readouterr().err
    assert f"Cannot download http://127.0.0.1:{port}/colorization_release_v2-9b330a0b.pth" in error
    assert "put the file by hand at" in error and error.count("\n") == 1
    assert evaluate_cli.main(["--weights", "siggraph17", "--data", "samples", "--output", out]) == 1
    error = capsys.readouterr().err
    assert "Cannot download" in error and error.count("\n") == 1


@pytest.mark.slow
def test_colorize_runtime_onnx_colours_like_xla(tmp_path):
    pytest.importorskip("jax2onnx")
    pytest.importorskip("onnxruntime")
    from colorjax import config_lib
    from colorjax.inference.onnx_runtime import onnx_colorizer
    from colorjax.models import get_model

    config = config_lib.load_config(REPO / "configs" / "demo.py", "tiny")
    model_kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    model = get_model("eccv16", **model_kwargs)
    variables = model.init(jax_key(), np.zeros((1, 48, 48, 1), np.float32), train=False)
    runs.write_run(tmp_path / "run", config, variables, model_kwargs)
    xla = open_colorizer(workdir=tmp_path / "run")
    onnx = onnx_colorizer(xla, cache=tmp_path / "onnx_cache")
    assert "(onnxruntime)" in onnx.description
    # Exported at any size, also as the process's second ONNX export (tests/integration/test_export.py runs first in
    # the suite: jax2onnx's gather constant folding once got lost after the first conversion, and this fell back to
    # 48x48).
    assert onnx.fixed_size is None
    photo = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    chroma_xla, chroma_onnx = xla.predict_chroma(photo), onnx.predict_chroma(photo)
    assert np.ptp(chroma_xla) > 0.1
    assert np.max(np.abs(chroma_xla - chroma_onnx)) <= 1e-4
    assert np.max(np.abs(xla.colorize(photo).astype(int) - onnx.colorize(photo))) <= 1
    # The export is cached: a second ONNX Colorizer of the same weights reuses the folder.
    (cached,) = (tmp_path / "onnx_cache").iterdir()
    assert onnx_colorizer(xla, cache=tmp_path / "onnx_cache").predict_chroma(photo).shape == (
        37,
        53,
        2,
    )
    assert list((tmp_path / "onnx_cache").iterdir()) == [cached]


def jax_key():
    import jax

    return jax.random.key(0)
