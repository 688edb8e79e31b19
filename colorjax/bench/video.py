"""Video colorization: speed at 480p and 720p, and temporal stability vs per-frame quality on clips with known motion.

    python -m colorjax.bench video [--quick]

Speed (side by side in one run, frames decoded from and encoded to real H.264 files): frames/s of the whole
pipeline (decode, colour, filter, encode) with stabilisation and per-frame. Weights do not change speed; the model
is the trained demo run when COLORJAX_BENCH_VIDEO_RUN (default /tmp/demo_run) holds one, else the demo config's
model with random weights.

Quality (needs a trained run, COLORJAX_BENCH_VIDEO_RUN): clips made from real scene photos (the team's scene photos
when present, else the wheel-shipped samples) with known motion — a pan, a zoom, a cut to a second photo and an
object moving over a background — coloured with and without stabilisation. Per clip: Lai et al.'s warp error of
the output (stabilised, per-frame) and of the clip's own colours (its floor) by two meters (Farneback flow, which
the filter does not use, and DIS, which it does), the mean per-frame PSNR and AuC of each output against the clip's
own colours, and their colourfulness (Hasler-Suesstrunk; `colourfulness_kept` = stabilised / per-frame). Goals:
warp error at least 30% lower, PSNR at most 0.5 dB lower.

The clip makers here (`pan_frames`, `zoom_frames`, `moving_object_frames`, `write_clip`) also build the test clips.
"""

from __future__ import annotations

import fractions
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

DEFAULT_RUN = "/tmp/demo_run"


# ---------------------------------------------------------------------------------------------------------------
# Clips with known motion, from photos.
# ---------------------------------------------------------------------------------------------------------------


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _view(photo: np.ndarray, width: int, height: int, x: float, y: float, w: float) -> np.ndarray:
    """The window of `photo` with top-left (x, y) and width w (height from the frame's aspect ratio), resampled
    to width x height at sub-pixel precision: the motion between two views is exactly the change of window."""
    import cv2

    scale = w / width
    matrix = np.array([[scale, 0.0, x], [0.0, scale, y]], np.float64)
    return cv2.warpAffine(
        photo,
        matrix,
        (width, height),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def pan_frames(
    photo: np.ndarray, width: int, height: int, count: int, *, crop: float = 0.7, turns: float = 0.5
) -> Iterator[np.ndarray]:
    """A camera pan: a window `crop` of the photo's width sliding smoothly from its top-left towards its
    bottom-right (there and back with `turns` 1), resampled to width x height."""
    photo_h, photo_w = photo.shape[:2]
    window_w = photo_w * crop
    window_h = min(photo_h, window_w * height / width)
    window_w = window_h * width / height
    for t in range(count):
        phase = 0.5 - 0.5 * np.cos(2 * np.pi * turns * t / max(count - 1, 1))
        yield _view(
            photo,
            width,
            height,
            phase * (photo_w - window_w),
            phase * (photo_h - window_h),
            window_w,
        )


def zoom_frames(photo: np.ndarray, width: int, height: int, count: int, *, zoom: float = 1.6) -> Iterator[np.ndarray]:
    """A smooth zoom into the photo's centre, from the widest window of the frame's aspect ratio to 1/zoom of it."""
    photo_h, photo_w = photo.shape[:2]
    widest = min(photo_w, photo_h * width / height)
    for t in range(count):
        window_w = widest * zoom ** (-t / max(count - 1, 1))
        window_h = window_w * height / width
        yield _view(photo, width, height, (photo_w - window_w) / 2, (photo_h - window_h) / 2, window_w)


def moving_object_frames(
    background: np.ndarray, thing: np.ndarray, width: int, height: int, count: int
) -> Iterator[np.ndarray]:
    """A still background (resized to width x height) with `thing` (a smaller photo, resized to 2/5 of the frame's
    height) moving across it from left to right."""
    frame = _resize(background, width, height)
    side = max(4, height * 2 // 5)
    patch = _resize(thing, side, side)
    for t in range(count):
        x = round(t / max(count - 1, 1) * (width - side))
        y = (height - side) // 2
        out = frame.copy()
        out[y : y + side, x : x + side] = patch
        yield out


def write_clip(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int = 12,
    *,
    audio: bool = False,
    crf: int = 12,
    codec: str = "libx264",
    faststart: bool = False,
) -> Path:
    """Encodes uint8 RGB frames with PyAV (H.264 yuv420p at a low CRF, so the clip keeps its photos' colours), with
    a 440 Hz AAC tone as long as the video when `audio`."""
    import av

    path = Path(path)
    frames = list(frames)  # small clips: the audio track's length is known before anything is muxed
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps))
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "fast"}
        stream.pix_fmt = "yuv420p"
        stream.height, stream.width = frames[0].shape[:2]
        sound = container.add_stream("aac", rate=16000) if audio else None
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
        if sound is not None:
            rate = sound.codec_context.sample_rate
            t = np.arange(rate * len(frames) // fps) / rate
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = 0
            container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return path


def read_clip(path: str | Path) -> list[np.ndarray]:
    """Every frame of a (small) clip, for tests and the quality run."""
    from colorjax.video.io import VideoReader

    with VideoReader(path) as reader:
        return [frame.rgb for frame in reader.frames()]


def scene_photos(count: int) -> list[np.ndarray]:
    """`count` colourful photos: the team's scene photos (one per class) when present, else the sample photos."""
    from PIL import Image

    from colorjax.config_lib import scene_photos_folder
    from colorjax.data.sources import sample_photo_paths

    folder = scene_photos_folder()
    if folder is not None:
        paths = [sorted(d.glob("*.jpg"))[3] for d in sorted((folder / "test").iterdir()) if d.is_dir()]
    else:
        paths = list(sample_photo_paths().values())
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths[:count]]


# ---------------------------------------------------------------------------------------------------------------
# The benchmark.
# ---------------------------------------------------------------------------------------------------------------


def _colorizer():
    """The trained demo run when there is one, else the demo config's model with random weights (for speed)."""
    import jax
    import jax.numpy as jnp

    from colorjax.inference.colorizer import Colorizer, open_colorizer
    from colorjax.models import get_model

    run = Path(os.environ.get("COLORJAX_BENCH_VIDEO_RUN", DEFAULT_RUN))
    if (run / "checkpoints").is_dir() or (run / "config.json").is_file():
        return open_colorizer(workdir=run, step="latest"), True
    model = get_model("eccv16", width=1 / 8, temperature=0.38)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 96, 96, 1)))
    return Colorizer(model, dict(variables), resolution=96, description="random eccv16 1/8"), False


def bench_video(quick: bool) -> list[dict]:
    colorizer, trained = _colorizer()
    rows = _speed_rows(colorizer, quick)
    if trained:
        rows += _quality_rows(colorizer, quick)
    else:
        rows.append(
            {
                "benchmark": "video_quality",
                "contender": f"skipped: no trained run in {DEFAULT_RUN} (COLORJAX_BENCH_VIDEO_RUN)",
            }
        )
    return rows


def _speed_rows(colorizer, quick: bool) -> list[dict]:
    import tempfile

    from colorjax.video.io import colorize_video
    from colorjax.video.temporal import TemporalSettings

    photo = scene_photos(1)[0]
    sizes = [(854, 480)] if quick else [(854, 480), (1280, 720)]
    count = 12 if quick else 36
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            clip = write_clip(
                Path(tmp) / f"in_{height}.mp4",
                pan_frames(photo, width, height, count),
                fps=24,
                audio=True,
            )
            contenders = [
                ("stabilised", TemporalSettings()),
                ("per-frame", TemporalSettings(enabled=False)),
            ]
            # Warm up (compilation for this size) on the first 2 frames' worth, then time whole files in turns.
            for _, settings in contenders:
                colorize_video(
                    colorizer,
                    clip,
                    Path(tmp) / "warm.mp4",
                    settings,
                    progress=False,
                    overwrite=True,
                )
            times: dict[str, list[float]] = {name: [] for name, _ in contenders}
            for _ in range(1 if quick else 2):
                for name, settings in contenders:
                    start = time.perf_counter()
                    colorize_video(
                        colorizer,
                        clip,
                        Path(tmp) / "out.mp4",
                        settings,
                        progress=False,
                        overwrite=True,
                    )
                    times[name].append(time.perf_counter() - start)
            per_frame_fps = count / min(times["per-frame"])
            for name, _ in contenders:
                fps = count / min(times[name])
                rows.append(
                    {
                        "benchmark": f"video_{height}p",
                        "contender": name,
                        "frames_per_s": fps,
                        "vs_per_frame": fps / per_frame_fps,
                        "frames": count,
                        "size": f"{width}x{height}",
                    }
                )
    return rows


def _quality_rows(colorizer, quick: bool) -> list[dict]:
    import tempfile

    from colorjax.video.metrics import contenders, evaluate_clip

    photos = scene_photos(6)
    # 256x192 at 24 fps: the photos' windows upsampled about 2.4x (frames as soft as video frames, not as sharp
    # as downsampled photos); 48 frames move by at most ~4 px per frame.
    width, height, count = 256, 192, 24 if quick else 48
    clips = {
        "pan": pan_frames(photos[0], width, height, count),
        "zoom": zoom_frames(photos[1], width, height, count),
        "cut": [
            *pan_frames(photos[2], width, height, count // 2),
            *pan_frames(photos[3], width, height, count // 2, turns=0.25),
        ],
        "moving object": moving_object_frames(photos[4], photos[5], width, height, count),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in clips.items():
            clip = write_clip(Path(tmp) / f"{name.replace(' ', '_')}.mp4", frames, fps=24)
            results = evaluate_clip(colorizer, clip, contenders("on"))
            rows.append({"benchmark": "video_quality", "contender": name, **_quality_numbers(results)})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("benchmark", "contender")}
    mean.update(_derived(mean), frames=sum(r["frames"] for r in rows))
    rows.append({"benchmark": "video_quality", "contender": "mean of clips", **mean})
    return rows


def _quality_numbers(results: dict) -> dict:
    """One clip's row: the warp error of each output and of the clip's own colours by each meter (Farneback, the
    independent one, and DIS, the filter's own flow), PSNR, AuC and colourfulness of both outputs."""
    from colorjax.video.metrics import TRUTH, WARP_METERS

    stable, plain = results["stabilised"], results["per-frame"]
    row = {"frames": stable["frames"]}
    for flow in WARP_METERS:
        row[f"warp_stabilised_{flow}"] = stable[f"warp_error_{flow}"]
        row[f"warp_per_frame_{flow}"] = plain[f"warp_error_{flow}"]
        row[f"warp_truth_{flow}"] = results[TRUTH][f"warp_error_{flow}"]
    for key, metric in (("psnr", "psnr_rgb_db"), ("auc", "auc_percent"), ("colourfulness", "colourfulness")):
        row[f"{key}_stabilised"], row[f"{key}_per_frame"] = stable[metric], plain[metric]
    return {**row, **_derived(row)}


def _derived(row: dict) -> dict:
    """Reductions and changes from a row's (or the clips' mean) numbers: the warp error's reduction by each meter,
    its reduction above the clip's own floor, the PSNR change and the colourfulness kept (stabilised / per-frame)."""
    from colorjax.video.metrics import WARP_METERS

    derived = {}
    for flow in WARP_METERS:
        stable, plain, floor = (row[f"warp_{k}_{flow}"] for k in ("stabilised", "per_frame", "truth"))
        derived[f"warp_reduction_{flow}"] = 1 - stable / plain
        derived[f"excess_reduction_{flow}"] = 1 - (stable - floor) / (plain - floor)
    derived["psnr_change_db"] = row["psnr_stabilised"] - row["psnr_per_frame"]
    derived["colourfulness_kept"] = row["colourfulness_stabilised"] / row["colourfulness_per_frame"]
    return derived
