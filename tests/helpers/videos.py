"""Video files of the kinds that broke on real clips, made with PyAV in a few frames: an AVI with a 1/fps time
base (and PCM sound), a clip with a display matrix, an AVI whose header over-counts its frames, a truncated mp4."""

import fractions
import struct
from pathlib import Path

import numpy as np


def marked_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Smooth colourful frames that move, with a white block in the top-left corner (to see orientation)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(count):
        phase = 2 * np.pi * t / max(count, 1)
        rgb = np.stack(
            [
                120 + 100 * np.sin(x / 7 + phase),
                120 + 100 * np.cos(y / 5 - phase),
                120 + 80 * np.sin((x + y) / 9),
            ],
            axis=-1,
        )
        rgb[: height // 4, : width // 4] = 255
        frames.append(rgb.clip(0, 255).astype(np.uint8))
    return frames


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: int,
    *,
    format: str | None = None,
    codec: str = "libx264",
    audio: str | None = None,
    audio_layout: str = "stereo",
    audio_rate: int = 44100,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Encodes uint8 RGB frames at `fps` (frame i at pts i in a 1/fps time base where the muxer keeps it, as AVI
    does), with a tone as long as the video in the `audio` codec (e.g. "pcm_s16le", "pcm_u8") and a display
    matrix turning the picture `rotation` degrees counter-clockwise."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format=format, options=options or {}) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = fractions.Fraction(1, fps)
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream(audio, rate=audio_rate)
            sound.layout = audio_layout
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            sample_format = {"pcm_s16le": ("s16", np.int16, 0), "pcm_u8": ("u8", np.uint8, 128)}[audio]
            channels = av.AudioLayout(audio_layout).nb_channels
            samples = audio_rate * len(frames) // fps
            tone = np.sin(2 * np.pi * 440 * np.arange(samples) / audio_rate) * 100 + sample_format[2]
            interleaved = np.repeat(tone.astype(sample_format[1]), channels)[None]
            chunk = av.AudioFrame.from_ndarray(interleaved, format=sample_format[0], layout=audio_layout)
            chunk.sample_rate, chunk.pts = audio_rate, 0
            container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path


def overcount_avi_header(path: Path, factor: int = 2) -> int:
    """Rewrites an AVI's frame counts (the main header's dwTotalFrames, the video stream header's dwLength and the
    OpenDML dmlh's, where present) to `factor` times the truth, as some writers leave them; returns the lie."""
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")
    true_count = struct.unpack_from("<I", data, avih + 8 + 16)[0]
    lie = true_count * factor
    struct.pack_into("<I", data, avih + 8 + 16, lie)  # MicroSecPerFrame, MaxBytesPerSec, Padding, Flags, Total
    strh = data.find(b"strh")
    while data[strh + 8 : strh + 12] != b"vids":  # the chunk's fourcc, its size, then the stream type
        strh = data.find(b"strh", strh + 4)
    # fccType, fccHandler, dwFlags, wPriority + wLanguage, dwInitialFrames, dwScale, dwRate, dwStart, dwLength
    struct.pack_into("<I", data, strh + 8 + 32, lie)
    dmlh = data.find(b"dmlh")
    if dmlh >= 0:
        struct.pack_into("<I", data, dmlh + 8, lie)
    path.write_bytes(bytes(data))
    return lie
