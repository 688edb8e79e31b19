"""The trainer: data parallelism, resumption, divergence, and what a run leaves on disk. (Preemption of a live
training process: tests/system/test_train_preemption.py.)"""

import ast
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers.paths import REPO
from helpers.runs import restored_state, tiny_config

from colorjax import checkpointing, data, runs
from colorjax.train import trainer as train


def assert_trees_close(a, b, atol):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


@pytest.mark.slow
def test_run_leaves_checkpoints_logs_config_and_pictures(photo_folder, tmp_path):
    config = tiny_config(f"folder:{photo_folder}", eval_every=4, best_metric="val/loss")
    results = train.train_and_evaluate(config, tmp_path / "run")
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "regression"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "images").iterdir()) == [
        "step_0000004.png",
        "step_0000008.png",
    ]
    assert set(runs.open_checkpoints(run, read_only=True).all_steps()) == {2, 4, 6, 8}
    assert np.isfinite(results["train/loss"]) and np.isfinite(results["val/loss"])
    state, meta = restored_state(run)
    assert int(state["step"]) == 8 and meta["class_names"] == ["cats", "dogs"]
    assert len(meta["data_positions"]) == 1


def test_keeps_latest_and_best_checkpoints(photo_folder, tmp_path):
    config = tiny_config(
        f"folder:{photo_folder}",
        num_train_steps=12,
        eval_every=2,
        keep_checkpoints=2,
        keep_best_checkpoints=1,
        best_metric="val/loss",
    )
    train.train_and_evaluate(config, tmp_path / "run")
    checkpoints = runs.open_checkpoints(tmp_path / "run", read_only=True)
    steps = checkpoints.all_steps()
    best = checkpoints.best_step()
    assert {10, 12} <= set(steps) and best in steps and len(steps) <= 3
    # "best" is the evaluated step with the lowest val/loss the run logged (every evaluated step was saved).
    losses = logged_scalars(tmp_path / "run", "val/loss")
    assert sorted(losses) == [2, 4, 6, 8, 10, 12]
    assert losses[best] == min(losses.values())


def logged_scalars(workdir: Path, tag: str) -> dict[int, float]:
    """{step: value} of one scalar from a run's TensorBoard event files."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    values = {}
    for path in sorted((workdir / "tensorboard").rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.slow
def test_crash_and_resume_equals_uninterrupted_training(photo_folder, tmp_path, monkeypatch):
    """Train 2N steps == train N, crash, rerun the same command to resume, train to 2N."""
    config = tiny_config(f"folder:{photo_folder}", num_train_steps=8, checkpoint_every=4)
    train.train_and_evaluate(config, tmp_path / "straight")

    calls = {"n": 0}
    original_next = data.TrainStream.__next__

    def crash_after_six_batches(self):
        calls["n"] += 1
        if calls["n"] > 6:  # Dies during step 7: steps 5 and 6 are lost, as in a real crash.
            raise RuntimeError("simulated crash")
        return original_next(self)

    monkeypatch.setattr(data.TrainStream, "__next__", crash_after_six_batches)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.train_and_evaluate(config, tmp_path / "resumed")
    monkeypatch.setattr(data.TrainStream, "__next__", original_next)
    assert runs.open_checkpoints(tmp_path / "resumed", read_only=True).latest_step() == 4

    train.train_and_evaluate(config, tmp_path / "resumed")
    straight, _ = restored_state(tmp_path / "straight")
    resumed, meta = restored_state(tmp_path / "resumed")
    assert int(resumed["step"]) == 8
    assert_trees_close(straight["params"], resumed["params"], atol=1e-6)
    assert_trees_close(straight["batch_stats"], resumed["batch_stats"], atol=1e-6)
    assert_trees_close(straight["opt_state"], resumed["opt_state"], atol=1e-6)


def test_divergence_keeps_the_last_good_checkpoint_and_names_it(photo_folder, tmp_path):
    """Resumed at step 2 with a huge learning rate: step 3's reported loss is finite (computed before its
    update) but its update blows the weights up; that state must not be saved (it once was, and coloured every
    photo black), and the message names step 2 and, clipping being on, advises the learning rate."""
    good = tiny_config(f"folder:{photo_folder}", num_train_steps=2, checkpoint_every=2)
    good.optimizer.grad_clip_norm = 1.0
    train.train_and_evaluate(good, tmp_path / "run")
    bad = tiny_config(
        f"folder:{photo_folder}",
        num_train_steps=6,
        checkpoint_every=1,
        log_every=1,
        optimizer=dict(name="adam", learning_rate=1e30, grad_clip_norm=1.0),
    )
    with pytest.raises(train.TrainingDiverged) as caught:
        train.train_and_evaluate(bad, tmp_path / "run")
    message = str(caught.value)
    assert "the last good checkpoint is step 2" in message
    assert "Gradient clipping is already on" in message and "try 1e+29" in message
    state, _ = restored_state(tmp_path / "run")
    assert int(state["step"]) == 2
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state["params"]))


def _blow_up_at_step_3(monkeypatch, blow_up):
    """Makes the trainer's step 3 end with `blow_up(params)` instead of its own update's parameters."""
    real = train.make_train_step

    def make_train_step(*args, **kwargs):
        step_fn = real(*args, **kwargs)

        def train_step(state, batch, rng):
            new_state, metrics = step_fn(state, batch, rng)
            exploded = blow_up(new_state.params)
            params = jax.tree.map(lambda x, y: jax.numpy.where(state.step == 2, y, x), new_state.params, exploded)
            return new_state.replace(params=params), metrics

        return train_step

    monkeypatch.setattr(train, "make_train_step", make_train_step)


@pytest.mark.parametrize("blown_up", ["weights", "evaluation"])
def test_a_state_blown_up_on_a_save_step_is_not_saved(photo_folder, tmp_path, monkeypatch, blown_up):
    """Resumed at step 2, step 3 (a save step with an evaluation) blows up in a way the loss on the checked batch
    does not show: weights of 1e12, finite and with a finite loss (the chroma head's bias: the colours are clipped),
    or an evaluation loss of NaN. Such states once reached checkpoints (learning rate 1e12: max |w| 1.15e12 saved
    after `val/loss nan`) and coloured every photo black; the run must stop keeping step 2."""
    good = tiny_config(f"folder:{photo_folder}", num_train_steps=2, checkpoint_every=2)
    train.train_and_evaluate(good, tmp_path / "run")
    if blown_up == "weights":
        _blow_up_at_step_3(
            monkeypatch,
            lambda params: {
                **params,
                "chroma_head": {**params["chroma_head"], "bias": params["chroma_head"]["bias"] + 1e12},
            },
        )
    else:
        real_evaluation = train._Evaluation.__call__
        monkeypatch.setattr(
            train._Evaluation,
            "__call__",
            lambda self, state, step: {**real_evaluation(self, state, step), "val/loss": float("nan")},
        )
    bad = tiny_config(f"folder:{photo_folder}", num_train_steps=6, checkpoint_every=1, eval_every=1, log_every=1)
    with pytest.raises(train.TrainingDiverged) as caught:
        train.train_and_evaluate(bad, tmp_path / "run")
    message = str(caught.value)
    assert "after step 3" in message and "the last good checkpoint is step 2" in message
    assert ("blew up (largest |w| 1e+12" if blown_up == "weights" else "val/loss nan") in message
    assert runs.open_checkpoints(tmp_path / "run", read_only=True).all_steps() == [2]


def test_reduce_on_plateau_saves_before_its_first_evaluation(photo_folder, tmp_path):
    """optax's plateau state holds best_value = inf until the first evaluation; the check before a save once
    refused that as a diverged state, so a plateau run could not save before it evaluated."""
    config = tiny_config(
        f"folder:{photo_folder}",
        num_train_steps=4,
        checkpoint_every=2,
        eval_every=4,
        optimizer=dict(reduce_on_plateau={"patience": 1}),
    )
    train.train_and_evaluate(config, tmp_path / "run")
    assert runs.open_checkpoints(tmp_path / "run", read_only=True).all_steps() == [2, 4]


def test_each_checkpoint_is_committed_before_the_next_steps(photo_folder, tmp_path, monkeypatch):
    """kill -9 lost up to two checkpoint intervals: an asynchronous save was often still Orbax's temporary folder
    several steps later. Each save is now committed before the next batch is taken, so a kill loses less than one
    interval: at every batch after a save, that step's folder is there under its own name."""
    from colorjax import checkpointing

    config = tiny_config(f"folder:{photo_folder}", num_train_steps=6, checkpoint_every=2)
    directory = tmp_path / "run" / "checkpoints"
    events = []
    real_save, real_next = checkpointing.Checkpoints.save, data.TrainStream.__next__

    def save(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        events.append(("saved", step))

    def next_batch(self):
        committed = sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []
        events.append(("batch", committed))
        return real_next(self)

    monkeypatch.setattr(checkpointing.Checkpoints, "save", save)
    monkeypatch.setattr(data.TrainStream, "__next__", next_batch)
    train.train_and_evaluate(config, tmp_path / "run")
    saved = [step for kind, step in events if kind == "saved"]
    assert saved == [2, 4, 6]
    for (kind, step), (next_kind, committed) in itertools.pairwise(events):
        if kind == "saved" and next_kind == "batch":
            assert step in committed, events


def test_bad_batch_size_is_a_clear_error(photo_folder, tmp_path):
    """A global batch that 4 (fake CPU) devices cannot share evenly: one line naming the devices and the fix."""
    code = f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from helpers.runs import tiny_config
        from colorjax.train import trainer as train
        config = tiny_config("folder:{photo_folder}", batch_size=6)
        try:
            train.train_and_evaluate(config, {str(tmp_path / "run")!r})
        except ValueError as error:
            print("ERROR", repr(str(error)))
    """
    done = _run_python(code, {"JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stdout[-3000:]
    message = ast.literal_eval(errors[0].split(" ", 1)[1])  # the repr printed above
    assert "\n" not in message
    assert "batch size 6 must be a multiple of the number of devices (4)" in message
    assert "config.batch_size to e.g. 4" in message


def _run_python(code: str, env_extra: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_one_step_on_eight_devices_equals_one_device(photo_folder, tmp_path):
    """Data parallel over a Mesh: same loss, params and batch_stats (global-batch BatchNorm) as on 1 device."""
    code = f"""
        import json, sys, jax, numpy as np
        sys.path.insert(0, {str(REPO / "tests")!r})
        from helpers.runs import tiny_config
        from colorjax import checkpointing
        from colorjax.train import trainer as train
        config = tiny_config("folder:{photo_folder}", num_train_steps=1, log_every=1, checkpoint_every=1)
        workdir = sys.argv[-1] if False else {str(tmp_path)!r} + "/devices_" + str(jax.device_count())
        results = train.train_and_evaluate(config, workdir)
        print("RESULT", json.dumps({{"devices": jax.device_count(), "loss": results["train/loss"]}}))
    """
    outputs = {}
    for devices in ("1", "8"):
        done = _run_python(code, {"JAX_NUM_CPU_DEVICES": devices, "JAX_PLATFORMS": "cpu"})
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
        outputs[devices] = json.loads(line.split(" ", 1)[1])
    assert outputs["1"]["devices"] == 1 and outputs["8"]["devices"] == 8
    assert abs(outputs["1"]["loss"] - outputs["8"]["loss"]) <= 1e-5
    one, _ = restored_state(tmp_path / "devices_1")
    eight, _ = restored_state(tmp_path / "devices_8")
    assert_trees_close(one["params"], eight["params"], atol=1e-5)
    assert_trees_close(one["batch_stats"], eight["batch_stats"], atol=1e-5)


def test_a_start_refused_for_a_changed_model_leaves_the_config_as_it_was(photo_folder, tmp_path):
    """A rerun whose model does not fit the run's checkpoints stops in one line; it once rewrote config.json to the
    refused model first, so that the run's config no longer described its checkpoints."""
    workdir = tmp_path / "run"
    train.train_and_evaluate(tiny_config(f"folder:{photo_folder}", num_train_steps=2), workdir)
    before = (workdir / "config.json").read_bytes()
    wider = tiny_config(f"folder:{photo_folder}", num_train_steps=4, model=dict(name="regression", width=8))
    with pytest.raises(checkpointing.CheckpointError, match="does not fit this config's model"):
        train.train_and_evaluate(wider, workdir)
    assert (workdir / "config.json").read_bytes() == before
    assert sorted(p.name for p in workdir.glob("config*.json")) == ["config.json"]


def test_resuming_with_a_changed_config_says_what_changed_and_keeps_the_old_one(photo_folder, tmp_path, capsys):
    workdir = tmp_path / "run"
    train.train_and_evaluate(tiny_config(f"folder:{photo_folder}", num_train_steps=2), workdir)
    longer = tiny_config(f"folder:{photo_folder}", num_train_steps=4)
    capsys.readouterr()
    train.train_and_evaluate(longer, workdir)
    said = capsys.readouterr().out  # colorjax's console handler writes to stdout
    assert "config.num_train_steps: 2 -> 4" in said and "config.1.json" in said
    assert json.loads((workdir / "config.1.json").read_text())["num_train_steps"] == 2
    assert json.loads((workdir / "config.json").read_text())["num_train_steps"] == 4


def test_a_ctrl_c_while_a_stopped_run_finishes_ends_it_in_one_line(monkeypatch, capsys):
    """After the first Ctrl-C (a clean stop, exit 75), a second one while the process finished raised
    KeyboardInterrupt into the last save or the threads joined at exit: a 45-line traceback."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    preemption = train.Preemption()
    try:
        preemption._handle(signal.SIGINT, None)  # the first Ctrl-C: save and stop
        preemption.restore()
        exits = []
        monkeypatch.setattr(os, "_exit", exits.append)
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the second, while the run finishes
        except KeyboardInterrupt:
            pytest.fail("a second Ctrl-C raised KeyboardInterrupt into the run's shutdown")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert exits == [130]
    assert capsys.readouterr().err == "Interrupted.\n"
