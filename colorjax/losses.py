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
import optax

LossFn = Callable[[dict[str, jax.Array], dict[str, jax.Array]], dict[str, jax.Array]]


def _per_example_mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


def make_l2_loss(chroma_scale: float = 110.0) -> LossFn:
    """Mean squared chroma error, with chroma divided by `chroma_scale` so the loss is O(1)."""

    def l2_loss(outputs, batch):
        error = (outputs["chroma"] - batch["chroma"]) / chroma_scale
        squared = _per_example_mean(jnp.square(error))
        chroma_error = _per_example_mean(
            jnp.linalg.norm(outputs["chroma"] - batch["chroma"], axis=-1)
        )
        return {"loss": squared, "chroma_l2_error": chroma_error}

    return l2_loss


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
    "l2": make_l2_loss,
    "iizuka": make_iizuka_loss,
}


def get_loss(name: str, **kwargs) -> LossFn:
    """Builds the registered loss `name`; kwargs come from `config.loss`."""
    if name not in LOSSES:
        known = ", ".join(sorted(LOSSES))
        raise ValueError(f"Unknown loss {name!r}; config.loss.name must be one of: {known}.")
    return LOSSES[name](**kwargs)
