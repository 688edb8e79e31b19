"""Reduce-on-plateau: the same decisions as Keras ReduceLROnPlateau, applied as an optax learning-rate scale."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from colorjax.optim_plateau import plateau_scale, record_validation_loss, reduce_on_plateau

LOSSES = [
    1.0,
    0.9,
    0.95,
    0.9,
    0.92,
    0.89995,
    0.8,
    0.85,
    0.86,
    0.87,
    0.88,
    0.9,
    0.91,
    0.7,
    0.75,
    0.76,
]


def _our_scales(losses, **kwargs):
    tx = reduce_on_plateau(**kwargs)
    state, scales = tx.init({"w": jnp.zeros(2)}), []
    record = jax.jit(record_validation_loss)
    for loss in losses:
        state = record(state, loss)
        scales.append(plateau_scale(state))
    return scales


def _keras_scales(losses, factor, patience, cooldown):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=factor, patience=patience, cooldown=cooldown, min_delta=1e-4
    )
    callback.set_model(model)
    callback.on_train_begin()
    scales = []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        scales.append(float(model.optimizer.learning_rate.numpy()))
    return scales


@pytest.mark.parametrize("patience,cooldown", [(5, 0), (2, 0), (2, 1), (1, 2)])
def test_same_decisions_as_keras(patience, cooldown):
    factor = math.sqrt(0.1)
    ours = _our_scales(LOSSES, factor=factor, patience=patience, cooldown=cooldown)
    keras = _keras_scales(LOSSES, factor, patience, cooldown)
    np.testing.assert_allclose(ours, keras, rtol=1e-5)
    assert min(ours) < 1.0  # The sequence does plateau.


def test_scale_multiplies_adam_updates_and_survives_chains():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([0.5, -1.0, 2.0])}
    tx = optax.chain(optax.adam(1e-2), reduce_on_plateau(factor=0.5, patience=1))
    plain = optax.adam(1e-2)
    state = record_validation_loss(tx.init(params), 1.0)
    state = record_validation_loss(state, 2.0)  # One evaluation without improvement: halve.
    assert plateau_scale(state) == 0.5
    updates, _ = tx.update(grads, state, params)
    plain_updates, _ = plain.update(grads, plain.init(params), params)
    np.testing.assert_allclose(updates["w"], 0.5 * plain_updates["w"], rtol=1e-6)


def test_optimizer_without_plateau_is_untouched():
    state = optax.adam(1e-3).init({"w": jnp.ones(2)})
    assert record_validation_loss(state, 1.0) == state
    assert plateau_scale(state) is None


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="factor"):
        reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match="patience=0"):
        reduce_on_plateau(patience=0)
