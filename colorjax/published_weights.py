"""Import of the authors' published PyTorch weights for `eccv16` and `siggraph17` into Flax variables.

Files (from the authors' `richzhang/colorization` release):
- ECCV16: `colorization_release_v2-9b330a0b.pth`, https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth
- SIGGRAPH17: `siggraph17-df00044c.pth`, https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth

A `.pth` is read with PyTorch (the optional extra `pip install colorjax[torch]`, imported only here and only then);
the same state dict saved as `.npz` (`python -m colorjax.published_weights IN.pth OUT.npz`, once, where torch is
installed) needs no torch. Mapping: a Conv weight (out, in, kh, kw) becomes a Flax kernel (kh, kw, in, out); a
ConvTranspose weight, stored (in, out, kh, kw), becomes (kh, kw, out, in) for Flax's `transpose_kernel=True`
(which flips the kernel as PyTorch does); BatchNorm weight/bias/running_mean/running_var become
params scale/bias and batch_stats mean/var. ECCV16's `model_out` (bin centres / 110) is checked, not imported:
colorjax decodes with its own copy of the centres.
"""

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from colorjax.models import get_model
from colorjax.quantize import ab_bin_centres

PUBLISHED_FILES = {
    "eccv16": "colorization_release_v2-9b330a0b.pth",
    "siggraph17": "siggraph17-df00044c.pth",
}
DOWNLOAD_ROOT = "https://colorizers.s3.us-east-2.amazonaws.com/"
# BatchNorm's step counter: PyTorch bookkeeping with no Flax counterpart.
_IGNORED_SUFFIX = ".num_batches_tracked"

StateDict = dict[str, np.ndarray]


def read_state_dict(path: str | Path) -> StateDict:
    """The PyTorch state dict in a `.pth` (needs torch) or `.npz` file, as NumPy arrays keyed by PyTorch names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {path} not found; the published ones are "
            + ", ".join(DOWNLOAD_ROOT + name for name in PUBLISHED_FILES.values())
        )
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (ValueError, OSError) as error:
            raise ValueError(f"Could not read {path} as an .npz state dict: {error}") from None
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {path} needs PyTorch: `pip install colorjax[torch]`, or convert it once where torch is "
            f"installed with `python -m colorjax.published_weights {path} {path.with_suffix('.npz')}`."
        ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise ValueError(
            f"Could not read {path} as a PyTorch state dict ({type(error).__name__}); "
            "is it one of the published .pth files?"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path} does not hold a PyTorch state dict (found {type(loaded).__name__})."
        )
    return {key: value.detach().cpu().numpy() for key, value in loaded.items()}


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


def state_dict_to_variables(
    model_name: str, state_dict: StateDict, template: Any, source: str = "state dict"
) -> dict:
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
        raise ValueError(
            f"{source}: 'model_out.weight' has shape {weight.shape}, expected (2, 313, 1, 1)."
        )
    error = np.max(np.abs(weight[:, :, 0, 0].T * 110.0 - ab_bin_centres()))
    if error > 1e-2:
        raise ValueError(
            f"{source}: 'model_out.weight' is not the 313 published bin centres / 110 (off by {error:.3g} ab): "
            "its logits use another bin order, which colorjax cannot decode."
        )


def load_published(
    model_name: str, path: str | Path, **model_kwargs: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """(module, variables) for `eccv16` or `siggraph17` with the authors' weights from `path` (.pth or .npz).

    `model_kwargs` go to the module (e.g. `temperature=1.0` for ECCV16's plain mean); the width is the published one.
    """
    if model_name not in PUBLISHED_FILES:
        raise ValueError(
            f"No published weights for {model_name!r}; choose one of: {', '.join(PUBLISHED_FILES)}."
        )
    if model_kwargs.get("width", 1.0) != 1.0:
        raise ValueError(
            f"Published {model_name} weights are for width 1.0, not {model_kwargs['width']}."
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {path} not found; download {PUBLISHED_FILES[model_name]} from "
            f"{DOWNLOAD_ROOT}{PUBLISHED_FILES[model_name]} (or pass its .npz conversion)."
        )
    module = get_model(model_name, **model_kwargs)
    template = jax.eval_shape(
        lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1), jnp.float32))
    )
    state_dict = read_state_dict(path)
    return module, state_dict_to_variables(model_name, state_dict, template, source=str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert a published PyTorch checkpoint (.pth) to .npz so colorjax can read it without torch."
    )
    parser.add_argument("pth", type=Path)
    parser.add_argument("npz", type=Path)
    args = parser.parse_args(argv)
    state_dict = read_state_dict(args.pth)
    np.savez(args.npz, **state_dict)
    print(f"Wrote {len(state_dict)} arrays to {args.npz}")


if __name__ == "__main__":
    main()
