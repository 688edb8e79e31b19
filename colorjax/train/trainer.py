"""The trainer: `train_and_evaluate(config, workdir)` trains a colorization model as its config says.

The command line around it is `colorjax/cli/train.py` (`python -m colorjax.train`); the tests and notebooks call
this library. Read `train_and_evaluate` top to bottom: setup, input, model, mesh and shardings, the
train step, restore or initialise, evaluation, the loop. Any config field can be overridden on the command line
(`--config.batch_size=64`).

Where the starting state comes from, first match wins:
1. a checkpoint in `--workdir` (a rerun resumes: same state, same position in the input stream), the newest that
   reads whole: damaged newer steps are named in one line and moved to `corrupt_checkpoints/` (`checkpointing`);
2. `config.resume`: another run's workdir, continued with its optimizer state and input position;
3. `config.model_init`: weights (not optimizer) that start a new run: another run's workdir (its best step), or
   published weights of `config.model.name` (a weights-registry name such as `ddcolor_paper_tiny`, downloaded once
   and checked, or a file in the authors' layout: `runs.published_run`); a GAN's discriminator starts fresh;
4. a fresh initialisation, with the model's pretrained files loaded where it has any (ImageNet backbones).

SIGTERM/SIGINT (preemption, Ctrl-C) save a checkpoint and exit with code 75 (not finished: rerun to resume); a
second Ctrl-C stops at once. A NaN or infinite loss stops the run with an error, and every save first checks the
updated weights (finite, within MAX_WEIGHT_GROWTH of the last good state's, with a finite loss on the batch and a
finite evaluation loss where one ran), so the last checkpoint saved stays good.

Messages go through the `colorjax` logger (Python logging, which absl's logging also writes through): the console
shows them at INFO while Orbax's and TensorFlow's own INFO chatter stays at absl's WARNING default, and so do
Orbax's routine warnings (`checkpointing`) and TensorFlow's C++ notes (`data.import_tensorflow`); `--verbosity 0`
shows them all. The progress line is printed: it is the console's own display, not a log record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils import epath

from colorjax import ColorjaxError, checkpointing, config_lib, data, files, models, parallel, runs
from colorjax import hints as hints_lib
from colorjax.data import Position
from colorjax.data.input_wait import InputWaitTimer
from colorjax.evaluation import evaluator
from colorjax.train import gan as gan_lib
from colorjax.train import losses, optim

log = logging.getLogger("colorjax.train")  # not __name__: that is "__main__" under python -m


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a record is emitted (so redirected or captured output sees it)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def console_logging() -> None:
    """Shows colorjax's INFO messages on the console as plain lines (idempotent)."""
    logger = logging.getLogger("colorjax")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@flax.struct.dataclass
class TrainState:
    """Everything a training run carries from step to step (and saves in checkpoints)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    frozen: Any
    opt_state: Any

    def variables(self, params: Any | None = None) -> dict[str, Any]:
        return {
            "params": self.params if params is None else params,
            "batch_stats": self.batch_stats,
            "frozen": self.frozen,
        }


@flax.struct.dataclass
class GanTrainState(TrainState):
    """A TrainState with a discriminator (`config.gan.enabled`: `colorjax.train.gan`), saved with the rest."""

    discriminator: gan_lib.DiscriminatorState


# Exit code of a run stopped by SIGTERM/Ctrl-C after saving its checkpoint: not finished, resumable
# (EX_TEMPFAIL, "try again later"), so a launcher or script can tell it from success (0) and from errors (1, 2).
INTERRUPTED_EXIT_CODE = 75


class TrainingInterrupted(Exception):
    """SIGTERM or Ctrl-C stopped the run after it saved a checkpoint at `step`; rerunning resumes it."""

    def __init__(self, step: int):
        self.step = step
        super().__init__(f"Stopped at step {step}; rerun the same command to resume.")


class TrainingDiverged(ColorjaxError):
    """The loss became NaN or infinite."""


class Preemption:
    """Turns SIGTERM and the first SIGINT into a request to checkpoint and stop at the next step."""

    def __init__(self):
        self.requested = False
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # Not the main thread (e.g. some test runners): no handler, no preemption support.
                pass

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Received %s: saving a checkpoint and stopping.", signal.Signals(signum).name)

    def should_stop(self, step: int) -> bool:
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            return self.requested or multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def restore(self) -> None:
        """Puts the previous handlers back; after a Ctrl-C or SIGTERM, a Ctrl-C while the process finishes (the
        last save, the writers, the threads joined at exit) ends it at once with one line and exit 130, where
        Python's default raised KeyboardInterrupt into that shutdown and printed a 45-line traceback."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self.requested and signal.SIGINT in self._previous:
            signal.signal(signal.SIGINT, _stop_now)


def _stop_now(signum, frame) -> None:
    """SIGINT while a stopped run finishes: one line, exit 130 (the shell's code for SIGINT) without the shutdown
    (the last save is then left unfinished; the next start removes it and resumes from the one before)."""
    sys.stderr.write("Interrupted.\n")
    sys.stderr.flush()
    os._exit(128 + signal.SIGINT)


def make_init_state(model, tx: optax.GradientTransformation, image_size: int, gan: gan_lib.GanRecipe | None = None):
    """`init_state(rng) -> TrainState` for square inputs of `image_size` (jit it with the state's shardings); a
    GanTrainState with a fresh discriminator (and a random VGG16-BN until its weights are loaded) with `gan`."""

    def init_state(rng: jax.Array) -> TrainState:
        dummy = jnp.zeros((1, image_size, image_size, 1), jnp.float32)
        variables = model.init(rng, dummy, train=False)
        params = variables["params"]
        fields = dict(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            frozen=variables.get("frozen", {}),
            opt_state=tx.init(params),
        )
        if gan is None:
            return TrainState(**fields)
        # Its own stream: the generator's initialisation stays the one a run without the GAN gets.
        return GanTrainState(**fields, discriminator=gan.init(jax.random.fold_in(rng, 1), image_size))

    return init_state


def make_train_step(
    model,
    loss_fn: losses.LossFn,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    hints: ml_collections.ConfigDict | None = None,
    gan: gan_lib.GanRecipe | None = None,
):
    """The pure training step `(state, batch, rng) -> (state, metrics)`: forward with batch statistics, the mean
    per-example loss, gradients w.r.t. `params` only (never `frozen`), an optimizer update. Jitted over the mesh by
    the trainer (and by the benchmark), so under data parallelism XLA adds the gradient all-reduce itself.
    With `hints.simulate` (config.hints) the model also sees colour points revealed from the batch's true chroma
    (`colorjax.hints.simulate_hints`, the SIGGRAPH17 paper's training). With `gan` (config.gan) the step updates
    the generator and then the discriminator, as `colorjax.train.gan.gan_step` says, on a GanTrainState."""
    simulate = hints is not None and hints.simulate
    if simulate and not models.takes_hints(model):
        raise ValueError(
            f"config.hints.simulate needs a model that takes colour hints (siggraph17); "
            f"{type(model).__name__} does not."
        )

    def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array):
        step_rng = jax.random.fold_in(rng, state.step)
        hint_kwargs = {}
        if simulate:
            options = {k: v for k, v in hints.to_dict().items() if k != "simulate"}
            hint_rng = jax.random.fold_in(step_rng, 1)  # its own stream; dropout keeps step_rng
            hint_kwargs["hints"] = hints_lib.simulate_hints(hint_rng, batch["chroma"], **options)

        if gan is not None:

            def apply_generator(params):
                return model.apply(
                    state.variables(params),
                    batch["L"],
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": step_rng},
                    **hint_kwargs,
                )

            return gan_lib.gan_step(gan, apply_generator, loss_fn, tx, schedule, state, batch)

        def compute_loss(params):
            outputs, mutated = model.apply(
                state.variables(params),
                batch["L"],
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": step_rng},
                **hint_kwargs,
            )
            per_example = loss_fn(outputs, batch)
            return jnp.mean(per_example["loss"]), (per_example, mutated)

        grads, (per_example, mutated) = jax.grad(compute_loss, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=mutated.get("batch_stats", state.batch_stats),
            opt_state=opt_state,
        )
        logged = {f"train/{k}": jnp.mean(v) for k, v in per_example.items()}
        logged["train/grad_norm"] = optax.global_norm(grads)
        logged["train/lr"] = schedule(state.step)
        return new_state, logged

    return train_step


def itstime(step: int, every: int | None, total: int) -> bool:
    """True every `every` steps and at the last step (never when `every` is 0/None)."""
    return bool(every) and (step % every == 0 or step == total)


def resolve_classifier(
    config: ml_collections.ConfigDict, class_names: list[str] | None
) -> tuple[ml_collections.ConfigDict, str | None]:
    """The config as this run uses it, and a line to print when its classifier is off.

    A model with an auxiliary classifier has `config.model.num_classes`; "auto" becomes the data's class count, 0
    when the data has no labels (no classification head). A loss weighting a class term by `config.loss.alpha`
    then gets alpha = 0, so config.json and the checkpoints record what the run trains: the colour loss only.
    Configs without `num_classes` come back unchanged.
    """
    num_classes = config.model.get("num_classes")
    if num_classes is None:
        return config, None
    count = len(class_names) if class_names else 0
    if num_classes == "auto":
        num_classes = count
    elif not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"config.model.num_classes must be 'auto' or a count >= 0, got {num_classes!r}.")
    elif 0 < num_classes < count:
        raise ValueError(
            f"config.model.num_classes={num_classes} but the training data has {count} classes; "
            "set it to 'auto' (the data's count) or to at least the number of classes."
        )
    resolved = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy; the caller's config is untouched
    # Whole sub-dicts are replaced: ConfigDict refuses to change a field's type ("auto" -> 0) in place.
    resolved.model = ml_collections.ConfigDict({**resolved.model, "num_classes": num_classes})
    if num_classes > 0:
        return resolved, None
    why = (
        "the training data has no class labels (config.model.num_classes='auto' -> 0)"
        if config.model.num_classes == "auto"
        else "config.model.num_classes=0" + (f" (the data's {count} class labels are not used)" if count else "")
    )
    effect = "the model has no classification head"
    if resolved.loss.get("alpha"):
        resolved.loss = ml_collections.ConfigDict({**resolved.loss, "alpha": 0.0})
        effect += " and config.loss.alpha -> 0: the loss is the colour term alone"
    return resolved, f"Classifier off: {why}; {effect}."


class ProgressLine:
    """The console line: step, loss, images/s and the estimated time left.

    clu's `periodic_actions.ReportProgress` measures steps/s too, but reports it as XManager work-unit notes and
    absl INFO records (hidden at the console's default verbosity) and shows neither the loss nor images/s; this
    line is what a person watching a terminal needs, and it excludes evaluation and checkpoint pauses.
    """

    def __init__(self, total_steps: int, global_batch: int, first_step: int):
        self.total, self.batch = total_steps, global_batch
        self.last_step, self.last_time = first_step, time.perf_counter()
        self.first_interval = True

    def pause_ended(self) -> None:
        """Restarts the clock after an evaluation or save, so those do not count as training time."""
        self.last_time = time.perf_counter()

    def update(self, step: int, loss: float, input_wait_percent: float) -> dict[str, float]:
        now = time.perf_counter()
        steps_per_s = (step - self.last_step) / max(now - self.last_time, 1e-9)
        # The first interval includes compilation, so it says so; later ones are steady training speed.
        note = "  (includes compilation)" if self.first_interval else ""
        self.first_interval = False
        self.last_step, self.last_time = step, now
        eta = (self.total - step) / max(steps_per_s, 1e-9)
        images_per_s = steps_per_s * self.batch
        width = len(str(self.total))
        print(
            f"step {step:>{width}}/{self.total}  loss {loss:.4g}  {images_per_s:.1f} img/s  "
            f"input wait {input_wait_percent:.0f}%  ETA {_format_seconds(eta)}{note}",
            flush=True,
        )
        return {"train/images_per_s": images_per_s, "train/steps_per_s": steps_per_s}


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, float]:
    """Runs (or resumes) training as configured; returns the last logged train and evaluation metrics.

    A start that fails before its first checkpoint (a missing data folder, a model that cannot be built) leaves
    no run directory behind when it created that directory; an existing run's directory is never removed."""
    console_logging()
    workdir = runs.run_path(workdir)
    created = runs.missing_root(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _train_and_evaluate(config, workdir)
    except BaseException:
        if created is not None and jax.process_index() == 0:
            runs.remove_if_unstarted(workdir, created)
        raise


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: epath.Path) -> dict[str, float]:
    # ------------------------------------------------------------------------------------------------- setup
    data.hide_accelerators_from_tensorflow()
    process_index, process_count = jax.process_index(), jax.process_count()
    writer = _metric_writer(workdir, process_index)
    total_steps = config.num_train_steps

    # ------------------------------------------------------------------------------------------------- input
    local_batch = parallel.local_batch_size(config.batch_size)
    config, train_source, eval_source = _input(config, workdir, process_index, process_count)
    class_names = train_source.class_names

    # ------------------------------------------------------------------------------------------------- model
    model_kwargs = models.model_kwargs(config, class_names)
    model = models.get_model(config.model.name, **model_kwargs)
    model = models.with_precision(model, config.precision)  # bf16 compute on GPU/TPU ("auto")
    loss_fn = losses.from_config(config)
    tx, schedule = optim.make_optimizer(config)
    gan = gan_lib.from_config(config)  # None unless config.gan.enabled: a discriminator trained in the same step
    init_state = make_init_state(model, tx, config.data.image_size, gan)

    # ------------------------------------------------------------------------------------ mesh and shardings
    mesh = parallel.make_mesh()
    train_rng = jax.random.key(config.seed)
    # Initialisation draws from the "rbg" generator: XLA compiles its random bits several times faster than
    # threefry's on CPU (39 s -> 12 s for a small VGG16), and init quality does not depend on the generator.
    init_rng = jax.random.key(config.seed, impl="rbg")
    abstract_state = jax.eval_shape(init_state, init_rng)
    shardings = _Shardings.on(mesh, abstract_state)
    if process_index == 0:
        _log_model(config, abstract_state)

    # ------------------------------------------------------------------------------------------ train step
    steps = _compile_steps(model, loss_fn, tx, schedule, config.hints, shardings, gan)

    # -------------------------------------------------------------------------------- restore or initialise
    checkpoints = runs.open_checkpoints(workdir, config)
    abstract_sharded = checkpointing.abstract_with_shardings(abstract_state, shardings.state)
    state, start_position = _restore_or_initialise(
        config,
        checkpoints,
        abstract_sharded,
        lambda: jax.jit(init_state, out_shardings=shardings.state)(init_rng),
        shardings.state,
        tx,
        model_kwargs,
        local_batch,
        gan,
    )
    first_step = int(state.step)
    if process_index == 0:  # only once the start is accepted: a refused one leaves the run's config.json as it was
        _write_config(config, workdir)

    # ------------------------------------------------------------------------------------------- evaluation
    evaluate = None
    if eval_source is not None:
        evaluate = _Evaluation(config, model, loss_fn, mesh, eval_source, local_batch, writer, workdir)

    # ------------------------------------------------------------------------------------------------- loop
    train_stream = data.TrainStream(
        train_source,
        config.data,
        local_batch_size=local_batch,
        seed=config.seed,
        process_index=process_index,
        start=start_position,
    )
    preemption = Preemption()
    loop = _Loop(
        config=config,
        mesh=mesh,
        train_rng=train_rng,
        steps=steps,
        evaluate=evaluate,
        checkpoints=checkpoints,
        writer=writer,
        train_stream=train_stream,
        preemption=preemption,
        input_wait=InputWaitTimer(),  # the share of step time spent waiting for input
        progress=ProgressLine(total_steps, config.batch_size, first_step),
        meta={"class_names": class_names, "model_kwargs": model_kwargs},
    )
    if first_step >= total_steps:
        log.info("Training already finished (%d/%d steps).", first_step, total_steps)
    try:
        stopped_at = loop.run(state, first_step)
    finally:
        train_stream.close()
        preemption.restore()
        checkpoints.close()
        writer.flush()
        _log_skipped(train_stream)
    if process_index == 0:
        _log_outputs(workdir, checkpoints)
    if stopped_at is not None:
        raise TrainingInterrupted(stopped_at)
    return {**loop.last_train, **loop.last_eval}


# Setup and input -----------------------------------------------------------------------------------------------


def _metric_writer(workdir: epath.Path, process_index: int):
    """clu's writer of the run's TensorBoard scalars and images (process 0's; the others only log)."""
    from clu import metric_writers

    return metric_writers.create_default_writer(
        str(workdir / runs.TENSORBOARD_DIR), just_logging=process_index > 0, asynchronous=True
    )


def _input(config: ml_collections.ConfigDict, workdir: epath.Path, process_index: int, process_count: int):
    """(config as this run uses it, training source, evaluation source or None). The config records the split
    evaluated and the classifier as resolved (`resolve_classifier`); process 0 says what the run trains and
    evaluates on (the config is written to the workdir once the starting state is restored or made)."""
    train_source, eval_source, eval_split, eval_note = _sources(config, process_index, process_count)
    if eval_split != config.data.eval_split:
        config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy that records the split evaluated
        config.data.eval_split = eval_split
    config, classifier_note = resolve_classifier(config, train_source.class_names)
    if process_index == 0:
        _log_input(config, train_source, eval_source, notes=(classifier_note, eval_note))
    return config, train_source, eval_source


def _write_config(config: ml_collections.ConfigDict, workdir: epath.Path) -> None:
    kept, changes = config_lib.keep_previous_config(workdir, config)
    if changes:
        log.warning(
            "The config differs from this run's last start (that one is kept as %s):\n  %s",
            kept.name,
            "\n  ".join(changes),
        )
    runs.write_config(config, workdir)


def _log_input(config: ml_collections.ConfigDict, train_source, eval_source, notes: tuple[str | None, ...]) -> None:
    class_names = train_source.class_names
    classes = f", {len(class_names)} classes" if class_names else ""
    log.info(
        "Training on %s: %d images%s.",
        train_source.description,
        train_source.num_examples,
        classes,
    )
    for note in notes:
        if note:
            log.info(note)
    if eval_source is not None:
        count = eval_source.num_examples
        used = count if config.eval_max_images is None else min(count, config.eval_max_images)
        log.info(
            "Evaluating on %s (split %r): %d images%s.",
            eval_source.description,
            config.data.eval_split,
            used,
            f" of {count} (config.eval_max_images)" if used < count else "",
        )


# Mesh, shardings and the compiled steps ------------------------------------------------------------------------


class _Shardings(NamedTuple):
    """Where the train state, a batch and everything else live on the mesh."""

    state: Any  # A TrainState of shardings: replicated (data parallelism).
    batch: jax.sharding.Sharding  # Split along the batch axis.
    replicated: jax.sharding.Sharding

    @classmethod
    def on(cls, mesh: jax.sharding.Mesh, abstract_state: TrainState) -> _Shardings:
        state = jax.tree.map(lambda _: parallel.replicated(mesh), abstract_state)
        return cls(state, parallel.data_sharding(mesh), parallel.replicated(mesh))


def _log_model(config: ml_collections.ConfigDict, abstract_state: TrainState) -> None:
    num_params = sum(x.size for x in jax.tree.leaves(abstract_state.params))
    log.info(
        "Model %s: %s trainable parameters; global batch %d on %d %s device(s), %d steps.",
        config.model.name,
        f"{num_params:,}",
        config.batch_size,
        jax.device_count(),
        jax.devices()[0].platform.upper(),
        config.num_train_steps,
    )
    if isinstance(abstract_state, GanTrainState):
        discriminator = sum(x.size for x in jax.tree.leaves(abstract_state.discriminator.params))
        log.info(
            "Discriminator (config.gan): %s trainable parameters, nf %d; losses: %g x %s + %g x perceptual + "
            "%g x GAN + %g x colourfulness.",
            f"{discriminator:,}",
            config.gan.discriminator_nf,
            config.gan.pixel_weight,
            config.loss.name,
            config.gan.perceptual_weight,
            config.gan.gan_weight,
            config.gan.colorfulness_weight,
        )


class _Steps(NamedTuple):
    """The jitted functions the loop calls, over the mesh."""

    train_step: Callable  # (state, batch, rng) -> (state, metrics); donates the state.
    state_health: Callable  # (state, batch) -> {finite, max_abs, loss}: checked before every save.
    record_evaluation: Callable  # (state, metric) -> state; donates the state.


def _compile_steps(model, loss_fn, tx, schedule, hints, shardings: _Shardings, gan=None) -> _Steps:
    train_step = jax.jit(
        make_train_step(model, loss_fn, tx, schedule, hints=hints, gan=gan),
        in_shardings=(shardings.state, shardings.batch, shardings.replicated),
        out_shardings=(shardings.state, shardings.replicated),
        donate_argnums=(0,),
    )

    state_health = jax.jit(
        make_soundness_check(model, loss_fn),
        in_shardings=(shardings.state, shardings.batch),
        out_shardings=shardings.replicated,
    )

    def record_evaluation(state: TrainState, value: jax.Array) -> TrainState:
        """Feeds an evaluation metric to a reduce-on-plateau optimizer (a no-op for other optimizers)."""
        return state.replace(opt_state=optim.record_validation_loss(state.opt_state, value))

    record_evaluation = jax.jit(
        record_evaluation,
        in_shardings=(shardings.state, shardings.replicated),
        out_shardings=shardings.state,
        donate_argnums=(0,),
    )
    return _Steps(train_step, state_health, record_evaluation)


# Evaluation and the loop ---------------------------------------------------------------------------------------


class _Evaluation:
    """`evaluate(state, step) -> scalars`: the evaluation split through `evaluator.Evaluator`, its scalars written
    and logged, its picture grid written (TensorBoard and images/) by process 0."""

    def __init__(self, config, model, loss_fn, mesh, eval_source, local_batch: int, writer, workdir: epath.Path):
        self.evaluator = evaluator.Evaluator(
            model,
            config.data.color_space,
            mesh,
            loss_fn=loss_fn,
            baselines=False,
            num_grid=config.num_grid_images,
        )
        self.config, self.source, self.local_batch = config, eval_source, local_batch
        self.writer, self.workdir = writer, workdir
        self.skipped = data.SkippedFiles()  # Kept across evaluations: each skipped file is named once.

    def __call__(self, state: TrainState, step: int) -> dict[str, float]:
        config, skipped = self.config, self.skipped
        total, host_batches = evaluator.batches(
            self.source, config.data, self.local_batch, config.eval_max_images, skipped
        )
        results = self.evaluator.run(state.variables(), host_batches, total)
        scalars = results.scalars()
        self.writer.write_scalars(step, scalars)
        grid = results.grids.first_grid()
        if jax.process_index() == 0 and grid is not None:
            self.writer.write_images(step, {"val/gray_predicted_truth": grid[None]})
            files.save_png(grid, self.workdir / runs.IMAGES_DIR / f"step_{step:07d}.png")
        log.info("  eval " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(scalars.items())))
        if skipped.grey or skipped.unreadable:
            grey, unreadable = len(skipped.grey), len(skipped.unreadable)
            log.info("  eval left out %d grey photo(s) and %d unreadable file(s)", grey, unreadable)
        return scalars


@dataclasses.dataclass
class _Loop:
    """The training loop: a step per batch, then as due the logged means (which stop a diverged run), an
    evaluation (fed to a reduce-on-plateau optimizer), a checkpoint of a state checked sound; a preemption saves
    and stops. `last_train` and `last_eval` are the last metrics logged."""

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    train_rng: jax.Array
    steps: _Steps
    evaluate: _Evaluation | None
    checkpoints: Any
    writer: Any
    train_stream: data.TrainStream
    preemption: Preemption
    input_wait: InputWaitTimer
    progress: ProgressLine
    meta: dict[str, Any]  # What every checkpoint records besides the step, the config and the input positions.
    pending_metrics: list[dict[str, jax.Array]] = dataclasses.field(default_factory=list)
    last_train: dict[str, float] = dataclasses.field(default_factory=dict)
    last_eval: dict[str, float] = dataclasses.field(default_factory=dict)
    # The largest |parameter| or |batch statistic| of the last good state: the start's, then each save's.
    reference_max_abs: float = 0.0

    def run(self, state: TrainState, first_step: int) -> int | None:
        """Trains from `first_step` to the config's last step; the step a preemption stopped at, else None."""
        config, total_steps = self.config, self.config.num_train_steps
        self.reference_max_abs = float(jax.jit(weights_health)(state)["max_abs"])
        for step in range(first_step + 1, total_steps + 1):
            batch = parallel.host_to_global(self.input_wait.next(self.train_stream), self.mesh)
            state, step_metrics = self.steps.train_step(state, batch, self.train_rng)
            self.pending_metrics.append(step_metrics)
            stop = self.preemption.should_stop(step)
            saving = itstime(step, config.checkpoint_every, total_steps) or stop
            evaluating = self.evaluate is not None and itstime(step, config.eval_every, total_steps)
            if itstime(step, config.log_every, total_steps) or saving or evaluating:
                self._log_train(step)
            eval_metrics = None
            if evaluating:
                state, eval_metrics = self._evaluate(state, step)
            if saving or evaluating:
                self._save(state, batch, step, eval_metrics)
            if stop:
                return step
        return None

    def _log_train(self, step: int) -> None:
        means = _check_and_average(self.pending_metrics, step, self.config, self.checkpoints.latest_step())
        self.pending_metrics = []
        means["train/input_wait_percent"] = self.input_wait.percent_and_reset()
        means.update(self.progress.update(step, means["train/loss"], means["train/input_wait_percent"]))
        self.writer.write_scalars(step, means)
        self.last_train = means

    def _evaluate(self, state: TrainState, step: int) -> tuple[TrainState, dict[str, float]]:
        eval_metrics = self.last_eval = self.evaluate(state, step)
        if self.config.optimizer.reduce_on_plateau:
            state = self.steps.record_evaluation(state, jnp.float32(eval_metrics[self.config.plateau_metric]))
            scale = optim.plateau_scale(state.opt_state)
            self.writer.write_scalars(step, {"train/plateau_lr_scale": scale})
        return state, eval_metrics

    def _save(self, state: TrainState, batch: dict[str, jax.Array], step: int, eval_metrics) -> None:
        """A checkpoint of `state` after `step`, with the input's position; refused if the state is not sound."""
        position = self.train_stream.position
        positions = parallel.gather_from_processes([position.epoch, position.index])
        meta = {
            "step": step,
            "config": json.loads(self.config.to_json_best_effort()),
            "data_positions": positions.tolist(),
            **self.meta,
        }
        health = jax.device_get(self.steps.state_health(state, batch))
        problem = savable_problem(health, self.reference_max_abs, eval_metrics)
        if problem is not None:
            what = f"after step {step} {problem}"
            raise TrainingDiverged(_divergence_message(what, self.config, self.checkpoints.latest_step()))
        self.checkpoints.save(step, state, meta, metrics=eval_metrics)
        # Committed before the next step window starts: a run killed (kill -9, a lost machine) then loses less
        # than one checkpoint interval. Left in the background, a save was often still a temporary folder several
        # steps later, and a kill lost up to two intervals (mean 15.2 steps at interval 10).
        self.checkpoints.wait_until_saved()
        self.reference_max_abs = float(health["max_abs"])
        self.progress.pause_ended()
        self.input_wait.reset()


def _log_outputs(workdir: epath.Path, checkpoints) -> None:
    """Where the run's checkpoints, TensorBoard logs and pictures are."""
    log.info("Checkpoints: %s", checkpoints.directory)
    log.info("TensorBoard: tensorboard --logdir %s", workdir / runs.TENSORBOARD_DIR)
    if (workdir / runs.IMAGES_DIR).exists():
        log.info("Images (gray | predicted | truth): %s", workdir / runs.IMAGES_DIR)


# The split a folder source holds out for evaluation (`data.sources`: PATH/validation, PATH/test, ... when the
# folder has one, else `config.data.holdout_fraction` of the files by a stable hash).
FOLDER_HELD_OUT_SPLIT = "validation"


def _sources(config: ml_collections.ConfigDict, process_index: int, process_count: int):
    """(training source, evaluation source or None when the run does not evaluate, the split it reads, a line to
    print or None). Their classes must agree.

    A config that evaluates on its training split (the demo's,
    whose seven photos have nothing to hold out) pointed at a folder would pick "best" on photos it trains on
    while the folder's held-out share sits unused: there the held-out split is evaluated instead, with a line
    saying so; a folder with none (holdout_fraction 0, or train/ without a validation/ or test/ beside it) keeps
    evaluating on the training photos, also said."""

    def make(split):
        return data.make_source(config.data, split, process_index=process_index, process_count=process_count)

    train_source = make(config.data.train_split)
    wanted = config.data.eval_split
    if not config.eval_every:
        return train_source, None, wanted, None
    note, split = None, wanted
    if wanted == config.data.train_split and config.data.source.startswith("folder:"):
        try:
            eval_source, split = make(FOLDER_HELD_OUT_SPLIT), FOLDER_HELD_OUT_SPLIT
            note = (
                f"config.data.eval_split={wanted!r} is the training split; evaluating on the folder's held-out "
                f"split {FOLDER_HELD_OUT_SPLIT!r} instead (photos never trained on)."
            )
        except data.DataError:
            eval_source = make(wanted)
            note = (
                f"Evaluating on the training photos (config.data.eval_split={wanted!r}): the folder has no "
                f"validation/ or test/ split and config.data.holdout_fraction={config.data.holdout_fraction:g} held "
                "none of its photos out, so evaluation and the best checkpoint measure fit, not generalisation."
            )
    else:
        eval_source = make(wanted)
    train_classes, eval_classes = train_source.class_names, eval_source.class_names
    if train_classes and eval_classes and eval_classes != train_classes:
        raise data.DataError(
            f"The evaluation split has classes {eval_classes} but the training split has "
            f"{train_classes}: their labels would not match. Give both splits the same class subfolders."
        )
    return train_source, eval_source, split, note


def _restore_or_initialise(
    config, checkpoints, abstract_sharded, initialise, state_sharding, tx, model_kwargs, local_batch, gan=None
) -> tuple[TrainState, Position]:
    """The starting state and input position (the order of the module docstring)."""
    process_index, process_count = jax.process_index(), jax.process_count()
    if checkpoints.latest_step() is not None:
        # The newest step that reads whole; damaged newer ones are named and set aside (checkpointing).
        step, state, meta = checkpoints.restore_newest(abstract_sharded)
        log.info("Resuming from the checkpoint of step %d in %s", step, checkpoints.directory)
        return state, _position_for_process(meta, process_index, process_count)
    if config.resume:
        other = runs.open_checkpoints(config.resume, read_only=True)
        other.resolve_step("latest")  # a one-line error when it has none
        step, state, meta = other.restore_newest(abstract_sharded, set_aside=False)
        log.info("Continuing %s from its step %d", config.resume, step)
        return state, _position_for_process(meta, process_index, process_count)
    state = initialise()
    # The frozen VGG16-BN of the perceptual loss (none when its weight is 0); a checkpoint holds its own copy.
    if gan is not None and gan.uses_perceptual:
        perceptual = jax.device_put(gan.load_perceptual(), state_sharding.discriminator.perceptual)
        if jax.tree.structure(perceptual) != jax.tree.structure(state.discriminator.perceptual):
            raise ValueError(f"config.gan.perceptual_weights={gan.perceptual_weights!r} is not a VGG16-BN file.")
        state = state.replace(discriminator=state.discriminator.replace(perceptual=perceptual))
    if config.model_init:
        state = _replace_variables(state, _model_init_variables(config), state_sharding)
        log.info("Initialised the weights from %s", config.model_init)
    else:
        state = _load_pretrained(state, config.model.name, model_kwargs, state_sharding, tx)
    return state, Position()


def _model_init_variables(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The variables `config.model_init` names: a run directory's best step, else published weights of the config's
    model (a registry name or a weights file)."""
    if runs.run_path(config.model_init).is_dir():
        return runs.load_run(config.model_init, "best").variables
    return runs.published_run(config.model_init, config.model.name).variables


def _log_skipped(train_stream) -> None:
    """The input's skip summary, at the console's default verbosity."""
    skipped = train_stream.skipped
    if skipped.no_color or skipped.failed:
        log.info(
            "Input: %d photos without colour skipped, %d unreadable files skipped.",
            skipped.no_color,
            skipped.failed,
        )


def make_soundness_check(model, loss_fn: losses.LossFn):
    """`(state, batch) -> {"finite", "max_abs", "loss"}`: whether every parameter and batch statistic is finite,
    the largest of their magnitudes, and the loss on `batch` in inference mode; `savable_problem` judges them.

    Run before every save. The loss the train step reports was computed *before* its update, so an update that
    blows the weights up (to 1e12, or to inf) shows in no reported loss until the next step: checked here, a state
    that cannot colour a photo never reaches a checkpoint. The optimizer state is not checked: optax keeps
    infinities there on purpose (reduce_on_plateau's best value is inf before the first evaluation).

    With a discriminator (config.gan) the loss here is still `loss_fn`'s (the recipe's pixel term), not the whole
    GAN objective, on purpose: what the check guards is a generator whose colours are not finite, and the L1 on
    its ab is finite exactly when those are. The other terms add nothing to find: they are functions of the same ab
    (through a clipped Lab -> RGB) and of the VGG16-BN and the discriminator, whose weights `weights_health`
    already checks (finite, within MAX_WEIGHT_GROWTH), while computing them would run both networks at every save.
    """

    def state_health(state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        outputs = model.apply(state.variables(), batch["L"], train=False)
        return {**weights_health(state), "loss": jnp.mean(loss_fn(outputs, batch)["loss"])}

    return state_health


def weights_health(state: TrainState) -> dict[str, jax.Array]:
    """{"finite": every parameter and batch statistic is finite, "max_abs": the largest of their magnitudes}; with
    a discriminator (GanTrainState) its parameters and spectral-norm vectors too."""
    trained = (state.params, state.batch_stats)
    if isinstance(state, GanTrainState):
        trained += (state.discriminator.params, state.discriminator.spectral)
    leaves = [x for x in jax.tree.leaves(trained) if jnp.issubdtype(x.dtype, jnp.inexact)]
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
    max_abs = jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(jnp.float32) for x in leaves]))
    return {"finite": finite, "max_abs": max_abs}


# How much larger than in the last good checkpoint (or the starting state) the largest parameter or batch statistic
# may become before a save is refused as blown up. Healthy training moves weights by about the learning rate per
# step and a BatchNorm variance to the variance of its input (up to ~1e4 for raw-L inputs from a start of 1); an
# exploding update moves them by 1e10 and more while every value stays finite and the loss on one batch may too.
MAX_WEIGHT_GROWTH = 1e6


def savable_problem(
    health: dict[str, Any], reference_max_abs: float, eval_metrics: dict[str, float] | None
) -> str | None:
    """Why a state with this `health` (`make_soundness_check`) must not be saved, or None: a non-finite parameter
    or batch statistic, one over MAX_WEIGHT_GROWTH x the last good state's largest (at least 1), a non-finite loss
    on the checked batch, or a non-finite evaluation loss where an evaluation ran at this step."""
    max_abs = float(health["max_abs"])
    bound = MAX_WEIGHT_GROWTH * max(reference_max_abs, 1.0)
    if not bool(health["finite"]):
        return "the weights are not finite"
    if max_abs > bound:
        return (
            f"the weights blew up (largest |w| {max_abs:.3g}, the last good state's {reference_max_abs:.3g}; "
            f"the bound is {MAX_WEIGHT_GROWTH:g} times that)"
        )
    if not np.isfinite(float(health["loss"])):
        return f"the weights give a loss of {float(health['loss'])} on the last batch"
    if eval_metrics is not None and "val/loss" in eval_metrics and not np.isfinite(eval_metrics["val/loss"]):
        return f"the evaluation gave val/loss {eval_metrics['val/loss']}"
    return None


def _divergence_message(
    what: str, config: ml_collections.ConfigDict, last_good: int | None, discriminator: bool = False
) -> str:
    """What happened, the last good checkpoint, and what to change: the advice depends on whether gradient
    clipping is already on, and names the discriminator's learning rate where its loss diverged (config.gan)."""
    learning_rate = config.optimizer.learning_rate
    clip = config.optimizer.grad_clip_norm
    if discriminator:
        rate = config.gan.optimizer.learning_rate
        advice = f"lower the discriminator's config.gan.optimizer.learning_rate (now {rate:g}; try {rate / 10:g})"
    elif clip:
        advice = (
            f"gradient clipping is already on (config.optimizer.grad_clip_norm={clip:g}), so lower "
            f"config.optimizer.learning_rate (now {learning_rate:g}; try {learning_rate / 10:g})"
        )
    else:
        advice = (
            f"lower config.optimizer.learning_rate (now {learning_rate:g}; try {learning_rate / 10:g}) or "
            "clip gradients with config.optimizer.grad_clip_norm=1.0"
        )
    where = (
        f"the last good checkpoint is step {last_good}; rerun with the change to resume from it"
        if last_good is not None
        else "no checkpoint was saved; rerun with the change to start afresh"
    )
    return f"Training diverged: {what}; stopped without saving. {advice.capitalize()}; {where}."


_CHECKED_NAMES = {
    "train/loss": "training loss",
    "train/grad_norm": "training loss's gradient",
    "train/d_loss": "discriminator's loss",
    "train/d_grad_norm": "discriminator's gradient",
}


def _check_and_average(
    pending: list[dict[str, jax.Array]],
    step: int,
    config: ml_collections.ConfigDict,
    last_good: int | None,
) -> dict[str, float]:
    """Fetches the metrics of the steps since the last check; raises if any loss was not finite."""
    values = jax.device_get(pending)
    # The generator's loss and gradient, and the discriminator's where one trains (config.gan).
    checked = [k for k in ("train/loss", "train/grad_norm", "train/d_loss", "train/d_grad_norm") if k in values[0]]
    seen = np.array([[v[k] for k in checked] for v in values], np.float64)
    finite = np.all(np.isfinite(seen), axis=1)
    if not np.all(finite):
        bad_index = int(np.argmin(finite))
        bad = step - len(values) + 1 + bad_index
        name = _CHECKED_NAMES[checked[int(np.argmin(np.isfinite(seen[bad_index])))]]
        what = f"the {name} became {seen[bad_index][~np.isfinite(seen[bad_index])][0]} at step {bad}"
        raise TrainingDiverged(_divergence_message(what, config, last_good, discriminator="discriminator" in name))
    return {k: float(np.mean([v[k] for v in values])) for k in values[0]}


def _position_for_process(meta: dict[str, Any], process_index: int, process_count: int) -> Position:
    positions = meta.get("data_positions") or []
    if len(positions) == process_count:
        return Position(*positions[process_index])
    # Different number of processes than the run that saved: continue from an approximate place.
    log.warning(
        "Checkpoint saved by %d processes, resuming with %d: input order restarts.",
        len(positions),
        process_count,
    )
    return Position(0, 0) if not positions else Position(int(positions[0][0]), 0)


def _load_pretrained(state, model_name, model_kwargs, state_sharding, tx) -> TrainState:
    variables = jax.device_get(state.variables())
    loaded = models.load_pretrained(model_name, variables, model_kwargs)
    if loaded is variables:
        return state
    state = _replace_variables(state, loaded, state_sharding)
    return state.replace(opt_state=jax.jit(tx.init, out_shardings=state_sharding.opt_state)(state.params))


def _replace_variables(state: TrainState, variables: dict[str, Any], state_sharding: TrainState) -> TrainState:
    updates = {}
    for collection in ("params", "batch_stats", "frozen"):
        if collection in variables:
            target = getattr(state, collection)
            new = variables[collection]
            if jax.tree.structure(new) != jax.tree.structure(target):
                raise ValueError(
                    f"The {collection} loaded do not match the model's structure; check that config.model matches "
                    "the run or file the weights come from."
                )
            updates[collection] = jax.device_put(new, getattr(state_sharding, collection))
    return state.replace(**updates)
