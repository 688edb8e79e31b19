"""Takes a model out of colorjax: StableHLO (`jax.export`) or ONNX, with its weights inside.

    python -m colorjax.export --weights eccv16 --format onnx --output exported/eccv16
    python -m colorjax.export --workdir runs/demo --format stablehlo --output exported/demo

What is exported is the model's forward pass: L (N, H, W, 1) float32 CIE lightness in [0, 100] -> its outputs
(`chroma` (N, H, W, 2) in the colour space's units; `logits` / `class_logits` where the model has them), in
inference mode (BatchNorm running statistics), the weights as constants. Turning a photo into L and recombining the
chroma with it stays with the caller (`colorjax.inference.onnx_runtime` does it for ONNX). OUTPUT receives the model file
(`model.stablehlo` or `model.onnx`, with `model.onnx.data` for weights past ONNX's inline limit) and
`export.json`: the model, its input shape, output names, colour space, the Colorizer's sizing (resolution, square)
and the largest difference from colorjax's own forward measured right after export.

Shapes. The input is shape-polymorphic in batch, height and width (`["batch", "height", "width", 1]`) where the
model's computation allows it; for StableHLO else in batch and in heights and widths that are multiples of 8
(`["batch", "8*h", "8*w", 1]`); else polymorphic in batch at a fixed size (`--size`, default the run's working
resolution), else fixed. The command's last line and export.json's `polymorphic_in` say which it is. Measured
with jax 0.10 / jax2onnx 0.17:

| model       | StableHLO              | ONNX                                                               |
|-------------|------------------------|--------------------------------------------------------------------|
| eccv16      | batch, height, width   | batch, height, width                                               |
| regression  | batch, height, width   | batch (stride-2 'SAME' padding depends on the parity of H and W,  |
|             |                        | and jax2onnx's Conv needs integer pads)                            |
| siggraph17  | batch, height, width in multiples of 8 (its padding to a multiple of 8: JAX cannot prove | batch, |
|             | the skip paths' sizes agree for any size) | at a `--size` that is a multiple of 8 (jax2onnx 0.17 |
|             |                        | writes the edge padding as a Concat onnxruntime rejects)           |
| iizuka      | batch (the global path's antialiased resize needs a concrete size) | batch                  |
| ddcolor     | batch (the colour decoder's sine positions are computed per size; `--size` default 512) | batch   |

StableHLO is JAX's own serialization (`jax.export.deserialize(...).call(L)` in any JAX, on any backend it was
lowered for: CPU here, `--platforms cpu,cuda` for both).

ONNX goes through `jax2onnx` (a direct JAX -> ONNX converter). jax2onnx 0.17 refuses two things colorjax's models
use when it traces them through Flax (`nn.ConvTranspose(transpose_kernel=True)`, and `jax.image.resize` with
`antialias=True`, which it intercepts at the call). So the model is first traced to a jaxpr by JAX itself, outside
jax2onnx's interceptors, and jax2onnx converts that jaxpr's plain `lax` primitives (a transposed convolution is a
`conv_general_dilated` with input dilation -> ONNX ConvTranspose; the resize is gathers and sums). The alternative
route, jax2tf -> SavedModel -> tf2onnx, is closed: current jax2tf embeds StableHLO in an `XlaCallModule` op, which
tf2onnx cannot translate.
"""

from __future__ import annotations

import argparse

from colorjax import ColorjaxError
from colorjax.cli import common as cli

# colorjax.inference.export.FORMATS, written out here: that module imports JAX, which --help does without
# (tests/integration/test_command_manners.py checks that the two agree).
FORMATS = ("stablehlo", "onnx")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.export", description=__doc__.split("\n\n")[0])
    cli.add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="an empty or new folder")
    parser.add_argument(
        "--size",
        type=int,
        help="the side of the input where the model needs a fixed size (default: its working resolution)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from colorjax.inference.colorizer import Colorizer, open_model
    from colorjax.inference.export import export_model

    try:
        run = open_model(workdir=args.workdir, step=args.step, weights=args.weights, model=args.model)
        colorizer = Colorizer.from_run(run)
        if run.workdir is None:
            source_name = f"{run.model_name} weights {run.published['file']}"
        else:
            source_name = f"{args.workdir} step {colorizer.step}"
        model = colorizer.model
        size = args.size or colorizer.fixed_size or colorizer.resolution or 256
        settings = {
            "model": type(model).__name__,
            "source": source_name,
            "color_space": colorizer.color_space,
            "resolution": colorizer.resolution,
            "square": colorizer.square,
            "fixed_size": colorizer.fixed_size,
            # The pipeline around the exported network, as the Colorizer runs it (config.inference).
            "color_conversion": colorizer.color_conversion,
            "input_resize": colorizer.input_resize,
            "chroma_upsampling": colorizer.chroma_upsampling,
        }
        manifest = export_model(model, colorizer.variables, args.output, args.format, size=size, settings=settings)
    except (ColorjaxError, ValueError) as error:
        cli.print_error(error)
        return 1
    worst = max(manifest["check"]["max_abs_difference"].values())
    print(
        f"Exported {manifest['source']} to {args.output}/{manifest['file']} (input {manifest['input']['shape']}, "
        f"polymorphic in {manifest['polymorphic_in']}); max |difference| from colorjax {worst:.2e}."
    )
    return 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
