"""DDColor's generator starting from an ImageNet-22k ConvNeXt: Meta's checkpoints into the `ddcolor` encoder.

Kang et al. (ICCV 2023) start DDColor's encoder from ConvNeXt (Liu et al., CVPR 2022, "A ConvNet for the 2020s")
pretrained on ImageNet-22k: piddnad/DDColor basicsr/archs/ddcolor_arch.py `Encoder.load_pretrain_model` loads
`convnext_large_22k_224.pth` (DDColor-L, encoder `convnext-l`) or `convnext_tiny_22k_224.pth` (DDColor-T) from
facebookresearch/ConvNeXt's release with `load_state_dict(checkpoint['model'], strict=False)`. The weights registry
knows both files (`convnext_large_22k`, `convnext_tiny_22k`); `config.model.encoder_init` names one (or a file in
Meta's layout) and `load_ddcolor_encoder`, the `ddcolor` model's `load_pretrained`, reads it once at the start of
a fresh run (never on a resume, nor with `config.model_init`).

Mapping (Flax leaf of `params/encoder` <- Meta's entry; the same permutations as `ddcolor_import`):
- `downsample_layers_N_M/kernel` <- `downsample_layers.N.M.weight` (out, in, kh, kw) permuted (2, 3, 1, 0): the
  4x4 stem conv (N=0, M=0) and the 2x2 downsampling convs (M=1); their LayerNorms (0.1, N.0) weight -> scale.
- `stages_N_M/dwconv/kernel` <- `stages.N.M.dwconv.weight` (dim, 1, 7, 7) by the same permutation;
  `pwconv1`, `pwconv2` kernels <- the Linear weights transposed; `norm` weight -> scale; `gamma` <- `gamma`.
- Kept as initialised: `norm0`..`norm3`, the per-stage LayerNorms DDColor adds for its decoder (their
  `strict=False` load leaves them at PyTorch's init, weight 1 and bias 0, which is Flax's LayerNorm init too).
- Dropped: the classifier's final `norm` and the 21,841-class `head`, which DDColor's encoder does not use.
Any other missing or extra entry, or a shape of other widths, is refused with one line naming it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

from colorjax import ColorjaxError
from colorjax.models.ddcolor import SIZES
from colorjax.weights.pth import read_state_dict
from colorjax.weights.registry import resolve_weights

# Registry names of Meta's ImageNet-22k files and the DDColor size whose encoder each fits.
PUBLISHED_ENCODERS = {"convnext_tiny_22k": "tiny", "convnext_large_22k": "large"}
# Entries of Meta's files that DDColor's encoder does not have (the classifier's final norm and head).
DROPPED_ENTRIES = re.compile(r"^(norm|head)\.(weight|bias)$")
# DDColor's own per-stage output norms, absent from Meta's files and kept as initialised.
FRESH_MODULES = re.compile(r"^norm[0-3]$")

log = logging.getLogger(__name__)


class ConvNeXtImportError(ColorjaxError, ValueError):
    """A ConvNeXt checkpoint that does not fit DDColor's encoder; the message is one line naming the entry."""


def _meta_key(path: tuple[str, ...]) -> str:
    """Meta's state-dict key of a Flax leaf path under `params/encoder`: `stages_2_5/pwconv1/kernel` ->
    `stages.2.5.pwconv1.weight`."""
    *modules, leaf = path
    parts = [re.sub(r"_(\d+)", r".\1", module) for module in modules]
    return ".".join([*parts, {"kernel": "weight", "scale": "weight"}.get(leaf, leaf)])


def encoder_params(state_dict: dict[str, np.ndarray], encoder: Any, source: str = "state dict") -> dict[str, Any]:
    """DDColor's `params/encoder` tree shaped like `encoder` with Meta's ConvNeXt weights in place (`norm0`..`norm3`
    kept from `encoder`). One-line ConvNeXtImportError naming the first missing, unexpected or mis-shaped entry."""
    flat = traverse_util.flatten_dict(encoder)
    hint = "is it one of Meta's ConvNeXt checkpoints (convnext_*_22k_224.pth)?"
    leaves, used = {}, set()
    for path, leaf in flat.items():
        if FRESH_MODULES.match(path[0]):
            leaves[path] = leaf
            continue
        key = _meta_key(path)
        if key not in state_dict:
            raise ConvNeXtImportError(f"{source} has no {key!r}, which DDColor's ConvNeXt encoder needs ({hint})")
        value = np.asarray(state_dict[key], np.float32)
        if path[-1] == "kernel":
            value = np.transpose(value, (2, 3, 1, 0)) if value.ndim == 4 else value.T
        if value.shape != tuple(np.shape(leaf)):
            raise ConvNeXtImportError(
                f"{source}: {key} {tuple(np.shape(state_dict[key]))} does not fit this encoder (Flax "
                f"encoder/{'/'.join(path)} is {tuple(np.shape(leaf))}): a ConvNeXt of other widths than "
                "config.model's depths and dims."
            )
        leaves[path] = value
        used.add(key)
    for key in sorted(state_dict):
        if key not in used and not DROPPED_ENTRIES.match(key):
            raise ConvNeXtImportError(f"{source} has {key!r}, which DDColor's ConvNeXt encoder does not have ({hint})")
    return traverse_util.unflatten_dict(leaves)


def encoder_widths(model_kwargs: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(depths, dims) of the encoder `build_ddcolor(**model_kwargs)` builds."""
    size = model_kwargs.get("size", "large")
    depths = tuple(model_kwargs.get("depths") or SIZES[size]["depths"])
    dims = tuple(model_kwargs.get("dims") or SIZES[size]["dims"])
    return depths, dims


def load_ddcolor_encoder(variables: dict[str, Any], model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SPECS["ddcolor"].load_pretrained: the encoder's params from `model_kwargs["encoder_init"]` (a registry name,
    downloaded once, or a file in Meta's layout); None or "" keeps the random encoder and says so. A published
    name whose widths are not config.model's is refused before anything downloads."""
    name = model_kwargs.get("encoder_init")
    if not name:
        log.info(
            "ddcolor: config.model.encoder_init is empty, so the ConvNeXt encoder starts from random weights "
            "(the authors start from ImageNet-22k: %s).",
            ", ".join(PUBLISHED_ENCODERS),
        )
        return variables
    depths, dims = encoder_widths(model_kwargs)
    size = PUBLISHED_ENCODERS.get(str(name))
    if size is not None and (depths, dims) != (SIZES[size]["depths"], SIZES[size]["dims"]):
        raise ConvNeXtImportError(
            f"config.model.encoder_init={name!r} is the {size} ConvNeXt (depths {SIZES[size]['depths']}, dims "
            f"{SIZES[size]['dims']}), but config.model builds depths {depths}, dims {dims}: set "
            "config.model.encoder_init to a file of these widths, or to '' for a random encoder."
        )
    path = Path(resolve_weights(str(name)))
    encoder = encoder_params(read_state_dict(path), variables["params"]["encoder"], source=str(path))
    log.info("ddcolor: the ConvNeXt encoder starts from %s", path)
    return {**variables, "params": {**variables["params"], "encoder": encoder}}
