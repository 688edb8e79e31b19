"""Import of the authors' published PyTorch weights for `eccv16` and `siggraph17` into Flax variables (DDColor's,
nested and spectral-normalised, have their own importer, `colorjax.models.ddcolor_import`; `load_weights_file`
hands `ddcolor` files to it).

Files (from the authors' `richzhang/colorization` release):
- ECCV16: `colorization_release_v2-9b330a0b.pth`, https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth
- SIGGRAPH17: `siggraph17-df00044c.pth`, https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth

`colorjax.weights` downloads them by name (`eccv16`, `siggraph17`); `colorjax.pth` reads a `.pth` (or an `.npz` of
the same arrays) without torch. Mapping: a Conv weight (out, in, kh, kw) becomes a Flax kernel (kh, kw, in, out); a
ConvTranspose weight, stored (in, out, kh, kw), becomes (kh, kw, out, in) for Flax's `transpose_kernel=True`
(which flips the kernel as PyTorch does); BatchNorm weight/bias/running_mean/running_var become
params scale/bias and batch_stats mean/var. ECCV16's `model_out` (bin centres / 110) is checked, not imported:
colorjax decodes with its own copy of the centres.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from colorjax.models import ddcolor, get_model
from colorjax.models.ddcolor_import import load_ddcolor
from colorjax.quantize import ab_bin_centres
from colorjax.weights.pth import read_state_dict
from colorjax.weights.registry import KNOWN_WEIGHTS

# The first published file of each model (DDColor has four), for the error messages.
PUBLISHED_FILES: dict[str, str] = {}
for _weights in (w for w in KNOWN_WEIGHTS.values() if w.colorizer):
    PUBLISHED_FILES.setdefault(_weights.model, _weights.file_name)
# BatchNorm's step counter: PyTorch bookkeeping with no Flax counterpart.
_IGNORED_SUFFIX = ".num_batches_tracked"

StateDict = dict[str, np.ndarray]


def _torch_entry(flax_path: tuple[str, ...]) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """(PyTorch key, converter to the Flax layout) of one Flax leaf `(collection, module, leaf)`."""
    _, module, leaf = flax_path
    prefix, index = module.rsplit("_", 1)  # Flax `model3short8_0` is PyTorch `model3short8.0`
    if leaf == "kernel":
        # Conv (out, in, kh, kw) -> (kh, kw, in, out); ConvTranspose (in, out, kh, kw) -> (kh, kw, out, in), the
        # Flax layout of a `transpose_kernel=True` kernel: one permutation serves both.
        return f"{prefix}.{index}.weight", lambda w: np.transpose(w, (2, 3, 1, 0))
    name = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}[leaf]
    return f"{prefix}.{index}.{name}", lambda w: w


def _torch_order(torch_key: str) -> tuple:
    """Sort key: module names compared with their numbers as numbers, then weight, bias, running mean, var."""
    module, name = torch_key.rsplit(".", 1)
    natural = tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", module))
    return natural, ["weight", "bias", "running_mean", "running_var"].index(name)


def state_dict_to_variables(model_name: str, state_dict: StateDict, template: Any, source: str = "state dict") -> dict:
    """Flax variables of shape `template` (e.g. from `jax.eval_shape(module.init, ...)`) filled from `state_dict`.

    Raises a one-line ValueError naming the first missing, unexpected or mis-shaped PyTorch key.
    """
    flat_template = traverse_util.flatten_dict(nn.unbox(template))
    flat_variables = {}
    expected_keys = set()
    # In PyTorch's order (block by block, weight before running stats), so the error names the first bad entry.
    entries = sorted(
        ((_torch_entry(flax_path), flax_path, leaf) for flax_path, leaf in flat_template.items()),
        key=lambda entry: _torch_order(entry[0][0]),
    )
    for (torch_key, to_flax), flax_path, leaf in entries:
        expected_keys.add(torch_key)
        if torch_key not in state_dict:
            raise ValueError(
                f"{source} has no {torch_key!r}, which {model_name} needs: is it the {model_name} checkpoint "
                f"({PUBLISHED_FILES[model_name]}) at width 1.0?"
            )
        value = to_flax(np.asarray(state_dict[torch_key]))
        if value.shape != tuple(leaf.shape):
            torch_shape = tuple(np.asarray(state_dict[torch_key]).shape)
            raise ValueError(
                f"{source}: {torch_key!r} has shape {torch_shape}, which does not fit {model_name} "
                f"(Flax {'/'.join(flax_path)} is {tuple(leaf.shape)}); is it the {model_name} checkpoint at width 1.0?"
            )
        flat_variables[flax_path] = jnp.asarray(value, dtype=leaf.dtype)

    for key in state_dict:
        if key in expected_keys or key.endswith(_IGNORED_SUFFIX):
            continue
        if model_name == "eccv16" and key == "model_out.weight":
            _check_eccv16_decoder(state_dict[key], source)
            continue
        raise ValueError(
            f"{source} has {key!r}, which {model_name} does not have: is it the {model_name} checkpoint "
            f"({PUBLISHED_FILES[model_name]})?"
        )
    return traverse_util.unflatten_dict(flat_variables)


def _check_eccv16_decoder(model_out_weight: np.ndarray, source: str) -> None:
    """ECCV16's `model_out` holds the bin centres / 110; logits indexed in any other order would decode wrongly."""
    weight = np.asarray(model_out_weight, dtype=np.float64)
    if weight.shape != (2, 313, 1, 1):
        raise ValueError(f"{source}: 'model_out.weight' has shape {weight.shape}, expected (2, 313, 1, 1).")
    error = np.max(np.abs(weight[:, :, 0, 0].T * 110.0 - ab_bin_centres()))
    if error > 1e-2:
        raise ValueError(
            f"{source}: 'model_out.weight' is not the 313 published bin centres / 110 (off by {error:.3g} ab): "
            "its logits use another bin order, which colorjax cannot decode."
        )


def load_published(model_name: str, path: str | Path, **model_kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """(module, variables) for `eccv16` or `siggraph17` with the authors' weights from `path` (.pth or .npz);
    `colorjax.weights.resolve_weights(name)` gives the path of a downloaded file.

    `model_kwargs` go to the module (e.g. `temperature=1.0` for ECCV16's plain mean); the width is the published one.
    """
    if model_name not in PUBLISHED_FILES:
        raise ValueError(f"No published weights for {model_name!r}; choose one of: {', '.join(PUBLISHED_FILES)}.")
    if model_kwargs.get("width", 1.0) != 1.0:
        raise ValueError(f"Published {model_name} weights are for width 1.0, not {model_kwargs['width']}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {path} not found; pass --weights {model_name} to download it, or download "
            f"{KNOWN_WEIGHTS[model_name].url} yourself."
        )
    return load_weights_file(model_name, path, **model_kwargs)


def file_kwargs(model_name: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs for a `model_name` weights file whose name is not a published one, from the model's published
    entry's `model_kwargs` (ECCV16's temperature): less DDColor's size, which the file's own shapes decide."""
    decided_by_shapes = ("size", *ddcolor.WIDTH_FIELDS) if model_name == "ddcolor" else ()
    return {key: value for key, value in model_kwargs.items() if key not in decided_by_shapes}


def run_kwargs(model_name: str, module: nn.Module, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs a run stores to rebuild `module` with `models.get_model(model_name, **kwargs)`: `model_kwargs`,
    with a DDColor's widths as its file's shapes gave them (a tiny or custom-width file rebuilds at its widths)."""
    if model_name == "ddcolor":
        return {**model_kwargs, **ddcolor.widths(module)}
    return dict(model_kwargs)


def load_weights_file(model_name: str, path: str | Path, **model_kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """(module, variables) of `model_name` built with `model_kwargs` (any width) from a state dict file in the
    authors' layout; `load_published` is this for the published files, with friendlier checks first. A `ddcolor`
    file's widths (large, tiny) come from its shapes (`ddcolor_import.load_ddcolor`)."""
    if model_name == "ddcolor":
        return load_ddcolor(path, **model_kwargs)
    module = get_model(model_name, **model_kwargs)
    template = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1), jnp.float32)))
    state_dict = read_state_dict(path)
    return module, state_dict_to_variables(model_name, state_dict, template, source=str(path))
