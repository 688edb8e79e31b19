"""Shared pieces of the configs in `configs/`: every field the trainer reads, with its default.

A config file is `configs/NAME.py` with `get_config(arg=None)` that starts from `base_config()` and sets what its
recipe needs; its docstring gives the exact command, the hardware, the expected time and score. Batch sizes are
global (all devices of all hosts). Variants are selected by the `:arg` suffix
(`--config configs/zhang_eccv16.py:places365`), and any field can be overridden (`--config.batch_size=64`).

Fields that default to None are typed placeholders (`placeholder(str)`), so that the command line can set them
(`--config.resume=runs/x`; absl cannot parse a value for a plain None).

Helpers for configs: `use_dataset(config, "imagenet" | "places" | "folder")` for the public datasets,
`use_scene_photos(config, image_size)` for CPU-sized variants, `load_config(path, arg)` for a config built on
another one.

Checks of a config before a run starts, and what changed when a run resumes with another one:
- `unknown_override_errors(config, paths)`: `--config.FIELD` overrides that name no field of the config, each with
  the nearest fields (`--config.batch_sise` -> `batch_size`, `--config.learning_rate` ->
  `optimizer.learning_rate`). The command line's parser calls it before absl applies the overrides.
- `unknown_fields(config)`: fields a config file sets that `config_lib.base_config()` does not have (a typo in a
  config file would otherwise be read by nothing). `model` and `loss` are open: their fields are the keyword
  arguments of the model and loss they name.
- `value_errors(config)`: values that cannot work (`batch_size=0`, `data.image_size=0`, `num_train_steps=-5`, ...).
- `validate(config)`: both, raised as one `ConfigError` whose `problems` are one line each.
- `config_changes(previous, current)` and `keep_previous_config(workdir, config)`: a resumed run whose config differs
  from the run's `config.json` keeps the old file as `config.N.json` and reports one line per changed field.
"""

import difflib
import importlib.util
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
from ml_collections.config_dict import placeholder

from colorjax import ColorjaxError, files

# The checkout holding this package (an editable install); the team's `shared/` folder sits beside it.
_CHECKOUT = Path(__file__).resolve().parents[1]

# The public datasets the recipes train on, by the variant name their configs take (`configs/X.py:places`).
# `folder` needs `--config.data.source=folder:PATH`: PATH/train and PATH/validation when they exist, else a held-out
# share of PATH (see colorjax.data.sources).
DATASETS = {
    "imagenet": dict(source="tfds:imagenet2012", train_split="train", eval_split="validation"),
    "places": dict(source="tfds:places365_small", train_split="train", eval_split="validation"),
    "folder": dict(source="folder:PATH/TO/PHOTOS", train_split="train", eval_split="validation"),
}


# The values of `config.inference`'s pipeline fields (base_config says what each means; the Colorizer runs them).
PIPELINE_CHOICES = {
    "color_conversion": ("cie", "opencv"),
    "input_resize": ("lightness_antialiased", "color_bilinear"),
    "chroma_upsampling": ("bilinear", "nearest"),
}


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.source = "samples"  # tfds:NAME | folder:PATH | samples
    config.data.train_split = "train"
    config.data.eval_split = "validation"
    config.data.tfds_data_dir = placeholder(str)
    config.data.image_key = "image"
    config.data.image_size = 176
    config.data.train_crop = "random_resized"  # or "resize_random_crop" (resize_size, then a random crop)
    config.data.resize_size = 256
    config.data.crop_area = (0.25, 1.0)
    config.data.crop_aspect_ratio = (3 / 4, 4 / 3)
    config.data.eval_resize_size = placeholder(int)  # Shorter side before the centre crop; None = image_size.
    # Evaluation crop: "resize_shorter_side" (shorter side to eval_resize_size, centre crop image_size) or
    # "crop_shorter_side" (the centre square of the shorter side, resized to image_size: CT2's, the papers' protocol).
    config.data.eval_crop = "resize_shorter_side"
    # TFDS sources: keep only the examples whose `file_name` carries a number 1..N (ImageNet's ILSVRC2012_val_
    # numbers are the official order), with image id = number - 1. None: every example.
    config.data.tfds_first_by_file_number = placeholder(int)
    config.data.color_space = "lab"  # or "luv"
    config.data.min_chroma = 5.0  # Photos whose |a|,|b| never exceed this have no colour signal: skipped.
    config.data.max_failed_fraction = 0.01
    config.data.labels = "auto"  # Folder sources: class = first-level subfolder.
    config.data.holdout_fraction = 0.05  # Folder without split subfolders: share held out for evaluation.
    config.data.shuffle_buffer = 10_000
    # Files with more pixels are skipped (one warning each) before they are decoded: 8192^2 = 67 MP holds every
    # phone and nearly every camera photo (61 MP full frame) while one decode stays under 0.8 GB of float RGB
    # per tf.data worker; a 20000^2 PNG would take 4.8 GB. See colorjax.data.decode.
    config.data.max_pixels = 8192 * 8192
    config.data.prefetch = 4

    config.model = ml_collections.ConfigDict(dict(name="regression"))
    # Compute dtype (models.with_precision): auto = bfloat16 on GPU/TPU, float32 on CPU; or bfloat16 | float32.
    # Parameters, optimizer state, BatchNorm statistics and the loss stay float32.
    config.precision = "auto"
    config.loss = ml_collections.ConfigDict(dict(name="l2"))

    config.batch_size = 32
    config.num_train_steps = 10_000
    config.optimizer = ml_collections.ConfigDict(
        dict(
            name="adam",
            learning_rate=1e-3,
            b1=0.9,
            b2=0.999,
            weight_decay=0.0,
            eps=placeholder(float),  # None: the optimizer's own default (optax's).
            momentum=0.9,  # sgd
            nesterov=False,  # sgd
            rho=0.95,  # adadelta
            grad_clip_norm=placeholder(float),
            reduce_on_plateau=None,
        )
    )
    # name: constant | cosine | linear | step. cosine and linear decay to final_fraction of the peak; step multiplies
    # by decay_factor at each of the boundaries (fractions of the steps after warm-up).
    config.schedule = ml_collections.ConfigDict(
        dict(
            name="constant",
            warmup_steps=0,
            final_fraction=0.0,
            decay_factor=0.1,
            boundaries=(0.5, 0.75),
        )
    )

    config.log_every = 100
    config.eval_every = 1000
    # In-training evaluation (None: every image; `python -m colorjax.evaluate` always runs every image). Typed, so a
    # config may set None and the command line can still set a number.
    config.eval_max_images = ml_collections.FieldReference(1000, field_type=int)
    config.num_grid_images = 8
    config.checkpoint_every = 1000
    config.keep_checkpoints = 3
    config.keep_best_checkpoints = 1
    config.best_metric = "val/loss"
    config.best_mode = "min"
    config.plateau_metric = "val/loss"
    config.resume = placeholder(str)  # Another run's workdir to continue (with its optimizer state).
    # Weights that start this run (not its optimizer): another run's workdir, or published weights of config.model's
    # model, a weights-registry name (`ddcolor_paper_tiny`) or a file in the authors' layout.
    config.model_init = placeholder(str)
    # How inference (colorize, the app, video) sizes a photo for the model. resolution: the shorter side the model
    # sees (None: the run's data.image_size; 0: the photo's own size); square: resolution x resolution whatever the
    # aspect ratio; fixed_size: the model only runs at fixed_size x fixed_size (dense layers, e.g. the CIFAR-10
    # autoencoder); max_pixels: most pixels the model sees in one pass (larger photos are downscaled, or tiled by
    # models that run at any size, as large_image_strategy "tile" | "downscale" says). xla_cpu_onednn: the inference
    # commands (colorize, serve) run XLA:CPU with its oneDNN kernels (README performance table: ECCV16 1.15x PyTorch
    # fp32 with them vs 1.02x without), unless XLA_FLAGS already sets --xla_cpu_use_onednn.
    # The pipeline around the model (colorjax.inference.Colorizer), as the model's authors ran it:
    # color_conversion: "cie" (the CIE formulas, as skimage and colorjax's training data) | "opencv" (OpenCV's
    # float32 cvtColor Lab, which DDColor's pipeline uses); input_resize: "lightness_antialiased" (the photo's L,
    # resized with an antialiased linear filter) | "color_bilinear" (the colour photo resized bilinearly without
    # antialiasing, as cv2.resize INTER_LINEAR, then its L: DDColor's); chroma_upsampling: "bilinear" | "nearest"
    # (PyTorch's F.interpolate floor indexing: DDColor's).
    config.inference = ml_collections.ConfigDict(
        dict(
            resolution=placeholder(int),
            square=False,
            fixed_size=placeholder(int),
            max_pixels=4096 * 4096,
            large_image_strategy="tile",
            xla_cpu_onednn=True,
            color_conversion="cie",
            input_resize="lightness_antialiased",
            chroma_upsampling="bilinear",
        )
    )
    # The web app's limits (`python -m colorjax.serve`; its flags' defaults and `serve.app.create_app`'s): the largest
    # upload (MB) and photo (pixels, checked in the header before decoding: a 24-megapixel camera photo fits), photos
    # the model colours at once (the others queue), a user's photos waiting or being coloured at once (one more is
    # refused, 429), colour points per photo (SIGGRAPH17), and the seconds a deleted item can be restored (Undo)
    # before its row and files are removed.
    config.serve = ml_collections.ConfigDict(
        dict(
            max_upload_mb=20.0,
            max_pixels=25_000_000,
            model_concurrency=1,
            max_queued_per_user=4,
            max_hints=100,
            undo_s=10.0,
        )
    )
    # Colour hints simulated in every training step (`colorjax.hints.simulate_hints`; models that take `hints`,
    # i.e. siggraph17): the paper's geometric number of points (p = 1/8, so 1/8 of the examples get none), capped at
    # max_points, square patches with sides uniform in patch_sizes (inclusive), each revealing its mean chroma.
    config.hints = ml_collections.ConfigDict(dict(simulate=False, geometric_p=1 / 8, max_points=64, patch_sizes=(1, 9)))
    # DDColor's adversarial recipe (`colorjax.train.gan`; the authors' options/train/train_ddcolor.yml), off unless
    # enabled: the generator's loss is pixel_weight x config.loss ("l1" on ab) + perceptual_weight x VGG16-BN
    # perceptual loss + gan_weight x vanilla GAN loss + colorfulness_weight x (1 - colourfulness), each a batch mean.
    # colorfulness_weight 2.0 is their 0.5: their ColorfulnessLoss *sums* over each GPU's 4 images (0.5 x 4 on a mean).
    # The targets of the perceptual and adversarial terms are the photos colour-enhanced by color_enhance_factor.
    # perceptual_weights: a weights-registry name (downloaded once, checked) or a torchvision-layout file; none is
    # read with perceptual_weight 0 (the term off).
    # optimizer: the discriminator's, as config.optimizer with these fields replaced (their optim_d: Adam, no
    # weight decay), on config.schedule.
    config.gan = ml_collections.ConfigDict(
        dict(
            enabled=False,
            discriminator_nf=64,
            pixel_weight=0.1,
            perceptual_weight=5.0,
            gan_weight=1.0,
            colorfulness_weight=2.0,
            color_enhance_factor=1.2,
            perceptual_weights="vgg16_bn",
            optimizer=dict(name="adam", learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=0.0),
        )
    )
    return config


def use_dataset(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """Points `config.data` at one of `DATASETS` (imagenet, places, folder); returns the config."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset variant {name!r}; use one of {', '.join(DATASETS)}.")
    config.data.update(DATASETS[name])
    return config


def scene_photos_folder() -> Path | None:
    """The team's Intel scene photos, `shared/data/intel_scenes_150` (train/ and test/ of 150x150 photos in six
    classes), where `shared/` is $COLORJAX_SHARED or else beside the checkout (as the tests' `shared_dir`); None
    where the folder is absent."""
    shared = Path(os.environ.get("COLORJAX_SHARED", _CHECKOUT.parent / "shared"))
    folder = shared / "data" / "intel_scenes_150"
    return folder if (folder / "train").is_dir() and (folder / "test").is_dir() else None


def scene_photos_source() -> str:
    """The data source of CPU-sized variants: `scene_photos_folder()` where it exists, else the seven
    wheel-shipped `samples`."""
    folder = scene_photos_folder()
    return f"folder:{folder}" if folder else "samples"


def use_scene_photos(config: ml_collections.ConfigDict, image_size: int) -> ml_collections.ConfigDict:
    """Points `config.data` at `scene_photos_source()` for a CPU-sized variant: random crops (30-100% of a photo)
    at `image_size`, evaluation on the set's test/ folder, 300 photos per in-training evaluation."""
    config.data.source = scene_photos_source()
    config.data.train_split = "train"
    config.data.eval_split = "test"  # The scene set's held-out folder (`samples` has no splits).
    config.data.image_size = image_size
    config.data.train_crop = "random_resized"
    config.data.crop_area = (0.3, 1.0)
    config.data.shuffle_buffer = 2000
    config.eval_max_images = 300
    return config


def parse_variants(arg: str | None, known: tuple[str, ...], config_file: str) -> list[str]:
    """The comma-separated variants of `--config FILE:a,b`, each checked against `known` (a one-line ValueError
    naming `config_file` and the choices otherwise)."""
    variants = [v for v in (arg or "").split(",") if v]
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ValueError(f"Unknown variant(s) {', '.join(unknown)} of {config_file}; choose from: {', '.join(known)}.")
    return variants


def load_config(path: str | Path, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config file, as `--config path[:arg]` loads it; for configs built on another one and
    for tests. A FileNotFoundError names a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} not found.")
    spec = importlib.util.spec_from_file_location(f"colorjax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


# Sections whose fields are the keyword arguments of what they name (any model's or loss's own settings).
OPEN_SECTIONS = ("model", "loss", "optimizer.reduce_on_plateau")

_MISSING = object()


class ConfigError(ColorjaxError, ValueError):
    """A config that cannot run; `problems` holds one line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"data.image_size": 176, ...}: every leaf of a ConfigDict or dict by its dotted path. A section's own path
    is included too (as a dict value), so that `--config.data` or `config.optimizer` count as existing fields."""
    flat: dict[str, Any] = {}
    items = tree.items() if isinstance(tree, Mapping | ml_collections.ConfigDict) else []
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, Mapping | ml_collections.ConfigDict):
            flat[path] = dict(value)
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def suggestions(path: str, candidates: Sequence[str], limit: int = 2) -> list[str]:
    """The fields of `candidates` nearest to the unknown `path`: the same name in another section, the shallowest
    (`learning_rate` -> `optimizer.learning_rate`), else the closest spellings of the whole path and of its last
    part among its section's fields (`batch_sise` -> `batch_size`)."""
    parent, _, leaf = path.rpartition(".")
    same_leaf = [c for c in candidates if c.rpartition(".")[2] == leaf and c != path]
    if same_leaf:
        # The shallowest first: `learning_rate` means the generator's `optimizer.learning_rate`, not a field of a
        # section nested deeper (`gan.optimizer.learning_rate`).
        depth = min(c.count(".") for c in same_leaf)
        return [c for c in same_leaf if c.count(".") == depth][:limit]
    siblings = {c.rpartition(".")[2]: c for c in candidates if c.rpartition(".")[0] == parent}
    close = [siblings[n] for n in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.75)]
    # The whole path (a misspelt section); its last part must be close too, or a shared section name
    # alone would make `optimizer.eps` look like `optimizer.b2`.
    close += [
        c
        for c in difflib.get_close_matches(path, candidates, n=5, cutoff=0.75)
        if difflib.SequenceMatcher(None, leaf, c.rpartition(".")[2]).ratio() >= 0.75
    ]
    return list(dict.fromkeys(close))[:limit]


def _did_you_mean(found: Sequence[str], prefix: str, where: str) -> str:
    if not found:
        return f"; every field is listed in {where}"
    return "; did you mean " + " or ".join(f"{prefix}{f}" for f in found) + "?"


def _leaves(flat: dict[str, Any]) -> list[str]:
    return [path for path, value in flat.items() if not isinstance(value, dict)]


def override_paths(argv: Sequence[str], flag: str = "config") -> list[str]:
    """The field paths of the `--config.FIELD[=VALUE]` (and boolean `--noconfig.FIELD`) arguments of `argv`."""
    paths = []
    for arg in argv:
        name = arg.lstrip("-") if arg.startswith("-") else ""
        for prefix in (f"{flag}.", f"no{flag}."):
            if name.startswith(prefix):
                paths.append(name[len(prefix) :].split("=", 1)[0])
    return paths


def unknown_override_errors(config: ml_collections.ConfigDict, paths: Sequence[str], flag: str = "config") -> list[str]:
    """One line per path of `paths` that is no field of `config` (overrides cannot add fields)."""
    known = flatten(config)
    where = "colorjax/config_lib.py and the config file"
    problems = []
    for path in paths:
        if path not in known:
            found = suggestions(path, _leaves(known))
            problems.append(f"unknown config field --{flag}.{path}{_did_you_mean(found, f'--{flag}.', where)}")
    return problems


def unknown_fields(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict | None = None) -> list[str]:
    """One line per field of `config` that `reference` (default: `base_config()`) does not have, outside
    `OPEN_SECTIONS`."""
    reference_paths = flatten(base_config() if reference is None else reference)
    problems = []
    for path in flatten(config):
        if path in reference_paths or any(path.startswith(section + ".") for section in OPEN_SECTIONS):
            continue
        if path.rpartition(".")[0] not in reference_paths and "." in path:
            continue  # inside a section that is itself unknown: that section was reported
        found = suggestions(path, _leaves(reference_paths))
        where = "colorjax/config_lib.py"
        problems.append(f"config.{path} is not a config field{_did_you_mean(found, 'config.', where)}")
    return problems


def _get(config: Any, path: str) -> Any:
    value = config
    for key in path.split("."):
        if not isinstance(value, Mapping | ml_collections.ConfigDict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _pair(value: Any, low: float, high: float | None) -> bool:
    """Two numbers low < a <= b (<= high)."""
    try:
        a, b = value
    except (TypeError, ValueError):
        return False
    if not (_is_number(a) and _is_number(b)):
        return False
    return low < a <= b and (high is None or b <= high)


# (field, test, what it must be). Each failing field is one line: "config.F must be WHAT, got V."
_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("batch_size", lambda v: _is_int(v) and v > 0, "a positive integer (the global batch)"),
    ("num_train_steps", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("log_every", lambda v: _is_int(v) and v > 0, "a positive integer (steps)"),
    ("eval_every", lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0 (0: never)"),
    (
        "checkpoint_every",
        lambda v: v is None or (_is_int(v) and v >= 0),
        "an integer >= 0 (0: only at the end and on preemption)",
    ),
    ("keep_checkpoints", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("keep_best_checkpoints", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    (
        "eval_max_images",
        lambda v: v is None or (_is_int(v) and v > 0),
        "None or a positive integer",
    ),
    ("num_grid_images", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("best_mode", lambda v: v in ("min", "max"), "'min' or 'max'"),
    ("data.image_size", lambda v: _is_int(v) and v > 0, "a positive integer (pixels)"),
    ("data.resize_size", lambda v: v is None or (_is_int(v) and v > 0), "a positive integer"),
    (
        "data.eval_resize_size",
        lambda v: v is None or (_is_int(v) and v > 0),
        "None or a positive integer",
    ),
    ("data.color_space", lambda v: v in ("lab", "luv"), "'lab' or 'luv'"),
    (
        "data.eval_crop",
        lambda v: v in ("resize_shorter_side", "crop_shorter_side"),
        "'resize_shorter_side' or 'crop_shorter_side'",
    ),
    (
        "data.tfds_first_by_file_number",
        lambda v: v is None or (_is_int(v) and v > 0),
        "None or a positive integer",
    ),
    *(
        (f"inference.{name}", lambda v, choices=choices: v in choices, " or ".join(map(repr, choices)))
        for name, choices in PIPELINE_CHOICES.items()
    ),
    (
        "data.train_crop",
        lambda v: v in ("random_resized", "resize_random_crop"),
        "'random_resized' or 'resize_random_crop'",
    ),
    ("data.crop_area", lambda v: _pair(v, 0.0, 1.0), "(low, high) with 0 < low <= high <= 1"),
    ("data.crop_aspect_ratio", lambda v: _pair(v, 0.0, None), "(low, high) with 0 < low <= high"),
    ("data.min_chroma", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("data.max_failed_fraction", lambda v: _is_number(v) and 0 <= v <= 1, "between 0 and 1"),
    ("data.holdout_fraction", lambda v: _is_number(v) and 0 <= v < 1, "in [0, 1)"),
    ("data.shuffle_buffer", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    (
        "optimizer.name",
        lambda v: v in ("adam", "adamw", "adadelta", "sgd"),
        "adam, adamw, adadelta or sgd",
    ),
    ("optimizer.learning_rate", lambda v: _is_number(v) and v > 0, "a positive number"),
    ("optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    (
        "optimizer.grad_clip_norm",
        lambda v: v is None or (_is_number(v) and v > 0),
        "None (off) or a positive number",
    ),
    (
        "schedule.name",
        lambda v: v in ("constant", "cosine", "linear", "step"),
        "constant, cosine, linear or step",
    ),
    ("schedule.warmup_steps", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("gan.discriminator_nf", lambda v: _is_int(v) and v >= 8, "an integer >= 8 (the self-attention's C/8)"),
    (
        "gan.optimizer.name",
        lambda v: v in ("adam", "adamw", "adadelta", "sgd"),
        "adam, adamw, adadelta or sgd",
    ),
    ("gan.optimizer.learning_rate", lambda v: _is_number(v) and v > 0, "a positive number"),
    *(
        (f"gan.{name}", lambda v: _is_number(v) and v >= 0, "a number >= 0")
        for name in ("pixel_weight", "perceptual_weight", "gan_weight", "colorfulness_weight")
    ),
)


def value_errors(config: ml_collections.ConfigDict) -> list[str]:
    """One line per field whose value cannot work. Fields the config does not have are not checked here."""
    problems = []
    for path, test, requirement in _RULES:
        value = _get(config, path)
        if value is not _MISSING and not test(value):
            problems.append(f"config.{path} must be {requirement}, got {value!r}.")
    size, resize = _get(config, "data.image_size"), _get(config, "data.resize_size")
    if (
        _get(config, "data.train_crop") == "resize_random_crop"
        and _is_int(size)
        and _is_int(resize)
        and 0 < resize < size
    ):
        problems.append(
            f"config.data.resize_size ({resize}) must be at least config.data.image_size ({size}) for "
            "train_crop='resize_random_crop' (a random crop of image_size from the resized photo)."
        )
    if _get(config, "gan.enabled") is True and _is_int(size) and size < 64:
        problems.append(
            f"config.data.image_size ({size}) must be at least 64 with config.gan.enabled: the discriminator halves "
            "its input four times and ends with a 4 x 4 convolution without padding."
        )
    eval_resize = _get(config, "data.eval_resize_size")
    if _is_int(size) and _is_int(eval_resize) and 0 < eval_resize < size:
        problems.append(
            f"config.data.eval_resize_size ({eval_resize}) must be at least config.data.image_size ({size}) "
            "(evaluation takes an image_size centre crop of the resized photo)."
        )
    return problems


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError listing every unknown field and impossible value (one line each), if any."""
    problems = unknown_fields(config) + value_errors(config)
    if problems:
        raise ConfigError(problems)


# ------------------------------------------------------------------------------- a resumed run's config


def _as_json(config: Any) -> dict[str, Any]:
    if isinstance(config, ml_collections.ConfigDict):
        return json.loads(config.to_json_best_effort())
    return json.loads(json.dumps(config, default=str))


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def config_changes(previous: Mapping[str, Any] | Any, current: Mapping[str, Any] | Any) -> list[str]:
    """One line per field that differs: `config.batch_size: 16 -> 32`, `config.model.dropout: added (0.1)`,
    `config.model.width: removed (was 8)`; [] when the two are the same. Takes ConfigDicts or their JSON dicts
    (tuples and lists compare equal, as config.json stores both as lists)."""
    old = {k: v for k, v in flatten(_as_json(previous)).items() if not isinstance(v, dict)}
    new = {k: v for k, v in flatten(_as_json(current)).items() if not isinstance(v, dict)}
    lines = []
    for path in sorted(old.keys() | new.keys()):
        if path not in new:
            lines.append(f"config.{path}: removed (was {_show(old[path])})")
        elif path not in old:
            lines.append(f"config.{path}: added ({_show(new[path])})")
        elif old[path] != new[path]:
            lines.append(f"config.{path}: {_show(old[path])} -> {_show(new[path])}")
    return lines


def keep_previous_config(workdir: str | Path, config: Any) -> tuple[Any, list[str]]:
    """Before a resumed run writes `workdir/config.json`: if the one there differs from `config`, copies it to
    `config.N.json` (N = 1, 2, ...: the first free number, so the files number the run's configs in order) and
    returns (that path, `config_changes`); otherwise (None, []). Call it on process 0 only.

    config.json itself stays until the caller's `runs.write_config` replaces it (atomically), so the run always
    has one, even if the process stops in between. An unreadable config.json is kept too, with the one line
    saying so (the run continues with the new config).
    """
    path = (Path(workdir) if isinstance(workdir, str) else workdir) / "config.json"  # or an epath (gs://)
    if not path.exists():
        return None, []
    previous = path.read_bytes()
    try:
        changes = config_changes(json.loads(previous), config)
    except ValueError:
        changes = [f"{path} could not be read as JSON; the run continues with the new config"]
    if not changes:
        return None, []
    n = 1
    while (kept := path.with_name(f"config.{n}.json")).exists():
        n += 1
    files.atomic_write(kept, previous)
    return kept, changes
