"""Temporal stability for video colorization: shot cuts, optical flow, flow-guided chroma filtering, warp error.

A per-frame colorizer flickers: the same wall can turn from blue to orange between two frames. This module makes
any per-frame model stable in the spirit of blind temporal consistency (Bonneel et al. 2015, "Blind Video Temporal
Consistency"; Lai et al. 2018, "Learning Blind Video Temporal Consistency"), without training anything:

- `ShotDetector`: a cut is a jump in the lightness histogram far above the shot's recent frame-to-frame changes.
  A cut resets all temporal state, so no colour bleeds from one shot into the next.
- `TemporalFilter`: the previous OUTPUT chroma is warped to the current frame with optical flow computed on the
  lightness (OpenCV's DIS), and blended with the current prediction where the flow is trustworthy (landing inside
  the frame, and the warped lightness matching the current one: occluded and disoccluded pixels fail that test);
  elsewhere (disocclusions, new content) the current prediction is kept. Lai et al.'s forward-backward and
  motion-boundary test (`occlusion_test`) is off by default: on handheld footage it distrusted one in seven of the
  pixels whose lightness matched, which then kept their flicker (docs/video.md, issue 22). The output's lightness
  is always the input's.
- `warp_error` / `WarpErrorMeter`: the temporal-stability metric of Lai et al. 2018 (E_warp), computed as their
  `evaluate_WarpError.py` does; `non_occluded` is their `detect_occlusion` test, verbatim. The meter's flow is
  Farneback's (`FarnebackFlow`) by default, not the DIS flow the filter follows, so that the meter does not
  reward the filter for agreeing with its own flow; DIS is the second meter, reported beside it.

The knobs, their defaults and the references are in docs/video.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque

import numpy as np


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - the [video] extra is missing
        raise ImportError(
            "Video needs OpenCV for optical flow: pip install 'colorjax[video]' (opencv-python-headless)."
        ) from e
    return cv2


def lightness_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 lightness (H, W), CIE L scaled to 0..255 (OpenCV's 8-bit Lab): what the shot
    detector and the optical flow look at. Only the recombination uses the exact float L (`colorjax.color`)."""
    return _cv2().cvtColor(np.ascontiguousarray(rgb), _cv2().COLOR_RGB2Lab)[..., 0]


# ---------------------------------------------------------------------------------------------------------------
# Shot cuts.
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ShotDetector:
    """Cuts from two cues, each judged against the shot's own recent frames (an adaptive threshold: a fast pan
    changes more between frames than a still shot does):

    - the lightness histogram: the total-variation distance d between the 32-bin histograms of t-1 and t;
    - motion (when the caller has it): the share u of frame t that the flow from t-1 does not explain (warped
      lightness off by more than the filter's tolerance).

    Frame t starts a new shot when d >= `min_distance` and either d >= `ratio` x the mean d of the shot's last
    `window` frames, or u >= `min_unexplained` and u >= `ratio` x their mean u. The second cue catches cuts between
    scenes of similar brightness, whose histograms barely move.
    """

    min_distance: float = 0.2
    ratio: float = 4.0
    min_unexplained: float = 0.25
    window: int = 8
    bins: int = 32

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._previous: np.ndarray | None = None
        self._distances: deque[float] = deque(maxlen=self.window)
        self._unexplained: deque[float] = deque(maxlen=self.window)

    def histogram(self, L: np.ndarray) -> np.ndarray:
        counts = np.bincount((L.ravel().astype(np.int32) * self.bins) >> 8, minlength=self.bins)
        return counts / max(L.size, 1)

    def __call__(self, L: np.ndarray, unexplained: float | None = None) -> tuple[bool, float]:
        """Feeds the next frame's uint8 lightness (and the share of it the flow does not explain, if known);
        returns (starts a new shot, histogram distance to the last frame)."""
        hist = self.histogram(L)
        previous, self._previous = self._previous, hist
        if previous is None:
            return True, 0.0
        distance = 0.5 * float(np.abs(hist - previous).sum())
        jump = distance >= self.ratio * _mean(self._distances)
        if unexplained is not None and self._unexplained:
            jump = jump or (
                unexplained >= self.min_unexplained and unexplained >= self.ratio * _mean(self._unexplained)
            )
        cut = distance >= self.min_distance and jump
        if cut:
            self._distances.clear()
            self._unexplained.clear()
        else:
            self._distances.append(distance)
            if unexplained is not None:
                self._unexplained.append(unexplained)
        return cut, distance


def _mean(values) -> float:
    return float(np.mean(values)) if values else 0.0


# ---------------------------------------------------------------------------------------------------------------
# Optical flow, warping and Lai et al.'s occlusion test.
# ---------------------------------------------------------------------------------------------------------------

FLOW_PRESETS = ("ultrafast", "fast", "medium")


class OpticalFlow:
    """Dense flow between two uint8 gray frames of the same size with OpenCV's DIS (Kroeger et al. 2016).

    `flow(a, b)[y, x]` is the displacement (dx, dy) of pixel (x, y) of `a` into `b`: b(x + f(x)) ~ a(x).
    """

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        if preset not in FLOW_PRESETS:
            raise ValueError(f"Flow preset must be one of {FLOW_PRESETS}; got {preset!r}.")
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._dis.calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)


class FarnebackFlow:
    """Dense flow with OpenCV's Farneback (polynomial expansion, Farneback 2003): an algorithm that shares nothing
    with DIS, for the warp-error meter (`WarpErrorMeter`), so a filter that follows DIS flow is not scored by the
    same flow. Parameters: OpenCV's tutorial ones (pyramid scale 0.5, window 15, 3 iterations, poly_n 5, sigma
    1.2) with 5 levels, so motions of tens of pixels are found, and a Gaussian window (OpenCV: slower, more
    accurate), which halved the warp error of a 48-frame pan's own colours (0.00030 -> 0.00015; DIS: 0.00029).
    Like every flow it misses some fast motion: read a warp error against the clip's own (its floor). Same
    convention as `OpticalFlow`."""

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        return cv2.calcOpticalFlowFarneback(
            np.ascontiguousarray(a),
            np.ascontiguousarray(b),
            None,
            0.5,
            5,
            15,
            3,
            5,
            1.2,
            cv2.OPTFLOW_FARNEBACK_GAUSSIAN,
        )


METER_FLOWS = ("farneback", "dis")


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) float32 coordinates of every pixel, shared by the warps of a video's frames."""
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    return grid_x, grid_y


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, coordinates clamped to the border (flownet2's
    Resample2d, which Lai et al. warp with). `image` is (H, W) or (H, W, C) float32."""
    cv2 = _cv2()
    grid_x, grid_y = _pixel_grid(*flow.shape[:2])
    warped = cv2.remap(
        np.ascontiguousarray(image, np.float32),
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return warped.reshape(image.shape)


def _squared_norm(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2


def non_occluded(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """bool (H, W) on frame a's grid: where `flow_ab` can be trusted, as Lai et al.'s `detect_occlusion` decides.

    Occluded = forward-backward inconsistent, |f_ab + f_ba(x + f_ab)|^2 > 0.01 (|f_ba(x + f_ab)|^2 + |f_ab|^2)
    + 0.5, or on a motion boundary, |grad f_ab|^2 > 0.01 |f_ab|^2 + 0.002 (one-sided differences as theirs).
    (Their `compute_flow_occlusion.py` calls `detect_occlusion(bw_flow, fw_flow)`, so the flow tested is the one
    leaving frame a, and the mask lives on a's grid; so here.)
    """
    back = warp(flow_ba, flow_ab)
    inconsistent = _squared_norm(flow_ab + back) > 0.01 * (_squared_norm(back) + _squared_norm(flow_ab)) + 0.5
    gradients = np.zeros(flow_ab.shape[:2] + (4,), np.float32)
    gradients[:, :-1, 0:2] = flow_ab[:, :-1] - flow_ab[:, 1:]
    gradients[:-1, :, 2:4] = flow_ab[:-1, :] - flow_ab[1:, :]
    boundary = (gradients**2).sum(-1) > 0.01 * _squared_norm(flow_ab) + 0.002
    return ~(inconsistent | boundary)


def lands_inside(flow: np.ndarray) -> np.ndarray:
    """bool (H, W): x + flow(x) falls inside the frame (outside, a warp only repeats the border)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = _pixel_grid(height, width)
    x = grid_x + flow[..., 0]
    y = grid_y + flow[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


# ---------------------------------------------------------------------------------------------------------------
# The flow-guided chroma filter.
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TemporalSettings:
    """The knobs of video stabilisation (docs/video.md). `enabled=False` colours every frame as a photo."""

    enabled: bool = True
    weight: float = 0.75  # Share of the warped previous output where the flow is trusted (with keep_saturation: hue).
    lightness_tolerance: float = 20.0  # Most |L_t - warped L_t-1| (0..255 scale) where the flow is trusted.
    flow_preset: str = "medium"  # OpenCV DIS preset: ultrafast, fast, medium.
    work_max_side: int = 320  # Flow and filter run at most this many pixels on the longer side.
    cut_min_distance: float = 0.2  # ShotDetector.min_distance
    cut_ratio: float = 4.0  # ShotDetector.ratio
    global_features: str = "mean"  # Models with a global path: "mean" over the shot so far, "first", "frame".
    keep_saturation: bool = (
        True  # Blend chroma magnitudes apart from directions (TemporalFilter), so blending keeps colour.
    )
    saturation_weight: float = 0.65  # With keep_saturation: the carried share of the magnitude (saturation).
    occlusion_test: bool = False  # Trust also needs Lai et al.'s forward-backward and motion-boundary test.

    def __post_init__(self):
        for name in ("weight", "saturation_weight"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"Temporal {name} must be in [0, 1); got {getattr(self, name)}.")
        if self.global_features not in ("mean", "first", "frame"):
            raise ValueError(f"global_features must be 'mean', 'first' or 'frame'; got {self.global_features!r}.")


@dataclasses.dataclass
class FilterInfo:
    """What the filter did with one frame."""

    cut: bool  # The frame starts a new shot (nothing was blended).
    blended_fraction: float  # Share of pixels that took the warped previous output.


@dataclasses.dataclass
class Motion:
    """How frame t relates to frame t-1."""

    to_previous: np.ndarray  # flow (H, W, 2) from t's pixels into t-1
    trusted: np.ndarray  # bool (H, W): inside t-1, lightness matches (and, with occlusion_test, Lai et al.'s test)
    unexplained: float  # share of t's pixels whose warped lightness is off by more than the tolerance


def _with_blended_magnitude(
    blended: np.ndarray, carried: np.ndarray, predicted: np.ndarray, mix: np.ndarray
) -> np.ndarray:
    """`blended` (the mix of two chroma fields) rescaled so that its magnitude, the saturation, is the `mix` blend
    of the two fields' magnitudes (the filter's `saturation_weight`, lower than the hue's `weight`). A plain
    average of two chroma vectors is shorter than either when their hues differ (blue and orange average to gray),
    so a filter that blends a flickering prediction over many frames washes the colours out; blending the direction
    and the magnitude apart keeps them. Where the blend is near zero (opposite hues cancel) the direction is
    unknown, and the gain is capped so noise is not amplified."""
    magnitude = mix * np.linalg.norm(carried, axis=-1, keepdims=True)
    magnitude += (1.0 - mix) * np.linalg.norm(predicted, axis=-1, keepdims=True)
    length = np.linalg.norm(blended, axis=-1, keepdims=True)
    gain = np.minimum(magnitude / np.maximum(length, 1e-3), _MAX_SATURATION_GAIN)
    return (blended * gain).astype(np.float32)


_MAX_SATURATION_GAIN = 4.0


def work_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The (height, width) motion and filtering run at: at most `max_side` on the longer side."""
    scale = min(1.0, max_side / max(height, width))
    return max(8, round(height * scale)), max(8, round(width * scale))


class ShotTracker:
    """Follows a video frame to frame: the motion from the last frame (flow on the lightness, and where it can be
    trusted) and whether this frame starts a new shot (`ShotDetector`, fed with the motion's unexplained share).

    Motion is found at most `settings.work_max_side` pixels on the longer side: chroma is smooth (models predict it
    at their working resolution and upsample it), so following it needs no finer flow, and 720p stays cheap.
    """

    def __init__(self, settings: TemporalSettings):
        self.settings = settings
        self.flow = OpticalFlow(settings.flow_preset)
        self.detector = ShotDetector(settings.cut_min_distance, settings.cut_ratio)
        self._previous_L: np.ndarray | None = None

    def __call__(self, L: np.ndarray) -> tuple[Motion | None, bool]:
        """uint8 lightness (H, W) of the next frame -> (motion from the last frame, None at a cut; cut)."""
        cv2 = _cv2()
        size = work_size(*L.shape, self.settings.work_max_side)
        if size != L.shape:
            L = cv2.resize(L, size[::-1], interpolation=cv2.INTER_AREA)
        previous_L, self._previous_L = self._previous_L, L
        motion = None
        if previous_L is not None and previous_L.shape == L.shape:
            to_previous = self.flow(L, previous_L)
            warped_L = warp(previous_L.astype(np.float32), to_previous)
            matches = np.abs(warped_L - L) <= self.settings.lightness_tolerance
            trusted = lands_inside(to_previous) & matches
            if self.settings.occlusion_test:
                trusted &= non_occluded(to_previous, self.flow(previous_L, L))
            motion = Motion(to_previous, trusted, 1.0 - float(matches.mean()))
        cut, _ = self.detector(L, None if motion is None else motion.unexplained)
        return (None if cut else motion), cut


class TemporalFilter:
    """Causal flow-guided filtering of the chroma: out_t = w M warp(out_t-1) + (1 - w M) pred_t, with M the mask
    of pixels where the flow from t back to t-1 is trusted (`Motion.trusted`). `reset()` at every cut.

    With `keep_saturation` that blend gives the hue (the chroma's direction), and its length is the blend of the two
    lengths with a lower share carried, `saturation_weight`: the hue is held more firmly than the saturation, which
    follows the prediction sooner. Measured on the bench's seven clips (docs/video.md, issue 22): a higher hue
    weight lowers the warp error, and a lower saturation weight keeps colourfulness; 0.75 and 0.65 were steadier on
    every clip than one weight of 0.65, with every clip's colourfulness still within 5% of per-frame.

    The filter runs at the motion's size; the full-size output is the full-size prediction plus the upsampled
    change the filter made (so where nothing is blended, the prediction is kept exactly).
    """

    def __init__(self, settings: TemporalSettings):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._previous_chroma: np.ndarray | None = None

    def __call__(self, chroma: np.ndarray, motion: Motion | None) -> tuple[np.ndarray, float]:
        """Predicted float32 chroma (H, W, 2) and the motion from the last frame (None at a shot's first frame)
        -> (filtered chroma (H, W, 2), blended fraction)."""
        cv2 = _cv2()
        height, width = chroma.shape[:2]
        small_h, small_w = work_size(height, width, self.settings.work_max_side)
        small = chroma
        if (small_h, small_w) != (height, width):
            small = cv2.resize(chroma, (small_w, small_h), interpolation=cv2.INTER_AREA)
        if motion is None or self._previous_chroma is None:
            self._previous_chroma = np.asarray(small, np.float32)
            return chroma, 0.0
        trusted = motion.trusted.astype(np.float32)[..., None]
        mix = self.settings.weight * trusted
        carried = warp(self._previous_chroma, motion.to_previous)
        filtered = mix * carried + (1.0 - mix) * small
        if self.settings.keep_saturation:
            filtered = _with_blended_magnitude(filtered, carried, small, self.settings.saturation_weight * trusted)
        self._previous_chroma = np.asarray(filtered, np.float32)
        change = filtered - small
        if (small_h, small_w) != (height, width):
            change = cv2.resize(change, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.asarray(chroma + change, np.float32), float(motion.trusted.mean())


# ---------------------------------------------------------------------------------------------------------------
# Lai et al. 2018's warp error.
# ---------------------------------------------------------------------------------------------------------------


def warp_error(previous: np.ndarray, current: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
    """E_warp of one pair (Lai et al. 2018, eq. 9, as `evaluate_WarpError.py`): frame t (`current`) warped to t-1
    by `flow` (t-1 -> t, on t-1's grid), squared difference with frame t-1 (`previous`) summed over the pixels and
    channels where `mask` (non-occluded) holds, divided by their count (every pixel when none is). Frames are uint8
    RGB, compared in [0, 1]."""
    previous = np.asarray(previous, np.float32) / 255.0
    warped = warp(np.asarray(current, np.float32) / 255.0, flow)
    channels = previous.shape[-1] if previous.ndim == 3 else 1
    squared = np.square(warped - previous).reshape(*mask.shape, channels)
    count = float(mask.sum()) * channels
    if count == 0:
        count = float(squared.size)
    return float((squared * mask[..., None]).sum() / count)


class WarpErrorMeter:
    """Streaming mean warp error of one or more videos of the same scene (e.g. output, per-frame output, truth).

    The flow and occlusion mask come from the INPUT (gray) frames, as Lai et al. compute them once on the input and
    score every method's output with them, at full resolution. Their FlowNet2 needs CUDA layers and weights that are
    not part of this package; `flow` is "farneback" (default: independent of the DIS flow the filter follows) or
    "dis" (the filter's own algorithm, at `flow_preset`: it partly rewards the filter for agreeing with it). Pairs
    that straddle a shot cut are skipped: across a cut there is no motion to follow.
    """

    def __init__(self, names: list[str], flow: str = "farneback", flow_preset: str = "medium"):
        if flow not in METER_FLOWS:
            raise ValueError(f"Warp-error flow must be one of {METER_FLOWS}; got {flow!r}.")
        self.names = list(names)
        self.flow = FarnebackFlow() if flow == "farneback" else OpticalFlow(flow_preset)
        self._previous: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self.sums = dict.fromkeys(self.names, 0.0)
        self.pairs = 0

    def add(self, L: np.ndarray, frames: dict[str, np.ndarray], *, cut: bool = False) -> None:
        """The next frame: its uint8 input lightness (H, W) and each named video's uint8 RGB frame."""
        previous, self._previous = self._previous, (L, frames)
        if previous is None or cut:
            return
        previous_L, previous_frames = previous
        forward = self.flow(previous_L, L)
        backward = self.flow(L, previous_L)
        mask = non_occluded(forward, backward)
        for name in self.names:
            self.sums[name] += warp_error(previous_frames[name], frames[name], forward, mask)
        self.pairs += 1

    def result(self) -> dict[str, float]:
        return {name: self.sums[name] / max(self.pairs, 1) for name in self.names}
