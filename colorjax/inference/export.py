"""Takes a model out of colorjax: its forward pass (L -> chroma, and logits where it has them), weights inside, as
StableHLO (`jax.export`, shape-polymorphic where the model allows) or ONNX (jax2onnx), with `export.json` beside it
(`export_model`, `load_export`). What the files hold and how to run them is described in `colorjax/cli/export.py`
(`python -m colorjax.export`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import ColorjaxError, files

FORMATS = ("stablehlo", "onnx")
INPUT_NAME = "L"
DYNAMIC_AXES = ("batch", "height", "width")


class ExportError(ColorjaxError, ValueError):
    """An export the user asked for that cannot be done; printed as one line."""


def forward_function(model, variables) -> Any:
    """`L -> {output name: array}`: the model in inference mode with `variables` baked in."""

    def forward(L: jax.Array) -> dict[str, jax.Array]:
        return dict(model.apply(variables, L, train=False))

    return forward


XLA_CPU_FAST_PATHS = ("first_conv_as_matmul", "depthwise_as_shifts")  # module fields, off in an ONNX export


def without_xla_cpu_fast_paths(model):
    """`model` as an ONNX export runs it: without the XLA:CPU fast paths that jax2onnx cannot keep polymorphic
    (ECCV16's im2col first conv, a reshape in height and width; DDColor's depthwise convs as shifted multiply-adds,
    in batch). The plain convs compute the same with the same parameters, and onnxruntime has its own kernels."""
    plain = {name: False for name in XLA_CPU_FAST_PATHS if getattr(model, name, False) is not False}
    return model.clone(**plain) if plain else model


def _input_specs(size: int) -> list[tuple[str, tuple]]:
    """Candidate input shapes, most general first: (label, symbolic shape spec or None for fixed)."""
    return [
        ("batch, height, width", ("batch", "height", "width", 1)),
        ("batch", ("batch", size, size, 1)),
        ("fixed", (1, size, size, 1)),
    ]


def _symbolic_struct(shape: tuple) -> jax.ShapeDtypeStruct:
    names = [str(d) if isinstance(d, str) else str(int(d)) for d in shape]
    return jax.ShapeDtypeStruct(jax.export.symbolic_shape(", ".join(names)), jnp.float32)


# Between any height and width and a fixed size, for StableHLO: any multiple of 8. SIGGRAPH17 pads its input to a
# multiple of 8 and adds a skip path to an upsampled one; for any size JAX cannot prove that the two paths' sizes
# agree, for a multiple of 8 it can.
MULTIPLES_OF_8 = ("batch, height and width (multiples of 8)", ("batch", "8*h", "8*w", 1))


def export_stablehlo(forward, size: int, platforms: tuple[str, ...] = ("cpu",)):
    """(jax.export.Exported, shape label, input shape): the most general input shape `jax.export` accepts."""
    failures = []
    general, *others = _input_specs(size)
    for label, shape in (general, MULTIPLES_OF_8, *others):
        try:
            exported = jax.export.export(jax.jit(forward), platforms=platforms)(_symbolic_struct(shape))
            return exported, label, shape
        except Exception as error:  # shape polymorphism fails in many ways (concretization, pads, ...)
            failures.append(f"{label}: {type(error).__name__}")
    raise ExportError(f"jax.export failed for every input shape ({'; '.join(failures)}).")


def _reset_gather_constant_folding() -> None:
    """Lets jax2onnx fold constant gather indices again in this conversion.

    jax2onnx 0.17 registers its gather constant folders on the first conversion's context and then sets a
    module-wide flag, so every later conversion in the process runs without them; a gather with constant indices
    (the resizes) then goes down a path that needs concrete sizes, and a second ECCV16 export in one process fell
    back from any size to a fixed one. Clearing the flag re-registers them on the new context.
    """
    try:
        from jax2onnx.plugins.jax.lax import gather
    except ImportError:
        return
    if hasattr(gather, "_CONST_HANDLERS_REGISTERED"):
        gather._CONST_HANDLERS_REGISTERED = False


@contextlib.contextmanager
def _quiet_onnx_ir():
    """Holds back onnx_ir's WARNING records while jax2onnx serialises ("The value type for shape [1,32] is not
    known ... Skipping serialization": value-info notes about intermediates, the export is checked after)."""
    logger = logging.getLogger("onnx_ir")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(forward, size: int, path: Path):
    """Writes `path` (ONNX, opset 23) for the most general input shape jax2onnx converts; returns (label, shape,
    output names)."""
    try:
        from jax2onnx import to_onnx

        from colorjax.inference.onnx_runtime import OnnxModel
    except ImportError:
        raise ExportError("ONNX export needs jax2onnx and onnx: pip install 'colorjax[onnx]'.") from None
    failures = []
    for label, shape in _input_specs(size):
        spec = _symbolic_struct(shape)
        try:
            # Traced by JAX first, outside jax2onnx's Flax/resize interceptors (see the module docstring).
            closed = jax.make_jaxpr(forward)(spec)
            out_shapes = jax.eval_shape(forward, spec)
        except Exception as error:
            failures.append(f"{label}: {type(error).__name__}")
            continue
        out_tree = jax.tree.structure(out_shapes)
        output_names = sorted(out_shapes)  # a dict flattens in key order

        def replay(L, closed=closed, out_tree=out_tree):
            return jax.tree.unflatten(out_tree, jax.core.eval_jaxpr(closed.jaxpr, closed.consts, L))

        try:
            _reset_gather_constant_folding()
            with _quiet_onnx_ir():
                to_onnx(
                    replay,
                    [spec],
                    model_name="colorjax",
                    return_mode="file",
                    output_path=str(path),
                    input_names=[INPUT_NAME],
                    output_names=output_names,
                )
            OnnxModel(path)  # jax2onnx can write a graph that onnxruntime's shape inference rejects
            return label, shape, output_names
        except Exception as error:
            failures.append(f"{label}: {type(error).__name__}: {str(error).splitlines()[0]}")  # whole, not cut
            for written in path.parent.glob(path.name + "*"):
                written.unlink()
    raise ExportError(f"jax2onnx failed for every input shape ({'; '.join(failures)}).")


def check_size(shape: tuple, size: int) -> tuple[int, int, int]:
    """A (batch, height, width) to test an export at: 2 x size x size, or the export's fixed dims."""
    batch = shape[0] if isinstance(shape[0], int) else 2
    height = shape[1] if isinstance(shape[1], int) else size
    width = shape[2] if isinstance(shape[2], int) else size
    return batch, height, width


def export_model(
    model,
    variables,
    output: str | Path,
    fmt: str,
    *,
    size: int,
    settings: dict[str, Any],
    check_side: int = 64,
) -> dict[str, Any]:
    """Exports `model` with `variables` into the folder `output`; returns (and writes) its export.json manifest.

    `size`: the fixed side used where the model's computation is not polymorphic in height and width; `settings`:
    what the manifest records about the model (name, colour space, resolution, ...). The export is run once at
    `check_side` (or its fixed size) and compared with colorjax's forward; the manifest records the difference.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown --format {fmt!r}; choose from: {', '.join(FORMATS)}.")
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise ExportError(f"{output} is not empty; choose a new --output folder.")
    if fmt == "onnx":
        model = without_xla_cpu_fast_paths(model)
    # The folder is built under a temporary name and appears whole: a failed or interrupted export leaves none.
    with files.atomic_path(output.resolve() if output.is_symlink() else output) as staging:
        staging.mkdir()
        return _export_into(model, variables, staging, fmt, size, settings, check_side)


def _export_into(model, variables, output: Path, fmt: str, size: int, settings: dict, check_side: int) -> dict:
    forward = forward_function(model, variables)
    if fmt == "stablehlo":
        exported, label, shape = export_stablehlo(forward, size)
        path = files.atomic_write(output / "model.stablehlo", exported.serialize())
        output_names = sorted(jax.eval_shape(forward, _symbolic_struct(shape)))
    else:
        path = output / "model.onnx"
        label, shape, output_names = export_onnx(forward, size, path)

    batch, height, width = check_size(shape, check_side)
    L = np.random.default_rng(0).uniform(0, 100, (batch, height, width, 1)).astype(np.float32)
    expected = jax.jit(forward)(L)
    got = load_export(output, fmt_hint=fmt)(L)
    differences = {name: float(np.max(np.abs(np.asarray(expected[name]) - got[name]))) for name in output_names}
    manifest = {
        "format": fmt,
        "file": path.name,
        "input": {
            "name": INPUT_NAME,
            "shape": [d if isinstance(d, int) else str(d) for d in shape],
            "dtype": "float32",
            "meaning": "CIE L in [0, 100]",
        },
        "polymorphic_in": label,
        "outputs": output_names,
        **settings,
        "check": {"input_shape": [batch, height, width, 1], "max_abs_difference": differences},
    }
    files.write_json(output / "export.json", manifest)
    return manifest


def load_export(folder: str | Path, fmt_hint: str | None = None):
    """A callable `L (N, H, W, 1) float32 -> {output name: np.ndarray}` for an exported folder (either format)."""
    folder = Path(folder)
    if (folder / "model.stablehlo").is_file() and fmt_hint in (None, "stablehlo"):
        exported = jax.export.deserialize(bytearray((folder / "model.stablehlo").read_bytes()))

        def call(L):
            return {k: np.asarray(v) for k, v in exported.call(jnp.asarray(L)).items()}

        return call
    if (folder / "model.onnx").is_file():
        from colorjax.inference.onnx_runtime import OnnxModel

        return OnnxModel(folder / "model.onnx")
    raise ExportError(f"{folder} holds no model.stablehlo or model.onnx; export one first.")
