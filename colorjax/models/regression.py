"""The L2 regression baseline: a small fully-convolutional net that predicts chroma directly.

Every colorization paper compares against it (Zhang et al. 2016 Table 1 "L2", Hwang & Zhou's regression row):
trained with L2 it averages the plausible colours of a multimodal pixel and so comes out dim and sepia. It is also
the fastest model in the package, which makes it the default for smoke tests.

Architecture: conv-BN-ReLU blocks down to 1/4 resolution, dilated context blocks, a linear 1x1 head scaled by
`chroma_scale` (110 for Lab, as the authors' PyTorch port scales its ab head), and bilinear x4 upsampling.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConvBlock(nn.Module):
    """`num_convs` 3x3 convolutions, each followed by BatchNorm and ReLU; the first may be strided."""

    features: int
    num_convs: int = 2
    first_stride: int = 1
    dilation: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for i in range(self.num_convs):
            stride = self.first_stride if i == 0 else 1
            x = nn.Conv(
                self.features,
                (3, 3),
                strides=stride,
                kernel_dilation=self.dilation,
                padding="SAME",
                use_bias=False,
            )(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
            x = nn.relu(x)
        return x


class Regression(nn.Module):
    """Chroma regression: L (N,H,W,1) in [0,100] -> {"chroma": (N,H,W,2)} in colour-space units."""

    width: int = 32
    chroma_scale: float = 110.0

    @nn.compact
    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        height, width = L.shape[1:3]
        x = (L - 50.0) / 100.0
        x = ConvBlock(self.width)(x, train=train)
        x = ConvBlock(self.width * 2, first_stride=2)(x, train=train)
        x = ConvBlock(self.width * 4, first_stride=2)(x, train=train)
        x = ConvBlock(self.width * 4, dilation=2)(x, train=train)
        x = ConvBlock(self.width * 4, dilation=2)(x, train=train)
        x = ConvBlock(self.width * 2)(x, train=train)
        chroma_quarter = self.chroma_scale * nn.Conv(2, (1, 1), name="chroma_head")(x)
        chroma = jax.image.resize(chroma_quarter, (L.shape[0], height, width, 2), method="bilinear").astype(jnp.float32)
        return {"chroma": chroma}
