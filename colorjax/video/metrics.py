"""Scores video colorization on a colour clip: per-frame quality against the clip's own colours, and stability.

`evaluate_clip` decodes the clip once (frame by frame), colours each frame with every contender (e.g. stabilised
and per-frame, `colorjax.video.FrameColorizer`) from its lightness, and accumulates

- per-frame quality exactly as for photos (`colorjax.evaluation.metrics`: AuC, PSNR, ab error, ... of each output frame
  against the clip's frame), averaged over the frames;
- Lai et al. 2018's warp error (`colorjax.video.temporal.WarpErrorMeter`) of every contender and of the clip itself
  (the floor: real motion, interpolation and occlusions leave some error even in the true colours), measured twice:
  with Farneback flow (`warp_error_farneback`, the headline: independent of the DIS flow the filter follows) and
  with DIS (`warp_error_dis`, the filter's own flow algorithm, which partly rewards the filter), side by side;
  the pairs across a shot cut are skipped, cuts found by the meter's own fixed settings (`meter_shots`), not the
  filter's.

`python -m colorjax.evaluate --video CLIP ...` and `python -m colorjax.bench video` both use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import files
from colorjax.evaluation import metrics
from colorjax.inference.colorizer import Colorizer
from colorjax.video.io import FrameColorizer, VideoReader
from colorjax.video.temporal import ShotTracker, TemporalSettings, WarpErrorMeter, lightness_u8

# The per-frame numbers reported for each contender (as `metrics.finalize` names them).
FRAME_METRICS = (
    "auc_percent",
    "auc_rebalanced_percent",
    "psnr_rgb_db",
    "psnr_ab_db",
    "ab_l2_error",
    "colourfulness",
)
TRUTH = "ground truth"
# The warp-error meters, each a flow algorithm (`WarpErrorMeter`'s `flow`), reported as warp_error_<flow>.
WARP_METERS = ("farneback", "dis")
# The meter's own shot finder (the pairs across a cut are not scored): fixed here, apart from the filter's
# `TemporalSettings` defaults, so that tuning the filter cannot change the meter that scores it. These are the
# fields `ShotTracker` reads to find cuts, at the values the filter had when the meter was set (issue 22); the
# lightness tolerance decides the share of a frame the motion does not explain, the motion cue for a cut. The
# occlusion test changes only the trusted pixels, not the cuts: off, it costs no second flow.
METER_SHOT_SETTINGS = {
    "lightness_tolerance": 20.0,
    "flow_preset": "medium",
    "work_max_side": 320,
    "cut_min_distance": 0.2,
    "cut_ratio": 4.0,
    "occlusion_test": False,
}


def meter_shots() -> ShotTracker:
    """A fresh shot finder for the meter, with `METER_SHOT_SETTINGS` whatever the filter's defaults are."""
    return ShotTracker(TemporalSettings(**METER_SHOT_SETTINGS))


@jax.jit
def _frame_statistics(output: jax.Array, truth: jax.Array) -> dict[str, jax.Array]:
    """`metrics.image_statistics` of one uint8 output frame against the uint8 true frame."""
    pred = metrics.views_from_rgb(output[None].astype(jnp.float32) / 255.0)
    true = metrics.views_from_rgb(truth[None].astype(jnp.float32) / 255.0)
    return metrics.reduce_statistics(metrics.image_statistics(pred, true), jnp.ones((1,), bool))


def evaluate_clip(
    colorizer: Colorizer,
    path: str | Path,
    contenders: dict[str, TemporalSettings],
    *,
    frames_dir: str | Path | None = None,
    max_frames: int | None = None,
    progress: bool = False,
    references: dict[str, Callable[[int, np.ndarray], np.ndarray]] | None = None,
) -> dict[str, dict[str, float]]:
    """{contender: {per-frame metric means, "warp_error_farneback", "warp_error_dis", "frames", "frames_per_s",
    "cpu_ms_per_frame"}} and {TRUTH: {the same warp errors, "frame_pairs"}} for the clip at `path`.

    `references` are other colourings scored beside the contenders, untimed: {name: f(frame index, decoded uint8
    RGB frame) -> uint8 RGB}, e.g. the bench's perfectly consistent colouring of a clip with known motion (its
    bound); each gets the per-frame metrics and warp errors, no speed.

    The speed is that of colouring a decoded frame (model, and the stabilisation's flow and filter), decoding and
    scoring left out: wall time, and the process's CPU time (all threads) per frame, over every frame but the first
    (which compiles). Contenders take turns on every frame, so a load spike on a shared machine hits each alike.

    `frames_dir` keeps each contender's frames as PNGs (`frames_dir/<contender>/000000.png`); `progress` shows a
    bar (frames/s, ETA) on stderr.
    """
    import sys

    from tqdm import tqdm

    references = references or {}
    steps = {name: FrameColorizer(colorizer, settings) for name, settings in contenders.items()}
    accumulators = {name: metrics.MetricsAccumulator() for name in [*contenders, *references]}
    meters = {flow: WarpErrorMeter([*contenders, *references, TRUTH], flow=flow) for flow in WARP_METERS}
    shots = meter_shots()
    seconds, cpu_seconds = dict.fromkeys(contenders, 0.0), dict.fromkeys(contenders, 0.0)
    with VideoReader(path) as reader:
        total = reader.info.num_frames
        if max_frames is not None:
            total = max_frames if total is None else min(total, max_frames)
        bar = tqdm(total=total, unit="frame", desc=Path(path).name, disable=not progress, file=sys.stderr)
        for frame in reader.frames():
            if max_frames is not None and frame.index >= max_frames:
                break
            bar.update()
            outputs = {}
            for name, step in steps.items():
                wall, cpu = time.perf_counter(), time.process_time()
                outputs[name] = step(frame.rgb).rgb
                if frame.index > 0:  # the first frame compiles the model for the clip's size
                    seconds[name] += time.perf_counter() - wall
                    cpu_seconds[name] += time.process_time() - cpu
            for name, colouring in references.items():
                outputs[name] = colouring(frame.index, frame.rgb)
            for name, rgb in outputs.items():
                accumulators[name].add(_frame_statistics(rgb, frame.rgb))
                if frames_dir is not None:
                    slug = name.replace(" ", "_")
                    files.save_png(rgb, Path(frames_dir) / slug / f"{frame.index:06d}.png")
            L = lightness_u8(frame.rgb)
            _, cut = shots(L)
            for meter in meters.values():
                meter.add(L, {**outputs, TRUTH: frame.rgb}, cut=cut)
        bar.close()
    warp = {flow: meter.result() for flow, meter in meters.items()}
    results = {}
    for name, accumulator in accumulators.items():
        numbers = metrics.finalize(accumulator)
        results[name] = {k: numbers[k] for k in FRAME_METRICS}
        results[name]["frames"] = numbers["images"]
        if name in contenders:
            timed = max(numbers["images"] - 1, 1)
            results[name]["frames_per_s"] = timed / max(seconds[name], 1e-9)
            results[name]["cpu_ms_per_frame"] = 1000 * cpu_seconds[name] / timed
        results[name].update({f"warp_error_{flow}": warp[flow][name] for flow in WARP_METERS})
    results[TRUTH] = {f"warp_error_{flow}": warp[flow][TRUTH] for flow in WARP_METERS}
    results[TRUTH]["frame_pairs"] = meters[WARP_METERS[0]].pairs
    return results


def contenders(temporal: str) -> dict[str, TemporalSettings]:
    """The contenders of an evaluation: `temporal` "on" scores stabilised and per-frame side by side."""
    if temporal == "off":
        return {"per-frame": TemporalSettings(enabled=False)}
    return {"stabilised": TemporalSettings(), "per-frame": TemporalSettings(enabled=False)}


def markdown_table(clip_results: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per (clip, contender): the per-frame metrics and the warp error by each meter, the truth's beside."""
    warps = [f"warp_error_{flow}" for flow in WARP_METERS]
    header = ["clip", "contender", *FRAME_METRICS, *(f"{w}{side}" for w in warps for side in ("", "_truth"))]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for clip, results in clip_results.items():
        for name, numbers in results.items():
            if name == TRUTH:
                continue
            cells = [clip, name, *(f"{numbers[k]:.4g}" for k in FRAME_METRICS)]
            cells += [f"{value:.4g}" for w in warps for value in (numbers[w], results[TRUTH][w])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_clips(
    colorizer: Colorizer,
    paths: list[Path],
    output: Path,
    temporal: str = "on",
    *,
    max_frames: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, dict], list[str]]:
    """Scores every clip (`evaluate_clip` with `contenders(temporal)`) and writes `output/video_metrics.json`
    and `output/video_results.md`; a clip that cannot be read is reported, not scored. Returns (results by
    clip path, error lines)."""
    from colorjax.video.io import VideoError

    results, errors = {}, []
    for path in paths:
        try:
            results[str(path)] = evaluate_clip(
                colorizer, path, contenders(temporal), max_frames=max_frames, progress=progress
            )
        except VideoError as e:
            errors.append(str(e))
    files.write_json(output / "video_metrics.json", results)
    files.write_text(
        output / "video_results.md",
        f"Video colorization by {colorizer.description}: per-frame metrics against each clip's own "
        "colours (means over frames) and Lai et al. 2018's warp error (lower is steadier; the ground "
        "truth's is the floor) measured with Farneback flow (independent of the DIS flow the filter follows) "
        "and with DIS.\n\n" + markdown_table(results) + "\n",
    )
    return results, errors
