"""The CIFAR-10 colorization autoencoder of the VIT report: 32x32 gray in, 32x32 RGB out, MSE on RGB.

    python -m colorjax.train --config configs/cifar10_autoencoder.py --workdir runs/cifar10_ae
    python -m colorjax.train --config configs/cifar10_autoencoder.py:cpu --workdir runs/cifar10_ae_cpu
    python -m colorjax.colorize --workdir runs/cifar10_ae --step best photos/ --output colorized/

Data: TFDS `cifar10` (downloaded once by `tfds build cifar10`, 160 MB): the 50,000 training images, and the 10,000
test images as the validation set (CIFAR-10 has no other held-out split). The images are used whole (no crop; a
random horizontal flip is the only augmentation); gray CIFAR images are skipped as in every colorjax recipe.

Recipe, as the report: batch 32, 50 epochs (78,150 steps of 1,563), Adam 1e-3 (Keras' default), the learning rate
times sqrt(0.1) after 5 evaluations without a better val/loss (Keras ReduceLROnPlateau), an evaluation on the whole
test split after every epoch, and the checkpoint with the best val/loss kept (plus the latest two) for colorize.

Colorize: the dense layers fix the input to 32x32 (`config.inference.fixed_size`); any photo is shrunk to 32x32
for the model and its chroma upsampled onto the photo's own lightness, so the output keeps the input's size.
Expect the report's look: blurry, muted colours at 32x32 resolution, more vivid without dropout or batch norm.

Hardware and time: one GPU: the model is tiny (~1.2 GFLOPs per training image), so tf.data decoding sets the
pace; not measured here (no accelerator in this session); expect well under an hour. On 2 CPU cores shared with
other jobs the full-width model trains at ~31 images/s (measured), i.e. about 22 hours for the 50 epochs.

`cpu`: width 1/4 (0.61M parameters), 32x32 crops of the Intel scene photos (`../shared/data/intel_scenes_150`) when
present, else the seven `samples`, batch 32, 1,200 steps, evaluation every 200 steps on 300 test photos, plateau
patience 2 evaluations. Measured (2 CPU cores shared with other jobs, load ~7): 4.6 minutes, ~190 images/s;
train loss 0.040 (first 100 steps) -> 0.0116, best val/loss 0.0131 (step 1000, the kept best checkpoint),
final val/chroma_l2_error 11.9 and val/psnr_rgb_db 25.6 (no colour at all: 11.3 and 28.3 on the same photos);
muted blue skies.
"""

import math

import ml_collections

from colorjax import config_lib

TRAIN_IMAGES = 50_000
EPOCHS = 50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = config_lib.base_config()
    config.data.source = "tfds:cifar10"
    config.data.train_split = "train"
    config.data.eval_split = "test"
    config.data.image_size = 32
    config.data.train_crop = "resize_random_crop"  # Resize to 32, crop 32: the whole image, flipped at random.
    config.data.resize_size = 32

    config.model = ml_collections.ConfigDict(dict(name="cifar10_autoencoder", latent_dim=256, width=1.0))
    config.loss = ml_collections.ConfigDict(dict(name="rgb_mse"))

    config.batch_size = 32
    steps_per_epoch = math.ceil(TRAIN_IMAGES / config.batch_size)
    config.num_train_steps = EPOCHS * steps_per_epoch
    config.optimizer.learning_rate = 1e-3
    config.optimizer.reduce_on_plateau = dict(factor=math.sqrt(0.1), patience=5)
    config.plateau_metric = "val/loss"
    config.schedule.update(name="constant", warmup_steps=0)

    config.log_every = 200
    config.eval_every = steps_per_epoch
    config.eval_max_images = 10_000  # The whole test split, every epoch.
    config.checkpoint_every = steps_per_epoch
    config.keep_checkpoints = 2
    config.keep_best_checkpoints = 1
    config.best_metric = "val/loss"
    config.best_mode = "min"
    config.inference.fixed_size = 32

    if arg == "cpu":
        config_lib.use_scene_photos(config, image_size=32)  # Crops of 150x150 photos.
        config.model.width = 0.25  # Conv widths 16..64: 1/16 of the FLOPs.
        config.num_train_steps = 1200
        config.log_every = 100
        config.eval_every = 200
        config.checkpoint_every = 200
        # Patience counts evaluations: 6 of them cannot show a 5-evaluation plateau, so it is shorter here.
        config.optimizer.reduce_on_plateau = dict(factor=math.sqrt(0.1), patience=2)
    elif arg is not None:
        raise ValueError(f"Unknown variant {arg!r} of configs/cifar10_autoencoder.py; use cpu or none.")
    return config
