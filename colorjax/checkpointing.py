"""Checkpoints: the one module that talks to Orbax.

A run's checkpoints live in `WORKDIR/checkpoints/<step>/` (`colorjax.runs` owns the run directory and opens this
with the run's own best metric) with two items: `state` (the train state pytree: step,
params, batch_stats, frozen, opt_state) and `meta` (JSON: step, the config, the input stream's position per
process, class names — everything needed to resume or to colour images from the checkpoint alone).

- Saves are asynchronous (training continues while the previous checkpoint is written) and atomic (Orbax writes to
  a temporary directory and renames it), so a run killed mid-save keeps its last complete checkpoint.
- Kept: the latest `keep_latest` checkpoints plus the best `keep_best` by an evaluation metric (`best_metric`,
  `best_mode` "min" or "max"); a checkpoint saved without metrics is only kept while it is among the latest.
- Inference opens the directory `read_only=True` and restores only the model's variables
  (`restore_variables`): no optimizer state is read.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers


class CheckpointError(RuntimeError):
    """No usable checkpoint where one was asked for (the message says what to do)."""


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
        with self._quiet():
            self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    @contextlib.contextmanager
    def _quiet(self):
        """Inference opens runs read-only, and Orbax says so in warnings ("directory is read only", "metadata file
        does not exist" for checkpoints written before it recorded one) that are noise to someone colouring photos."""
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        if self.read_only:
            absl_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            absl_logger.setLevel(level)

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

    def restore(self, step: int, abstract_state: Any | None = None) -> tuple[Any, dict[str, Any]]:
        """(state, meta) at `step`. With `abstract_state` (ShapeDtypeStructs carrying shardings) the arrays land
        sharded as described; without it every array lands whole on this machine's first device, whatever the
        topology that saved it (a run trained on 8 GPUs colours photos on a laptop)."""
        with self._quiet():
            if abstract_state is None:
                abstract_state = self._single_device_target(step)
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()),
            )
        return restored["state"], restored["meta"]

    def _single_device_target(self, step: int) -> Any:
        metadata = ocp.StandardCheckpointer().metadata(self.directory / str(step) / "state").item_metadata
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
            metadata.tree,
        )

    def restore_variables(self, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(variables, meta) at `step`: only the model's collections (`VARIABLE_COLLECTIONS`), each array whole on
        this machine's first device; the optimizer state is never read (a partial restore of the state item)."""
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
