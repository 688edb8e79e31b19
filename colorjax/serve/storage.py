"""Uploads in, image files out: decoding within limits, and the folder of stored colorizations.

Uploads are decoded by content, never trusted by name or extension: Pillow reads the header first, so a photo whose
header claims more than `max_pixels` (a decompression bomb) is refused before any pixel is decoded. Once it decoded,
the upload is stored as sent, named by its format (`input_name`: `input.jpg` for a JPEG, whatever the uploader
called it): a re-encode of a 20-megapixel photo to PNG cost 0.45 s of the request (a quiet machine) and 4-5x its
bytes on disk. An item stored before that keeps its decoded upload as `input.png`, which the same rule names and the
same decoder reads. Whoever reads the stored upload goes through `read_input`, the upload's own decoder (EXIF
orientation applied); the upload's metadata (EXIF, GPS included) stays on disk with it, in its owner's private item,
and never leaves the server: every image the app sends is decoded and re-encoded without metadata
(`api.image_response`). Each colorization is a folder `images/<id>/` under the data dir, named by a random id that
is checked against `IMAGE_ID` before any path is built from it. Files are fsync'ed before the caller commits their
row; replacing an item's files and deleting the item exclude each other, so a re-colour that loses the race to a
delete writes nothing; and `sweep` removes at start what a crash left.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from colorjax import ColorjaxError, color, files
from colorjax.data import decode

# The photo types the app accepts, by Pillow's format name, and the suffix their stored upload is named with
# (`input_name`; MPO: the JPEG variant many cameras write).
INPUT_SUFFIXES = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
ACCEPTED_FORMATS = set(INPUT_SUFFIXES)
INPUT_NAMES = tuple(sorted({f"input.{suffix}" for suffix in INPUT_SUFFIXES.values()}))
IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
# The files of one colorization besides the upload (`INPUT_NAMES`): its gray version (one channel; for a photo larger
# than a screen or a gray upload none: it is made from the upload when asked, `api.image_response`), the
# colorization, a history thumbnail, and for a photo larger than a screen the result page's previews of the
# colorization and the gray.
FILE_NAMES = {
    "gray": "gray.png",
    "color": "color.png",
    "thumb": "thumb.jpg",
    "preview": "preview.jpg",
    "gray_preview": "gray_preview.jpg",
    "previous": "previous.png",  # The colours of the item's previous model, kept when another re-coloured it.
    "previous_preview": "previous_preview.jpg",
}
THUMBNAIL_SIDE = 320
PREVIEW_SIDE = 2048  # The longest side the result page loads first; full resolution for "actual size" and downloads.
# Shrinking for previews and thumbnails: Pillow first box-reduces by the whole factor that leaves the image at least
# REDUCING_GAP times the target, then filters with Lanczos. At Pillow's default (2) a 20-megapixel photo (5477 px)
# is not reduced at all before its 2048 px preview, and Lanczos filters all of it: 0.25 s, the largest part of the
# app's encoding. At 1 it is halved first: 0.13 s, and 0.46 levels from the default's preview on average (at most 3).
REDUCING_GAP = 1.0
# What the app serves of an item: its files, the upload ("input") and its preview ("input_preview", made from the
# upload when asked, like every image served from the upload: `api.image_response`).
SERVED_KINDS = {*FILE_NAMES, "input", "input_preview"}
# A kind whose file is absent is served from its stand-in: an item stored before previews existed, the gray of a
# photo larger than a screen or of a gray upload (made from the upload).
STAND_INS = {"preview": "color", "gray_preview": "gray", "gray": "input", "previous_preview": "previous"}

log = logging.getLogger(__name__)


class UploadError(ColorjaxError, ValueError):
    """An upload the app refuses; `status` is the HTTP status that says why (400 bad, 413 too large)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """The uploaded bytes as uint8 (H, W, 3), EXIF orientation applied; UploadError when they are no photo of an
    accepted type or have more than `max_pixels` pixels (checked from the header, before decoding)."""
    try:
        image = Image.open(io.BytesIO(data))  # the header only: the pixels are decoded below, once checked
    except Image.DecompressionBombError as e:
        raise UploadError(
            413,
            f"The image's header claims more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (a "
            f"decompression bomb?); this server takes at most {max_pixels / 1e6:.1f} megapixels (--max-pixels).",
        ) from e
    except (OSError, ValueError, SyntaxError) as e:
        raise UploadError(400, "The upload is not an image (send a JPEG, PNG, WebP, BMP or TIFF photo).") from e
    with image:
        kind, (width, height) = image.format, image.size
        if kind not in ACCEPTED_FORMATS:
            raise UploadError(400, f"{kind} images are not accepted; send a JPEG, PNG, WebP, BMP or TIFF photo.")
        if width * height > max_pixels:
            raise UploadError(
                413,
                f"The image is {width}x{height} = {width * height / 1e6:.1f} megapixels; this server takes at most "
                f"{max_pixels / 1e6:.1f} megapixels (--max-pixels).",
            )
        try:
            # The one decoder of colorjax.data, on the image whose header was just read (not a second open), to
            # uint8 directly: a float copy of a 25-megapixel upload would be 300 MB.
            return decode.decode_image_uint8(image)
        except decode.ImageError as e:
            raise UploadError(400, "The image could not be decoded (truncated or corrupt file).") from e


def is_color(rgb: np.ndarray) -> bool:
    """Whether a photo has visible colour (more than 1% of pixels with channels 8+ levels apart): a scan of a gray
    print saved as RGB JPEG has compression noise in its channels but no colour. Channel by channel: NumPy's max over
    the last axis, 3 long, took 1.2 s of a 20-megapixel request, this 0.05 s."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8: max >= min, no wrap
    return bool(np.count_nonzero(spread > 8) > 0.01 * spread.size)


def display_name(filename: str | None) -> str:
    """The uploaded file's name for display only: its last path component, printable, at most 120 characters."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:120] or "photo"


def download_name(name: str, suffix: str) -> str:
    """An ASCII file name for a Content-Disposition header, from the display name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0]).strip("._") or "photo"
    return f"{stem[:60]}-colorized.{suffix}"


def encode(rgb: np.ndarray, image_format: str = "PNG", quality: int = 92) -> bytes:
    """uint8 (H, W, 3) or (H, W) -> PNG (`files.encode_png`) or JPEG bytes with no metadata."""
    return files.encode_image(rgb, {"PNG": "png", "JPEG": "jpg"}[image_format], quality)


def shrunk(rgb: np.ndarray, side: int) -> np.ndarray:
    """`rgb` with its longer side at most `side` (itself when it fits)."""
    if max(rgb.shape[:2]) <= side:
        return rgb
    image = Image.fromarray(rgb)
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return np.asarray(image)


def thumbnail(rgb: np.ndarray) -> bytes:
    return encode(shrunk(rgb, THUMBNAIL_SIDE), "JPEG", quality=85)


def has_preview(width: int, height: int) -> bool:
    """Whether a photo of this size gets previews (larger than `PREVIEW_SIDE`); smaller ones are shown whole."""
    return max(width, height) > PREVIEW_SIDE


def preview_lightness(lightness: np.ndarray) -> np.ndarray:
    """A photo's lightness L (H, W, 1) with its longer side at most `PREVIEW_SIDE`: Lanczos on the floats (Pillow's
    mode F), not on 8-bit levels."""
    if max(lightness.shape[:2]) <= PREVIEW_SIDE:
        return lightness
    small = Image.fromarray(np.asarray(lightness[..., 0], np.float32))
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return np.asarray(small)[..., None]


def previews(
    lightness: np.ndarray, colours_of: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(L, colours) at preview size of a photo larger than a screen (None for one that fits): its lightness shrunk
    (`preview_lightness`), and the colours of that L by `colours_of` (`Colorizer.recombine` with the model's
    chroma: the pipeline's own recombination, at preview size). Shrinking the full-size colours instead took
    0.13 s of a 20-megapixel photo's 0.34 s of encoding; the two previews differ by the Lanczos filter's ringing
    on the chroma, which the full-size colours have been enlarged smoothly from anyway."""
    height, width = lightness.shape[:2]
    if not has_preview(width, height):
        return None
    small = preview_lightness(lightness)
    return small, colours_of(small)


def colour_files(colorized: np.ndarray, preview: np.ndarray | None = None) -> dict[str, bytes]:
    """The files a colorization is shown with: the full PNG, the thumbnail, and the preview of a large photo
    (`preview`, the colours at preview size where the caller made them (`previews`), else shrunk from these)."""
    small = shrunk(colorized, PREVIEW_SIDE) if preview is None else preview
    contents = {"color": encode(colorized), "thumb": thumbnail(small)}
    if small is not colorized:
        contents["preview"] = encode(small, "JPEG", quality=90)
    return contents


def is_gray(rgb: np.ndarray) -> bool:
    """Whether a photo's three channels are equal: its gray version is then the photo itself, level for level
    (`color.gray_picture` of its lightness gives back each of the 256 levels), so no gray file is stored: the
    upload serves as its gray (`gray_picture_of`)."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def input_files(upload: bytes) -> dict[str, bytes]:
    """The upload's file: its bytes as sent (decoded once already, by `decode_upload`), named by `input_name`."""
    return {"input": upload}


def input_name(upload: bytes) -> str:
    """The stored upload's file name, from its format (its header, read again: microseconds): `input.jpg`..."""
    with Image.open(io.BytesIO(upload)) as image:
        return f"input.{INPUT_SUFFIXES[image.format]}"


def read_input(path: Path) -> np.ndarray:
    """A stored upload as the upload was decoded (`decode.decode_image_uint8`: EXIF orientation applied, any bit
    depth), uint8 (H, W, 3); FileNotFoundError when the item was deleted meanwhile."""
    with Image.open(path) as image:
        return decode.decode_image_uint8(image)


def input_preview(path: Path) -> np.ndarray:
    """`read_input` with the longer side at most `PREVIEW_SIDE`: a JPEG decodes at the smallest of 1/2,
    1/4, 1/8 of its size that still covers the preview (Pillow's `draft`), a quarter of the work or less."""
    side = PREVIEW_SIDE
    with Image.open(path) as image:
        width, height = image.size
        scale = side / max(width, height)
        if scale < 1:
            image.draft("RGB", (int(np.ceil(width * scale)), int(np.ceil(height * scale))))
        return shrunk(decode.decode_image_uint8(image), side)


def gray_files(lightness: np.ndarray, full: bool = True, preview: np.ndarray | None = None) -> dict[str, bytes]:
    """The gray version's files from the photo's lightness L (H, W, 1) (`color.gray_picture` of it, one channel):
    the full-size gray of a photo that fits a screen, unless `full` is False (a gray upload, which is its own gray
    version: "gray" is served from "input"); a photo larger than a screen gets only the preview, from its lightness
    shrunk, and no full-size gray file (made from the input when "actual size" or a download asks for it: the
    encode of a 20-megapixel gray and its 10 MB on disk are spared for a file few open). `preview`: the L
    shrunk already (`previews`)."""
    height, width = lightness.shape[:2]
    if not has_preview(width, height):
        return {"gray": encode(color.gray_picture(lightness)[..., 0])} if full else {}
    small = preview_lightness(lightness) if preview is None else preview
    return {"gray_preview": encode(color.gray_picture(small)[..., 0], "JPEG", quality=90)}


def gray_picture_of(rgb: np.ndarray, lightness: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The (H, W) gray version of a stored upload (`read_input`): the upload itself where it is gray (`is_gray`:
    level for level its gray picture), else `color.gray_picture` of `lightness(rgb)` (the item's model's
    `Colorizer.lightness`)."""
    if is_gray(rgb):
        return rgb[..., 0]
    return color.gray_picture(lightness(rgb))[..., 0]


class ImageStore:
    """The folder `<data dir>/images/`: one sub-folder per colorization, named by its random id."""

    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir).resolve() / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # `replace` and `delete` of an item, one at a time.

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(12)

    def folder(self, image_id: str) -> Path:
        if not IMAGE_ID.match(image_id):
            raise KeyError(image_id)
        return self.root / image_id

    def path(self, image_id: str, kind: str) -> Path:
        """The file of `kind` (of `FILE_NAMES`, or "input": the stored upload, whatever its format; `input.png`
        when there is none)."""
        folder = self.folder(image_id)
        if kind == "input":
            return next((folder / name for name in INPUT_NAMES if (folder / name).is_file()), folder / "input.png")
        if kind not in FILE_NAMES:
            raise KeyError(kind)
        return folder / FILE_NAMES[kind]

    @staticmethod
    def _name(kind: str, data: bytes) -> str:
        return input_name(data) if kind == "input" else FILE_NAMES[kind]

    def write(self, image_id: str, contents: dict[str, bytes]) -> None:
        """Writes a new colorization's files, {kind: bytes}: its folder appears with all of them or not at all (it
        is built under a temporary name), each fsync'ed, so the row the caller commits next never names files a
        power cut could lose. A failed write leaves no temporary file."""
        with files.atomic_path(self.folder(image_id)) as staging:
            staging.mkdir()
            for kind, data in contents.items():
                files.atomic_write(staging / self._name(kind, data), data, durable=True)
            _fsync_folder(staging)
        _fsync_folder(self.root)

    def replace(self, image_id: str, contents: dict[str, bytes]) -> bool:
        """Replaces files of an existing colorization (a re-colour), each whole or not at all; False, writing
        nothing, when the item was deleted meanwhile (its folder is not brought back). The upload is never replaced."""
        folder = self.folder(image_id)
        with self._lock:
            if not folder.is_dir():
                return False
            for kind, data in contents.items():
                files.atomic_write(folder / FILE_NAMES[kind], data, durable=True)
            _fsync_folder(folder)
        return True

    def keep_previous(self, image_id: str) -> bool:
        """Keeps the item's colorization (and its preview) as `previous`, for comparison with a re-colouring by
        another model; hard links, so the current files stay served until `replace` swaps them. False when the item
        was deleted meanwhile."""
        folder = self.folder(image_id)
        with self._lock:
            if not folder.is_dir():
                return False
            for kind, kept in (("color", "previous"), ("preview", "previous_preview")):
                self.path(image_id, kept).unlink(missing_ok=True)
                if self.path(image_id, kind).is_file():
                    os.link(self.path(image_id, kind), self.path(image_id, kept))
            _fsync_folder(folder)
        return True

    def delete(self, image_id: str) -> None:
        folder = self.folder(image_id)
        with self._lock:
            shutil.rmtree(folder, ignore_errors=True)

    def ids(self) -> list[str]:
        """The ids of the stored colorizations (a folder still being written has a temporary name: not listed)."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and IMAGE_ID.match(p.name))

    def sweep(self, known_ids: set[str]) -> int:
        """Removes what a crash left (call it before serving): temporary files and folders, files that are no
        colorization's, and folders without a row in `known_ids`. Returns how many entries went."""
        names, swept = {*FILE_NAMES.values(), *INPUT_NAMES}, 0
        for entry in list(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and entry.name in known_ids:
                for inner in list(entry.iterdir()):
                    if inner.name not in names:
                        _remove(inner)
                        swept += 1
            else:
                _remove(entry)
                swept += 1
        if swept:
            log.warning(
                "Removed %d entries a crash left in %s (half-written files, folders without a row).", swept, self.root
            )
        return swept


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Makes the names in `folder` (a file renamed in, a folder created) survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
