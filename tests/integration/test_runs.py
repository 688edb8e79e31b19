"""The run directory (`colorjax.runs`) and the one evaluator (`colorjax.evaluation.evaluator`) that training and
`python -m colorjax.evaluate` share.

The run is the session's shared one (`trained_run`, tests/helpers/fixtures.py): 6 steps, checkpoints and
evaluations at steps 2, 4 and 6, best by val/ab_l2_error."""

import json

import numpy as np
import pytest

from colorjax import checkpointing, runs
from colorjax.cli import evaluate as evaluate_cli


def _eval_scalars(workdir):
    """val/... scalars of every in-training evaluation, by step, from the TensorBoard events."""
    import tensorflow as tf

    found: dict[int, dict[str, float]] = {}
    for events in (workdir / runs.TENSORBOARD_DIR).glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag.startswith("val/") and value.HasField("tensor"):
                    array = tf.make_ndarray(value.tensor)
                    if array.ndim == 0:  # scalars (the image grid is a tensor too)
                        found.setdefault(event.step, {})[value.tag] = float(array)
    return found


def test_load_run_latest_best_and_a_number(trained_run):
    latest = runs.load_run(trained_run)
    assert latest.step == 6 and latest.model_name == "regression"
    assert set(latest.variables) <= set(checkpointing.VARIABLE_COLLECTIONS)
    assert "opt_state" not in latest.variables and "params" in latest.variables
    errors = {step: s["val/ab_l2_error"] for step, s in _eval_scalars(trained_run).items()}
    assert sorted(errors) == [2, 4, 6]
    best = runs.load_run(trained_run, "best")
    assert best.step == min(errors, key=errors.get), errors
    at_four = runs.load_run(trained_run, 4)
    assert at_four.step == 4
    difference = jax_tree_max_difference(at_four.variables, latest.variables)
    assert difference > 0  # a different checkpoint, not the latest again


def jax_tree_max_difference(a, b) -> float:
    import jax

    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize(
    ("workdir", "step", "message"),
    [
        ("missing", "latest", "does not exist; pass the --workdir of a training run"),
        ("run", 5, "No checkpoint for step 5 in .*available: 2, 4, 6"),
        ("empty", "best", "No checkpoint in .*train first or check --workdir"),
    ],
)
def test_load_run_errors_are_one_line(trained_run, tmp_path, workdir, step, message):
    folder = {"missing": tmp_path / "nothing", "run": trained_run, "empty": tmp_path}[workdir]
    with pytest.raises(checkpointing.CheckpointError, match=message) as error:
        runs.load_run(folder, step)
    assert "\n" not in str(error.value)


def test_training_and_standalone_evaluation_give_the_same_numbers(trained_run, tmp_path):
    """The trainer's evaluation at step 4 and `python -m colorjax.evaluate --step 4` on the same split are one
    evaluator: the same numbers (up to float summation order: their batch sizes differ)."""
    in_training = _eval_scalars(trained_run)[4]
    assert evaluate_cli.main(["--workdir", str(trained_run), "--step", "4", "--output", str(tmp_path)]) == 0
    standalone = json.loads((tmp_path / "metrics.json").read_text())["prediction"]
    compared = 0
    for tag, value in in_training.items():
        name = tag.removeprefix("val/")
        if name in standalone and standalone[name] is not None:
            assert value == pytest.approx(standalone[name], rel=1e-4, abs=1e-4), name
            compared += 1
    assert compared >= 8, in_training
