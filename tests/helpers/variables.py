"""Model variables for the tests without compiling `model.init`."""

import jax
import jax.numpy as jnp
import numpy as np


def numpy_init(model, L: jax.Array, seed: int = 0) -> dict:
    """He-normal kernels, zero biases, identity BatchNorm, drawn with NumPy.

    `model.init` would do the same, but compiling its threefry draws for ~45 parameters takes about a minute on a
    busy 2-core machine; these tests only need sensible random weights.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), L))

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = np.prod(leaf.shape[:-1])
            return jnp.asarray(rng.normal(0, np.sqrt(2 / fan_in), leaf.shape), leaf.dtype)
        return jnp.full(leaf.shape, 1.0 if name in ("scale", "var") else 0.0, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)
