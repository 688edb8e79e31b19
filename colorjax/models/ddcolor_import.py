"""Import of the authors' published DDColor weights (piddnad/DDColor) into Flax variables of `ddcolor`.

Kept apart from `published.py` (Zhang et al.'s flat `modelN.i` files): DDColor's state dict is nested
(`encoder.arch.stages.2.5.pwconv1.weight`), spectral-normalised, holds packed attention projections and a few
entries the network never uses, so its mapping is its own. Both read files with `colorjax.weights.pth` (no torch).

Files: `ddcolor_modelscope.pth`, `ddcolor_paper.pth`, `ddcolor_artistic.pth` (large) and `ddcolor_paper_tiny.pth`
(tiny) from huggingface.co/piddnad/DDColor-models hold `{'params': state_dict}` (BasicSR's `save_network`); the
per-model repos hold the raw state dict (`pytorch_model.bin`). `read_state_dict` reads both. `colorjax.weights`
downloads them by name.

Mapping (Flax leaf <- PyTorch entry):
- conv kernel (kh, kw, in/groups, out) <- weight (out, in/groups, kh, kw) permuted (2, 3, 1, 0); the depthwise
  7x7 (dim, 1, 7, 7) -> (7, 7, 1, dim) by the same permutation. Dense kernel (in, out) <- Linear weight (out, in).
- spectral-normalised convs (`...conv.0`, `refine_net.0.0`; `torch.nn.utils.spectral_norm` in unet.py): the
  file holds `weight_orig`, `weight_u`, `weight_v`; in eval mode PyTorch uses weight_orig / sigma with
  sigma = u . (W v), W = weight_orig as (out, -1), and no power iteration. That quotient is folded into the kernel
  once here (the top singular value from an SVD would be a different, wrong, sigma).
- `nn.MultiheadAttention`: `in_proj_weight` (3E, E) / `in_proj_bias` (3E) are rows [q; k; v], split into the
  `q_proj`, `k_proj`, `v_proj` Dense layers; `out_proj` maps directly.
- LayerNorm / BatchNorm weight, bias -> scale, bias; BatchNorm running_mean / running_var -> batch_stats
  mean / var; `nn.Embedding` weight -> embedding; ConvNeXt's layer scale `gamma` -> gamma.
- Checked, not imported: `mean` / `std` must be the ImageNet statistics `ddcolor.py` normalises with.
- Dropped: BatchNorm's `num_batches_tracked`; the encoder's final `norm` and its `head_cls` classifier
  (`encoder.arch.norm.*`, `encoder.arch.head_cls.*`), which never reach the colours. `head_cls` left the authors'
  ConvNeXt in commit 1a190e2 ("remove redundant layers"), which also made their loader `strict=False`; the files
  trained before it hold it. Every other missing or extra entry is refused with one line naming it.
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

from colorjax.models import get_model
from colorjax.models.ddcolor import IMAGENET_MEAN, IMAGENET_STD, SIZES
from colorjax.weights.pth import read_state_dict

StateDict = dict[str, np.ndarray]

# Entries of the authors' files that never reach the colours (see the module docstring).
UNUSED_ENTRIES = re.compile(r"^encoder\.arch\.(norm|head_cls)\.(weight|bias)$")
# `torch.nn.utils.spectral_norm` modules: the U-Net convs, the last upsampling conv and the fusion conv.
SPECTRAL_MODULES = re.compile(
    r"^(decoder\.layers\.\d+\.(shuf\.conv|conv)\.0|decoder\.last_shuf\.conv\.0|refine_net\.0\.0)$"
)
_ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj")
_IGNORED_SUFFIX = ".num_batches_tracked"


class DDColorImportError(ValueError):
    """A state dict that does not fit `ddcolor`; the message is one line naming the entry."""


def _torch_module(flax_modules: tuple[str, ...]) -> str:
    """PyTorch module path of a Flax module path: `encoder` is `encoder.arch`, `refine_net` is `refine_net.0.0`,
    and each `name_3_1` is `name.3.1`."""
    if not flax_modules:
        return ""
    top, *rest = flax_modules
    parts = [{"encoder": "encoder.arch", "refine_net": "refine_net.0.0"}.get(top, top)]
    for name in rest:
        match = re.fullmatch(r"(.*?)((?:_\d+)+)", name)
        parts.append(f"{match.group(1)}.{match.group(2)[1:].replace('_', '.')}" if match else name)
    return ".".join(parts)


def spectral_norm_weight(weight_orig: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """PyTorch's eval-mode spectral-normalised weight: weight_orig / (u . (W v)), W = weight_orig as (out, -1)."""
    matrix = np.asarray(weight_orig, np.float64).reshape(weight_orig.shape[0], -1)
    sigma = np.dot(np.asarray(u, np.float64), matrix @ np.asarray(v, np.float64))
    return (np.asarray(weight_orig, np.float64) / sigma).astype(np.float32)


def _entries(flax_path: tuple[str, ...], num_attention_rows: int | None) -> tuple[list[str], Callable[..., Any]]:
    """(PyTorch keys, converter of their arrays to the Flax leaf) of one Flax leaf `(collection, *modules, leaf)`."""
    collection, *modules, leaf = flax_path
    if modules and modules[-1] in _ATTENTION_PROJECTIONS:
        prefix = _torch_module(tuple(modules[:-1]))
        rows = slice(
            _ATTENTION_PROJECTIONS.index(modules[-1]) * num_attention_rows,
            (_ATTENTION_PROJECTIONS.index(modules[-1]) + 1) * num_attention_rows,
        )
        if leaf == "kernel":
            return [f"{prefix}.in_proj_weight"], lambda w: w[rows].T
        return [f"{prefix}.in_proj_bias"], lambda b: b[rows]
    module = _torch_module(tuple(modules))
    prefix = f"{module}." if module else ""  # a leaf of the top module itself (a lone ConvNeXt block's gamma)
    if leaf == "kernel":
        if SPECTRAL_MODULES.match(module):
            keys = [f"{prefix}weight_orig", f"{prefix}weight_u", f"{prefix}weight_v"]
            return keys, lambda w, u, v: np.transpose(spectral_norm_weight(w, u, v), (2, 3, 1, 0))
        # Conv (out, in/groups, kh, kw) -> (kh, kw, in/groups, out); Linear (out, in) -> (in, out).
        return [f"{prefix}weight"], lambda w: np.transpose(w, (2, 3, 1, 0)) if w.ndim == 4 else w.T
    name = {"scale": "weight", "embedding": "weight", "mean": "running_mean", "var": "running_var"}.get(leaf, leaf)
    if collection == "batch_stats" or leaf in ("bias", "gamma", "scale", "embedding"):
        return [f"{prefix}{name}"], lambda w: w
    raise DDColorImportError(f"No PyTorch entry for the Flax leaf {'/'.join(flax_path)}.")


def _torch_order(key: str) -> tuple:
    """Natural order of PyTorch keys (numbers compared as numbers), so an error names the first bad entry."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


def state_dict_to_variables(
    state_dict: StateDict, template: Any, source: str = "state dict", *, consume: bool = False
) -> dict[str, Any]:
    """Flax variables of `ddcolor` shaped like `template` (e.g. `jax.eval_shape` of its init) from the authors'
    state dict. One-line DDColorImportError naming the first missing, unexpected or mis-shaped entry.

    `consume=True` empties `state_dict` once it is checked and lets each array go as soon as its Flax leaf is made,
    so a checkpoint costs its size in memory about once, not twice (`load_ddcolor` of the 912 MB DDColor-L, JAX
    imported: 1.2 GiB peak RSS instead of 2.0 GiB; it does this with the state dict it read)."""
    flat_template = traverse_util.flatten_dict(nn.unbox(template))
    arrays = converted_arrays(state_dict, template, source)
    if consume:
        state_dict.clear()  # the converted arrays (mostly views of these entries) are now the only references
    leaves = {}
    for path, leaf in flat_template.items():
        leaves[path] = jnp.asarray(arrays.pop(path), dtype=leaf.dtype)
    return traverse_util.unflatten_dict(leaves)


def converted_arrays(state_dict: StateDict, template: Any, source: str = "state dict") -> dict[tuple, np.ndarray]:
    """{flattened Flax path: NumPy array in the Flax layout} for `template`'s leaves, every entry of the state dict
    accounted for (used, dropped as unused or checked); the checks of `state_dict_to_variables`."""
    flat_template = traverse_util.flatten_dict(nn.unbox(template))
    rows = {
        path[:-2]: leaf.shape[0]
        for path, leaf in flat_template.items()
        if path[-2] == "out_proj" and path[-1] == "bias"  # E, the attention's embedding width
    }
    entries = []
    for flax_path, leaf in flat_template.items():
        keys, convert = _entries(flax_path, rows.get(flax_path[:-2]))
        entries.append((keys, convert, flax_path, leaf))
    entries.sort(key=lambda entry: _torch_order(entry[0][0]))

    used = set()
    arrays = {}
    for keys, convert, flax_path, leaf in entries:
        for key in keys:
            if key not in state_dict:
                raise DDColorImportError(f"{source} has no {key!r}, which ddcolor needs (is it a DDColor checkpoint?).")
        used.update(keys)
        value = convert(*(np.asarray(state_dict[key]) for key in keys))
        if value.shape != tuple(leaf.shape):
            shapes = ", ".join(f"{key} {tuple(np.shape(state_dict[key]))}" for key in keys)
            raise DDColorImportError(
                f"{source}: {shapes} does not fit this ddcolor (Flax {'/'.join(flax_path)} is {tuple(leaf.shape)}); "
                "build the model with the checkpoint's widths (load_ddcolor infers them)."
            )
        arrays[flax_path] = value

    for key in sorted(state_dict, key=_torch_order):
        if key in used or key.endswith(_IGNORED_SUFFIX) or UNUSED_ENTRIES.match(key):
            continue
        if key in ("mean", "std"):
            _check_normalisation(key, state_dict[key], source)
            continue
        raise DDColorImportError(f"{source} has {key!r}, which ddcolor does not have (is it a DDColor checkpoint?).")
    return arrays


def _check_normalisation(key: str, value: np.ndarray, source: str) -> None:
    expected = np.asarray(IMAGENET_MEAN if key == "mean" else IMAGENET_STD, np.float32)
    value = np.asarray(value, np.float32).reshape(-1)
    if value.shape != expected.shape or np.max(np.abs(value - expected)) > 1e-6:
        raise DDColorImportError(
            f"{source}: {key!r} is {value.tolist()}, not the ImageNet {key} {expected.tolist()} ddcolor normalises with."
        )


def _count(state_dict: StateDict, pattern: str) -> int:
    return sum(1 for key in state_dict if re.fullmatch(pattern, key))


def ddcolor_fields(state_dict: StateDict, source: str = "state dict") -> dict[str, Any]:
    """The `ddcolor` constructor fields a state dict's shapes fix: `size` ("large" or "tiny" where the encoder is
    a published one, else explicit `depths` / `dims`), nf, num_queries, hidden_dim, dim_feedforward, dec_layers.
    The number of attention heads does not show in shapes: the published 8 unless the caller says otherwise."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise DDColorImportError(f"{source} has no {key!r}, which every DDColor checkpoint has.")
        return tuple(np.shape(state_dict[key]))

    dims = tuple(shape(f"encoder.arch.downsample_layers.{i}.{0 if i == 0 else 1}.weight")[0] for i in range(4))
    depths = tuple(_count(state_dict, rf"encoder\.arch\.stages\.{i}\.\d+\.gamma") for i in range(4))
    num_queries, hidden_dim = shape("decoder.color_decoder.query_feat.weight")
    fields: dict[str, Any] = {
        "nf": shape("decoder.layers.0.conv.0.weight_orig")[0],
        "num_queries": num_queries,
        "hidden_dim": hidden_dim,
        "dim_feedforward": shape("decoder.color_decoder.transformer_ffn_layers.0.linear1.weight")[0],
        "dec_layers": _count(state_dict, r"decoder\.color_decoder\.transformer_ffn_layers\.\d+\.linear1\.weight"),
    }
    for size, widths in SIZES.items():
        if (widths["depths"], widths["dims"]) == (depths, dims):
            return {"size": size, **fields}
    return {"size": "tiny", "depths": depths, "dims": dims, **fields}


def load_ddcolor(path: str | Path, **model_kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """(module, variables) of `ddcolor` with the weights of a DDColor checkpoint (`.pth` `{'params': ...}`, raw
    `pytorch_model.bin`, or `.npz`); its widths (large or tiny) come from the file's shapes, `model_kwargs` add
    the rest (e.g. `num_heads` for a non-published network, `dtype`)."""
    state_dict = read_state_dict(path)
    fields = {**ddcolor_fields(state_dict, source=str(path)), **model_kwargs}
    module = get_model("ddcolor", **fields)
    template = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1), jnp.float32)))
    return module, state_dict_to_variables(state_dict, template, source=str(path), consume=True)
