"""Published weights by name: a registry, a checked download into a cache, and a published model as a colorjax run.

    python -m colorjax.weights list
    python -m colorjax.weights download eccv16
    python -m colorjax.weights to-run eccv16 --workdir runs/eccv16_published

Known weights (`KNOWN_WEIGHTS`) are the authors' own files, at the URLs their PyTorch `colorizers` package loads
(richzhang/colorization `colorizers/eccv16.py`, `colorizers/siggraph17.py`) and DDColor's four published files
(piddnad/DDColor `MODEL_ZOO.md`, served from the authors' Hugging Face repo piddnad/DDColor-models). As in
torch.hub, the hex digits in a Zhang file name (`colorization_release_v2-9b330a0b.pth`) are the start of the file's
SHA-256, and that is what a download is checked against; DDColor's names carry no hash, so their entries hold the
whole SHA-256 (`sha256`) and their own server (`url_base`). Entries with `colorizer=False` are networks that
evaluation or training needs (torchvision's InceptionV3 for the papers' FID, its VGG16-BN for DDColor's perceptual
loss, Meta's ImageNet-22k ConvNeXt encoders DDColor's generator starts from): downloaded and checked alike, never
taken as a network to colour with. Where no SHA-256 is published at all (the ConvNeXt files), the entry says so
(`unverified`) and a download prints the SHA-256 it got instead of checking it.

`resolve_weights(name_or_path)` is what `--weights` takes: a known name downloads once into the cache
(`$COLORJAX_CACHE`, else the platform's cache folder, e.g. `~/.cache/colorjax`) and returns the cached file; any
other value is a path to an existing file.

A download (with a progress bar) streams into `FILE.<sha256>.partial` in the cache folder and is renamed to its
final name only once the whole file's SHA-256 matches, so nothing half-downloaded or wrong is ever used. The partial
file outlives an interruption (a dropped connection, Ctrl-C, a crash): the next run asks the server only for the
rest (an HTTP `Range` request from the kept length) and says "resuming NAME at X of Y MB"; a server that ignores
`Range` (answers 200 with the whole file) is read again from the start, and says so. The partial's name holds the
hash its file must have, so it is never resumed into another file; one with the wrong hash at the end is deleted.
Two processes downloading the same file take turns on `FILE.lock` (an OS lock, dropped if its process dies): the
second waits, then finds the file cached. Every failure is one WeightsError line naming the URL and what to do
(retry to resume, or put the file by hand at the cache path). The partial file is the download's own resumable
state, written here; the finished file appears by one rename, as `colorjax.files` publishes outputs.
`COLORJAX_WEIGHTS_BASE_URL` replaces the authors' server (the file name is appended): a mirror, or a local server
in the tests.

`to-run` writes a run directory (config.json and a step-0 checkpoint, the layout the trainer writes) holding the
published model, so `colorize --workdir`, `evaluate --workdir` and `config.model_init` (fine-tuning the published
network on your own photos) treat it like a trained run. Its `config.inference` holds the authors' demo sizing
(256 x 256, square), so it colours exactly as `colorize --weights` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colorjax import ColorjaxError

try:
    import fcntl
except ImportError:  # Windows: msvcrt locks instead
    fcntl = None

AUTHORS_BASE_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
DDCOLOR_BASE_URL = "https://huggingface.co/piddnad/DDColor-models/resolve/main/"
TORCHVISION_BASE_URL = "https://download.pytorch.org/models/"
CONVNEXT_BASE_URL = "https://dl.fbaipublicfiles.com/convnext/"
_CHUNK = 1 << 20
_TIMEOUT_S = 30  # seconds without a byte before a connection counts as broken
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"


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
    size: int | None = None  # bytes, where the authors' documents give it (a server offering another size is refused)
    # Where they do not: the float32 weights and buffers of the model it fits, for `weights list` ("~129 MB");
    # never checked against a download.
    approx_size: int | None = None
    # False for a network that evaluation or a training recipe loads (FID features, a perceptual loss's VGG), not a
    # colorization network: `--weights`, `--model` and `to-run` refuse it; `download` and `weights list` treat it as
    # any file.
    colorizer: bool = True
    role: str = "a colorization network"  # what a non-colorizer is, for the refusal
    option: str | None = "--weights"  # the command-line option that takes a path to the file instead, if any
    # True for a file whose SHA-256 nobody has published (its name carries none either): a download is taken as it
    # comes, with one warning line giving its SHA-256 so that it can be compared and entered here as `sha256`.
    unverified: bool = False

    @property
    def size_text(self) -> str:
        """Its size for people: "912 MB", "~129 MB" (estimated from its parameter count), "? MB"."""
        if self.size is None and self.approx_size is not None:
            return f"~{megabytes(self.approx_size)} MB"
        return f"{megabytes(self.size)} MB"

    @property
    def sha256_prefix(self) -> str:
        """What a download's SHA-256 must start with: `sha256` when the entry has it, else the hex digits after the
        last '-' of the file name (torch.hub's rule)."""
        if self.sha256:
            return self.sha256
        if self.unverified:
            return ""
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
            approx_size=128_961_508,
        ),
        KnownWeights(
            name="siggraph17",
            model="siggraph17",
            file_name="siggraph17-df00044c.pth",
            description="Zhang et al., SIGGRAPH 2017: the automatic mode (no user hints)",
            model_kwargs={"width": 1.0},
            approx_size=136_771_148,
        ),
        KnownWeights(
            name="ddcolor_modelscope",
            model="ddcolor",
            file_name="ddcolor_modelscope.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet (cleaned as BigColor): the authors' default",
            model_kwargs={"size": "large"},
            sha256="17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce",
            url_base=DDCOLOR_BASE_URL,
            size=911_950_059,
        ),
        KnownWeights(
            name="ddcolor_paper",
            model="ddcolor",
            file_name="ddcolor_paper.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet: the paper's model",
            model_kwargs={"size": "large"},
            sha256="789781789db1bafc2165e1cf9658580f871cce64a81901ec49127877813f10b9",
            url_base=DDCOLOR_BASE_URL,
            approx_size=911_950_059,
        ),
        KnownWeights(
            name="ddcolor_artistic",
            model="ddcolor",
            file_name="ddcolor_artistic.pth",
            description="Kang et al., ICCV 2023, DDColor-L on ImageNet + artistic photos, no colourfulness loss",
            model_kwargs={"size": "large"},
            sha256="a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9",
            url_base=DDCOLOR_BASE_URL,
            size=911_950_059,
        ),
        KnownWeights(
            name="ddcolor_paper_tiny",
            model="ddcolor",
            file_name="ddcolor_paper_tiny.pth",
            description="Kang et al., ICCV 2023, DDColor-T (ConvNeXt-T encoder) on ImageNet: the paper's tiny model",
            model_kwargs={"size": "tiny"},
            sha256="81dd643904f4664c3718513e3320ae3db0c567f0d3e18398606659adee7bfc17",
            url_base=DDCOLOR_BASE_URL,
            approx_size=220_026_560,
        ),
        KnownWeights(
            name="inception_v3",
            model="inception_v3",
            file_name="inception_v3_google-1a9a5a14.pth",
            description="torchvision's ImageNet InceptionV3, the FID network of CT2 and DDColor (evaluate --fid)",
            # The whole SHA-256 as two public files give it (a Yocto pytorch-benchmark recipe and genforce's
            # metrics/inception.py); it extends the name's 1a9a5a14, but no download here has checked it.
            sha256="1a9a5a14f40645a370184bd54f4e8e631351e71399112b43ad0294a79da290c8",
            url_base=TORCHVISION_BASE_URL,
            colorizer=False,
            role="an evaluation network (the papers' FID features)",
            option="--inception",
            approx_size=108_645_056,  # 27,161,264 parameters (torchvision's count, the auxiliary head included)
        ),
        KnownWeights(
            name="vgg16_bn",
            model="vgg16_bn",
            # torch.hub's name: the hex digits are the start of the file's SHA-256. The whole SHA-256 (`sha256`)
            # is to be filled in when a machine that can download the file has hashed it.
            file_name="vgg16_bn-6c64b313.pth",
            description="torchvision's ImageNet VGG16-BN: DDColor's perceptual loss (models.vgg16_bn), not a colorizer",
            url_base=TORCHVISION_BASE_URL,
            approx_size=553_497_760,  # 138.37M float32 parameters and BatchNorm statistics
            colorizer=False,
            role="a part of a training recipe (DDColor's perceptual loss)",
            option=None,
        ),
        # The ImageNet-22k ConvNeXt encoders DDColor's generator starts from (piddnad/DDColor
        # basicsr/archs/ddcolor_arch.py `Encoder.load_pretrain_model`: convnext-l for DDColor-L, convnext-t for
        # DDColor-T), Meta's files as Liu et al. 2022 (facebookresearch/ConvNeXt README, "ImageNet-22K trained
        # models") publish them: `{'model': state_dict}` with the 21,841-class head. Neither Meta's README nor any
        # public mirror found gives their SHA-256 (timm's copies are converted files), hence `unverified`.
        KnownWeights(
            name="convnext_tiny_22k",
            model="convnext",
            file_name="convnext_tiny_22k_224.pth",
            description="Meta's ConvNeXt-T on ImageNet-22k (Liu et al. 2022): DDColor-T's encoder at the start",
            url_base=CONVNEXT_BASE_URL,
            approx_size=178_463_428,  # 44.6M float32 parameters, the 22k head included
            colorizer=False,
            role="a part of a training recipe (DDColor's pretrained encoder)",
            option="--config.model.encoder_init",
            unverified=True,
        ),
        KnownWeights(
            name="convnext_large_22k",
            model="convnext",
            file_name="convnext_large_22k_224.pth",
            description="Meta's ConvNeXt-L on ImageNet-22k (Liu et al. 2022): DDColor-L's encoder at the start",
            url_base=CONVNEXT_BASE_URL,
            approx_size=919_199_812,  # 229.8M float32 parameters, the 22k head included
            colorizer=False,
            role="a part of a training recipe (DDColor's pretrained encoder)",
            option="--config.model.encoder_init",
            unverified=True,
        ),
    )
}


def published_models() -> list[str]:
    """The models that have published weights (the choices of `--model`)."""
    return sorted({weights.model for weights in KNOWN_WEIGHTS.values() if weights.colorizer})


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
    """The cached file of the known weights `name`, downloaded if the cache lacks it: resuming the bytes an earlier
    run kept (`partial_path`), checked by its SHA-256 before it takes its final name. One-line WeightsError when
    it cannot be had."""
    weights = known(name)
    target = cached_path(name)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.with_name(target.name + LOCK_SUFFIX), name):
            if target.is_file():  # another process finished it while this one waited
                return target
            partial = partial_path(name)
            for stale in target.parent.glob(f"{glob.escape(target.name)}.*{PARTIAL_SUFFIX}"):
                if stale != partial:  # kept bytes of another file of this name (the registry's hash changed)
                    stale.unlink(missing_ok=True)
            digest = _fetch(weights, partial, target, progress)
            if weights.unverified:
                _say(
                    f"{weights.name}: no SHA-256 is published for {weights.url}, so this download is not checked; "
                    f"its SHA-256 is {digest}."
                )
            if not digest.startswith(weights.sha256_prefix):
                partial.unlink(missing_ok=True)
                raise WeightsError(
                    f"{weights.url} has SHA-256 {digest[:12]}..., not {weights.sha256_prefix[:12]}... as "
                    f"{'the registry' if weights.sha256 else 'its name'} promises: deleted it. Retry, or download "
                    f"the file by hand, check it and put it at {target}."
                )
            os.replace(partial, target)  # only a whole, checked file ever has the target's name
    except OSError as error:
        raise WeightsError(
            f"Cannot write to the weights cache {target.parent} ({error.strerror or error}); set COLORJAX_CACHE to "
            "a writable folder."
        ) from None
    return target


def partial_path(name: str) -> Path:
    """Where an unfinished download of `name` keeps its bytes between runs: `FILE.<sha256>.partial` beside the
    cached file, named after the hash the whole file must have, so a partial download of another file (another
    registry entry, an older hash) is never resumed."""
    weights = known(name)
    return cache_dir() / f"{weights.file_name}.{weights.sha256_prefix[:16] or 'unverified'}{PARTIAL_SUFFIX}"


@contextlib.contextmanager
def _exclusive(lock: Path, name: str) -> Iterator[None]:
    """Holds an exclusive lock on the file `lock` (created here, removed when done): two downloads of the same file
    take turns, and the second, finding the file cached, fetches nothing. The operating system drops the lock of a
    process that dies, so a crash leaves no stale lock."""
    while True:
        handle = open(lock, "a+b")  # noqa: SIM115 - closed below, after the lock's file is removed
        try:
            if not _lock(handle, blocking=False):
                _say(f"waiting for another download of {name} to finish (it holds {lock})")
                _lock(handle, blocking=True)
            try:  # still the file at that name? (a holder that finished removed it, and a newcomer made another)
                if os.path.samestat(os.stat(lock), os.fstat(handle.fileno())):
                    break
            except FileNotFoundError:
                pass
        except BaseException:
            handle.close()
            raise
        handle.close()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        handle.close()


def _lock(handle: Any, *, blocking: bool) -> bool:
    """Takes an exclusive lock on the open file `handle` (fcntl.flock; msvcrt.locking on Windows); whether it got it."""
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        except OSError as error:  # a file system without locks (some network mounts): go on unlocked
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        return True
    import msvcrt  # Windows

    while True:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not blocking:
                return False
            time.sleep(1.0)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def megabytes(size: int | None) -> str:
    """A byte count as MB (10^6): whole from 10 MB, one decimal below; "?" when unknown."""
    if size is None:
        return "?"
    return f"{size / 1e6:.{0 if size >= 10e6 else 1}f}"


def _fetch(weights: KnownWeights, partial: Path, target: Path, progress: bool) -> str:
    """Completes `partial` from the weights' URL, asking only for the bytes after those it keeps (HTTP Range), and
    returns the whole file's SHA-256 hex digest. What arrives stays in `partial` whatever happens, so the next call
    resumes from there; one-line WeightsError when the transfer fails."""
    url = weights.url
    by_hand = f"put the file by hand at {target}" + (
        f" (or pass its path to {weights.option})" if weights.option else ""
    )
    kept = partial.stat().st_size if partial.is_file() else 0
    if weights.size is not None and kept > weights.size:
        kept = _start_over(partial)
    if kept and kept == weights.size:
        return _hash_of(partial)  # all there: an earlier run stopped between the last byte and the check
    response, start, total = _open(url, kept, partial, by_hand)
    if response is None:  # the server says the kept bytes are the whole file
        return _hash_of(partial)
    if weights.size is not None and total is not None and total != weights.size:
        response.close()
        raise WeightsError(
            f"{url} serves {total} bytes, but {weights.name} is {weights.size}: not the published file; check "
            f"COLORJAX_WEIGHTS_BASE_URL, or {by_hand}."
        )
    if start:
        _say(f"resuming {weights.name} at {megabytes(start)} of {megabytes(total)} MB")
    elif kept:
        host = urllib.parse.urlsplit(url).netloc
        _say(f"{host} ignores HTTP Range (answered the whole file): downloading {weights.name} again from the start")
    sha256 = hashlib.sha256()
    with response, open(partial, "r+b" if start else "wb") as file:
        if start:
            _hash_into(sha256, file, start)
            file.truncate(start)
        length, stopped = _stream(response, file, sha256, start, total, weights.name, progress)
    if stopped:
        raise WeightsError(
            f"Download of {url} stopped at {megabytes(length)} of {megabytes(total)} MB ({stopped}); kept them in "
            f"{partial}: run the same command again to resume, or {by_hand}."
        )
    return sha256.hexdigest()


def _open(url: str, kept: int, partial: Path, by_hand: str) -> tuple[Any, int, int | None]:
    """(response, offset of its first byte in the file, the file's size if announced) for `url` from byte `kept`
    on; (None, kept, size) when the kept bytes already are the whole file. One-line WeightsError on failure."""
    headers = {"Range": f"bytes={kept}-"} if kept else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        _, total = _content_range(error.headers.get("Content-Range") if error.headers else None)
        error.close()
        if error.code == 416 and kept:  # Range Not Satisfiable: nothing after the kept bytes, or too many kept
            if total == kept:
                return None, kept, total
            return _open(url, _start_over(partial), partial, by_hand)
        raise WeightsError(
            f"Cannot download {url} (HTTP {error.code} {error.reason}){_kept(kept)}; {by_hand}."
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsError(f"Cannot download {url} ({reason}){_kept(kept)}; {by_hand}.") from None
    if response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != kept:
            response.close()
            raise WeightsError(
                f"{url} answered a request for the bytes from {kept} on with those from {start}; delete {partial} "
                f"and retry, or {by_hand}."
            )
        return response, start, total
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length and length.isdigit() else None


def _kept(kept: int) -> str:
    return f" (the {megabytes(kept)} MB kept so far resume on the next try)" if kept else ""


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, complete length) of a Content-Range header (`bytes 10-99/100`, `bytes */100`); None if absent."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _stream(
    response: Any, file: Any, sha256: Any, start: int, total: int | None, label: str, progress: bool
) -> tuple[int, str | None]:
    """Copies `response` into `file` (and `sha256`) at byte `start`; (the file's length after it, why it stopped
    short or None)."""
    from tqdm import tqdm

    length = start
    bar = tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not progress,
        file=sys.stderr,
    )
    with bar:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, ValueError, http.client.HTTPException) as error:  # a reset, a timeout, IncompleteRead
                return length, f"{type(error).__name__}"
            if not chunk:
                break
            file.write(chunk)
            sha256.update(chunk)
            length += len(chunk)
            bar.update(len(chunk))
    if total is not None and length != total:
        return length, "the connection closed early" if length < total else "more bytes than announced"
    return length, None


def _start_over(partial: Path) -> int:
    partial.unlink(missing_ok=True)
    return 0


def _hash_into(sha256: Any, file: Any, length: int) -> None:
    """Feeds the first `length` bytes of `file` to `sha256`."""
    file.seek(0)
    remaining = length
    while remaining:
        chunk = file.read(min(_CHUNK, remaining))
        if not chunk:
            raise OSError(f"{file.name} is shorter than {length} bytes")
        sha256.update(chunk)
        remaining -= len(chunk)


def _hash_of(path: Path) -> str:
    sha256 = hashlib.sha256()
    with open(path, "rb") as file:
        _hash_into(sha256, file, path.stat().st_size)
    return sha256.hexdigest()


def identify(path: Path) -> KnownWeights | None:
    """The registry entry whose file name `path` has (how a downloaded file is recognised), else None."""
    for weights in KNOWN_WEIGHTS.values():
        if Path(path).name == weights.file_name:
            return weights
    return None


def _refuse_non_colorizer(entry: KnownWeights | None) -> None:
    if entry is not None and not entry.colorizer:
        raise WeightsError(
            f"{entry.name} ({entry.file_name}) is {entry.role}, not a colorization network; pass one of: "
            f"{', '.join(name for name, weights in KNOWN_WEIGHTS.items() if weights.colorizer)}."
        )


def published_model(name_or_path: str | Path, model: str | None = None) -> tuple[Path, str]:
    """(file, model name) for `--weights NAME|PATH [--model M]`: a known name brings its model (a different
    `model` is an error); a path takes `model`, else the model of a known file name; one-line WeightsError
    otherwise. Downloads a known name on first use."""
    models = published_models()
    if model is not None and model not in models:
        raise WeightsError(f"No published weights for model {model!r}; choose one of: {', '.join(models)}.")
    entry = KNOWN_WEIGHTS.get(str(name_or_path))
    _refuse_non_colorizer(entry)
    if entry is not None and model is not None and entry.model != model:  # before any download
        raise WeightsError(f"{entry.name} holds {entry.model} weights, not {model}; drop --model.")
    path = resolve_weights(name_or_path)
    entry = entry or identify(path)
    _refuse_non_colorizer(entry)
    if entry is not None and model is not None and entry.model != model:
        raise WeightsError(
            f"{path.name} holds {entry.model} weights, not {model}; drop --model or pass --model {entry.model}."
        )
    model = model or (entry.model if entry else None)
    if model is None:
        raise WeightsError(f"Which model is {path}? A weights file needs --model ({', '.join(models)}).")
    return path, model
