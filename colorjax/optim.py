"""Optimizers and learning-rate schedules from `config.optimizer` and `config.schedule`.

config.optimizer: name (adam | adamw | adadelta | sgd), learning_rate (peak), b1, b2, eps, momentum (sgd),
  rho (adadelta), weight_decay (decoupled for adamw; L2 added to the gradient otherwise, as Caffe/PyTorch Adam do),
  grad_clip_norm (global norm; None = off).
  reduce_on_plateau: None, or {factor, patience, min_delta, cooldown, min_scale} to scale the learning rate down
  when `config.plateau_metric` (default val/loss) stops improving at evaluations (Keras ReduceLROnPlateau).
config.schedule: name (constant | cosine | step | linear), warmup_steps, and for `step` the `boundaries` (fractions of
  training) and `decay_factor`; `cosine` decays to `final_fraction` of the peak.
"""

from typing import Any

import optax

from colorjax import optim_plateau


def make_schedule(schedule_config: Any, learning_rate: float, total_steps: int) -> optax.Schedule:
    name, warmup = schedule_config.name, int(schedule_config.warmup_steps)
    decay_steps = max(1, total_steps - warmup)
    if name == "constant":
        main = optax.constant_schedule(learning_rate)
    elif name == "cosine":
        main = optax.cosine_decay_schedule(
            learning_rate, decay_steps, alpha=schedule_config.final_fraction
        )
    elif name == "linear":
        main = optax.linear_schedule(
            learning_rate, learning_rate * schedule_config.final_fraction, decay_steps
        )
    elif name == "step":
        boundaries = {
            int(f * decay_steps): schedule_config.decay_factor for f in schedule_config.boundaries
        }
        main = optax.piecewise_constant_schedule(learning_rate, boundaries)
    else:
        raise ValueError(
            f"Unknown schedule {name!r}; config.schedule.name must be constant, cosine, linear or step."
        )
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
        parts.append(
            optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=weight_decay, **eps)
        )
    elif name == "adadelta":
        parts.append(optax.adadelta(schedule, rho=opt.rho, **eps))
    elif name == "sgd":
        parts.append(optax.sgd(schedule, momentum=opt.momentum, nesterov=opt.nesterov))
    else:
        raise ValueError(
            f"Unknown optimizer {name!r}; config.optimizer.name must be adam, adamw, adadelta or sgd."
        )
    if opt.reduce_on_plateau:
        parts.append(optim_plateau.reduce_on_plateau(**opt.reduce_on_plateau))
    return optax.chain(*parts), schedule


record_validation_loss = optim_plateau.record_validation_loss
plateau_scale = optim_plateau.plateau_scale
