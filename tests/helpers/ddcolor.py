"""Helpers shared by the DDColor tests: random weights in the authors' published layout, at any width.

Imported as `helpers.ddcolor` (tests/helpers is on sys.path through pyproject's `pythonpath`). The authors' modules come from `colorjax.bench.ddcolor_torch` (the modelscope wheel's copy of piddnad/DDColor).
"""

from pathlib import Path

import numpy as np


def randomise(torch, module, seed: int = 0) -> None:
    """Random weights that keep activations of order 1: matrices N(0, 1/fan_in), norm scales and layer scales
    U(0.5, 1.5), biases N(0, 0.1), BatchNorm statistics near (0, 1); spectral-norm u, v after 3 power iterations
    from random vectors, so u . (W v) is close to the top singular value but not equal to it, as in a trained file."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.ndim == 1:
                if name.endswith("bias"):
                    parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
                else:
                    parameter.copy_(0.5 + torch.rand(parameter.shape, generator=generator))
            else:
                fan_in = 1 if "embed" in name else parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
        for name, buffer in module.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.1 * torch.randn(buffer.shape, generator=generator))
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
        for submodule in module.modules():
            if hasattr(submodule, "weight_orig"):
                matrix = submodule.weight_orig.reshape(submodule.weight_orig.shape[0], -1)
                u = torch.nn.functional.normalize(torch.randn(matrix.shape[0], generator=generator), dim=0)
                for _ in range(3):
                    v = torch.nn.functional.normalize(matrix.T @ u, dim=0)
                    u = torch.nn.functional.normalize(matrix @ v, dim=0)
                submodule.weight_u.copy_(u)
                submodule.weight_v.copy_(v)


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
    randomise(torch, model, seed=seed)
    with torch.no_grad():
        last = model.decoder.color_decoder.color_embed.layers[-1]
        last.weight.mul_(chroma_gain)
        last.bias.mul_(chroma_gain)
    torch.save({"params": model.state_dict()}, path)
    return path
