"""The terms of DDColor's training objective (Kang et al. 2023; piddnad/DDColor basicsr/losses/losses.py,
basicsr/models/color_model.py `optimize_parameters`, weights in options/train/train_ddcolor.yml), besides the L1 on
ab (`colorjax.train.losses.make_l1_loss`).

Each term is a pure function returning *per-example* values, shape (N,), as colorjax's losses do; the plain mean
over the batch is the authors' value for the mean-reduced terms (L1, perceptual, GAN). The weights (L1 0.1,
perceptual 5, GAN 1, colourfulness 0.5) are the caller's: nothing here applies them.

- `make_perceptual_loss`: sum over VGG16-BN layers of layer weight x mean |f(pred) - f(target)|, on RGB in [0, 1]
  normalised with ImageNet's mean and std (their `use_input_norm: true`, `range_norm: false`), features of the
  target not differentiated (their `gt.detach()`); their layers `conv1_1` ... `conv5_1` (before BatchNorm) with
  weights 1/16, 1/8, 1/4, 1/2, 1 (`PERCEPTUAL_LAYER_WEIGHTS`).
- `vanilla_gan_generator_loss`, `vanilla_gan_discriminator_loss`: their `GANLoss(gan_type="vanilla")`, binary
  cross-entropy on logits against constant labels (real 1.0, fake 0.0), averaged over the patch logits. The
  generator's side labels its fakes real; the discriminator's side is BCE(real, real label) + BCE(fake, fake
  label), never weighted (their `loss_weight` applies to the generator only).
- `color_enhance`: their `color_enhance: True, color_enhance_factor: 1.2` (basicsr/utils/color_enhance.py, applied in
  `ColorModel.feed_data`): the ground-truth RGB pushed away from its gray by 1.2 and clipped, the *target* of the
  perceptual term and the discriminator's real photos (the L1 target, ab, is not enhanced).
- `colorfulness_loss`: 1 - Hasler & Suesstrunk's colourfulness of each predicted RGB image in [0, 1], with their
  unbiased (N - 1) standard deviations. The authors' `ColorfulnessLoss` *sums* over the batch instead of
  averaging, so their term is batch_size x the mean of these values: with their 4 images per GPU (DDP averages the
  gradients of the 4 GPUs), weight 0.5 on their sum is weight 2.0 on colorjax's mean.
"""

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from colorjax.models.vgg16_bn import VGG16BNFeatures, normalize_imagenet

# options/train/train_ddcolor.yml perceptual_opt.layer_weights
PERCEPTUAL_LAYER_WEIGHTS = {"conv1_1": 0.0625, "conv2_1": 0.125, "conv3_1": 0.25, "conv4_1": 0.5, "conv5_1": 1.0}
REAL_LABEL = 1.0  # gan_opt.real_label_val
FAKE_LABEL = 0.0  # gan_opt.fake_label_val
COLORFULNESS_MEAN_WEIGHT = 0.3  # Hasler & Suesstrunk 2003: sigma_rgyb + 0.3 mu_rgyb
# torchvision.transforms.Grayscale (ITU-R 601-2 luma, as torchvision rounds it), which their colour enhancement uses
GRAYSCALE_WEIGHTS_RGB = (0.2989, 0.587, 0.114)


def _per_example_mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


def make_perceptual_loss(
    vgg_variables: Mapping, layer_weights: Mapping[str, float] = PERCEPTUAL_LAYER_WEIGHTS
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`loss(pred_rgb, target_rgb) -> (N,)` with the frozen VGG16-BN of `vgg_variables` (`models.vgg16_bn`)."""
    extractor = VGG16BNFeatures(outputs=tuple(layer_weights))

    def features(rgb: jax.Array) -> dict[str, jax.Array]:
        return extractor.apply(vgg_variables, normalize_imagenet(rgb))

    def perceptual_loss(pred_rgb: jax.Array, target_rgb: jax.Array) -> jax.Array:
        predicted = features(pred_rgb)
        target = jax.lax.stop_gradient(features(target_rgb))
        return sum(
            weight * _per_example_mean(jnp.abs(predicted[name] - target[name]))
            for name, weight in layer_weights.items()
        )

    return perceptual_loss


def _bce(logits: jax.Array, label: float) -> jax.Array:
    labels = jnp.full_like(logits, label)
    return _per_example_mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def vanilla_gan_generator_loss(fake_logits: jax.Array, real_label: float = REAL_LABEL) -> jax.Array:
    """BCE of the discriminator's logits on the generator's photos against the real label, per example."""
    return _bce(fake_logits, real_label)


def vanilla_gan_discriminator_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    real_label: float = REAL_LABEL,
    fake_label: float = FAKE_LABEL,
) -> jax.Array:
    """BCE(real photos, real label) + BCE(generated photos, fake label), per example."""
    return _bce(real_logits, real_label) + _bce(fake_logits, fake_label)


def color_enhance(rgb: jax.Array, factor: float) -> jax.Array:
    """RGB in [0, 1] (..., 3) -> gray + factor x (rgb - gray), clipped to [0, 1]; gray is torchvision's Grayscale."""
    gray = jnp.sum(rgb * jnp.asarray(GRAYSCALE_WEIGHTS_RGB, rgb.dtype), axis=-1, keepdims=True)
    return jnp.clip(gray * (1.0 - factor) + rgb * factor, 0.0, 1.0)


def colorfulness(rgb: jax.Array) -> jax.Array:
    """Hasler & Suesstrunk's colourfulness of each (H, W, 3) image in `rgb` (N, H, W, 3), in the image's own units,
    with unbiased standard deviations as the authors' loss (torch.std)."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = jnp.abs(red - green).reshape(rgb.shape[0], -1)
    yb = jnp.abs(0.5 * (red + green) - blue).reshape(rgb.shape[0], -1)
    std_root = jnp.sqrt(jnp.var(rg, axis=1, ddof=1) + jnp.var(yb, axis=1, ddof=1))
    mean_root = jnp.sqrt(jnp.mean(rg, axis=1) ** 2 + jnp.mean(yb, axis=1) ** 2)
    return std_root + COLORFULNESS_MEAN_WEIGHT * mean_root


def colorfulness_loss(rgb: jax.Array) -> jax.Array:
    """1 - colourfulness of each predicted RGB image in [0, 1], (N,): the authors' per-image term."""
    return 1.0 - colorfulness(rgb)
