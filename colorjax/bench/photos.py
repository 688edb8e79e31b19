"""Photos for the benchmarks that time whole photos (the app's big-photo mode, colorize end to end).

Real scene content at any size: the Intel Image Classification scene photos in ../shared (150 x 150; set
COLORJAX_SHARED to move it) upscaled bicubically to the size asked for, with a seeded Gaussian sensor grain of
`GRAIN` levels so that a 20-megapixel upscale compresses like a camera photo rather than like a smooth gradient;
generated sine patterns with the same grain where the scene photos are absent. `source` names which, for the rows.
"""

from __future__ import annotations

import numpy as np

GRAIN = 3.0  # Standard deviation of the added grain, in 8-bit levels.


def scene_photos(count: int, height: int, width: int) -> tuple[list[np.ndarray], str]:
    """`count` uint8 (height, width, 3) photos and a line naming their source (module docstring)."""
    from PIL import Image

    from colorjax.config_lib import scene_photos_folder

    folder = scene_photos_folder()
    scenes = sorted((folder / "test").glob("*/*.jpg")) if folder else []
    rng = np.random.default_rng(0)
    photos = []
    for i in range(count):
        if scenes:
            with Image.open(scenes[(i * 89) % len(scenes)]) as scene:
                base = np.asarray(scene.convert("RGB").resize((width, height), Image.Resampling.BICUBIC), np.float32)
        else:
            y, x = np.mgrid[0:height, 0:width] / max(height, width)
            phase = rng.uniform(0, 2 * np.pi, 3)
            base = 255 * (0.5 + 0.4 * np.sin(6 * (x[..., None] + y[..., None]) + phase))
        grain = rng.normal(0.0, GRAIN, (height, width, 1)).astype(np.float32)  # one grain for all channels
        photos.append(np.clip(base + grain, 0, 255).round().astype(np.uint8))
    what = "Intel scene photos upscaled" if scenes else "generated photos"
    return photos, f"{width}x{height} {what}, grain {GRAIN:g}"


def encoded(rgb: np.ndarray, format: str, quality: int = 92) -> bytes:
    """A photo as the file a user would have: JPEG at a camera's `quality`, or PNG (Pillow's defaults)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    options = {"quality": quality} if format == "JPEG" else {}
    Image.fromarray(rgb).save(buffer, format=format, **options)
    return buffer.getvalue()
