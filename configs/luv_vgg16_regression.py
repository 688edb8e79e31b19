"""Hwang & Zhou's regression baseline: the body of `configs/luv_vgg16.py` with an L2 head on U, V.

    python -m colorjax.train --config configs/luv_vgg16_regression.py:imagenet --workdir runs/luv_vgg16_l2
    python -m colorjax.train --config configs/luv_vgg16_regression.py:cpu --workdir runs/luv_vgg16_l2_cpu

The same variants (`imagenet`, `places`, `folder`, `cpu`), data, backbone file, optimizer, hardware and time as
`configs/luv_vgg16.py` (read its docstring); only the head and the loss differ: one 1x1 conv to (u, v) times 100,
trained with the L2 loss on uv / 100, and the best checkpoint is the one with the lowest val/chroma_l2_error.
Expected: the report's "averaging" look, dim and sepia; it measured Acc.U 12.9% and Acc.V 19.0% on MIT CVCL
"Open Country" (the trainer's evaluation reports val/chroma_l2_error and PSNR for this head, not bin accuracies).

`cpu`: measured (2 CPU cores shared with other jobs, load ~6): 5.1 minutes, val/loss 0.0218 and
val/chroma_l2_error 15.1, val/psnr_rgb_db 25.6 after 300 steps (no colour at all: 16.2 and 28.0 on the same photos).
"""

from pathlib import Path

import ml_collections

from colorjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = config_lib.load_config(Path(__file__).with_name("luv_vgg16.py"), arg)
    config.model.head = "regression"
    config.model.chroma_scale = 100.0  # u, v span about [-100, 100].
    config.loss = ml_collections.ConfigDict(dict(name="l2", chroma_scale=100.0))
    config.best_metric = "val/chroma_l2_error"
    return config
