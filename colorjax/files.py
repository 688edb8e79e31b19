"""The one file writer: every file colorjax writes for a user goes through here, whole or not at all.

- `atomic_write(path, data)`: bytes (or text) into a temporary file with a unique name in the target folder, then
  renamed onto `path`: a reader never sees half a file, a crash leaves no half-written output under the real name,
  and two writers never share a temporary name. Remote paths (`gs://...`, through etils.epath) are written
  directly: an object store publishes an object whole.
- `atomic_path(path)`: the same for writers that stream into a file of their own (a video muxer, a folder of
  exported files): a context manager yielding the temporary path, renamed onto `path` when the block succeeds and
  removed when it fails.
- `encode_image(rgb, format, quality)`, `write_image(rgb, path, format, quality)`, `save_png(rgb, path)`: uint8
  (H, W, 3) pictures as PNG or JPEG.
- `write_json(path, document)`, `write_text(path, text)`: the run's config.json, metrics.json, results.md, ...
- `check_writable(output)`: an output folder is made and writable before long work starts (OutputError).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from colorjax import ColorjaxError

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG"}
DEFAULT_JPEG_QUALITY = 95  # Pillow's advised maximum; higher only grows the file


class OutputError(ColorjaxError):
    """An output that cannot be written (the message names it and what to do)."""


def _is_local(path: str | os.PathLike) -> bool:
    return "://" not in str(path)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes `data` to `path` whole or not at all (see the module docstring); creates the folder; returns `path`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not _is_local(path):
        from etils import epath

        remote = epath.Path(path)
        remote.parent.mkdir(parents=True, exist_ok=True)
        remote.write_bytes(data)
        return remote
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a unique temporary path in `path`'s folder (hidden, ending in `suffix`, default `path`'s own suffix,
    so format-sniffing writers still see it); renames it onto `path` when the block ends without an exception and
    removes it (a file or a folder) when it raises. Its mode is a new file's (umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f"{suffix or path.suffix}.tmp")
    os.close(handle)
    temporary = Path(name)
    temporary.unlink()  # the writer creates it (a file or a folder); the unique name stays ours
    try:
        yield temporary
        if temporary.is_file():
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def encode_image(rgb: np.ndarray, format: str = "png", quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """A uint8 (H, W, 3) image (or (H, W) grey) as PNG or JPEG bytes (`format`: png | jpg)."""
    from PIL import Image

    if format not in IMAGE_FORMATS:
        raise OutputError(f"Unknown image format {format!r}; choose one of: {', '.join(IMAGE_FORMATS)}.")
    buffer = io.BytesIO()
    options = {"quality": quality} if format == "jpg" else {}
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format=IMAGE_FORMATS[format], **options)
    return buffer.getvalue()


def format_of(path: str | os.PathLike) -> str:
    """png or jpg, from a file name's suffix (anything else: png)."""
    return "jpg" if str(path).lower().endswith((".jpg", ".jpeg")) else "png"


def write_image(
    rgb: np.ndarray, path: str | os.PathLike, format: str | None = None, quality: int = DEFAULT_JPEG_QUALITY
) -> Path:
    """Writes a uint8 image atomically as `format` (default: from the suffix); returns the path."""
    return atomic_write(path, encode_image(rgb, format or format_of(path), quality))


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Writes a uint8 (H, W, 3) image as PNG, creating folders as needed (local paths or gs://...)."""
    return atomic_write(path, encode_image(rgb, "png"))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, text)


def write_json(path: str | os.PathLike, document: Any, indent: int | None = 2) -> Path:
    return atomic_write(path, json.dumps(document, indent=indent) + "\n")


def check_writable(output: str | os.PathLike) -> None:
    """Creates `output` if needed and checks a file can be written there, before any long work starts."""
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".colorjax-write-test."):
            pass
    except OSError as e:
        raise OutputError(f"Cannot write to output folder {output} ({e.strerror}); choose another --output.") from e
