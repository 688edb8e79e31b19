"""colorjax: fully automatic image colorization in JAX/Flax.

A gray photo in, a plausible colour photo out. One home per concept (docs/architecture.md draws the data flow):

- `colorjax.config_lib`: `base_config()`, every config field with its one default.
- `colorjax.color`, `colorjax.quantize`: sRGB <-> CIE Lab / Luv (JAX and TF), the 313 ab bins, rebalancing.
- `colorjax.data`: sources (TFDS, folders, the wheel-shipped samples), decoding and crops, the resumable stream.
- `colorjax.models`: the Linen models and their registry (`ModelSpec`, `from_config`).
- `colorjax.losses`, `colorjax.optim`, `colorjax.parallel`: objectives, optimizers, the device mesh.
- `colorjax.checkpointing`: Orbax checkpoints (atomic, resumable, latest-N and best-N).
- `colorjax.runs`: the run directory and `load_run` (a checkpoint back as a model with its variables).
- `colorjax.inference`: `Colorizer`, colouring photos of any size at full resolution.
- `colorjax.hints`: the user's colour points for SIGGRAPH17 (hint files, reference sampling, simulated training
  hints).
- `colorjax.evaluator`, `colorjax.metrics`: the one evaluation (training and `evaluate`), the papers' metrics.
- `colorjax.train`, `colorize`, `evaluate`, `report`, `prior`, `bench`, `hint_sweep`: the command-line programs
  (`cli` holds what they share); no library module imports them.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow serves only tf.data here; keep its C++ start-up chatter (oneDNN, CPU features) off the console.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
