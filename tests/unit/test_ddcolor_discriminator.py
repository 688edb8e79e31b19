"""DDColor's discriminator equals the authors' `DynamicUNetDiscriminator` (PyTorch, train mode as in their training
step, random weights in their state-dict layout) block by block and end to end, including the spectral norm's
power-iteration state it leaves for the next call. Skipped without torch or modelscope."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.ddcolor import numpy_state_dict, randomise

from colorjax.models.ddcolor_discriminator import DynamicUNetDiscriminator, SpectralConv, discriminator_variables

NF = 8  # the recipe's 64, narrowed for CPU; every layer kind and the self-attention are there at any width
SIZE = 64  # 64 -> 32 -> 16 -> 8 -> 4 -> (4x4 valid) 1 patch logit


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("modelscope")
    return torch


@pytest.fixture(scope="module")
def reference(torch):
    from helpers.ddcolor_training import authors_discriminator

    torch.manual_seed(0)
    network = authors_discriminator(nf=NF).train()
    randomise(network, seed=2)  # gamma too: their init of 0 would hide the attention
    return network


def nchw(torch, x):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def nhwc(y):
    return y.detach().permute(0, 2, 3, 1).numpy()


def close(ours, theirs, name, tolerance=1e-4):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    scale = max(np.abs(theirs).max(), 1e-6)
    np.testing.assert_allclose(ours, theirs, atol=tolerance * scale, rtol=0, err_msg=name)


def rgb(seed=0, batch=2, size=SIZE):
    return np.random.default_rng(seed).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)


def layer_kwargs(index: int, n_blocks: int = 3) -> dict:
    """The SpectralConv of their layers[index] at NF (the module's own construction, restated)."""
    if index == 0:
        return dict(features=NF, kernel_size=4, stride=2)
    if index == 2 * n_blocks + 2:
        return dict(features=1, kernel_size=4, padding=0, use_bias=False, activation=False)
    block, step = divmod(index - 1, 2)
    width = NF * 2 ** min(block, n_blocks)
    if index == 2 * n_blocks + 1 or step == 0:
        return dict(features=width, kernel_size=3)
    return dict(features=2 * width, kernel_size=4, stride=2, self_attention=block == 0)


def test_state_dict_layout_and_shapes_match_theirs(reference):
    variables = discriminator_variables(numpy_state_dict(reference))
    initialised = jax.eval_shape(
        lambda: DynamicUNetDiscriminator(nf=NF).init(
            jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)), update_stats=False
        )
    )
    shapes = jax.tree.map(np.shape, variables)
    assert shapes == jax.tree.map(np.shape, initialised)  # every name and shape, nothing missing or extra
    assert shapes["params"]["layers_2"]["attention"]["query"]["kernel"] == (2 * NF, 2 * NF // 8)
    assert "bias" not in shapes["params"]["layers_8"]["conv"]


def test_blocks_equal_theirs_in_train_mode(torch, reference):
    network = copy.deepcopy(reference)
    variables = discriminator_variables(numpy_state_dict(network))
    x = nchw(torch, rgb(1))
    for index, layer in enumerate(network.layers):
        layer_variables = {collection: tree[f"layers_{index}"] for collection, tree in variables.items()}
        ours, updated = SpectralConv(**layer_kwargs(index)).apply(
            layer_variables, np.asarray(nhwc(x)), update_stats=True, mutable=["batch_stats"]
        )
        with torch.no_grad():
            x = layer(x)  # train mode: one power-iteration step on u
        close(ours, nhwc(x), f"layers.{index}")
        close(updated["batch_stats"]["conv_sn"]["conv/kernel/u"][0], layer[0].weight_u.numpy(), f"layers.{index} u")
        if index == 2:
            attention = updated["batch_stats"]["attention"]["query_sn"]["query/kernel/u"][0]
            close(attention, layer[2].query.weight_u.numpy(), "self-attention query u")


def test_end_to_end_equals_theirs_over_the_three_calls_of_a_training_step(torch, reference):
    """Their step calls the discriminator three times in train mode (generator's fake, real, fake); each call moves
    u, so colorjax must thread the spectral-norm state through the same three calls to stay equal."""
    network = copy.deepcopy(reference)
    variables = discriminator_variables(numpy_state_dict(network))
    model = DynamicUNetDiscriminator(nf=NF)
    for call, seed in enumerate((3, 4, 3)):
        photos = rgb(seed)
        ours, updated = model.apply(variables, photos, update_stats=True, mutable=["batch_stats"])
        variables = {**variables, **updated}
        with torch.no_grad():
            theirs = network(nchw(torch, photos)).numpy()
        assert ours.shape == theirs.shape == (2, 1)
        close(ours, theirs, f"call {call}")
    with pytest.raises(AssertionError):  # the state matters: the first call's u no longer gives their output
        stale = discriminator_variables(numpy_state_dict(reference))
        close(model.apply(stale, photos, update_stats=False), theirs, "stale u", tolerance=1e-6)


def test_recipe_width_gives_169_patch_logits_at_256():
    shapes = jax.eval_shape(
        lambda: DynamicUNetDiscriminator().init_with_output(
            jax.random.key(0), jnp.zeros((1, 256, 256, 3)), update_stats=False
        )
    )
    logits, variables = shapes
    assert logits.shape == (1, 169)
    count = sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))
    # Their nf=64 module's parameter count (weight_orig, biases, gamma): 64..512 channels.
    assert count == 5_919_617


def test_gradients_equal_theirs_for_the_photo_and_the_weights(torch, reference):
    """The generator's update differentiates through the discriminator into the photo, the discriminator's update
    into its weights (through sigma, with u and v held constant, as PyTorch's spectral norm does)."""
    network = copy.deepcopy(reference)
    variables = discriminator_variables(numpy_state_dict(network))
    photos = rgb(5)
    weights = np.random.default_rng(6).normal(size=(2, 1)).astype(np.float32)

    def ours_fn(params, x):
        logits, _ = DynamicUNetDiscriminator(nf=NF).apply(
            {**variables, "params": params}, x, update_stats=True, mutable=["batch_stats"]
        )
        return jnp.sum(logits * weights)

    grad_params, grad_photos = jax.jit(jax.grad(ours_fn, argnums=(0, 1)))(variables["params"], photos)
    photos_torch = nchw(torch, photos).requires_grad_(True)
    (network(photos_torch) * torch.from_numpy(weights)).sum().backward()
    close(grad_photos, nhwc(photos_torch.grad), "d/d photo", tolerance=1e-3)
    for index in (0, 2, 8):
        theirs = network.layers[index][0].weight_orig.grad.permute(2, 3, 1, 0).numpy()
        close(grad_params[f"layers_{index}"]["conv"]["kernel"], theirs, f"d/d layers.{index} weight", tolerance=1e-3)
    close(grad_params["layers_2"]["attention"]["gamma"], network.layers[2][2].gamma.grad.numpy(), "d/d gamma", 1e-3)
