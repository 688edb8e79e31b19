"""Colouring photos with a model: the `Colorizer` that `colorize`, `evaluate --classifier`, the app and video use.

Any size and aspect ratio, one pipeline: the photo's CIE lightness L is computed at its full resolution, resized to
the model's working size (`Colorizer.working_size`: the shorter side at `resolution`, a multiple of the model's
stride, at most `max_pixels`; or the model's fixed size), the model predicts chroma there, the chroma is upsampled
to the photo's size and recombined with the photo's own L. The output has exactly the input's size and all of its
detail; colour inputs are turned gray first.

How the photo reaches the model and the chroma comes back is the model's authors' pipeline, from the run's
`config.inference` (`models.ModelSpec.inference` for published weights): `color_conversion` "cie" (the CIE formulas,
as colorjax's training data) or "opencv" (OpenCV's float32 Lab, `color.rgb_to_lab_opencv`); `input_resize`
"lightness_antialiased" (the photo's L, resized with an antialiased linear filter) or "color_bilinear" (the colour
photo resized bilinearly without antialiasing, then its L); `chroma_upsampling` "bilinear" or "nearest" (PyTorch's
`F.interpolate` floor indexing, `nearest_source_indices`). DDColor's published weights run exactly the authors'
`ColorizationPipeline.process` this way (piddnad/DDColor ddcolor/pipeline.py; tests/integration/test_ddcolor_pipeline.py
compares the two on photos): 512 x 512 colour input, OpenCV Lab, nearest chroma.

Models that run natively at any size (a `ModelSpec.any_size` routine, e.g. iizuka) see the photo at its own size
(resolution 0 unless the run says otherwise); past `max_pixels` the routine tiles the photo (or downscales it,
`large_image_strategy="downscale"`), and `Prediction.message` says which happened. Models with a global path (an
`encode_global` method) can colour with another photo's global features and name a photo's top classes.

    from colorjax.inference import open_colorizer, read_image
    colorizer = open_colorizer(workdir="runs/demo", step="best")   # or weights="eccv16"
    colour = colorizer.colorize(read_image("old_photo.jpg"))   # uint8 (H, W, 3), the input's size

SIGGRAPH17 models also take the user's colour points, in the photo's own pixels (`colorjax.hints`; scaled to the
working size here): `colorizer.predict(photo, hints=[{"x": 120, "y": 40, "color": "#3a7bd5"}]).rgb`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import ColorjaxError, color, config_lib, models, runs
from colorjax.hints import Hint, HintError, hint_maps
from colorjax.models.jit import jitted_apply

# The defaults of every inference setting, from the one place defaults live (a run's config.inference overrides).
_DEFAULTS = config_lib.base_config().inference
# As in the authors' demo, published weights see the photo resized to 256 x 256.


class InferenceError(ColorjaxError, ValueError):
    """A problem the user can fix (bad path, no checkpoint, unreadable image, wrong option); printed as one line."""


ColorizeError = InferenceError  # The name the colorize command used; kept for scripts written against it.


@dataclasses.dataclass
class Prediction:
    """One colorized photo, how the model ran on it, and its class scores where the model has a classifier."""

    rgb: np.ndarray  # uint8 (H, W, 3), the input's size
    message: str | None = None  # e.g. "local path tiled at full resolution, 30 tiles of 200x200 ..."
    class_logits: np.ndarray | None = None  # (num_classes,)
    L: np.ndarray | None = None  # float32 (H, W, 1): the photo's CIE lightness, which the colours keep
    # float32 (h, w, 2): the model's chroma at its working size, before it was enlarged to the photo: with an L of
    # any size, `Colorizer.recombine` gives the colours at that size (a preview, from the photo's L shrunk).
    chroma: np.ndarray | None = None

    def gray(self) -> np.ndarray:
        """uint8 (H, W, 3): the photo turned gray, as shown beside its colours (`color.gray_picture` of `L`)."""
        if self.L is None:
            raise ValueError("This Prediction carries no lightness L to show as gray.")
        return color.gray_picture(self.L)


@dataclasses.dataclass
class Colorizer:
    """A model with its variables and how it wants its input sized."""

    model: Any
    variables: dict[str, Any]
    color_space: str = "lab"
    resolution: int = 256  # Shorter side the model sees; 0 = the photo's own size.
    square: bool = _DEFAULTS.square  # Resize to resolution x resolution whatever the aspect ratio.
    fixed_size: int | None = None  # The model runs only at fixed_size x fixed_size (dense layers).
    multiple: int = 8  # Working sizes are rounded to a multiple of this (the model's total stride).
    max_pixels: int = _DEFAULTS.max_pixels
    step: int | None = None  # The checkpoint step, for a training run.
    description: str = ""  # Where the weights come from, for messages.
    # Set for models that run at any size (ModelSpec.any_size): the routine bounds memory past max_pixels.
    any_size: Callable[..., tuple[dict[str, Any], dict[str, Any]]] | None = None
    large_image_strategy: str = _DEFAULTS.large_image_strategy  # Past max_pixels: "tile" or "downscale".
    class_names: list[str] | None = None  # The training data's class names, in label order.
    # L (1, h, w, 1) -> chroma (1, h, w, 2) replacing the model's XLA forward (`onnx_runtime.onnx_colorizer`).
    forward: Callable[[np.ndarray], np.ndarray] | None = None
    # The pipeline around the model (the module docstring; config_lib.base_config's `inference` fields).
    color_conversion: str = _DEFAULTS.color_conversion  # "cie" | "opencv"
    input_resize: str = _DEFAULTS.input_resize  # "lightness_antialiased" | "color_bilinear"
    chroma_upsampling: str = _DEFAULTS.chroma_upsampling  # "bilinear" | "nearest"

    def __post_init__(self):
        problems = [
            f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
            for name, choices in config_lib.PIPELINE_CHOICES.items()
            if getattr(self, name) not in choices
        ]
        if self.color_conversion == "opencv" and self.color_space != "lab":
            problems.append(f"color_conversion 'opencv' is a Lab conversion; this model predicts {self.color_space}")
        if problems:
            raise InferenceError("; ".join(problems) + ".")

    @classmethod
    def from_run(cls, run: runs.Run, **overrides) -> Colorizer:
        """The Colorizer of a loaded run (`open_model`: a training run's checkpoint or published weights), sized as
        its `config.inference` says; `overrides` (None values ignored) replace those settings."""
        config = run.config
        any_size = models.spec(config.model.name).any_size
        settings = {
            # A model that runs at any size sees the photo at its own size (resolution 0) by default.
            "resolution": 0 if any_size else config.data.image_size,
            "color_space": config.data.color_space,
            "any_size": any_size,
            "class_names": run.class_names,
        }
        fields = {field.name for field in dataclasses.fields(cls)}  # xla_cpu_onednn is the process's, not ours
        settings.update({k: v for k, v in config.inference.to_dict().items() if v is not None and k in fields})
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if settings.get("fixed_size") and overrides.keys() & {"resolution", "square"}:
            size = settings["fixed_size"]
            raise InferenceError(
                f"The model of {run.workdir} only runs at {size}x{size} (config.inference.fixed_size); "
                "drop --resolution and --square."
            )
        settings.update(overrides)
        return cls(model=run.model, variables=run.variables, step=run.step, description=run.description, **settings)

    def with_temperature(self, temperature: float | None) -> Colorizer:
        """This Colorizer with ECCV16's annealed-mean temperature set (None: unchanged)."""
        if temperature is None:
            return self
        if not hasattr(self.model, "temperature"):
            raise InferenceError("--temperature applies to the eccv16 model only.")
        return dataclasses.replace(self, model=self.model.clone(temperature=temperature))

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
        if self.any_size is not None:
            # Any size works; the routine keeps memory bounded past max_pixels itself (tiling or downscaling).
            return max(1, round(height)), max(1, round(width))
        scale = min(1.0, (self.max_pixels / (height * width)) ** 0.5)
        return tuple(max(self.multiple, int(round(d * scale / self.multiple)) * self.multiple) for d in (height, width))

    def colorize(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) photo (colour or gray) -> uint8 (H, W, 3) colorized photo of the same size."""
        return self.predict(rgb).rgb

    def predict(
        self,
        rgb: np.ndarray,
        *,
        global_features: jax.Array | None = None,
        labels: bool = False,
        hints: Sequence[dict | Hint] | None = None,
    ) -> Prediction:
        """Colorizes a uint8 (H, W, 3) photo; `global_features` (from `encode_global`) replace its own (style
        transfer); `labels` asks for the photo's own class logits as well; `hints` are the user's colour points in
        the photo's pixels (`colorjax.hints`: dicts as in a hints file, or `Hint`s), for models that take them.
        The Prediction carries the photo's lightness `L` too (and `gray()`, its gray picture): no caller needs to
        convert the photo to Lab again."""
        L_full, chroma, message, class_logits = self._run(rgb, global_features, labels, hints)
        colorized = self._combine(L_full, chroma)
        return Prediction(np.asarray(colorized), message, class_logits, np.asarray(L_full), np.asarray(chroma))

    def predict_chroma(
        self,
        rgb: np.ndarray,
        *,
        global_features: jax.Array | None = None,
        hints: Sequence[dict | Hint] | None = None,
    ) -> np.ndarray:
        """The predicted chroma of a uint8 (H, W, 3) photo at the photo's own size, float32 (H, W, 2), before it
        is recombined with the photo's L (video filters it over time first)."""
        L_full, chroma, _, _ = self._run(rgb, global_features, False, hints)
        return np.asarray(upsample_chroma(chroma, L_full.shape[:2], self.chroma_upsampling))

    def lightness(self, rgb: np.ndarray) -> np.ndarray:
        """float32 (H, W, 1): a uint8 photo's lightness at its own size as this pipeline computes it (the L its
        colours keep; `color.gray_picture` of it is the gray shown beside them), without running the model."""
        L_full, _ = self._lightness(rgb, rgb.shape[:2])
        return np.asarray(L_full)

    def combine(self, rgb: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """uint8 RGB from a photo's own full-resolution L and a chroma (upsampled to its size if smaller)."""
        return self.recombine(self.lightness(rgb), chroma)

    def recombine(self, lightness: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB of a photo's full-size lightness (H, W, 1) (`lightness`) and a chroma at any size,
        upsampled to L's size as this pipeline does: the last step of `predict`."""
        return np.asarray(self._combine(jnp.asarray(lightness), jnp.asarray(chroma, jnp.float32)))

    def _lightness(self, rgb: np.ndarray, work_size: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
        """(L at the photo's size, the model's input L at work_size), as this pipeline makes them."""
        return _lightness(jnp.asarray(rgb), tuple(work_size), self.color_conversion, self.input_resize)

    def _combine(self, L_full: jax.Array, chroma: jax.Array) -> jax.Array:
        """uint8 RGB of the full-size L and a chroma (upsampled to L's size as this pipeline does)."""
        return _combine(L_full, chroma, self.color_space, self.color_conversion, self.chroma_upsampling)

    def _run(self, rgb, global_features, labels, hints=None):
        """(L at full size, chroma at the working size, message, class logits) of one photo; InferenceError when
        the chroma is not finite (broken weights would otherwise colour the photo black)."""
        L_full, chroma, message, class_logits = self._predict(rgb, global_features, labels, hints)
        if not bool(jnp.all(jnp.isfinite(chroma))):
            raise InferenceError(
                f"The model of {self.description or 'this colorizer'} predicts NaN or infinite colours: its weights are broken "
                "(a diverged training run?); use another checkpoint (--step) or retrain with a lower learning rate."
            )
        return L_full, chroma, message, class_logits

    def _predict(self, rgb, global_features, labels, hints):
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise InferenceError(f"A photo must be uint8 (H, W, 3); got {rgb.dtype} {rgb.shape}.")
        work_size = self.working_size(*rgb.shape[:2])
        L_full, L_work = self._lightness(rgb, work_size)
        if hints is not None:
            self.check_takes_hints()
        if self.any_size is None:
            if global_features is not None or labels:
                raise InferenceError("Global features and labels need a model with a global path.")
            if self.forward is not None and hints is None:
                chroma = jnp.asarray(self.forward(np.asarray(L_work[None])))
            else:
                kwargs = {}
                if hints is not None:
                    try:
                        maps = hint_maps(hints, rgb.shape[:2], work_size)
                    except HintError as e:
                        raise InferenceError(str(e)) from None
                    kwargs["hints"] = (jnp.asarray(maps.ab)[None], jnp.asarray(maps.mask)[None])
                apply = jitted_apply(self.model, train=False)
                chroma = apply(self.variables, L_work[None], **kwargs)["chroma"]
            return L_full, chroma[0], None, None
        outputs, info = self.any_size(
            self.model,
            self.variables,
            L_work[None],
            max_pixels=self.max_pixels,
            strategy=self.large_image_strategy,
            global_features=global_features,
        )
        message = info["message"]
        if tuple(work_size) != rgb.shape[:2]:
            message = f"resized to {work_size[0]}x{work_size[1]} (resolution {self.resolution}): {message}"
        class_logits = outputs.get("class_logits") if global_features is None else None
        if labels and class_logits is None:
            class_logits = self.encode_global(rgb)["class_logits"]
        class_logits = None if class_logits is None else np.asarray(class_logits)[0]
        return L_full, jnp.asarray(outputs["chroma"][0]), message, class_logits

    def check_takes_hints(self) -> None:
        """Raises InferenceError unless the model takes the user's colour points (siggraph17)."""
        if self.any_size is not None or not models.takes_hints(self.model):
            raise InferenceError(
                f"The model of {self.description} takes no colour hints; hints need a siggraph17 model."
            )

    def _encoder(self):
        if not hasattr(self.model, "encode_global") or self.any_size is None:
            return None
        return jitted_apply(self.model, "encode_global")

    def encode_global(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """The global path of a uint8 photo (any size): {"global_features": (1, F), "class_logits"?: (1, C)}."""
        encoder = self._encoder()
        if encoder is None:
            raise InferenceError(
                f"The model of {self.description} has no global features (no global path); --global-from needs "
                "one that has, e.g. iizuka."
            )
        L_full, _ = self._lightness(rgb, rgb.shape[:2])
        return {k: np.asarray(v) for k, v in encoder(self.variables, L_full[None]).items()}

    def check_classifier(self) -> None:
        """Raises InferenceError unless the model has a classifier and the run named its classes."""
        encoder = self._encoder()
        has_classifier = False
        if encoder is not None:
            probe = jnp.zeros((1, 32, 32, 1), jnp.float32)
            has_classifier = "class_logits" in jax.eval_shape(encoder, self.variables, probe)
        if not has_classifier:
            raise InferenceError(
                f"The model of {self.description} has no classifier (runs trained without class labels have "
                "none); --labels needs one trained on labelled photos, e.g. iizuka with num_classes 'auto'."
            )
        if not self.class_names:
            raise InferenceError(
                f"{self.description} has a classifier but no class names were saved with it; --labels needs them."
            )


# sRGB in [0, 1] -> Lab, by `config.inference.color_conversion`.
_TO_LAB = {"cie": color.rgb_to_lab, "opencv": color.rgb_to_lab_opencv}


@functools.partial(jax.jit, static_argnames=("work_size", "conversion", "input_resize"))
def _lightness(
    rgb: jax.Array,
    work_size: tuple[int, int],
    conversion: str,
    input_resize: str,
) -> tuple[jax.Array, jax.Array]:
    """uint8 RGB -> (L at the photo's size, the model's input L at work_size) as (H, W, 1) float32.

    "lightness_antialiased": the photo's L, resized with an antialiased linear filter. "color_bilinear": the colour
    photo resized bilinearly with no antialiasing and its aspect ignored, then converted (DDColor's pipeline:
    `cv2.resize(img, (S, S))`, INTER_LINEAR; `resize_linear` with antialias=False is the same half-pixel-centred,
    edge-clamped interpolation, equal to it within 1 float32 ulp).
    """
    rgb = rgb.astype(jnp.float32) / 255.0  # == the authors' (img / 255.0).astype(np.float32) for every level
    to_lab = _TO_LAB[conversion]
    L_full = to_lab(rgb)[..., :1]
    if tuple(work_size) == L_full.shape[:2]:
        return L_full, L_full
    if input_resize == "color_bilinear":
        return L_full, to_lab(resize_linear(rgb, work_size, antialias=False))[..., :1]
    return L_full, resize_linear(L_full, work_size, antialias=True)


@functools.lru_cache(maxsize=64)
def linear_resize_taps(input_size: int, output_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input index, weight), each (output_size, K), of the K input samples each output sample of a linear resize
    takes: `jax.image.resize`'s weights (method "linear": the triangle kernel at pixel-centred positions, widened
    by the shrink factor when `antialias`, normalised, zero outside the input), computed in float64 and rounded
    once, with the indices of the kernel's support instead of a dense (input, output) matrix. Past the support
    the index repeats the last one with weight 0."""
    scale = output_size / input_size
    kernel_scale = max(1.0 / scale, 1.0) if antialias else 1.0
    position = (np.arange(output_size) + 0.5) / scale - 0.5
    weight = np.maximum(0.0, 1.0 - np.abs(position[:, None] - np.arange(input_size)[None, :]) / kernel_scale)
    total = weight.sum(1, keepdims=True)
    weight = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 0.0)
    weight[(position < -0.5) | (position > input_size - 0.5)] = 0.0
    nonzero = weight != 0
    first = np.where(nonzero.any(1), nonzero.argmax(1), 0)
    last = np.where(nonzero.any(1), input_size - 1 - nonzero[:, ::-1].argmax(1), 0)
    taps = first[:, None] + np.arange(int((last - first).max()) + 1)[None, :]
    index = np.minimum(taps, input_size - 1)
    weight = np.where(taps <= last[:, None], np.take_along_axis(weight, index, 1), 0.0)
    return index.astype(np.int32), weight.astype(np.float32)


def resize_linear(image: jax.Array, size: tuple[int, int], antialias: bool) -> jax.Array:
    """(H, W, C) -> (*size, C) as `jax.image.resize(image, (*size, C), "linear", antialias=antialias)`, within
    float32 rounding, by the few taps of `linear_resize_taps` per axis. jax.image.resize contracts a dense
    (input, output) weight matrix per axis: shrinking a 20-megapixel photo's L to 256 x 256 took 0.9 CPU-s inside
    the lightness program; the taps take 0.01 s. The same taps with antialias=False are OpenCV's INTER_LINEAR
    `cv2.resize` (within 1 float32 ulp; float64 positions, as OpenCV computes them)."""
    for axis, output_size in enumerate(size):
        if image.shape[axis] == output_size:
            continue
        index, weight = linear_resize_taps(image.shape[axis], output_size, antialias)
        shape = [1] * image.ndim
        shape[axis] = output_size
        terms = [jnp.take(image, index[:, k], axis=axis) * weight[:, k].reshape(shape) for k in range(index.shape[1])]
        image = functools.reduce(jnp.add, terms)
    return image


def nearest_source_indices(input_size: int, output_size: int) -> np.ndarray:
    """The input index each output index copies in PyTorch's `F.interpolate(mode="nearest")` (`nearest_idx` in
    ATen's UpSample.h): the same index at equal sizes, i // 2 at twice the size, else floor(i * (in / out)) in
    float32, at most in - 1. Not the pixel-centred nearest of `jax.image.resize` (floor((i + 0.5) * in / out)),
    which moves the picture by up to half an input pixel."""
    index = np.arange(output_size)
    if output_size == input_size:
        return index
    if output_size == 2 * input_size:
        return index >> 1
    scale = np.float32(input_size) / np.float32(output_size)
    return np.minimum(np.floor(index.astype(np.float32) * scale).astype(np.int64), input_size - 1)


def linear_taps(input_size: int, output_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, weight of the upper) of each output index when linear interpolation enlarges
    `input_size` samples to `output_size`: pixel-centred (output i sits at (i + 0.5) * in / out - 0.5) with the
    edges clamped, which is what `jax.image.resize(..., "linear")` computes when it enlarges (and PyTorch's
    `F.interpolate(mode="bilinear", align_corners=False)`), equal to it within float32 rounding."""
    position = np.clip((np.arange(output_size) + 0.5) * (input_size / output_size) - 0.5, 0, input_size - 1)
    lower = np.floor(position).astype(np.int32)
    return lower, np.minimum(lower + 1, input_size - 1), (position - lower).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("size", "method"))
def chroma_planes(chroma: jax.Array, size: tuple[int, int], method: str) -> jax.Array:
    """Chroma (h, w, 2) at the working size -> its two planes (2, H, W) at the photo's size: "bilinear"
    (`jax.image.resize`'s linear) or "nearest" (PyTorch's floor indexing, `nearest_source_indices`).

    Bilinear enlargement is two taps per axis (`linear_taps`), gathered: `jax.image.resize` contracts with a dense
    (h, H) and (w, W) weight matrix instead, 10 GFLOP for 256 x 256 to 20 megapixels. A smaller output (a photo
    below the working size) is antialiased (`resize_linear`)."""
    size = tuple(size)
    planes = jnp.moveaxis(chroma, -1, 0)
    if chroma.shape[:2] == size:
        return planes
    if method == "nearest":
        rows = nearest_source_indices(chroma.shape[0], size[0])
        columns = nearest_source_indices(chroma.shape[1], size[1])
        return planes[:, rows][:, :, columns]
    if size[0] < chroma.shape[0] or size[1] < chroma.shape[1]:
        return jnp.moveaxis(resize_linear(chroma, size, antialias=True), -1, 0)
    top, bottom, down = linear_taps(chroma.shape[0], size[0])
    planes = planes[:, top] + (planes[:, bottom] - planes[:, top]) * down[:, None]
    left, right, across = linear_taps(chroma.shape[1], size[1])
    return planes[:, :, left] + (planes[:, :, right] - planes[:, :, left]) * across


@functools.partial(jax.jit, static_argnames=("size", "method"))
def upsample_chroma(chroma: jax.Array, size: tuple[int, int], method: str) -> jax.Array:
    """Chroma (h, w, 2) at the working size -> (H, W, 2) at the photo's size, channels last (`chroma_planes`)."""
    return jnp.moveaxis(chroma_planes(chroma, size, method), 0, -1)


def _combine(
    L_full: jax.Array,
    chroma: jax.Array,
    color_space: str,
    conversion: str,
    upsampling: str,
) -> jax.Array:
    """Full-resolution L + chroma (upsampled to L's size if smaller) -> uint8 RGB, round(255 x) of the clipped
    conversion (OpenCV's Lab -> RGB clips linear RGB, as the authors' `cv2.cvtColor(..., COLOR_LAB2BGR)`).

    Two programs: the chroma's full-size planes, then the conversion from them. As one program XLA:CPU chose its
    own fusions around the gathers, and a 20-megapixel photo took 0.28 CPU-s; as two, 0.21 (the planes 0.10, the
    conversion 0.10; where it fused the gathers into the conversion, 1.4)."""
    planes = chroma_planes(chroma, L_full.shape[:2], upsampling)
    return _planes_to_rgb(L_full, planes, color_space, conversion)


@functools.partial(jax.jit, static_argnames=("color_space", "conversion"))
def _planes_to_rgb(L_full: jax.Array, planes: jax.Array, color_space: str, conversion: str) -> jax.Array:
    """uint8 (H, W, 3) RGB of L (H, W, 1) and the chroma's planes (2, H, W) at the same size."""
    # Plane by plane, interleaved only at the end: XLA:CPU vectorises its loops along the last axis, and from the
    # channels-last Lab array it ran each pixel's conversion once per channel and wrote out four full-size float
    # copies. On a 20 MP photo: OpenCV's conversion 1.87 -> 0.54 CPU-s, the CIE one 0.47 -> 0.27.
    rgb = color.chroma_planes_to_rgb_planes(L_full[..., 0], planes[0], planes[1], color_space, conversion)
    return jnp.transpose(jnp.stack([color.rgb_to_uint8(plane) for plane in rgb]), (1, 2, 0))


# The most pixels a photo may have to be read for colouring: base_config's data.max_pixels (8192^2 = 67 MP, one
# decode under 0.8 GB of float RGB), or --max-pixels where that is larger (`photo_pixel_limit`).
MAX_PIXELS_FLAG = "--max-pixels"


def photo_pixel_limit(max_pixels: int | None = None) -> int:
    """The one pixel limit of the photos the inference commands read: config.data.max_pixels's default, raised to
    `max_pixels` (the --max-pixels a command was given, or its colorizer's) where that is larger, so that the flag
    the limit's message names is the flag that lifts it."""
    default = config_lib.base_config().data.max_pixels
    return default if max_pixels is None else max(default, max_pixels)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3) through colorjax.data.decode, the decoding training and evaluation use (EXIF orientation,
    bit depth, alpha on white, first frame); InferenceError naming the file when it cannot be read or has more
    pixels than `photo_pixel_limit(max_pixels)` (the message names --max-pixels, which raises it)."""
    from colorjax.data import decode

    try:
        return decode.read_image(path, photo_pixel_limit(max_pixels), MAX_PIXELS_FLAG, uint8=True)
    except decode.ImageError as e:
        raise InferenceError(f"Cannot read image {e}") from None


def top_k_labels(
    class_logits: jax.Array | np.ndarray, class_names: Sequence[str], k: int = 5
) -> list[list[tuple[str, float]]]:
    """The k most probable scene classes of each image: [[(name, probability), ...] per image], best first.

    `class_logits` is (N, C) or (C,); `class_names` must have C entries in the classifier's label order.
    """
    logits = np.asarray(class_logits, np.float64)
    if logits.ndim == 1:
        logits = logits[None]
    if logits.ndim != 2:
        raise ValueError(f"class_logits must have shape (N, C) or (C,); got {logits.shape}.")
    if len(class_names) != logits.shape[1]:
        raise ValueError(
            f"The classifier has {logits.shape[1]} classes but {len(class_names)} class names were given; "
            "pass the label names of the dataset the model was trained on, in label order."
        )
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    k = min(k, logits.shape[1])
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(class_names[i], float(row[i])) for i in order] for row, order in zip(probabilities, best, strict=True)]


def prefer_fast_cpu_kernels(environ=os.environ) -> bool:
    """Adds `--xla_cpu_use_onednn=true` to XLA_FLAGS (config.inference.xla_cpu_onednn) for the inference commands.

    Only where it can still take effect (before JAX starts its backends) and where neither the user's XLA_FLAGS nor
    the config says otherwise; GPU and TPU ignore it. Returns whether it was added.
    """
    from jax._src import xla_bridge

    flags = environ.get("XLA_FLAGS", "")
    if not config_lib.base_config().inference.xla_cpu_onednn or "xla_cpu_use_onednn" in flags:
        return False
    if xla_bridge.backends_are_initialized():
        return False
    environ["XLA_FLAGS"] = f"{flags} --xla_cpu_use_onednn=true".strip()
    return True


def open_model(
    workdir: str | Path | None = None,
    step: str | int = "best",
    weights: str | Path | None = None,
    model: str | None = None,
) -> runs.Run:
    """The model a command runs, from `--workdir RUN [--step]` (a training run's checkpoint, `runs.load_run`) or
    `--weights NAME|FILE [--model NAME]` (published weights, `runs.published_run`): exactly one of the two. `step`
    defaults to "best" as every command's `--step` does (the newest step where the run kept no best)."""
    if (workdir is None) == (weights is None):
        raise InferenceError("Give either --workdir RUN or --weights NAME|PATH.")
    if weights is not None:
        return runs.published_run(weights, model)
    if model is not None:
        raise InferenceError("--model names the model of a --weights file; a run knows its own model.")
    return runs.load_run(workdir, step)


def open_colorizer(
    workdir: str | Path | None = None,
    step: str | int = "best",
    weights: str | Path | None = None,
    model: str | None = None,
    temperature: float | None = None,
    **overrides,
) -> Colorizer:
    """`Colorizer.from_run(open_model(...), **overrides)`, with ECCV16's annealed-mean `temperature` if given."""
    run = open_model(workdir=workdir, step=step, weights=weights, model=model)
    return Colorizer.from_run(run, **overrides).with_temperature(temperature)
