"""Published weights by name, and the readers of their files; imports no model.

- `registry`: the known names (`KNOWN_WEIGHTS`), the cache, the checked download, `resolve_weights(name_or_path)`.
- `pth`: the torch-free reader of PyTorch `.pth` files. `formats`: Keras h5 files, copying arrays into params.
"""

from colorjax.weights.registry import KNOWN_WEIGHTS, KnownWeights, WeightsError, cache_dir, download, resolve_weights

__all__ = ["KNOWN_WEIGHTS", "KnownWeights", "WeightsError", "cache_dir", "download", "resolve_weights"]
