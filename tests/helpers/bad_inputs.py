"""A corpus of awkward and broken image files, built in a test's tmp folder (tiny, fast, no downloads).

`build_corpus(root)` writes every case under `root` and returns them as `Case`s: `accepted` ones must decode to a
float RGB image that `case.check(rgb)` accepts (it asserts on the values); the others must be rejected with one
line naming the file. Shared by the data, colorize, train and evaluate tests:

    from helpers.bad_inputs import build_corpus
    cases = build_corpus(tmp_path / "corpus")
    for case in cases: ... case.path, case.accepted, case.check(rgb)

The bombs are headers only: a PNG whose IHDR claims 30000 x 30000 (over Pillow's own bomb limit) and one claiming
10000 x 10000 (over colorjax's default `config.data.max_pixels`, under Pillow's), each a few hundred bytes.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The photo most accepted cases derive from (rows, columns).
HEIGHT, WIDTH = 24, 32


@dataclasses.dataclass(frozen=True)
class Case:
    name: str  # File name below the corpus root.
    path: Path
    accepted: bool  # Decoded (check passes) or rejected with one line naming the file.
    check: Callable[[np.ndarray], None] | None = None  # Asserts on the decoded float RGB (H, W, 3).
    why: str = ""  # What the case is about, for test ids and messages.


def photo(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A colourful uint8 RGB gradient (each channel a different ramp)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / max(width - 1, 1)
    g = y / max(height - 1, 1)
    b = 1.0 - 0.5 * (r + g)
    return np.round(np.stack([r, g, b], -1) * 255).astype(np.uint8)


def png_bytes(array: np.ndarray, bit_depth: int, colour_type: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB): `array` (H, W[, C]) of uint8/uint16."""
    height, width = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = array.astype(dtype).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    return _png(width, height, bit_depth, colour_type, zlib.compress(raw))


def _png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header claiming width x height grey pixels, with one compressed row: cheap to write, huge to decode."""
    return _png(width, height, 8, 0, zlib.compress(b"\x00" * (width + 1)))


def _save(image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **kwargs)
    return buffer.getvalue()


def _pillow(encoded: bytes) -> np.ndarray:
    """What Pillow decodes, ignoring orientation (the reference a JPEG is checked against)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"), np.float32) / 255


def _close(expected: np.ndarray, atol: float) -> Callable[[np.ndarray], None]:
    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == expected.shape, (rgb.shape, expected.shape)
        assert rgb.dtype == np.float32
        np.testing.assert_allclose(rgb, expected, atol=atol)

    return check


def build_corpus(root: Path) -> list[Case]:
    """Writes the corpus under `root` (created) and returns its cases."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rgb8 = photo()
    reference = rgb8.astype(np.float32) / 255.0
    grey8 = rgb8[..., 1]
    grey_reference = np.repeat(grey8[..., None].astype(np.float32) / 255.0, 3, -1)
    cases: list[Case] = []

    def add(name: str, content: bytes | None, accepted: bool, check=None, why: str = "") -> None:
        path = root / name
        if content is not None:
            path.write_bytes(content)
        cases.append(Case(name, path, accepted, check, why or name))

    good_jpeg = _save(Image.fromarray(rgb8), format="JPEG", quality=95)
    good_png = _save(Image.fromarray(rgb8), format="PNG")

    # Rejected: not images at all, or broken.
    add("empty.jpg", b"", False, why="zero bytes")
    add("truncated.jpg", good_jpeg[: len(good_jpeg) // 3], False, why="truncated JPEG")
    add("random.png", np.random.default_rng(0).bytes(2000), False, why="random bytes")
    add("notes.jpg", b"shopping list: eggs, milk\n" * 20, False, why="a text file named .jpg")
    add("bomb.png", bomb_png(30000, 30000), False, why="30000x30000 header (Pillow's bomb)")
    add("big.png", bomb_png(10000, 10000), False, why="10000x10000 header (over max_pixels)")
    (root / "folder.jpg").mkdir(exist_ok=True)
    add("folder.jpg", None, False, why="a folder named like an image")
    dangling = root / "dangling.png"
    if not dangling.is_symlink():
        os.symlink(root / "no-such-file.png", dangling)
    add("dangling.png", None, False, why="a link to a missing file")

    # Accepted, with the values they must decode to.
    add("png_named.jpg", good_png, True, _close(reference, 1e-6), "a PNG named .jpg")
    add("photo.png", good_png, True, _close(reference, 1e-6), "plain 8-bit RGB PNG")
    add("photo.jpg", good_jpeg, True, _close(_pillow(good_jpeg), 1e-6), "plain JPEG")
    add(
        "grey16.png",
        png_bytes(grey8.astype(np.uint16) * 257, 16, 0),
        True,
        _close(grey_reference, 0.5 / 255),
        "16-bit grey PNG (scaled by the bit depth, not its maximum)",
    )
    dim16 = (grey8.astype(np.uint16) // 4) * 257  # Dark: a max-stretch would brighten it 4x.
    add(
        "grey16_dark.png",
        png_bytes(dim16, 16, 0),
        True,
        _close(np.repeat((grey8 // 4)[..., None].astype(np.float32) / 255, 3, -1), 0.5 / 255),
        "dark 16-bit grey PNG",
    )
    add(
        "rgb16.png",
        png_bytes(rgb8.astype(np.uint16) * 257, 16, 2),
        True,
        _close(reference, 0.5 / 255),
        "16-bit RGB PNG",
    )
    ramp = np.linspace(0.0, 1.0, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    add(
        "float.tif",
        _save(Image.fromarray(ramp, mode="F"), format="TIFF"),
        True,
        _close(np.repeat(ramp[..., None], 3, -1), 1e-6),
        "32-bit float TIFF in [0, 1] (not black)",
    )
    add(
        "float255.tif",
        _save(Image.fromarray(ramp * 255, mode="F"), format="TIFF"),
        False,
        why="32-bit float TIFF in [0, 255] (once came out white, silently)",
    )
    add(
        "cmyk.jpg",
        _save(Image.fromarray(rgb8).convert("CMYK"), format="JPEG", quality=95),
        True,
        _close(reference, 10 / 255),
        "CMYK JPEG",
    )
    add(
        "cmyk.tif",
        _save(Image.fromarray(rgb8).convert("CMYK"), format="TIFF"),
        True,
        _close(reference, 1e-6),
        "CMYK TIFF",
    )
    palette = Image.fromarray(rgb8).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    add(
        "palette.png",
        _save(palette, format="PNG"),
        True,
        _close(np.asarray(palette.convert("RGB"), np.float32) / 255, 1e-6),
        "palette PNG",
    )
    alpha = np.zeros((HEIGHT, WIDTH), np.uint8)
    alpha[:, : WIDTH // 2] = 255  # Left half opaque, right half transparent.
    on_white = reference.copy()
    on_white[:, WIDTH // 2 :] = 1.0
    add(
        "rgba.png",
        _save(Image.fromarray(np.dstack([rgb8, alpha])), format="PNG"),
        True,
        _close(on_white, 1e-6),
        "RGBA PNG (transparent -> white)",
    )
    grey_on_white = grey_reference.copy()
    grey_on_white[:, WIDTH // 2 :] = 1.0
    add(
        "la.png",
        _save(Image.fromarray(np.dstack([grey8, alpha]), mode="LA"), format="PNG"),
        True,
        _close(grey_on_white, 1e-6),
        "grey + alpha PNG",
    )
    bits = (grey8 > 128).astype(np.uint8) * 255
    add(
        "onebit.png",
        _save(Image.fromarray(bits).convert("1", dither=Image.Dither.NONE), format="PNG"),
        True,
        _close(np.repeat(bits[..., None].astype(np.float32) / 255, 3, -1), 1e-6),
        "1-bit PNG",
    )
    portrait = Image.fromarray(rgb8)  # Stored 32 wide x 24 high, shown rotated 90 degrees: 24 wide x 32 high.
    exif = portrait.getexif()
    exif[0x0112] = 6
    rotated = _save(portrait, format="JPEG", quality=95, exif=exif)
    add(
        "exif_rotated.jpg",
        rotated,
        True,
        _close(np.rot90(_pillow(rotated), k=-1), 1e-6),
        "EXIF orientation 6 (shape transposed)",
    )
    # The same, its EXIF block pushed past the first 64 KiB by two large comment segments before it (JPEG
    # segments hold at most 65533 bytes each): training once looked for EXIF in the first 64 KiB only.
    comment = b"\xff\xfe" + struct.pack(">H", 65535) + b"c" * 65533
    add(
        "exif_late.jpg",
        rotated[:2] + comment + comment + rotated[2:],
        True,
        _close(np.rot90(_pillow(rotated), k=-1), 1e-6),
        "EXIF orientation 6 after 128 KiB of comments",
    )
    add(
        "one_pixel.png",
        _save(Image.fromarray(np.full((1, 1, 3), (200, 40, 90), np.uint8)), format="PNG"),
        True,
        _close(np.full((1, 1, 3), (200, 40, 90), np.float32) / 255, 1e-6),
        "1x1",
    )
    wide = photo(2, 3000)
    add(
        "wide.png",
        _save(Image.fromarray(wide), format="PNG"),
        True,
        _close(wide.astype(np.float32) / 255, 1e-6),
        "2x3000",
    )
    frames = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 0, 255))]
    add(
        "animated.gif",
        _save(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        True,
        _close(np.full((16, 16, 3), (1.0, 0.0, 0.0), np.float32), 1e-6),
        "animated GIF (first frame: red)",
    )
    pages = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in ((0, 255, 0), (0, 0, 255))]
    add(
        "pages.tif",
        _save(pages[0], format="TIFF", save_all=True, append_images=pages[1:]),
        True,
        _close(np.full((16, 16, 3), (0.0, 1.0, 0.0), np.float32), 1e-6),
        "multi-page TIFF (first page: green)",
    )
    add("фото 日本.png", good_png, True, _close(reference, 1e-6), "a unicode file name")
    return cases
