"""The authors' DDColor in PyTorch, for the equivalence tests (and the speed comparison): their own modules, as the
`modelscope` package ships them (modelscope/models/cv/image_colorization/ddcolor/), at any width.

    pip install modelscope==1.40.2   # the hub-only base install; no framework extras needed

ModelScope's `ddcolor/` is the authors' code (Kang et al., DAMO Academy, Alibaba: ModelScope is Alibaba's hub): its
`ddcolor.py` and `utils/{convnext,unet,transformer_utils,position_encoding}.py` are piddnad/DDColor's `ddcolor/model.py`
and `basicsr/archs/ddcolor_arch_utils/*.py` reformatted, with one difference: its ConvNeXt still has the
`head_cls` classifier the authors removed in commit 1a190e2 (which the published files still hold; it never reaches
the colours). Importing them the ordinary way would run modelscope's package `__init__`s, which need the heavy
`modelscope[framework]` extras (datasets, transformers, ...), and `timm` for two helpers. `authors_modules` loads just
those five files as a private package and gives `timm.models.layers` two stand-ins while they import:
`DropPath` (an identity: drop path is 0 in DDColor) and `trunc_normal_` (`torch.nn.init.trunc_normal_`, init only).

`authors_ddcolor` assembles their DDColor from their classes at any width. Their `DDColor.__init__` fixes nf = 512,
the colour decoder's widths ([512, 512, 256] inputs, hidden 256, FFN 2048) and the named encoders; the published
networks are exactly what it builds, while a CPU-sized test network needs the same classes with smaller numbers,
so this builds the same module tree (and so the same state-dict keys) with the widths as arguments, and runs
their `DDColor.forward`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PIP_COMMAND = "pip install modelscope==1.40.2"
_PACKAGE = "_colorjax_authors_ddcolor"


def authors_modules() -> types.ModuleType:
    """The authors' `ddcolor.py` module from the installed modelscope (its classes DDColor, Encoder, Decoder,
    MultiScaleColorDecoder; `.utils` holds convnext, unet, ...). ImportError naming the pip command if absent."""
    if f"{_PACKAGE}.ddcolor" in sys.modules:
        return sys.modules[f"{_PACKAGE}.ddcolor"]
    spec = importlib.util.find_spec("modelscope")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"modelscope is not installed; `{PIP_COMMAND}` gives the authors' DDColor modules.")
    root = Path(list(spec.submodule_search_locations)[0]) / "models" / "cv" / "image_colorization" / "ddcolor"
    if not (root / "ddcolor.py").is_file():
        raise ImportError(f"{root} has no ddcolor.py; `{PIP_COMMAND}` installs the version these tests know.")

    import torch

    for name, path in ((_PACKAGE, root), (f"{_PACKAGE}.utils", root / "utils")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    stand_ins = {"timm": types.ModuleType("timm"), "timm.models": types.ModuleType("timm.models")}
    layers = stand_ins["timm.models.layers"] = types.ModuleType("timm.models.layers")
    layers.DropPath = torch.nn.Identity
    layers.trunc_normal_ = torch.nn.init.trunc_normal_
    with modules_restored(stand_ins):
        sys.modules.update(stand_ins)
        return importlib.import_module(f"{_PACKAGE}.ddcolor")


@contextlib.contextmanager
def modules_restored(names: Iterable[str]) -> Iterator[None]:
    """Puts the `sys.modules` entries `names` back as they were on leaving: stand-ins installed for an import of the
    authors' files go away, and so does a module that import brought in where there was none."""
    saved = {name: sys.modules.get(name) for name in names}
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def authors_ddcolor(
    *,
    depths: tuple[int, ...] = (3, 3, 27, 3),
    dims: tuple[int, ...] = (192, 384, 768, 1536),
    nf: int = 512,
    num_queries: int = 100,
    hidden_dim: int = 256,
    num_heads: int = 8,
    dim_feedforward: int = 2048,
    dec_layers: int = 9,
) -> Any:
    """The authors' DDColor (eval mode) built from their classes with these widths: the module tree of their
    `DDColor(encoder_name, num_queries=...)` (model.py; `build_ddcolor_model` in pipeline.py: 2 output channels,
    `last_norm="Spectral"`), so its state dict has the published layout (plus their `head_cls`)."""
    import torch

    arch = authors_modules()
    convnext = sys.modules[f"{_PACKAGE}.utils.convnext"]
    unet = sys.modules[f"{_PACKAGE}.utils.unet"]

    model = arch.DDColor.__new__(arch.DDColor)
    torch.nn.Module.__init__(model)
    encoder = arch.Encoder.__new__(arch.Encoder)
    torch.nn.Module.__init__(encoder)
    encoder.arch = convnext.ConvNeXt(depths=list(depths), dims=list(dims))
    encoder.hook_names = ["norm0", "norm1", "norm2", "norm3"]
    encoder.hooks = encoder.setup_hooks()
    model.encoder = encoder.eval()
    with torch.no_grad():  # as DDColor.__init__: the hooks' features give the decoder its input widths
        model.encoder(torch.zeros(1, 3, 64, 64))
    # Their Decoder builds a colour decoder of the published widths; it is replaced by one of these widths.
    model.decoder = arch.Decoder(
        model.encoder.hooks, nf=nf, last_norm="Spectral", num_queries=num_queries, dec_layers=dec_layers
    )
    model.decoder.color_decoder = arch.MultiScaleColorDecoder(
        in_channels=[nf, nf, nf // 2],
        hidden_dim=hidden_dim,
        num_queries=num_queries,
        nheads=num_heads,
        dim_feedforward=dim_feedforward,
        dec_layers=dec_layers,
        color_embed_dim=nf // 2,
    )
    model.refine_net = torch.nn.Sequential(
        unet.custom_conv_layer(num_queries + 3, 2, ks=1, use_activ=False, norm_type=unet.NormType.Spectral)
    )
    model.register_buffer("mean", torch.Tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    model.register_buffer("std", torch.Tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    return model.eval()


def randomise(model: Any, seed: int = 0) -> None:
    """Random weights of a trained network's scale, in place: matrices N(0, 1/fan_in), norm and layer scales
    U(0.5, 1.5), biases N(0, 0.1), BatchNorm statistics near (0, 1), spectral-norm u, v after 3 power iterations
    (PyTorch's init leaves u . (W v) near 0, so the outputs blow up to 1e7 and speed could hinge on denormals)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1:
                if name.endswith("bias"):
                    parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
                else:
                    parameter.copy_(0.5 + torch.rand(parameter.shape, generator=generator))
            else:
                fan_in = 1 if "embed" in name else parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.1 * torch.randn(buffer.shape, generator=generator))
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
        for module in model.modules():
            if hasattr(module, "weight_orig"):
                matrix = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                u = torch.nn.functional.normalize(torch.randn(matrix.shape[0], generator=generator), dim=0)
                for _ in range(3):
                    v = torch.nn.functional.normalize(matrix.T @ u, dim=0)
                    u = torch.nn.functional.normalize(matrix @ v, dim=0)
                module.weight_u.copy_(u)
                module.weight_v.copy_(v)
