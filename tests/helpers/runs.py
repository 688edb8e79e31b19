"""Training runs for the tests: a config shrunk to seconds, a restored checkpoint, a run saved without training."""

from pathlib import Path

import ml_collections
import numpy as np

from colorjax import config_lib, runs


def tiny_config(source: str, **overrides) -> ml_collections.ConfigDict:
    """`config_lib.base_config()` shrunk to a 4-wide regression model on 24 px crops, plus `overrides`."""
    config = config_lib.base_config()
    config.data.update(
        source=source,
        eval_split="train",
        image_size=24,
        max_failed_fraction=0.5,
        holdout_fraction=0.0,
        prefetch=2,
    )
    config.model = ml_collections.ConfigDict(dict(name="regression", width=4))
    config.batch_size = 8
    config.num_train_steps = 8
    config.schedule.update(name="cosine", warmup_steps=2)
    config.log_every = 2
    config.eval_every = 0
    config.checkpoint_every = 2
    config.keep_checkpoints = 10
    config.best_metric = None
    config.num_grid_images = 4
    config.eval_max_images = None
    for key, value in overrides.items():
        if key in ("model", "loss"):
            config[key] = ml_collections.ConfigDict(value)  # another model or loss: its own fields only
        elif isinstance(value, dict):
            config[key].update(value)  # a partial sub-config: the other fields keep their defaults
        else:
            config[key] = value
    return config


def restored_state(workdir: Path, step: str | int = "latest"):
    checkpoints = runs.open_checkpoints(workdir, read_only=True)
    state, meta = checkpoints.restore(checkpoints.resolve_step(step))
    return state, meta


def save_run(workdir: Path, model_name: str, model_kwargs: dict, variables: dict, data_fields: dict, class_names):
    """A checkpoint laid out as the trainer saves it (state and meta with the config), for `evaluate --workdir`."""
    config = config_lib.base_config()
    config.model = ml_collections.ConfigDict({"name": model_name, **model_kwargs})
    config.data.update(data_fields)
    saver = runs.open_checkpoints(workdir, async_save=False)
    meta = {
        "step": 3,
        "config": config.to_dict(),
        "model_kwargs": model_kwargs,
        "class_names": class_names,
    }
    saver.save(3, {"step": np.int32(3), **variables}, meta)
    saver.close()
    return workdir
