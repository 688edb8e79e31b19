"""DDColor's discriminator (Kang et al. 2023): DeOldify's `DynamicUNetDiscriminator`, a PatchGAN-style stack of
spectral-normalised convolutions (piddnad/DDColor basicsr/archs/discriminator_arch.py, blocks from
basicsr/archs/ddcolor_arch_utils/unet.py `conv_layer(..., norm_type=NormType.Spectral)`).

With the authors' `nf: 64` (options/train/train_ddcolor.yml `network_d`) and 3 blocks on RGB in [0, 1]:

    layers_0  4x4 conv stride 2, 3 -> nf, ReLU
    per block i = 0, 1, 2: 3x3 conv stride 1 (w -> w), ReLU; 4x4 conv stride 2 (w -> 2w), ReLU,
        then self-attention (SAGAN, Zhang et al. 2018) after the first block's downsampling only
    layers_7  3x3 conv 8nf -> 8nf, ReLU
    layers_8  4x4 conv, no padding, no bias, no activation, 8nf -> 1

Every conv has a bias except the last (no BatchNorm: `bias = not bn`), padding (k - 1) // 2 (1 for both 3x3 and
4x4, so a 4x4 stride-2 conv halves an even side). The output is one logit per patch, flattened to (N, P) as their
`out.view(N, -1)`: 13 x 13 = 169 logits for a 256 x 256 photo.

Spectral normalisation is Flax's `nn.SpectralNorm` (one power-iteration step), whose training mode is PyTorch's:
from the stored u, v = normalize(W^T u), u = normalize(W v), sigma = u . W v, W / sigma, and u kept for the next
call. Pass `update_stats=True` (and `mutable=["batch_stats"]`) wherever the authors' discriminator runs in train
mode, which is every call of their training step: the generator's update and the discriminator's real and fake
passes each advance u once. The modes differ out of training: PyTorch's eval mode uses the stored u and v with
no iteration, while Flax's `update_stats=False` still iterates once from the stored u (and keeps nothing); the
recipe never runs the discriminator in eval mode.

`discriminator_variables(state_dict)` imports a PyTorch state dict of the authors' module (`layers.{i}.0.weight_orig`,
`weight_u`, `weight_v`, `layers.2.2.{query,key,value}.*`, `layers.2.2.gamma`); the stored `sigma` is their eval-mode
u . W v.
"""

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.weights.formats import torch_conv_kernel, torch_linear_kernel

DEFAULT_NF = 64  # options/train/train_ddcolor.yml network_d.nf (the class's own default is 256)
DEFAULT_BLOCKS = 3


class SelfAttention(nn.Module):
    """DeOldify's `SelfAttention` (SAGAN): spectral-normalised 1x1 query/key (C/8) and value (C) projections,
    attention softmaxed over the *query* positions (their `softmax(f^T g, dim=1)`), `gamma * attended + x`."""

    @nn.compact
    def __call__(self, x: jax.Array, *, update_stats: bool) -> jax.Array:
        n, h, w, c = x.shape
        flat = x.reshape(n, h * w, c)

        def project(features: int, name: str) -> jax.Array:
            dense = nn.Dense(features, use_bias=False, name=name)
            return nn.SpectralNorm(dense, name=f"{name}_sn")(flat, update_stats=update_stats)

        query, key, value = project(c // 8, "query"), project(c // 8, "key"), project(c, "value")
        gamma = self.param("gamma", nn.initializers.zeros, (1,))
        attention = jax.nn.softmax(jnp.einsum("nic,njc->nij", query, key), axis=1)
        attended = jnp.einsum("nij,nic->njc", attention, value)
        return (gamma * attended + flat).reshape(n, h, w, c)


class SpectralConv(nn.Module):
    """`conv_layer(ni, nf, ks, stride, norm_type=Spectral, ...)`: spectral-normalised conv, ReLU, self-attention."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int | None = None  # None: (kernel_size - 1) // 2, as theirs
    use_bias: bool = True
    activation: bool = True
    self_attention: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, update_stats: bool) -> jax.Array:
        padding = (self.kernel_size - 1) // 2 if self.padding is None else self.padding
        conv = nn.Conv(
            self.features,
            (self.kernel_size, self.kernel_size),
            strides=self.stride,
            padding=padding,
            use_bias=self.use_bias,
            name="conv",
        )
        x = nn.SpectralNorm(conv, name="conv_sn")(x, update_stats=update_stats)
        if self.activation:
            x = nn.relu(x)
        if self.self_attention:
            x = SelfAttention(name="attention")(x, update_stats=update_stats)
        return x


class DynamicUNetDiscriminator(nn.Module):
    """RGB in [0, 1], NHWC -> (N, P) patch logits. See the module docstring for the layers."""

    nf: int = DEFAULT_NF
    n_blocks: int = DEFAULT_BLOCKS

    @nn.compact
    def __call__(self, rgb: jax.Array, *, update_stats: bool) -> jax.Array:
        width = self.nf
        layers = [dict(features=width, kernel_size=4, stride=2)]
        for block in range(self.n_blocks):
            layers += [
                dict(features=width, kernel_size=3),
                dict(features=width * 2, kernel_size=4, stride=2, self_attention=block == 0),
            ]
            width *= 2
        layers += [
            dict(features=width, kernel_size=3),
            dict(features=1, kernel_size=4, padding=0, use_bias=False, activation=False),
        ]
        x = rgb
        for index, layer in enumerate(layers):
            x = SpectralConv(**layer, name=f"layers_{index}")(x, update_stats=update_stats)
        return x.reshape(x.shape[0], -1)


def _spectral_entry(prefix: str, state_dict: Mapping[str, np.ndarray], name: str) -> dict:
    """batch_stats of one spectral-normalised weight: u as stored, sigma = u . W v (PyTorch's eval-mode sigma)."""
    weight = np.asarray(state_dict[f"{prefix}.weight_orig"], np.float64)
    u = np.asarray(state_dict[f"{prefix}.weight_u"], np.float64)
    v = np.asarray(state_dict[f"{prefix}.weight_v"], np.float64)
    sigma = u @ (weight.reshape(weight.shape[0], -1) @ v)
    return {f"{name}/kernel/u": u[None].astype(np.float32), f"{name}/kernel/sigma": np.float32(sigma)}


def discriminator_variables(state_dict: Mapping[str, np.ndarray], n_blocks: int = DEFAULT_BLOCKS) -> dict:
    """Flax variables of `DynamicUNetDiscriminator` from the authors' PyTorch state dict (module docstring)."""
    params, batch_stats = {}, {}
    for index in range(2 * n_blocks + 3):
        prefix = f"layers.{index}"
        weight = np.asarray(state_dict[f"{prefix}.0.weight_orig"], np.float32)
        conv = {"kernel": torch_conv_kernel(weight)}
        if f"{prefix}.0.bias" in state_dict:
            conv["bias"] = np.asarray(state_dict[f"{prefix}.0.bias"], np.float32)
        layer_params = {"conv": conv}
        layer_stats = {"conv_sn": _spectral_entry(f"{prefix}.0", state_dict, "conv")}
        attention = f"{prefix}.2"  # conv, ReLU, SelfAttention
        if f"{attention}.gamma" in state_dict:
            layer_params["attention"] = {"gamma": np.asarray(state_dict[f"{attention}.gamma"], np.float32)}
            layer_stats["attention"] = {}
            for projection in ("query", "key", "value"):
                key = f"{attention}.{projection}"
                kernel = torch_linear_kernel(np.asarray(state_dict[f"{key}.weight_orig"], np.float32)[..., 0])
                layer_params["attention"][projection] = {"kernel": kernel}
                layer_stats["attention"][f"{projection}_sn"] = _spectral_entry(key, state_dict, projection)
        params[f"layers_{index}"] = layer_params
        batch_stats[f"layers_{index}"] = layer_stats
    return jax.tree.map(jnp.asarray, {"params": params, "batch_stats": batch_stats})
