"""Iizuka et al. 2016 inference speed at full width: 224x224 images/s, and one 1024^2 / 2048^2 / 4096^2 image.

The paper reports 0.40 s per 224x224 image on CPU (0.08 s GPU) and about 5 s for a 2048x2048 image on GPU.
Contenders, side by side in one run: the 224 model call at batch 1 and 8; `colorize_large` at 1024 and 2048 with
the local path untiled (the default budget, 2048^2 pixels, covers both), tiled (a 1024^2 budget) and downscaled
(same budget); the full run adds one 4096x4096 image, which the default budget tiles. Ratios compare each
contender with the untiled run of the same size. Peak RSS is the process's high-water mark so far (monotone); the
4096 image runs right after the 224 contenders, so its row shows what tiling it needs.
Weights are random: speed does not depend on them.
"""

import resource

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.bench.timing import median_seconds
from colorjax.models.iizuka import Iizuka
from colorjax.models.iizuka_inference import colorize_large

PAPER_CPU_SECONDS_224 = 0.40
PAPER_GPU_SECONDS_2048 = 5.0


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _random_variables(model: Iizuka) -> dict:
    """LeCun-normal kernels, unit BatchNorm, zero biases, from numpy: `jax.jit(model.init)` would spend ~35 s of
    CPU compiling the model's ~40 truncated-normal initialisers, which a speed benchmark does not need."""
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 224, 224, 1)))

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            scale = 1.0 / np.sqrt(np.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.standard_normal(leaf.shape, np.float32) * scale)
        return jnp.full(leaf.shape, 1.0 if name in ("scale", "var") else 0.0, jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _random_L(side: int, batch: int = 1) -> jax.Array:
    coarse = jax.random.uniform(jax.random.key(side), (batch, 16, 16, 1), minval=0.0, maxval=100.0)
    return jax.image.resize(coarse, (batch, side, side, 1), method="bilinear")


def bench_iizuka(quick: bool) -> list[dict]:
    model = Iizuka(num_classes=205)
    variables = _random_variables(model)
    apply = jax.jit(model.apply)
    rows: list[dict] = []
    repeats = 2 if quick else 3

    for batch in (1,) if quick else (1, 8):
        L = _random_L(224, batch)
        seconds = median_seconds(lambda L=L: apply(variables, L)["chroma"], repeats=repeats)
        rows.append(
            {
                "benchmark": "iizuka_224",
                "contender": f"model call, batch {batch}",
                "images_per_s": batch / seconds,
                "seconds_per_image": seconds / batch,
                "vs_paper_cpu_0.40s": PAPER_CPU_SECONDS_224 / (seconds / batch),
                "peak_rss_gib": _peak_rss_gib(),
            }
        )

    # Before the large untiled runs, so the high-water mark shows what tiling 4096^2 needs.
    if not quick:
        L = _random_L(4096)
        info = {}

        def run_4096():
            outputs, run_info = colorize_large(model, variables, L)
            info.update(run_info)
            return outputs["chroma"]

        seconds = median_seconds(run_4096, repeats=1, warmup=0)  # one cold run: compile included
        rows.append(
            {
                "benchmark": "iizuka_4096",
                "contender": "default budget (compile included)",
                "seconds_per_image": seconds,
                "mode": info["mode"],
                "tiles": info["num_tiles"],
                "peak_rss_gib": _peak_rss_gib(),
            }
        )

    sides = (512,) if quick else (1024, 2048)
    for side in sides:
        L = _random_L(side)
        budget = (side // 2) ** 2 if not quick else 384**2
        contenders = [
            ("full resolution", {}),
            (f"tiled, budget {int(budget**0.5)}^2", {"max_pixels": budget}),
        ]
        if not quick:
            contenders.append(
                (
                    f"downscaled, budget {side // 2}^2",
                    {"max_pixels": budget, "strategy": "downscale"},
                )
            )
        untiled_seconds = None
        for name, kwargs in contenders:
            info = {}

            def run(L=L, kwargs=kwargs, info=info):
                outputs, run_info = colorize_large(model, variables, L, **kwargs)
                info.update(run_info)
                return outputs["chroma"]

            seconds = median_seconds(run, repeats=1 if side >= 1024 else repeats)
            untiled_seconds = untiled_seconds or seconds
            rows.append(
                {
                    "benchmark": f"iizuka_{side}",
                    "contender": name,
                    "seconds_per_image": seconds,
                    "vs_full_resolution": untiled_seconds / seconds,
                    "mode": info["mode"],
                    "tiles": info["num_tiles"],
                    "peak_rss_gib": _peak_rss_gib(),
                    **({"vs_paper_gpu_5s": PAPER_GPU_SECONDS_2048 / seconds} if side == 2048 else {}),
                }
            )

    return rows
