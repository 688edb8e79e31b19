"""Video colorization: streaming decode/encode that keeps size, frame rate, duration and audio; shot cuts reset the
temporal state; per-frame mode equals the photo colorizer; stabilisation lowers Lai et al.'s warp error; bad files
get one-line errors. Clips are encoded here with PyAV from real scene photos (generated ones without ../shared)."""

import fractions
import gc
import inspect
import weakref

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from helpers.paths import SHARED_DIR  # noqa: E402
from helpers.photos import make_photo  # noqa: E402

from colorjax.bench.video import (  # noqa: E402
    moving_object_frames,
    pan_frames,
    read_clip,
    write_clip,
)
from colorjax.video.io import (  # noqa: E402
    FrameColorizer,
    VideoError,
    VideoReader,
    VideoWriter,
    colorize_frames,
    colorize_video,
    colorize_video_files,
)
from colorjax.video.temporal import (  # noqa: E402
    ShotTracker,
    TemporalSettings,
    WarpErrorMeter,
    lightness_u8,
    non_occluded,
    warp_error,
)

WIDTH, HEIGHT, FPS = 96, 64, 12


@pytest.fixture(scope="module")
def photos():
    """Two colourful 150x150 photos: scene photos of two classes when ../shared is there."""
    from PIL import Image

    folder = SHARED_DIR / "data" / "intel_scenes_150" / "test"
    if folder.is_dir():
        paths = [sorted((folder / c).glob("*.jpg"))[0] for c in ("street", "forest", "sea")]
        return [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    rng = np.random.default_rng(0)
    return [make_photo(rng, 150, 150, hue_shift=h) for h in (0.0, 2.0, 4.0)]


def numpy_variables(model, height: int, width: int, seed: int = 0):
    """He-normal kernels, zero biases, unit BatchNorm, from numpy: no compile of `model.init` (Iizuka's costs
    ~35 s of CPU even at width 1/16)."""
    import jax

    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(seed), np.zeros((1, height, width, 1), np.float32))

    def fill(path, leaf):
        if path[-1].key == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return rng.normal(size=leaf.shape).astype(np.float32) * np.sqrt(2 / fan_in)
        return np.full(leaf.shape, 1.0 if path[-1].key in ("scale", "var") else 0.0, np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope="module")
def colorizer():
    """A random L2 regression: smooth colours, a model without a global path."""
    from colorjax.inference.colorizer import Colorizer
    from colorjax.models import get_model

    model = get_model("regression", width=4)
    variables = numpy_variables(model, HEIGHT, WIDTH)
    return Colorizer(model, variables, resolution=HEIGHT, description="a random regression")


@pytest.fixture(scope="module")
def iizuka():
    """A random Iizuka et al. at 1/16 width: its global path sees the whole frame, so a per-frame colouring
    changes palette as things move in the frame (real flicker)."""
    from colorjax import models
    from colorjax.inference.colorizer import Colorizer
    from colorjax.models.iizuka import Iizuka

    model = Iizuka(num_classes=0, width=1 / 16, global_size=64)
    return Colorizer(
        model,
        numpy_variables(model, 64, 64),
        resolution=0,
        any_size=models.spec("iizuka").any_size,
    )


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory, photos):
    """12 frames panning over one photo, then a cut to 8 frames panning over another; with sound."""
    frames = list(pan_frames(photos[0], WIDTH, HEIGHT, 12)) + list(pan_frames(photos[1], WIDTH, HEIGHT, 8))
    return write_clip(tmp_path_factory.mktemp("clips") / "cut.mp4", frames, FPS, audio=True)


def audio_packets(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(audio=0) if p.dts is not None)


def test_reader_is_a_generator_with_the_clip_timing(cut_clip):
    with VideoReader(cut_clip) as reader:
        info = reader.info
        frames = reader.frames()
        assert inspect.isgenerator(frames)
        decoded = list(frames)
    assert (info.width, info.height, info.frame_rate, info.num_frames) == (WIDTH, HEIGHT, FPS, 20)
    assert info.duration == pytest.approx(20 / FPS, abs=1 / FPS) and info.audio_codec == "aac"
    assert [f.index for f in decoded] == list(range(20))
    assert all(f.rgb.shape == (HEIGHT, WIDTH, 3) and f.rgb.dtype == np.uint8 for f in decoded)
    assert all(b.pts > a.pts for a, b in zip(decoded, decoded[1:], strict=False))


def test_output_keeps_frames_size_rate_duration_audio_and_lightness(colorizer, cut_clip, tmp_path):
    result = colorize_video(colorizer, cut_clip, tmp_path / "out.mp4", frames_dir=tmp_path / "frames", progress=False)
    assert result.frames == 20 and result.shots == 2
    with VideoReader(cut_clip) as src, VideoReader(tmp_path / "out.mp4") as out:
        a, b = src.info, out.info
        src_pts = [f.pts * f.time_base for f in src.frames()]
        out_pts = [f.pts * f.time_base for f in out.frames()]
    assert (b.width, b.height, b.frame_rate, b.num_frames) == (a.width, a.height, a.frame_rate, 20)
    assert b.duration == pytest.approx(a.duration, abs=1 / FPS)
    assert out_pts == src_pts  # the input's timestamps, frame by frame
    assert b.audio_codec == "aac" and audio_packets(tmp_path / "out.mp4") == audio_packets(cut_clip)

    # The colour frames carry the input's own lightness (up to 8-bit rounding and gamut clipping).
    from PIL import Image

    inputs = read_clip(cut_clip)
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert len(pngs) == 20
    for png, rgb in zip(pngs, inputs, strict=True):
        coloured = np.asarray(Image.open(png))
        diff = np.abs(lightness_u8(coloured).astype(int) - lightness_u8(rgb).astype(int))
        assert diff.mean() < 1.5
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

    with pytest.raises(VideoError, match="out.mp4 exists"):
        colorize_video(colorizer, cut_clip, tmp_path / "out.mp4", progress=False)


def test_odd_sizes_are_padded_for_h264_and_png_frames_keep_the_size(colorizer, photos, tmp_path):
    clip = tmp_path / "odd.mkv"  # H.264 4:4:4 takes odd sizes; the output's 4:2:0 does not
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 61, 45, "yuv444p"
        for rgb in pan_frames(photos[0], 61, 45, 6):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    result = colorize_video(colorizer, clip, tmp_path / "odd.mp4", frames_dir=tmp_path / "frames", progress=False)
    assert (result.info.width, result.info.height, result.frames) == (61, 45, 6)
    with VideoReader(tmp_path / "odd.mp4") as reader:
        assert (reader.info.width, reader.info.height) == (62, 46)
        decoded = [f.rgb for f in reader.frames()]
    # The padding repeats the last column and row.
    assert np.abs(decoded[2][:, 61].astype(int) - decoded[2][:, 60].astype(int)).mean() < 4
    assert np.abs(decoded[2][45].astype(int) - decoded[2][44].astype(int)).mean() < 4
    from PIL import Image

    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert len(pngs) == 6 and all(Image.open(p).size == (61, 45) for p in pngs)


def test_frames_are_processed_one_at_a_time(colorizer, cut_clip, tmp_path):
    """The loop pulls a frame only after the previous one was written, and keeps no decoded frame alive."""
    with VideoReader(cut_clip) as reader:
        writer = VideoWriter(tmp_path / "s.mp4", reader.info, reader.audio_stream)
        alive: list[weakref.ref] = []
        in_flight = []

        def instrumented():
            for frame in reader.frames(on_audio=writer.mux_audio):
                in_flight.append(frame.index - writer.frames_written)
                gc.collect()
                alive.append(sum(r() is not None for r in [weakref.ref(frame.rgb), *refs]))
                refs.append(weakref.ref(frame.rgb))
                yield frame

        refs: list[weakref.ref] = []
        colorize_frames(FrameColorizer(colorizer), instrumented(), writer, progress=False)
        writer.close()
    assert len(in_flight) == 20 and max(in_flight) == 0  # frame i is read once frames 0..i-1 are written
    assert max(alive) <= 2  # the frame being yielded and at most the one before it


def test_a_cut_resets_the_state(colorizer, cut_clip):
    frames = read_clip(cut_clip)
    step = FrameColorizer(colorizer)
    assert not step.has_global_path
    results = [step(rgb) for rgb in frames]
    assert [i for i, r in enumerate(results) if r.cut] == [0, 12]
    assert min(r.blended_fraction for r in results[1:12]) > 0.3  # the filter was at work in shot one
    assert results[12].blended_fraction == 0.0
    # No colour from the first shot in the first frame of the second: it is exactly the per-frame colouring.
    np.testing.assert_array_equal(results[12].rgb, colorizer.colorize(frames[12]))
    assert not np.array_equal(results[11].rgb, colorizer.colorize(frames[11]))


def test_temporal_off_is_the_photo_colorizer_frame_by_frame(colorizer, cut_clip, tmp_path):
    from PIL import Image

    colorize_video(
        colorizer,
        cut_clip,
        tmp_path / "off.mp4",
        TemporalSettings(enabled=False),
        frames_dir=tmp_path / "frames",
        progress=False,
    )
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    for png, rgb in zip(pngs, read_clip(cut_clip), strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(png)), colorizer.colorize(rgb))


def test_stabilisation_lowers_the_warp_error(iizuka, photos, tmp_path):
    """Lai et al.'s warp error of a flickering per-frame colouring falls by more than half, by the independent
    Farneback meter (measured: 72%; 63% before the filter trusted the lightness check alone) and by the DIS meter
    (the filter's own flow; 62%)."""
    clip = write_clip(tmp_path / "thing.mp4", moving_object_frames(photos[2], photos[0], WIDTH, HEIGHT, 16), FPS)
    truth = read_clip(clip)
    plain = [iizuka.colorize(rgb) for rgb in truth]
    step = FrameColorizer(iizuka)
    stable = [step(rgb).rgb for rgb in truth]
    meters = {flow: WarpErrorMeter(["plain", "stable", "truth"], flow=flow) for flow in ("dis", "farneback")}
    for t, rgb in enumerate(truth):
        for meter in meters.values():
            meter.add(lightness_u8(rgb), {"plain": plain[t], "stable": stable[t], "truth": rgb})
    errors = {flow: meter.result() for flow, meter in meters.items()}
    assert meters["dis"].pairs == meters["farneback"].pairs == 15
    assert errors["dis"]["stable"] < 0.45 * errors["dis"]["plain"], errors
    assert errors["farneback"]["stable"] < 0.35 * errors["farneback"]["plain"], errors


def test_the_occlusion_test_only_narrows_the_trusted_pixels(photos):
    """Off by default, the filter trusts the flow where it lands inside the frame and the lightness matches; with
    `occlusion_test` Lai et al.'s test must pass as well, which distrusts some of those pixels (around the moving
    object) and trusts no other."""
    frames = list(moving_object_frames(photos[2], photos[0], WIDTH, HEIGHT, 6))
    trackers = {flag: ShotTracker(TemporalSettings(occlusion_test=flag)) for flag in (False, True)}
    assert not TemporalSettings().occlusion_test
    for rgb in frames:
        motions = {flag: tracker(lightness_u8(rgb))[0] for flag, tracker in trackers.items()}
    alone, tested = motions[False].trusted, motions[True].trusted
    assert not (tested & ~alone).any()
    assert tested.sum() < alone.sum()


def test_iizuka_colours_a_shot_with_one_global_feature_vector(iizuka, photos):
    frames = list(pan_frames(photos[0], 64, 48, 4))
    step = FrameColorizer(iizuka, TemporalSettings(weight=0.0, saturation_weight=0.0, global_features="first"))
    assert step.has_global_path
    first = iizuka.encode_global(frames[0])["global_features"]
    for rgb in frames:
        expected = iizuka.predict(rgb, global_features=first).rgb
        assert np.abs(step(rgb).rgb.astype(int) - expected.astype(int)).max() <= 2


def test_bad_files_get_one_line_errors_and_the_others_finish(colorizer, cut_clip, tmp_path, capsys):
    good = cut_clip.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("not a video")
    (bad / "empty.mov").write_bytes(b"")
    (bad / "cut_short.mp4").write_bytes(good[: len(good) // 2])  # the index (moov) is at the end: lost
    faststart = write_clip(
        tmp_path / "fs.mp4",
        pan_frames(np.asarray(read_clip(cut_clip)[0]), 96, 64, 20),
        FPS,
        faststart=True,
    ).read_bytes()
    (bad / "truncated.mp4").write_bytes(faststart[: len(faststart) * 2 // 3])  # index intact, data cut
    (bad / "codec.mp4").write_bytes(good.replace(b"avc1", b"zzz1"))  # a codec FFmpeg does not know
    names = ["notes", "empty", "cut_short", "codec"]
    inputs = [(bad / p.name, p.relative_to(bad).with_suffix("")) for p in sorted(bad.iterdir())]
    inputs.insert(2, (cut_clip, cut_clip.relative_to(cut_clip.parent).with_suffix("")))
    output = tmp_path / "out"
    err = colorize_video_files(colorizer, inputs, output, progress=False)  # one line per failed video
    assert len(err) == 4 and all("\n" not in line for line in err)
    captured = capsys.readouterr()
    assert "error:" not in captured.err  # the command prints them, not the library
    for name in names:
        assert sum(f"/{name}." in line and line.startswith("Cannot read video") for line in err) == 1
    # Nothing half-written left; the truncated clip keeps the frames before the cut, and says so in one line.
    assert sorted(p.name for p in output.iterdir()) == ["cut.mp4", "truncated.mp4"]
    assert sum("truncated.mp4: " in line and "the file is truncated" in line for line in captured.out.splitlines()) == 1
    assert any("codec" in line and "not one this FFmpeg build decodes" in line for line in err)


def test_warp_error_is_lai_et_al_definition():
    rng = np.random.default_rng(0)
    previous = rng.integers(0, 200, (20, 30, 3), dtype=np.uint8)
    current = previous.copy()
    current[..., 1] += 30  # one channel 30 levels brighter
    zero = np.zeros((20, 30, 2), np.float32)
    everywhere = np.ones((20, 30), bool)
    expected = (30 / 255) ** 2 / 3  # mean over the three channels of the non-occluded pixels
    assert warp_error(previous, current, zero, everywhere) == pytest.approx(expected, rel=1e-5)
    half = everywhere.copy()
    half[:, 15:] = False
    assert warp_error(previous, current, zero, half) == pytest.approx(expected, rel=1e-5)
    # No pixel is trusted: the sum over none is divided by every pixel (as their code does), 0 here.
    assert warp_error(previous, current, zero, ~everywhere) == 0.0

    # A known shift: frame t is frame t-1 moved 2 px right; the flow t-1 -> t is +2 in x.
    shifted = np.roll(previous, 2, axis=1)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 2
    inside = np.ones((20, 30), bool)
    inside[:, 28:] = False
    assert warp_error(previous, shifted, flow, inside) == pytest.approx(0.0, abs=1e-9)
    # Forward-backward consistent constant motion is trusted; a flow the backward one does not undo is not.
    assert non_occluded(flow, -flow).all()
    assert not non_occluded(flow, np.zeros_like(flow)).any()


def test_blending_keeps_the_saturation_of_hues_that_disagree():
    """Carried chroma (30, 0) and a prediction (0, 30) where the motion is trusted: a plain blend at the default
    weight 0.75 is 23.7 long (the colour washes towards gray); with `keep_saturation` (default) the blend keeps length
    30 and the blend's hue; where nothing is blended, the prediction is kept exactly. A prediction (0, 10) gets the
    hue of the blend at `weight` and the length of the lengths' blend at `saturation_weight` (0.65: 23.0, not the
    25.0 one weight of 0.75 would give)."""
    from colorjax.video.temporal import Motion, TemporalFilter

    size = (8, 10)  # the filter works at 8 pixels or more a side
    trusted = np.ones(size, bool)
    trusted[:, :2] = False
    motion = Motion(np.zeros((*size, 2), np.float32), trusted, 0.0)
    carried = np.zeros((*size, 2), np.float32)
    carried[..., 0] = 30
    predicted = np.zeros((*size, 2), np.float32)
    predicted[..., 1] = 30
    settings = TemporalSettings()
    assert (settings.weight, settings.saturation_weight) == (0.75, 0.65)

    def filtered(prediction, keep: bool) -> np.ndarray:
        flt = TemporalFilter(TemporalSettings(keep_saturation=keep))
        flt(carried, None)
        return flt(prediction, motion)[0]

    outputs = {keep: filtered(predicted, keep) for keep in (False, True)}
    plain, kept = outputs[False][:, 2:], outputs[True][:, 2:]
    weight = settings.weight
    np.testing.assert_allclose(np.linalg.norm(plain, axis=-1), 30 * np.hypot(weight, 1 - weight), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(kept, axis=-1), 30, rtol=1e-4)
    np.testing.assert_allclose(kept / 30, plain / np.linalg.norm(plain, axis=-1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(outputs[True][:, :2], predicted[:, :2])

    paler = predicted / 3
    hue = filtered(paler, False)[:, 2:]
    kept = filtered(paler, True)[:, 2:]
    length = settings.saturation_weight * 30 + (1 - settings.saturation_weight) * 10
    np.testing.assert_allclose(np.linalg.norm(kept, axis=-1), length, rtol=1e-4)
    np.testing.assert_allclose(kept / length, hue / np.linalg.norm(hue, axis=-1, keepdims=True), atol=1e-5)


def test_the_meter_measures_motion_with_a_flow_the_filter_does_not_use(photos):
    """The warp-error meter's default flow is Farneback's, not the DIS the filter follows, and it finds a known
    sub-pixel shift (so its warp error of the clip's own colours is near 0 where the motion is known)."""
    from colorjax.bench.video import _view

    meter = WarpErrorMeter(["truth"])
    assert type(meter.flow).__name__ == "FarnebackFlow"
    photo = photos[0]
    first = _view(photo, 96, 64, 10.0, 10.0, 100.0)
    second = _view(photo, 96, 64, 12.5, 11.0, 100.0)  # the window moved (2.5, 1) source px = (2.4, 0.96) frame px
    flow = meter.flow(lightness_u8(first), lightness_u8(second))
    interior = flow[8:-8, 8:-8].reshape(-1, 2)
    np.testing.assert_allclose(np.median(interior, axis=0), [-2.4, -0.96], atol=0.3)
    for rgb in (first, second):
        meter.add(lightness_u8(rgb), {"truth": rgb})
    unwarped = warp_error(first, second, np.zeros_like(flow), np.ones(flow.shape[:2], bool))
    assert meter.result()["truth"] < 0.2 * unwarped  # measured 0.0055 against 0.074


def test_the_meter_finds_cuts_with_its_own_settings_not_the_filters_defaults(colorizer, cut_clip, monkeypatch):
    """`evaluate --video` skips the pairs across a cut, found with the meter's fixed settings
    (`metrics.METER_SHOT_SETTINGS`): filter defaults that make every frame a cut change the filter's shots, and
    neither the meter's pairs nor any warp error."""
    from colorjax.video.metrics import TRUTH, WARP_METERS, evaluate_clip

    def score():
        return evaluate_clip(colorizer, cut_clip, {"per-frame": TemporalSettings(enabled=False)})

    before = score()
    names = inspect.signature(TemporalSettings).parameters
    defaults = dict(zip(names, TemporalSettings.__init__.__defaults__, strict=True))
    defaults.update(cut_min_distance=0.0, cut_ratio=0.0, lightness_tolerance=1.0, work_max_side=32)
    monkeypatch.setattr(TemporalSettings.__init__, "__defaults__", tuple(defaults.values()))
    assert TemporalSettings().cut_ratio == 0.0
    tracker = ShotTracker(TemporalSettings())
    assert all(tracker(lightness_u8(rgb))[1] for rgb in read_clip(cut_clip))  # the filter's defaults: all cuts
    after = score()
    assert after[TRUTH]["frame_pairs"] == before[TRUTH]["frame_pairs"] == 18  # 19 pairs, less the one across the cut
    for name in ("per-frame", TRUTH):
        for flow in WARP_METERS:
            assert after[name][f"warp_error_{flow}"] == before[name][f"warp_error_{flow}"], (name, flow)


def test_the_bench_scores_a_pans_perfectly_consistent_colouring_by_the_model_its_bound(
    run_dir, photos, tmp_path, monkeypatch
):
    """The bench's bound for a clip with known motion (issue 22 point 6): the still is coloured ONCE, with the model
    seeing it at the scale it sees every frame at, and each frame's chroma is cropped from it as the pan crops its
    frames, so consecutive frames' chroma agree along the known motion; `evaluate_clip` scores it beside the
    contenders and the bench reports the reduction it reaches."""
    from colorjax.bench import video as bench
    from colorjax.inference.colorizer import Colorizer, open_colorizer
    from colorjax.video.metrics import contenders, evaluate_clip
    from colorjax.video.temporal import lands_inside, warp

    colorizer = open_colorizer(workdir=run_dir, step="latest")  # the real config, model and resolution overridden
    width, height, count = 128, 96, 6  # the model sees a frame at 64 / 96 of its size
    windows = bench.pan_windows(150, 150, width, height, count)
    parts = [bench.Views(photos[0], windows)]
    seen = []
    predict_chroma = Colorizer.predict_chroma

    def spy(self, rgb, **kwargs):
        seen.append((rgb.shape[:2], self.working_size(*rgb.shape[:2])))
        return predict_chroma(self, rgb, **kwargs)

    monkeypatch.setattr(Colorizer, "predict_chroma", spy)
    chroma = bench.consistent_chroma(colorizer, parts, width, height)
    monkeypatch.undo()
    still = round(150 * width / windows[0][2])  # the photo at the frames' scale
    ((coloured, working),) = seen  # once, at the frames' model scale (a multiple of 8), not at the resolution 64
    assert coloured == (still, still) and working[0] == working[1] and abs(working[0] - still * 64 / 96) <= 4
    assert len(chroma) == count and chroma[0].shape == (height, width, 2)
    scale = windows[0][2] / width  # photo pixels per frame pixel
    for t in range(count - 1):
        before, after, (x0, y0, _), (x1, y1, _) = chroma[t], chroma[t + 1], windows[t], windows[t + 1]
        shift = np.zeros((height, width, 2), np.float32)
        shift[...] = ((x0 - x1) / scale, (y0 - y1) / scale)  # frame t's pixel in frame t+1
        seen_in_both = lands_inside(shift)  # the window's overlap with the next frame's
        moved = np.abs(warp(after, shift) - before)[seen_in_both].mean()
        assert moved < 0.1 * np.abs(after - before)[seen_in_both].mean()  # bilinear interpolation only

    clip = write_clip(tmp_path / "pan.mp4", bench.scene_frames(parts, width, height), 12)
    references = {bench.CONSISTENT: lambda index, rgb: colorizer.combine(rgb, chroma[index])}
    results = evaluate_clip(colorizer, clip, contenders("on"), references=references)
    assert "frames_per_s" not in results[bench.CONSISTENT]  # scored, not timed
    plain, stable, _, bound = bench.clip_rows("pan", "synthetic", results)
    assert bound["contender"] == bench.CONSISTENT and bound["frames"] == count
    assert bound["warp_farneback"] > 0 and bound["colourfulness"] > 0
    assert stable["bound_reduction_farneback"] == pytest.approx(1 - bound["warp_farneback"] / plain["warp_farneback"])


def test_frame_rate_and_variable_timestamps_survive(colorizer, photos, tmp_path):
    """A clip at 30000/1001 fps keeps its exact rate."""
    frames = list(pan_frames(photos[1], WIDTH, HEIGHT, 6))
    clip = tmp_path / "ntsc.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    colorize_video(colorizer, clip, tmp_path / "out.mp4", progress=False)
    with VideoReader(clip) as a, VideoReader(tmp_path / "out.mp4") as b:
        assert b.info.frame_rate == a.info.frame_rate == fractions.Fraction(30000, 1001)
        assert [f.pts * f.time_base for f in a.frames()] == [f.pts * f.time_base for f in b.frames()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, colorizer):
    """The random regression saved as a training run (no training), for the command lines."""
    from helpers.runs import save_run

    data_fields = {"source": "samples", "image_size": HEIGHT, "color_space": "lab"}
    return save_run(
        tmp_path_factory.mktemp("run"),
        "regression",
        {"width": 4},
        colorizer.variables,
        data_fields,
        None,
    )


def test_colorize_command_takes_videos_and_photos_together(run_dir, colorizer, cut_clip, tmp_path, capsys):
    from PIL import Image

    from colorjax.cli import colorize

    photo = tmp_path / "photo.png"
    Image.fromarray(read_clip(cut_clip)[3]).save(photo)
    (tmp_path / "broken.mov").write_text("not a video")
    output = tmp_path / "out"
    status = colorize.main(
        [
            "--workdir", str(run_dir), str(cut_clip), str(tmp_path / "broken.mov"), str(photo),
            "--output", str(output), "--frames", "--temporal", "off",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert status == 1 and [line for line in errors if line.startswith("error")] == [
        line for line in errors if "broken.mov" in line
    ]
    assert len([line for line in errors if line.startswith("error")]) == 1
    assert "Colorized 1 image(s) and 1 video(s)" in captured.out
    assert (output / "photo.png").is_file()
    with VideoReader(output / "cut.mp4") as reader:
        assert (reader.info.num_frames, reader.info.audio_codec) == (20, "aac")
    pngs = sorted((output / "cut_frames").glob("*.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[5])), colorizer.colorize(read_clip(cut_clip)[5]))


def test_evaluate_video_scores_a_clip_against_its_own_colours(run_dir, cut_clip, tmp_path, capsys):
    import json

    from colorjax.cli import evaluate as evaluate_cli

    output = tmp_path / "eval"
    status = evaluate_cli.main(["--workdir", str(run_dir), "--video", str(cut_clip), "--output", str(output)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "20/20" in captured.err  # the progress bar, frame by frame
    results = json.loads((output / "video_metrics.json").read_text())[str(cut_clip)]
    stable, plain, truth = results["stabilised"], results["per-frame"], results["ground truth"]
    assert stable["frames"] == plain["frames"] == 20
    assert truth["frame_pairs"] == 18  # 19 pairs, less the one across the cut
    for numbers in (stable, plain):
        assert 0 < numbers["auc_percent"] < 100 and 5 < numbers["psnr_rgb_db"] < 60
        assert numbers["warp_error_farneback"] > 0 and numbers["warp_error_dis"] > 0  # both meters, side by side
        assert numbers["frames_per_s"] > 0 and numbers["cpu_ms_per_frame"] > 0  # each path's speed, for the bench
    assert "| stabilised |" in (output / "video_results.md").read_text()


@pytest.fixture(scope="module")
def eccv16_cache(tmp_path_factory):
    """A weights cache holding a file under the published ECCV16 name: the authors' layout at full width, random
    weights (torch.save), so `--weights eccv16` needs no download."""
    torch = pytest.importorskip("torch")
    from colorjax.bench.zhang import torch_eccv16
    from colorjax.weights.registry import KNOWN_WEIGHTS

    torch.manual_seed(0)
    cache = tmp_path_factory.mktemp("cache")
    torch.save(torch_eccv16(torch, 1.0).state_dict(), cache / KNOWN_WEIGHTS["eccv16"].file_name)
    return cache


@pytest.mark.parametrize("how", ["name", "file"])
def test_evaluate_video_with_published_weights(how, eccv16_cache, cut_clip, tmp_path, monkeypatch, capsys):
    """`evaluate --video` with `--weights eccv16` (a name, from the cache) and with `--weights FILE --model eccv16`
    scores the clip (it used to stop with 'No published weights for None')."""
    import json
    import shutil

    from colorjax.cli import evaluate as evaluate_cli
    from colorjax.weights.registry import KNOWN_WEIGHTS

    monkeypatch.setenv("COLORJAX_CACHE", str(eccv16_cache))
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")  # a download would fail at once
    if how == "name":
        weights = ["--weights", "eccv16"]
    else:
        own = shutil.copy(eccv16_cache / KNOWN_WEIGHTS["eccv16"].file_name, tmp_path / "my_weights.pth")
        weights = ["--weights", str(own), "--model", "eccv16"]
    output = tmp_path / "eval"
    argv = [*weights, "--video", str(cut_clip), "--output", str(output), "--max-frames", "4", "--temporal", "off"]
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err
    results = json.loads((output / "video_metrics.json").read_text())[str(cut_clip)]
    assert results["per-frame"]["frames"] == 4
    assert 0 < results["per-frame"]["auc_percent"] < 100
    assert "eccv16" in capsys.readouterr().out


def test_pcm_audio_is_reencoded_to_aac(colorizer, photos, tmp_path):
    """mp4 cannot carry PCM: the track is decoded and re-encoded (its length kept), the video still copied."""
    clip = tmp_path / "pcm.mov"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=16000)
        sound.layout = "mono"
        for rgb in pan_frames(photos[0], WIDTH, HEIGHT, FPS):
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(video.encode())
        tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
    result = colorize_video(colorizer, clip, tmp_path / "out.mp4", progress=False)
    assert result.frames == FPS and result.info.audio_codec == "pcm_s16le"
    with av.open(str(tmp_path / "out.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert float(audio.duration * audio.time_base) == pytest.approx(1.0, abs=0.1)
