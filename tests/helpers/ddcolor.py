"""Helpers shared by the DDColor tests: random weights in the authors' published layout, at any width, and a
ConvNeXt in Meta's ImageNet-22k release layout (the encoder a fresh DDColor run starts from).

Imported as `helpers.ddcolor` (tests/helpers is on sys.path through pyproject's `pythonpath`). The authors' modules come from `colorjax.bench.ddcolor_torch` (the modelscope wheel's copy of piddnad/DDColor).
"""

from pathlib import Path

import numpy as np

from colorjax.bench.ddcolor_torch import randomise  # the tests draw their random weights as the bench does


def numpy_state_dict(module) -> dict[str, np.ndarray]:
    return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


def authors_weights_file(torch, path: Path, widths: dict, seed: int = 0, chroma_gain: float = 12.0) -> Path:
    """Writes the authors' DDColor at `widths` (`authors_ddcolor` kwargs) with `randomise`d weights as the
    DDColor-models `.pth` files are (`torch.save({'params': state_dict})`); returns `path`.

    `randomise` alone gives ab within about +-7 (a near-grey picture, where no colour step shows); the last
    colour-embedding layer is scaled by `chroma_gain` (the colour maps, and so ab, scale with it: the fusion conv is
    spectral-normalised) so that ab span about +-80 with a standard deviation near 18, as a trained network's do,
    and gamut clipping and the Lab formulas matter."""
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    torch.manual_seed(seed)
    model = authors_ddcolor(**widths)
    randomise(model, seed=seed)
    with torch.no_grad():
        last = model.decoder.color_decoder.color_embed.layers[-1]
        last.weight.mul_(chroma_gain)
        last.bias.mul_(chroma_gain)
    torch.save({"params": model.state_dict()}, path)
    return path


def authors_convnext(torch, depths, dims, seed: int = 4):
    """The authors' ConvNeXt (modelscope's copy) at these widths, eval mode, `randomise`d weights, its per-stage
    norm0..norm3 at PyTorch's init (weight 1, bias 0) as their `strict=False` load of Meta's file leaves them."""
    import sys

    from colorjax.bench.ddcolor_torch import authors_modules

    authors_modules()
    arch = sys.modules["_colorjax_authors_ddcolor.utils.convnext"]
    torch.manual_seed(seed)
    network = arch.ConvNeXt(depths=list(depths), dims=list(dims)).eval()
    randomise(network, seed=seed)
    with torch.no_grad():
        for stage in range(4):
            getattr(network, f"norm{stage}").weight.fill_(1.0)
            getattr(network, f"norm{stage}").bias.fill_(0.0)
    return network


def meta_convnext_state_dict(torch, network) -> dict:
    """`network`'s weights as Meta's release holds a ConvNeXt: no norm0..norm3, a classifier `head` (21 classes
    here, 21,841 in the ImageNet-22k files) instead of `head_cls`."""
    state = {
        key: value.clone()
        for key, value in network.state_dict().items()
        if not key.startswith(("norm0", "norm1", "norm2", "norm3", "head_cls"))
    }
    width = state["norm.weight"].shape[0]
    state["head.weight"] = torch.randn(21, width)
    state["head.bias"] = torch.randn(21)
    return state


def write_meta_checkpoint(torch, state: dict, path: Path) -> Path:
    """`state` saved as Meta's ConvNeXt files are: `torch.save({'model': state_dict})`."""
    torch.save({"model": state}, path)
    return path
