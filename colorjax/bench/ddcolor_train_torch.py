"""The authors' DDColor training pieces in PyTorch: the equivalence tests of DDColor's objective and discriminator
(tests/helpers/ddcolor_training.py re-exports them) and the PyTorch side of `python -m colorjax.bench train_step
--model ddcolor` (`authors_training_step`).

- `authors_losses()`: modelscope's copy of their `loss.py` (L1Loss, PerceptualLoss, GANLoss; BasicSR's), with their
  `VGGFeatureExtractor` (`utils/vgg.py`) building its network from `reference_vgg16_bn()` instead of downloading
  torchvision's ImageNet file.
- `reference_vgg16_bn()`: torchvision's `vgg16_bn(weights=None)` when torchvision imports; otherwise the same
  `features` stack written here from torchvision's cfg "D" with BatchNorm (conv 3x3 pad 1, BatchNorm2d, ReLU per
  conv; 2x2 max pool per block), the same modules at the same `features.{i}` keys. (On this team's venv the
  torchvision wheel is a CUDA build over a CPU torch and fails to import.)
- `ColorfulnessLoss`: piddnad/DDColor basicsr/losses/losses.py `ColorfulnessLoss`, which modelscope's copy lacks,
  written out (their loop over the batch, torch.std, the sum).
- `authors_discriminator(nf)`: their `DynamicUNetDiscriminator` (basicsr/archs/discriminator_arch.py), written out
  over modelscope's `custom_conv_layer(..., norm_type=NormType.Spectral)`, which is their `_conv`.
- `authors_training_step(...)`: one iteration of their trainer, `ColorModel.feed_data` then `optimize_parameters`
  (basicsr/models/color_model.py) with options/train/train_ddcolor.yml's losses and optimizers.

Imports torch: only the tests and the benchmark import this module.
"""

import importlib
import sys
import types

import torch
from torch import nn

from colorjax.bench.ddcolor_torch import _PACKAGE, authors_modules, modules_restored

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def reference_vgg16_bn() -> nn.Module:
    """torchvision's vgg16_bn at its default init (random), or a module with the same `features` when torchvision
    cannot be imported."""
    try:
        import torchvision

        return torchvision.models.vgg16_bn(weights=None)
    except Exception:  # noqa: BLE001 -- an unimportable torchvision (missing CUDA libraries) raises RuntimeError
        layers, channels = [], 3
        for item in VGG16_CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.BatchNorm2d(item), nn.ReLU(True)]
                channels = item
        model = nn.Module()
        model.features = nn.Sequential(*layers)
        return model


def authors_losses(vgg16_bn: nn.Module) -> types.ModuleType:
    """modelscope's ddcolor/loss.py, whose VGGFeatureExtractor takes its network from `vgg16_bn`."""
    authors_modules()
    name = f"{_PACKAGE}.loss"
    if name not in sys.modules:
        torchvision_names = ("torchvision", "torchvision.models", "torchvision.models.vgg")
        with modules_restored(torchvision_names):
            try:
                importlib.import_module("torchvision.models.vgg")
            except Exception:  # noqa: BLE001 -- as above: stand-ins just for their `from torchvision.models import vgg`
                stand_ins = {key: types.ModuleType(key) for key in torchvision_names}
                stand_ins["torchvision"].models = stand_ins["torchvision.models"]
                stand_ins["torchvision.models"].vgg = stand_ins["torchvision.models.vgg"]
                sys.modules.update(stand_ins)
            importlib.import_module(name)
    # Their extractor calls `vgg.vgg16_bn(pretrained=...)`: this network instead of ImageNet's.
    sys.modules[f"{_PACKAGE}.utils.vgg"].vgg = types.SimpleNamespace(vgg16_bn=lambda pretrained=False: vgg16_bn)
    return sys.modules[name]


class ColorfulnessLoss(nn.Module):
    """piddnad/DDColor basicsr/losses/losses.py `ColorfulnessLoss`, as they wrote it."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred, **kwargs):
        colorfulness_loss = 0
        for i in range(pred.shape[0]):
            (R, G, B) = pred[i][0], pred[i][1], pred[i][2]
            rg = torch.abs(R - G)
            yb = torch.abs(0.5 * (R + G) - B)
            (rbMean, rbStd) = (torch.mean(rg), torch.std(rg))
            (ybMean, ybStd) = (torch.mean(yb), torch.std(yb))
            stdRoot = torch.sqrt((rbStd**2) + (ybStd**2))
            meanRoot = torch.sqrt((rbMean**2) + (ybMean**2))
            colorfulness = stdRoot + (0.3 * meanRoot)
            colorfulness_loss += 1 - colorfulness
        return self.loss_weight * colorfulness_loss


def authors_discriminator(nf: int = 64, n_blocks: int = 3, n_channels: int = 3) -> nn.Module:
    """Their DynamicUNetDiscriminator (forward: layers, then `view(N, -1)`), from their unet blocks."""
    authors_modules()
    unet = sys.modules[f"{_PACKAGE}.utils.unet"]

    def _conv(ni, nf, ks=3, stride=1, **kwargs):
        return unet.custom_conv_layer(ni, nf, ks=ks, stride=stride, norm_type=unet.NormType.Spectral, **kwargs)

    class DynamicUNetDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            width = nf
            layers = [_conv(n_channels, width, ks=4, stride=2)]
            for i in range(n_blocks):
                layers += [
                    _conv(width, width, ks=3, stride=1),
                    _conv(width, width * 2, ks=4, stride=2, self_attention=(i == 0)),
                ]
                width *= 2
            layers += [
                _conv(width, width, ks=3, stride=1),
                _conv(width, 1, ks=4, bias=False, padding=0, use_activ=False),
            ]
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            out = self.layers(x)
            return out.view(out.size(0), -1)

    return DynamicUNetDiscriminator()


def tensor_lab2rgb(labs):
    """piddnad/DDColor basicsr/utils/img_util.py `tensor_lab2rgb` (D65, 2 degrees), as they wrote it: how their
    training step turns (L, predicted ab) into the RGB that the perceptual, GAN and colourfulness terms see."""
    import numpy as np

    xyz_ref_white = (0.95047, 1.0, 1.08883)
    rgb_from_xyz = np.array(
        [
            [3.240481340, -0.96925495, 0.055646640],
            [-1.53715152, 1.875990000, -0.20404134],
            [-0.49853633, 0.041555930, 1.057311070],
        ]
    )
    B, C, H, W = labs.shape
    arrs = labs.permute((0, 2, 3, 1)).contiguous()
    L, a, b = arrs[:, :, :, 0:1], arrs[:, :, :, 1:2], arrs[:, :, :, 2:]
    y = (L + 16.0) / 116.0
    x = (a / 500.0) + y
    z = y - (b / 200.0)
    invalid = z.data < 0
    z[invalid] = 0
    xyz = torch.cat([x, y, z], dim=3)
    mask = xyz.data > 0.2068966
    mask_xyz = xyz.clone()
    mask_xyz[mask] = torch.pow(xyz[mask], 3.0)
    mask_xyz[~mask] = (xyz[~mask] - 16.0 / 116.0) / 7.787
    for i in range(C):
        mask_xyz[:, :, :, i] = mask_xyz[:, :, :, i] * xyz_ref_white[i]
    rgb_trans = torch.mm(mask_xyz.view(-1, 3), torch.from_numpy(rgb_from_xyz).type_as(xyz)).view(B, H, W, C)
    rgb = rgb_trans.permute((0, 3, 1, 2)).contiguous()
    mask = rgb.data > 0.0031308
    mask_rgb = rgb.clone()
    mask_rgb[mask] = 1.055 * torch.pow(rgb[mask], 1 / 2.4) - 0.055
    mask_rgb[~mask] = rgb[~mask] * 12.92
    neg_mask = mask_rgb.data < 0
    large_mask = mask_rgb.data > 1
    mask_rgb[neg_mask] = 0
    mask_rgb[large_mask] = 1
    return mask_rgb


def color_enhacne_blend(x, factor=1.2):
    """piddnad/DDColor basicsr/utils/color_enhance.py (their spelling), on one (3, H, W) image: torchvision's
    `Grayscale(3)` when torchvision imports, else its formula (0.2989 R + 0.587 G + 0.114 B) written out."""
    try:
        from torchvision.transforms import Grayscale

        x_g = Grayscale(3)(x)
    except Exception:  # noqa: BLE001 -- the unimportable CUDA torchvision, as in reference_vgg16_bn
        x_g = (0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]).expand(3, -1, -1)
    out = x_g * (1.0 - factor) + x * factor
    out[out < 0] = 0
    out[out > 1] = 1
    return out


def authors_training_step(
    widths: dict,
    *,
    discriminator_nf: int = 64,
    pixel_weight: float = 0.1,
    perceptual_weight: float = 5.0,
    gan_weight: float = 1.0,
    colorfulness_weight: float = 0.5,
    enhance_factor: float = 1.2,
    seed: int = 0,
):
    """`step(L, ab)`: one iteration of the authors' trainer on a batch (L (N, 1, H, W) in [0, 100], ab (N, 2, H, W)):
    their `feed_data` (grey and true RGB through `tensor_lab2rgb`, the truth colour-enhanced photo by photo) and
    `optimize_parameters`: the generator's forward in training mode, L1 on ab + VGG16-BN perceptual + GAN (the
    discriminator's parameters frozen) + colourfulness, backward, AdamW step (lr 1e-4, betas (0.9, 0.99), weight
    decay 0.01); then the discriminator on the real and the detached predicted photos, backward, Adam step (lr 1e-4,
    betas (0.9, 0.99)). The generator is their DDColor at `widths` (`authors_ddcolor` kwargs), the discriminator
    theirs at `discriminator_nf`, the VGG16-BN `reference_vgg16_bn()`; all at their own random initialisation. Their
    EMA copy of the generator (`ema_decay`) is left out, as colorjax keeps none. Returns the generator's and the
    discriminator's losses as floats."""
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    torch.manual_seed(seed)
    net_g = authors_ddcolor(**widths).train()
    net_d = authors_discriminator(nf=discriminator_nf).train()
    losses = authors_losses(reference_vgg16_bn())
    cri_pix = losses.L1Loss(loss_weight=pixel_weight)
    cri_perceptual = losses.PerceptualLoss(
        layer_weights={"conv1_1": 0.0625, "conv2_1": 0.125, "conv3_1": 0.25, "conv4_1": 0.5, "conv5_1": 1.0},
        vgg_type="vgg16_bn",
        use_input_norm=True,
        range_norm=False,
        perceptual_weight=perceptual_weight,
        style_weight=0.0,
        criterion="l1",
    )
    cri_gan = losses.GANLoss("vanilla", real_label_val=1.0, fake_label_val=0.0, loss_weight=gan_weight)
    cri_colorfulness = ColorfulnessLoss(loss_weight=colorfulness_weight)
    optimizer_g = torch.optim.AdamW(net_g.parameters(), lr=1e-4, weight_decay=0.01, betas=(0.9, 0.99))
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=1e-4, weight_decay=0.0, betas=(0.9, 0.99))

    def step(lq, gt):
        # feed_data
        lq_rgb = tensor_lab2rgb(torch.cat([lq, torch.zeros_like(lq), torch.zeros_like(lq)], dim=1))
        gt_rgb = tensor_lab2rgb(torch.cat([lq, gt], dim=1))
        for i in range(gt_rgb.shape[0]):
            gt_rgb[i] = color_enhacne_blend(gt_rgb[i], factor=enhance_factor)
        # optimize_parameters: the generator
        for p in net_d.parameters():
            p.requires_grad = False
        optimizer_g.zero_grad()
        output_ab = net_g(lq_rgb)
        output_rgb = tensor_lab2rgb(torch.cat([lq, output_ab], dim=1))
        l_g_total = cri_pix(output_ab, gt)
        l_g_percep, _ = cri_perceptual(output_rgb, gt_rgb)
        l_g_total = l_g_total + l_g_percep
        l_g_total = l_g_total + cri_gan(net_d(output_rgb), target_is_real=True, is_disc=False)
        l_g_total = l_g_total + cri_colorfulness(output_rgb)
        l_g_total.backward()
        optimizer_g.step()
        # the discriminator
        for p in net_d.parameters():
            p.requires_grad = True
        optimizer_d.zero_grad()
        real_d_pred = net_d(gt_rgb)
        fake_d_pred = net_d(output_rgb.detach())
        l_d = cri_gan(real_d_pred, target_is_real=True, is_disc=True) + cri_gan(
            fake_d_pred, target_is_real=False, is_disc=True
        )
        l_d.backward()
        optimizer_d.step()
        return l_g_total.item(), l_d.item()

    return step
