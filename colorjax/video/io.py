"""Colours video files frame by frame in bounded memory, with temporal stabilisation (`colorjax.video.temporal`).

Decoding and encoding go through PyAV (FFmpeg in its wheel): `VideoReader.frames()` is a generator that decodes
one frame at a time, so a 10-minute 1080p clip is never held whole; `VideoWriter` encodes H.264 (yuv420p) into an
mp4 with the input's frame timestamps (so frame rate, variable or not, and duration are kept) and copies the audio
track packet by packet (re-encoded to AAC only when mp4 cannot carry its codec). H.264 4:2:0 codes chroma in 2x2
blocks and can crop only in steps of two pixels, so an odd width or height is padded by one repeated column or row;
`--frames` PNGs always have the exact size.

    colorize_video(colorizer, Path("clip.mp4"), Path("out/clip.mp4"))          # stabilised
    colorize_video(colorizer, path, target, TemporalSettings(enabled=False))   # plain per-frame colour

`FrameColorizer` is the per-frame step: shot cut -> (per-shot global features) -> chroma prediction -> flow-guided
filter -> recombination with the frame's own full-resolution lightness. The method and its knobs: docs/video.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from colorjax import files
from colorjax.inference.colorizer import Colorizer, InferenceError
from colorjax.video.temporal import ShotTracker, TemporalFilter, TemporalSettings, lightness_u8

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
)

# Audio codecs the mp4 muxer takes as they are; any other audio track is re-encoded to AAC.
_MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}


class VideoError(InferenceError):
    """A video that cannot be read or written (not a video, empty, truncated, unsupported codec); one line that
    names the file."""


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - the [video] extra is missing
        raise VideoError("Video needs PyAV: pip install 'colorjax[video]'.") from e
    return av


def is_video(path: Path) -> bool:
    """Whether `path` is taken for a video (photos and videos can share one command): by its extension, else,
    for a file whose extension is not a photo's either, by asking FFmpeg (a video stream in a video container)."""
    from colorjax.data import IMAGE_EXTENSIONS

    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix in IMAGE_EXTENSIONS or not path.is_file():
        return False
    try:
        av = _av()
        with av.open(str(path), "r") as container:
            return bool(container.streams.video) and not _still_image_format(container)
    except Exception:  # noqa: BLE001 - anything FFmpeg cannot open is not a video to us
        return False


def _still_image_format(container) -> bool:
    """Whether FFmpeg read the file as a still picture (its image2 demuxer or an image `_pipe` one: a JPEG, a
    PNG, ...), not as a video container."""
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What is kept from the input: size, timing, orientation and whether there is sound."""

    path: Path
    width: int  # as displayed: after `rotation`
    height: int
    frame_rate: fractions.Fraction  # average frames per second
    time_base: fractions.Fraction  # seconds per pts tick of the video stream
    num_frames: int | None  # the container's count, else estimated from the duration; None if unknown
    duration: float | None  # seconds
    codec: str
    audio_codec: str | None  # None: no audio track
    rotation: int = 0  # degrees counter-clockwise (0, 90, 180, 270) the decoded pictures are turned to be shown


@dataclasses.dataclass
class Frame:
    """One decoded frame."""

    rgb: np.ndarray  # uint8 (H, W, 3)
    pts: int  # presentation time in `time_base` ticks
    time_base: fractions.Fraction
    index: int


class VideoReader:
    """Opens a video file; `frames()` decodes it one frame at a time (a generator). Use as a context manager.

    Frames come upright: a display matrix (or an old-style `rotate` tag) that turns the picture by a multiple of
    90 degrees, as phones write for portrait clips, is applied to the pixels, as photos honour EXIF. The stream as
    decoded is trusted over its header: a header that lists more frames than the file holds is not an error, and
    a truncated or damaged file gives the frames it has, with one line in `notes` saying so.
    """

    def __init__(self, path: str | Path):
        av = _av()
        self.path = Path(path)
        self.notes: list[str] = []  # one line per thing the output lost (a truncated input, ...)
        if not self.path.is_file():
            raise VideoError(f"Input {self.path} does not exist.")
        if self.path.stat().st_size == 0:
            raise VideoError(f"Cannot read video {self.path}: the file is empty.")
        try:
            self._container = av.open(str(self.path), "r")
        except (av.FFmpegError, UnicodeDecodeError) as e:
            raise VideoError(
                f"Cannot read video {self.path}: not a video file, or a truncated one ({_reason(e)})."
            ) from e
        try:
            self.info = self._probe()
        except VideoError:
            self._container.close()
            raise

    def _probe(self) -> VideoInfo:
        if _still_image_format(self._container):
            raise VideoError(
                f"Cannot read video {self.path}: it is a still picture ({self._container.format.name}), not a video; "
                "give it its image extension to colour it as a photo."
            )
        if not self._container.streams.video:
            raise VideoError(f"Cannot read video {self.path}: it has no video stream.")
        stream = self._container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg has no decoder for the stream's codec
            raise VideoError(
                f"Cannot read video {self.path}: its video codec is not one this FFmpeg build decodes; convert "
                "it to H.264 first."
            )
        name = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError(f"Cannot read video {self.path}: the video stream has no frame size.")
        rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        time_base = stream.time_base or fractions.Fraction(1, 90000)
        duration = None
        if stream.duration:
            duration = float(stream.duration * time_base)
        elif self._container.duration:
            duration = self._container.duration / 1_000_000  # AV_TIME_BASE
        num_frames = stream.frames or (round(duration * rate) if duration else None)
        audio = self._container.streams.audio
        rotation = self._rotation(stream.metadata)
        if rotation % 180:
            width, height = height, width
        return VideoInfo(
            path=self.path,
            width=width,
            height=height,
            frame_rate=fractions.Fraction(rate),
            time_base=fractions.Fraction(time_base),
            num_frames=num_frames,
            duration=duration,
            codec=name,
            audio_codec=audio[0].codec_context.name if audio else None,
            rotation=rotation,
        )

    def _rotation(self, metadata: dict[str, str]) -> int:
        """The turn (degrees counter-clockwise, a multiple of 90) that shows the pictures upright: the display
        matrix FFmpeg attaches to the first decoded frame (read from a second, short-lived opening of the file, so
        that this one still starts at its first packet), else an old-style `rotate` tag (clockwise degrees)."""
        av = _av()
        degrees = 0.0
        try:
            with av.open(str(self.path), "r") as probe:
                first = next(probe.decode(probe.streams.video[0]))
                degrees = float(first.rotation)
        except (av.FFmpegError, StopIteration, IndexError, ValueError):
            pass
        if not degrees:
            try:
                degrees = -float(metadata.get("rotate", 0))
            except ValueError:
                degrees = 0.0
        return round(degrees / 90) % 4 * 90

    @property
    def audio_stream(self):
        audio = self._container.streams.audio
        return audio[0] if audio else None

    def frames(self, on_audio: Callable[[Any], None] | None = None) -> Iterator[Frame]:
        """Decodes the video frame by frame, upright; audio packets met on the way go to `on_audio` (for remuxing).

        A file that stops making sense after some frames (truncated, damaged packets) gives the frames it has and
        one line in `self.notes`; VideoError (naming the file) when no frame at all can be decoded.
        """
        av = _av()
        video = self._container.streams.video[0]
        streams = [video] + ([self.audio_stream] if on_audio and self.audio_stream else [])
        tick = 1 / (self.info.frame_rate * self.info.time_base)  # pts ticks per frame
        turns = self.info.rotation // 90
        problems: list[str] = []  # FFmpeg's reason for each damaged packet; "stop" marks where reading stopped

        def decoded_batches() -> Iterator[list]:
            packets = self._container.demux(streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    return
                except av.FFmpegError as e:  # the container itself stops making sense: flush what was decoded
                    problems.extend([_reason(e), "stop"])
                    with contextlib.suppress(av.FFmpegError):
                        yield video.decode(None)
                    return
                if packet.stream.type == "audio":
                    if packet.dts is not None:  # the demuxer's flush packet has none
                        on_audio(packet)
                    continue
                try:
                    yield packet.decode()
                except av.FFmpegError as e:  # a damaged or cut-off packet: the decoder goes on with the next
                    problems.append(_reason(e))

        index = 0
        last_pts = None
        for decoded_frames in decoded_batches():
            for decoded in decoded_frames:
                pts = decoded.pts
                if pts is None or (last_pts is not None and pts <= last_pts):
                    pts = round(index * tick) if last_pts is None else last_pts + round(tick)
                last_pts = pts
                rgb = decoded.to_ndarray(format="rgb24")
                if turns:
                    rgb = np.ascontiguousarray(np.rot90(rgb, turns))
                if rgb.shape[:2] != (self.info.height, self.info.width):
                    raise VideoError(
                        f"Cannot colour video {self.path}: its frame size changes at frame {index} "
                        f"({self.info.width}x{self.info.height} -> {rgb.shape[1]}x{rgb.shape[0]}); "
                        "split it where the size changes."
                    )
                yield Frame(rgb, int(pts), self.info.time_base, index)
                index += 1
        reasons = [p for p in problems if p != "stop"]
        if index == 0:
            why = f" ({reasons[0]})" if reasons else ""
            raise VideoError(
                f"Cannot read video {self.path}: no frame could be decoded{why}; the file is truncated or corrupt."
            )
        if reasons:
            where = "reading stopped" if "stop" in problems else f"{len(reasons)} damaged packet(s) were skipped"
            self.notes.append(
                f"{where} ({reasons[0]}) after {index} frame(s): the file is truncated or corrupt; the {index} "
                "frame(s) decoded are kept"
            )
        elif video.frames and index < video.frames and self._index_runs_past_the_end(video):
            self.notes.append(
                f"its data ends after {index} of the {video.frames} frames its index lists: the file is truncated; "
                f"the {index} frame(s) decoded are kept"
            )
        # Else a header that counts more frames than the stream holds (AVI writers do): the stream is right.

    def _index_runs_past_the_end(self, video) -> bool:
        """Whether the container's index (mp4's sample table, AVI's idx1) places packets beyond the file's end."""
        size = self.path.stat().st_size
        try:
            return any(entry.pos + entry.size > size for entry in video.index_entries)
        except (AttributeError, TypeError):  # an older PyAV without index entries
            return False

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(error: Exception) -> str:
    """FFmpeg's own words for an error, without the errno and file name PyAV repeats."""
    return getattr(error, "strerror", None) or str(error).splitlines()[0]


class VideoWriter:
    """H.264 (yuv420p) mp4 writer that keeps the input's timestamps and copies its audio.

    The file is written under a unique temporary name beside `path` (`colorjax.files.StagedPath`, ending in .mp4,
    held so that a later run can sweep it if this one is killed) and renamed when `close()` succeeds; `abort()`
    removes it, so a failed video never leaves a half-written file behind and never replaces an existing one.

    Sound never costs the picture: a track mp4 cannot carry is re-encoded to AAC, and when that (or copying it)
    fails, the video is written without it, or with what could be kept, and `notes` has one line saying so.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        audio_stream=None,
        *,
        crf: int = 18,
        preset: str = "fast",
    ):
        av = _av()
        self.path = Path(path)
        self._staged = files.StagedPath(self.path, suffix=".mp4")
        self.width, self.height = info.width, info.height
        self.padded = (info.width + info.width % 2, info.height + info.height % 2)
        # Frames are stamped in the input's time base, kept here: the mp4 muxer changes the stream's own when it
        # writes the header (1/10 -> 1/10240), and pts read as ticks of that would be ~1000x too early.
        self._time_base = info.time_base
        self._container = None
        self._audio = None
        self._audio_encoder = None
        self._audio_failures: list[str] = []
        self.notes: list[str] = []
        self.frames_written = 0
        try:
            self._staged.hold()
            try:
                self._open(info, crf, preset, audio_stream)
            except (av.FFmpegError, ValueError) as e:
                if audio_stream is None:
                    raise
                self._container.close()  # a header with a sound track that cannot work: start again without it
                self._audio = self._audio_encoder = None
                self._open(info, crf, preset, None)
                codec = audio_stream.codec_context.name
                self.notes.append(f"written without sound: its {codec} audio track cannot go into mp4 ({_reason(e)})")
        except BaseException:
            self.abort()
            raise

    def _open(self, info: VideoInfo, crf: int, preset: str, audio_stream) -> None:
        """Opens the muxer with the video stream (and the sound track) and writes the header, so that a sound
        track the mp4 muxer or the AAC encoder refuses fails here, before any frame is coloured."""
        av = _av()
        self._container = av.open(str(self._staged.temporary), "w", format="mp4")
        video = self._container.add_stream("libx264", rate=info.frame_rate, options={"crf": str(crf), "preset": preset})
        video.width, video.height = self.padded
        video.pix_fmt = "yuv420p"
        video.time_base = info.time_base
        video.codec_context.time_base = info.time_base
        self._video = video
        if audio_stream is not None:
            if audio_stream.codec_context.name in _MP4_AUDIO_CODECS:
                self._audio = self._container.add_stream_from_template(audio_stream)
            else:
                self._audio_encoder = _AudioTranscoder(self._container, audio_stream)
        self._container.start_encoding()

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encodes one uint8 (H, W, 3) frame at `pts` (the input's time base)."""
        av = _av()
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"Frame {rgb.shape} does not match the video's {self.height}x{self.width}.")
        pad_w, pad_h = self.padded[0] - self.width, self.padded[1] - self.height
        if pad_w or pad_h:
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        self._container.mux(self._video.encode(frame))
        self.frames_written += 1

    def mux_audio(self, packet) -> None:
        """Copies one audio packet of the input (or re-encodes it to AAC). Never raises for a bad packet: what
        cannot be kept is left out and counted (one line in `notes` at `close()`)."""
        av = _av()
        try:
            if self._audio_encoder is not None:
                self._audio_encoder.add(packet)
            elif self._audio is not None:
                packet.stream = self._audio
                self._container.mux(packet)
        except (av.FFmpegError, ValueError) as e:
            self._audio_failures.append(_reason(e))

    def close(self) -> None:
        """Flushes the encoder and moves the finished file to `path`."""
        av = _av()
        self._container.mux(self._video.encode())
        if self._audio_encoder is not None:
            try:
                self._audio_encoder.flush()
            except (av.FFmpegError, ValueError) as e:
                self._audio_failures.append(_reason(e))
        if self._audio_failures:
            self.notes.append(
                f"{len(self._audio_failures)} piece(s) of the sound track could not be kept "
                f"({self._audio_failures[0]}) and are missing from the output"
            )
        self._container.close()
        self._staged.commit()

    def abort(self) -> None:
        """Throws the unfinished file away (the output, if one was there before, is left as it was)."""
        try:
            if self._container is not None:
                self._container.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        self._staged.discard()


class _AudioTranscoder:
    """Decodes an audio track mp4 cannot carry (PCM, Vorbis, ...) and re-encodes it to AAC.

    AVI and WAV-style PCM tracks often state only a channel count ("2 channels"), which the AAC encoder refuses:
    such a track is given the usual layout for its count (mono, stereo; more channels are mixed down to stereo),
    and a sample rate AAC does not take is resampled to the nearest one it does."""

    def __init__(self, container, template):
        av = _av()
        self._container = container
        context = template.codec_context
        channels = context.layout.nb_channels if context.layout else 2
        layout = context.layout.name if context.layout else ""
        if not layout or layout.endswith("channels"):  # no named layout
            layout = "mono" if channels == 1 else "stereo"
        rates = av.Codec("aac", "w").audio_rates or [48000]
        rate = context.sample_rate or 48000
        rate = min(rates, key=lambda r: (abs(r - rate), -r))
        self._stream = container.add_stream("aac", rate=rate)
        self._stream.layout = layout
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

    def add(self, packet) -> None:
        for frame in packet.decode():
            frame.pts = None
            for resampled in self._resampler.resample(frame):
                self._container.mux(self._stream.encode(resampled))

    def flush(self) -> None:
        for resampled in self._resampler.resample(None):
            self._container.mux(self._stream.encode(resampled))
        self._container.mux(self._stream.encode())


# ---------------------------------------------------------------------------------------------------------------
# Colouring frames.
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FrameResult:
    rgb: np.ndarray  # uint8 (H, W, 3)
    cut: bool  # the frame starts a shot
    blended_fraction: float  # share of pixels that took the warped previous output


class FrameColorizer:
    """Colours the frames of one video in order, with the state temporal stabilisation needs.

    Per frame: (1) motion and shot cuts from the lightness; a cut resets everything; (2) for models with a global path
    (Iizuka et al.'s `encode_global`), the shot's global features (their running mean, or the first frame's); (3)
    the model's chroma at the frame's full size; (4) the flow-guided filter; (5) recombination with the frame's own
    lightness. With `settings.enabled` False every frame is coloured exactly as the photo colorizer would.
    """

    def __init__(
        self,
        colorizer: Colorizer,
        settings: TemporalSettings | None = None,
        global_features: np.ndarray | None = None,
    ):
        """`global_features` (from another photo's `encode_global`) colour every frame with that photo's."""
        self.colorizer = colorizer
        self.fixed_global_features = global_features
        self.settings = settings or TemporalSettings()
        self.shots = ShotTracker(self.settings)
        self.filter = TemporalFilter(self.settings)
        # The same condition under which `Colorizer.predict` accepts global features.
        self.has_global_path = hasattr(colorizer.model, "encode_global") and colorizer.any_size is not None
        self._global_sum: np.ndarray | None = None
        self._global_count = 0

    def __call__(self, rgb: np.ndarray) -> FrameResult:
        if not self.settings.enabled:
            plain = self.colorizer.predict(rgb, global_features=self.fixed_global_features).rgb
            return FrameResult(plain, cut=False, blended_fraction=0.0)
        motion, cut = self.shots(lightness_u8(rgb))
        if cut:
            self.filter.reset()
            self._global_sum, self._global_count = None, 0
        global_features = self.fixed_global_features
        if global_features is None and self.has_global_path:
            global_features = self._shot_global_features(rgb)
        chroma = self.colorizer.predict_chroma(rgb, global_features=global_features)
        chroma, fraction = self.filter(np.asarray(chroma), motion)
        return FrameResult(self.colorizer.combine(rgb, chroma), cut=cut, blended_fraction=fraction)

    def _shot_global_features(self, rgb: np.ndarray) -> np.ndarray:
        mode = self.settings.global_features
        if mode == "first" and self._global_sum is not None:
            return self._global_sum
        features = self.colorizer.encode_global(rgb)["global_features"]
        if mode == "frame":
            return features
        self._global_sum = features if self._global_sum is None else self._global_sum + features
        self._global_count += 1
        return self._global_sum if mode == "first" else self._global_sum / self._global_count


# ---------------------------------------------------------------------------------------------------------------
# Colouring a file.
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class VideoResult:
    """What `colorize_video` wrote."""

    path: Path
    info: VideoInfo
    frames: int
    shots: int
    blended_fraction: float  # mean over frames
    notes: list[str] = dataclasses.field(default_factory=list)  # what the output lost, one line each


def colorize_video(
    colorizer: Colorizer,
    path: str | Path,
    target: str | Path,
    settings: TemporalSettings | None = None,
    *,
    frames_dir: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    global_features: np.ndarray | None = None,
) -> VideoResult:
    """Colours the video `path` into the mp4 `target` (and PNG frames into `frames_dir`), frame by frame.

    Both are written under hidden temporary names and renamed at the end, so a failed or interrupted video leaves
    neither behind (and the hidden files of a run that was killed are swept by the next). Raises VideoError (one
    line naming the file) for anything wrong with the input; `target` and `frames_dir` are then left as they were.
    """
    path, target = Path(path), Path(target)
    if target.exists() and not overwrite:
        raise VideoError(f"Output {target} exists; remove it or choose another --output.")
    if frames_dir is not None and Path(frames_dir).exists() and not overwrite:
        raise VideoError(f"Output folder {frames_dir} exists; remove it or choose another --output.")
    files.sweep_stale(target, ".mp4")
    av = _av()
    with VideoReader(path) as reader:
        try:
            writer = VideoWriter(target, reader.info, reader.audio_stream)
        except (av.FFmpegError, OSError) as e:
            raise VideoError(f"Cannot write video {target}: {_reason(e)}.") from e
        pngs = None
        try:
            if frames_dir is not None:
                files.sweep_stale(frames_dir, "")
                pngs = files.StagedPath(frames_dir, suffix="")
                pngs.hold(folder=True)
            frames = reader.frames(on_audio=writer.mux_audio)
            shots, blended = colorize_frames(
                FrameColorizer(colorizer, settings, global_features),
                frames,
                writer,
                frames_dir=None if pngs is None else pngs.temporary,
                progress=progress,
                total=reader.info.num_frames,
                name=path.name,
            )
            writer.close()
            if pngs is not None:
                if Path(frames_dir).is_dir():  # only with `overwrite`: the old frames go with the old video
                    shutil.rmtree(frames_dir)
                pngs.commit()
        except BaseException as e:
            writer.abort()
            if pngs is not None:
                pngs.discard()
            if isinstance(e, av.FFmpegError):
                raise VideoError(f"Cannot write video {target}: {_reason(e)}.") from e
            if isinstance(e, ImportError):  # OpenCV (the [video] extra) is missing
                raise VideoError(f"Cannot colour video {path}: {e}") from e
            raise
    count = writer.frames_written
    notes = [*reader.notes, *writer.notes]
    return VideoResult(target, reader.info, count, shots, blended / max(count, 1), notes)


def colorize_frames(
    step: FrameColorizer,
    frames: Iterable[Frame],
    writer: VideoWriter,
    *,
    frames_dir: str | Path | None = None,
    progress: bool = True,
    total: int | None = None,
    name: str = "",
) -> tuple[int, float]:
    """The streaming loop: pull one frame, colour it, write it, then pull the next (one frame in flight); a tqdm
    bar shows frames/s and the ETA. Returns (shots, summed blended fraction)."""
    from tqdm import tqdm

    shots, blended = 0, 0.0
    with tqdm(
        total=total,
        unit="frame",
        desc=name,
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for frame in frames:
            result = step(frame.rgb)
            writer.write(result.rgb, frame.pts)
            if frames_dir is not None:
                files.save_png(result.rgb, Path(frames_dir) / f"{frame.index:06d}.png")
            shots += result.cut
            blended += result.blended_fraction
            bar.update()
    return shots, blended


def colorize_video_files(
    colorizer: Colorizer,
    inputs: list[tuple[Path, Path]],
    output: Path,
    settings: TemporalSettings | None = None,
    *,
    frames: bool = False,
    progress: bool = True,
    global_features: np.ndarray | None = None,
) -> list[str]:
    """Colours every (video, output path relative to `output`) into `output/<relative>.mp4` (PNG frames in
    `output/<relative>_frames/` with `frames`), one line per video on stdout; a video that fails does not stop the
    others. Returns one line per failed video (the `VideoError`'s message), for the command to print."""
    failures = []
    for path, relative in inputs:
        target = output / relative.with_suffix(".mp4")
        frames_dir = target.with_name(target.stem + "_frames") if frames else None
        try:
            result = colorize_video(
                colorizer,
                path,
                target,
                settings,
                frames_dir=frames_dir,
                progress=progress,
                global_features=global_features,
            )
        except VideoError as e:
            failures.append(str(e))
            continue
        info = result.info
        padded = " (odd size padded by one pixel for H.264 4:2:0)" if info.width % 2 or info.height % 2 else ""
        turned = f" (turned {info.rotation} degrees as its display matrix says)" if info.rotation else ""
        print(
            f"{path}: {result.frames} frames {info.width}x{info.height} at {float(info.frame_rate):.3g} fps, "
            f"{result.shots} shot(s), {result.blended_fraction:.0%} of pixels carried along the flow{padded}{turned} "
            f"-> {target}"
        )
        for note in result.notes:
            print(f"{path}: {note}")
    return failures
