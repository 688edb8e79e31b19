"""Colour quantization: the output spaces of the classification models.

- CIELUV, Hwang & Zhou (CS231n 2016): U and V in [-100, 100] each cut into 50 bins of width 4 (indices 0..49).
- CIE Lab, Zhang et al. (ECCV16): Q = 313 in-gamut ab bins on a grid of 10 (`ab_bin_centres`, published order),
  soft-encoding of targets, class rebalancing from an empirical prior, and the annealed-mean decoding.

The Lab functions that run per pixel (`soft_encode`, `nearest_bin`, `annealed_mean`) are pure JAX so they run inside the
jitted train step on the accelerator; the prior helpers (`load_prior`, `rebalance_weights`, `smoothed_prior`) are
host-side NumPy, run once when a loss is built or a prior is computed.
"""

import functools
import importlib.resources
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

LUV_NUM_BINS = 50
LUV_RANGE = (-100.0, 100.0)
LUV_BIN_WIDTH = (LUV_RANGE[1] - LUV_RANGE[0]) / LUV_NUM_BINS


def uv_to_bins(uv: jax.Array) -> jax.Array:
    """Bin index (0..49) of each of u and v; values outside [-100, 100] fall in the end bins. Shape kept, int32."""
    index = jnp.floor((uv - LUV_RANGE[0]) / LUV_BIN_WIDTH)
    return jnp.clip(index, 0, LUV_NUM_BINS - 1).astype(jnp.int32)


def bins_to_uv(bins: jax.Array) -> jax.Array:
    """Value of each bin index: the bin's mean (its centre, for values spread evenly within the bin)."""
    return LUV_RANGE[0] + (bins.astype(jnp.float32) + 0.5) * LUV_BIN_WIDTH


# --- CIE Lab, Zhang et al. 2016: 313 ab bins -------------------------------------------------------------------

AB_NUM_BINS = 313
# The paper's and the Caffe deploy graph's decoding temperature (the graph scales logits by 2.606 = 1 / 0.3837).
ANNEALED_MEAN_TEMPERATURE = 0.38


def _asset_path(name: str):
    # importlib.resources finds the file inside an installed wheel as well as in a source checkout.
    return importlib.resources.files("colorjax") / "assets" / name


@functools.cache
def _ab_bin_centres_numpy() -> np.ndarray:
    with _asset_path("ab_bins_313.npy").open("rb") as f:
        centres = np.load(f).astype(np.float32)
    centres.setflags(write=False)  # cached and shared: nobody may edit it in place
    return centres


def ab_bin_centres() -> np.ndarray:
    """The 313 ab bin centres, float32 (313, 2), in the published order (sorted by (a, b)).

    Published weights index their 313 logits by this order, so it must never be re-sorted.
    """
    return _ab_bin_centres_numpy()


def load_prior(path: str | Path | None = None) -> np.ndarray:
    """An empirical prior over the 313 ab bins, float64 (313,), normalised to sum to 1.

    `path=None` gives the shipped ImageNet prior (Gaussian-smoothed, max 0.2012 at bin (0, 0)); otherwise a `.npy`
    file of 313 non-negative numbers, e.g. from `python -m colorjax.prior`.
    """
    if path is None:
        with _asset_path("ab_prior_imagenet_313.npy").open("rb") as f:
            prior = np.load(f)
        source = "the shipped ImageNet prior"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Prior file {path} not found; compute one with `python -m colorjax.prior --config CONFIG "
                f"--out {path}` or leave the prior path unset to use the shipped ImageNet prior."
            )
        try:
            prior = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ValueError(f"Prior file {path} is not a .npy array ({error}).") from None
        source = str(path)
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != (AB_NUM_BINS,):
        raise ValueError(
            f"Prior {source} has shape {prior.shape}; expected ({AB_NUM_BINS},), one probability per ab bin."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() <= 0:
        raise ValueError(f"Prior {source} must hold finite non-negative numbers with a positive sum.")
    return prior / prior.sum()


def _squared_distances_to_bins(ab: jax.Array) -> jax.Array:
    """(..., 2) -> float32 (..., 313) squared ab distances to every bin centre."""
    ab = ab.astype(jnp.float32)
    centres = jnp.asarray(ab_bin_centres())
    # Per coordinate rather than via a (..., 313, 2) difference: followed by top_k, that form ran ~20x slower on
    # XLA:CPU (18 s vs 0.9 s for 77k pixels); this one fuses into one cheap pass.
    return jnp.square(ab[..., :1] - centres[:, 0]) + jnp.square(ab[..., 1:] - centres[:, 1])


def _nearest_bins(ab: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Indices int32 (..., k) of the k nearest bins, nearest first, and their squared distances."""
    negative_squared, indices = jax.lax.top_k(-_squared_distances_to_bins(ab), k)
    return indices.astype(jnp.int32), -negative_squared


# The bin centres sit on a grid of 10 ab units; the lookup table covers the grid points over [-110, 110]^2.
AB_GRID_STEP = 10.0
_GRID_HALF = 11


@functools.cache
def _grid_point_bins() -> np.ndarray:
    """int32 (23, 23): the bin index of each grid point over [-110, 110]^2, or -1 where no centre sits."""
    centres = ab_bin_centres()
    index = np.round(centres / AB_GRID_STEP).astype(np.int64)
    if not np.array_equal(index * AB_GRID_STEP, centres) or np.abs(index).max() > _GRID_HALF:
        raise ValueError("ab_bins_313.npy: bin centres are expected on a grid of 10 ab units within 110.")
    table = np.full((2 * _GRID_HALF + 1,) * 2, -1, np.int32)
    table[index[:, 0] + _GRID_HALF, index[:, 1] + _GRID_HALF] = np.arange(AB_NUM_BINS)
    table.setflags(write=False)
    return table


@jax.jit
def nearest_bin(ab: jax.Array) -> jax.Array:
    """Index (int32) of the bin centre nearest to each ab value, ties to the lower index: (..., 2) -> (...).

    The one definition of a pixel's colour class: the Zhang loss's rebalancing weight (whose soft target's nearest
    bin is this one) and the rebalanced AuC both use it. The nearest point of the 10-unit grid is found per
    coordinate; when it is a bin centre it is the nearest centre, which holds for every sRGB colour. Only a batch
    holding an ab beyond the gamut's edge pays for the search over all 313 centres (~10x slower on CPU).
    """
    ab = ab.astype(jnp.float32)
    # Nearest grid point, a tie going to the lower one, as argmin does in the published (a, b)-sorted order. The
    # half step is subtracted before dividing: XLA divides by multiplying with float32 0.1, and 5 * 0.1 - 0.5 > 0.
    cell = jnp.ceil((ab - AB_GRID_STEP / 2) / AB_GRID_STEP).astype(jnp.int32) + _GRID_HALF
    inside = jnp.all((cell >= 0) & (cell <= 2 * _GRID_HALF), axis=-1)
    cell = jnp.clip(cell, 0, 2 * _GRID_HALF)
    on_grid = jnp.where(inside, jnp.asarray(_grid_point_bins())[cell[..., 0], cell[..., 1]], -1)

    def search_off_grid(on_grid):
        exact = jnp.argmin(_squared_distances_to_bins(ab), axis=-1).astype(jnp.int32)
        return jnp.where(on_grid >= 0, on_grid, exact)

    return jax.lax.cond(jnp.all(on_grid >= 0), lambda x: x, search_off_grid, on_grid)


# Jitted (with the knobs static) so eager callers get one fused kernel; inside a jitted step it simply inlines.
@functools.partial(jax.jit, static_argnames=("k", "sigma"))
def soft_encode_sparse(ab: jax.Array, k: int = 5, sigma: float = 5.0) -> tuple[jax.Array, jax.Array]:
    """Soft-encoding as K (bin index, weight) pairs: (..., 2) -> int32 (..., k), float32 (..., k).

    The K nearest bin centres, nearest first, with Gaussian weights exp(-d^2 / (2 sigma^2)) normalised to sum 1.
    This is what the loss uses: the cross-entropy then gathers K log-probabilities per pixel instead of reading a
    dense (..., 313) target, ~2.5x faster to build and to differentiate on CPU (`python -m colorjax.bench zhang`).
    """
    if not 1 <= k <= AB_NUM_BINS:
        raise ValueError(f"soft_encode: k must be in 1..{AB_NUM_BINS}, got {k}.")
    if sigma <= 0:
        raise ValueError(f"soft_encode: sigma must be positive, got {sigma}.")
    indices, squared = _nearest_bins(ab, k)
    # Measured from the nearest bin so a far out-of-gamut pixel (d ~ 70) does not underflow every weight to 0.
    weights = jnp.exp(-(squared - squared[..., :1]) / (2.0 * sigma**2))
    weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
    return indices, weights


@functools.partial(jax.jit, static_argnames=("k", "sigma"))
def soft_encode(ab: jax.Array, k: int = 5, sigma: float = 5.0) -> jax.Array:
    """Soft-encoded target distribution over the 313 bins: (..., 2) ab -> float32 (..., 313), rows summing to 1.

    K nearest bin centres (K = 5 in the paper, 10 in the authors' training code), Gaussian weights with
    sigma = 5 ab units, normalised. Pure JAX: runs inside a jitted step with no host round trip.
    """
    indices, weights = soft_encode_sparse(ab, k, sigma)
    one_hot = jax.nn.one_hot(indices, AB_NUM_BINS, dtype=weights.dtype)
    return jnp.einsum("...k,...kq->...q", weights, one_hot)


# Zhang et al.'s mixing weight of the uniform distribution in the rebalancing weights (their lambda = 0.5).
REBALANCE_LAMBDA = 0.5


def rebalance_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """Class-rebalancing weight of each bin: w = ((1 - lam) p + lam / Q)^-1, scaled so that sum_q p_q w_q = 1.

    As in the authors' code, the uniform part covers only the Q bins with p > 0. A bin with p = 0 (never seen in the
    data the prior came from) gets ((lam / Q))^-1 scaled alike, the largest weight, rather than the authors' infinity.
    With the shipped ImageNet prior and lam = 0.5 the weights span about 0.0965 to 6.175.
    """
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != (AB_NUM_BINS,):
        raise ValueError(f"rebalance_weights: prior must have shape ({AB_NUM_BINS},), got {prior.shape}.")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"rebalance_weights: lam must be in [0, 1], got {lam}.")
    prior = prior / prior.sum()
    num_seen = np.count_nonzero(prior > 0)
    weights = 1.0 / ((1.0 - lam) * prior + lam / num_seen)
    return weights / np.sum(prior * weights)


@functools.partial(jax.jit, static_argnames=("temperature",))
def annealed_mean(logits: jax.Array, temperature: float = ANNEALED_MEAN_TEMPERATURE) -> jax.Array:
    """Annealed-mean decoding: (..., 313) logits -> (..., 2) ab.

    f_T(z) = softmax(log z / T) with z = softmax(logits), then the expectation of the bin centres under f_T.
    Since log softmax(logits) = logits - logsumexp(logits), f_T is exactly softmax(logits / T), which is how it is
    computed here (stable for any logits, no log of a zero probability). T = 1 is the mean, T -> 0 the mode.
    """
    if temperature <= 0:
        raise ValueError(f"annealed_mean: temperature must be positive, got {temperature}.")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)  # float32 from bfloat16; float64 stays
    probabilities = jax.nn.softmax(logits.astype(dtype) / temperature, axis=-1)
    return probabilities @ jnp.asarray(ab_bin_centres(), dtype)


@jax.jit
def bin_counts(ab: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """How many ab values fall nearest to each bin: (..., 2) -> int32 (313,). Accumulate these into a prior.

    `where` (bool, broadcastable to `ab.shape[:-1]`, e.g. (N, 1, 1) per image) counts only the values it marks, so
    a padded batch or an image to be skipped needs no reshaping (and no recompilation).
    """
    bins = nearest_bin(ab)
    weights = None if where is None else jnp.broadcast_to(where, bins.shape).reshape(-1).astype(jnp.int32)
    counts = jnp.bincount(bins.reshape(-1), weights=weights, length=AB_NUM_BINS)
    return counts.astype(jnp.int32)


def smoothed_prior(bin_counts: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Empirical prior from a histogram over the 313 bins, the way the authors made theirs: float64 (313,).

    The normalised histogram is smoothed with a Gaussian of `sigma` ab units over the ab plane (the bins sit on its
    10-unit grid; mass smoothed onto out-of-gamut grid cells is dropped) and renormalised over the 313 bins.
    `sigma=0` returns the plain normalised histogram.
    """
    counts = np.asarray(bin_counts, dtype=np.float64)
    if counts.shape != (AB_NUM_BINS,):
        raise ValueError(f"smoothed_prior: bin_counts must have shape ({AB_NUM_BINS},), got {counts.shape}.")
    if np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("smoothed_prior: bin_counts must be non-negative with a positive sum (no pixels counted).")
    if sigma < 0:
        raise ValueError(f"smoothed_prior: sigma must be non-negative, got {sigma}.")
    histogram = counts / counts.sum()
    if sigma > 0:
        centres = ab_bin_centres().astype(np.float64)
        squared = np.sum(np.square(centres[:, None, :] - centres[None, :, :]), axis=-1)
        histogram = np.exp(-squared / (2.0 * sigma**2)) @ histogram
    return histogram / histogram.sum()
