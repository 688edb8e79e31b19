"""Published weights by name: a registry, a checked download into a cache, and a published model as a colorjax run.

    python -m colorjax.weights list
    python -m colorjax.weights download eccv16
    python -m colorjax.weights to-run eccv16 --workdir runs/eccv16_published

Known weights (`KNOWN_WEIGHTS`) are the authors' own files, at the URLs their PyTorch `colorizers` package loads
(richzhang/colorization `colorizers/eccv16.py`, `colorizers/siggraph17.py`) and DDColor's four published files
(piddnad/DDColor `MODEL_ZOO.md`, served from the authors' Hugging Face repo piddnad/DDColor-models). As in
torch.hub, the hex digits in a Zhang file name (`colorization_release_v2-9b330a0b.pth`) are the start of the file's
SHA-256, and that is what a download is checked against; DDColor's names carry no hash, so their entries hold the
whole SHA-256 (`sha256`) and their own server (`url_base`).

`resolve_weights(name_or_path)` is what `--weights` takes: a known name downloads once into the cache
(`$COLORJAX_CACHE`, else the platform's cache folder, e.g. `~/.cache/colorjax`) and returns the cached file; any
other value is a path to an existing file. A download goes to a temporary file in the cache folder (with a progress
bar) that is renamed to its final name only once its length and hash check, so an interrupted or damaged download
never leaves a file behind. `COLORJAX_WEIGHTS_BASE_URL` replaces the authors' server (the file name is appended):
a mirror, or a local server in the tests.

`to-run` writes a run directory (config.json and a step-0 checkpoint, the layout the trainer writes) holding the
published model, so `colorize --workdir`, `evaluate --workdir` and `config.model_init` (fine-tuning the published
network on your own photos) treat it like a trained run. Its `config.inference` holds the authors' demo sizing
(256 x 256, square), so it colours exactly as `colorize --weights` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from colorjax import ColorjaxError, files

AUTHORS_BASE_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
DDCOLOR_BASE_URL = "https://huggingface.co/piddnad/DDColor-models/resolve/main/"
_CHUNK = 1 << 20


class WeightsError(ColorjaxError, ValueError):
    """A weights name, file or download problem the user can fix; the message is one line saying how."""


@dataclasses.dataclass(frozen=True)
class KnownWeights:
    """One published weights file: where it lives, which model it fits and with which constructor kwargs."""

    name: str
    model: str
    file_name: str
    description: str
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    sha256: str | None = None  # the whole SHA-256, for files whose name carries no hash
    url_base: str | None = None  # the folder the file is served from, when not AUTHORS_BASE_URL

    @property
    def sha256_prefix(self) -> str:
        """What a download's SHA-256 must start with: `sha256` when the entry has it, else the hex digits after the
        last '-' of the file name (torch.hub's rule)."""
        if self.sha256:
            return self.sha256
        match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", self.file_name)
        assert match, f"{self.file_name} carries no hash"
        return match.group(1)

    @property
    def url(self) -> str:
        base = os.environ.get("COLORJAX_WEIGHTS_BASE_URL") or self.url_base or AUTHORS_BASE_URL
        return base.rstrip("/") + "/" + self.file_name


KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    weights.name: weights
    for weights in (
        KnownWeights(
            name="eccv16",
            model="eccv16",
            file_name="colorization_release_v2-9b330a0b.pth",
            description="Zhang, Isola & Efros, ECCV 2016: 313-bin classifier trained on ImageNet",
            model_kwargs={"width": 1.0, "temperature": 0.38},
        ),
        KnownWeights(
            name="siggraph17",
            model="siggraph17",
            file_name="siggraph17-df00044c.pth",
            description="Zhang et al., SIGGRAPH 2017: the automatic mode (no user hints)",
            model_kwargs={"width": 1.0},
        ),
        KnownWeights(
            name="ddcolor_modelscope",
            model="ddcolor",
            file_name="ddcolor_modelscope.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet (cleaned as BigColor): the authors' default",
            model_kwargs={"size": "large"},
            sha256="17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce",
            url_base=DDCOLOR_BASE_URL,
        ),
        KnownWeights(
            name="ddcolor_paper",
            model="ddcolor",
            file_name="ddcolor_paper.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet: the paper's model",
            model_kwargs={"size": "large"},
            sha256="789781789db1bafc2165e1cf9658580f871cce64a81901ec49127877813f10b9",
            url_base=DDCOLOR_BASE_URL,
        ),
        KnownWeights(
            name="ddcolor_artistic",
            model="ddcolor",
            file_name="ddcolor_artistic.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet + artistic photos, no colourfulness loss",
            model_kwargs={"size": "large"},
            sha256="a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9",
            url_base=DDCOLOR_BASE_URL,
        ),
        KnownWeights(
            name="ddcolor_paper_tiny",
            model="ddcolor",
            file_name="ddcolor_paper_tiny.pth",
            description="Kang et al., ICCV 2023, DDColor-T (ConvNeXt-T encoder) on ImageNet: the paper's tiny model",
            model_kwargs={"size": "tiny"},
            sha256="81dd643904f4664c3718513e3320ae3db0c567f0d3e18398606659adee7bfc17",
            url_base=DDCOLOR_BASE_URL,
        ),
    )
}


def published_models() -> list[str]:
    """The models that have published weights (the choices of `--model`)."""
    return sorted({weights.model for weights in KNOWN_WEIGHTS.values()})


def cache_dir() -> Path:
    """`$COLORJAX_CACHE`, else the platform's per-user cache folder + colorjax (XDG on Linux)."""
    if os.environ.get("COLORJAX_CACHE"):
        return Path(os.environ["COLORJAX_CACHE"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "colorjax"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "colorjax" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "colorjax"


def known(name: str) -> KnownWeights:
    """The registry entry `name`, or a one-line WeightsError listing the known names."""
    if name not in KNOWN_WEIGHTS:
        raise WeightsError(f"Unknown weights {name!r}; known names: {', '.join(KNOWN_WEIGHTS)} (or pass a file path).")
    return KNOWN_WEIGHTS[name]


def cached_path(name: str) -> Path:
    """Where the cache keeps (or will keep) the known weights `name`."""
    return cache_dir() / known(name).file_name


def resolve_weights(name_or_path: str | Path, *, progress: bool = True) -> Path:
    """The file for `--weights`: a known name (downloaded into the cache on first use) or an existing path."""
    text = str(name_or_path)
    if text in KNOWN_WEIGHTS:
        return download(text, progress=progress)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise WeightsError(
        f"Weights {text!r} does not exist and is not a known name; known names: {', '.join(KNOWN_WEIGHTS)}."
    )


def download(name: str, *, progress: bool = True) -> Path:
    """The cached file of the known weights `name`, downloaded (and hash-checked) if the cache lacks it."""
    weights = known(name)
    target = cached_path(name)
    if target.is_file():
        return target
    url = weights.url
    try:
        # Streamed into a temporary file beside the target, renamed onto it only once the length and the hash
        # are right: a broken or wrong download leaves nothing in the cache.
        with files.atomic_path(target) as temporary, open(temporary, "xb") as file:
            digest = _fetch(url, file, target, progress)
            if not digest.startswith(weights.sha256_prefix):
                raise WeightsError(
                    f"{url} has SHA-256 {digest[:12]}..., not {weights.sha256_prefix[:12]}... as "
                    f"{'the registry' if weights.sha256 else 'its name'} promises: "
                    "deleted it. Retry, or download the file by hand and check it."
                )
    except OSError as error:
        raise WeightsError(
            f"Cannot write to the weights cache {target.parent} ({error.strerror or error}); set COLORJAX_CACHE to "
            "a writable folder."
        ) from None
    return target


def _fetch(url: str, file: Any, target: Path, progress: bool) -> str:
    """Streams `url` into `file`; returns the SHA-256 hex digest. One-line WeightsError when it fails."""
    by_hand = f"download it by hand to {target} (or pass its path to --weights)"
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsError(f"Cannot download {url} ({reason}); {by_hand}.") from None
    from tqdm import tqdm

    sha256 = hashlib.sha256()
    received = 0
    with response:
        expected = response.headers.get("Content-Length")
        expected = int(expected) if expected and expected.isdigit() else None
        bar = tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=target.name,
            disable=not progress,
            file=sys.stderr,
        )
        with bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (
                    OSError,
                    ValueError,
                ) as error:  # reset connection, http.client.IncompleteRead
                    raise WeightsError(
                        f"Download of {url} broke off after {received} bytes ({type(error).__name__}); "
                        f"nothing was kept: retry, or {by_hand}."
                    ) from None
                if not chunk:
                    break
                file.write(chunk)
                sha256.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise WeightsError(
            f"Download of {url} stopped after {received} of {expected} bytes; nothing was kept: retry, or {by_hand}."
        )
    return sha256.hexdigest()


def identify(path: Path) -> KnownWeights | None:
    """The registry entry whose file name `path` has (how a downloaded file is recognised), else None."""
    for weights in KNOWN_WEIGHTS.values():
        if Path(path).name == weights.file_name:
            return weights
    return None


def published_model(name_or_path: str | Path, model: str | None = None) -> tuple[Path, str]:
    """(file, model name) for `--weights NAME|PATH [--model M]`: a known name brings its model (a different
    `model` is an error); a path takes `model`, else the model of a known file name; one-line WeightsError
    otherwise. Downloads a known name on first use."""
    models = published_models()
    if model is not None and model not in models:
        raise WeightsError(f"No published weights for model {model!r}; choose one of: {', '.join(models)}.")
    entry = KNOWN_WEIGHTS.get(str(name_or_path))
    if entry is not None and model is not None and entry.model != model:  # before any download
        raise WeightsError(f"{entry.name} holds {entry.model} weights, not {model}; drop --model.")
    path = resolve_weights(name_or_path)
    entry = entry or identify(path)
    if entry is not None and model is not None and entry.model != model:
        raise WeightsError(
            f"{path.name} holds {entry.model} weights, not {model}; drop --model or pass --model {entry.model}."
        )
    model = model or (entry.model if entry else None)
    if model is None:
        raise WeightsError(f"Which model is {path}? A weights file needs --model ({', '.join(models)}).")
    return path, model
