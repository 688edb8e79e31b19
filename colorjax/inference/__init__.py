"""Colouring photos with a model: `open_model` (the one loader every command calls), `Colorizer`, export and the
ONNX runtime. See `colorizer.py`."""

from colorjax.inference.colorizer import (
    Colorizer,
    InferenceError,
    Prediction,
    open_colorizer,
    open_model,
    read_image,
)

__all__ = ["Colorizer", "InferenceError", "Prediction", "open_colorizer", "open_model", "read_image"]
