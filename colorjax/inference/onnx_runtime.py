"""Runs a colorjax ONNX export (`python -m colorjax.export --format onnx`) with onnxruntime on the CPU.

`OnnxModel(path)(L)` takes L (N, H, W, 1) float32 CIE lightness in [0, 100] and returns the export's outputs by name
(`chroma` (N, H, W, 2), and `logits` / `class_logits` where the model has them) as NumPy arrays; an input the export's
fixed dimensions cannot take is a one-line error. `colorize_L(model, L)` is the chroma alone.

`onnx_colorizer(colorizer)` (what `colorize --runtime onnx` uses) returns the Colorizer with its model's forward pass
run by onnxruntime: the model is exported once (`colorjax.export`, about a minute for full-width ECCV16) into the
weights cache, keyed by a hash of the model and its variables, and reused from there. The photo's L, the resizes and
the recombination stay in JAX. onnxruntime is the optional extra `pip install 'colorjax[onnx]'`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from colorjax import ColorjaxError


class OnnxRuntimeError(ColorjaxError, ValueError):
    """The export cannot be loaded or cannot take this input; the message is one line."""


class OnnxModel:
    """An onnxruntime CPU session of an exported colorjax model."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise OnnxRuntimeError("Running ONNX exports needs onnxruntime: pip install 'colorjax[onnx]'.") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxRuntimeError(f"ONNX model {self.path} not found; export one with colorjax.export.")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Errors only: its shape-inference warnings (MergeShapeInfo, in ANSI colour) are notes for the exporter.
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for a bad file
            raise OnnxRuntimeError(f"onnxruntime cannot load {self.path}: {error}".splitlines()[0]) from None
        (self._input,) = self.session.get_inputs()
        self.input_shape = tuple(self._input.shape)  # ints where fixed, names where dynamic
        self.output_names = [output.name for output in self.session.get_outputs()]

    def __call__(self, L: np.ndarray) -> dict[str, np.ndarray]:
        L = np.ascontiguousarray(L, dtype=np.float32)
        if L.ndim != 4 or L.shape[-1] != 1:
            raise OnnxRuntimeError(f"The ONNX model takes L as (N, H, W, 1), got {L.shape}.")
        for axis, (want, got) in enumerate(zip(self.input_shape, L.shape, strict=True)):
            if isinstance(want, int) and want != got:
                raise OnnxRuntimeError(
                    f"{self.path} was exported for input {self.input_shape}; axis {axis} is {got}. Re-export "
                    "with another --size, or resize the input."
                )
        outputs = self.session.run(self.output_names, {self._input.name: L})
        return dict(zip(self.output_names, outputs, strict=True))


def colorize_L(model: OnnxModel, L: np.ndarray) -> np.ndarray:
    """The chroma (N, H, W, 2) the exported model predicts for L (N, H, W, 1)."""
    return model(L)["chroma"]


def model_key(model: Any, variables: Any) -> str:
    """A hash of a module's configuration and every variable's name, shape, dtype and bytes."""
    import jax

    digest = hashlib.sha256(repr(model).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
        array = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:20]


def onnx_colorizer(colorizer, cache: str | Path | None = None):
    """`colorizer` with its forward pass in onnxruntime (see the module docstring)."""
    from colorjax.inference import export
    from colorjax.weights import registry as weights

    if colorizer.any_size is not None:
        raise OnnxRuntimeError(
            f"The model of {colorizer.description} colours photos at any size with its own routine (tiling, a "
            "global path); the ONNX runtime runs fixed-pipeline models only: use --runtime xla."
        )
    folder = Path(cache or weights.cache_dir() / "onnx") / model_key(colorizer.model, colorizer.variables)
    if not (folder / "model.onnx").is_file():
        print(f"Exporting the model to ONNX once, into {folder} ...", file=sys.stderr, flush=True)
        try:  # export_model builds the folder under a temporary name: it appears whole or not at all
            export.export_model(
                colorizer.model,
                colorizer.variables,
                folder,
                "onnx",
                size=colorizer.fixed_size or colorizer.resolution or 256,
                settings={"source": colorizer.description},
            )
        except (OSError, export.ExportError):
            if not (folder / "model.onnx").is_file():  # another process did not win the race
                raise
    model = OnnxModel(folder / "model.onnx")
    _, height, width, _ = model.input_shape
    # An export jax2onnx could only make at a fixed side takes the photo at that side, as a fixed-size model does.
    fixed = height if isinstance(height, int) and height == width else None
    return dataclasses.replace(
        colorizer,
        forward=lambda L: model(L)["chroma"],
        description=f"{colorizer.description} (onnxruntime)",
        fixed_size=fixed or colorizer.fixed_size,
    )
