"""Nothing lost, nothing silently wrong: damaged checkpoints, unfinished saves, failed starts, the evaluation split
of a folder source, and a quiet console (issue 14, points 3, 9, 11 and 12).

One real tiny run (module scope) serves every test; each damage is done to a copy of it."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers.paths import REPO
from helpers.photos import make_photo
from helpers.runs import tiny_config
from PIL import Image

from colorjax import checkpointing, data, runs
from colorjax.data import decode
from colorjax.train import trainer as train


class _Records(logging.Handler):
    """Collects the `colorjax` logger's messages (its console handler writes to stdout, unseen by caplog)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def said():
    handler = _Records()
    logger = logging.getLogger("colorjax")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _photos(root: Path, count: int) -> Path:
    rng = np.random.default_rng(5)
    root.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(make_photo(rng, 40, 48, hue_shift=i)).save(root / f"{i:02d}.jpg", quality=95)
    return root


def _config(photos: Path, **overrides):
    """tiny_config evaluating on "train" (as the demo does) over a folder that holds a quarter of its photos out."""
    settings = dict(num_train_steps=8, checkpoint_every=2, eval_every=4, best_metric="val/loss")
    settings.update(overrides)
    config = tiny_config(f"folder:{photos}", **settings)
    config.data.holdout_fraction = 0.25
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(workdir, photos, what the run said): 8 steps, checkpoints at 2, 4, 6, 8, evaluations at 4 and 8."""
    photos = _photos(tmp_path_factory.mktemp("photos") / "photos", 24)
    workdir = tmp_path_factory.mktemp("run") / "run"
    handler = _Records()
    logger = logging.getLogger("colorjax")
    logger.addHandler(handler)
    try:
        train.train_and_evaluate(_config(photos), workdir)
    finally:
        logger.removeHandler(handler)
    return workdir, photos, handler.lines


def _copy(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained[0], copy)
    return copy


def _damage(step_dir: Path, kind: str) -> None:
    if kind == "truncated data files":
        for path in (step_dir / "state" / "ocdbt.process_0" / "d").iterdir():
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 10])
    elif kind == "emptied _METADATA":
        (step_dir / "state" / "_METADATA").write_bytes(b"")
    elif kind == "emptied meta":
        (step_dir / "meta" / "metadata").write_bytes(b"")
    elif kind == "empty step folder":
        shutil.rmtree(step_dir)
        step_dir.mkdir()
    elif kind == "emptied _CHECKPOINT_METADATA":
        (step_dir / "_CHECKPOINT_METADATA").write_bytes(b"")
    else:
        raise ValueError(kind)


REASONS = {
    "truncated data files": "from its data files",
    "emptied _METADATA": "state/_METADATA is empty or not JSON",
    "emptied meta": "meta/metadata is empty or not JSON",
    "empty step folder": "its folder is empty",
}


# ----------------------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.parametrize("kind", list(REASONS))
def test_inference_falls_back_from_a_damaged_latest_step_and_refuses_it_by_number(trained, tmp_path, kind, caplog):
    """load_run (colorize, evaluate, the app) with "latest": the newest step that reads, one warning line naming
    both steps; the damaged step asked by number: one line naming its folder; only variables are read."""
    workdir = _copy(trained, tmp_path)
    _damage(workdir / "checkpoints" / "8", kind)
    with caplog.at_level(logging.WARNING):
        run = runs.load_run(workdir, "latest")
    assert run.step == 6
    assert set(run.variables) <= set(checkpointing.VARIABLE_COLLECTIONS) and "opt_state" not in run.variables
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "step 8" in warnings[0] and REASONS[kind] in warnings[0] and "using step 6" in warnings[0]
    assert "\n" not in warnings[0]
    with pytest.raises(checkpointing.CheckpointError) as error:
        runs.load_run(workdir, 8)
    message = str(error.value)
    assert "\n" not in message and str(workdir / "checkpoints" / "8") in message and REASONS[kind] in message
    assert "another step (2, 4, 6)" in message
    assert runs.load_run(workdir, 6).step == 6  # the others still load by number


def test_a_damaged_best_step_falls_back_to_the_newest_that_reads(trained, tmp_path):
    workdir = _copy(trained, tmp_path)
    best = runs.load_run(workdir, "best").step
    assert best in (4, 8)
    _damage(workdir / "checkpoints" / str(best), "truncated data files")
    assert runs.load_run(workdir, "best").step == (6 if best == 8 else 8)


def test_damaged_bookkeeping_alone_keeps_the_step(trained, tmp_path):
    """Orbax's _CHECKPOINT_METADATA holds save timestamps: its state and meta read whole, so step 8 is used."""
    workdir = _copy(trained, tmp_path)
    _damage(workdir / "checkpoints" / "8", "emptied _CHECKPOINT_METADATA")
    assert runs.load_run(workdir, "latest").step == 8
    assert runs.load_run(workdir, 8).step == 8


def test_training_resumes_from_the_newest_intact_step_and_sets_the_damaged_aside(trained, tmp_path, said):
    """Steps 8, 6 and 4 damaged three ways: the run resumes from step 2 with one line naming them, moves them to
    corrupt_checkpoints/ (nothing deleted), and saves its new steps 4..10 where the damaged ones were."""
    workdir = _copy(trained, tmp_path)
    _damage(workdir / "checkpoints" / "8", "empty step folder")
    _damage(workdir / "checkpoints" / "6", "truncated data files")
    _damage(workdir / "checkpoints" / "4", "emptied _METADATA")
    train.train_and_evaluate(_config(trained[1], num_train_steps=10, eval_every=0), workdir)
    damaged = [line for line in said if "damaged" in line]
    assert len(damaged) == 1, said
    assert "step 8, 6, 4" in damaged[0] and "resuming from step 2" in damaged[0]
    assert "corrupt_checkpoints" in damaged[0]
    assert sorted(os.listdir(workdir / "corrupt_checkpoints")) == ["4", "6", "8"]
    assert (workdir / "corrupt_checkpoints" / "6" / "state").is_dir()
    checkpoints = runs.open_checkpoints(workdir, read_only=True)
    assert checkpoints.all_steps() == [2, 4, 6, 8, 10]
    state, meta = checkpoints.restore(10)
    assert int(state["step"]) == 10 and meta["step"] == 10
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state["params"]))


def test_every_step_damaged_is_one_line_everywhere(trained, tmp_path):
    workdir = _copy(trained, tmp_path)
    for step, kind in zip((2, 4, 6, 8), REASONS, strict=True):
        _damage(workdir / "checkpoints" / str(step), kind)
    for load in (lambda: runs.load_run(workdir, "latest"), lambda: runs.load_run(workdir, "best")):
        with pytest.raises(checkpointing.CheckpointError, match="Every checkpoint in .* is damaged") as error:
            load()
        assert "\n" not in str(error.value) and "steps 8, 6, 4, 2" in str(error.value)
    with pytest.raises(checkpointing.CheckpointError, match="Every checkpoint in .* is damaged") as error:
        train.train_and_evaluate(_config(trained[1], eval_every=0), workdir)
    assert "\n" not in str(error.value)
    assert not (workdir / "corrupt_checkpoints").exists()  # nothing moved when nothing can be resumed
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4", "6", "8"]


def test_a_checkpoint_of_another_model_is_not_called_damaged(trained, tmp_path):
    """A restore that fails because the config's model changed is a one-line error, and no step is set aside."""
    workdir = _copy(trained, tmp_path)
    wider = _config(trained[1], eval_every=0, num_train_steps=10, model=dict(name="regression", width=8))
    with pytest.raises(checkpointing.CheckpointError, match="does not fit this config's model") as error:
        train.train_and_evaluate(wider, workdir)
    assert "\n" not in str(error.value)
    assert not (workdir / "corrupt_checkpoints").exists()
    assert runs.open_checkpoints(workdir, read_only=True).all_steps() == [2, 4, 6, 8]


# ------------------------------------------------------------------------------ unfinished saves, failed starts


def test_an_unfinished_save_is_removed_with_one_line(trained, tmp_path, said):
    workdir = _copy(trained, tmp_path)
    unfinished = workdir / "checkpoints" / "10.orbax-checkpoint-tmp-1234567890"
    shutil.copytree(workdir / "checkpoints" / "8", unfinished)  # as a save killed before its rename
    checkpoints = runs.open_checkpoints(workdir, _config(trained[1]))
    checkpoints.close()
    assert not unfinished.exists()
    assert checkpoints.all_steps() == [2, 4, 6, 8]
    assert [line for line in said if "unfinished" in line] == [
        f"Removed 1 unfinished checkpoint save(s) in {workdir / 'checkpoints'} (10.orbax-checkpoint-tmp-1234567890), "
        "left by a run stopped while saving."
    ]
    runs.open_checkpoints(workdir, read_only=True)  # read-only opens (inference) never remove anything
    assert len(said) == 1


def test_a_failed_start_leaves_no_run_directory_and_never_removes_a_run(trained, tmp_path):
    missing = tmp_path / "no_photos_here"
    with pytest.raises(data.DataError, match="does not exist"):
        train.train_and_evaluate(tiny_config(f"folder:{missing}"), tmp_path / "new" / "runs" / "run")
    assert not (tmp_path / "new").exists()  # nor the folders above it that the start made
    (tmp_path / "runs").mkdir()
    with pytest.raises(data.DataError, match="does not exist"):
        train.train_and_evaluate(tiny_config(f"folder:{missing}"), tmp_path / "runs" / "run")
    assert (tmp_path / "runs").is_dir() and not (tmp_path / "runs" / "run").exists()
    workdir = _copy(trained, tmp_path)
    with pytest.raises(data.DataError, match="does not exist"):
        train.train_and_evaluate(tiny_config(f"folder:{missing}"), workdir)
    assert runs.open_checkpoints(workdir, read_only=True).all_steps() == [2, 4, 6, 8]
    existing = tmp_path / "made_by_the_user"
    existing.mkdir()
    with pytest.raises(data.DataError, match="does not exist"):
        train.train_and_evaluate(tiny_config(f"folder:{missing}"), existing)
    assert existing.is_dir()  # not created by that start: kept


# ------------------------------------------------------------------------------------------ evaluation split


def test_a_folder_source_evaluates_on_its_held_out_photos(trained):
    """The config says eval_split "train" (as the demo does); on a folder that holds a quarter out, the run
    evaluates on that quarter, says so, says how many images, and records the split in config.json."""
    workdir, photos, lines = trained
    config = _config(photos)
    held_out = data.make_source(config.data, "validation")
    training = data.make_source(config.data, "train")
    assert 0 < held_out.num_examples < 24 and held_out.num_examples + training.num_examples == 24
    assert not set(held_out.paths) & set(training.paths)
    assert any("evaluating on the folder's held-out split 'validation' instead" in line for line in lines), lines
    assert f"Evaluating on folder {photos} (split 'validation'): {held_out.num_examples} images." in lines
    assert runs.read_config(workdir)["data"]["eval_split"] == "validation"
    assert runs.load_run(workdir).config.data.eval_split == "validation"  # what `evaluate` defaults to


def test_a_folder_with_nothing_held_out_evaluates_on_train_and_says_so(trained):
    config = _config(trained[1])
    config.data.holdout_fraction = 0.0
    _, evaluation, split, note = train._sources(config, 0, 1)
    assert split == "train" and evaluation.num_examples == 24
    assert "Evaluating on the training photos" in note and "holdout_fraction=0" in note
    samples = tiny_config("samples", eval_every=4)  # the demo's own photos: evaluated on train as configured
    assert train._sources(samples, 0, 1)[2:] == ("train", None)


# --------------------------------------------------------------------------------------------- a quiet console


def test_truncated_and_padded_jpegs_go_to_pillow(tmp_path):
    """A JPEG that does not end with its EOI marker is decoded by Pillow (TF's libjpeg prints "Premature end of
    JPEG data" to the console from C at every read); appended bytes change nothing in the pixels."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    path = tmp_path / "a.jpg"
    Image.fromarray(make_photo(rng, 32, 40)).save(path, quality=90)
    good = path.read_bytes()
    assert decode.probe(good, 10**6)[0] == decode.TF_JPEG
    assert decode.probe(good[: len(good) * 2 // 3], 10**6)[0] in (decode.PYTHON, decode.UNREADABLE)
    assert decode.probe(good + b"\0" * 16, 10**6)[0] == decode.PYTHON
    plain, route, _ = decode.tf_decode(tf.constant(good), 10**6)
    padded, padded_route, _ = decode.tf_decode(tf.constant(good + b"\0" * 16), 10**6)
    assert int(route) == decode.TF_JPEG and int(padded_route) == decode.PYTHON
    np.testing.assert_array_equal(plain.numpy(), padded.numpy())


def test_tensorflow_start_up_notes_follow_its_log_level():
    """TensorFlow prints its oneDNN note while loading, before it reads TF_CPP_MIN_LOG_LEVEL: at colorjax's level
    (2) `import_tensorflow` holds it back, at 0 (`train --verbosity 0`) it is shown; other lines pass through.
    Depends on the CPU: TensorFlow prints that note only where oneDNN is on by default (AVX-512); elsewhere the
    level-2 half is checked and the test skips (it once failed on an AVX2 machine)."""
    code = "import os; from colorjax import data; os.write(2, b'kept\\n'); data.hide_accelerators_from_tensorflow()"
    outputs = {}
    for level in ("2", "0"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": level}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[level] = done.stderr
    assert outputs["2"] == "kept\n"
    if "oneDNN custom operations are on" not in outputs["0"]:
        pytest.skip(
            "TensorFlow prints no oneDNN note on this machine (it does only where its oneDNN ops are on by default: "
            "x86 CPUs with AVX-512, unless TF_ENABLE_ONEDNN_OPTS=0); the level-0 half needs one"
        )
    assert outputs["0"].startswith("kept\n")


def test_orbax_routine_warning_shows_only_at_info_verbosity(trained, tmp_path, caplog):
    from absl import logging as absl_logging

    checkpoints = runs.open_checkpoints(_copy(trained, tmp_path), _config(trained[1]), async_save=False)
    state, meta = checkpoints.restore(8)
    level = absl_logging.get_verbosity()
    try:
        absl_logging.set_verbosity(absl_logging.WARNING)
        checkpoints.save(10, state, meta)  # no metrics: Orbax warns "Requested `tracked_metric`..."
        quiet = [r for r in caplog.records if "tracked_metric" in r.getMessage()]
        absl_logging.set_verbosity(absl_logging.INFO)
        checkpoints.save(12, state, meta)
        verbose = [r for r in caplog.records if "tracked_metric" in r.getMessage()]
    finally:
        absl_logging.set_verbosity(level)
        checkpoints.close()
    assert quiet == []
    assert len(verbose) == 1 and verbose[0].levelno == logging.INFO


def test_orbax_missing_bookkeeping_warning_shows_only_at_info_verbosity(tmp_path, caplog):
    """Orbax's "Metadata file does not exist: .../_CHECKPOINT_METADATA" reached the console at the default
    verbosity (as `W1207 ... checkpoint.py:202]` under absl's handler) when a start was refused."""
    from absl import logging as absl_logging

    checkpoints = runs.open_checkpoints(tmp_path / "run", _config(tmp_path), async_save=False)
    message = f"Metadata file does not exist: {tmp_path}/run/checkpoints/4/state/_CHECKPOINT_METADATA"
    level = absl_logging.get_verbosity()
    try:
        absl_logging.set_verbosity(absl_logging.WARNING)
        logging.getLogger("absl").warning(message)
        quiet = [r for r in caplog.records if r.getMessage() == message]
        absl_logging.set_verbosity(absl_logging.INFO)
        logging.getLogger("absl").warning(message)
        verbose = [r for r in caplog.records if r.getMessage() == message]
    finally:
        absl_logging.set_verbosity(level)
        checkpoints.close()
    assert quiet == []
    assert len(verbose) == 1 and verbose[0].levelno == logging.INFO


@pytest.mark.slow
def test_training_command_keeps_the_console_quiet(tmp_path):
    """`python -m colorjax.train` at the default verbosity, on a folder with a truncated JPEG, evaluating and
    saving checkpoints with and without metrics: no TensorFlow start-up lines, no libjpeg complaint, no Orbax
    warning on stderr; the truncated file is reported once on stdout."""
    photos = _photos(tmp_path / "photos", 12)
    good = (photos / "00.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(good[: len(good) * 2 // 3])
    workdir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "colorjax.train",
            "--config",
            f"{REPO / 'configs' / 'demo.py'}:tiny",
            "--workdir",
            str(workdir),
            f"--config.data.source=folder:{photos}",
            "--config.num_train_steps=6",
            "--config.checkpoint_every=2",
            "--config.eval_every=3",
            "--config.log_every=3",
            "--config.data.max_failed_fraction=0.5",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in ("oneDNN", "InitializeLog", "cpu_feature_guard", "Premature end of JPEG", "tracked_metric"):
        assert noise not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip() == "", done.stderr[-3000:]
    assert "truncated.jpg" in done.stdout, done.stdout
    assert "step 6/6" in done.stdout and runs.open_checkpoints(workdir, read_only=True).latest_step() == 6
