"""Hwang & Zhou (CS231n 2016): the CIELUV binned classifier, VGG16 encoder + hypercolumn + two 50-bin heads.

    python -m colorjax.train --config configs/luv_vgg16.py:imagenet --workdir runs/luv_vgg16_imagenet
    python -m colorjax.train --config configs/luv_vgg16.py:places --workdir runs/luv_vgg16_places
    python -m colorjax.train --config configs/luv_vgg16.py:folder \\
        --config.data.source=folder:/path/to/photos --workdir runs/luv_vgg16_folder
    python -m colorjax.train --config configs/luv_vgg16.py:cpu --workdir runs/luv_vgg16_cpu
    python -m colorjax.colorize --workdir runs/luv_vgg16_imagenet --step best photos/ --output colorized/

Variants: `imagenet` (the default; TFDS imagenet2012, which needs the manual download TFDS describes), `places`
(TFDS places365_small), `folder` (your photos: set `--config.data.source=folder:PATH`; PATH/train and
PATH/validation, or a 5% hold-out of PATH), `cpu` (below). `configs/luv_vgg16_regression.py` is the same body with
the paper's L2 regression head.

Backbone: ImageNet VGG16 convolutions from `config.model.backbone_weights`, by default the file Keras caches,
`~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` (download
https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
or run `keras.applications.VGG16(include_top=False)` once). torchvision's `vgg16-397923af.pth` works too (set the
path; the input preprocessing follows the file). A missing file stops a fresh run with a one-line error naming it.

Recipe: Luv data, 224x224 crops of the image resized to 256 (the VGG16 input size), batch 32, Adam 1e-4 (a
fine-tuning rate for the pretrained encoder; the report gives no optimizer settings, this is our choice), cosine
decay over 200k steps (5 ImageNet epochs), evaluation and checkpoints every 5k steps keeping the best val/loss.

Hardware and time: one GPU. Not measured here (no accelerator in this session): at ~57 GFLOPs per training image
(VGG16 at 224 plus the head at 56x56, forward and backward) an H100 should give about 1000 images/s, i.e. about
2 hours for the 200k steps. Expected score: the report measured Acc.U 34.6% and Acc.V 24.1% on MIT CVCL "Open
Country" (val/acc_u_percent, val/acc_v_percent here); other data give other numbers.

`cpu`: a smoke-sized run that learns the scene set's commonest colours in minutes on 2 CPU cores without ImageNet
weights: width 1/4 (VGG16 channels 16..128, 1.16M parameters), random-init backbone, 64x64 crops of the Intel scene
photos (`../shared/data/intel_scenes_150`, train/ and test/) when present, else the seven `samples`, batch 16,
Adam 1e-3, 300 steps, evaluation on 300 test photos. Measured (2 CPU cores shared with other jobs, load ~5.5):
4.6 minutes, ~30 images/s; train loss 7.96 -> 5.54 (chance: 2 ln 50 = 7.82), val/loss 5.28, val/acc_u_percent 28.3,
val/acc_v_percent 20.3, val/chroma_l2_error 15.9, val/psnr_rgb_db 25.5. For scale, predicting no colour gives
chroma_l2_error 16.2 and PSNR 28.0 on the same photos: 300 steps learn blue skies and green foliage, not yet
better pictures.
"""

import ml_collections

from colorjax import config_lib

VGG16_NOTOP_WEIGHTS = "~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "imagenet"
    if variant not in (*config_lib.DATASETS, "cpu"):
        raise ValueError(
            f"Unknown variant {arg!r} of configs/luv_vgg16.py; use {', '.join(config_lib.DATASETS)} or cpu."
        )
    config = config_lib.base_config()
    config.data.color_space = "luv"
    config.data.image_size = 224
    config.data.train_crop = "resize_random_crop"
    config.data.resize_size = 256

    config.model = ml_collections.ConfigDict(
        dict(name="luv_vgg16", head="classification", width=1.0, backbone_weights=VGG16_NOTOP_WEIGHTS)
    )
    config.loss = ml_collections.ConfigDict(dict(name="luv_classification"))

    config.batch_size = 32
    config.num_train_steps = 200_000
    config.optimizer.learning_rate = 1e-4
    config.schedule.update(name="cosine", warmup_steps=1000)
    config.log_every = 200
    config.eval_every = 5000
    config.eval_max_images = 2000
    config.checkpoint_every = 5000
    config.best_metric = "val/loss"

    if variant == "cpu":
        config_lib.use_scene_photos(config, image_size=64)
        config.model.width = 0.25
        config.model.backbone_weights = ""  # ImageNet weights need width 1: learn from scratch.
        config.batch_size = 16
        config.num_train_steps = 300
        config.optimizer.learning_rate = 1e-3
        config.optimizer.grad_clip_norm = 1.0
        config.schedule.update(name="cosine", warmup_steps=30)
        config.log_every = 25
        config.eval_every = 150
        config.checkpoint_every = 150
        config.keep_checkpoints = 2
    else:
        config_lib.use_dataset(config, variant)
    return config
