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
    name = schedule_config.get("name", "constant")
    warmup = int(schedule_config.get("warmup_steps", 0))
    decay_steps = max(1, total_steps - warmup)
    if name == "constant":
        main = optax.constant_schedule(learning_rate)
    elif name == "cosine":
        main = optax.cosine_decay_schedule(
            learning_rate, decay_steps, alpha=schedule_config.get("final_fraction", 0.0)
        )
    elif name == "linear":
        main = optax.linear_schedule(
            learning_rate, learning_rate * schedule_config.get("final_fraction", 0.0), decay_steps
        )
    elif name == "step":
        factor = schedule_config.get("decay_factor", 0.1)
        boundaries = {
            int(f * decay_steps): factor for f in schedule_config.get("boundaries", (0.5, 0.75))
        }
        main = optax.piecewise_constant_schedule(learning_rate, boundaries)
    else:
        raise ValueError(
            f"Unknown schedule {name!r}; config.schedule.name must be constant, cosine, linear or step."
        )
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup), main], [warmup])


def make_optimizer(config: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optax transformation and its learning-rate schedule (the schedule is logged as `train/lr`)."""
    opt = config.optimizer
    schedule = make_schedule(config.get("schedule", {}), opt.learning_rate, config.num_train_steps)
    name = opt.get("name", "adam")
    weight_decay = opt.get("weight_decay", 0.0)
    parts = []
    if opt.get("grad_clip_norm"):
        parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
    if weight_decay and name != "adamw":
        parts.append(optax.add_decayed_weights(weight_decay))
    if name == "adam":
        parts.append(
            optax.adam(
                schedule, b1=opt.get("b1", 0.9), b2=opt.get("b2", 0.999), eps=opt.get("eps", 1e-8)
            )
        )
    elif name == "adamw":
        parts.append(
            optax.adamw(
                schedule,
                b1=opt.get("b1", 0.9),
                b2=opt.get("b2", 0.999),
                eps=opt.get("eps", 1e-8),
                weight_decay=weight_decay,
            )
        )
    elif name == "adadelta":
        parts.append(optax.adadelta(schedule, rho=opt.get("rho", 0.95), eps=opt.get("eps", 1e-6)))
    elif name == "sgd":
        parts.append(
            optax.sgd(
                schedule, momentum=opt.get("momentum", 0.9), nesterov=opt.get("nesterov", False)
            )
        )
    else:
        raise ValueError(
            f"Unknown optimizer {name!r}; config.optimizer.name must be adam, adamw, adadelta or sgd."
        )
    plateau = opt.get("reduce_on_plateau")
    if plateau:
        parts.append(optim_plateau.reduce_on_plateau(**plateau))
    return optax.chain(*parts), schedule


record_validation_loss = optim_plateau.record_validation_loss
plateau_scale = optim_plateau.plateau_scale
