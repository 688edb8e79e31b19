"""Benchmarks: `python -m colorjax.bench [NAME ...] [--out results.json]`.

Speed is part of correctness here, and this machine is noisy: every benchmark compares its contenders side by side
in ONE run and reports ratios next to the absolute numbers. Each topic lives in its own module of this package and
registers `name -> fn(quick: bool) -> list[dict]` in `BENCHMARKS`; each returned dict is one printed row
(`{"benchmark": ..., "contender": ..., "images_per_s": ..., ...}`).
"""

import importlib
from collections.abc import Callable

# name -> "module:function" (imported lazily, so one benchmark's heavy imports never slow another's).
BENCHMARKS: dict[str, str] = {
    "pipeline": "colorjax.bench.pipeline:bench_pipeline",
    "demo": "colorjax.bench.train_step:bench_demo",
    "train_step": "colorjax.bench.train_step:bench_train_step",
    "zhang": "colorjax.bench.zhang:bench_zhang",
    "iizuka": "colorjax.bench.iizuka:bench_iizuka",
    "export": "colorjax.bench.export:bench_export",
    "serve": "colorjax.bench.serve:bench_serve",
    "endtoend": "colorjax.bench.endtoend:bench_endtoend",
    "video": "colorjax.bench.video:bench_video",
    "profile": "colorjax.bench.profile_step:bench_profile",
    "jpeg_pipeline": "colorjax.bench.jpeg_pipeline:bench_jpeg_pipeline",
    "ddcolor": "colorjax.bench.ddcolor:bench_ddcolor",
    "bf16_dots": "colorjax.bench.bf16_dots:bench_bf16_dots",
}


def get_benchmark(name: str) -> Callable[[bool], list[dict]]:
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}; choose from: {', '.join(sorted(BENCHMARKS))}.")
    module_name, function_name = BENCHMARKS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)
