"""Readers for published weight files (Keras .h5; PyTorch .pth through `colorjax.pth`) into plain numpy arrays.

Each model's importer (e.g. `colorjax.models.vgg16`) maps these arrays onto its own Flax parameter tree; this module
only knows the file formats, so every importer shares one tested reader:

- `read_keras_h5(path) -> {layer_name: [arrays]}` for the three layouts Keras writes:
  1. the legacy weights file (Keras 1/2 `save_weights("x.h5")`, and every `keras-applications` download such as
     `vgg16_weights_tf_dim_ordering_tf_kernels.h5`): root attribute `layer_names`, one group per layer with a
     `weight_names` attribute giving the order of its datasets;
  2. the legacy whole-model file (`model.save("x.h5")`, Keras 2 and 3): the same layout inside `model_weights/`;
  3. the Keras 3 weights file (`model.save_weights("x.weights.h5")`, also inside a `.keras` zip): groups
     `layers/<class-based name>/vars/{0,1,...}`, the layer's own name in the `vars` group's `name` attribute.
  In every layout a layer's arrays come in Keras's `layer.get_weights()` order (Conv2D/Dense: kernel, bias;
  BatchNormalization: gamma, beta, moving_mean, moving_variance, without gamma where `scale=False`). Layers keep
  the file's order and Keras's names, automatic ones included (`conv2d_7`; the Inception-ResNet-v2 importer orders
  those by their counter), and attributes Keras split over HDF5's 64 KiB limit (`layer_names0`, ...) are joined.
- PyTorch files: `colorjax.pth.read_state_dict(path) -> {key: array}` (no torch; one reader for every importer).
- `require_file(path, download_url, config_field)`: the one-line error every importer gives for a missing file.
- `overwrite_params(target, loaded, source)`: puts imported arrays into an initialised param tree, checking every
  name and shape, so a wrong file or input size fails with a message instead of a broken model.
- `torch_conv_kernel`, `torch_linear_kernel`: PyTorch -> Flax kernel layouts.
"""

import io
import zipfile
from pathlib import Path

import numpy as np

LayerWeights = dict[str, list[np.ndarray]]


def require_file(path: str | Path, download_url: str, config_field: str) -> Path:
    """Returns `path` as a Path, or raises a one-line FileNotFoundError saying what to download and where."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {str(path)!r} not found: download {download_url} and set {config_field} to its path."
        )
    return path


def read_keras_h5(path: str | Path) -> LayerWeights:
    """Reads a Keras weights file (any of the three layouts above) into {layer name: [arrays in Keras order]}.

    Layers without weights (inputs, pooling, activations) are left out.
    """
    path = Path(path).expanduser()
    try:
        import h5py  # Only importers of Keras files need h5py; it ships with TensorFlow.
    except ImportError:
        raise ImportError(f"Reading the Keras weights file {path} needs h5py: pip install h5py.") from None
    if not path.is_file():
        raise FileNotFoundError(f"Keras weights file {str(path)!r} not found.")
    if zipfile.is_zipfile(path):  # a `.keras` archive: the weights are its `model.weights.h5` member
        with zipfile.ZipFile(path) as archive:
            if "model.weights.h5" not in archive.namelist():
                raise ValueError(f"{path} is a zip without model.weights.h5, so not a .keras model file.")
            source = io.BytesIO(archive.read("model.weights.h5"))
    else:
        source = path
    try:
        h5file = h5py.File(source, "r")
    except OSError as error:
        raise ValueError(f"{path} is not an HDF5 file ({error}); expected a Keras .h5 weights file.") from None
    with h5file:
        if _has_attribute(h5file, "layer_names"):
            return _read_legacy_layers(h5file)
        if "model_weights" in h5file and _has_attribute(h5file["model_weights"], "layer_names"):
            return _read_legacy_layers(h5file["model_weights"])
        if "layers" in h5file:
            return _read_keras3_layers(h5file["layers"])
    raise ValueError(f"{path} holds no Keras weights (no 'layer_names' attribute, 'model_weights' or 'layers' group).")


def _has_attribute(group, name: str) -> bool:
    return name in group.attrs or f"{name}0" in group.attrs


def _read_string_attribute(group, name: str) -> list[str]:
    """A list-of-strings attribute; Keras splits ones over HDF5's 64 KiB limit into `name0`, `name1`, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [value.decode("utf8") if isinstance(value, bytes) else str(value) for value in values]


def _read_legacy_layers(group) -> LayerWeights:
    layers = {}
    for layer_name in _read_string_attribute(group, "layer_names"):
        layer_group = group[layer_name]
        weights = [
            np.asarray(layer_group[weight_name]) for weight_name in _read_string_attribute(layer_group, "weight_names")
        ]
        if weights:
            layers[layer_name] = weights
    return layers


def _read_keras3_layers(layers_group) -> LayerWeights:
    """Every `.../vars` group under `layers/` (nested models included), named by its `name` attribute."""
    import h5py

    layers: LayerWeights = {}

    def visit(group_path: str, group) -> None:
        if not (isinstance(group, h5py.Group) and group_path.split("/")[-1] == "vars"):
            return
        arrays = [np.asarray(group[key]) for key in sorted(group, key=int)]
        if not arrays:
            return
        # Keras 3 files record the layer's own name; without it, fall back to the class-based path.
        name = group.attrs.get("name", group_path.rsplit("/", 1)[0])
        name = name.decode("utf8") if isinstance(name, bytes) else str(name)
        if name in layers:
            raise ValueError(f"Two layers named {name!r} in the Keras 3 weights file; cannot tell them apart.")
        layers[name] = arrays

    layers_group.visititems(visit)
    return layers


def torch_conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight (out, in, kh, kw) -> Flax/Keras kernel (kh, kw, in, out)."""
    return np.transpose(weight, (2, 3, 1, 0))


def torch_linear_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Linear weight (out, in) -> Flax/Keras Dense kernel (in, out)."""
    return np.transpose(weight)


def overwrite_params(target, loaded, source: str) -> dict:
    """`target` (a Flax param tree) with every leaf that `loaded` holds replaced, after checking names and shapes.

    Leaves `loaded` does not mention are kept (e.g. a new head on a pretrained backbone). A leaf it holds that
    `target` lacks, or holds with another shape, is a one-line ValueError naming `source`.
    """
    import jax.numpy as jnp
    from flax import traverse_util

    flat_target = traverse_util.flatten_dict(target, sep="/")
    flat_loaded = traverse_util.flatten_dict(loaded, sep="/")
    for key, value in flat_loaded.items():
        if key not in flat_target:
            raise ValueError(f"{source} has weights for {key!r}, which the model does not have.")
        if tuple(np.shape(value)) != tuple(flat_target[key].shape):
            raise ValueError(
                f"{source}: {key!r} has shape {tuple(np.shape(value))}, the model expects "
                f"{tuple(flat_target[key].shape)} (another input size or width?)."
            )
        flat_target[key] = jnp.asarray(value, dtype=flat_target[key].dtype)
    return traverse_util.unflatten_dict(flat_target, sep="/")
