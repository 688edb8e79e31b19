"""The model registry: `get_model(name, **kwargs)` returns a Linen module.

Every colorjax model follows one contract, so the trainer, `colorize` and `evaluate` never special-case a model:

- Call: `outputs = model.apply(variables, L, train=bool, mutable=[...])` where `L` is float32 (N, H, W, 1) holding
  CIE lightness in [0, 100]. Each model normalises its input itself (e.g. `(L - 50) / 100`).
- Variables: `params`, and `batch_stats` when the model has BatchNorm (Flax momentum 0.9 == PyTorch 0.1).
- Output: a dict. `outputs["chroma"]` is always present: float32 (N, H, W, 2), the predicted chroma in the units of
  the colour space at the input's own resolution (a, b in CIE Lab units; u, v for the CIELUV models). It is what
  `colorize` and `evaluate` use. Other keys carry what the model's loss needs (`logits`, `class_logits`, ...).
- Decoding choices that do not change parameters (e.g. the annealed-mean temperature) are module attributes, so
  inference can `model.clone(temperature=T)`.
- Pretrained weights that must not train (a frozen ImageNet embedder) live in the `frozen` collection: the trainer
  passes them to every apply but never differentiates, optimises or mutates them. Checkpoints carry them, so a
  checkpoint colours images on its own.
- A model that starts from files on disk (ImageNet backbones, published weights) registers a loader as its spec's
  `load_pretrained`: `loader(variables, model_kwargs) -> variables`, called by the trainer right after `init`
  (only for a fresh run). It reads the paths it needs from the model kwargs and fails with a one-line error that
  names the file to download when one is missing.
- A model that colours photos of any size natively (fully convolutional local path, fixed-size global path)
  registers its bounded-memory routine as its spec's `any_size`: `routine(model, variables, L, *, max_pixels,
  strategy, global_features=None) -> (outputs, info)`, `outputs["chroma"]` at L's size, `info["message"]` one
  line saying how it ran (full size, tiled or downscaled past `max_pixels`). `colorize` then runs it at every
  photo's own size instead of resizing the photo to the training resolution.
- A model that takes the user's colour points (siggraph17) accepts `hints=(ab, mask)` in the call: ab (N, H, W, 2)
  in the chroma's units, zero where no hint, and mask (N, H, W, 1), 1 at a hint and 0 elsewhere, both at L's size;
  `hints=None` (the default) is the automatic mode. `colorjax.hints` makes them from a hints file or a reference
  photo, and `simulate_hints` draws the paper's random points for training.
- A model with a global path may define `encode_global(L) -> {"global_features": (N, F), "class_logits": (N, C)}`
  ("class_logits" only with a classifier): `colorize --global-from` (colour with another photo's global features)
  and `colorize --labels` (top-5 classes) use it.

Registry names are the `config.model.name` values (`SPECS`, one `ModelSpec` each); the remaining fields of
`config.model` are the kwargs (`from_config` builds the module from a config).

Mixed precision (`config.precision`, see `with_precision`): a model with a `dtype` attribute computes in that dtype
while its parameters (and so the optimizer state) stay float32; its outputs, and with them the loss, are float32;
BatchNorm reduces in float32 (Flax's `force_float32_reductions`) and keeps float32 running statistics.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from colorjax.models.cifar10_autoencoder import Cifar10Autoencoder
from colorjax.models.convnext_import import load_ddcolor_encoder
from colorjax.models.ddcolor import AUTHORS_INFERENCE, build_ddcolor
from colorjax.models.eccv16 import ECCV16
from colorjax.models.iizuka import Iizuka
from colorjax.models.iizuka_inference import colorize_large
from colorjax.models.koalarization import Koalarization, load_koalarization_embedder
from colorjax.models.luv_vgg16 import LuvVGG16, load_luv_vgg16_backbone
from colorjax.models.regression import Regression
from colorjax.models.siggraph17 import SIGGRAPH17

Variables = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: its Linen module class, and optionally a loader of its pretrained files
    (`load_pretrained(variables, model_kwargs) -> variables`), its any-size inference routine
    (`any_size(model, variables, L, *, max_pixels, strategy, global_features=None) -> (outputs, info)`) and its
    authors' pipeline around the network as `config.inference` settings (`inference`: sizing, colour conversion,
    resizes; applied by its config files and `runs.published_config`, run by `inference.Colorizer`)."""

    module: Callable[..., nn.Module]
    load_pretrained: Callable[[Variables, dict[str, Any]], Variables] | None = None
    any_size: Callable[..., tuple[dict[str, Any], dict[str, Any]]] | None = None
    inference: Mapping[str, Any] = dataclasses.field(default_factory=dict)


SPECS: dict[str, ModelSpec] = {
    "regression": ModelSpec(Regression),
    "luv_vgg16": ModelSpec(LuvVGG16, load_pretrained=load_luv_vgg16_backbone),
    "koalarization": ModelSpec(Koalarization, load_pretrained=load_koalarization_embedder),
    "cifar10_autoencoder": ModelSpec(Cifar10Autoencoder),
    "eccv16": ModelSpec(ECCV16),
    "siggraph17": ModelSpec(SIGGRAPH17),
    "iizuka": ModelSpec(Iizuka, any_size=colorize_large),
    "ddcolor": ModelSpec(build_ddcolor, load_pretrained=load_ddcolor_encoder, inference=AUTHORS_INFERENCE),
}


def spec(name: str) -> ModelSpec:
    """The registered model `name`; a one-line ValueError listing the names otherwise."""
    if name not in SPECS:
        known = ", ".join(sorted(SPECS))
        raise ValueError(f"Unknown model {name!r}; config.model.name must be one of: {known}.")
    return SPECS[name]


def get_model(name: str, **kwargs) -> nn.Module:
    """Builds the registered model `name` with the given constructor kwargs."""
    return spec(name).module(**kwargs)


def model_kwargs(config: ml_collections.ConfigDict, class_names: list[str] | None = None) -> dict[str, Any]:
    """`config.model` minus its name, with `num_classes="auto"` replaced by the data's class count (0 if none)."""
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    if kwargs.get("num_classes") == "auto":
        kwargs["num_classes"] = len(class_names) if class_names else 0
    return kwargs


def from_config(config: ml_collections.ConfigDict, class_names: list[str] | None = None) -> nn.Module:
    """The module `config.model` describes (for the trainer, the benchmarks and the tests alike)."""
    return get_model(config.model.name, **model_kwargs(config, class_names))


def load_pretrained(name: str, variables: Variables, kwargs: dict[str, Any]) -> Variables:
    """Fills `variables` from the files the model's kwargs name, where the model registers a loader."""
    loader = spec(name).load_pretrained
    return variables if loader is None else loader(variables, kwargs)


def takes_hints(model: nn.Module) -> bool:
    """Whether the module's call accepts the user's colour points (`hints=(ab, mask)`, e.g. siggraph17)."""
    return "hints" in inspect.signature(type(model).__call__).parameters


PRECISIONS = ("auto", "bfloat16", "float32")


def resolve_dtype(precision: str, platform: str | None = None) -> jnp.dtype:
    """The compute dtype of `config.precision`: "auto" is bfloat16 on GPU and TPU (their matrix units run bf16 at
    several times the float32 rate) and float32 on CPU (no gain there, and equivalence tests need float32);
    "bfloat16" / "float32" force one. `platform` defaults to the default backend's."""
    if precision not in PRECISIONS:
        raise ValueError(f"config.precision must be one of {', '.join(PRECISIONS)} (got {precision!r}).")
    if precision == "auto":
        platform = platform or jax.default_backend()
        precision = "float32" if platform == "cpu" else "bfloat16"
    return jnp.dtype(precision)


def with_precision(model: nn.Module, precision: str, platform: str | None = None) -> nn.Module:
    """`model` computing in `resolve_dtype(precision)` where it has a `dtype` attribute (ECCV16, SIGGRAPH17,
    Iizuka); other models are returned as they are (float32)."""
    dtype = resolve_dtype(precision, platform)
    if "dtype" not in {f.name for f in dataclasses.fields(model)}:
        return model
    return model.clone(dtype=dtype)
