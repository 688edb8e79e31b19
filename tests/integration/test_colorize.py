"""`python -m colorjax.colorize`: a trained run colours files and folders of any size; bad input gets one line; no
file is lost or overwritten (unique names, inputs kept, existing outputs skipped unless --overwrite).

The trained run is the session's shared one (`trained_run`, tests/helpers/fixtures.py): read, never written."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.photos import make_photo
from PIL import Image

from colorjax import config_lib, runs
from colorjax.cli import colorize

MAX_PIXELS = config_lib.base_config().data.max_pixels


def test_training_says_what_it_skipped(shared_training):
    messages = shared_training.said
    # The grey photo: left out of the evaluation (no colour to score) and of training, each said in one line.
    assert "  eval left out 1 grey photo(s) and 0 unreadable file(s)" in messages
    assert "Input: 1 photos without colour skipped, 0 unreadable files skipped." in messages


@pytest.fixture
def inputs(tmp_path, photo_folder):
    """A folder with photos of several sizes (7x5 and a large odd one), a gray photo, a corrupt file, a subfolder."""
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    Image.fromarray(make_photo(rng, 5, 7)).save(folder / "tiny_7x5.png")
    Image.fromarray(make_photo(rng, 333, 250)).save(folder / "sub" / "big.jpg", quality=95)
    Image.fromarray(make_photo(rng, 64, 80)).convert("L").save(folder / "gray.png")
    shutil.copy(photo_folder / "dogs" / "corrupt.jpg", folder / "corrupt.jpg")
    return folder


def test_colorizes_a_folder_keeping_sizes_and_structure(trained_run, inputs, tmp_path, capsys):
    output = tmp_path / "out"
    status = colorize.main(["--workdir", str(trained_run), str(inputs), "--output", str(output)])
    captured = capsys.readouterr()
    assert status == 1  # One file could not be read: reported, the rest done.
    assert "error: Cannot read image" in captured.err and "corrupt.jpg" in captured.err
    best = runs.load_run(trained_run, "best").step  # every command's default --step
    assert f"Colorized 3 image(s) with step {best} of" in captured.out
    for name, size, kind in (
        ("tiny_7x5.png", (7, 5), "PNG"),
        ("sub/big.jpg", (250, 333), "JPEG"),  # JPEG in, JPEG out.
        ("gray.png", (80, 64), "PNG"),
    ):
        with Image.open(output / name) as image:
            assert image.size == size and image.mode == "RGB" and image.format == kind
    assert sorted(p.name for p in output.rglob("*") if p.is_file()) == ["big.jpg", "gray.png", "tiny_7x5.png"]


def test_output_keeps_the_inputs_full_resolution_lightness(trained_run, inputs, tmp_path):
    from skimage.color import rgb2lab

    output = tmp_path / "out"
    colorize.main(
        ["--workdir", str(trained_run), str(inputs / "sub" / "big.jpg"), "--output", str(output), "--format", "png"]
    )
    original = np.asarray(Image.open(inputs / "sub" / "big.jpg").convert("RGB")) / 255.0
    coloured = np.asarray(Image.open(output / "big.png")) / 255.0
    # Colour changes L only through gamut clipping and 8-bit rounding: detail survives at full resolution.
    lightness_error = np.abs(rgb2lab(original)[..., 0] - rgb2lab(coloured)[..., 0])
    assert np.median(lightness_error) < 1.0


def test_samples_and_side_by_side(trained_run, tmp_path):
    output = tmp_path / "out"
    assert colorize.main(["--workdir", str(trained_run), "samples", "--output", str(output), "--side-by-side"]) == 0
    chelsea = Image.open(output / "chelsea.png")
    side = Image.open(output / "chelsea_side.png")
    assert side.size[0] >= 2 * chelsea.size[0] and side.size[1] == chelsea.size[1]


def test_side_by_side_gray_is_the_gray_of_the_photos_lightness_and_files_are_plain(trained_run, tmp_path):
    import os
    import stat

    from colorjax import color
    from colorjax.inference import read_image

    save_photos(tmp_path / "in", ["x.png"])
    output = tmp_path / "out"
    old_mask = os.umask(0o027)
    try:
        argv = ["--workdir", str(trained_run), str(tmp_path / "in"), "--output", str(output), "--side-by-side"]
        assert colorize.main(argv) == 0
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old_mask)
    assert sorted(p.name for p in output.iterdir()) == ["x.png", "x_side.png"]  # no .partial, no temporary
    for name in ("x.png", "x_side.png"):  # the mode a plain open() gives under the umask, not mkstemp's 0600
        assert stat.S_IMODE(os.stat(output / name).st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    photo = read_image(tmp_path / "in" / "x.png")
    side = np.asarray(Image.open(output / "x_side.png"))
    width = photo.shape[1]
    assert side.shape == (photo.shape[0], 2 * width, 3)
    np.testing.assert_array_equal(side[:, width:], np.asarray(Image.open(output / "x.png")))
    want = color.gray_picture(color.rgb_to_lab(photo / np.float32(255.0))[..., :1])
    assert np.abs(side[:, :width].astype(int) - want).max() <= 1
    lightness_over_100 = np.round(np.asarray(color.rgb_to_lab(photo / np.float32(255.0)))[..., 0] * 2.55)
    assert np.abs(side[:, :width, 0] - lightness_over_100).max() > 3  # not the L / 100 gray of before


def test_a_failed_write_leaves_no_temporary_file(trained_run, tmp_path, capsys):
    save_photos(tmp_path / "in", ["x.png"])
    output = tmp_path / "out"
    (output / "x_side.png").mkdir(parents=True)  # the panel cannot be renamed onto a folder
    argv = ["--workdir", str(trained_run), str(tmp_path / "in"), "--output", str(output), "--side-by-side"]
    assert colorize.main([*argv, "--overwrite"]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in output.iterdir()) == ["x.png", "x_side.png"]
    assert list((output / "x_side.png").iterdir()) == []


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda run, tmp: ["--workdir", str(tmp / "missing"), "samples"], "does not exist"),
        (lambda run, tmp: ["--workdir", str(tmp), "samples"], "No checkpoint in"),
        (
            lambda run, tmp: ["--workdir", str(run), str(tmp / "nope.jpg")],
            "Input .*nope.jpg does not exist",
        ),
        (
            lambda run, tmp: ["--workdir", str(run), "--step", "999", "samples"],
            "No checkpoint for step 999",
        ),
    ],
)
def test_bad_input_is_one_line(trained_run, tmp_path, capsys, make_arguments, message):
    status = colorize.main([*make_arguments(trained_run, tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # a command that wrote nothing leaves no empty --output folder


def test_unwritable_output_is_one_line(trained_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status = colorize.main(["--workdir", str(trained_run), "samples", "--output", str(blocker / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and err.startswith("error: Cannot write to output folder") and len(err.splitlines()) == 1


def test_an_unreadable_single_file_is_reported(trained_run, inputs, tmp_path, capsys):
    status = colorize.main(
        [
            "--workdir",
            str(trained_run),
            str(inputs / "corrupt.jpg"),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert status == 1 and "Cannot read image" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ no file lost or overwritten


def files_below(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def save_photos(folder: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """Tiny photos, each of its own size (so an output's size tells which input it came from): name -> (w, h)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i, name in enumerate(names):
        sizes[name] = (12 + i, 10)
        Image.fromarray(make_photo(np.random.default_rng(i), 10, 12 + i)).save(folder / name)
    return sizes


def test_output_names_are_unique_and_predictable():
    plan = colorize.plan_outputs
    names = [Path(n) for n in ("a.jpg", "a.png", "img.1.jpg", "img.2.jpg", "photo.webp", "photo.tif", "sub/a.png")]
    targets = plan(names, ["png"] * len(names))
    assert [str(t.image) for t in targets] == [
        "a.jpg.png",  # a.jpg and a.png clash: both keep their whole file name ...
        "a.png.png",
        "img.1.png",  # ... the full stem is kept: img.1 and img.2 stay apart
        "img.2.png",
        "photo.webp.png",
        "photo.tif.png",
        "sub/a.png",  # another folder: no clash
    ]
    assert plan(names[::-1], ["png"] * len(names))[::-1] == targets  # The input order changes no name.
    # Case-insensitive file systems: A.png and a.png would be one file.
    assert [str(t.image) for t in plan([Path("A.jpg"), Path("a.png")], ["png", "png"])] == ["A.jpg.png", "a.png.png"]
    # A clash left after the whole names (a file named a.jpg.png) is numbered in sorted order.
    three = plan([Path("a.png"), Path("a.jpg.png"), Path("a.jpg")], ["png"] * 3)
    assert [str(t.image) for t in three] == ["a.png.png", "a.jpg_2.png", "a.jpg.png"]
    # Side-by-side panels take part: a.png's panel would be a_side.png's output.
    panels = plan([Path("a.png"), Path("a_side.png")], ["png", "png"], side_by_side=True)
    assert [(str(t.image), str(t.side)) for t in panels] == [
        ("a.png.png", "a.png_side.png"),
        ("a_side.png.png", "a_side.png_side.png"),
    ]
    assert [str(t.image) for t in plan([Path("a.jpg"), Path("a.png")], ["jpg", "png"])] == ["a.jpg", "a.png"]


def test_colliding_inputs_give_one_output_each(trained_run, tmp_path, capsys):
    names = ["a.jpg", "a.png", "img.1.jpg", "img.2.jpg", "photo.webp", "photo.tif"]
    sizes = save_photos(tmp_path / "in", names)
    output = tmp_path / "out"
    argv = ["--workdir", str(trained_run), str(tmp_path / "in"), "--output", str(output), "--format", "png"]
    assert colorize.main(argv) == 0
    assert "Colorized 6 image(s)" in capsys.readouterr().out
    expected = {
        "a.jpg.png": "a.jpg",
        "a.png.png": "a.png",
        "img.1.png": "img.1.jpg",
        "img.2.png": "img.2.jpg",
        "photo.webp.png": "photo.webp",
        "photo.tif.png": "photo.tif",
    }
    assert sorted(files_below(output)) == sorted(expected)
    for output_name, input_name in expected.items():
        with Image.open(output / output_name) as image:
            assert image.format == "PNG" and image.size == sizes[input_name], output_name
    # The default format: JPEG for JPEG inputs, PNG for the others; the JPEGs then need no whole names.
    assert colorize.main(argv[:-2] + ["--output", str(tmp_path / "default")]) == 0
    assert sorted(files_below(tmp_path / "default")) == sorted(
        ["a.jpg", "a.png", "img.1.jpg", "img.2.jpg", "photo.webp.png", "photo.tif.png"]
    )
    with Image.open(tmp_path / "default" / "img.2.jpg") as image:
        assert image.format == "JPEG" and image.size == sizes["img.2.jpg"]


@pytest.mark.parametrize(
    "output, extra",
    [
        ("", []),
        ("", ["--side-by-side"]),
        ("", ["--format", "jpg"]),  # x.png -> x.jpg clashes with no input: once accepted, coloured on reruns
        ("coloured", []),
        ("sub/deeper", []),
    ],
)
def test_an_output_folder_in_an_input_folder_stops_before_any_work(trained_run, tmp_path, capsys, output, extra):
    folder = tmp_path / "photos"
    save_photos(folder, ["x.png", "y.jpg"])
    before = files_below(folder)
    status = colorize.main(["--workdir", str(trained_run), str(folder), "--output", str(folder / output), *extra])
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1, err
    where = "is the input folder" if not output else "is inside the input folder"
    assert err.startswith("error: --output ") and f"{where} {folder}: a rerun would colour its own outputs" in err
    assert files_below(folder) == before  # Byte for byte, and nothing added.
    assert output == "" or not (folder / output).exists()


def test_an_output_beside_its_input_file_never_overwrites_it(trained_run, tmp_path, capsys):
    folder = tmp_path / "photos"
    save_photos(folder, ["x.png"])
    before = files_below(folder)
    status = colorize.main(["--workdir", str(trained_run), str(folder / "x.png"), "--output", str(folder)])
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1, err
    assert re.match(r"error: Writing .*x\.png would overwrite that input file", err), err
    assert files_below(folder) == before


def test_existing_outputs_are_skipped_unless_overwrite(trained_run, tmp_path, capsys):
    import os

    save_photos(tmp_path / "in", ["x.png", "y.jpg"])
    output = tmp_path / "out"
    argv = ["--workdir", str(trained_run), str(tmp_path / "in"), "--output", str(output), "--side-by-side"]
    assert colorize.main(argv) == 0
    first = files_below(output)
    assert sorted(first) == ["x.png", "x_side.png", "y.jpg", "y_side.jpg"]
    stamps = {name: os.stat(output / name).st_mtime_ns for name in first}
    capsys.readouterr()

    assert colorize.main(argv) == 0  # Skips are not failures.
    out = capsys.readouterr().out.splitlines()
    skips = [line for line in out if "skipped" in line and "--overwrite" in line]
    assert len(skips) == 3 and all(("x.png" in line) != ("y.jpg" in line) for line in skips[:2])
    assert out[-1].startswith("Colorized 0 image(s)") and "; 2 skipped" in out[-1] and "failed" not in out[-1]
    assert files_below(output) == first
    assert {name: os.stat(output / name).st_mtime_ns for name in first} == stamps

    (output / "x.png").write_bytes(b"an old, broken output")
    (output / "y_side.jpg").unlink()  # One of the two outputs of y is there: still skipped.
    assert colorize.main(argv) == 0
    assert (output / "x.png").read_bytes() == b"an old, broken output" and not (output / "y_side.jpg").exists()
    capsys.readouterr()
    assert colorize.main([*argv, "--overwrite"]) == 0
    assert "Colorized 2 image(s)" in capsys.readouterr().out
    assert files_below(output) == first  # Replaced with the same (deterministic) colouring.
    assert not [p for p in output.iterdir() if p.name.startswith(".")]  # No temporary file left.


def test_format_jpg_and_quality(trained_run, tmp_path, capsys):
    save_photos(tmp_path / "in", ["x.png"])
    sizes = {}
    for quality in ("30", "95"):
        output = tmp_path / quality
        argv = ["--workdir", str(trained_run), str(tmp_path / "in" / "x.png"), "--output", str(output)]
        assert colorize.main([*argv, "--format", "jpg", "--quality", quality]) == 0
        assert sorted(files_below(output)) == ["x.jpg"]
        with Image.open(output / "x.jpg") as image:
            assert image.format == "JPEG"
            sizes[quality] = (output / "x.jpg").stat().st_size
            luminance_table = image.quantization[0]
            # libjpeg scales the standard table (first entry 16) by 50/q (q < 50) or (2 - q/50).
            assert luminance_table[0] == {"30": 27, "95": 2}[quality]
    assert sizes["30"] < sizes["95"]
    for bad in (["--format", "png", "--quality", "80"], ["--quality", "0"]):
        with pytest.raises(SystemExit) as exit_code:
            colorize.main(["--workdir", str(trained_run), "samples", "--output", str(tmp_path / "no"), *bad])
        assert exit_code.value.code == 2
    assert "--quality takes 1-100 and applies to JPEG outputs" in capsys.readouterr().err


def test_a_folder_of_bad_inputs_colours_the_good_and_names_each_bad_file_once(trained_run, tmp_path, capsys):
    from helpers.bad_inputs import build_corpus

    from colorjax.data import decode

    cases = build_corpus(tmp_path / "bad inputs")
    output = tmp_path / "out"
    status = colorize.main(["--workdir", str(trained_run), str(tmp_path / "bad inputs"), "--output", str(output)])
    captured = capsys.readouterr()
    assert status == 1  # Some inputs failed; each of the others is written.
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    # Each rejected file (the folder named folder.jpg is a folder: walked, holding no image) once, on its line.
    rejected = [c for c in cases if not c.accepted and c.name != "folder.jpg"]
    for case in rejected:
        assert len([line for line in errors if str(case.path) in line]) == 1, (case.why, errors)
    assert len(errors) == len(rejected)
    accepted = [c for c in cases if c.accepted]
    written = files_below(output)
    assert len(written) == len(accepted)
    for case in accepted:
        name = case.name if case.name.endswith(".jpg") else Path(case.name).stem + ".png"
        height, width = decode.read_image(case.path, MAX_PIXELS).shape[:2]  # EXIF-rotated: upright
        with Image.open(output / name) as image:
            assert image.size == (width, height) and image.mode == "RGB", case.why
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith(f"Colorized {len(accepted)} image(s)") and last.endswith(f"; {len(rejected)} failed")


def grey_png_96mp(path: Path) -> Path:
    """A 12000 x 8000 (96 MP) grey PNG with a ramp, compressed row by row (never held whole here)."""
    import struct
    import zlib

    width, height = 12000, 8000
    row = b"\x00" + (np.arange(width) * 255 // (width - 1)).astype(np.uint8).tobytes()
    packer = zlib.compressobj(1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.slow
def test_a_96_megapixel_photo_is_refused_naming_the_flag_and_colours_with_it(trained_run, tmp_path, capsys):
    """The limit once came from base_config alone: its message advised config.data.max_pixels, which colorize
    cannot be given, and --max-pixels did not change it. (About 25 s and 4.7 GB of memory at its peak.)"""
    photo = grey_png_96mp(tmp_path / "large.png")
    argv = ["--workdir", str(trained_run), str(photo), "--output", str(tmp_path / "out")]
    assert colorize.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "large.png: 12000x8000 = 96000000 pixels, over the limit of 67108864 (--max-pixels; raise it" in err
    assert colorize.main([*argv, "--max-pixels", "100000000"]) == 0
    with Image.open(tmp_path / "out" / "large.png") as image:
        assert image.size == (12000, 8000) and image.mode == "RGB"
