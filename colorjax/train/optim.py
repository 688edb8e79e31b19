"""Optimizers and learning-rate schedules from `config.optimizer` and `config.schedule`.

config.optimizer: name (adam | adamw | adadelta | sgd), learning_rate (peak), b1, b2, eps, momentum (sgd),
  rho (adadelta), weight_decay (decoupled for adamw; L2 added to the gradient otherwise, as Caffe/PyTorch Adam do),
  grad_clip_norm (global norm; None = off).
  reduce_on_plateau: None, or {factor, patience, atol, rtol, cooldown, min_scale} to scale the learning rate down
  when `config.plateau_metric` (default val/loss) stops improving at evaluations (`reduce_on_plateau` below).
config.schedule: name (constant | cosine | step | linear), warmup_steps, and for `step` the `boundaries` (fractions of
  training) and `decay_factor`; `cosine` decays to `final_fraction` of the peak.
"""

from typing import Any

import flax.struct
import jax
import optax


def make_schedule(schedule_config: Any, learning_rate: float, total_steps: int) -> optax.Schedule:
    name, warmup = schedule_config.name, int(schedule_config.warmup_steps)
    decay_steps = max(1, total_steps - warmup)
    if name == "constant":
        main = optax.constant_schedule(learning_rate)
    elif name == "cosine":
        main = optax.cosine_decay_schedule(learning_rate, decay_steps, alpha=schedule_config.final_fraction)
    elif name == "linear":
        main = optax.linear_schedule(learning_rate, learning_rate * schedule_config.final_fraction, decay_steps)
    elif name == "step":
        boundaries = {int(f * decay_steps): schedule_config.decay_factor for f in schedule_config.boundaries}
        main = optax.piecewise_constant_schedule(learning_rate, boundaries)
    else:
        raise ValueError(f"Unknown schedule {name!r}; config.schedule.name must be constant, cosine, linear or step.")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup), main], [warmup])


def make_optimizer(config: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optax transformation and its learning-rate schedule (the schedule is logged as `train/lr`)."""
    opt = config.optimizer
    schedule = make_schedule(config.schedule, opt.learning_rate, config.num_train_steps)
    name, weight_decay = opt.name, opt.weight_decay
    # eps None: the optimizer's own default (optax: 1e-8 for Adam, 1e-6 for Adadelta).
    eps = {} if opt.eps is None else {"eps": opt.eps}
    parts = []
    if opt.grad_clip_norm:
        parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
    if weight_decay and name != "adamw":
        parts.append(optax.add_decayed_weights(weight_decay))
    if name == "adam":
        parts.append(optax.adam(schedule, b1=opt.b1, b2=opt.b2, **eps))
    elif name == "adamw":
        parts.append(optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=weight_decay, **eps))
    elif name == "adadelta":
        parts.append(optax.adadelta(schedule, rho=opt.rho, **eps))
    elif name == "sgd":
        parts.append(optax.sgd(schedule, momentum=opt.momentum, nesterov=opt.nesterov))
    else:
        raise ValueError(f"Unknown optimizer {name!r}; config.optimizer.name must be adam, adamw, adadelta or sgd.")
    if opt.reduce_on_plateau:
        parts.append(reduce_on_plateau(**opt.reduce_on_plateau))
    return optax.chain(*parts), schedule


# ---------------------------------------------------------------------------------------------------------------
# Reduce on plateau: optax.contrib.reduce_on_plateau, fed at evaluations only.


@flax.struct.dataclass
class PlateauState:
    """`optax.contrib.reduce_on_plateau`'s state, with its settings kept in the tree's structure (not leaves): so
    `record_validation_loss` needs only the optimizer state, also inside jit, and checkpoints hold the state alone."""

    plateau: optax.contrib.ReduceLROnPlateauState
    settings: tuple[tuple[str, float], ...] = flax.struct.field(pytree_node=False)


def reduce_on_plateau(
    factor: float = 0.1**0.5,
    patience: int = 5,
    atol: float = 1e-4,
    rtol: float = 0.0,
    cooldown: int = 0,
    min_scale: float = 0.0,
) -> optax.GradientTransformation:
    """Scales every update by the scale of `optax.contrib.reduce_on_plateau`, which `record_validation_loss` lowers.

    optax's transformation takes the monitored value on every `update` call; the validation loss exists only at
    evaluations, so the training step only applies the current scale and `record_validation_loss` runs optax's own
    update, with the evaluation's loss, after each evaluation. An evaluation improves when loss < (1 - rtol) best -
    atol (the defaults are Keras ReduceLROnPlateau's min_delta = 1e-4); after `patience` evaluations in a row without
    improvement the scale is multiplied by `factor` (never below `min_scale`) and the next `cooldown` evaluations
    are ignored (optax's cooldown c ignores as many evaluations as Keras's cooldown c + 1). The scale multiplies the
    updates, so with Adam or SGD it is exactly a learning-rate multiplier.
    """
    settings = dict(factor=factor, patience=patience, atol=atol, rtol=rtol, cooldown=cooldown, min_scale=min_scale)
    if patience < 1 or cooldown < 0 or min_scale < 0:
        raise ValueError(
            "config.optimizer.reduce_on_plateau needs patience >= 1 and non-negative cooldown and min_scale; "
            f"got patience={patience}, cooldown={cooldown}, min_scale={min_scale}."
        )
    try:
        plateau = optax.contrib.reduce_on_plateau(**settings)
    except ValueError as error:
        raise ValueError(f"config.optimizer.reduce_on_plateau: {error}") from None

    def init_fn(params: Any) -> PlateauState:
        return PlateauState(plateau.init(params), tuple(sorted(settings.items())))

    def update_fn(updates: Any, state: PlateauState, params: Any = None) -> tuple[Any, PlateauState]:
        del params
        scale = state.plateau.scale
        return jax.tree.map(lambda update: (scale * update).astype(update.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _is_plateau(node: Any) -> bool:
    return isinstance(node, PlateauState)


def record_validation_loss(opt_state: Any, validation_loss: jax.Array | float) -> Any:
    """Feeds one evaluation's loss to every `PlateauState` inside `opt_state`; other states pass through.

    Pure and jit-able; a no-op for an optimizer without `reduce_on_plateau`.
    """

    def record(node):
        if not _is_plateau(node):
            return node
        transform = optax.contrib.reduce_on_plateau(**dict(node.settings))
        _, plateau = transform.update(None, node.plateau, value=validation_loss)
        return node.replace(plateau=plateau)

    return jax.tree.map(record, opt_state, is_leaf=_is_plateau)


def plateau_scale(opt_state: Any) -> float | None:
    """The current learning-rate multiplier (for logging), or None if `opt_state` has no plateau state."""
    found = [node for node in jax.tree.leaves(opt_state, is_leaf=_is_plateau) if _is_plateau(node)]
    return float(found[0].plateau.scale) if found else None
