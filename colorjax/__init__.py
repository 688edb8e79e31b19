"""colorjax: fully automatic image colorization in JAX/Flax.

A gray photo in, a plausible colour photo out. The package is laid out one module per concern:

- `colorjax.color`: sRGB <-> CIE Lab / CIE Luv, in JAX and in TensorFlow ops (for tf.data).
- `colorjax.data`: TFDS, image folders and the wheel-shipped sample photos as tf.data.
- `colorjax.models`: the Linen models and the registry `get_model(name, **kwargs)`.
- `colorjax.losses`: the training objectives, chosen by name from the config.
- `colorjax.optim`: optimizers and learning-rate schedules from the config.
- `colorjax.parallel`: the device mesh and the shardings of data-parallel training.
- `colorjax.checkpointing`: Orbax checkpoints (atomic, resumable, latest-N and best-N).
- `colorjax.train`, `colorjax.colorize`, `colorjax.bench`: the command-line programs.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow serves only tf.data here; keep its C++ start-up chatter (oneDNN, CPU features) off the console.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
