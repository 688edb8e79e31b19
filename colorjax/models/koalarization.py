"""Deep Koalarization (Baldassarre, Gonzalez Morin, Rodes-Guirao 2017): a conv encoder-decoder fused with a frozen
ImageNet classifier's embedding of the same gray image. Registry name `koalarization`.

Layers (all 3x3 "same" convs with ReLU unless noted, no BatchNorm, as the authors' Keras code):
- encoder on L / 50 - 1 (L scaled to [-1, 1]): 64 s2, 128, 128 s2, 256, 256 s2, 512, 512, 256 -> (N, H/8, W/8, 256);
- embedder: a frozen classifier sees the gray image (sRGB gray of L, replicated to 3 channels, resized to its input
  size, preprocessed its way) and gives an (N, D) embedding, its logits before the softmax;
- fusion: the embedding tiled over the H/8 x W/8 grid, concatenated with the encoder output, 1x1 conv 256 + ReLU;
- decoder: 128, up x2, 64, 64, up x2, 32, 2 with tanh, up x2 (nearest-neighbour, Keras UpSampling2D), times
  `ab_scale`. Output `chroma` (N, H, W, 2) in Lab ab units; train with the "l2" loss and `chroma_scale=ab_scale`,
  which is the paper's MSE on ab / ab_scale. Inputs whose sides are not multiples of 8 come back at
  8 * ceil(side / 8) and are resized bilinearly to H x W. `width` scales every channel count above except the
  2-channel output (1.0 is the paper's network; CPU-sized configs use less).

Embedders (`embedder=`), chosen from `EMBEDDERS`:
- "inception_resnet_v2" (default, the paper's): Keras weights, 1000 classes, so D = 1000. The paper used the TF-slim
  checkpoint with a background class (D = 1001); `embedder_classes` follows whichever file is loaded.
  Input 299x299 RGB in [-1, 1].
- "vgg16" (the Ain Shams report's first model): `colorjax.models.vgg16.VGG16` with its top, 224x224, D = 1000,
  from the Keras `vgg16_weights_tf_dim_ordering_tf_kernels.h5` or torchvision `vgg16-397923af.pth` (the input is
  preprocessed the way the file's network was trained, chosen by the file's suffix as in `colorjax.models.vgg16`).
- "tiny": a random, frozen 3-conv net at 64x64 with no ImageNet knowledge. It exists so tests and CPU smoke
  configs exercise the frozen-embedder machinery in seconds; it needs no weights file and learns nothing useful.
`embedder_input_size` overrides the embedder's input size (e.g. 139 to run Inception-ResNet-v2 cheaply on a CPU;
the embedding then drifts from the one the classifier was trained for).

The embedder's variables ({"params", "batch_stats"} of the classifier) live in the `frozen` collection under
"embedder". The trainer never differentiates or optimises that collection, the forward pass wraps it in
`jax.lax.stop_gradient` as well, and it always runs in inference mode (BatchNorm running statistics), so the
embedding is computed once per batch inside the jitted training step on the accelerator. `init` fills it with
random values; `load_koalarization_embedder` (the spec's `load_pretrained` in `colorjax.models.SPECS`) replaces them with the file named
by `embedder_weights`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from colorjax.models import inception_resnet_v2 as irv2
from colorjax.models import vgg16
from colorjax.models.width import scaled_width
from colorjax.weights.formats import require_file

Variables = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Embedder:
    """A frozen image classifier as Deep Koalarization's global feature extractor.

    build(classes) makes the unbound classifier (its `__call__(x, train=False)` returns a dict with "logits");
    preprocess(L, size) turns (N, H, W, 1) lightness into its (N, size, size, 3) input; read_weights(path, module)
    returns its variables ({"params"}, plus "batch_stats" where it has BatchNorm) from a weights file (None: the
    embedder takes no file); download_url is where its file comes from.
    """

    build: Callable[[int], nn.Module]
    preprocess: Callable[[jax.Array, int], jax.Array]
    input_size: int
    read_weights: Callable[[str, nn.Module], Variables] | None
    download_url: str = ""


class TinyEmbedder(nn.Module):
    """Three strided 3x3 convs, global mean, dense logits: a frozen random embedder for tests and CPU smoke runs."""

    num_classes: int = 1000

    @nn.compact
    def __call__(self, rgb: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        del train  # No BatchNorm; the argument keeps the embedder call signature.
        x = rgb
        for features in (16, 32, 64):
            x = nn.relu(nn.Conv(features, (3, 3), strides=2)(x))
        return {"logits": nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))}


def _inception_resnet_v2() -> Embedder:
    return Embedder(
        build=lambda classes: irv2.InceptionResNetV2(num_classes=classes, parent=None),
        preprocess=irv2.gray_to_inception_input,
        input_size=irv2.INPUT_SIZE,
        read_weights=irv2.variables_from_keras_h5,
        download_url=irv2.WEIGHTS_URL + irv2.WEIGHTS_FILE,
    )


def _vgg16(weights_path: str) -> Embedder:
    # Keras files were trained on Caffe-style input, torchvision's on normalised RGB: the file decides.
    preprocessing = vgg16.vgg16_preprocessing(weights_path or None)

    def preprocess(L: jax.Array, size: int) -> jax.Array:
        L = jax.image.resize(L, (L.shape[0], size, size, 1), method="bilinear")
        return vgg16.gray_to_vgg_input(L, preprocessing)

    def read_weights(path: str, classifier: nn.Module) -> Variables:
        params = vgg16.load_vgg16_params(path, include_top=True, config_field="config.model.embedder_weights")
        return {"params": jax.tree.map(jnp.asarray, params)}

    return Embedder(
        build=lambda classes: vgg16.VGG16(include_top=True, num_classes=classes, parent=None),
        preprocess=preprocess,
        input_size=224,  # The ImageNet top's fc1 takes the 7x7 grid of a 224x224 input.
        read_weights=read_weights,
        download_url=vgg16.vgg16_download_url(weights_path or vgg16.KERAS_TOP_FILE, True),
    )


def _tiny() -> Embedder:
    return Embedder(
        build=lambda classes: TinyEmbedder(num_classes=classes, parent=None),
        preprocess=irv2.gray_to_inception_input,
        input_size=64,
        read_weights=None,
    )


EMBEDDERS: dict[str, Callable[[str], Embedder]] = {
    "inception_resnet_v2": lambda weights_path: _inception_resnet_v2(),
    "vgg16": _vgg16,
    "tiny": lambda weights_path: _tiny(),
}


def get_embedder(name: str, weights_path: str = "") -> Embedder:
    """The embedder `name`, set up for the weights file it will load (VGG16's input depends on the file)."""
    if name not in EMBEDDERS:
        known = ", ".join(sorted(EMBEDDERS))
        raise ValueError(f"Unknown embedder {name!r}; config.model.embedder must be one of: {known}.")
    return EMBEDDERS[name](weights_path)


def _conv(features: int, x: jax.Array, strides: int = 1) -> jax.Array:
    return nn.relu(nn.Conv(features, (3, 3), strides=strides, padding="SAME")(x))


def _upsample_nearest(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Koalarization(nn.Module):
    """L (N,H,W,1) in [0,100] -> {"chroma": (N,H,W,2) Lab ab, "embedding": (N,D) frozen classifier logits}."""

    embedder: str = "inception_resnet_v2"
    embedder_classes: int = 1000
    embedder_input_size: int | None = None
    embedder_weights: str = ""  # Read by `load_koalarization_embedder`, not by the forward pass.
    ab_scale: float = 110.0  # The report's 127 is the other choice; match the l2 loss's chroma_scale to it.
    width: float = 1.0  # Scales every encoder, fusion and decoder width; below 1 only for CPU-sized runs.

    @nn.compact
    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        batch, height, width, _ = L.shape

        def conv(features: int, x: jax.Array, strides: int = 1) -> jax.Array:
            return _conv(scaled_width(features, self.width), x, strides)

        spec = get_embedder(self.embedder, self.embedder_weights)
        classifier = spec.build(self.embedder_classes)
        size = self.embedder_input_size or spec.input_size
        classifier_input = spec.preprocess(L, size)

        frozen = self.variable(
            "frozen",
            "embedder",
            lambda: classifier.init(self.make_rng("params"), classifier_input[:1]),
        )
        # The classifier never trains: no gradient, running BatchNorm statistics, variables never mutated.
        classifier_variables = jax.lax.stop_gradient(frozen.value)
        embedding = classifier.apply(classifier_variables, classifier_input, train=False)["logits"]
        embedding = jax.lax.stop_gradient(embedding)

        x = L / 50.0 - 1.0
        for features, strides in [
            (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1),
        ]:  # fmt: skip
            x = conv(features, x, strides)

        tiled = jnp.broadcast_to(embedding[:, None, None, :], (*x.shape[:3], embedding.shape[-1]))
        x = jnp.concatenate([x, tiled.astype(x.dtype)], axis=-1)
        x = nn.relu(nn.Conv(scaled_width(256, self.width), (1, 1), name="fusion")(x))

        x = conv(128, x)
        x = _upsample_nearest(x)
        x = conv(64, x)
        x = conv(64, x)
        x = _upsample_nearest(x)
        x = conv(32, x)
        ab_normalized = jnp.tanh(nn.Conv(2, (3, 3), padding="SAME", name="ab_head")(x))
        chroma = self.ab_scale * _upsample_nearest(ab_normalized)
        if chroma.shape[1:3] != (height, width):
            chroma = jax.image.resize(chroma, (batch, height, width, 2), method="bilinear")
        return {"chroma": chroma.astype(jnp.float32), "embedding": embedding}


def load_koalarization_embedder(variables: Variables, model_kwargs: dict[str, Any]) -> Variables:
    """SPECS["koalarization"].load_pretrained: fills `frozen/embedder` from `model_kwargs["embedder_weights"]`.

    The "tiny" embedder takes no file and keeps its random init. Errors are single lines naming the file to get.
    """
    name = model_kwargs.get("embedder", "inception_resnet_v2")
    path = model_kwargs.get("embedder_weights") or ""
    spec = get_embedder(name, path)
    if spec.read_weights is None:
        if path:
            raise ValueError(
                f"The {name!r} embedder has no weight reader wired in colorjax.models.koalarization, "
                f"so config.model.embedder_weights={path!r} cannot be loaded."
            )
        return variables
    if not path:
        raise ValueError(
            f"Koalarization's {name!r} embedder needs ImageNet weights: download "
            f"{spec.download_url} and set config.model.embedder_weights to its path."
        )
    path = require_file(path, spec.download_url, "config.model.embedder_weights")
    classifier = spec.build(model_kwargs.get("embedder_classes", 1000))
    loaded = spec.read_weights(str(path), classifier)

    current = variables["frozen"]["embedder"]
    want = {k: v.shape for k, v in traverse_util.flatten_dict(current, sep="/").items()}
    got = {k: v.shape for k, v in traverse_util.flatten_dict(loaded, sep="/").items()}
    mismatched = sorted(key for key in want.keys() | got.keys() if want.get(key) != got.get(key))
    if mismatched:
        key = mismatched[0]
        raise ValueError(
            f"{path} does not fit the {name} embedder: {key!r} is {got.get(key, 'absent')} in the file, "
            f"{want.get(key, 'absent')} in the model (do embedder_classes and embedder_input_size match it?)."
        )
    return {**variables, "frozen": {**variables["frozen"], "embedder": loaded}}
