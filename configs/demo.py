"""The quick-start demo: the L2 regression baseline on the seven photos that ship inside installed wheels.

    python -m colorjax.train --config configs/demo.py --workdir runs/demo

No download: the photos come from the scikit-image and scikit-learn wheels (astronaut, chelsea, coffee, rocket,
motorcycle, china, flower). Expected on 2 laptop CPU cores: about 5 minutes, val/chroma_l2_error falling from about
25 to about 15 (it learns sky, skin and foliage tones of its own training photos; seven photos hold no test set).
`configs/demo.py:tiny` is a 30-second smoke run.
"""

import ml_collections

from colorjax.config_lib import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = base_config()
    config.data.source = "samples"
    config.data.eval_split = "train"  # Seven photos: evaluation shows how well it fits them.
    config.data.image_size = 96
    config.data.crop_area = (0.15, 1.0)

    config.model = ml_collections.ConfigDict(dict(name="regression", width=16))
    config.loss = ml_collections.ConfigDict(dict(name="l2"))

    config.batch_size = 16
    config.num_train_steps = 1500
    config.optimizer.learning_rate = 2e-3
    config.optimizer.grad_clip_norm = 1.0
    config.schedule = ml_collections.ConfigDict(dict(name="cosine", warmup_steps=50))

    config.log_every = 50
    config.eval_every = 500
    config.eval_max_images = None
    config.num_grid_images = 7
    config.checkpoint_every = 500
    config.keep_checkpoints = 2
    config.best_metric = "val/chroma_l2_error"

    if arg == "tiny":
        config.data.image_size = 48
        config.model.width = 8
        config.batch_size = 8
        config.num_train_steps = 60
        config.log_every = 20
        config.eval_every = 30
        config.checkpoint_every = 30
    return config
