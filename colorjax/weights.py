"""Published weights by name: a registry, a checked download into a cache, and a published model as a colorjax run.

    python -m colorjax.weights list
    python -m colorjax.weights download eccv16
    python -m colorjax.weights to-run eccv16 --workdir runs/eccv16_published

Known weights (`KNOWN_WEIGHTS`) are the authors' own files, at the URLs their PyTorch `colorizers` package loads
(richzhang/colorization `colorizers/eccv16.py`, `colorizers/siggraph17.py`). As in torch.hub, the hex digits in a
file name (`colorization_release_v2-9b330a0b.pth`) are the start of the file's SHA-256, and that is what a
download is checked against.

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

import argparse
import dataclasses
import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

AUTHORS_BASE_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
_CHUNK = 1 << 20


class WeightsError(ValueError):
    """A weights name, file or download problem the user can fix; the message is one line saying how."""


@dataclasses.dataclass(frozen=True)
class KnownWeights:
    """One published weights file: where it lives, which model it fits and with which constructor kwargs."""

    name: str
    model: str
    file_name: str
    description: str
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def sha256_prefix(self) -> str:
        """The hex digits after the last '-' of the file name: the start of the file's SHA-256 (torch.hub's rule)."""
        match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", self.file_name)
        assert match, f"{self.file_name} carries no hash"
        return match.group(1)

    @property
    def url(self) -> str:
        base = os.environ.get("COLORJAX_WEIGHTS_BASE_URL") or AUTHORS_BASE_URL
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
    )
}


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
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        raise WeightsError(
            f"Cannot write to the weights cache {target.parent} ({error.strerror}); set COLORJAX_CACHE to a "
            "writable folder."
        ) from None
    temporary = Path(temporary)
    try:
        with os.fdopen(handle, "wb") as file:
            digest = _fetch(url, file, target, progress)
        if not digest.startswith(weights.sha256_prefix):
            raise WeightsError(
                f"{url} has SHA-256 {digest[:12]}..., not {weights.sha256_prefix}... as its name promises: "
                "deleted it. Retry, or download the file by hand and check it."
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
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
    models = sorted({w.model for w in KNOWN_WEIGHTS.values()})
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


# ------------------------------------------------------------------------------------------- a run directory
def run_config(weights: KnownWeights):
    """The config.json of a run holding `weights`: the model with its published kwargs, the data size the
    published models are evaluated at (256, as `evaluate --weights`), and the authors' demo sizing for colorize."""
    import ml_collections

    from colorjax.config_lib import base_config

    config = base_config()
    config.model = ml_collections.ConfigDict({"name": weights.model, **weights.model_kwargs})
    if weights.model == "eccv16":
        config.loss = ml_collections.ConfigDict(
            dict(
                name="zhang_classification",
                prior_path=None,
                rebalance=True,
                lam=0.5,
                k=5,
                sigma=5.0,
                min_chroma=5.0,
            )
        )
    else:
        config.loss = ml_collections.ConfigDict(dict(name="l2", chroma_scale=110.0))
    config.data.image_size = 256
    # `evaluate --workdir` without --data: the seven wheel-shipped photos (the samples source has one split).
    config.data.source = "samples"
    config.data.eval_split = "train"
    config.inference.resolution = 256
    config.inference.square = True
    return config


def to_run(name_or_path: str | Path, workdir: str | Path, model: str | None = None) -> Path:
    """Writes `workdir` (config.json + a step-0 checkpoint) from published weights; returns the workdir.

    `name_or_path`: a known name, or a file of one of the known models (`model` names which, unless the file has a
    known file name). Refuses a workdir that already holds checkpoints.
    """
    from colorjax import published_weights, runs

    path, model = published_model(name_or_path, model)
    entry = KNOWN_WEIGHTS.get(str(name_or_path)) or identify(path)
    entry = entry or next(w for w in KNOWN_WEIGHTS.values() if w.model == model)
    workdir = Path(workdir)
    if (workdir / runs.CHECKPOINT_DIR).exists() or (workdir / runs.CONFIG_FILE).exists():
        raise WeightsError(f"{workdir} already holds a run; choose a new --workdir.")
    try:
        _, variables = published_weights.load_weights_file(entry.model, path, **entry.model_kwargs)
    except (ValueError, FileNotFoundError) as error:
        raise WeightsError(str(error)) from None
    provenance = {"name": entry.name, "file": path.name, "sha256_prefix": entry.sha256_prefix}
    write_run(workdir, run_config(entry), variables, entry.model_kwargs, weights=provenance)
    return workdir


def write_run(workdir: str | Path, config, variables: dict[str, Any], model_kwargs: dict[str, Any], **meta) -> None:
    """A run directory holding `variables` as its step-0 checkpoint: config.json and checkpoints/ as the trainer
    writes them (inference variables only, no optimizer state). `meta` adds fields to the checkpoint's meta."""
    import json

    import jax

    from colorjax import runs

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs.write_config(config, workdir)
    state = {
        "step": 0,
        "params": variables["params"],
        "batch_stats": variables.get("batch_stats", {}),
        "frozen": variables.get("frozen", {}),
    }
    meta = {
        "step": 0,
        "config": json.loads(config.to_json_best_effort()),
        "data_positions": [],
        "class_names": None,
        "model_kwargs": dict(model_kwargs),
        **meta,
    }
    checkpoints = runs.open_checkpoints(workdir, config, async_save=False)
    checkpoints.save(0, jax.device_get(state), meta)
    checkpoints.close()


# ----------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorjax.weights", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the known weights, where they come from, and whether they are cached")
    fetch = commands.add_parser("download", help="download known weights into the cache (once)")
    fetch.add_argument("name", help=", ".join(KNOWN_WEIGHTS))
    run = commands.add_parser("to-run", help="write a colorjax run directory holding published weights")
    run.add_argument("weights", metavar="NAME|PATH", help="a known name or a weights file")
    run.add_argument("--workdir", required=True, help="the run directory to create")
    run.add_argument("--model", help="the model of a weights file with an unknown name")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(f"cache: {cache_dir()}")
            for weights in KNOWN_WEIGHTS.values():
                path = cache_dir() / weights.file_name
                state = "cached" if path.is_file() else "not downloaded"
                print(f"{weights.name:<11} model {weights.model:<11} {state:<15} {weights.url}")
                print(f"{'':<11} {weights.description}")
        elif args.command == "download":
            print(download(args.name))
        else:
            workdir = to_run(args.weights, args.workdir, args.model)
            print(
                f"Wrote {workdir}: colour with `python -m colorjax.colorize --workdir {workdir} PHOTOS --output "
                "DIR`, or fine-tune with --config.model_init=" + str(workdir)
            )
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
