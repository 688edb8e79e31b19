"""The run directory: what a training run writes, and loading it back to colour or evaluate photos.

A run (`python -m colorjax.train --workdir WORKDIR`, or `python -m colorjax.weights to-run`) is a folder:

    WORKDIR/config.json        the config as trained (written by `write_config`; `config.N.json` keep earlier ones)
    WORKDIR/checkpoints/<step>/ Orbax checkpoints: `state` (step, params, batch_stats, frozen, opt_state) and
                               `meta` (step, config, input positions, class names, model kwargs)
    WORKDIR/tensorboard/       TensorBoard logs
    WORKDIR/images/            gray | predicted | truth grids of the in-training evaluations
    WORKDIR/eval/step_N/       `python -m colorjax.evaluate` results
    WORKDIR/corrupt_checkpoints/<step>/  damaged checkpoints that a resumed training set aside (kept, never read)

`load_run(workdir, step)` rebuilds the model from the checkpoint alone (the config in its `meta`), with the
inference variables only (no optimizer state is read): `colorize`, `evaluate`, the app, video, `model_init` and
`evaluate --classifier` all load runs through it. `open_checkpoints` opens the checkpoint folder with the run's own
best metric, so "best" means what the run kept.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import ml_collections
from etils import epath

from colorjax import checkpointing, models
from colorjax.checkpointing import CheckpointError

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
IMAGES_DIR = "images"
EVAL_DIR = "eval"


def run_path(workdir: str | Path) -> epath.Path:
    """A run directory as a path object that also understands cloud buckets (gs://...), which multi-host runs
    need: every host reads and writes the same checkpoints. Local paths are made absolute."""
    text = str(workdir)
    if "://" in text:
        return epath.Path(text)
    return epath.Path(Path(text).expanduser().absolute())


def eval_dir(workdir: str | Path, step: int) -> epath.Path:
    """Where `python -m colorjax.evaluate` writes a step's results by default."""
    return run_path(workdir) / EVAL_DIR / f"step_{step}"


def write_config(config: ml_collections.ConfigDict, workdir: str | Path) -> None:
    """Writes `WORKDIR/config.json` (what the run trains with; `open_checkpoints` reads its best metric)."""
    (run_path(workdir) / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def missing_root(workdir: str | Path) -> epath.Path | None:
    """The outermost folder of `workdir`'s path that does not exist yet (what creating it would create), or None."""
    path = run_path(workdir)
    if path.exists():
        return None
    if "://" in str(workdir):  # a bucket has no folders to create, only the run's own prefix
        return path
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def remove_if_unstarted(workdir: str | Path, created: str | Path) -> bool:
    """Removes a run directory that holds no checkpoint (a training start that failed before its first save),
    and the empty folders above it up to `created`, the outermost one that start made (`missing_root`), so a
    failed start leaves nothing behind. The trainer calls it only for a directory that start created itself; a
    directory with any checkpoint, finished or not, is kept. True when removed."""
    path, created = run_path(workdir), run_path(created)
    checkpoints = path / CHECKPOINT_DIR
    if not path.is_dir() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        return False
    path.rmtree()
    while path != created and path.parent != path:
        path = path.parent
        try:
            path.rmdir()  # only when empty
        except OSError:
            break
    return True


def read_config(workdir: str | Path) -> dict[str, Any] | None:
    """The run's config.json as a dict, None when it has none (or it is unreadable)."""
    try:
        return json.loads((run_path(workdir) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None


def best_metric(
    config: dict[str, Any] | ml_collections.ConfigDict | None,
) -> tuple[str | None, str]:
    """(`best_metric`, `best_mode`) of a run's config: which checkpoint is "best"."""
    if config is None:
        return None, "min"
    return config["best_metric"], config["best_mode"]


def open_checkpoints(
    workdir: str | Path,
    config: ml_collections.ConfigDict | None = None,
    *,
    read_only: bool = False,
    async_save: bool = True,
) -> checkpointing.Checkpoints:
    """The run's checkpoints. The trainer passes its config (retention and best metric); a read-only open takes
    the best metric from the run's own config.json."""
    directory = run_path(workdir) / CHECKPOINT_DIR
    if config is None:
        metric, mode = best_metric(read_config(workdir))
        return checkpointing.Checkpoints(
            directory,
            best_metric=metric,
            best_mode=mode,
            read_only=read_only,
            async_save=async_save,
        )
    metric, mode = best_metric(config)
    return checkpointing.Checkpoints(
        directory,
        keep_latest=config.keep_checkpoints,
        keep_best=config.keep_best_checkpoints,
        best_metric=metric,
        best_mode=mode,
        read_only=read_only,
        async_save=async_save,
    )


@dataclasses.dataclass
class Run:
    """A run's model at one checkpoint, ready for inference: the module rebuilt from the stored config, and its
    variables (params, batch_stats, frozen: no optimizer state)."""

    workdir: Path
    step: int
    config: ml_collections.ConfigDict
    meta: dict[str, Any]
    model: nn.Module
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        return Path(str(self.workdir)).name

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")

    @property
    def model_name(self) -> str:
        return self.config.model.name


def load_run(workdir: str | Path, step: str | int = "latest") -> Run:
    """The run in `workdir` at `step` ("latest", "best" or a number); CheckpointError (one line) when the folder,
    its checkpoints or that step are missing, or that numbered step is damaged. A damaged "latest" or "best" falls
    back to the newest step that reads, with one warning line (`Checkpoints.restore_variables_at`)."""
    path = run_path(workdir)
    if not path.is_dir():
        raise CheckpointError(f"Workdir {workdir} does not exist; pass the --workdir of a training run.")
    checkpoints = open_checkpoints(path, read_only=True)
    resolved, variables, meta = checkpoints.restore_variables_at(step)
    config = ml_collections.ConfigDict(meta["config"])
    model = models.get_model(config.model.name, **meta["model_kwargs"])
    return Run(
        workdir=Path(str(path)),
        step=resolved,
        config=config,
        meta=meta,
        model=model,
        variables=variables,
    )
