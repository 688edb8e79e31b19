"""Zhang, Isola & Efros (ECCV 2016) "Colorful Image Colorization": the 313-bin classifier, trained as in the paper.

    python -m colorjax.train --config configs/zhang_eccv16.py --workdir runs/zhang_eccv16

The paper's recipe (its training details; the authors' Caffe solver, richzhang/colorization `train/solver.prototxt`,
holds the same Adam settings): ImageNet (TFDS `imagenet2012`, prepared with `tfds build imagenet2012` and the
manually downloaded archives, or `--config.data.tfds_data_dir`), the shorter side resized to 256 then random
176x176 crops with horizontal flips, batch 40, Adam lr 3e-5, betas (0.9, 0.99), weight decay 1e-3 (an L2 term in
the gradient, as in Caffe), about 450k iterations; the learning rate drops to 1e-5 and about 3e-6 at 200k and 375k
iterations (the paper's training details; "when the loss plateaued"). Loss: class-rebalanced cross-entropy against
soft-encoded targets at 1/4 resolution (`config.loss`: K = 5 nearest bins as in the paper, 10 in the authors'
training code; lambda = 0.5; the shipped ImageNet prior). Decoding: annealed mean at T = 0.38
(`config.model.temperature`; colorize's `--temperature` changes it after training).

Hardware and time: one or more accelerators (the global batch of 40 is split over all devices). A training image
costs 111 GFLOPs at 176x176 (forward, backward and update; XLA's count in `python -m colorjax.bench zhang`, the
`eccv16_train_step` row), so the 18M images of 450k x 40 are 2.0e18 FLOPs: about 6 hours at a sustained 100 TFLOP/s,
with the input pipeline delivering about 900 images/s (plan on 16+ CPU cores for JPEG decoding). A 2-core CPU
manages 0.37 images/s: use `runlocal` there. The paper reports 22.1 ms per image for the forward pass on a Titan X.

The paper's numbers for this model ("Ours (full)", ImageNet validation): AuC 89.5% (non-rebalanced) and 67.3%
(rebalanced, `python -m colorjax.evaluate` reports both), VGG-16 top-1 on the colorized images 56.0%, and 32.3% of
people fooled in the 2AFC test. The `norebalance` variant is the paper's "class" row: the same network and loss
without class rebalancing, which the paper shows gives duller, less diverse colours (its Table 1 compares the rows).

Variants (`--config configs/zhang_eccv16.py:VARIANT`; combine with commas, e.g. `:places365,norebalance`):
- `places365`: TFDS `places365_small` (256x256 scene photos), the same recipe.
- `folder`: photos in a folder, `--config.data.source=folder:PATH`: PATH/train and PATH/validation (or PATH/test)
  when present, otherwise a stable 5% of the photos held out for evaluation.
  Compute the folder's own prior first (`python -m colorjax.prior --config configs/zhang_eccv16.py:folder
  --config.data.source=folder:PATH --out prior.npy`) and pass `--config.loss.prior_path=prior.npy`; None uses the
  ImageNet prior.
- `norebalance`: `config.loss.rebalance = False` (the paper's "class" row vs "full").
- `runlocal` (or `cpu`): a 1/8-width network on 64x64 crops that trains on a laptop CPU, on the team's
  `../shared/data/intel_scenes_150` photos when that folder sits beside the checkout (or at $COLORJAX_SHARED), else on
  the seven `samples` photos. 2000 steps take 6 to 10 minutes on 2 CPU cores (60 images/s on a busy 2-core
  machine); after 300 steps skies already turn blue. Measured on the scene photos' 2034 colour test photos at 64 px
  (`--config.num_train_steps=1700`, 3.1 minutes with evaluations, then `python -m colorjax.evaluate --workdir RUN`):
  AuC 89.4%, rebalanced 65.4% (70.3% with the ImageNet prior), ab error 15.9, colourfulness 25.4 (truth 34.1);
  with `norebalance` 92.1%, 64.3% (66.2%), 11.9 and 11.0; predicting gray gives 91.0%, 62.8% (62.1%), 13.5 and 0.1.
  The paper's pattern: rebalancing buys colour at the price of mean error.
`configs/demo.py` (the quick start) is this model and loss at 1/8 width on the seven wheel-shipped photos.
"""

import ml_collections

from colorjax import config_lib
from colorjax.config_lib import base_config

DATASETS = ("imagenet", "places365", "folder")
VARIANTS = (*DATASETS, "norebalance", "runlocal", "cpu")


def paper_recipe() -> ml_collections.ConfigDict:
    """The paper's ImageNet training run."""
    config = base_config()
    config.data.source = "tfds:imagenet2012"
    config.data.train_split = "train"
    config.data.eval_split = "validation"
    config.data.image_size = 176
    config.data.train_crop = "resize_random_crop"  # shorter side to 256, random 176 crop, flip
    config.data.resize_size = 256
    config.data.eval_resize_size = 256  # evaluate centre crops at the training scale

    config.model = ml_collections.ConfigDict(dict(name="eccv16", width=1.0, temperature=0.38))
    config.loss = ml_collections.ConfigDict(
        dict(
            name="zhang_classification",
            prior_path=None,  # None: the shipped ImageNet prior; else a `python -m colorjax.prior` .npy
            rebalance=True,
            lam=0.5,
            k=5,  # paper; the authors' training code uses 10
            sigma=5.0,
            min_chroma=5.0,
        )
    )

    config.batch_size = 40
    config.num_train_steps = 450_000
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-5
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.99
    config.optimizer.weight_decay = 1e-3
    config.schedule.update(name="step", warmup_steps=0, boundaries=(200 / 450, 375 / 450), decay_factor=1 / 3)

    config.log_every = 500
    config.eval_every = 10_000
    config.eval_max_images = 1000
    config.checkpoint_every = 10_000
    config.best_metric = "val/loss"
    config.inference.resolution = 256  # shorter side, the scale the model was trained at
    return config


def use_local_photos(config: ml_collections.ConfigDict) -> None:
    """The team's Intel scene photos when present (train/ and test/ folders), else the wheel-shipped samples."""
    config.data.source = config_lib.scene_photos_source()
    # The scene set's held-out folder; the seven samples hold no test set.
    config.data.eval_split = "train" if config.data.source == "samples" else "test"


def shrink_for_cpu(config: ml_collections.ConfigDict, image_size: int) -> None:
    """A small network on small crops with a learning rate that moves in minutes, not days."""
    config.data.image_size = image_size
    config.data.train_crop = "random_resized"
    config.data.crop_area = (0.15, 1.0)
    config.data.eval_resize_size = None
    config.data.shuffle_buffer = 1000
    config.model.width = 1 / 8
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 0.0
    config.optimizer.grad_clip_norm = 1.0
    config.schedule.update(name="cosine", warmup_steps=50)
    config.eval_max_images = 64
    config.num_grid_images = 8
    config.keep_checkpoints = 2
    config.inference.resolution = None  # the config's image_size


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variants = config_lib.parse_variants(arg, VARIANTS, "configs/zhang_eccv16.py")
    config = paper_recipe()
    if "places365" in variants:
        config.data.source = "tfds:places365_small"
    if "folder" in variants:
        config.data.source = "folder:PATH"  # set with --config.data.source=folder:PATH
    if "norebalance" in variants:
        config.loss.rebalance = False

    if "runlocal" in variants or "cpu" in variants:
        if not any(v in variants for v in DATASETS):
            use_local_photos(config)
        shrink_for_cpu(config, image_size=64)
        config.batch_size = 16
        config.num_train_steps = 2000
        config.log_every = 50
        config.eval_every = 500
        config.checkpoint_every = 500
    return config
