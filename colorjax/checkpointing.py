"""Checkpoints: the one module that talks to Orbax.

A run's checkpoints live in `WORKDIR/checkpoints/<step>/` (`colorjax.runs` owns the run directory and opens this
with the run's own best metric) with two items: `state` (the train state pytree: step,
params, batch_stats, frozen, opt_state) and `meta` (JSON: step, the config, the input stream's position per
process, class names — everything needed to resume or to colour images from the checkpoint alone).

- Saves are asynchronous in Orbax and atomic (Orbax writes to a temporary directory and renames it), so a run
  killed mid-save keeps its last complete checkpoint; the trainer waits for each to commit (`wait_until_saved`)
  before its next step, so a kill loses less than one checkpoint interval.
- Kept: the latest `keep_latest` checkpoints plus the best `keep_best` by an evaluation metric (`best_metric`,
  `best_mode` "min" or "max"); a checkpoint saved without metrics is only kept while it is among the latest.
- Inference opens the directory `read_only=True` and restores only the model's variables
  (`restore_variables`): no optimizer state is read.
- A damaged step (a truncated data file, an emptied `_METADATA`, an empty step folder) is never a traceback:
  `restore_newest` (training) and `restore_variables_at` (inference, "latest" or "best") fall back to the newest
  step that reads whole, with one warning line naming both steps; an explicitly asked step that is damaged is a
  one-line `CheckpointError`. Training moves the damaged steps it skipped to `<run>/corrupt_checkpoints/<step>`
  (outside Orbax's folder, which must hold only its own steps), so its next saves neither collide with them nor
  count them among the latest to keep. Orbax's own `_CHECKPOINT_METADATA` (save timestamps) is bookkeeping: a step
  whose state and meta read whole is used even when that file is damaged.
- Opened for training, unfinished saves (`<step>.orbax-checkpoint-tmp-*`, left by a run killed mid-save) are
  removed, with one line saying so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers

from colorjax import ColorjaxError

log = logging.getLogger("colorjax.checkpointing")

# Orbax writes a step to `<step>.orbax-checkpoint-tmp-<time>` and renames it when complete (atomicity_types).
_ORBAX_TMP_SUFFIX = ".orbax-checkpoint-tmp"

# Where training moves damaged steps, beside the run's `checkpoints/` folder (see the module docstring).
CORRUPT_DIR = "corrupt_checkpoints"


class CheckpointError(ColorjaxError):
    """No usable checkpoint where one was asked for (the message says what to do)."""


class DamagedCheckpoint(CheckpointError):
    """The files of checkpoint `step` (folder `path`) cannot be read whole; `reason` says what failed."""

    def __init__(self, step: int, path: epath.Path, error: BaseException):
        self.step, self.path, self.reason = step, path, _damage_reason(path, error)
        super().__init__(f"The checkpoint of step {step} ({path}) is damaged and cannot be read ({self.reason}).")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _damage_reason(step_dir: epath.Path, error: BaseException) -> str:
    """What is wrong with a step that failed to read, in a few words: an empty folder, a metadata file that is
    missing or not JSON, or the array TensorStore could not read from the data files (Orbax wraps that error
    in others; the innermost says which array and why)."""
    try:
        if step_dir.is_dir() and not any(step_dir.iterdir()):
            return "its folder is empty"
        for name in ("state/_METADATA", "meta/metadata"):
            try:
                json.loads((step_dir / name).read_text())
            except FileNotFoundError:
                return f"{name} is missing"
            except ValueError:
                return f"{name} is empty or not JSON"
    except OSError as os_error:
        return _first_line(os_error)
    cause = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    found = re.search(r'^(\w+): Error reading "([^"/]+)', str(cause))
    if found:
        return f"cannot read {found.group(2)} from its data files: {found.group(1)}"
    return _first_line(cause)


class _DemoteToInfo(logging.Filter):
    """Orbax's warnings that are not the user's concern become INFO records: hidden at the console's default
    verbosity, shown with `--verbosity 0`. "Requested `tracked_metric`; did not provide metrics." comes with every
    save between evaluations, which is by design here (only evaluated steps compete for "best"). "Metadata file
    does not exist: .../_CHECKPOINT_METADATA" (printed as `W1207 ... checkpoint.py:202]` under absl's handler)
    comes with restores whose step lacks Orbax's bookkeeping file, which colorjax does not need (module docstring).
    """

    MESSAGES = ("Requested `tracked_metric`; did not provide metrics.", "Metadata file does not exist: ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.getMessage().startswith(self.MESSAGES):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def _demote_orbax_notes() -> None:
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _DemoteToInfo) for f in absl_logger.filters):
        absl_logger.addFilter(_DemoteToInfo())


# The model's variable collections: what inference restores (everything in the train state but step and opt_state).
VARIABLE_COLLECTIONS = ("params", "batch_stats", "frozen")


class Checkpoints:
    """Saves and restores the checkpoints in `directory` (a run's `checkpoints/`, see `runs.open_checkpoints`).

    "Best" is by `best_metric` (`best_mode` "min" or "max"); the run directory passes the metric the run was
    trained with, so a read-only open agrees with what the run kept."""

    def __init__(
        self,
        directory: epath.Path,
        *,
        keep_latest: int = 3,
        keep_best: int = 1,
        best_metric: str | None = None,
        best_mode: str = "min",
        read_only: bool = False,
        async_save: bool = True,
    ):
        self.directory = directory
        self.best_metric = best_metric
        policies: list[Any] = [checkpoint_managers.LatestN(n=keep_latest)]
        best_fn = None
        if best_metric:

            def best_fn(metrics: dict[str, float]) -> float:
                return float(metrics[best_metric])

            policies.append(
                checkpoint_managers.BestN(
                    get_metric_fn=best_fn,
                    reverse=best_mode == "min",
                    n=keep_best,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            best_fn=best_fn,
            best_mode=best_mode,
            read_only=read_only,
            save_interval_steps=0 if read_only else 1,
            create=not read_only,
            enable_async_checkpointing=async_save,
        )
        self.read_only = read_only
        _demote_orbax_notes()
        if not read_only and jax.process_index() == 0:
            self._remove_unfinished_saves()
        with self._quiet():
            self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def _remove_unfinished_saves(self) -> None:
        """Removes Orbax's temporary step folders (`<step>.orbax-checkpoint-tmp-*`), each a save that never
        finished (the process died while writing it), with one line. Done here, before any save can start:
        Orbax's own `cleanup_tmp_directories` runs in the background and is only awaited by the next save."""
        if not self.directory.is_dir():
            return
        unfinished = sorted(p for p in self.directory.iterdir() if _ORBAX_TMP_SUFFIX in p.name)
        for path in unfinished:
            path.rmtree()
        if unfinished:
            log.warning(
                "Removed %d unfinished checkpoint save(s) in %s (%s), left by a run stopped while saving.",
                len(unfinished),
                self.directory,
                ", ".join(p.name for p in unfinished),
            )

    @contextlib.contextmanager
    def _quiet(self):
        """Inference opens runs read-only, and Orbax says so in warnings ("directory is read only", "metadata file
        does not exist" for checkpoints written before it recorded one) that are noise to someone colouring photos.
        A damaged file makes Orbax's reading tasks fail together, and asyncio logs each one's traceback as it shuts
        them down: the failure reaches the caller as one `DamagedCheckpoint` instead."""
        absl_logger, asyncio_logger = logging.getLogger("absl"), logging.getLogger("asyncio")
        levels = absl_logger.level, asyncio_logger.level
        if self.read_only:
            absl_logger.setLevel(logging.ERROR)
        asyncio_logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            absl_logger.setLevel(levels[0])
            asyncio_logger.setLevel(levels[1])

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        return self.manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def resolve_step(self, which: str | int) -> int:
        """'latest', 'best' or a step number -> an existing step, or a CheckpointError saying what exists."""
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"No checkpoint in {self.directory}; train first or check --workdir.")
        if which == "latest":
            return max(steps)
        if which == "best":
            best = self.best_step()
            return max(steps) if best is None else best
        step = int(which)
        if step not in steps:
            raise CheckpointError(
                f"No checkpoint for step {step} in {self.directory}; available: {', '.join(map(str, steps))}."
            )
        return step

    def save(self, step: int, state: Any, meta: dict[str, Any], metrics: dict[str, float] | None = None) -> None:
        """Starts an asynchronous save of `state` and `meta` at `step` (metrics rank it for keep-best)."""
        if metrics is not None and self.best_metric:
            metrics = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
            if self.best_metric not in metrics:
                metrics = None
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics=metrics if self.best_metric else None,
            force=True,
        )

    def wait_until_saved(self) -> None:
        """Blocks until the saves started so far are committed (renamed from Orbax's temporary folder)."""
        self.manager.wait_until_finished()

    def restore(self, step: int, abstract_state: Any | None = None) -> tuple[Any, dict[str, Any]]:
        """(state, meta) at `step`. With `abstract_state` (ShapeDtypeStructs carrying shardings) the arrays land
        sharded as described; without it every array lands whole on this machine's first device, whatever the
        topology that saved it (a run trained on 8 GPUs colours photos on a laptop).

        `DamagedCheckpoint` when the step's files cannot be read whole; a `CheckpointError` when they can but do
        not fit `abstract_state` (another model or optimizer than the run's)."""
        try:
            return self._restore(step, abstract_state)
        except Exception as error:  # noqa: BLE001 - Orbax and TensorStore raise many types (even bare Exception).
            if abstract_state is None:
                raise DamagedCheckpoint(step, self.directory / str(step), error) from error
            damage = self._damage(step)
            if damage is not None:
                raise damage from error
            raise CheckpointError(
                f"The checkpoint of step {step} in {self.directory} does not fit this config's model and optimizer "
                f"({_first_line(error)}); resume with the config it was saved with (its config.json) or train in "
                "a new --workdir."
            ) from error

    def _restore(self, step: int, abstract_state: Any | None) -> tuple[Any, dict[str, Any]]:
        with self._quiet():
            if abstract_state is None:
                abstract_state = self._single_device_target(step)
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()),
            )
        return restored["state"], restored["meta"]

    def _damage(self, step: int) -> DamagedCheckpoint | None:
        """Whether `step` reads whole by its own description (every array, its meta): None, or what failed."""
        try:
            self._restore(step, None)
        except Exception as error:  # noqa: BLE001 - see restore()
            return DamagedCheckpoint(step, self.directory / str(step), error)
        return None

    def restore_newest(self, abstract_state: Any, *, set_aside: bool = True) -> tuple[int, Any, dict[str, Any]]:
        """(step, state, meta) of the newest step that reads whole (training's resume). Damaged newer steps are
        named in one warning line and, with `set_aside`, moved to `corrupt_checkpoints/` beside this folder (see
        the module docstring); a CheckpointError when no step reads."""
        damaged: list[DamagedCheckpoint] = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state, meta = self.restore(step, abstract_state)
            except DamagedCheckpoint as error:
                damaged.append(error)
                continue
            if damaged:
                moved = self._set_aside(damaged) if set_aside else None
                log.warning(
                    "Checkpoint step %s in %s is damaged (%s)%s; resuming from step %d.",
                    ", ".join(str(d.step) for d in damaged),
                    self.directory,
                    damaged[0].reason,
                    f", moved to {moved}" if moved else "",
                    step,
                )
            return step, state, meta
        raise self._all_damaged(damaged)

    def _all_damaged(self, damaged: list[DamagedCheckpoint]) -> CheckpointError:
        steps = ", ".join(str(d.step) for d in damaged)
        return CheckpointError(
            f"Every checkpoint in {self.directory} is damaged (steps {steps}; {damaged[0].reason}); "
            "move that folder away to start afresh."
        )

    def _set_aside(self, damaged: list[DamagedCheckpoint]) -> epath.Path | None:
        """Moves damaged steps to `corrupt_checkpoints/<step>` beside this folder (first process only), then
        rereads the step list. A name already taken gets a suffix; nothing is ever deleted."""
        target_root = self.directory.parent / CORRUPT_DIR
        if jax.process_index() == 0:
            target_root.mkdir(parents=True, exist_ok=True)
            for item in damaged:
                target = target_root / str(item.step)
                n = 1
                while target.exists():
                    n += 1
                    target = target_root / f"{item.step}-{n}"
                shutil.move(str(item.path), str(target))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("colorjax: damaged checkpoints set aside")
        self.manager.reload()
        return target_root

    def _single_device_target(self, step: int) -> Any:
        metadata = ocp.StandardCheckpointer().metadata(self.directory / str(step) / "state").item_metadata
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
            metadata.tree,
        )

    def restore_variables_at(self, which: str | int) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """(step, variables, meta) for "latest", "best" or a step number (inference). A damaged "latest" or "best"
        falls back to the newest step that reads, with one warning line; a damaged step asked by number is a
        one-line CheckpointError naming its folder."""
        step = self.resolve_step(which)
        try:
            return step, *self.restore_variables(step)
        except DamagedCheckpoint as error:
            if which not in ("latest", "best"):
                others = [s for s in self.all_steps() if s != step]
                hint = f"ask for another step ({', '.join(map(str, others))}) or" if others else "train again, or"
                raise CheckpointError(f"{error} {hint.capitalize()} use --step latest.") from error
            damaged = [error]
        for fallback in sorted((s for s in self.all_steps() if s != step), reverse=True):
            try:
                variables, meta = self.restore_variables(fallback)
            except DamagedCheckpoint as error:
                damaged.append(error)
                continue
            log.warning(
                "Checkpoint step %s in %s is damaged (%s); using step %d, the newest that reads.",
                ", ".join(str(d.step) for d in damaged),
                self.directory,
                damaged[0].reason,
                fallback,
            )
            return fallback, variables, meta
        raise self._all_damaged(sorted(damaged, key=lambda d: -d.step))

    def restore_variables(self, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(variables, meta) at `step`: only the model's collections (`VARIABLE_COLLECTIONS`), each array whole on
        this machine's first device; the optimizer state is never read (a partial restore of the state item).
        `DamagedCheckpoint` when those files cannot be read."""
        try:
            return self._restore_variables(step)
        except Exception as error:  # noqa: BLE001 - see restore()
            raise DamagedCheckpoint(step, self.directory / str(step), error) from error

    def _restore_variables(self, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
        state_dir = self.directory / str(step) / "state"
        with self._quiet():
            metadata = ocp.PyTreeCheckpointer().metadata(state_dir).item_metadata.tree
            device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            target = {
                name: jax.tree.map(
                    lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
                    metadata[name],
                )
                for name in VARIABLE_COLLECTIONS
                if name in metadata
            }
            restored = ocp.PyTreeCheckpointer().restore(
                state_dir,
                args=ocp.args.PyTreeRestore(
                    item=target,
                    restore_args=ocp.checkpoint_utils.construct_restore_args(target),
                    partial_restore=True,
                ),
            )
            meta = self.restore_meta(step)
        return {name: tree for name, tree in restored.items() if tree}, meta

    def restore_meta(self, step: int) -> dict[str, Any]:
        with self._quiet():
            return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_with_shardings(tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs of `tree` (an eval_shape result) that carry the given shardings, for sharded restore."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
