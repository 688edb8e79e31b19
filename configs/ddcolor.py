"""Kang et al. (ICCV 2023) "DDColor: Towards Photo-Realistic Image Colorization via Dual Decoders" (`ddcolor`).

What it is for today: colouring photos with the authors' published weights and fine-tuning them on your own photos.
The published files need no training (downloaded once, checked by their SHA-256):

    python -m colorjax.colorize --weights ddcolor_modelscope old_photos/ --output coloured/
    python -m colorjax.weights to-run ddcolor_modelscope --workdir runs/ddcolor_published
    python -m colorjax.train --config configs/ddcolor.py --workdir runs/ddcolor_mine \\
        --config.model_init=runs/ddcolor_published \\
        --config.data.source=folder:MY_PHOTOS --config.num_train_steps=2000

`--config.model_init` starts from the published weights (a `weights to-run` directory); the variant must be the
published network's: `large` (the default; ddcolor_modelscope, ddcolor_paper, ddcolor_artistic) or `tiny`
(ddcolor_paper_tiny).

The network is the authors' (`colorjax.models.ddcolor`: ConvNeXt-L or -T encoder, pixel decoder, colour decoder of
100 queries and 9 layers). The data, crops, batch and optimizer are those of the authors' ImageNet recipe
(piddnad/DDColor options/train/train_ddcolor.yml: 256 x 256 crops, batch 16 over 4 GPUs, AdamW lr 1e-4, weight decay
0.01, betas (0.9, 0.99), 400k iterations, the learning rate halved at 80k and every 40k after), and so is the loss
(`config.gan`, `colorjax.train.gan`): an L1 on ab (weight 0.1) plus a VGG16-BN perceptual loss (5.0) against the
colour-enhanced photo (factor 1.2), their DynamicUNet discriminator (nf 64) with a vanilla GAN loss (1.0) and the
colourfulness term (their 0.5 on a sum over 4 images per GPU: 2.0 on colorjax's batch mean); the discriminator's
optimizer is Adam, lr 1e-4, betas (0.9, 0.99), no weight decay (yml `optim_d`), on the same schedule. The VGG16-BN
weights are torchvision's (`vgg16_bn` in the weights registry, 528 MB, downloaded once on a fresh start). As theirs,
a fresh run's encoder starts from Meta's ImageNet-22k ConvNeXt (`config.model.encoder_init`: `convnext_large_22k`,
919 MB, for `large`, `convnext_tiny_22k`, 178 MB, for `tiny`; registry names downloaded once, or a path to a file
of Meta's layout; '' for a random encoder; `colorjax.models.convnext_import`), the rest from random weights;
`--config.model_init` starts from published DDColor weights instead and loads no ConvNeXt. Fine-tuning the
published weights on a small folder moves them toward the colours of your photos. Fine-tune the large network on an
accelerator.

Inference (`config.inference`) is the authors' pipeline (`models.ddcolor.AUTHORS_INFERENCE`): the colour photo
resized to 512 x 512, OpenCV's float Lab, nearest-neighbour chroma upsampling; so a run of this config colours
photos as the published weights do (`colorize --resolution` and `--chroma-upsampling bilinear` change it per call).

Variants (`--config configs/ddcolor.py:VARIANT`, combinable with commas): `large` (default), `tiny`, `folder`
(`--config.data.source=folder:PATH`), and `cpu` (or `runlocal`): a CPU-sized network (depths (1, 1, 1, 1), dims
(8, 16, 32, 64), 4 queries, 3 decoder layers, hidden 16, FFN 32; a discriminator of nf 16) on 64 x 64 crops of the
team's scene photos (or the `samples`), for the tests and a laptop; it learns little, it runs every piece of the
pipeline in minutes. Its encoder starts from random weights (`encoder_init` is None: no published ConvNeXt has its
widths, so `:tiny,cpu` is the CPU network too, and loads no ConvNeXt-T). Its GAN step is dominated by the full-width VGG16-BN of the perceptual loss: 464 ms per step at
batch 8 against 18 ms for the L1 alone (the jitted `make_train_step` on 2 busy CPU cores, compilation excluded); it
needs the `vgg16_bn` file too (528 MB, downloaded once, or `--config.gan.perceptual_weights=PATH`);
`--config.gan.perceptual_weight=0` leaves the term out and reads no file. docs/ddcolor.md: an 8-minute run of
`:tiny,cpu` without it beside ECCV16 and the L2 baseline on the scene photos (CF, delta-CF, PSNR, AuC, pictures).
"""

import ml_collections
from ml_collections.config_dict import placeholder

from colorjax import config_lib, models

SIZES = ("large", "tiny")
VARIANTS = (*SIZES, "folder", "cpu", "runlocal")
# The CPU-sized network: the encoder's depths and dims, the pixel decoder's nf and a small colour decoder. The heads
# stay the published 8 (a state dict's shapes do not show the head count: files of this width import as they are).
CPU_WIDTHS = dict(
    depths=(1, 1, 1, 1),
    dims=(8, 16, 32, 64),
    nf=32,
    num_queries=4,
    hidden_dim=16,
    num_heads=8,
    dim_feedforward=32,
    dec_layers=3,
)


def authors_recipe(size: str) -> ml_collections.ConfigDict:
    """The authors' ImageNet run (data, batch, optimizer, schedule, losses, discriminator) with the network of
    `size`."""
    config = config_lib.base_config()
    config_lib.use_dataset(config, "imagenet")
    config.data.image_size = 256
    config.data.train_crop = "resize_random_crop"
    config.data.resize_size = 256
    config.data.eval_resize_size = 256
    # The ImageNet-22k ConvNeXt the encoder starts from (piddnad/DDColor `Encoder.load_pretrain_model`).
    config.model = ml_collections.ConfigDict(dict(name="ddcolor", size=size, encoder_init=placeholder(str)))
    config.model.encoder_init = f"convnext_{size}_22k"
    config.loss = ml_collections.ConfigDict(dict(name="l1"))  # the pixel term, weighted by config.gan.pixel_weight
    config.gan.enabled = True  # base_config()'s defaults are the authors' weights and discriminator optimizer
    config.batch_size = 16
    config.num_train_steps = 400_000
    config.optimizer.update(name="adamw", learning_rate=1e-4, weight_decay=0.01, b1=0.9, b2=0.99)
    config.schedule.update(name="step", boundaries=tuple(k / 10 for k in range(2, 10)), decay_factor=0.5)
    config.log_every = 100
    config.eval_every = 10_000
    config.checkpoint_every = 10_000
    config.best_metric = "val/loss"
    config.inference.update(dict(models.spec("ddcolor").inference))
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variants = config_lib.parse_variants(arg, VARIANTS, "configs/ddcolor.py")
    sizes = [v for v in variants if v in SIZES]
    if len(sizes) > 1:
        raise ValueError(f"configs/ddcolor.py takes one of {', '.join(SIZES)}, not {', '.join(sizes)}.")
    config = authors_recipe(sizes[0] if sizes else "large")
    if "folder" in variants:
        config.data.source = "folder:PATH"  # set with --config.data.source=folder:PATH
    if "cpu" in variants or "runlocal" in variants:
        if "folder" not in variants:
            config_lib.use_scene_photos(config, image_size=64)
        config.data.image_size = 64
        config.data.train_crop = "random_resized"
        config.data.eval_resize_size = None
        config.model.update(CPU_WIDTHS)
        config.model.encoder_init = None  # no published ConvNeXt has these widths
        config.batch_size = 8
        config.num_train_steps = 200
        config.optimizer.learning_rate = 1e-3
        config.gan.discriminator_nf = 16
        config.schedule.update(name="cosine", warmup_steps=20)
        config.log_every = 20
        config.eval_every = 100
        config.checkpoint_every = 100
        config.eval_max_images = 64
        config.keep_checkpoints = 2
    return config
