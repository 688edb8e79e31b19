"""The reference evaluation metrics of the colorization papers, restated from their code for the equivalence tests.

- FID: CT2 `segm/metrics.py` (`vip_dataset`, `INCEPTION_V3_FID`, `get_activations`, `calculate_frechet_distance`),
  copied by DDColor as `basicsr/metrics/custom_fid.py`: uint8 -> ToTensor -> Normalize(0.5, 0.5) -> bilinear 299
  -> x * 0.5 + 0.5 -> x * std / 0.5 + (mean - 0.5) / 0.5 -> torchvision's inception_v3 blocks up to the average
  pool; the Frechet distance by `scipy.linalg.sqrtm`.
- Colourfulness: DDColor `basicsr/metrics/colorfulness.py` (= CT2 `segm/eval_colorfullness.py`) on a BGR uint8 image.
- PSNR: DDColor `basicsr/metrics/psnr_ssim.py::calculate_psnr` (crop_border 0) on uint8 RGB.

torchvision is imported normally; where its native extension cannot load (a CUDA wheel beside a CPU torch, as on
this machine when no CPU torchvision wheel could be installed), its pure-Python `models/inception.py` is loaded with
the package's `__init__` bypassed: the network is the same Python code either way.
"""

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest


def torchvision_inception_module():
    """`torchvision.models.inception` (skips the test where torch or torchvision is not installed)."""
    pytest.importorskip("torch")
    try:
        return importlib.import_module("torchvision.models.inception")
    except ModuleNotFoundError:
        pytest.skip("torchvision is not installed (.ci/run installs it)")
    except RuntimeError:  # its native ops failed to register: load the pure-Python model code alone.
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        root = importlib.util.find_spec("torchvision").submodule_search_locations[0]
        for name, folder in (("torchvision", root), ("torchvision.models", f"{root}/models")):
            package = types.ModuleType(name)
            package.__path__ = [folder]
            sys.modules[name] = package
        return importlib.import_module("torchvision.models.inception")


def random_inception(seed: int = 0):
    """torchvision's `inception_v3` in eval mode with random weights that keep activations of order 1 (conv weights
    N(0, 2 / fan_in): its own init, std 0.1, grows them to 1e13 by the pool) and random BatchNorm statistics and
    affine parameters: (torch, model)."""
    import torch

    inception = torchvision_inception_module()
    torch.manual_seed(seed)
    model = inception.inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            if isinstance(module, torch.nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(0.1 * torch.randn(shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(shape, generator=generator))
                module.weight.copy_(0.5 + torch.rand(shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(shape, generator=generator))
    return torch, model


def reference_pool_features(torch, model, images: np.ndarray) -> np.ndarray:
    """CT2's pool3 activations (N, 2048) of uint8 RGB images (N, H, W, 3), one image at a time as their script."""
    import torch.nn.functional as F

    blocks = torch.nn.Sequential(
        model.Conv2d_1a_3x3,
        model.Conv2d_2a_3x3,
        model.Conv2d_2b_3x3,
        torch.nn.MaxPool2d(kernel_size=3, stride=2),
        model.Conv2d_3b_1x1,
        model.Conv2d_4a_3x3,
        torch.nn.MaxPool2d(kernel_size=3, stride=2),
        model.Mixed_5b,
        model.Mixed_5c,
        model.Mixed_5d,
        model.Mixed_6a,
        model.Mixed_6b,
        model.Mixed_6c,
        model.Mixed_6d,
        model.Mixed_6e,
        model.Mixed_7a,
        model.Mixed_7b,
        model.Mixed_7c,
        torch.nn.AdaptiveAvgPool2d(output_size=(1, 1)),
    )
    features = []
    with torch.no_grad():
        for image in images:
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255.0)[None]
            x = (x - 0.5) / 0.5  # transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
            x = F.interpolate(x, size=(299, 299), mode="bilinear")
            x = x.clone()
            x = x * 0.5 + 0.5
            x[:, 0] = x[:, 0] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
            x[:, 1] = x[:, 1] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
            x[:, 2] = x[:, 2] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
            features.append(blocks(x).reshape(1, -1).numpy().astype(np.float64))
    return np.concatenate(features)


def reference_fid(features_fake: np.ndarray, features_real: np.ndarray) -> float:
    """CT2's `calculate_activation_statistics` + `calculate_frechet_distance` (scipy sqrtm, real part)."""
    from scipy import linalg

    mu1, sigma1 = np.mean(features_real, axis=0), np.cov(features_real, rowvar=False)
    mu2, sigma2 = np.mean(features_fake, axis=0), np.cov(features_fake, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def reference_colourfulness(rgb: np.ndarray) -> float:
    """DDColor's `calculate_cf` of one uint8 RGB image (they split a BGR image into B, G, R)."""
    red, green, blue = (rgb[..., c].astype("float") for c in range(3))
    rg = np.absolute(red - green)
    yb = np.absolute(0.5 * (red + green) - blue)
    rb_mean, rb_std = np.mean(rg), np.std(rg)
    yb_mean, yb_std = np.mean(yb), np.std(yb)
    std_root = np.sqrt((rb_std**2) + (yb_std**2))
    mean_root = np.sqrt((rb_mean**2) + (yb_mean**2))
    return float(std_root + (0.3 * mean_root))


def reference_psnr(image: np.ndarray, image2: np.ndarray) -> float:
    """DDColor's `calculate_psnr(img, img2, crop_border=0)` on uint8 images."""
    mse = np.mean((image.astype(np.float64) - image2.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(20.0 * np.log10(255.0 / np.sqrt(mse)))
