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
import jax
import ml_collections
from etils import epath

from colorjax import checkpointing, config_lib, files, models
from colorjax.checkpointing import CheckpointError
from colorjax.models import published as published_weights
from colorjax.weights import registry

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
    files.write_text(run_path(workdir) / CONFIG_FILE, config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


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

    workdir: Path | None  # None for published weights that were not written as a run
    step: int
    config: ml_collections.ConfigDict
    meta: dict[str, Any]
    model: nn.Module
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        if self.workdir is None:
            return f"{self.model_name} (published)"
        return Path(str(self.workdir)).name

    @property
    def published(self) -> dict[str, Any] | None:
        """Where published weights came from ({name, file, sha256_prefix}), for a run that holds them."""
        return self.meta.get("weights")

    @property
    def description(self) -> str:
        """What the model is, for people: `step 12 of runs/demo` or `the published eccv16 weights FILE`."""
        if self.workdir is None:
            return f"the published {self.model_name} weights {self.published['file']}"
        return f"step {self.step} of {self.workdir}"

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
    _check_arrays_fit(model, variables, config, path, resolved)
    return Run(
        workdir=Path(str(path)),
        step=resolved,
        config=config,
        meta=meta,
        model=model,
        variables=variables,
    )


def _check_arrays_fit(model: nn.Module, variables: dict[str, Any], config, workdir: epath.Path, step: int) -> None:
    """CheckpointError (one line) when the checkpoint's arrays are not the shapes of the model its config builds:
    the first parameter that differs, both shapes, and the config.model fields where the run's config.json says
    otherwise (a checkpoint saved under another model config), instead of Flax's ScopeParamShapeError later."""
    import jax.numpy as jnp

    size = config.get("inference", {}).get("fixed_size") or config.data.image_size
    dummy = jnp.zeros((1, size, size, 1), jnp.float32)
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy, train=False))
    for collection in ("params", "batch_stats"):
        have = dict(jax.tree_util.tree_flatten_with_path(variables.get(collection, {}))[0])
        want = dict(jax.tree_util.tree_flatten_with_path(expected.get(collection, {}))[0])
        for key in [*want, *(k for k in have if k not in want)]:
            shape_have = tuple(have[key].shape) if key in have else None
            shape_want = tuple(want[key].shape) if key in want else None
            if shape_have == shape_want:
                continue
            name = collection + "/" + "/".join(str(getattr(k, "key", k)) for k in key)
            changes = [
                line
                for line in config_lib.config_changes(config.to_dict(), read_config(workdir) or config.to_dict())
                if line.startswith("config.model.")
            ]
            why = (
                f"the run's config.json differs ({'; '.join(changes)}: checkpoint -> config.json)"
                if changes
                else f"the checkpoint's config.model {json.dumps(config.model.to_dict(), sort_keys=True)} "
                "does not build them"
            )
            raise CheckpointError(
                f"The checkpoint of step {step} in {workdir} does not fit its model: {name} is {shape_have} there "
                f"but {shape_want} in the model; {why}. Use the checkpoints of the run that config belongs to."
            )


def published_run(name_or_path: str | Path, model: str | None = None) -> Run:
    """Published weights as a Run (not written anywhere): a known name (downloaded once, `colorjax.weights`) or a
    file of one of the known models (`model` names which, unless the file has a known file name). Its config is
    `published_config`: the authors' inference pipeline and sizing, the evaluation size, the loss settings."""
    path, model = registry.published_model(name_or_path, model)
    entry = registry.KNOWN_WEIGHTS.get(str(name_or_path)) or registry.identify(path)
    if entry is not None:
        kwargs = dict(entry.model_kwargs)
    else:  # a file by another name: the model's published settings, its widths from its shapes (DDColor)
        entry = next(w for w in registry.KNOWN_WEIGHTS.values() if w.model == model)
        kwargs = published_weights.file_kwargs(model, entry.model_kwargs)
    try:
        module, variables = published_weights.load_weights_file(entry.model, path, **kwargs)
    except (ValueError, FileNotFoundError) as error:
        raise registry.WeightsError(str(error)) from None
    kwargs = published_weights.run_kwargs(entry.model, module, kwargs)
    config = published_config(entry, kwargs)
    meta = {
        "step": 0,
        "config": json.loads(config.to_json_best_effort()),
        "class_names": None,
        "model_kwargs": kwargs,
        "weights": {"name": entry.name, "file": path.name, "path": str(path), "sha256_prefix": entry.sha256_prefix},
    }
    return Run(workdir=None, step=0, config=config, meta=meta, model=module, variables=variables)


# The training objective a published model's run carries (what `evaluate --workdir` reports as its loss and
# `config.model_init` fine-tunes with unless the new config says otherwise); l2 for the others.
PUBLISHED_LOSSES: dict[str, dict[str, Any]] = {
    "eccv16": dict(
        name="zhang_classification", prior_path=None, rebalance=True, lam=0.5, k=5, sigma=5.0, min_chroma=5.0
    ),
    # Its ab L1 term: DDColor's whole objective (+ perceptual, GAN, colourfulness) is `config.gan` (configs/ddcolor.py).
    "ddcolor": dict(name="l1"),
}


def published_config(
    weights: registry.KnownWeights, model_kwargs: dict[str, Any] | None = None
) -> ml_collections.ConfigDict:
    """The config.json of a run holding `weights` (built with `model_kwargs`, default the entry's): the model, the
    data size the published models are evaluated at (256, as `evaluate --weights`; DDColor's paper evaluates at 256
    too), and the authors' pipeline for colorize: their demo's 256 x 256 square input, or the model's own
    (`models.ModelSpec.inference`, e.g. DDColor's 512 x 512 with OpenCV Lab and nearest chroma upsampling)."""
    config = config_lib.base_config()
    kwargs = weights.model_kwargs if model_kwargs is None else model_kwargs
    config.model = ml_collections.ConfigDict({"name": weights.model, **kwargs})
    config.loss = ml_collections.ConfigDict(PUBLISHED_LOSSES.get(weights.model, dict(name="l2", chroma_scale=110.0)))
    config.data.image_size = 256
    # `evaluate --workdir` without --data: the seven wheel-shipped photos (the samples source has one split).
    config.data.source = "samples"
    config.data.eval_split = "train"
    config.inference.resolution = 256
    config.inference.square = True
    config.inference.update(dict(models.spec(weights.model).inference))
    return config


def write_run(workdir: str | Path, config, variables: dict[str, Any], model_kwargs: dict[str, Any], **meta) -> None:
    """Writes a run directory holding `variables` as its step-0 checkpoint (the one writer of run directories
    outside the trainer: `weights to-run`, the tests): config.json and checkpoints/ as the trainer
    writes them (inference variables only, no optimizer state). `meta` adds fields to the checkpoint's meta."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(config, workdir)
    state = {
        "step": 0,
        "params": variables["params"],
        "batch_stats": variables.get("batch_stats", {}),
        "frozen": variables.get("frozen", {}),
    }
    meta = {
        "step": 0,
        "config": json.loads(config.to_json_best_effort()),
        "data_positions": [],
        "class_names": None,
        "model_kwargs": dict(model_kwargs),
        **meta,
    }
    checkpoints = open_checkpoints(workdir, config, async_save=False)
    checkpoints.save(0, jax.device_get(state), meta)
    checkpoints.close()
