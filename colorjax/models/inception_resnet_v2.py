"""Inception-ResNet-v2 (Szegedy et al. 2016) in Flax Linen, layer for layer as `keras.applications.InceptionResNetV2`.

Its job in colorjax is the frozen ImageNet embedder of Deep Koalarization, so it is built to load the Keras
application weights (`inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5` and its `_notop` twin, read by
`colorjax.weights.formats.read_keras_h5`) and reproduce the Keras outputs to float32 round-off.

Structure (Keras names in brackets): stem of five conv-BN-ReLU and two 3x3/2 max pools; Inception-A stack
[mixed_5b, block35_1..10, residual scale 0.17]; reduction A [mixed_6a]; Inception-B stack [block17_1..20, scale 0.1];
reduction B [mixed_7a]; Inception-C stack [block8_1..9, scale 0.2, then block8_10 with scale 1.0 and no ReLU, as
Keras]; 1x1 conv to 1536 [conv_7b]; global average pool [avg_pool]; dense logits [predictions].

Precision and shape choices:
- Every conv-BN is `Conv(use_bias=False)` then `BatchNorm(use_scale=False, epsilon=1e-3, momentum=0.99)` then
  ReLU, the Keras defaults; the residual up-projection of each block is a 1x1 conv with bias and no BN.
- Keras "valid" convs and pools are `VALID` here, Keras "same" is `SAME` (both use TensorFlow's padding split),
  and the 3x3/1 average pool of mixed_5b excludes the padding from its mean as TensorFlow does.
- Input: (N, H, W, 3) RGB in [-1, 1] (Keras `preprocess_input` "tf" mode: x / 127.5 - 1); 299x299 as trained.
  Any H, W >= 75 runs (the global pool makes the head size-agnostic), as Keras allows without the top.
- Output: {"features": (N, 1536) pooled features, "logits": (N, num_classes) pre-softmax scores} ("logits" only
  with `include_top`). Everything is float32; on GPU/TPU XLA's default matmul precision applies.
- Classes: the Keras file has 1000 ImageNet classes. The TF-slim checkpoint the Deep Koalarization paper used
  (`inception_resnet_v2_2016_08_30.ckpt`) has 1001, class 0 being "background", hence the paper's "1001-d"
  embedding. `num_classes` follows whatever weights are loaded; the loader checks it against the file.
"""

import re
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from colorjax.color import lightness_to_gray
from colorjax.weights.formats import read_keras_h5, require_file

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"
WEIGHTS_FILE = "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
NOTOP_WEIGHTS_FILE = "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
INPUT_SIZE = 299
FEATURE_DIM = 1536
BN_EPSILON = 1e-3  # Keras BatchNormalization default (Flax's is 1e-5).
BN_MOMENTUM = 0.99  # Keras default; only matters if someone fine-tunes with train=True.


class ConvBN(nn.Module):
    """Keras `conv2d_bn`: bias-free conv, BatchNorm without scale (ReLU follows, so gamma is redundant), ReLU."""

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = nn.Conv(
            self.features,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=False,
            name="conv",
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPSILON,
            use_scale=False,
            name="bn",
        )(x)
        return nn.relu(x)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class Mixed5b(nn.Module):
    """The 35x35 Inception module after the stem: 96 | 48->64(5x5) | 64->96->96 | avgpool->64 = 320 channels."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        branch_0 = ConvBN(96, (1, 1), name="branch_0")(x, train=train)
        branch_1 = ConvBN(48, (1, 1), name="branch_1_0")(x, train=train)
        branch_1 = ConvBN(64, (5, 5), name="branch_1_1")(branch_1, train=train)
        branch_2 = ConvBN(64, (1, 1), name="branch_2_0")(x, train=train)
        branch_2 = ConvBN(96, (3, 3), name="branch_2_1")(branch_2, train=train)
        branch_2 = ConvBN(96, (3, 3), name="branch_2_2")(branch_2, train=train)
        pooled = nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
        branch_pool = ConvBN(64, (1, 1), name="branch_pool")(pooled, train=train)
        return jnp.concatenate([branch_0, branch_1, branch_2, branch_pool], axis=-1)


class InceptionResNetBlock(nn.Module):
    """One residual Inception block: x + scale * conv1x1(concat(branches)), then ReLU unless `activate` is False.

    `block_type` picks the branches, as Keras `inception_resnet_block`:
    block35 (35x35): 32 | 32->32 | 32->48->64;  block17 (17x17): 192 | 128->160(1x7)->192(7x1);
    block8 (8x8): 192 | 192->224(1x3)->256(3x1).
    """

    block_type: str
    scale: float
    activate: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if self.block_type == "block35":
            branches = [
                [(32, (1, 1))],
                [(32, (1, 1)), (32, (3, 3))],
                [(32, (1, 1)), (48, (3, 3)), (64, (3, 3))],
            ]
        elif self.block_type == "block17":
            branches = [[(192, (1, 1))], [(128, (1, 1)), (160, (1, 7)), (192, (7, 1))]]
        elif self.block_type == "block8":
            branches = [[(192, (1, 1))], [(192, (1, 1)), (224, (1, 3)), (256, (3, 1))]]
        else:
            raise ValueError(f"Unknown block_type {self.block_type!r}: use block35, block17 or block8.")
        outputs = []
        for branch_index, convs in enumerate(branches):
            y = x
            for conv_index, (features, kernel_size) in enumerate(convs):
                name = f"branch_{branch_index}_{conv_index}"
                y = ConvBN(features, kernel_size, name=name)(y, train=train)
            outputs.append(y)
        mixed = jnp.concatenate(outputs, axis=-1)
        up = nn.Conv(x.shape[-1], (1, 1), use_bias=True, name="conv")(mixed)
        x = x + self.scale * up
        return nn.relu(x) if self.activate else x


class Mixed6a(nn.Module):
    """Reduction A, 35x35 -> 17x17: 384(3x3/2) | 256->256->384(3x3/2) | maxpool = 1088 channels."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        branch_0 = ConvBN(384, (3, 3), strides=2, padding="VALID", name="branch_0")(x, train=train)
        branch_1 = ConvBN(256, (1, 1), name="branch_1_0")(x, train=train)
        branch_1 = ConvBN(256, (3, 3), name="branch_1_1")(branch_1, train=train)
        branch_1 = ConvBN(384, (3, 3), strides=2, padding="VALID", name="branch_1_2")(branch_1, train=train)
        return jnp.concatenate([branch_0, branch_1, _max_pool_3x3_s2(x)], axis=-1)


class Mixed7a(nn.Module):
    """Reduction B, 17x17 -> 8x8: 256->384/2 | 256->288/2 | 256->288->320/2 | maxpool = 2080 channels."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        def reduce(y, features, name):
            return ConvBN(features, (3, 3), strides=2, padding="VALID", name=name)(y, train=train)

        branch_0 = ConvBN(256, (1, 1), name="branch_0_0")(x, train=train)
        branch_0 = reduce(branch_0, 384, "branch_0_1")
        branch_1 = ConvBN(256, (1, 1), name="branch_1_0")(x, train=train)
        branch_1 = reduce(branch_1, 288, "branch_1_1")
        branch_2 = ConvBN(256, (1, 1), name="branch_2_0")(x, train=train)
        branch_2 = ConvBN(288, (3, 3), name="branch_2_1")(branch_2, train=train)
        branch_2 = reduce(branch_2, 320, "branch_2_2")
        return jnp.concatenate([branch_0, branch_1, branch_2, _max_pool_3x3_s2(x)], axis=-1)


class InceptionResNetV2(nn.Module):
    """(N, H, W, 3) RGB in [-1, 1] -> {"features": (N, 1536), "logits": (N, num_classes)}.

    `include_top=False` drops the `predictions` layer (the Keras `_notop` file) and the "logits" output.
    """

    num_classes: int = 1000
    include_top: bool = True

    @nn.compact
    def __call__(self, rgb: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        if rgb.ndim != 4 or rgb.shape[-1] != 3 or min(rgb.shape[1:3]) < 75:
            raise ValueError(f"InceptionResNetV2 needs (N, H, W, 3) RGB with H, W >= 75, got shape {rgb.shape}.")
        x = ConvBN(32, (3, 3), strides=2, padding="VALID", name="stem_1a")(rgb, train=train)
        x = ConvBN(32, (3, 3), padding="VALID", name="stem_2a")(x, train=train)
        x = ConvBN(64, (3, 3), name="stem_2b")(x, train=train)
        x = _max_pool_3x3_s2(x)
        x = ConvBN(80, (1, 1), padding="VALID", name="stem_3b")(x, train=train)
        x = ConvBN(192, (3, 3), padding="VALID", name="stem_4a")(x, train=train)
        x = _max_pool_3x3_s2(x)

        x = Mixed5b(name="mixed_5b")(x, train=train)
        for index in range(1, 11):
            x = InceptionResNetBlock("block35", 0.17, name=f"block35_{index}")(x, train=train)
        x = Mixed6a(name="mixed_6a")(x, train=train)
        for index in range(1, 21):
            x = InceptionResNetBlock("block17", 0.1, name=f"block17_{index}")(x, train=train)
        x = Mixed7a(name="mixed_7a")(x, train=train)
        for index in range(1, 10):
            x = InceptionResNetBlock("block8", 0.2, name=f"block8_{index}")(x, train=train)
        # Keras ends the stack with an unscaled, un-activated block (the TF-slim "Block8" after Repeat_2).
        x = InceptionResNetBlock("block8", 1.0, activate=False, name="block8_10")(x, train=train)
        x = ConvBN(FEATURE_DIM, (1, 1), name="conv_7b")(x, train=train)

        outputs = {"features": jnp.mean(x, axis=(1, 2))}
        if self.include_top:
            outputs["logits"] = nn.Dense(self.num_classes, name="predictions")(outputs["features"])
        return outputs


def gray_to_inception_input(L: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
    """(N, H, W, 1) lightness in [0, 100] -> (N, size, size, 3) gray RGB in [-1, 1], the embedder's input.

    The lightness becomes the sRGB gray of the same L (what a gray photo's pixels hold), is resized bilinearly
    (antialiased when shrinking) to size x size, replicated to three channels and mapped to [-1, 1] as Keras
    `preprocess_input(mode="tf")` does to 0..255 pixels.
    """
    gray = lightness_to_gray(L)
    gray = jax.image.resize(gray, (L.shape[0], size, size, 1), method="bilinear")
    return jnp.repeat(gray * 2.0 - 1.0, 3, axis=-1)


def _auto_named_layers(layers: dict[str, Any], prefix: str) -> list[str]:
    """Layers Keras named `prefix`, `prefix_1`, `prefix_2`, ... sorted by that counter, i.e. in creation order.

    Keras numbers unnamed layers per class as they are built (Keras 2 from 1, Keras 3 from none), so sorting by
    the number recovers the order of the `conv2d_bn` calls in the Keras source, whatever the counter's offset.
    The file's own `layer_names` order is a topological sort that interleaves branches, so it is not used.
    """
    pattern = re.compile(rf"^{prefix}(?:_(\d+))?$")
    numbered = [(int(m.group(1) or 0), name) for name in layers if (m := pattern.match(name))]
    return [name for _, name in sorted(numbered)]


def _conv_bn_call_order(model: InceptionResNetV2) -> tuple[list[tuple[str, ...]], Any]:
    """Paths of the ConvBN modules in the order `model` calls them, and the abstract variables (shapes only).

    The modules above are written in the order of the Keras source, so this call order is the Keras creation
    order of the unnamed `conv2d_bn` layers; recording it (rather than listing it by hand) keeps one source of truth.
    """
    paths = []

    def record(next_fn, args, kwargs, context):
        if isinstance(context.module, ConvBN) and context.method_name == "__call__":
            paths.append(context.module.path)
        return next_fn(*args, **kwargs)

    with nn.intercept_methods(record):
        abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
    return paths, abstract


def variables_from_keras_h5(
    path: str | Path,
    model: InceptionResNetV2,
    config_field: str = "the Inception-ResNet-v2 weights path in the config",
) -> dict[str, Any]:
    """Flax variables {"params", "batch_stats"} for `model` from a Keras Inception-ResNet-v2 .h5 file.

    Takes the full file (`WEIGHTS_FILE`) or, for `include_top=False`, either file (`NOTOP_WEIGHTS_FILE` lacks only
    the `predictions` layer). Raises FileNotFoundError naming the file, its download URL and `config_field` when it
    is missing, and ValueError when the file is not an Inception-ResNet-v2 or disagrees with `model` (class count,
    top).
    """
    name = Path(path).name
    url = WEIGHTS_URL + (name if name in (WEIGHTS_FILE, NOTOP_WEIGHTS_FILE) else WEIGHTS_FILE)
    layers = read_keras_h5(require_file(path, url, config_field))
    call_order, abstract = _conv_bn_call_order(model)

    def arrays(layer: str, kind: str, count: int) -> list[np.ndarray]:
        """The layer's arrays in Keras order, checked: a wrong file fails here with the layer it lacks."""
        if layer not in layers or len(layers[layer]) != count:
            found = len(layers.get(layer, []))
            raise ValueError(
                f"{path}: layer {layer!r} has {found} arrays, an Inception-ResNet-v2 {kind} has {count}: "
                "not a matching Inception-ResNet-v2 file."
            )
        return layers[layer]

    unnamed_paths = [p for p in call_order if p != ("conv_7b",)]
    convs = _auto_named_layers(layers, "conv2d")
    norms = _auto_named_layers(layers, "batch_normalization")
    if len(convs) != len(unnamed_paths) or len(norms) != len(unnamed_paths):
        raise ValueError(
            f"{path} has {len(convs)} unnamed conv and {len(norms)} batch-norm layers; a Keras "
            f"Inception-ResNet-v2 has {len(unnamed_paths)} of each: not an Inception-ResNet-v2 file."
        )
    pairs = list(zip(unnamed_paths, convs, norms, strict=True))
    pairs.append((("conv_7b",), "conv_7b", "conv_7b_bn"))

    # Keras orders a layer's arrays as `get_weights()`: a bias-free conv [kernel]; BatchNormalization(scale=False)
    # [beta, moving_mean, moving_variance]; a conv with bias and Dense [kernel, bias].
    params: dict[tuple[str, ...], np.ndarray] = {}
    stats: dict[tuple[str, ...], np.ndarray] = {}
    for module_path, conv, norm in pairs:
        (params[(*module_path, "conv", "kernel")],) = arrays(conv, "bias-free conv", 1)
        beta, mean, variance = arrays(norm, "unscaled batch norm", 3)
        params[(*module_path, "bn", "bias")] = beta
        stats[(*module_path, "bn", "mean")] = mean
        stats[(*module_path, "bn", "var")] = variance
    for block in (key for key in abstract["params"] if key.startswith("block")):
        kernel, bias = arrays(f"{block}_conv", "residual projection", 2)
        params[(block, "conv", "kernel")], params[(block, "conv", "bias")] = kernel, bias
    if model.include_top:
        if "predictions" not in layers:
            raise ValueError(
                f"{path} has no 'predictions' layer (a _notop file): the logits need {WEIGHTS_FILE} "
                f"from {WEIGHTS_URL + WEIGHTS_FILE}, or build the model with include_top=False."
            )
        kernel, bias = arrays("predictions", "dense layer", 2)
        classes = kernel.shape[-1]
        if classes != model.num_classes:
            raise ValueError(
                f"{path} has {classes} classes but the model was built with num_classes="
                f"{model.num_classes}; set it to {classes}."
            )
        params[("predictions", "kernel")], params[("predictions", "bias")] = kernel, bias

    variables = {
        "params": traverse_util.unflatten_dict(params),
        "batch_stats": traverse_util.unflatten_dict(stats),
    }
    _check_matches(variables, abstract, path)
    return jax.tree.map(lambda array: jnp.asarray(array, jnp.float32), variables)


def _check_matches(variables: dict[str, Any], abstract: dict[str, Any], path: str | Path) -> None:
    """Every variable of the model is filled exactly once with an array of its shape."""
    for collection in ("params", "batch_stats"):
        got = traverse_util.flatten_dict(variables[collection], sep="/")
        want = traverse_util.flatten_dict(abstract[collection], sep="/")
        if got.keys() != want.keys():
            missing = sorted(want.keys() - got.keys())[:3]
            extra = sorted(got.keys() - want.keys())[:3]
            raise ValueError(f"{path}: {collection} mismatch, missing {missing}, unexpected {extra}.")
        for key, spec in want.items():
            if tuple(got[key].shape) != tuple(spec.shape):
                raise ValueError(
                    f"{path}: {collection}/{key} has shape {got[key].shape} in the file, "
                    f"the model expects {spec.shape}: not a matching Inception-ResNet-v2 file."
                )
