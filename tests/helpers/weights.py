"""Helpers shared by the tests that import published weights: parameter counts, relative error, Keras weights.

Imported as `from helpers.weights import ...` (pyproject puts `tests/` on sys.path).
"""

import jax
import numpy as np


def parameter_count(tree) -> int:
    """Number of scalars in a variable tree (arrays or `jax.eval_shape` structs)."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def relative_error(ours, reference) -> float:
    """max |ours - reference| / max |reference|, after checking the shapes agree."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def randomize_keras_weights(model, seed: int) -> None:
    """Random biases and BatchNorm statistics in a Keras model, in place.

    Keras starts biases at zero and BatchNorm at the identity, so an importer that dropped or swapped one of those
    arrays would still match; random values make every array's mapping count.
    """
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            positive = ("gamma", "moving_variance")
            layer.set_weights(
                [
                    (
                        rng.uniform(0.5, 2.0, value.shape)
                        if variable.name in positive
                        else rng.normal(0.0, 0.1, value.shape)
                    ).astype(np.float32)
                    for variable, value in zip(layer.weights, weights, strict=True)
                ]
            )
        elif len(weights) == 2:  # Conv2D / Dense: kernel, bias.
            kernel, bias = weights
            layer.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
