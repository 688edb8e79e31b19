"""One decoding of image files, for training, evaluation and colorize: any format, mode and bit depth -> float RGB.

`decode(encoded, max_pixels=...)` turns a file's bytes into float32 (H, W, 3) in [0, 1], the same way everywhere:
- The size is read from the header and checked against `max_pixels` BEFORE anything is decoded, so a
  decompression bomb costs a header read; Pillow's own `DecompressionBombError` is turned into the same error.
- Integer samples are scaled by their bit depth (8-bit / 255, 16-bit / 65535, 1-bit black/white), never by the
  image's own maximum, so a 16-bit grey PNG has the lightness of its 8-bit equivalent (16-bit RGB PNGs keep
  the 8 most significant bits, which is what Pillow reads).
- Float samples (32-bit float TIFF) are taken as they are, in [0, 1] (values outside are clipped); a float image
  with samples over FLOAT_RANGE_LIMIT (0..255 stored as float, which would come out white) is refused in one line.
- CMYK, palette, YCbCr, grey: Pillow's conversion to RGB. Grey becomes three equal channels.
- Transparency (RGBA, LA, PA, a palette or grey image with a transparent colour) is composited on WHITE, the
  background a viewer shows; a colorizer has no use for alpha.
- EXIF orientation is applied (a portrait shot is decoded upright, in training too).
- Animated or multi-page files (GIF, APNG, WebP, TIFF): the first frame.

Training reads through TensorFlow (`tf_decode`): plain 8-bit RGB/grey JPEGs and PNGs with no orientation, no
transparency and one frame decode in TF itself (`dct_method="INTEGER_ACCURATE"`, which gives the same pixels as
Pillow, bit for bit; TF's default IDCT differs by up to 20 levels); everything else goes through this module's
Python decoder (`tf.numpy_function`). The route and the pixel limit come from the header: in-graph for a JPEG
without EXIF (`tf.io.extract_jpeg_shape`), from a Pillow header probe for every other file. A JPEG that does not
end with its end-of-image marker (truncated, or with bytes appended) goes to Pillow too: TF's libjpeg would print
"Premature end of JPEG data" on the console every time it read a truncated file, where Pillow's decoder reports
it as this module's one-line ImageError (and one with appended bytes decodes the same either way). Training
crops of a `TF_JPEG` file decode only the crop's window, at reduced size where the crop allows
(`colorjax.data.preprocess.decode_random_crop`); every other file and every evaluation crop decodes here.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from colorjax import ColorjaxError, color

# Routes chosen by `probe` (what `tf_decode` does with a file).
TF_JPEG, TF_PNG, PYTHON, TOO_LARGE, UNREADABLE = range(5)
FAILED = (TOO_LARGE, UNREADABLE)

_ORIENTATION = 0x0112
_JPEG_END = b"\xff\xd9"  # EOI, the marker a complete JPEG ends with
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "La", "RGBa", "RGBX")
# The largest float sample still read as [0, 1] (a bright highlight a little over 1 is clipped, not refused).
FLOAT_RANGE_LIMIT = 1.5


class ImageError(ColorjaxError, ValueError):
    """A file that cannot be used as a photo; the message is one line naming the file and why."""

    pixels: int = 0  # Set when the file is over the pixel limit (0: not known).


# What raises the pixel limit, as training names it; colorize names its flag (`read_image`'s `setting`).
MAX_PIXELS_SETTING = "config.data.max_pixels"


def too_large_message(
    pixels: int | None, max_pixels: int, size: tuple[int, int] | None = None, setting: str = MAX_PIXELS_SETTING
) -> str:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    count = f"{dims}{pixels} pixels" if pixels else "too many pixels"
    return f"{count}, over the limit of {max_pixels} ({setting}; raise it to read this file)"


def _open(encoded: bytes, max_pixels: int, setting: str = MAX_PIXELS_SETTING):
    """The Pillow image (header read only) or ImageError for an unreadable or too large file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(encoded))
    except Image.DecompressionBombError as e:
        found = re.search(r"\((\d+) pixels\)", str(e))
        error = ImageError(too_large_message(int(found.group(1)) if found else None, max_pixels, setting=setting))
        error.pixels = int(found.group(1)) if found else 0
        raise error from e
    except UnidentifiedImageError as e:
        raise ImageError("not an image this program can read") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"not an image this program can read ({_reason(e)})") from e
    width, height = image.size
    if width * height > max_pixels:
        error = ImageError(too_large_message(width * height, max_pixels, (width, height), setting))
        error.pixels = width * height
        raise error
    if width * height == 0:
        raise ImageError("an image with no pixels")
    return image


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:120]


def probe(encoded: bytes, max_pixels: int) -> tuple[int, int]:
    """(route, pixels) for a file's bytes: how `tf_decode` decodes it, from its header alone."""
    try:
        image = _open(encoded, max_pixels)
    except ImageError as e:
        return (TOO_LARGE, e.pixels) if "over the limit" in str(e) else (UNREADABLE, 0)
    pixels = image.size[0] * image.size[1]
    plain = image.mode in ("RGB", "L") and "transparency" not in image.info and getattr(image, "n_frames", 1) == 1
    if plain and image.format == "JPEG" and image.getexif().get(_ORIENTATION, 1) == 1 and encoded.endswith(_JPEG_END):
        return TF_JPEG, pixels
    eight_bit_png = encoded[24:25] == b"\x08"  # IHDR bit depth (16-bit RGB opens as "RGB" too).
    if plain and image.format == "PNG" and eight_bit_png and b"eXIf" not in encoded:
        return TF_PNG, pixels
    return PYTHON, pixels


def decode(encoded: bytes, max_pixels: int, setting: str = MAX_PIXELS_SETTING) -> np.ndarray:
    """A file's bytes -> float32 (H, W, 3) in [0, 1] (see the module docstring); ImageError without the name (a
    file over `max_pixels` is named with the `setting` that raises the limit)."""
    return decode_image(_open(encoded, max_pixels, setting))


def decode_image(image) -> np.ndarray:
    """A Pillow image opened by the caller (only its header read, its size already checked against the caller's
    pixel limit) -> float32 (H, W, 3) in [0, 1], as `decode` does: for a caller that has read the header itself
    (the app's upload check) and should not open the file a second time."""
    from PIL import ImageOps

    if image.size[0] * image.size[1] == 0:
        raise ImageError("an image with no pixels")
    try:
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        return _to_float_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"cannot be decoded ({_reason(e)})") from e


def decode_image_uint8(image) -> np.ndarray:
    """`decode_image` for a caller that keeps 8-bit pixels (the app): uint8 (H, W, 3), level for level
    `color.rgb_to_uint8(decode_image(image))`, but an 8-bit opaque photo (nearly all of them) goes straight to uint8
    without the float32 copy, 4 bytes a sample (300 MB for a 25-megapixel photo, where its uint8 is 75 MB)."""
    from PIL import ImageOps

    if image.size[0] * image.size[1] == 0:
        raise ImageError("an image with no pixels")
    try:
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        if _is_eight_bit_opaque(image):
            return np.asarray(image.convert("RGB"))
        return color.rgb_to_uint8(_to_float_rgb(image))
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"cannot be decoded ({_reason(e)})") from e


def _is_eight_bit_opaque(image) -> bool:
    """Whether Pillow's own RGB conversion gives the pixels (`_to_float_rgb`'s last branch)."""
    mode = image.mode
    high_depth = mode.startswith("I;16") or mode in ("I", "F")
    return not high_depth and mode not in _TRANSPARENT_MODES and "transparency" not in image.info


def _to_float_rgb(image) -> np.ndarray:
    mode = image.mode
    if _is_eight_bit_opaque(image):
        return np.asarray(image.convert("RGB"), np.float32) / 255.0
    if mode.startswith("I;16"):
        grey = np.asarray(image).astype(np.float32) / 65535.0
    elif mode == "I":
        grey = np.asarray(image).astype(np.float32) / float(2 ** _integer_bits(image) - 1)
    elif mode == "F":
        grey = np.nan_to_num(np.asarray(image, np.float32), nan=0.0)
        largest = float(grey.max(initial=0.0))
        if largest > FLOAT_RANGE_LIMIT:
            # Most likely 0..255 or 0..65535 stored as float: read as [0, 1] it would come out white, silently.
            raise ImageError(
                f"float samples up to {largest:g}, where float images are read as [0, 1] (values to 1.5 are "
                "clipped); scale it to [0, 1] or save it with integer samples (8 or 16 bit)"
            )
    elif mode in _TRANSPARENT_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[..., 3:]
        return np.clip(rgba[..., :3] * alpha + (1.0 - alpha), 0.0, 1.0)
    grey = np.clip(grey, 0.0, 1.0)
    return np.repeat(grey[..., None], 3, axis=-1)


def _integer_bits(image) -> int:
    """Bit depth of a 32-bit-integer Pillow image: the TIFF tag when there is one, else 16 (Pillow opens 16-bit
    grey PNGs and TIFFs as "I" in some versions) unless the values need more."""
    tags = getattr(image, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return 16 if int(np.asarray(image).max(initial=0)) <= 65535 else 32


def read_image(path: str | Path, max_pixels: int, setting: str = MAX_PIXELS_SETTING, uint8: bool = False) -> np.ndarray:
    """A file -> float32 (H, W, 3) in [0, 1], or with `uint8` uint8 (H, W, 3) (`decode_image_uint8`: no float copy,
    3.2 s of a 20-megapixel photo's 8.1 s in colorize when it went to float and back); ImageError with one line
    naming the file when it cannot be used."""
    path = Path(path)
    try:
        encoded = path.read_bytes()
    except IsADirectoryError as e:
        raise ImageError(f"{path}: is a folder, not an image file") from e
    except FileNotFoundError as e:
        kind = "a link to a missing file" if path.is_symlink() else "no such file"
        raise ImageError(f"{path}: {kind}") from e
    except OSError as e:
        raise ImageError(f"{path}: cannot be read ({e.strerror})") from e
    try:
        image = _open(encoded, max_pixels, setting)
        return decode_image_uint8(image) if uint8 else decode_image(image)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


# ------------------------------------------------------------------------------------------- in TensorFlow


def _bytes(value) -> bytes:
    """What tf.numpy_function passes for a scalar string (a 0-d object array) -> bytes."""
    return value.item() if isinstance(value, np.ndarray) else bytes(value)


def tf_route(encoded, max_pixels: int):
    """In a tf.data map: bytes -> (route, pixels) from the header alone (see `probe`).

    A JPEG without EXIF is routed in-graph (`tf.io.extract_jpeg_shape`; the Python probe costs as much as the
    decode); one with EXIF, or CMYK, goes to the Pillow probe, which reads its orientation, so `TF_JPEG` always
    means an upright (orientation 1) 8-bit grey or RGB JPEG within the pixel limit.
    """
    import tensorflow as tf

    def python_probe():
        route, pixels = tf.numpy_function(
            lambda data: tuple(np.int64(v) for v in probe(_bytes(data), max_pixels)),
            [encoded],
            [tf.int64, tf.int64],
            stateful=False,
        )
        return tf.reshape(route, []), tf.reshape(pixels, [])

    def jpeg_header():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.int64)
        pixels = shape[0] * shape[1]
        # The whole file is searched: an EXIF block may follow large ICC, XMP or comment segments (a match in
        # the compressed data by chance only sends the file to the Pillow probe, which gives the same pixels).
        exif = tf.size(tf.strings.split(encoded, sep="Exif\x00\x00")) > 1
        plain = tf.logical_and(tf.logical_not(exif), tf.logical_or(shape[2] == 1, shape[2] == 3))
        plain = tf.logical_and(plain, tf.equal(tf.strings.substr(encoded, -2, 2), _JPEG_END))
        route = tf.where(pixels > max_pixels, np.int64(TOO_LARGE), np.int64(TF_JPEG))
        return tf.cond(plain, lambda: (route, pixels), python_probe)

    route, pixels = tf.cond(tf.io.is_jpeg(encoded), jpeg_header, python_probe)
    return tf.cast(route, tf.int32), pixels


def tf_decode_routed(encoded, route, max_pixels: int):
    """In a tf.data map: bytes and their `tf_route` -> float32 (H, W, 3) in [0, 1] (1x1 for a failed route)."""
    import tensorflow as tf

    def with_pillow():
        def python_decode(data):
            try:
                return decode(_bytes(data), max_pixels)
            except ImageError:  # Raising here would make TF print a traceback for a bad file.
                return np.zeros((0, 0, 3), np.float32)

        return tf.numpy_function(python_decode, [encoded], tf.float32, stateful=False)

    def jpeg():
        image = tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")
        return tf.cast(image, tf.float32) / 255.0

    def png():
        return tf.cast(tf.io.decode_png(encoded, channels=3), tf.float32) / 255.0

    def placeholder():
        return tf.zeros([1, 1, 3], tf.float32)

    image = tf.switch_case(route, branch_fns=[jpeg, png, with_pillow, placeholder, placeholder])
    image.set_shape([None, None, 3])
    tf.debugging.assert_positive(tf.size(image), message="not a decodable image")
    return image


def tf_decode(encoded, max_pixels: int):
    """In a tf.data map: bytes -> (float32 (H, W, 3) in [0, 1], route, pixels).

    A file over `max_pixels` or unreadable by its header comes back as a 1x1 placeholder with route TOO_LARGE or
    UNREADABLE, so the host can name it and say why; one that fails later fails the element (tf.data skips it).
    """
    route, pixels = tf_route(encoded, max_pixels)
    return tf_decode_routed(encoded, route, max_pixels), route, pixels
