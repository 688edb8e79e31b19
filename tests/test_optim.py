"""Optimizers and schedules from the config."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from colorjax import config_lib, optim, optim_plateau


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
    schedule = optim.make_schedule(
        schedule_config(name="step", boundaries=(0.5, 0.75), decay_factor=0.1), 1.0, 100
    )
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
    tx, _ = optim.make_optimizer(
        config(name="sgd", learning_rate=1.0, momentum=0.0, grad_clip_norm=0.5)
    )
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
        state = optim_plateau.record_validation_loss(state, loss)
    assert optim_plateau.plateau_scale(state) == 0.5
    updates, _ = tx.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.5)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="adam, adamw, adadelta or sgd"):
        optim.make_optimizer(config(name="lamb"))
    with pytest.raises(ValueError, match="constant, cosine, linear or step"):
        optim.make_schedule(schedule_config(name="exp"), 1.0, 10)
