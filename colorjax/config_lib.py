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
"""

import importlib.util
import os
from pathlib import Path

import ml_collections
from ml_collections.config_dict import placeholder

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
    config.model_init = placeholder(str)  # Another run's workdir whose weights start this run.
    # How inference (colorize, the app, video) sizes a photo for the model. resolution: the shorter side the model
    # sees (None: the run's data.image_size; 0: the photo's own size); square: resolution x resolution whatever the
    # aspect ratio; fixed_size: the model only runs at fixed_size x fixed_size (dense layers, e.g. the CIFAR-10
    # autoencoder); max_pixels: most pixels the model sees in one pass (larger photos are downscaled, or tiled by
    # models that run at any size, as large_image_strategy "tile" | "downscale" says). xla_cpu_onednn: the inference
    # commands (colorize, serve) run XLA:CPU with its oneDNN kernels (README performance table: ECCV16 1.15x PyTorch
    # fp32 with them vs 1.02x without), unless XLA_FLAGS already sets --xla_cpu_use_onednn.
    config.inference = ml_collections.ConfigDict(
        dict(
            resolution=placeholder(int),
            square=False,
            fixed_size=placeholder(int),
            max_pixels=4096 * 4096,
            large_image_strategy="tile",
            xla_cpu_onednn=True,
        )
    )
    # Colour hints simulated in every training step (`colorjax.hints.simulate_hints`; models that take `hints`,
    # i.e. siggraph17): the paper's geometric number of points (p = 1/8, so 1/8 of the examples get none), capped at
    # max_points, square patches with sides uniform in patch_sizes (inclusive), each revealing its mean chroma.
    config.hints = ml_collections.ConfigDict(dict(simulate=False, geometric_p=1 / 8, max_points=64, patch_sizes=(1, 9)))
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
