"""Colours photos with a trained model: `python -m colorjax.colorize --workdir RUN INPUT... --output DIR`.

INPUT is any number of image files and folders (searched recursively), or `samples` for the photos that ship with
scikit-image and scikit-learn. Any size and aspect ratio: the model predicts chroma at its working resolution, the
chroma is upsampled to the photo's own size and recombined with the photo's full-resolution lightness, so the
output has exactly the input's size and all of its detail. Colour inputs are turned gray first (their CIE L).

    python -m colorjax.colorize --workdir runs/demo --step best samples --output runs/demo/colorized
    python -m colorjax.colorize --workdir runs/zhang old_photos/ --output coloured/ --resolution 256

Outputs are PNG files named after the inputs (folder structure kept), plus, with `--side-by-side`, a gray | colour
panel next to each.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import checkpointing, color, input_pipeline, models, visualize


class ColorizeError(ValueError):
    """A problem the user can fix (bad path, no checkpoint, unreadable image); printed as one line."""


@dataclasses.dataclass
class Colorizer:
    """A model with its variables and how it wants its input sized."""

    model: Any
    variables: dict[str, Any]
    color_space: str = "lab"
    resolution: int = 256  # Shorter side the model sees; 0 = the photo's own size.
    square: bool = False  # Resize to resolution x resolution regardless of aspect ratio (as Zhang et al.'s demo).
    fixed_size: int | None = None  # The model runs only at fixed_size x fixed_size (dense layers).
    multiple: int = 8  # Working sizes are rounded to a multiple of this (the model's total stride).
    max_pixels: int = 4096 * 4096

    def __post_init__(self):
        # One compiled program per distinct photo size (a camera folder has few), instead of op-by-op dispatch.
        self._colorize = jax.jit(
            functools.partial(_colorize_array, self.model, self.color_space),
            static_argnames=("work_size",),
        )

    @classmethod
    def from_run(cls, workdir: str | Path, step: str | int = "latest", **overrides) -> Colorizer:
        """Loads a training run's checkpoint (read-only) and rebuilds its model from the stored config."""
        workdir = Path(workdir)
        if not workdir.is_dir():
            raise ColorizeError(
                f"Workdir {workdir} does not exist; pass the --workdir of a training run."
            )
        checkpoints = checkpointing.Checkpoints(workdir, read_only=True)
        resolved = checkpoints.resolve_step(step)
        state, meta = checkpoints.restore(resolved)
        config = meta["config"]
        model = models.get_model(config["model"]["name"], **meta["model_kwargs"])
        variables = {
            c: state[c] for c in ("params", "batch_stats", "frozen") if c in state and state[c]
        }
        data = config["data"]
        settings = {"resolution": data["image_size"], "color_space": data.get("color_space", "lab")}
        settings.update({k: v for k, v in (config.get("inference") or {}).items() if v is not None})
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if settings.get("fixed_size") and overrides.keys() & {"resolution", "square"}:
            size = settings["fixed_size"]
            raise ColorizeError(
                f"The model of {workdir} only runs at {size}x{size} (config.inference.fixed_size); "
                "drop --resolution and --square."
            )
        settings.update(overrides)
        colorizer = cls(model=model, variables=variables, **settings)
        colorizer.step = resolved
        return colorizer

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the model runs at for a photo of the given size."""
        if self.fixed_size:
            return self.fixed_size, self.fixed_size
        if self.square:
            side = self.resolution
            return side, side
        if self.resolution:
            scale = self.resolution / min(height, width)
            height, width = height * scale, width * scale
        scale = min(1.0, (self.max_pixels / (height * width)) ** 0.5)
        return tuple(
            max(self.multiple, int(round(d * scale / self.multiple)) * self.multiple)
            for d in (height, width)
        )

    def colorize(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) photo (colour or gray) -> uint8 (H, W, 3) colorized photo of the same size."""
        work_size = self.working_size(*rgb.shape[:2])
        return np.asarray(self._colorize(self.variables, jnp.asarray(rgb), work_size=work_size))


def _colorize_array(
    model, color_space: str, variables, rgb: jax.Array, work_size: tuple[int, int]
) -> jax.Array:
    """Full-resolution L + model chroma (predicted at `work_size`, upsampled) -> uint8 RGB of the input's size."""
    height, width = rgb.shape[:2]
    L_full = color.rgb_to_lab(rgb.astype(jnp.float32) / 255.0)[..., :1]
    L_work = jax.image.resize(L_full, (*work_size, 1), method="linear", antialias=True)
    chroma = model.apply(variables, L_work[None], train=False)["chroma"][0]
    chroma_full = jax.image.resize(chroma, (height, width, 2), method="linear")
    rgb_out = color.chroma_to_rgb(L_full, chroma_full, color_space)
    return jnp.round(jnp.clip(rgb_out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def read_image(path: Path) -> np.ndarray:
    """uint8 (H, W, 3), EXIF orientation applied; ColorizeError naming the file when it cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I"):
                array = np.asarray(image, np.float32)
                array = array / max(float(array.max()), 1.0) * 255.0
                return np.repeat(array[..., None], 3, axis=-1).round().astype(np.uint8)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ColorizeError(f"Cannot read image {path}: {e}") from e


def find_inputs(inputs: Iterable[str]) -> list[tuple[Path, Path]]:
    """(image path, output path relative to --output) for every file, folder (recursive) or `samples` given."""
    found = []
    for spec in inputs:
        if spec == "samples":
            found += [(p, Path(p.stem)) for p in input_pipeline.sample_photo_paths().values()]
            continue
        path = Path(spec)
        if path.is_dir():
            images = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in input_pipeline.IMAGE_EXTENSIONS
            )
            if not images:
                raise ColorizeError(f"No images found in folder {path}.")
            found += [(p, p.relative_to(path).with_suffix("")) for p in images]
        elif path.is_file():
            found.append((path, Path(path.stem)))
        else:
            raise ColorizeError(f"Input {path} does not exist.")
    return found


def check_writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".colorjax-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ColorizeError(
            f"Cannot write to output folder {output} ({e.strerror}); choose another --output."
        ) from e


def colorize_files(
    colorizer: Colorizer, inputs: list[tuple[Path, Path]], output: Path, side_by_side: bool
) -> int:
    """Colours every input into `output`; returns how many could not be read (each reported on one line)."""
    from tqdm import tqdm

    failures = 0
    progress = tqdm(inputs, unit="image", disable=len(inputs) < 2, file=sys.stderr)
    for path, relative in progress:
        try:
            rgb = read_image(path)
        except ColorizeError as e:
            progress.write(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        colorized = colorizer.colorize(rgb)
        target = output / relative.with_suffix(".png")
        visualize.save_png(colorized, target)
        if side_by_side:
            gray = visualize.to_uint8(
                visualize.gray_rgb(np.asarray(color.rgb_to_lab(rgb / 255.0))[..., :1])
            )
            visualize.save_png(
                np.concatenate([gray, colorized], axis=1),
                target.with_name(target.stem + "_side.png"),
            )
    return failures


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m colorjax.colorize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders, or 'samples'"
    )
    parser.add_argument("--workdir", required=True, help="a training run's --workdir")
    parser.add_argument(
        "--step", default="latest", help="latest, best, or a step number (default: latest)"
    )
    parser.add_argument("--output", required=True, help="folder for the colorized PNGs")
    parser.add_argument(
        "--resolution", type=int, help="shorter side the model works at (0: full size)"
    )
    parser.add_argument(
        "--square", action="store_true", default=None, help="work at resolution x resolution"
    )
    parser.add_argument(
        "--side-by-side", action="store_true", help="also write gray | colour panels"
    )
    args = parser.parse_args(argv)
    try:
        output = Path(args.output)
        check_writable(output)
        inputs = find_inputs(args.inputs)
        colorizer = Colorizer.from_run(
            args.workdir, args.step, resolution=args.resolution, square=args.square
        )
        failures = colorize_files(colorizer, inputs, output, args.side_by_side)
    except (ColorizeError, checkpointing.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"Colorized {len(inputs) - failures} image(s) with step {colorizer.step} of {args.workdir}: {output}"
    )
    return 1 if failures else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
