"""Trainer-step speed of a config, and against the authors' own training step.

`demo`: one jitted trainer step (`train.make_train_step`, the config's model, loss, optimizer, batch and image size)
of `configs/demo.py` (ECCV16 at 1/8 width with the class-rebalanced loss) and of `configs/demo.py:regression` (the
L2 baseline), timed in turns on random data; with the lowered program's FLOP count per step
(`colorjax.bench.devices`) and the training time a whole run of the config implies (steps x seconds per step;
evaluation, checkpoints and compilation come on top).

`train_step --model ddcolor`: colorjax's jitted GAN step of `configs/ddcolor.py:tiny` (`colorjax.train.gan`:
generator forward, L1 + VGG16-BN perceptual + GAN + colourfulness, backward, AdamW; then the discriminator's
update) against the authors' PyTorch iteration (`ddcolor_train_torch.authors_training_step`: their `feed_data` and
`optimize_parameters`, their modules from the modelscope wheel), timed in turns on the same random batch, both
networks at their own random initialisation (the VGG16-BN too: the step's cost does not depend on its weights).
DDColor-T (ConvNeXt-T) with the recipe's discriminator (nf 64), batch 2 at 64 x 64, so that it runs in minutes on
a busy 2-core CPU (`--quick`: 2 timed steps each instead of 5); the rows carry `devices.machine_columns()`. PyTorch
runs twice, with 1 thread and with its default count: on cores other processes also load, its OpenMP threads
wait on each other (DDColor-T's step took 2.3 s with 1 thread and 20-24 s with 2 at a load average of 9-11 on 2
cores), and the faster of the two is the comparison.

Imports neither TensorFlow nor clu (the step runs on random data), so it runs on accelerator images without them.
"""

import os
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
    from colorjax.train import gan as gan_lib
    from colorjax.train import losses, optim
    from colorjax.train import trainer as train

    size, batch = config.data.image_size, config.batch_size
    model = models.with_precision(models.from_config(config), config.precision)
    loss_fn = losses.from_config(config)
    tx, schedule = optim.make_optimizer(config)
    gan = gan_lib.from_config(config)  # a discriminator (and a random VGG16-BN) where config.gan.enabled
    mesh = parallel.make_mesh()
    state = jax.jit(train.make_init_state(model, tx, size, gan))(jax.random.key(0, impl="rbg"))
    device_batch = parallel.host_to_global(random_batch(batch, size), mesh)
    step = jax.jit(train.make_train_step(model, loss_fn, tx, schedule, gan=gan), donate_argnums=(0,))
    key = jax.random.key(0)
    lowered = step.lower(state, device_batch, key)
    flops = float(lowered.cost_analysis().get("flops", float("nan")))
    compiled = lowered.compile()
    holder = {"state": state}

    def one_step():
        holder["state"], metrics = compiled(holder["state"], device_batch, key)
        return metrics

    return one_step, flops


def random_batch(batch: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of random Lab photos: L uniform in [0, 100], ab in [-60, 60]."""
    rng = np.random.default_rng(seed)
    return {
        "L": rng.uniform(0, 100, (batch, size, size, 1)).astype(np.float32),
        "chroma": rng.uniform(-60, 60, (batch, size, size, 2)).astype(np.float32),
    }


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


TRAIN_STEP_MODELS = ("ddcolor",)


def bench_train_step(quick: bool) -> list[dict]:
    """`train_step --model M` (env COLORJAX_BENCH_MODEL; default ddcolor): M's trainer step against its authors'."""
    model = os.environ.get("COLORJAX_BENCH_MODEL") or "ddcolor"
    if model not in TRAIN_STEP_MODELS:
        raise ValueError(f"train_step times {', '.join(TRAIN_STEP_MODELS)} against the authors' step, not {model!r}.")
    return bench_ddcolor_train_step(quick)


def bench_ddcolor_train_step(quick: bool) -> list[dict]:
    """colorjax's DDColor-T GAN step and the authors' PyTorch iteration with 1 thread and with PyTorch's default
    thread count, in turns on the same batch."""
    import torch

    from colorjax.bench.ddcolor_train_torch import authors_training_step
    from colorjax.bench.devices import machine_columns
    from colorjax.models.ddcolor import SIZES, WIDTH_FIELDS

    size, batch = 64, 2
    config = repo_config("ddcolor.py", "tiny")
    config.data.image_size, config.batch_size, config.precision = size, batch, "float32"
    machine = machine_columns()  # before the PyTorch contenders change its thread count
    ours, _ = config_train_step(config)
    widths = {**SIZES[config.model.size], **{key: config.model[key] for key in WIDTH_FIELDS if key in config.model}}
    theirs = authors_training_step(widths, discriminator_nf=config.gan.discriminator_nf)
    host = random_batch(batch, size)
    L = torch.from_numpy(np.ascontiguousarray(host["L"].transpose(0, 3, 1, 2)))
    ab = torch.from_numpy(np.ascontiguousarray(host["chroma"].transpose(0, 3, 1, 2)))
    default_threads = torch.get_num_threads()

    def with_threads(threads: int) -> Callable[[], object]:
        def step():
            torch.set_num_threads(threads)
            return theirs(L, ab)

        return step

    contenders = {
        "colorjax: make_train_step, config.gan (configs/ddcolor.py:tiny)": ours,
        "pytorch, 1 thread: the authors' feed_data + optimize_parameters": with_threads(1),
        f"pytorch, {default_threads} threads: the authors' feed_data + optimize_parameters": with_threads(
            default_threads
        ),
    }
    try:
        seconds = interleaved_median_seconds(list(contenders.values()), repeats=2 if quick else 5)
    finally:
        torch.set_num_threads(default_threads)
    return step_rows(dict(zip(contenders, seconds, strict=True)), batch=batch, size=size, machine=machine)


def step_rows(seconds: dict[str, float], *, batch: int, size: int, machine: dict) -> list[dict]:
    """One row per contender (label -> median seconds per step): ms per step, images/s, and `vs_pytorch_fastest`
    (the fastest PyTorch contender's time over the row's: above 1, faster than theirs); `machine`
    (`devices.machine_columns`) on every row."""
    pytorch = min((s for label, s in seconds.items() if label.startswith("pytorch")), default=None)
    rows = []
    for label, s in seconds.items():
        row = {"contender": label, "size": size, "batch": batch, "ms_per_step": 1e3 * s, "images_per_s": batch / s}
        if pytorch is not None:
            row["vs_pytorch_fastest"] = pytorch / s
        rows.append({**row, **machine})
    return rows
