"""CPU runtimes for the exported model: `python -m colorjax.bench export`.

Full-width ECCV16 at 256x256 (the authors' demo size), batch 1 and 8, the same random weights everywhere, timed in
turns in one run: colorjax `jit(apply)` on XLA:CPU in float32 and bfloat16 (`ECCV16(dtype=bfloat16)`: bfloat16
activations, float32 parameters), the ONNX export (`colorjax.export`, polymorphic in batch and size) in onnxruntime's
CPU provider in float32, and PyTorch eager (`torch.inference_mode`) in float32 and bfloat16 (model and input cast).
onnxruntime's CPU provider has no bfloat16 convolution kernels, so it has no bfloat16 row. Each row says how far its
chroma is from XLA float32's. `quick=True`: width 1/4 at 64x64.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.bench.timing import interleaved_median_seconds
from colorjax.models import get_model


def bench_export(quick: bool) -> list[dict]:
    from colorjax.bench.zhang import torch_eccv16
    from colorjax.inference.export import export_onnx, forward_function
    from colorjax.inference.onnx_runtime import OnnxModel
    from colorjax.models.published import state_dict_to_variables

    width, size = (0.25, 64) if quick else (1.0, 256)
    repeats = 3
    model = get_model("eccv16", width=width)
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.manual_seed(0)
        torch_model = torch_eccv16(torch, width)
        state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
        variables = state_dict_to_variables("eccv16", state, template, source="benchmark weights")
    else:
        rng = np.random.default_rng(0)
        variables = jax.tree.map(lambda leaf: jnp.asarray(0.01 * rng.standard_normal(leaf.shape), leaf.dtype), template)
    # ECCV16's PyTorch forward decodes at T = 1: compare like with like.
    model = model.clone(temperature=1.0)
    bf16_model = model.clone(dtype=jnp.bfloat16)
    apply = jax.jit(lambda v, L: model.apply(v, L)["chroma"])
    apply_bf16 = jax.jit(lambda v, L: bf16_model.apply(v, L)["chroma"])

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = os.path.join(folder, "model.onnx")
        label, _, _ = export_onnx(forward_function(model, variables), size, Path(onnx_path))
        onnx_model = OnnxModel(onnx_path)
        rows = []
        for batch in (1, 8):
            L = np.random.default_rng(batch).uniform(0, 100, (batch, size, size, 1))
            L = L.astype(np.float32)
            L_jax = jnp.asarray(L)
            contenders = {
                "colorjax XLA:CPU float32": lambda L_jax=L_jax: apply(variables, L_jax),
                "colorjax XLA:CPU bfloat16": lambda L_jax=L_jax: apply_bf16(variables, L_jax),
                f"onnxruntime CPU float32 (export polymorphic in {label})": lambda L=L: onnx_model(L)["chroma"],
            }
            if torch is not None:
                L_torch = torch.from_numpy(L).permute(0, 3, 1, 2).contiguous()
                torch_bf16 = torch_eccv16(torch, width)
                torch_bf16.load_state_dict(torch_model.state_dict())
                torch_bf16 = torch_bf16.to(torch.bfloat16)

                def torch_run(net, x):
                    with torch.inference_mode():
                        return net(x)[1]

                contenders[f"pytorch {torch.__version__} eager float32"] = lambda L_torch=L_torch: torch_run(
                    torch_model, L_torch
                )
                contenders[f"pytorch {torch.__version__} eager bfloat16"] = lambda L_torch=L_torch, net=torch_bf16: (
                    torch_run(net, L_torch.bfloat16())
                )
            seconds = interleaved_median_seconds(list(contenders.values()), repeats)
            reference = np.asarray(apply(variables, L_jax))
            for (name, fn), s in zip(contenders.items(), seconds, strict=True):
                chroma = fn()
                if torch is not None and isinstance(chroma, torch.Tensor):
                    chroma = chroma.float().permute(0, 2, 3, 1).numpy()
                rows.append(
                    {
                        "contender": name,
                        "batch": batch,
                        "images_per_s": batch / s,
                        "ms_per_image": 1e3 * s / batch,
                        "speedup_vs_xla_f32": seconds[0] / s,
                        "max_chroma_diff_vs_xla_f32": float(np.max(np.abs(np.asarray(chroma, np.float32) - reference))),
                        "width": width,
                        "size": size,
                        "cpu_threads": os.cpu_count(),
                    }
                )
    return rows
