"""Optimizers and schedules from the config."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from colorjax import config_lib
from colorjax.train import optim


def config(**optimizer) -> ml_collections.ConfigDict:
    """`config_lib.base_config()` with 100 steps, Adam at 0.1 and the given optimizer fields."""
    config = config_lib.base_config()
    config.num_train_steps = 100
    config.optimizer.update(dict(name="adam", learning_rate=0.1), **optimizer)
    return config


def schedule_config(**fields) -> ml_collections.ConfigDict:
    schedule = config_lib.base_config().schedule
    schedule.update(fields)
    return schedule


def test_warmup_then_cosine_to_zero():
    schedule = optim.make_schedule(schedule_config(name="cosine", warmup_steps=10), 1.0, 110)
    assert float(schedule(0)) == 0.0 and abs(float(schedule(5)) - 0.5) < 1e-6
    assert abs(float(schedule(10)) - 1.0) < 1e-6
    assert abs(float(schedule(60)) - 0.5) < 1e-6 and float(schedule(110)) < 1e-6


def test_step_schedule_decays_at_the_boundaries():
    schedule = optim.make_schedule(schedule_config(name="step", boundaries=(0.5, 0.75), decay_factor=0.1), 1.0, 100)
    assert [round(float(schedule(s)), 6) for s in (0, 49, 51, 76)] == [1.0, 1.0, 0.1, 0.01]


@pytest.mark.parametrize("name", ["adam", "adamw", "adadelta", "sgd"])
def test_every_optimizer_lowers_a_quadratic(name):
    learning_rate = 10.0 if name == "adadelta" else 0.1
    tx, _ = optim.make_optimizer(config(name=name, learning_rate=learning_rate, weight_decay=1e-4))
    params = {"w": jnp.array([3.0, -2.0])}
    state = tx.init(params)
    for _ in range(50):
        grads = {"w": 2 * params["w"]}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert float(jnp.sum(params["w"] ** 2)) < 13.0 * 0.5


def test_gradient_clipping_bounds_the_first_update():
    tx, _ = optim.make_optimizer(config(name="sgd", learning_rate=1.0, momentum=0.0, grad_clip_norm=0.5))
    params = {"w": jnp.zeros(4)}
    updates, _ = tx.update({"w": jnp.full(4, 100.0)}, tx.init(params), params)
    np.testing.assert_allclose(float(optax.global_norm(updates)), 0.5, rtol=1e-5)


def test_plateau_from_config_scales_updates_after_patience():
    tx, _ = optim.make_optimizer(
        config(
            name="sgd",
            learning_rate=1.0,
            momentum=0.0,
            reduce_on_plateau=dict(factor=0.5, patience=2),
        )
    )
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for loss in (1.0, 1.0, 1.0):  # One improvement (from inf), then two evaluations without.
        state = optim.record_validation_loss(state, loss)
    assert optim.plateau_scale(state) == 0.5
    updates, _ = tx.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.5)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="adam, adamw, adadelta or sgd"):
        optim.make_optimizer(config(name="lamb"))
    with pytest.raises(ValueError, match="constant, cosine, linear or step"):
        optim.make_schedule(schedule_config(name="exp"), 1.0, 10)


# ---------------------------------------------------------------------------------------------------------------
# Reduce on plateau (optax.contrib.reduce_on_plateau fed at evaluations): Keras ReduceLROnPlateau's decisions.

LOSSES = [1.0, 0.9, 0.95, 0.9, 0.92, 0.89995, 0.8, 0.85, 0.86, 0.87, 0.88, 0.9, 0.91, 0.7, 0.75, 0.76]


def _our_scales(losses, **kwargs):
    tx = optim.reduce_on_plateau(**kwargs)
    state, scales = tx.init({"w": jnp.zeros(2)}), []
    record = jax.jit(optim.record_validation_loss)
    for loss in losses:
        state = record(state, loss)
        scales.append(optim.plateau_scale(state))
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
def test_plateau_makes_keras_decisions(patience, cooldown):
    # Keras counts the evaluation that ends its cooldown; optax does not: optax's cooldown c is Keras's c + 1.
    factor = math.sqrt(0.1)
    ours = _our_scales(LOSSES, factor=factor, patience=patience, cooldown=cooldown)
    keras = _keras_scales(LOSSES, factor, patience, cooldown + 1)
    np.testing.assert_allclose(ours, keras, rtol=1e-5)
    if cooldown == 0:  # Keras's cooldown 1 is its cooldown 0
        np.testing.assert_allclose(ours, _keras_scales(LOSSES, factor, patience, 0), rtol=1e-5)
    assert min(ours) < 1.0  # The sequence does plateau.


def test_plateau_scale_multiplies_adam_updates_and_survives_chains():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([0.5, -1.0, 2.0])}
    tx = optax.chain(optax.adam(1e-2), optim.reduce_on_plateau(factor=0.5, patience=1))
    plain = optax.adam(1e-2)
    state = optim.record_validation_loss(tx.init(params), 1.0)
    state = optim.record_validation_loss(state, 2.0)  # One evaluation without improvement: halve.
    assert optim.plateau_scale(state) == 0.5
    updates, _ = tx.update(grads, state, params)
    plain_updates, _ = plain.update(grads, plain.init(params), params)
    np.testing.assert_allclose(updates["w"], 0.5 * plain_updates["w"], rtol=1e-6)


def test_optimizer_without_plateau_is_untouched():
    state = optax.adam(1e-3).init({"w": jnp.ones(2)})
    assert optim.record_validation_loss(state, 1.0) == state
    assert optim.plateau_scale(state) is None


def test_bad_plateau_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="reduce_on_plateau: Factor must be in the range"):
        optim.reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match="patience=0"):
        optim.reduce_on_plateau(patience=0)
