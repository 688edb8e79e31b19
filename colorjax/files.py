"""The one file writer: every file colorjax writes for a user goes through here, whole or not at all.

- `atomic_write(path, data)`: bytes (or text) into a temporary file with a unique name in the target folder, then
  renamed onto `path`: a reader never sees half a file, an interrupted or failed write leaves no half-written
  output under the real name and no temporary file either, and two writers never share a temporary name. Remote
  paths (`gs://...`, through etils.epath) are written directly: an object store publishes an object whole.
- `atomic_path(path, suffix=None)`: the same for writers that stream into a file of their own (a video muxer, a
  folder of exported files): a context manager yielding a temporary path that does not exist yet, renamed onto
  `path` when the block succeeds and removed (file or folder) when it raises. `StagedPath` is the same as an
  object, for writers whose start and end are in different methods (`commit()` / `discard()`); `hold()` locks its
  temporary for the writer's life, so that `sweep_stale(path)` can remove the ones a killed writer left.
- `encode_image(rgb, format, quality)`, `write_image(rgb, path, format, quality)`, `save_png(rgb, path)`: uint8
  (H, W, 3) pictures as PNG (`encode_png`: our own fast writer, lossless) or JPEG (Pillow).
- `write_json(path, document)`, `write_text(path, text)`: the run's config.json, metrics.json, results.md, ...
- `check_writable(output)`: an output folder is made and writable before long work starts (OutputError);
  `remove_if_unused(output, created)` takes away the folders it made when a command failed before writing.

Modes: a new file gets exactly what `open(path, "w")` would give it (0666 less the process's umask: the file is
created by `open` itself, never by `mkstemp`, whose 0600 would make outputs private), a new folder what `mkdir`
gives; a file that replaces an existing one keeps that file's permission bits, as writing into it would. The umask
is never changed, not even for a moment (the app writes from several threads).

A rename replaces a symlink at `path` itself, never the file it points to. Nothing is fsync'ed unless asked
(`atomic_write(..., durable=True)`): a process killed at any point leaves the old file or the new one, but after a
power cut the file system decides.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import secrets
import shutil
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorjax import ColorjaxError

if TYPE_CHECKING:
    import numpy as np

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG"}
DEFAULT_JPEG_QUALITY = 95  # Pillow's advised maximum; higher only grows the file
# PNGs (`encode_png`): deflated by ISA-L (the isal package) at its level 2, where installed, else by zlib at its
# level 1 (zlib's fastest: 4x faster than its default 6 on a 20 MP photo for ~7% more bytes); and the uncompressed
# bytes each core deflates at a time. On a 20 MP photo (an upscaled scene photo with grain, `bench.photos`) ISA-L's
# level 2 makes a stream of the same size as zlib's level 1 (25.1 MB) in a quarter of the CPU time (0.15 s
# against 0.47-0.62 s, one core); its levels 0 and 1 are no faster.
ISAL_PNG_LEVEL = 2
ZLIB_PNG_LEVEL = 1
PNG_PIECE_BYTES = 4 << 20
_NAME_BYTES = 100  # of the target's name kept in a temporary name (file names are at most 255 bytes)


class OutputError(ColorjaxError):
    """An output that cannot be written (the message names it and what to do)."""


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` is an object-store URL (`gs://bucket/...`), written through etils.epath."""
    return "://" in str(path)


def atomic_write(path: str | os.PathLike, data: bytes | str, durable: bool = False) -> Path:
    """Writes `data` (str: as UTF-8) to `path` whole or not at all (module docstring); creates the folder.
    `durable`: the data is fsync'ed before the rename (for a caller that commits a record naming the file next,
    the app; the caller fsyncs the folder once its renames are done)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if is_remote(path):
        from etils import epath

        remote = epath.Path(path)
        remote.parent.mkdir(parents=True, exist_ok=True)
        remote.write_bytes(data)
        return remote
    with atomic_file(path, durable) as file:
        file.write(data)
    return Path(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, durable: bool = False) -> Iterator[io.BufferedWriter]:
    """A local file opened for writing in binary, which appears at `path` whole when the block ends, or not at all
    when it raises (`atomic_write` for a writer that writes as it goes); `durable` as in `atomic_write`."""
    with atomic_path(path) as temporary, open(temporary, "xb") as file:  # "x": the name is ours alone
        yield file
        if durable:
            file.flush()
            os.fsync(file.fileno())


class StagedPath:
    """A temporary path beside `path` for one writer: `temporary` (not created: the writer makes it, a file or a
    folder), then `commit()` renames it onto `path` or `discard()` removes it. `atomic_path` as an object."""

    def __init__(self, path: str | os.PathLike, suffix: str | None = None):
        if is_remote(path):
            raise ValueError(f"{path}: only local files are staged (write remote ones with atomic_write).")
        self.path = Path(path)
        self._created = _outermost_missing(self.path.parent)  # taken away again by discard() where still empty
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary_name(self.path, suffix)
        self._lock: int | None = None

    def hold(self, folder: bool = False) -> Path:
        """Creates the temporary (an empty file, or a folder) and locks it for as long as this writer lives, so
        `sweep_stale` can tell it from one a killed writer left (a writer that streams for minutes, e.g. a video,
        would otherwise leave a hidden partial file behind when it is killed). The writer may then open and
        truncate the file by its name: the lock stays on it until `commit()` or `discard()`."""
        if folder:
            self.temporary.mkdir()
        else:
            with open(self.temporary, "xb"):
                pass
        self._lock = _lock_exclusive(self.temporary)
        return self.temporary

    def commit(self) -> Path:
        """Moves the finished temporary file or folder onto `path` (the temporary is removed if that fails)."""
        try:
            _keep_mode(self.temporary, self.path)
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        finally:
            self._release()
        return self.path

    def discard(self) -> None:
        """Removes whatever the writer left under the temporary name (nothing if it made nothing)."""
        if self.temporary.is_dir() and not self.temporary.is_symlink():
            shutil.rmtree(self.temporary, ignore_errors=True)
        else:
            self.temporary.unlink(missing_ok=True)
        self._release()
        remove_if_unused(self.path.parent, self._created)

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops its lock
            self._lock = None


def _lock_exclusive(path: Path) -> int | None:
    """An open descriptor holding a non-blocking exclusive flock on `path`; None where someone holds it already
    or the system has no flock (Windows: nothing is swept there)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def sweep_stale(path: str | os.PathLike, suffix: str | None = None) -> list[Path]:
    """Removes the temporaries of `path` (`.NAME.RANDOM.tmpSUFFIX`, as `temporary_name` makes them) that a writer
    killed before `commit()`/`discard()` left behind: those no living writer holds (`StagedPath.hold`). Returns
    what it removed. POSIX only (flock); elsewhere nothing is removed."""
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    name = path.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(name)}.*.tmp{glob.escape(suffix)}"):
        token = candidate.name[len(name) + 2 : len(candidate.name) - len(".tmp" + suffix)]
        if len(token) != 16 or any(c not in "0123456789abcdef" for c in token) or candidate.is_symlink():
            continue
        try:
            lock = _lock_exclusive(candidate)
        except OSError:
            continue
        if lock is None:
            continue  # a living writer holds it
        try:
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
        finally:
            os.close(lock)
    return removed


def temporary_name(path: Path, suffix: str | None = None) -> Path:
    """A hidden name beside `path` that nothing has yet: `.NAME.RANDOM.tmpSUFFIX`, ending in `suffix` (default:
    `path`'s own suffix), so writers that pick a format by the name (a muxer, savefig) see the right one."""
    suffix = path.suffix if suffix is None else suffix
    name = path.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    while True:
        candidate = path.with_name(f".{name}.{secrets.token_hex(8)}.tmp{suffix}")
        if not os.path.lexists(candidate):
            return candidate


def _keep_mode(temporary: Path, path: Path) -> None:
    """A file replacing an existing regular file takes that file's permission bits (as writing into it would)."""
    try:
        old = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(old.st_mode) and temporary.is_file():
        os.chmod(temporary, stat.S_IMODE(old.st_mode))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a unique temporary path beside `path` (hidden, ending in `suffix`, default `path`'s own suffix; not
    created yet: the writer creates the file or folder, with its own usual mode); renames it onto `path` when the
    block ends without an exception, removes it when the block (or the rename) raises."""
    staged = StagedPath(path, suffix)
    try:
        yield staged.temporary
    except BaseException:
        staged.discard()
        raise
    staged.commit()


def encode_image(rgb: np.ndarray, format: str = "png", quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """A uint8 (H, W, 3) image (or (H, W) grey) as PNG (`encode_png`, lossless) or JPEG (Pillow, at `quality`)
    bytes, with no metadata; `format` is png | jpg."""
    import numpy as np
    from PIL import Image

    if format not in IMAGE_FORMATS:
        raise OutputError(f"Unknown image format {format!r}; choose one of: {', '.join(IMAGE_FORMATS)}.")
    if format == "png":
        return encode_png(rgb)
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format=IMAGE_FORMATS[format], quality=quality)
    return buffer.getvalue()


def _deflater() -> tuple[Any, int]:
    """(the zlib-like module that deflates PNGs, its level): ISA-L's at `ISAL_PNG_LEVEL` where the isal package
    is installed (a dependency of colorjax), else zlib's at `ZLIB_PNG_LEVEL`."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib, ZLIB_PNG_LEVEL
    return isal_zlib, ISAL_PNG_LEVEL


def encode_png(pixels: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) RGB or (H, W) grey image as PNG bytes (`write_png`)."""
    parts: list[bytes] = []
    write_png(pixels, parts.append)
    return b"".join(parts)


def write_png(pixels: np.ndarray, write: Callable[[bytes], Any]) -> None:
    """Writes a uint8 (H, W, 3) RGB or (H, W) grey image as a PNG through `write` (a binary file's `write`), part
    by part: every row with PNG's Up filter (the row minus the row above), deflated (`_deflater`: ISA-L, else zlib)
    in pieces of `PNG_PIECE_BYTES` compressed on all cores at once (each piece ends in a sync flush, so the pieces
    join into one zlib stream, as pigz does). Each piece is its own IDAT chunk, written as soon as it and those
    before it are deflated: the file's writing overlaps the deflating, and its bytes are never joined in memory
    (joining them, then the chunk, then the file copied a 20-megapixel photo's 25 MB four times).

    Our own writer rather than Pillow's because Pillow tries all five filters on every row and offers no choice:
    on a 20-megapixel photo that search alone took 1.1 s of its 1.8 s encode at level 1, where the Up filter takes
    0.06 s in NumPy. On an upscaled scene photo with grain (`bench.photos`, 5 MP) the Up filter at level 1 is 2%
    smaller than Pillow's level 1; zlib's run-length strategy would deflate faster but 20% larger. The file is a
    plain 8-bit PNG (IHDR, IDATs, IEND; no metadata) that any reader decodes to exactly `pixels`."""
    import numpy as np

    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] in (1, 3))):
        raise ValueError(f"encode_png takes uint8 (H, W, 3) or (H, W) pixels, got {pixels.dtype} {pixels.shape}.")
    height, width = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 and pixels.shape[-1] == 3 else 0  # truecolour or greyscale
    rows = pixels.reshape(height, -1)
    rows_per_piece = max(1, PNG_PIECE_BYTES // (rows.shape[1] + 1))
    starts = list(range(0, height, rows_per_piece))
    deflate, level = _deflater()

    def piece(start: int) -> tuple[np.ndarray, list[bytes]]:
        stop = min(start + rows_per_piece, height)
        filtered = np.empty((stop - start, rows.shape[1] + 1), np.uint8)
        filtered[:, 0] = 2  # PNG filter type 2, Up; the first row's "row above" is zeros
        above = rows[start - 1 : stop - 1] if start else np.concatenate([np.zeros_like(rows[:1]), rows[: stop - 1]])
        np.subtract(rows[start:stop], above, out=filtered[:, 1:])
        compressor = deflate.compressobj(level, deflate.DEFLATED, -zlib.MAX_WBITS)
        last = stop == height
        flush = deflate.Z_FINISH if last else deflate.Z_SYNC_FLUSH
        return filtered, [compressor.compress(filtered), compressor.flush(flush)]

    header = 0x7800  # RFC 1950: deflate with a 32 kB window, compression-level hint 0 ("fastest")
    header += (31 - header % 31) % 31
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    for part in (b"\x89PNG\r\n\x1a\n", *_png_chunk(b"IHDR", [ihdr])):
        write(part)
    with contextlib.ExitStack() as stack:
        pieces = map(piece, starts)
        if len(starts) > 1:  # ISA-L, zlib and NumPy release the GIL: the pieces are deflated in parallel, in order.
            pieces = stack.enter_context(ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1))).map(piece, starts)
        checksum = 1
        for number, (filtered, deflated) in enumerate(pieces):
            checksum = deflate.adler32(filtered, checksum)
            if number == 0:
                deflated.insert(0, header.to_bytes(2, "big"))
            if number == len(starts) - 1:
                deflated.append(checksum.to_bytes(4, "big"))
            for part in _png_chunk(b"IDAT", deflated):
                write(part)
    for part in _png_chunk(b"IEND", []):
        write(part)


def _png_chunk(kind: bytes, parts: list[bytes]) -> list[bytes]:
    """A PNG chunk of `parts` joined, as its pieces: length, type, the parts, the CRC of type and data."""
    crc = zlib.crc32(kind)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [struct.pack(">I", sum(len(part) for part in parts)), kind, *parts, struct.pack(">I", crc)]


def format_of(path: str | os.PathLike) -> str:
    """png or jpg, from a file name's suffix (anything else: png)."""
    return "jpg" if str(path).lower().endswith((".jpg", ".jpeg")) else "png"


def write_image(
    rgb: np.ndarray, path: str | os.PathLike, format: str | None = None, quality: int = DEFAULT_JPEG_QUALITY
) -> Path:
    """Writes a uint8 image atomically as `format` (default: from the suffix); returns the path. A local PNG is
    written as it is deflated (`write_png`)."""
    format = format or format_of(path)
    if format != "png" or is_remote(path):
        return atomic_write(path, encode_image(rgb, format, quality))
    with atomic_file(path) as file:
        write_png(rgb, file.write)
    return Path(path)


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Writes a uint8 (H, W, 3) image as PNG, creating folders as needed (local paths or gs://...)."""
    return write_image(rgb, path, "png")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` as UTF-8, atomically."""
    return atomic_write(path, text)


def write_json(path: str | os.PathLike, document: Any, indent: int | None = 2, **options: Any) -> Path:
    """Writes `json.dumps(document, indent=indent, **options)` and a newline, atomically."""
    return atomic_write(path, json.dumps(document, indent=indent, **options) + "\n")


def check_writable(output: str | os.PathLike) -> Path | None:
    """Creates `output` if needed and checks a file can be written there, before any long work starts. Returns the
    outermost folder it created (None when `output` existed), for `remove_if_unused` after a failed command."""
    output = Path(output)
    created = _outermost_missing(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".colorjax-write-test."):
            pass
    except OSError as e:
        raise OutputError(f"Cannot write to output folder {output} ({e.strerror}); choose another --output.") from e
    return created


def _outermost_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None when `folder` exists)."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing = candidate
    return missing


@contextlib.contextmanager
def removed_if_unused(output: str | os.PathLike, created: Path | None):
    """Runs its block; if the block fails, `remove_if_unused(output, created)` before the error goes on."""
    try:
        yield
    except BaseException:
        remove_if_unused(output, created)
        raise


def remove_if_unused(output: str | os.PathLike, created: Path | None) -> None:
    """Removes the folders `check_writable` created for `output` (up to `created`) where they are still empty: a
    command that failed before writing anything leaves no empty --output folder behind."""
    if created is None:
        return
    folder = Path(output)
    while True:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            return
        if folder == created:
            return
        folder = folder.parent
