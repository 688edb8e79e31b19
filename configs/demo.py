"""The quick-start demo: Zhang et al.'s ECCV16 313-bin classifier at 1/8 width, on the seven photos that ship
inside installed wheels.

    python -m colorjax.train --config configs/demo.py --workdir runs/demo

No download: the photos come from the scikit-image and scikit-learn wheels (astronaut, chelsea, coffee, rocket,
motorcycle, china, flower). The model is `configs/zhang_eccv16.py`'s network and loss (class-rebalanced
cross-entropy against soft-encoded targets, the shipped ImageNet prior, annealed-mean decoding at T = 0.38) at 1/8
of the paper's width, on 96x96 random crops. Seven photos hold no test set: evaluation shows how well it fits them.

Expected on 2 CPU cores (measured: the README's first quick-start command, fresh clone and venv, 10m20s in all:
the install, then 1000 steps at 0.31 s each on an idle machine, `python -m colorjax.bench demo`, plus four
evaluations and compilation, then colouring the seven photos in 15 s). The run is deterministic on a given machine:
val/chroma_l2_error 22.6 -> 15.3 -> 12.5 -> 11.5 and val/auc_rebalanced_percent 80.1 -> 83.1 -> 86.1 -> 87.6 at
steps 250, 500, 750, 1000; by the end runs/demo/images shows the red motorcycle, the orange flower, the blue
evening sky and the astronaut's orange suit, close to the truth (the model fits its seven photos; it has seen no
others). `:regression` costs 1.4x more per step (0.44 s: full-resolution convolutions at width 16).

Variants (`--config configs/demo.py:VARIANT`):
- `regression`: the L2 regression baseline (every paper's "L2" row) on the same photos, sizes and steps: it trains
  too, and its browner, duller pictures are the point Zhang et al. make.
- `tiny`: a 30-second smoke run.
"""

import ml_collections

from colorjax import config_lib
from colorjax.config_lib import base_config

VARIANTS = ("regression", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variants = config_lib.parse_variants(arg, VARIANTS, "configs/demo.py")
    config = base_config()
    config.data.source = "samples"
    config.data.eval_split = "train"  # Seven photos: evaluation shows how well it fits them.
    config.data.image_size = 96
    config.data.crop_area = (0.15, 1.0)

    config.model = ml_collections.ConfigDict(dict(name="eccv16", width=1 / 8, temperature=0.38))
    config.loss = ml_collections.ConfigDict(
        dict(
            name="zhang_classification",
            prior_path=None,  # the shipped ImageNet prior
            rebalance=True,
            lam=0.5,
            k=5,
            sigma=5.0,
            min_chroma=5.0,
        )
    )
    config.best_metric = "val/loss"

    config.batch_size = 16
    config.num_train_steps = 1000
    config.optimizer.learning_rate = 2e-3
    config.optimizer.grad_clip_norm = 1.0
    config.schedule.update(name="cosine", warmup_steps=50)

    config.log_every = 50
    config.eval_every = 250
    config.eval_max_images = None
    config.num_grid_images = 7
    config.checkpoint_every = 250
    config.keep_checkpoints = 2

    if "regression" in variants:
        config.model = ml_collections.ConfigDict(dict(name="regression", width=16))
        config.loss = ml_collections.ConfigDict(dict(name="l2"))
        config.best_metric = "val/chroma_l2_error"
    if "tiny" in variants:
        config.data.image_size = 48
        config.model.width = 8 if config.model.name == "regression" else 1 / 16
        config.batch_size = 8
        config.num_train_steps = 60
        config.log_every = 20
        config.eval_every = 30
        config.checkpoint_every = 30
    return config
