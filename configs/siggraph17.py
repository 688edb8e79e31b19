"""Zhang et al. (SIGGRAPH 2017) network in automatic mode: the user-guided U-Net trained with no hints.

    python -m colorjax.train --config configs/siggraph17.py --workdir runs/siggraph17

The model's regression head (tanh x 110, ab at full resolution) is trained with the L2 loss; data, crops, batch,
optimizer and schedule are those of `configs/zhang_eccv16.py` (ImageNet, 176x176 crops, batch 40, Adam 3e-5,
450k iterations). This is not the authors' SIGGRAPH17 recipe, which samples colour hints during training and adds
the 529-way classification loss; it gives the automatic-mode network of that paper a baseline to compare with the
ECCV16 classifier on equal terms. To colour photos with the authors' own weights instead, no training:
`python -m colorjax.colorize --weights siggraph17-df00044c.pth --model siggraph17 INPUT... --output DIR`.

Variants (as in `configs/zhang_eccv16.py`, combinable with commas): `places365`, `folder`
(`--config.data.source=folder:PATH`), and `runlocal` / `cpu` (a 1/8-width network on 64x64 crops of the team's
scene photos, or the `samples`, that trains on a laptop CPU).

`hints` trains the user-guided network as the paper does (section 3.3): every training step reveals random colour
points of the true photo to the network (`config.hints`: a geometric number of points with p = 1/8, so 1/8 of
the examples get none, centred-Gaussian positions, square patches of side 1 to 9 showing their mean ab; see
`colorjax.hints.simulate_hints`). In-training evaluation stays automatic (no hints). Colour with hints afterwards:
`python -m colorjax.colorize --workdir RUN photo.jpg --hints hints.json` or `--hints-from REF.jpg --num-hints 10`.
`hints,cpu` is the CPU-sized run on the scene photos.
"""

import importlib.util
from pathlib import Path

import ml_collections

UNSUPPORTED = ("norebalance",)  # about the ECCV16 classifier's loss


def _zhang_eccv16_config(arg: str | None) -> ml_collections.ConfigDict:
    path = Path(__file__).resolve().parent / "zhang_eccv16.py"
    spec = importlib.util.spec_from_file_location("colorjax_zhang_eccv16_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variants = [v for v in (arg or "").split(",") if v]
    if any(v in UNSUPPORTED for v in variants):
        raise ValueError(
            f"configs/siggraph17.py has no variant {', '.join(v for v in variants if v in UNSUPPORTED)}; "
            "choose from: imagenet, places365, folder, runlocal, cpu, hints."
        )
    config = _zhang_eccv16_config(",".join(v for v in variants if v != "hints"))
    config.model = ml_collections.ConfigDict(dict(name="siggraph17", width=config.model.width))
    config.loss = ml_collections.ConfigDict(dict(name="l2", chroma_scale=110.0))
    config.best_metric = "val/chroma_l2_error"
    if "hints" in variants:
        config.hints.simulate = True  # the paper's draw, `config.hints` as in base_config
    return config
