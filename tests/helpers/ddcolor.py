"""Helpers shared by the DDColor tests: random weights in the authors' published layout, at any width.

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
