"""`python -m colorjax.prior`: the smoothed ab prior of a configured dataset, and the loss that uses it."""

from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from helpers.paths import REPO
from PIL import Image
from skimage.color import rgb2lab

from colorjax import config_lib, quantize
from colorjax.cli import prior as prior_cli
from colorjax.train import prior
from colorjax.train.losses import make_zhang_loss

# Solid sRGB colours far apart in ab, and a gray that carries no colour signal.
COLOURS = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200)}


def data_config(source: str, image_size: int = 32) -> ml_collections.ConfigDict:
    """`config_lib.base_config().data` on `source` at `image_size`, every file in the training split."""
    data = config_lib.base_config().data
    data.update(source=source, image_size=image_size, max_failed_fraction=0.5, holdout_fraction=0.0)
    return data


@pytest.fixture
def solid_colours(tmp_path) -> Path:
    """train/: two images of each colour in COLOURS (different sizes) and one gray image; test/: a yellow one."""
    root = tmp_path / "solid"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for name, rgb in COLOURS.items():
        for i, size in enumerate(((40, 60), (50, 50))):
            image = np.broadcast_to(np.uint8(rgb), (*size, 3))
            Image.fromarray(np.ascontiguousarray(image)).save(root / "train" / f"{name}{i}.png")
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(root / "train" / "gray.png")
    Image.fromarray(np.full((40, 40, 3), (220, 200, 30), np.uint8)).save(root / "test" / "yellow.png")
    return root


def nearest_bin_of(rgb) -> int:
    ab = rgb2lab(np.array([[rgb]], np.float64) / 255.0)[0, 0, 1:]
    return int(quantize.nearest_bin(jnp.asarray(ab, jnp.float32)))


def test_prior_puts_its_mass_on_the_training_colours(solid_colours):
    config = data_config(f"folder:{solid_colours}")
    raw = prior.compute_prior(config, sigma=0.0, progress=False)
    assert raw.num_images == 6 and raw.num_colourless == 1  # the gray image is skipped, as training does
    expected = {nearest_bin_of(rgb) for rgb in COLOURS.values()}
    assert set(np.flatnonzero(raw.counts)) == expected  # not the test split's yellow, not the gray's (0, 0)
    # Equal areas per colour (every image is cropped to 32x32): a third of the mass each.
    np.testing.assert_allclose(raw.prior[sorted(expected)], 1 / 3, atol=1e-12)
    assert raw.counts.sum() == 6 * 8 * 8  # every 4th pixel of each 32x32 crop

    smoothed = prior.compute_prior(config, progress=False)  # sigma = 5, as the authors'
    assert smoothed.prior.dtype == np.float64 and smoothed.prior.shape == (313,)
    assert abs(smoothed.prior.sum() - 1.0) < 1e-12
    centres = quantize.ab_bin_centres()
    near = np.zeros(313, bool)
    for bin_index in expected:
        near |= np.linalg.norm(centres - centres[bin_index], axis=1) <= 15.0
    assert smoothed.prior[near].sum() > 0.99  # smoothing spreads mass to the neighbours only
    assert smoothed.prior[sorted(expected)].min() > 0.1
    assert smoothed.prior[nearest_bin_of((128, 128, 128))] < 1e-6


def test_cli_writes_a_prior_that_load_prior_reads_and_the_loss_uses(photo_folder, tmp_path, capsys):
    out = tmp_path / "priors" / "photos.npy"
    status = prior_cli.main(
        [
            f"--config={REPO / 'configs' / 'zhang_eccv16.py'}:runlocal",
            f"--config.data.source=folder:{photo_folder}",
            "--config.data.image_size=32",
            "--config.data.holdout_fraction=0.0",
            "--config.data.max_failed_fraction=0.5",  # the fixture's corrupt files are skipped
            f"--out={out}",
            "--max-images=10",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    loaded = quantize.load_prior(out)
    saved = np.load(out)
    assert saved.dtype == np.float64 and saved.shape == (313,)
    np.testing.assert_allclose(loaded, saved, rtol=1e-12)
    assert "Counted 10 images" in printed and "Rebalancing weights (lambda=0.5) span" in printed
    low, high = quantize.rebalance_weights(loaded).min(), quantize.rebalance_weights(loaded).max()
    assert f"{low:.4g} to {high:.4g}" in printed

    # A loss built on this prior weights pixels differently from the ImageNet-prior loss.
    rng = np.random.default_rng(0)
    batch = {
        "L": jnp.full((2, 16, 16, 1), 50.0),
        "chroma": jnp.asarray(rng.uniform(-60, 60, (2, 16, 16, 2)), jnp.float32),
    }
    outputs = {"logits": jnp.asarray(rng.standard_normal((2, 4, 4, 313)), jnp.float32)}
    own = make_zhang_loss(prior_path=str(out))(outputs, batch)["loss"]
    imagenet = make_zhang_loss()(outputs, batch)["loss"]
    assert np.max(np.abs(np.asarray(own) - np.asarray(imagenet))) > 0.05 * np.max(np.asarray(imagenet))
    # Without rebalancing the prior plays no part.
    np.testing.assert_allclose(
        make_zhang_loss(prior_path=str(out), rebalance=False)(outputs, batch)["loss"],
        make_zhang_loss(rebalance=False)(outputs, batch)["loss"],
        rtol=1e-6,
    )


def test_bad_requests_fail_with_one_line(solid_colours, tmp_path, capsys):
    config = data_config(f"folder:{solid_colours}")
    config.color_space = "luv"
    with pytest.raises(ValueError, match="313-bin prior is over CIE Lab"):
        prior.compute_prior(config, progress=False)
    gray_only = tmp_path / "gray"
    (gray_only / "train").mkdir(parents=True)
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(gray_only / "train" / "a.png")
    with pytest.raises(ValueError, match="has colour"):
        prior.compute_prior(data_config(f"folder:{gray_only}"), progress=False)
    assert (
        prior_cli.main(
            [
                f"--config={REPO / 'configs' / 'zhang_eccv16.py'}:folder",
                f"--config.data.source=folder:{solid_colours}",
                f"--out={tmp_path / 'prior.txt'}",
            ]
        )
        == 1
    )
    assert "name it *.npy" in capsys.readouterr().err
    assert prior_cli.main([f"--out={tmp_path / 'p.npy'}"]) == 2
