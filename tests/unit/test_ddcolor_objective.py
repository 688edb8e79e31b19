"""DDColor's training objective equals the authors' PyTorch code (modelscope's copy of their BasicSR losses, their
ColorfulnessLoss) on CPU with random inputs and weights, values and gradients: L1 on ab, the VGG16-BN perceptual
loss with their layers and weights, the vanilla GAN loss on both sides, the colourfulness loss; and colorjax's
VGG16-BN equals torchvision's `features` layer by layer. Skipped without torch or modelscope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.ddcolor import numpy_state_dict, randomise

from colorjax.models.vgg16_bn import LAYER_NAMES, VGG16BNFeatures, normalize_imagenet, vgg16_bn_variables
from colorjax.train import ddcolor_objective as objective
from colorjax.train.losses import make_l1_loss

# options/train/train_ddcolor.yml
PIXEL_WEIGHT, PERCEPTUAL_WEIGHT, GAN_WEIGHT, COLORFULNESS_WEIGHT = 0.1, 5.0, 1.0, 0.5


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("modelscope")
    torch.manual_seed(0)
    return torch


@pytest.fixture(scope="module")
def vgg(torch):
    """A randomised torchvision-layout vgg16_bn (eval mode) and colorjax's variables imported from its state dict."""
    from helpers.ddcolor_training import reference_vgg16_bn

    network = reference_vgg16_bn().eval()
    randomise(network, seed=1)
    return network, numpy_state_dict(network)


def nchw(torch, x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def random_rgb(seed: int, shape=(2, 32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


def test_vgg16_bn_equals_torchvision_features_layer_by_layer(torch, vgg):
    network, state_dict = vgg
    rgb = random_rgb(0)
    variables = vgg16_bn_variables(state_dict, LAYER_NAMES)
    ours = VGG16BNFeatures(outputs=LAYER_NAMES).apply(variables, normalize_imagenet(rgb))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (nchw(torch, rgb) - mean) / std
    assert len(network.features) == len(LAYER_NAMES) == 44
    with torch.no_grad():
        for name, layer in zip(LAYER_NAMES, network.features, strict=True):
            x = layer(x)
            theirs = x.permute(0, 2, 3, 1).numpy()
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(np.asarray(ours[name]), theirs, atol=1e-4 * scale, rtol=0, err_msg=name)
    assert ours["pool5"].shape == (2, 1, 1, 512)


def test_vgg16_bn_builds_only_the_layers_up_to_the_deepest_output():
    variables = jax.eval_shape(
        VGG16BNFeatures(outputs=("conv2_1", "conv1_1")).init, jax.random.key(0), jnp.zeros((1, 8, 8, 3))
    )
    assert sorted(variables["params"]) == ["bn1_1", "bn1_2", "conv1_1", "conv1_2", "conv2_1"]
    with pytest.raises(ValueError, match="no layer 'conv5_4'"):
        VGG16BNFeatures(outputs=("conv5_4",)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def test_l1_on_ab_equals_their_l1loss(torch):
    from helpers.ddcolor_training import authors_losses, reference_vgg16_bn

    losses = authors_losses(reference_vgg16_bn())
    rng = np.random.default_rng(1)
    pred, target = (rng.normal(0, 30, (3, 16, 16, 2)).astype(np.float32) for _ in range(2))
    theirs = losses.L1Loss(loss_weight=PIXEL_WEIGHT)(nchw(torch, pred), nchw(torch, target)).item()
    ours = PIXEL_WEIGHT * float(jnp.mean(make_l1_loss()({"chroma": pred}, {"chroma": target})["loss"]))
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_perceptual_loss_equals_theirs_value_and_gradient(torch, vgg):
    from helpers.ddcolor_training import authors_losses

    network, state_dict = vgg
    losses = authors_losses(network)
    criterion = losses.PerceptualLoss(
        layer_weights=objective.PERCEPTUAL_LAYER_WEIGHTS,
        vgg_type="vgg16_bn",
        use_input_norm=True,
        range_norm=False,
        perceptual_weight=PERCEPTUAL_WEIGHT,
        style_weight=0.0,
        criterion="l1",
    )
    pred, target = random_rgb(2), random_rgb(3)
    pred_torch = nchw(torch, pred).requires_grad_(True)
    theirs, style = criterion(pred_torch, nchw(torch, target))
    theirs.backward()
    assert style is None

    perceptual = objective.make_perceptual_loss(
        vgg16_bn_variables(state_dict, tuple(objective.PERCEPTUAL_LAYER_WEIGHTS))
    )

    def ours_fn(p):
        return PERCEPTUAL_WEIGHT * jnp.mean(perceptual(p, jnp.asarray(target)))

    ours, grad = jax.value_and_grad(ours_fn)(jnp.asarray(pred))
    assert float(ours) == pytest.approx(theirs.item(), rel=1e-4)
    their_grad = pred_torch.grad.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(grad), their_grad, atol=1e-3 * np.abs(their_grad).max(), rtol=0)


def test_vanilla_gan_loss_equals_theirs_on_both_sides(torch):
    from helpers.ddcolor_training import authors_losses, reference_vgg16_bn

    losses = authors_losses(reference_vgg16_bn())
    criterion = losses.GANLoss("vanilla", real_label_val=1.0, fake_label_val=0.0, loss_weight=GAN_WEIGHT)
    rng = np.random.default_rng(4)
    real, fake = (rng.normal(0, 3, (4, 169)).astype(np.float32) for _ in range(2))
    fake_torch = torch.from_numpy(fake).requires_grad_(True)
    generator = criterion(fake_torch, target_is_real=True, is_disc=False)
    generator.backward()
    discriminator = criterion(torch.from_numpy(real), True, is_disc=True) + criterion(
        torch.from_numpy(fake), False, is_disc=True
    )

    ours_g, grad = jax.value_and_grad(lambda f: GAN_WEIGHT * jnp.mean(objective.vanilla_gan_generator_loss(f)))(fake)
    ours_d = jnp.mean(objective.vanilla_gan_discriminator_loss(real, fake))
    assert float(ours_g) == pytest.approx(generator.item(), rel=1e-5)
    assert float(ours_d) == pytest.approx(discriminator.item(), rel=1e-5)
    np.testing.assert_allclose(np.asarray(grad), fake_torch.grad.numpy(), rtol=1e-4, atol=1e-8)


def test_colorfulness_loss_equals_theirs_which_sums_over_the_batch(torch):
    from helpers.ddcolor_training import ColorfulnessLoss

    rgb = random_rgb(5, (3, 16, 16, 3)) * np.array([1.0, 0.6, 0.3], np.float32)  # unequal channels: some colour
    rgb_torch = nchw(torch, rgb).requires_grad_(True)
    theirs = ColorfulnessLoss(loss_weight=COLORFULNESS_WEIGHT)(rgb_torch)
    theirs.backward()

    def ours_fn(x):  # their sum over the batch is batch size x colorjax's per-example mean
        return COLORFULNESS_WEIGHT * x.shape[0] * jnp.mean(objective.colorfulness_loss(x))

    ours, grad = jax.value_and_grad(ours_fn)(jnp.asarray(rgb))
    assert float(ours) == pytest.approx(theirs.item(), rel=1e-5)
    their_grad = rgb_torch.grad.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(grad), their_grad, atol=1e-5 * np.abs(their_grad).max(), rtol=1e-4)
    # A gray photo has colourfulness 0; a uniform red one (rg 1, yb 0.5, no spread) 0.3 x sqrt(1 + 0.25).
    flat = np.stack([np.full((4, 4, 3), 0.5), np.tile([1.0, 0.0, 0.0], (4, 4, 1))]).astype(np.float32)
    np.testing.assert_allclose(objective.colorfulness_loss(flat), [1.0, 1.0 - 0.3 * np.sqrt(1.0 + 0.25)], rtol=1e-6)


def test_lab_to_rgb_equals_their_tensor_lab2rgb_value_and_gradient(torch):
    """Their step feeds every term but L1 with tensor_lab2rgb(L, predicted ab); colorjax.color.lab_to_rgb is the
    same map, clipping included, values and gradients, so the trainer can use it."""
    from helpers.ddcolor_training import tensor_lab2rgb

    from colorjax.color import lab_to_rgb

    rng = np.random.default_rng(6)
    lightness = rng.uniform(0, 100, (2, 16, 16, 1))
    ab = rng.normal(0, 40, (2, 16, 16, 2))  # wide enough that some pixels clip
    lab = np.concatenate([lightness, ab], axis=-1).astype(np.float32)
    lab_torch = nchw(torch, lab).requires_grad_(True)
    theirs = tensor_lab2rgb(lab_torch)
    weights = rng.normal(size=theirs.shape).astype(np.float32)
    (theirs * torch.from_numpy(weights)).sum().backward()

    ours, pullback = jax.vjp(lab_to_rgb, jnp.asarray(lab))
    (grad,) = pullback(jnp.asarray(np.transpose(weights, (0, 2, 3, 1))))
    their_rgb = theirs.detach().permute(0, 2, 3, 1).numpy()
    assert 0.05 < np.mean((their_rgb == 0) | (their_rgb == 1)) < 0.6  # the clipping is exercised
    np.testing.assert_allclose(np.asarray(ours), their_rgb, atol=2e-6, rtol=0)
    their_grad = lab_torch.grad.permute(0, 2, 3, 1).numpy()  # clipped channels pass no gradient in both
    np.testing.assert_allclose(np.asarray(grad), their_grad, atol=1e-5 * np.abs(their_grad).max(), rtol=1e-3)


def test_color_enhance_equals_theirs(torch):
    from helpers.ddcolor_training import color_enhacne_blend

    rgb = random_rgb(7, (2, 8, 8, 3))
    theirs = np.stack([color_enhacne_blend(image, factor=1.2).permute(1, 2, 0).numpy() for image in nchw(torch, rgb)])
    ours = np.asarray(objective.color_enhance(jnp.asarray(rgb), 1.2))
    assert 0 < np.mean((theirs == 0) | (theirs == 1)) < 0.5  # the clipping is exercised
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert objective.colorfulness(ours).mean() > objective.colorfulness(rgb).mean()
