"""DDColor's adversarial training recipe (Kang et al. 2023; piddnad/DDColor basicsr/models/color_model.py
`optimize_parameters`, options/train/train_ddcolor.yml): the discriminator's state and the generator and
discriminator updates of one training step, which `trainer.make_train_step` runs together in one jitted step
when `config.gan.enabled`.

The generator's loss, per example and then averaged over the global batch:

    pixel_weight x L1(ab)                                 (config.loss, "l1": the target ab, not enhanced)
  + perceptual_weight x perceptual(pred_rgb, enhanced gt)  (VGG16-BN, `ddcolor_objective.make_perceptual_loss`)
  + gan_weight x BCE(D(pred_rgb), real)                    (the discriminator before its own update)
  + colorfulness_weight x (1 - colourfulness(pred_rgb))

with pred_rgb = lab_to_rgb(L, predicted ab) and the enhanced truth color_enhance(lab_to_rgb(L, true ab), 1.2). The
colourfulness weight is for colorjax's batch *mean*: the authors' `ColorfulnessLoss` sums over the 4 images of a
GPU and DDP averages the 4 GPUs' gradients, so their 0.5 is 0.5 x 4 = 2.0 on the mean (the default); a mean keeps
the term's strength independent of the batch size.

The discriminator's loss is BCE(D(enhanced gt), real) + BCE(D(stop_gradient(pred_rgb)), fake), with the generator's
output from before the generator's update (their `output.detach()`). As in their step the discriminator runs in
training mode three times: on the generator's photos for the generator's loss, then on the real photos, then on the
generator's photos again; each call advances its spectral-norm vectors (`DiscriminatorState.spectral`, the
`batch_stats` collection of `models.ddcolor_discriminator`) once, carried from one call to the next.

The discriminator's optimizer is `config.optimizer` with `config.gan.optimizer`'s fields in place (their optim_d:
Adam, lr 1e-4, betas (0.9, 0.99), no weight decay), on the same `config.schedule`; never reduce-on-plateau.
The frozen VGG16-BN is part of the state (`perceptual`), so a checkpoint resumes without the weights file; a fresh
run reads it from `config.gan.perceptual_weights` (a registry name, downloaded once and checked, or a path to a
file in torchvision's layout). With `perceptual_weight` 0 the term is off: the state holds no VGG16-BN (`{}`),
no file is read and the step does not run the network (its logged `train/g_perceptual` is 0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from colorjax.color import lab_to_rgb
from colorjax.models.ddcolor_discriminator import DynamicUNetDiscriminator
from colorjax.models.vgg16_bn import VGG16BNFeatures, load_vgg16_bn_variables
from colorjax.train import ddcolor_objective as objective
from colorjax.train import losses, optim


@flax.struct.dataclass
class DiscriminatorState:
    """The discriminator's parameters, spectral-norm vectors and optimizer state, and the frozen VGG16-BN."""

    params: Any
    spectral: Any
    opt_state: Any
    perceptual: Any


class GanRecipe(NamedTuple):
    """What the GAN step needs besides the generator: built once from the config by `from_config`."""

    discriminator: nn.Module
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    pixel_weight: float
    perceptual_weight: float
    gan_weight: float
    colorfulness_weight: float
    enhance_factor: float
    perceptual_weights: str

    @property
    def uses_perceptual(self) -> bool:
        """Whether the perceptual term is on: a weight of 0 needs no VGG16-BN, neither its file nor its compute."""
        return self.perceptual_weight != 0

    def init(self, rng: jax.Array, image_size: int) -> DiscriminatorState:
        """A fresh discriminator and a *random* VGG16-BN (`load_perceptual` puts the real weights in); no VGG16-BN
        (`{}`) when the perceptual term is off."""
        d_rng, vgg_rng = jax.random.split(rng)
        dummy = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
        variables = self.discriminator.init(d_rng, dummy, update_stats=False)
        vgg = {}
        if self.uses_perceptual:
            vgg = VGG16BNFeatures(outputs=tuple(objective.PERCEPTUAL_LAYER_WEIGHTS)).init(vgg_rng, dummy)
        return DiscriminatorState(
            params=variables["params"],
            spectral=variables.get("batch_stats", {}),
            opt_state=self.tx.init(variables["params"]),
            perceptual=vgg,
        )

    def load_perceptual(self) -> dict:
        """The VGG16-BN variables of `perceptual_weights` (registry name or file), read without torch."""
        from colorjax.weights import registry

        path = registry.resolve_weights(self.perceptual_weights)
        return load_vgg16_bn_variables(path, tuple(objective.PERCEPTUAL_LAYER_WEIGHTS))


def discriminator_optimizer(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, Any]:
    """`config.optimizer` with `config.gan.optimizer`'s fields in place, no reduce-on-plateau, same schedule."""
    opt = ml_collections.ConfigDict(config.optimizer.to_dict())
    opt.update(config.gan.optimizer.to_dict())
    opt.reduce_on_plateau = None
    view = ml_collections.ConfigDict(
        dict(optimizer=opt, schedule=config.schedule.to_dict(), num_train_steps=config.num_train_steps)
    )
    return optim.make_optimizer(view)


def from_config(config: ml_collections.ConfigDict) -> GanRecipe | None:
    """The recipe of `config.gan`, or None when it is off (every other model trains as before)."""
    gan = config.gan
    if not gan.enabled:
        return None
    if config.data.color_space != "lab":
        raise ValueError("config.gan.enabled needs config.data.color_space='lab' (the recipe converts Lab to RGB).")
    tx, schedule = discriminator_optimizer(config)
    return GanRecipe(
        discriminator=DynamicUNetDiscriminator(nf=gan.discriminator_nf),
        tx=tx,
        schedule=schedule,
        pixel_weight=gan.pixel_weight,
        perceptual_weight=gan.perceptual_weight,
        gan_weight=gan.gan_weight,
        colorfulness_weight=gan.colorfulness_weight,
        enhance_factor=gan.color_enhance_factor,
        perceptual_weights=gan.perceptual_weights,
    )


def _rgb(lightness: jax.Array, ab: jax.Array) -> jax.Array:
    return lab_to_rgb(jnp.concatenate([lightness, ab.astype(jnp.float32)], axis=-1))


def _mean_probability(logits: jax.Array) -> jax.Array:
    return jnp.mean(jax.nn.sigmoid(logits))


def gan_step(recipe: GanRecipe, apply_generator, loss_fn: losses.LossFn, tx, schedule, state, batch):
    """One step of both networks on `batch`: (new state, metrics). `apply_generator(params) -> (outputs, mutated)`
    runs the generator in training mode; `state` has the generator's fields and `discriminator`."""
    d_state: DiscriminatorState = state.discriminator
    disc = recipe.discriminator
    if recipe.uses_perceptual:
        perceptual = objective.make_perceptual_loss(d_state.perceptual)
    else:  # the term is off: no VGG16-BN in the state and none run

        def perceptual(pred_rgb, target_rgb):
            return jnp.zeros(pred_rgb.shape[:1], jnp.float32)

    lightness = batch["L"]
    real_rgb = objective.color_enhance(_rgb(lightness, batch["chroma"]), recipe.enhance_factor)

    def discriminate(params, spectral, rgb):
        logits, mutated = disc.apply(
            {"params": params, "batch_stats": spectral}, rgb, update_stats=True, mutable=["batch_stats"]
        )
        return logits, mutated["batch_stats"]

    # The generator's update: the discriminator's parameters are constants here (their requires_grad=False).
    def generator_loss(params):
        outputs, mutated = apply_generator(params)
        pixel = loss_fn(outputs, batch)
        pred_rgb = _rgb(lightness, outputs["chroma"])
        fake_logits, spectral = discriminate(d_state.params, d_state.spectral, pred_rgb)
        terms = {
            "pixel": pixel["loss"],
            "perceptual": perceptual(pred_rgb, real_rgb),
            "gan": objective.vanilla_gan_generator_loss(fake_logits),
            "colorfulness": objective.colorfulness_loss(pred_rgb),
        }
        total = (
            recipe.pixel_weight * terms["pixel"]
            + recipe.perceptual_weight * terms["perceptual"]
            + recipe.gan_weight * terms["gan"]
            + recipe.colorfulness_weight * terms["colorfulness"]
        )
        aux = (terms, pixel, pred_rgb, jax.lax.stop_gradient(spectral), mutated)
        return jnp.mean(total), aux

    (g_loss, aux), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(state.params)
    terms, pixel, pred_rgb, spectral, mutated = aux
    updates, opt_state = tx.update(g_grads, state.opt_state, state.params)

    # The discriminator's update, on the generator's photos from before its update.
    fake_rgb = jax.lax.stop_gradient(pred_rgb)

    def discriminator_loss(params):
        real_logits, after_real = discriminate(params, spectral, real_rgb)
        fake_logits, after_fake = discriminate(params, after_real, fake_rgb)
        per_example = objective.vanilla_gan_discriminator_loss(real_logits, fake_logits)
        return jnp.mean(per_example), (real_logits, fake_logits, after_fake)

    (d_loss, (real_logits, fake_logits, d_spectral)), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
        d_state.params
    )
    d_updates, d_opt_state = recipe.tx.update(d_grads, d_state.opt_state, d_state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        batch_stats=mutated.get("batch_stats", state.batch_stats),
        opt_state=opt_state,
        discriminator=d_state.replace(
            params=optax.apply_updates(d_state.params, d_updates),
            spectral=jax.lax.stop_gradient(d_spectral),
            opt_state=d_opt_state,
        ),
    )
    logged = {f"train/{k}": jnp.mean(v) for k, v in pixel.items() if k != "loss"}
    logged.update({f"train/g_{k}": jnp.mean(v) for k, v in terms.items()})
    logged.update(
        {
            "train/loss": g_loss,
            "train/d_loss": d_loss,
            "train/d_real": _mean_probability(real_logits),
            "train/d_fake": _mean_probability(fake_logits),
            "train/colorfulness": jnp.mean(objective.colorfulness(fake_rgb)),
            "train/grad_norm": optax.global_norm(g_grads),
            "train/d_grad_norm": optax.global_norm(d_grads),
            "train/lr": schedule(state.step),
            "train/d_lr": recipe.schedule(state.step),
        }
    )
    return new_state, logged
