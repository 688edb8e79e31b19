"""The authors' DDColor training pieces in PyTorch, for the equivalence tests: `colorjax.bench.ddcolor_train_torch`
(their home, shared with `python -m colorjax.bench train_step --model ddcolor`), under the names the tests use."""

from colorjax.bench.ddcolor_train_torch import (
    ColorfulnessLoss,
    authors_discriminator,
    authors_losses,
    color_enhacne_blend,
    reference_vgg16_bn,
    tensor_lab2rgb,
)

__all__ = [
    "ColorfulnessLoss",
    "authors_discriminator",
    "authors_losses",
    "color_enhacne_blend",
    "reference_vgg16_bn",
    "tensor_lab2rgb",
]
