"""Colours photos with a trained model: `python -m colorjax.colorize --workdir RUN INPUT... --output DIR`.

INPUT is any number of image files and folders (searched recursively), or `samples` for the photos that ship with
scikit-image and scikit-learn. Any size and aspect ratio: the model predicts chroma at its working resolution, the
chroma is upsampled to the photo's own size and recombined with the photo's full-resolution lightness, so the
output has exactly the input's size and all of its detail. Colour inputs are turned gray first (their CIE L).

    python -m colorjax.colorize --workdir runs/demo --step best samples --output runs/demo/colorized
    python -m colorjax.colorize --workdir runs/zhang old_photos/ --output coloured/ --resolution 256

Outputs are PNG files named after the inputs (folder structure kept), plus, with `--side-by-side`, a gray | colour
panel next to each.

Models that run natively at any size (those in `models.NATIVE_SIZE_ROUTINES`, e.g. iizuka) see each photo at its own
size (resolution 0 unless `--resolution` or the run's `config.inference` says otherwise); past `--max-pixels` their
routine tiles the photo (or downscales it, `--large-image downscale`), and one line per photo says which happened.
Models with a global path (an `encode_global` method, e.g. iizuka) also take

    --global-from REF.jpg   colour every input with the global features of REF (the paper's style transfer)
    --labels                print each photo's top-5 classes, named from the run's `class_names`
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import checkpointing, color, data, models, visualize


class ColorizeError(ValueError):
    """A problem the user can fix (bad path, no checkpoint, unreadable image); printed as one line."""


@dataclasses.dataclass
class Prediction:
    """One colorized photo, how the model ran on it, and its class scores where the model has a classifier."""

    rgb: np.ndarray  # uint8 (H, W, 3), the input's size
    message: str | None = (
        None  # e.g. "... local path tiled at full resolution, 30 tiles of 200x200 ..."
    )
    class_logits: np.ndarray | None = None  # (num_classes,)


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
    step: int | None = None  # The checkpoint step, for a training run.
    description: str = ""  # Where the weights come from, for messages.
    # Set for models that run at any size (models.NATIVE_SIZE_ROUTINES): the routine bounds memory past max_pixels.
    native_routine: Callable[..., tuple[dict[str, Any], dict[str, Any]]] | None = None
    large_image_strategy: str = (
        "tile"  # What the routine does past max_pixels: "tile" or "downscale".
    )
    class_names: list[str] | None = None  # The training data's class names, in label order.

    def __post_init__(self):
        # One compiled program per distinct photo size (a camera folder has few), instead of op-by-op dispatch.
        self._colorize = jax.jit(
            functools.partial(_colorize_array, self.model, self.color_space),
            static_argnames=("work_size",),
        )
        self._encode_global = (
            _jitted_method(self.model, "encode_global")
            if hasattr(self.model, "encode_global")
            else None
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
        routine = models.NATIVE_SIZE_ROUTINES.get(config["model"]["name"])
        settings = {
            # A model that runs at any size sees the photo at its own size (resolution 0) by default.
            "resolution": 0 if routine else data["image_size"],
            "color_space": data.get("color_space", "lab"),
            "native_routine": routine,
            "class_names": meta.get("class_names"),
        }
        settings.update({k: v for k, v in (config.get("inference") or {}).items() if v is not None})
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if settings.get("fixed_size") and overrides.keys() & {"resolution", "square"}:
            size = settings["fixed_size"]
            raise ColorizeError(
                f"The model of {workdir} only runs at {size}x{size} (config.inference.fixed_size); "
                "drop --resolution and --square."
            )
        settings.update(overrides)
        return cls(
            model=model,
            variables=variables,
            step=resolved,
            description=f"step {resolved} of {workdir}",
            **settings,
        )

    @classmethod
    def from_published(
        cls, weights: str | Path, model_name: str, temperature: float | None = None, **overrides
    ) -> Colorizer:
        """The authors' published ECCV16 / SIGGRAPH17 weights (.pth or .npz), no training. As in the authors'
        demo the model sees the photo resized to 256 x 256 (a photo that is already 256 x 256 is not resized)."""
        from colorjax import published_weights

        kwargs = (
            {} if temperature is None or model_name != "eccv16" else {"temperature": temperature}
        )
        try:
            model, variables = published_weights.load_published(model_name, weights, **kwargs)
        except (FileNotFoundError, ImportError) as e:
            raise ColorizeError(str(e)) from e
        settings = {"resolution": 256, "square": True}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        description = f"the published {model_name} weights {Path(weights).name}"
        return cls(model=model, variables=variables, description=description, **settings)

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
        if self.native_routine is not None:
            # Any size works; the routine keeps memory bounded past max_pixels itself (tiling or downscaling).
            return max(1, round(height)), max(1, round(width))
        scale = min(1.0, (self.max_pixels / (height * width)) ** 0.5)
        return tuple(
            max(self.multiple, int(round(d * scale / self.multiple)) * self.multiple)
            for d in (height, width)
        )

    def colorize(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) photo (colour or gray) -> uint8 (H, W, 3) colorized photo of the same size."""
        return self.predict(rgb).rgb

    def predict(
        self, rgb: np.ndarray, *, global_features: jax.Array | None = None, labels: bool = False
    ) -> Prediction:
        """Colorizes a uint8 (H, W, 3) photo; `global_features` (from `encode_global`) replace its own (style
        transfer); `labels` asks for the photo's own class logits as well."""
        work_size = self.working_size(*rgb.shape[:2])
        if self.native_routine is None:
            if global_features is not None or labels:
                raise ColorizeError("Global features and labels need a model with a global path.")
            colorized = self._colorize(self.variables, jnp.asarray(rgb), work_size=work_size)
            return Prediction(np.asarray(colorized))
        L_full, L_work = _lightness(rgb, work_size)
        outputs, info = self.native_routine(
            self.model,
            self.variables,
            L_work[None],
            max_pixels=self.max_pixels,
            strategy=self.large_image_strategy,
            global_features=global_features,
        )
        colorized = _combine(L_full, jnp.asarray(outputs["chroma"][0]), self.color_space)
        message = info["message"]
        if tuple(work_size) != rgb.shape[:2]:
            message = f"resized to {work_size[0]}x{work_size[1]} (resolution {self.resolution}): {message}"
        class_logits = outputs.get("class_logits") if global_features is None else None
        if labels and class_logits is None:
            class_logits = self.encode_global(rgb)["class_logits"]
        return Prediction(
            np.asarray(colorized),
            message,
            None if class_logits is None else np.asarray(class_logits)[0],
        )

    def encode_global(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """The global path of a uint8 photo (any size): {"global_features": (1, F), "class_logits"?: (1, C)}."""
        if self._encode_global is None or self.native_routine is None:
            raise ColorizeError(
                f"The model of {self.description} has no global features (no global path); --global-from needs "
                "one that has, e.g. iizuka."
            )
        L_full, _ = _lightness(rgb, rgb.shape[:2])
        outputs = self._encode_global(self.variables, L_full[None])
        return {k: np.asarray(v) for k, v in outputs.items()}

    def check_classifier(self) -> None:
        """Raises ColorizeError unless the model has a classifier and the run named its classes."""
        has_classifier = False
        if self._encode_global is not None and self.native_routine is not None:
            probe = jnp.zeros((1, 32, 32, 1), jnp.float32)
            has_classifier = "class_logits" in jax.eval_shape(
                self._encode_global, self.variables, probe
            )
        if not has_classifier:
            raise ColorizeError(
                f"The model of {self.description} has no classifier (runs trained without class labels have "
                "none); --labels needs one trained on labelled photos, e.g. iizuka with num_classes 'auto'."
            )
        if not self.class_names:
            raise ColorizeError(
                f"{self.description} has a classifier but no class names were saved with it; --labels needs them."
            )


def _colorize_array(
    model, color_space: str, variables, rgb: jax.Array, work_size: tuple[int, int]
) -> jax.Array:
    """Full-resolution L + model chroma (predicted at `work_size`, upsampled) -> uint8 RGB of the input's size."""
    height, width = rgb.shape[:2]
    L_full = color.rgb_to_lab(rgb.astype(jnp.float32) / 255.0)[..., :1]
    same_size = tuple(work_size) == (height, width)
    L_work = (
        L_full
        if same_size
        else jax.image.resize(L_full, (*work_size, 1), method="linear", antialias=True)
    )
    chroma = model.apply(variables, L_work[None], train=False)["chroma"][0]
    chroma_full = (
        chroma if same_size else jax.image.resize(chroma, (height, width, 2), method="linear")
    )
    rgb_out = color.chroma_to_rgb(L_full, chroma_full, color_space)
    return jnp.round(jnp.clip(rgb_out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


@functools.lru_cache(maxsize=8)
def _jitted_method(model, method: str):
    """One compiled `model.apply(..., method=method)` per (model, method): Colorizers of the same model (one per
    call of `main` in a notebook or a test) share their compilations."""
    return jax.jit(functools.partial(model.apply, method=method))


@functools.partial(jax.jit, static_argnames=("work_size",))
def _lightness(rgb: jax.Array, work_size: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """uint8 RGB -> (L at the photo's size, L resized to work_size) as (H, W, 1) float32."""
    L_full = color.rgb_to_lab(rgb.astype(jnp.float32) / 255.0)[..., :1]
    if tuple(work_size) == L_full.shape[:2]:
        return L_full, L_full
    return L_full, jax.image.resize(L_full, (*work_size, 1), method="linear", antialias=True)


@functools.partial(jax.jit, static_argnames=("color_space",))
def _combine(L_full: jax.Array, chroma: jax.Array, color_space: str) -> jax.Array:
    """Full-resolution L + chroma (upsampled to L's size if smaller) -> uint8 RGB."""
    if chroma.shape[:2] != L_full.shape[:2]:
        chroma = jax.image.resize(chroma, (*L_full.shape[:2], 2), method="linear")
    rgb = color.chroma_to_rgb(L_full, chroma, color_space)
    return jnp.round(jnp.clip(rgb, 0.0, 1.0) * 255.0).astype(jnp.uint8)


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
            found += [(p, Path(p.stem)) for p in data.sample_photo_paths().values()]
            continue
        path = Path(spec)
        if path.is_dir():
            images = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in data.IMAGE_EXTENSIONS
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
    colorizer: Colorizer,
    inputs: list[tuple[Path, Path]],
    output: Path,
    side_by_side: bool,
    *,
    global_features: jax.Array | None = None,
    labels: bool = False,
) -> int:
    """Colours every input into `output`; returns how many could not be read (each reported on one line).

    Prints one line per photo saying how a native-size model ran on it and, with `labels`, one with its top-5
    classes. `global_features` (from `Colorizer.encode_global`) colour every photo with another photo's.
    """
    from tqdm import tqdm

    from colorjax.models.iizuka_inference import top_k_labels

    failures = 0
    progress = tqdm(inputs, unit="image", disable=len(inputs) < 2, file=sys.stderr)
    for path, relative in progress:
        try:
            rgb = read_image(path)
        except ColorizeError as e:
            progress.write(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        prediction = colorizer.predict(rgb, global_features=global_features, labels=labels)
        colorized = prediction.rgb
        if prediction.message:
            progress.write(f"{path}: {prediction.message}")
        if labels:
            best = top_k_labels(prediction.class_logits, colorizer.class_names, k=5)[0]
            names = ", ".join(f"{name} {probability:.1%}" for name, probability in best)
            progress.write(f"{path}: top-{len(best)} classes: {names}")
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
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="a training run's --workdir")
    source.add_argument(
        "--weights", help="published weights (.pth or .npz) instead of a run; needs --model"
    )
    parser.add_argument(
        "--model", choices=["eccv16", "siggraph17"], help="the architecture of --weights"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="ECCV16 annealed-mean temperature (default 0.38; 1 = plain mean)",
    )
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
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="most pixels the model sees in one pass; larger photos are tiled (models that run at any size, "
        "e.g. iizuka) or downscaled (default: the run's config.inference.max_pixels, else 4096*4096)",
    )
    parser.add_argument(
        "--large-image",
        choices=["tile", "downscale"],
        help="past --max-pixels, tile the photo at full resolution (default) or downscale it (any-size models)",
    )
    parser.add_argument(
        "--global-from",
        metavar="REF",
        help="colour every input with the global features of this photo (style transfer; iizuka)",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="print each photo's top-5 classes (models with a classifier, e.g. iizuka)",
    )
    args = parser.parse_args(argv)
    try:
        output = Path(args.output)
        check_writable(output)
        inputs = find_inputs(args.inputs)
        if args.weights:
            if not args.model:
                raise ColorizeError("--weights needs --model eccv16 or --model siggraph17.")
            colorizer = Colorizer.from_published(
                args.weights,
                args.model,
                args.temperature,
                resolution=args.resolution,
                square=args.square,
                max_pixels=args.max_pixels,
            )
        else:
            colorizer = Colorizer.from_run(
                args.workdir,
                args.step,
                resolution=args.resolution,
                square=args.square,
                max_pixels=args.max_pixels,
                large_image_strategy=args.large_image,
            )
            if args.temperature is not None:
                if not hasattr(colorizer.model, "temperature"):
                    raise ColorizeError("--temperature applies to the eccv16 model only.")
                model = colorizer.model.clone(temperature=args.temperature)
                colorizer = dataclasses.replace(colorizer, model=model)
        if args.labels:
            colorizer.check_classifier()
        global_features = None
        if args.global_from:
            reference = Path(args.global_from)
            if not reference.is_file():
                raise ColorizeError(f"--global-from {reference} does not exist.")
            global_features = colorizer.encode_global(read_image(reference))["global_features"]
            print(f"Colouring every input with the global features of {reference}.")
        failures = colorize_files(
            colorizer,
            inputs,
            output,
            args.side_by_side,
            global_features=global_features,
            labels=args.labels,
        )
    except (ColorizeError, checkpointing.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Colorized {len(inputs) - failures} image(s) with {colorizer.description}: {output}")
    return 1 if failures else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
