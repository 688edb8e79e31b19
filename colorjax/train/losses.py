"""Training objectives, chosen by `config.loss.name`; the other fields of `config.loss` are the factory's kwargs.

A loss factory returns `loss_fn(outputs, batch) -> dict[str, Array]` of *per-example* values, shape (N,), with the
key "loss" always present and any other keys logged as metrics. Per-example values let the trainer take a plain
mean in training and a masked mean over a padded evaluation batch, with no loss knowing about either.

`outputs` is the model's output dict (see `colorjax.models`); `batch` holds `L` (N,H,W,1), `chroma` (N,H,W,2: ab
for Lab configs, uv for Luv configs) and, where the data has them, integer `label`s (N,).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from colorjax.color import lab_to_rgb
from colorjax.quantize import (
    REBALANCE_LAMBDA,
    load_prior,
    rebalance_weights,
    soft_encode_sparse,
    uv_to_bins,
)

LossFn = Callable[[dict[str, jax.Array], dict[str, jax.Array]], dict[str, jax.Array]]


def _per_example_mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


def make_l2_loss(chroma_scale: float = 110.0) -> LossFn:
    """Mean squared chroma error, with chroma divided by `chroma_scale` so the loss is O(1)."""

    def l2_loss(outputs, batch):
        error = (outputs["chroma"] - batch["chroma"]) / chroma_scale
        squared = _per_example_mean(jnp.square(error))
        chroma_error = _per_example_mean(jnp.linalg.norm(outputs["chroma"] - batch["chroma"], axis=-1))
        return {"loss": squared, "chroma_l2_error": chroma_error}

    return l2_loss


def make_l1_loss() -> LossFn:
    """Mean absolute chroma error in the colour space's units (ab): the pixel term of DDColor's training (Kang et
    al. 2023, the authors' options/train/train_ddcolor.yml `pixel_opt: L1Loss`), alone."""

    def l1_loss(outputs, batch):
        error = outputs["chroma"] - batch["chroma"]
        chroma_error = _per_example_mean(jnp.linalg.norm(error, axis=-1))
        return {"loss": _per_example_mean(jnp.abs(error)), "chroma_l2_error": chroma_error}

    return l1_loss


def make_luv_classification_loss() -> LossFn:
    """Hwang & Zhou's CIELUV objective: cross-entropy of the U bin plus cross-entropy of the V bin (50 bins each).

    Needs `outputs["u_logits"]`, `outputs["v_logits"]` (N, H', W', 50) and Luv targets `batch["chroma"]` (N, H, W, 2).
    Targets come to the logits' grid by nearest-neighbour resizing (the pixel nearest each cell's centre, e.g. pixel
    4i+2 at stride 4), so every target is a true pixel colour rather than an average of colours across an edge,
    which could fall in a bin no pixel there has. Each cross-entropy is a mean over the grid.
    Metrics: `acc_u`, `acc_v`, the paper's Acc.U / Acc.V: fraction of cells whose argmax bin is the true bin.
    """

    def luv_classification_loss(outputs, batch):
        u_logits, v_logits = outputs["u_logits"], outputs["v_logits"]
        grid = u_logits.shape[:3]
        target_uv = jax.image.resize(batch["chroma"], (*grid, 2), method="nearest")
        target_bins = uv_to_bins(target_uv)
        losses, metrics = [], {}
        for channel, logits in (("u", u_logits), ("v", v_logits)):
            labels = target_bins[..., 0 if channel == "u" else 1]
            cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
            losses.append(_per_example_mean(cross_entropy))
            correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
            metrics[f"acc_{channel}"] = _per_example_mean(correct)
        return {"loss": losses[0] + losses[1], **metrics}

    return luv_classification_loss


def make_rgb_mse_loss() -> LossFn:
    """Mean squared error on sRGB in [0, 1], for models that predict a whole RGB image (`outputs["rgb"]`).

    The target RGB is rebuilt from the batch's own L and ab (Lab batches only) and clipped to [0, 1]; for pixels
    that came from an sRGB photo this is the photo back to float32 round-off, so the loss is the CIFAR-10
    autoencoder's Keras MSE without making the pipeline carry RGB as well.
    """

    def rgb_mse_loss(outputs, batch):
        lab = jnp.concatenate([batch["L"], batch["chroma"]], axis=-1)
        target_rgb = jnp.clip(lab_to_rgb(lab), 0.0, 1.0)
        squared = _per_example_mean(jnp.square(outputs["rgb"] - target_rgb))
        chroma_error = _per_example_mean(jnp.linalg.norm(outputs["chroma"] - batch["chroma"], axis=-1))
        return {"loss": squared, "chroma_l2_error": chroma_error}

    return rgb_mse_loss


def make_zhang_loss(
    prior_path: str | None = None,
    rebalance: bool = True,
    lam: float = REBALANCE_LAMBDA,
    k: int = 5,
    sigma: float = 5.0,
    min_chroma: float = 5.0,
) -> LossFn:
    """Zhang et al. (ECCV16): class-rebalanced multinomial cross-entropy against soft-encoded ab targets.

    Needs `outputs["logits"]` (N, ceil(H/4), ceil(W/4), 313) and Lab `batch["chroma"]` (N, H, W, 2). Targets are
    taken at every 4th pixel (the grid the logits sit on, as the authors' stride-4 subsampling of the ab image) and
    soft-encoded over their `k` nearest bins with a Gaussian of `sigma`. Each pixel's cross-entropy is weighted by
    the rebalancing weight (`rebalance_weights(prior, lam)`) of its target's most likely bin, or 1 with
    `rebalance=False` (the paper's "class" vs "full" rows), and averaged over the image's pixels. An image whose |a|
    and |b| are <= `min_chroma` at every (full-resolution) pixel carries no colour signal and gets loss 0.
    `prior_path=None` uses the shipped ImageNet prior.
    """
    bin_weights = jnp.asarray(rebalance_weights(load_prior(prior_path), lam), jnp.float32) if rebalance else None

    def zhang_loss(outputs, batch):
        logits = outputs["logits"].astype(jnp.float32)
        chroma = batch["chroma"].astype(jnp.float32)
        targets = chroma[:, ::4, ::4]
        if logits.shape[1:3] != targets.shape[1:3]:
            raise ValueError(
                f"zhang loss: logits grid {logits.shape[1:3]} is not the 1/4-resolution target grid "
                f"{targets.shape[1:3]} of chroma {chroma.shape[1:3]}; the model must output logits at every 4th pixel."
            )
        # The barrier keeps XLA from fusing the top-k search into the gathers below, which recomputed it per
        # gathered element: on CPU the loss's gradient took 1.0 s instead of 0.06 s for a batch of 16 at 96 px.
        target_bins, target_weights = jax.lax.optimization_barrier(
            soft_encode_sparse(jax.lax.stop_gradient(targets), k, sigma)
        )
        log_probabilities = jax.nn.log_softmax(logits, axis=-1)
        cross_entropy = -jnp.sum(target_weights * jnp.take_along_axis(log_probabilities, target_bins, axis=-1), axis=-1)
        nearest = target_bins[..., 0]  # the argmax of the soft target: its nearest bin
        pixel_weights = 1.0 if bin_weights is None else bin_weights[nearest]
        colourful = jnp.any(jnp.abs(chroma) > min_chroma, axis=(1, 2, 3)).astype(jnp.float32)
        metrics = {
            "loss": colourful * _per_example_mean(pixel_weights * cross_entropy),
            "cross_entropy": _per_example_mean(cross_entropy),
            "bin_accuracy": _per_example_mean(jnp.argmax(logits, axis=-1) == nearest),
            "colourful": colourful,
        }
        if "chroma" in outputs:
            metrics["chroma_l2_error"] = _per_example_mean(
                jnp.linalg.norm(outputs["chroma"].astype(jnp.float32) - chroma, axis=-1)
            )
        return metrics

    return zhang_loss


def _half_resolution_mean(x: jax.Array) -> jax.Array:
    """2x2 box mean of (N, H, W, C) -> (N, ceil(H/2), ceil(W/2), C); an odd last row/column is edge-padded."""
    n, height, width, channels = x.shape
    x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return x.reshape(n, x.shape[1] // 2, 2, x.shape[2] // 2, 2, channels).mean(axis=(2, 4))


def make_iizuka_loss(alpha: float = 1.0 / 300.0, ab_range: float = 100.0) -> LossFn:
    """Iizuka et al. 2016: MSE on ab scaled to [0, 1] + alpha * scene-label cross-entropy.

    The colour term compares the model's sigmoid map `ab_unit` (N, ceil(H/2), ceil(W/2), 2), where it is produced,
    with the target ab mapped to [0, 1] by (ab + ab_range) / (2 ab_range) (clipped: the sigmoid cannot leave
    [0, 1]) and brought to H/2 by a 2x2 box mean: the value that best fits, in squared error, the 2x2 input pixels
    each half-resolution output pixel stands for. It is the mean over pixels and both channels.

    The classification term (softmax cross-entropy of `class_logits` against `label`, weighted by alpha = 1/300 as
    in the paper) is present only when the batch has a `label` and alpha > 0; with no labels in the data, or
    alpha = 0, the loss is the colour term alone and no class metrics are reported.
    Per-example values: loss, color_loss and, with labels, class_loss and class_accuracy.
    """

    def iizuka_loss(outputs, batch):
        target = jnp.clip((batch["chroma"] + ab_range) / (2.0 * ab_range), 0.0, 1.0)
        target = _half_resolution_mean(target)
        prediction = outputs["ab_unit"]
        if prediction.shape != target.shape:
            raise ValueError(
                f"Iizuka loss: ab_unit {prediction.shape} does not match the half-resolution target "
                f"{target.shape}; the batch's chroma must be at the input L's resolution."
            )
        color_loss = _per_example_mean(jnp.square(prediction - target))
        metrics = {"loss": color_loss, "color_loss": color_loss}
        if "label" in batch and alpha > 0:
            if "class_logits" not in outputs:
                raise ValueError(
                    "Iizuka loss: the batch has labels and alpha > 0 but the model has no classification head "
                    "(num_classes = 0); set config.model.num_classes to the dataset's class count or "
                    "config.loss.alpha = 0."
                )
            logits = outputs["class_logits"]
            labels = batch["label"].astype(jnp.int32)
            class_loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
            metrics["class_loss"] = class_loss
            metrics["class_accuracy"] = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
            metrics["loss"] = color_loss + alpha * class_loss
        return metrics

    return iizuka_loss


LOSSES: dict[str, Callable[..., LossFn]] = {
    "l1": make_l1_loss,
    "l2": make_l2_loss,
    "luv_classification": make_luv_classification_loss,
    "rgb_mse": make_rgb_mse_loss,
    "zhang_classification": make_zhang_loss,
    "iizuka": make_iizuka_loss,
}


def get_loss(name: str, **kwargs) -> LossFn:
    """Builds the registered loss `name`; kwargs come from `config.loss`."""
    if name not in LOSSES:
        known = ", ".join(sorted(LOSSES))
        raise ValueError(f"Unknown loss {name!r}; config.loss.name must be one of: {known}.")
    return LOSSES[name](**kwargs)


def from_config(config: ml_collections.ConfigDict) -> LossFn:
    """The loss `config.loss` describes (its name and keyword arguments), for the trainer, benchmarks and tests."""
    kwargs = config.loss.to_dict()
    return get_loss(kwargs.pop("name"), **kwargs)
