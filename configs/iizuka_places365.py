"""Iizuka, Simo-Serra, Ishikawa 2016, "Let there be Color!": the fusion network trained with scene classification.

    python -m colorjax.train --config configs/iizuka_places365.py --workdir runs/iizuka_places365

The paper's recipe: Places scenes, 224x224 random crops of the photo resized to 256 (shorter side), horizontal
flips, ADADELTA (lr 1, rho 0.95, eps 1e-6: Zeiler's defaults; the paper names no values), batch 128, loss = MSE
on ab scaled to [0, 1] + 1/300 x scene cross-entropy, about 11 epochs. Here: TFDS `places365_small` (1.80M
training photos at 256x256, 365 classes; prepare it once with `tfds build places365_small`, about 30 GB), 11 epochs =
155k steps. Photos without colour (all |a|, |b| <= 5) are skipped, as the paper removed its low-colour ones.

Hardware and time: a GPU or TPU host; the global batch of 128 is split over all devices. Not run here (this
machine has no GPU). Estimate: a 224x224 training image costs about 51 GFLOP (8.6 GMAC forward, x3 with the
backward pass), 1 EFLOP for the 20M images of 11 epochs: hours to a day on one A100/H100, depending on the
convolutions' utilisation and on decoding 3,000+ JPEGs/s. The paper trained about 3 weeks on a Tesla K80; it
reports 0.08 s per 224x224 image on a GPU and 0.40 s on a CPU for inference, and about 5 s for a 2048x2048 image
on a GPU. It reports no colour-error table to match: its evidence is a user study (its colorizations judged natural
far more often than earlier methods') and figures, including global-feature "style" transfer between photos
(`python -m colorjax.colorize --global-from REF.jpg`).

Inference (`python -m colorjax.colorize --workdir RUN photos/ --output out/ [--labels] [--global-from REF.jpg]`)
runs the model natively at every photo's own size: the local path at full resolution, the global path on its
224x224 rescale, tiled past `config.inference.max_pixels` (or downscaled with `large_image_strategy="downscale"`).

Variants (`--config configs/iizuka_places365.py:VARIANT`):
- `imagenet2012`: TFDS `imagenet2012` (1.28M photos, 1000 classes; needs the manually downloaded tar files), 11
  epochs = 110k steps.
- `folder`: a labelled local folder, class = first-level subfolder, with `train/` and `validation/` (or `test/`)
  split subfolders or, without split subfolders, 5% held out by hash:
  `--config configs/iizuka_places365.py:folder --config.data.source=folder:PATH`. Without class subfolders the
  classifier is off (num_classes "auto" -> 0, alpha -> 0), and the trainer says so at start-up.
- `scenes`: this machine's 2 CPU cores in about 10 minutes: the team's `../shared/data/intel_scenes_150` (6 scene
  classes, 150x150 photos; `train/` (8741) for training, `test/` (2158) for evaluation) at 1/8 width (0.33M
  parameters), 96x96 crops of a 110 resize and a 96x96 global path, Adam instead of ADADELTA (which needs far more
  steps than 10 minutes allow), 600 steps of 32 (2.2 epochs). Set COLORJAX_SHARED if ../shared is not beside the
  checkout:

      COLORJAX_SHARED=/work/shared python -m colorjax.train --config configs/iizuka_places365.py:scenes \
          --workdir runs/iizuka_scenes

  Measured (2 CPU cores, quiet: 1m48s wall; under a load of 6-10 it took 9m22s, 1.9 GB RSS): the auxiliary head
  classifies 72.3% of the 2158 test photos correctly (val/class_accuracy; chance 16.7%). Colour, on the 2032
  colour test centre crops (126 grey ones left out), against gray (a = b = 0) from `python -m colorjax.evaluate`:
  AuC 92.1% vs 91.0%, rebalanced AuC 64.4% vs 61.9%, ab L2 error 11.9 vs 13.6, PSNR 25.4 vs 24.5 dB,
  colourfulness 17.4 (truth 33.8). Blue skies are found; grass, brick and foliage stay grayish: a start, far from
  the paper's pictures.
"""

from pathlib import Path

import ml_collections

from colorjax import config_lib
from colorjax.config_lib import base_config

DATA_BY_VARIANT = {
    "places365": dict(source="tfds:places365_small", train_images=1_803_460),
    "imagenet2012": dict(source="tfds:imagenet2012", train_images=1_281_167),
    # A placeholder path: `--config.data.source=folder:PATH` names the folder; its length is up to the user.
    "folder": dict(source="folder:/path/to/labelled/photos", train_images=None),
}
PAPER_EPOCHS = 11


def shared_scenes_folder() -> Path:
    """`../shared/data/intel_scenes_150` beside the repository (COLORJAX_SHARED overrides `../shared`)."""
    folder = config_lib.scene_photos_folder()
    if folder is None:
        raise FileNotFoundError(
            "The scenes variant needs data/intel_scenes_150/train and /test (the team's shared photos, beside the "
            "checkout in ../shared); set COLORJAX_SHARED "
            "to the folder holding data/intel_scenes_150, or use the :folder variant with your own photos."
        )
    return folder


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "places365"
    if variant != "scenes" and variant not in DATA_BY_VARIANT:
        known = ", ".join([*DATA_BY_VARIANT, "scenes"])
        raise ValueError(f"Unknown variant {arg!r} of iizuka_places365.py; choose one of: {known}.")
    config = paper_config()
    if variant == "scenes":
        return scenes_on_cpu(config)
    data = DATA_BY_VARIANT[variant]
    config.data.source = data["source"]
    if data["train_images"]:
        config.num_train_steps = PAPER_EPOCHS * data["train_images"] // config.batch_size
    return config


def paper_config() -> ml_collections.ConfigDict:
    """The paper's model, loss, crops and optimizer (data source and length set by the variant)."""
    config = base_config()
    config.data.train_split = "train"
    config.data.eval_split = "validation"
    config.data.image_size = 224
    # 224 crops of the photo resized to 256 (shorter side), then a flip.
    config.data.train_crop = "resize_random_crop"
    config.data.resize_size = 256
    config.data.eval_resize_size = 256  # the centre 224 of the same 256 resize

    # num_classes "auto": the data's class count (365 for Places365), or 0 (no classifier, alpha -> 0) without labels.
    config.model = ml_collections.ConfigDict(
        dict(name="iizuka", num_classes="auto", width=1.0, global_size=224, fc_batch_norm=False)
    )
    config.loss = ml_collections.ConfigDict(dict(name="iizuka", alpha=1.0 / 300.0, ab_range=100.0))

    config.batch_size = 128
    config.num_train_steps = 100_000  # 11 epochs of a TFDS variant; set it for a folder
    config.optimizer.update(name="adadelta", learning_rate=1.0, rho=0.95, eps=1e-6, weight_decay=0.0)
    config.schedule.update(name="constant", warmup_steps=0)

    config.log_every = 100
    config.eval_every = 5000
    config.eval_max_images = 2000
    config.checkpoint_every = 5000
    config.best_metric = "val/color_loss"
    config.plateau_metric = "val/color_loss"

    # colorize: the photo's own size (resolution 0), tiled past 2048^2 local-path pixels (1.7 GiB at full width).
    config.inference.resolution = 0
    config.inference.max_pixels = 2048 * 2048
    config.inference.large_image_strategy = "tile"
    return config


def scenes_on_cpu(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The paper's network at 1/8 width on 96x96 scene photos: about 10 minutes on 2 CPU cores."""
    config.data.source = f"folder:{shared_scenes_folder()}"
    config.data.train_split = "train"
    config.data.eval_split = "test"
    config.data.image_size = 96
    config.data.resize_size = 110  # the paper's 224/256 crop ratio
    config.data.eval_resize_size = 110
    config.data.shuffle_buffer = 2000

    config.model.width = 1 / 8
    config.model.global_size = 96

    config.batch_size = 32
    config.num_train_steps = 600
    config.optimizer.update(name="adam", learning_rate=2e-3, b1=0.9, b2=0.999, weight_decay=0.0, grad_clip_norm=1.0)
    config.schedule.update(name="cosine", warmup_steps=50)

    config.log_every = 50
    config.eval_every = 300
    config.eval_max_images = None  # all 2158 test photos
    config.checkpoint_every = 300
    config.keep_checkpoints = 2
    return config
