"""Video files of the kinds that failed on real clips (issue 22), each made here with PyAV in a few frames and
coloured with the session's trained run: an AVI with a 1/fps time base, PCM sound, a display matrix, a header that
over-counts frames, a truncated file; and the small things: a JPEG named .mp4, `--frames` PNGs after a failure or
Ctrl-C, the hidden partial file a killed run leaves."""

import fractions
import os

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from helpers.videos import marked_frames, overcount_avi_header, write_video  # noqa: E402

from colorjax import files  # noqa: E402
from colorjax.video import io as video  # noqa: E402
from colorjax.video.io import VideoReader, colorize_video, colorize_video_files  # noqa: E402
from colorjax.video.temporal import TemporalSettings, lightness_u8  # noqa: E402

WIDTH, HEIGHT, FPS = 48, 32, 10
PER_FRAME = TemporalSettings(enabled=False)


@pytest.fixture(scope="module")
def colorizer(trained_run):
    from colorjax.inference import open_colorizer

    return open_colorizer(workdir=trained_run)


def seconds(path) -> list[fractions.Fraction]:
    with VideoReader(path) as reader:
        return [frame.pts * frame.time_base for frame in reader.frames()]


def test_avi_with_a_one_over_fps_time_base_keeps_every_timestamp(colorizer, tmp_path):
    """The mp4 muxer turns the stream's 1/10 into 1/10240; frames stamped in that new base failed after a few
    dozen frames ("Invalid argument"). 60 frames at 10 fps, timestamps kept to the frame."""
    clip = write_video(tmp_path / "film.avi", marked_frames(60, WIDTH, HEIGHT), FPS, codec="mpeg4")
    with VideoReader(clip) as reader:
        assert reader.info.time_base == fractions.Fraction(1, FPS)
    result = colorize_video(colorizer, clip, tmp_path / "film.mp4", PER_FRAME, progress=False)
    assert result.frames == 60 and result.notes == []
    assert seconds(tmp_path / "film.mp4") == seconds(clip) == [fractions.Fraction(i, FPS) for i in range(60)]


@pytest.mark.parametrize(("codec", "layout", "rate"), [("pcm_s16le", "stereo", 44100), ("pcm_u8", "mono", 22050)])
def test_pcm_sound_of_an_avi_is_transcoded_to_aac(codec, layout, rate, colorizer, tmp_path):
    """AVI's PCM tracks state a channel count, no layout ("2 channels"), which the AAC encoder refused: the whole
    video failed, called truncated. The sound is now AAC, as long as the picture."""
    clip = write_video(
        tmp_path / "talk.avi", marked_frames(20, WIDTH, HEIGHT), FPS, codec="mpeg4", audio=codec,
        audio_layout=layout, audio_rate=rate,
    )  # fmt: skip
    with VideoReader(clip) as reader:
        assert reader.audio_stream.codec_context.layout.name.endswith("channels")  # no named layout
    result = colorize_video(colorizer, clip, tmp_path / "talk.mp4", PER_FRAME, progress=False)
    assert result.frames == 20 and result.notes == []
    with av.open(str(tmp_path / "talk.mp4")) as container:
        sound = container.streams.audio[0]
        assert sound.codec_context.name == "aac" and sound.codec_context.channels == (1 if layout == "mono" else 2)
        assert float(sound.duration * sound.time_base) == pytest.approx(2.0, abs=0.1)


def test_sound_that_cannot_be_kept_costs_only_the_sound(colorizer, tmp_path, monkeypatch, capsys):
    """A track the mp4 muxer refuses (here 8-bit PCM, made to be copied as it is) leaves the picture whole: the
    video is written without sound and one line says so."""
    monkeypatch.setattr(video, "_MP4_AUDIO_CODECS", {*video._MP4_AUDIO_CODECS, "pcm_u8"})
    clip = write_video(
        tmp_path / "talk.mov", marked_frames(12, WIDTH, HEIGHT), FPS, audio="pcm_u8", audio_layout="mono",
        audio_rate=22050,
    )  # fmt: skip
    failures = colorize_video_files(colorizer, [(clip, clip.relative_to(tmp_path))], tmp_path / "out", PER_FRAME)
    out = capsys.readouterr().out.splitlines()
    assert failures == []
    with VideoReader(tmp_path / "out" / "talk.mp4") as reader:
        assert reader.info.num_frames == 12 and reader.info.audio_codec is None
    said = [line for line in out if "without sound" in line]
    assert len(said) == 1 and "pcm_u8" in said[0] and said[0].startswith(str(clip))


def test_a_display_matrix_turns_the_frames_upright(colorizer, tmp_path):
    """A portrait phone clip is stored sideways with a 90-degree display matrix: the output is upright (the matrix
    applied to the pixels), its lightness that of the turned input."""
    frames = marked_frames(6, WIDTH, HEIGHT)
    clip = write_video(tmp_path / "phone.mp4", frames, FPS, rotation=90)
    with VideoReader(clip) as reader:
        assert (reader.info.rotation, reader.info.width, reader.info.height) == (90, HEIGHT, WIDTH)
        decoded = [frame.rgb for frame in reader.frames()]
    for rgb, upright in zip(frames, decoded, strict=True):  # counter-clockwise: top-left corner to bottom-left
        right, wrong = (np.abs(upright.astype(int) - np.rot90(rgb, k).astype(int)).mean() for k in (1, -1))
        assert right < 8 < wrong  # (H.264's loss on a 48 x 32 picture)
    colorize_video(colorizer, clip, tmp_path / "out.mp4", PER_FRAME, progress=False)
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert (reader.info.rotation, reader.info.width, reader.info.height) == (0, HEIGHT, WIDTH)
        coloured = [frame.rgb for frame in reader.frames()]
    for upright, out in zip(decoded, coloured, strict=True):
        assert np.abs(lightness_u8(out).astype(int) - lightness_u8(upright).astype(int)).mean() < 3
    assert lightness_u8(coloured[0])[-2, 1] > 240 and lightness_u8(coloured[0])[1, 1] < 240


def test_a_header_that_over_counts_frames_is_trusted_to_the_stream(colorizer, tmp_path, capsys):
    """An AVI whose header lists twice the frames it holds was rejected as truncated after every frame was
    coloured; the decoded stream is right, and nothing is said."""
    clip = write_video(tmp_path / "old.avi", marked_frames(15, WIDTH, HEIGHT), FPS, codec="mpeg4")
    assert overcount_avi_header(clip) == 30
    with VideoReader(clip) as reader:
        assert reader.info.num_frames == 30
    failures = colorize_video_files(colorizer, [(clip, clip.relative_to(tmp_path))], tmp_path / "out", PER_FRAME)
    assert failures == []
    with VideoReader(tmp_path / "out" / "old.mp4") as reader:
        assert reader.info.num_frames == 15
    assert capsys.readouterr().out.count(str(clip)) == 1  # the video's own line, no note


def test_a_truncated_file_keeps_the_frames_it_had(colorizer, tmp_path, capsys):
    """An mp4 cut short (index intact, data cut at 2/3) gives the frames before the cut, and one line."""
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(30)]  # even-sized frames
    whole = write_video(tmp_path / "whole.mp4", noisy, FPS, options={"movflags": "faststart"}).read_bytes()
    clip = tmp_path / "cut.mp4"
    clip.write_bytes(whole[: len(whole) * 2 // 3])
    failures = colorize_video_files(colorizer, [(clip, clip.relative_to(tmp_path))], tmp_path / "out", PER_FRAME)
    assert failures == []
    with VideoReader(tmp_path / "out" / "cut.mp4") as reader:
        assert 5 < reader.info.num_frames < 30
        kept = reader.info.num_frames
    notes = [line for line in capsys.readouterr().out.splitlines() if "the file is truncated" in line]
    assert len(notes) == 1 and notes[0].startswith(str(clip)) and f"the {kept} frame(s)" in notes[0], (notes, kept)


def test_a_jpeg_named_mp4_is_a_clear_error(colorizer, tmp_path):
    from PIL import Image

    fake = tmp_path / "holiday.mp4"
    Image.fromarray(marked_frames(1, WIDTH, HEIGHT)[0]).save(fake, format="JPEG")
    failures = colorize_video_files(colorizer, [(fake, fake.relative_to(tmp_path))], tmp_path / "out", PER_FRAME)
    assert len(failures) == 1 and "holiday.mp4" in failures[0] and "still picture" in failures[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_frames_and_partial_video_are_removed_when_a_video_is_interrupted(colorizer, tmp_path, monkeypatch):
    """Ctrl-C at frame 4 (KeyboardInterrupt from the colouring) leaves neither PNGs nor a hidden partial mp4."""
    clip = write_video(tmp_path / "clip.mp4", marked_frames(10, WIDTH, HEIGHT), FPS)
    calls = []
    real = video.FrameColorizer.__call__

    def interrupted(self, rgb):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, rgb)

    monkeypatch.setattr(video.FrameColorizer, "__call__", interrupted)
    output = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(colorizer, clip, output / "clip.mp4", frames_dir=output / "clip_frames", progress=False)
    assert list(output.iterdir()) == []


def test_the_hidden_partial_of_a_killed_run_is_swept(colorizer, tmp_path):
    """A run killed mid-video leaves `.clip.mp4.<random>.tmp.mp4` (and its PNG folder); the next run on that
    output removes them. A partial that a living writer holds (locked) is left alone."""
    import fcntl

    clip = write_video(tmp_path / "clip.mp4", marked_frames(4, WIDTH, HEIGHT), FPS)
    output = tmp_path / "out"
    output.mkdir()
    stale = output / ".clip.mp4.0123456789abcdef.tmp.mp4"
    stale.write_bytes(b"half a video")
    stale_frames = output / ".clip_frames.0123456789abcdef.tmp"
    stale_frames.mkdir()
    (stale_frames / "000000.png").write_bytes(b"png")
    live = files.StagedPath(output / "clip.mp4", suffix=".mp4")
    live.hold()
    unrelated = output / ".other.mp4.0123456789abcdef.tmp.mp4"
    unrelated.write_bytes(b"another output's")
    colorize_video(colorizer, clip, output / "clip.mp4", PER_FRAME, frames_dir=output / "clip_frames", progress=False)
    left = sorted(p.name for p in output.iterdir())
    assert left == sorted(["clip.mp4", "clip_frames", live.temporary.name, unrelated.name])
    assert len(list((output / "clip_frames").glob("*.png"))) == 4
    # The live writer still holds its lock: nobody else can take it.
    descriptor = os.open(live.temporary, os.O_RDONLY)
    with pytest.raises(BlockingIOError):
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(descriptor)
    live.discard()
