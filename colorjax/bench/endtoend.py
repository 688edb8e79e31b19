"""Colouring photo files end to end on a CPU: colorjax's `colorize` against the authors' own demo (issue 25).

`python -m colorjax.bench endtoend` times, photo by photo and in turns (colorjax, demo, colorjax, ...; who goes
first alternates), the whole way from a photo file to a PNG file, split into stages:

- colorjax, the calls the `colorize` command makes (`cli.colorize.colorize_files`): `inference.read_image`
  (decode), `Colorizer.predict` (the photo's full-size CIE L, ECCV16 at 256x256, bilinear chroma upsampling,
  recombination with the full-size L) and `files.write_image` (the PNG, `files.encode_png`), predict timed in its
  steps: `lab` (`Colorizer.lightness`, the full-size L), `forward` (the network at 256x256) and `recombination`
  (`Colorizer.recombine`: chroma upsampling, Lab -> RGB, to uint8); `predict_ms` is the whole of it in one call,
  as `colorize` makes it (it also resizes L to 256 and checks the chroma is finite).
- the authors' demo (richzhang/colorization `demo_release.py` with `colorizers/util.py`): `load_img` (PIL ->
  NumPy), `preprocess_img` (PIL bicubic resize to 256x256, skimage `rgb2lab` of the full photo and of the resized
  one: `lab`), their ECCV16 in PyTorch (`zhang.torch_eccv16`, with the weights colorjax runs: `forward`),
  `postprocess_tens` (`F.interpolate` bilinear to full size, `torch.cat` with the full-size L, skimage `lab2rgb`:
  `recombination`) and `plt.imsave` (`encode`).

Photos (`bench.photos`): (a) 24 of Kodak size (768x512) saved as PNG, as the Kodak set is; (b) three of 20
megapixels (5477x3651) saved as a JPEG at quality 92, as a camera writes it. `--quick`: 4 photos of 192x128 and
one of 1 MP at ECCV16 width 1/4. Rows: milliseconds per photo of each stage (median over the photos, after a
warm-up photo of each size: one slow photo on a shared machine moves a mean of three by a third), `total_ms`, `outside_vs_forward` ((recombination + encode) / forward: issue 25 asks that it be
at most 1), `vs_demo` (the demo's total over the row's) and the machine's columns.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

STAGES = ("decode", "lab", "forward", "recombination", "encode")


def photo_sets(quick: bool) -> list[tuple[str, int, int, int, str]]:
    """(name, count, height, width, file format) of each photo set (module docstring)."""
    if quick:
        return [("kodak-size", 4, 128, 192, "PNG"), ("1 MP", 1, 816, 1224, "JPEG")]
    return [("kodak-size", 24, 512, 768, "PNG"), ("20 MP", 3, 3651, 5477, "JPEG")]


def per_photo_row(seconds: dict[str, list[float]]) -> dict:
    """{stage: [seconds per photo]} -> milliseconds per photo (median) of each of `STAGES`, `total_ms` (their sum),
    `predict_ms` where timed, and `outside_vs_forward`: what the full-resolution work after the model costs
    against the model."""
    row = {f"{stage}_ms": 1e3 * float(np.median(seconds[stage])) for stage in STAGES}
    row["total_ms"] = sum(row[f"{stage}_ms"] for stage in STAGES)
    if "predict" in seconds:
        row["predict_ms"] = 1e3 * float(np.median(seconds["predict"]))
    row["outside_vs_forward"] = (row["recombination_ms"] + row["encode_ms"]) / row["forward_ms"]
    return row


def _contenders(quick: bool):
    """(colorjax's Colorizer, its jitted forward, the authors' demo as a function of (photo path, output path) that
    returns its stage seconds), with the same random ECCV16 weights on both sides."""
    import jax
    import jax.numpy as jnp
    import torch

    from colorjax.bench.zhang import torch_eccv16
    from colorjax.inference.colorizer import Colorizer
    from colorjax.models import get_model
    from colorjax.models.jit import jitted_apply
    from colorjax.models.published import state_dict_to_variables

    width = 0.25 if quick else 1.0
    torch.manual_seed(0)
    torch_model = torch_eccv16(torch, width)
    model = get_model("eccv16", width=width)
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))
    state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    variables = state_dict_to_variables("eccv16", state, template, source="benchmark weights")
    colorizer = Colorizer(model=model, variables=variables, resolution=256, square=True)
    return colorizer, jitted_apply(model, train=False), _authors_demo(torch, torch_model)


def _authors_demo(torch, torch_model):
    """The demo's steps on one photo file (richzhang/colorization demo_release.py, colorizers/util.py), timed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from skimage import color

    from colorjax.bench.timing import Stages

    def demo(path: Path, output: Path, stages: Stages) -> None:
        with stages("decode"):  # load_img
            img = np.asarray(Image.open(path))
            if img.ndim == 2:
                img = np.tile(img[:, :, None], 3)
        with stages("lab"):  # preprocess_img(img, HW=(256, 256))
            img_rs = np.asarray(Image.fromarray(img).resize((256, 256), resample=3))
            tens_orig_l = torch.Tensor(color.rgb2lab(img)[:, :, 0])[None, None, :, :]
            tens_rs_l = torch.Tensor(color.rgb2lab(img_rs)[:, :, 0])[None, None, :, :]
        with stages("forward"):  # colorizer_eccv16(tens_l_rs): the decoded ab, upsampled x4 to 256
            out_ab = torch_model(tens_rs_l)[1].cpu()
        with stages("recombination"):  # postprocess_tens(tens_l_orig, out_ab)
            out_ab_orig = torch.nn.functional.interpolate(out_ab, size=tens_orig_l.shape[2:], mode="bilinear")
            out_lab_orig = torch.cat((tens_orig_l, out_ab_orig), dim=1)
            out_img = color.lab2rgb(out_lab_orig.data.cpu().numpy()[0, ...].transpose((1, 2, 0)))
        with stages("encode"):  # plt.imsave('%s_eccv16.png' % opt.save_prefix, out_img_eccv16)
            plt.imsave(output, out_img)

    return demo


def _colorjax(colorizer, forward):
    """colorize's calls on one photo file (module docstring), timed."""
    import jax
    import jax.numpy as jnp

    from colorjax import files
    from colorjax.bench.timing import Stages
    from colorjax.inference.colorizer import read_image

    L_work = jnp.zeros((1, 256, 256, 1), jnp.float32)

    def run(path: Path, output: Path, stages: Stages) -> None:
        with stages("decode"):
            rgb = read_image(path)
        with stages("lab"):
            lightness = colorizer.lightness(rgb)
        # `predict` hands its L to the recombination as the jax.Array it is; the NumPy copy that `lightness`
        # returns would be copied back (80 MB of a 20-megapixel photo, 0.03-0.05 s), so that is done untimed.
        lightness = jax.block_until_ready(jnp.asarray(lightness))
        with stages("forward"):
            chroma = jax.block_until_ready(forward(colorizer.variables, L_work)["chroma"][0])
        with stages("recombination"):
            colorizer.recombine(lightness, chroma)
        with stages("predict"):
            colorized = colorizer.predict(rgb).rgb
        with stages("encode"):
            files.write_image(colorized, output, "png")

    return run


def bench_endtoend(quick: bool) -> list[dict]:
    import datetime

    from colorjax.bench.devices import machine_columns
    from colorjax.bench.photos import encoded, scene_photos
    from colorjax.bench.timing import Stages

    colorizer, forward, demo = _contenders(quick)
    contenders = {"colorjax colorize": _colorjax(colorizer, forward), "authors' demo (PyTorch, skimage)": demo}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, count, height, width, file_format in photo_sets(quick):
            photos, source = scene_photos(count + 1, height, width)  # The first one warms up.
            paths = []
            for i, photo in enumerate(photos):
                paths.append(folder / f"{name}-{i}.{file_format.lower()}")
                paths[-1].write_bytes(encoded(photo, file_format))
            del photos
            stages = {label: Stages() for label in contenders}
            for i, path in enumerate(paths):
                order = list(contenders) if i % 2 else list(contenders)[::-1]
                for label in order:
                    timed = stages[label] if i else Stages()
                    contenders[label](path, folder / f"out-{label[:8]}.png", timed)
            for label, timed in stages.items():
                seconds = timed.seconds
                rows.append(
                    {"contender": label, "photos": f"{count} x {source}, {file_format}", **per_photo_row(seconds)}
                )
    for pair in (rows[0:2], rows[2:4]):
        pair[0]["vs_demo"] = pair[1]["total_ms"] / pair[0]["total_ms"]
    machine = {**machine_columns(), "date": datetime.date.today().isoformat()}
    return [{**row, **machine} for row in rows]
