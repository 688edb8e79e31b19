"""Read the weights in a Keras HDF5 file (the `keras.applications` `*_tf_dim_ordering_tf_kernels*.h5` files).

Keras wrote these with `model.save_weights` (Keras 2) or `model.save(...h5)` (weights under `model_weights/`);
both keep one HDF5 group per layer, listed in the root attribute `layer_names`, whose attribute `weight_names` lists
its arrays ("conv2d_1/kernel:0" in Keras 2, "conv2d/kernel" in Keras 3). `read_keras_h5` returns them as plain
numpy arrays keyed by layer name and short weight name ("kernel", "bias", "beta", "moving_mean", ...). Mapping them
onto a Flax module is the model's business (see `inception_resnet_v2.variables_from_keras_h5`).

Keras kernels are already in Flax's layout: Conv2D (kh, kw, in, out), Dense (in, out).
"""

from pathlib import Path
from typing import Any

import numpy as np


def _text(value: bytes | str) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _short_weight_name(weight_name: str) -> str:
    # "block35_1_conv/kernel:0" -> "kernel"; "batch_normalization/moving_mean" -> "moving_mean".
    return weight_name.split("/")[-1].split(":")[0]


def _string_list_attribute(group: Any, name: str) -> list[str]:
    """A list-of-strings attribute; Keras splits ones over HDF5's 64 KiB limit into name0, name1, ..."""
    if name in group.attrs:
        return [_text(value) for value in group.attrs[name]]
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values.extend(_text(value) for value in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return values


def read_keras_h5(path: str | Path, *, download_hint: str = "") -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {short weight name -> array} for every layer with weights, in the file's layer order.

    A missing file raises FileNotFoundError naming it (plus `download_hint`, e.g. where to download it).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        hint = f" {download_hint}" if download_hint else ""
        raise FileNotFoundError(f"Keras weights file not found: {path}.{hint}")
    try:
        import h5py
    except ImportError as error:  # h5py ships with TensorFlow; a bare install may lack it.
        raise ImportError(f"Reading {path} needs h5py: pip install h5py.") from error

    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as file:
        root = file["model_weights"] if "model_weights" in file else file
        layer_names = _string_list_attribute(root, "layer_names")
        if not layer_names:
            raise ValueError(
                f"{path} is not a Keras HDF5 weights file (no 'layer_names' attribute)."
            )
        for layer_name in layer_names:
            group = root[layer_name]
            weight_names = _string_list_attribute(group, "weight_names")
            if weight_names:
                layers[layer_name] = {
                    _short_weight_name(name): np.asarray(group[name]) for name in weight_names
                }
    return layers
