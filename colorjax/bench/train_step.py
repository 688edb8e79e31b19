"""Trainer-step speed of a config, and the quick-start demo's models side by side.

`demo`: one jitted trainer step (`train.make_train_step`, the config's model, loss, optimizer, batch and image size)
of `configs/demo.py` (ECCV16 at 1/8 width with the class-rebalanced loss) and of `configs/demo.py:regression` (the
L2 baseline), timed in turns on random data; with the lowered program's FLOP count per step
(`colorjax.bench.devices`) and the training time a whole run of the config implies (steps x seconds per step;
evaluation, checkpoints and compilation come on top).

Imports neither TensorFlow nor clu (the step runs on random data), so it runs on accelerator images without them.
"""

from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np

from colorjax import config_lib
from colorjax.bench.timing import interleaved_median_seconds

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


def repo_config(file_name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config in the source checkout's configs/ folder."""
    path = CONFIGS_DIR / file_name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this benchmark runs from a source checkout of colorjax.")
    return config_lib.load_config(path, arg)


def config_train_step(config: ml_collections.ConfigDict) -> tuple[Callable[[], object], float]:
    """One trainer step of `config` (its model at `config.precision`, loss, optimizer, batch and size) on random
    data, as a callable, and the step's FLOPs (the lowered program's count)."""
    from colorjax import models, parallel
    from colorjax.train import losses, optim
    from colorjax.train import trainer as train

    size, batch = config.data.image_size, config.batch_size
    model = models.with_precision(models.from_config(config), config.precision)
    loss_fn = losses.from_config(config)
    tx, schedule = optim.make_optimizer(config)
    mesh = parallel.make_mesh()
    state = jax.jit(train.make_init_state(model, tx, size))(jax.random.key(0, impl="rbg"))
    rng = np.random.default_rng(0)
    host_batch = {
        "L": rng.uniform(0, 100, (batch, size, size, 1)).astype(np.float32),
        "chroma": rng.uniform(-60, 60, (batch, size, size, 2)).astype(np.float32),
    }
    device_batch = parallel.host_to_global(host_batch, mesh)
    step = jax.jit(train.make_train_step(model, loss_fn, tx, schedule), donate_argnums=(0,))
    key = jax.random.key(0)
    lowered = step.lower(state, device_batch, key)
    flops = float(lowered.cost_analysis().get("flops", float("nan")))
    compiled = lowered.compile()
    holder = {"state": state}

    def one_step():
        holder["state"], metrics = compiled(holder["state"], device_batch, key)
        return metrics

    return one_step, flops


def bench_demo(quick: bool) -> list[dict]:
    configs = {
        "configs/demo.py": repo_config("demo.py"),
        "configs/demo.py:regression": repo_config("demo.py", "regression"),
    }
    steps, flops = zip(*(config_train_step(config) for config in configs.values()), strict=True)
    seconds = interleaved_median_seconds(list(steps), repeats=5 if quick else 30)
    rows = []
    for (name, config), s, step_flops in zip(configs.items(), seconds, flops, strict=True):
        rows.append(
            {
                "contender": f"{name}: {config.model.name} width {config.model.width:g}, {config.loss.name}",
                "devices": f"{jax.device_count()} x {jax.devices()[0].platform}",
                "size": config.data.image_size,
                "batch": config.batch_size,
                "images_per_s": config.batch_size / s,
                "ms_per_step": 1e3 * s,
                "gflops_per_step": step_flops / 1e9,
                "time_vs_demo": s / seconds[0],
                "train_minutes": config.num_train_steps * s / 60,
                "steps": config.num_train_steps,
            }
        )
    return rows
