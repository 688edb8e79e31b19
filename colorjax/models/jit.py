"""One compiled `model.apply` per (model, method, static arguments), shared by every caller in the process."""

import functools

import flax.linen as nn
import jax


@functools.lru_cache(maxsize=32)
def jitted_apply(model: nn.Module, method: str | None = None, **static_kwargs):
    """`jax.jit(model.apply)` (of `method`, with Python-valued keyword arguments such as `train=False` fixed).

    Cached on the module (Linen modules are hashable dataclasses), so the Colorizers of one model (one per call of
    `colorize.main` in a notebook or a test, the app's, the video's) and the any-size routines share compilations.
    """
    return jax.jit(functools.partial(model.apply, method=method, **static_kwargs))
