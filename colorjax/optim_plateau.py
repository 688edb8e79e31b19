"""Reduce the learning rate when the validation loss stops improving, as Keras `ReduceLROnPlateau`, in optax.

The CIFAR-10 autoencoder recipe multiplies the learning rate by sqrt(0.1) after 5 evaluations without improvement.
Two pure pieces split that between the training step and the evaluation loop:

    tx = optax.chain(optax.adam(1e-3), reduce_on_plateau(factor=0.1 ** 0.5, patience=5))
    ...                                                   # every step: updates are scaled by the current scale
    opt_state = record_validation_loss(opt_state, val_loss)  # after every evaluation

Keras semantics: an evaluation improves if `loss < best - min_delta` (min_delta 1e-4, absolute, `rel_delta` adds
a relative part); after `patience` evaluations in a row without improvement the scale is multiplied by `factor`
(never below `min_scale`), the count restarts and `cooldown` evaluations are ignored. The scale multiplies the
*updates*, so with Adam or SGD it is exactly a learning-rate multiplier.

Why not `optax.contrib.reduce_on_plateau` (present in optax 0.2.8): its `update` must receive `value=` on every
call and decides on a running average of those values, which fits a per-step training loss, not a validation loss
known only at evaluation time. Here the hyperparameters live in the state itself (like `optax.inject_hyperparams`),
so `record_validation_loss` needs only the optimizer state, finds the plateau state wherever it sits in a chain,
and checkpoints carry it with the rest of the optimizer state.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class PlateauState(NamedTuple):
    """The current update scale, the plateau bookkeeping and (fixed) hyperparameters, all scalars."""

    scale: jax.Array
    best_loss: jax.Array
    evaluations_without_improvement: jax.Array
    cooldown_left: jax.Array
    factor: jax.Array
    patience: jax.Array
    min_delta: jax.Array
    rel_delta: jax.Array
    cooldown: jax.Array
    min_scale: jax.Array


def reduce_on_plateau(
    factor: float = 0.1**0.5,
    patience: int = 5,
    min_delta: float = 1e-4,
    rel_delta: float = 0.0,
    cooldown: int = 0,
    min_scale: float = 0.0,
) -> optax.GradientTransformation:
    """Scales updates by a factor that `record_validation_loss` lowers on a validation-loss plateau."""
    if not 0.0 < factor < 1.0:
        raise ValueError(f"reduce_on_plateau factor must be in (0, 1), got {factor}.")
    if patience < 1 or cooldown < 0 or min_delta < 0 or not 0 <= rel_delta < 1 or min_scale < 0:
        raise ValueError(
            "reduce_on_plateau needs patience >= 1, 0 <= rel_delta < 1 and non-negative cooldown, "
            "min_delta, min_scale; "
            f"got patience={patience}, cooldown={cooldown}, min_delta={min_delta}, rel_delta={rel_delta}, "
            f"min_scale={min_scale}."
        )

    def init_fn(params: Any) -> PlateauState:
        del params
        return PlateauState(
            scale=jnp.asarray(1.0, jnp.float32),
            best_loss=jnp.asarray(jnp.inf, jnp.float32),
            evaluations_without_improvement=jnp.asarray(0, jnp.int32),
            cooldown_left=jnp.asarray(0, jnp.int32),
            factor=jnp.asarray(factor, jnp.float32),
            patience=jnp.asarray(patience, jnp.int32),
            min_delta=jnp.asarray(min_delta, jnp.float32),
            rel_delta=jnp.asarray(rel_delta, jnp.float32),
            cooldown=jnp.asarray(cooldown, jnp.int32),
            min_scale=jnp.asarray(min_scale, jnp.float32),
        )

    def update_fn(
        updates: Any, state: PlateauState, params: Any = None
    ) -> tuple[Any, PlateauState]:
        del params
        scaled = jax.tree.map(lambda update: (state.scale * update).astype(update.dtype), updates)
        return scaled, state

    return optax.GradientTransformation(init_fn, update_fn)


def _record(state: PlateauState, loss: jax.Array) -> PlateauState:
    loss = jnp.asarray(loss, jnp.float32)
    improved = loss < state.best_loss * (1.0 - state.rel_delta) - state.min_delta
    # Keras order: a cooldown evaluation first ticks the cooldown down and clears the count; only if the
    # cooldown is then over can this same evaluation count as one without improvement.
    cooldown_left = jnp.maximum(state.cooldown_left - 1, 0)
    count_before = jnp.where(state.cooldown_left > 0, 0, state.evaluations_without_improvement)
    waited = jnp.where(improved | (cooldown_left > 0), 0, count_before + 1)
    reduce = waited >= state.patience
    return state._replace(
        best_loss=jnp.where(improved, loss, state.best_loss),
        scale=jnp.where(
            reduce, jnp.maximum(state.scale * state.factor, state.min_scale), state.scale
        ),
        evaluations_without_improvement=jnp.where(reduce, 0, waited).astype(jnp.int32),
        cooldown_left=jnp.where(reduce, state.cooldown, cooldown_left).astype(jnp.int32),
    )


def record_validation_loss(opt_state: Any, validation_loss: jax.Array | float) -> Any:
    """Feeds one evaluation's loss to every `PlateauState` inside `opt_state`; other states pass through.

    Pure and jit-able; a no-op for an optimizer without `reduce_on_plateau`.
    """
    return jax.tree.map(
        lambda node: _record(node, validation_loss) if isinstance(node, PlateauState) else node,
        opt_state,
        is_leaf=lambda node: isinstance(node, PlateauState),
    )


def plateau_scale(opt_state: Any) -> float | None:
    """The current learning-rate multiplier (for logging), or None if `opt_state` has no plateau state."""
    found = [
        node
        for node in jax.tree.leaves(opt_state, is_leaf=lambda n: isinstance(n, PlateauState))
        if isinstance(node, PlateauState)
    ]
    return float(found[0].scale) if found else None
