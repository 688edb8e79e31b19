"""Deep Koalarization (Baldassarre et al. 2017): conv encoder-decoder fused with a frozen ImageNet classifier.

    python -m colorjax.train --config configs/koalarization.py --workdir runs/koala
    python -m colorjax.train --config configs/koalarization.py:vgg16 --workdir runs/koala_vgg16
    python -m colorjax.train --config configs/koalarization.py:places --workdir runs/koala_places
    python -m colorjax.train --config configs/koalarization.py:vgg16,folder \\
        --config.data.source=folder:/path/to/photos --workdir runs/koala_folder
    python -m colorjax.train --config configs/koalarization.py:cpu --workdir runs/koala_cpu
    python -m colorjax.colorize --workdir runs/koala --step best photos/ --output colorized/

Variants, comma-separated: a dataset, `imagenet` (default; TFDS imagenet2012, manual download), `places` (TFDS
places365_small) or `folder` (set `--config.data.source=folder:PATH`), and an embedder, Inception-ResNet-v2 (default,
the paper's) or `vgg16` (the Ain Shams report's first model); or `cpu` alone (below).

Embedder weights, `config.model.embedder_weights` (read once at the start of a fresh run, then carried frozen in
every checkpoint, so colorize needs no file): by default the files Keras caches in ~/.keras/models/,
`inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5` (from
https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/, or run
`keras.applications.InceptionResNetV2()` once) and, for `vgg16`, `vgg16_weights_tf_dim_ordering_tf_kernels.h5`
(https://storage.googleapis.com/tensorflow/keras-applications/vgg16/; torchvision's vgg16-397923af.pth works too).
Both need the classifier's top: the embedding is its 1000 ImageNet logits. A missing file is a one-line error.

Recipe (the paper's where it says): Lab data, 224x224 crops of the image resized to 256, encoder on L, embedder on
the gray image at 299x299 (224x224 for VGG16), fusion, decoder to tanh ab x 110; MSE on ab / 110; Adam 1e-3, batch
100, constant rate; 100k steps (10M images, about 8 ImageNet epochs; the paper trained on a 60k-image subset).

Hardware and time: one GPU. Not measured here (no accelerator in this session): about 58 GFLOPs per image (the
network forward and backward at 224, the frozen Inception-ResNet-v2 forward at 299) suggests roughly 1000 images/s
on an H100, i.e. about 3 hours. Expected: plausible skies, grass and skin, duller than the classifiers (MSE averages
colours); the paper reports a user study, not a score, so compare val/chroma_l2_error and val/psnr_rgb_db between runs.

`cpu`: A SMOKE RUN WITHOUT IMAGENET KNOWLEDGE. It swaps the embedder for the "tiny" random frozen net (no weights
file) and the network for width 1/4 (0.46M trainable parameters), 64x64 crops of the Intel scene photos
(`../shared/data/intel_scenes_150`) when present, else the seven `samples`, batch 16, 600 steps, evaluation on 300
test photos. It exercises the whole frozen-embedder machinery and learns the scene set's typical colours from L
alone; the embedding carries no semantics, so it says nothing about the paper's method. Measured (2 CPU cores shared
with other jobs, load ~8): 3.3 minutes, ~75 images/s; val/loss 0.00957, val/chroma_l2_error 11.3,
val/psnr_rgb_db 25.9 (no colour at all: 11.6 and 28.0 on the same photos); faint blue skies.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from colorjax import config_lib

INCEPTION_WEIGHTS = "~/.keras/models/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_WEIGHTS = "~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variants = set(arg.split(",")) if arg else set()
    config = config_lib.base_config()
    config.data.image_size = 224
    config.data.train_crop = "resize_random_crop"
    config.data.resize_size = 256

    config.model = ml_collections.ConfigDict(
        dict(
            name="koalarization",
            embedder="inception_resnet_v2",
            embedder_weights=INCEPTION_WEIGHTS,
            embedder_classes=1000,
            embedder_input_size=placeholder(int),  # None: the embedder's own (299 or 224).
            ab_scale=110.0,
            width=1.0,
        )
    )
    config.loss = ml_collections.ConfigDict(dict(name="l2", chroma_scale=110.0))

    config.batch_size = 100
    config.num_train_steps = 100_000
    config.optimizer.learning_rate = 1e-3
    config.schedule.update(name="constant", warmup_steps=0)
    config.log_every = 200
    config.eval_every = 5000
    config.eval_max_images = 2000
    config.checkpoint_every = 5000
    config.best_metric = "val/chroma_l2_error"

    if "cpu" in variants:
        if variants != {"cpu"}:
            raise ValueError(f"The cpu variant takes no other variant; got {arg!r}.")
        config_lib.use_scene_photos(config, image_size=64)
        config.model.embedder = "tiny"  # Random and frozen: NO ImageNet knowledge (see the docstring).
        config.model.embedder_weights = ""
        config.model.width = 0.25
        config.batch_size = 16
        config.num_train_steps = 600
        config.log_every = 50
        config.eval_every = 200
        config.checkpoint_every = 200
        config.keep_checkpoints = 2
        return config

    if "vgg16" in variants:
        config.model.embedder = "vgg16"
        config.model.embedder_weights = VGG16_WEIGHTS
    datasets = variants - {"vgg16"}
    if len(datasets) > 1:
        raise ValueError(f"Koalarization variants take one dataset; got {arg!r}.")
    config_lib.use_dataset(config, datasets.pop() if datasets else "imagenet")
    return config
