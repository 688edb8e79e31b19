"""colorjax.files, the one file writer: whole files or nothing, no temporary left behind, the mode open() gives."""

import io
import os
import stat
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from colorjax import files


@pytest.fixture
def umask():
    """Sets the process umask for one test (and puts the old one back)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_leaves_only_the_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    assert files.atomic_write(target, '{"a": 1}\n') == target
    assert target.read_bytes() == b'{"a": 1}\n'
    files.atomic_write(target, b"replaced")
    assert target.read_bytes() == b"replaced"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "sub"]


def test_an_exception_in_the_middle_leaves_nothing(tmp_path):
    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="encoder died"), files.atomic_path(target) as temporary:
        temporary.write_bytes(b"half a video")
        raise RuntimeError("encoder died")
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"the old one")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"] and target.read_bytes() == b"the old one"


def test_a_failed_write_or_rename_leaves_no_temporary(tmp_path, monkeypatch):
    class HalfWritten:
        """A file whose write stores half of the data, then fails (a full disk)."""

        def __init__(self, path, mode):
            self.file = open(path, mode)  # noqa: SIM115 - closed in __exit__

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            seen.extend(p.name for p in tmp_path.iterdir())
            raise OSError(28, "No space left on device")

    seen = []
    monkeypatch.setattr(files, "open", HalfWritten, raising=False)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write(tmp_path / "a.png", b"0123456789")
    assert len(seen) == 1 and seen[0].startswith(".a.png.")  # the half-written temporary existed...
    assert list(tmp_path.iterdir()) == []  # ...and is gone
    monkeypatch.undo()

    def refuse(source, destination):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(PermissionError):
        files.atomic_write(tmp_path / "a.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_are_unique_hidden_and_keep_the_suffix(tmp_path):
    target = tmp_path / "clip.mp4"
    with files.atomic_path(target) as first, files.atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.name.startswith(".clip.mp4.") and first.suffix == ".mp4"
        assert not first.exists() and not second.exists()  # the writer creates them
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the outer block ends last: its file is the one kept
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert files.temporary_name(tmp_path / "a.json", suffix=".png").suffix == ".png"
    long = files.temporary_name(tmp_path / ("é" * 200 + ".png"))
    assert len(long.name.encode()) < 255 and long.suffix == ".png"


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_mode_plain_open_gives(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w") as handle:
        handle.write("x")
    files.atomic_write(tmp_path / "atomic.txt", "x")
    files.save_png(np.zeros((2, 2, 3), np.uint8), tmp_path / "image.png")
    with files.atomic_path(tmp_path / "streamed.bin") as temporary:
        temporary.write_bytes(b"x")
    with files.atomic_path(tmp_path / "folder") as temporary:
        temporary.mkdir()
        (temporary / "inside").write_text("x")
    os.mkdir(tmp_path / "plain_folder")
    want = mode(tmp_path / "plain")
    assert want == 0o666 & ~mask
    for name in ("atomic.txt", "image.png", "streamed.bin", "folder/inside"):
        assert mode(tmp_path / name) == want, name
    assert mode(tmp_path / "folder") == mode(tmp_path / "plain_folder") == 0o777 & ~mask


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "config.json"
    target.write_text("{}")
    os.chmod(target, 0o640)
    files.write_json(target, {"a": 1})
    assert mode(target) == 0o640 and target.read_text() == '{\n  "a": 1\n}\n'


def test_atomic_path_removes_a_half_written_folder(tmp_path):
    target = tmp_path / "onnx" / "key"
    with pytest.raises(ValueError, match="export failed"), files.atomic_path(target) as staging:
        staging.mkdir()
        (staging / "model.onnx").write_bytes(b"half")
        (staging / "sub").mkdir()
        (staging / "sub" / "more").write_bytes(b"x")
        raise ValueError("export failed")
    assert not (tmp_path / "onnx").exists()  # nor the folder made for it (an empty onnx/ cache was left)

    with files.atomic_path(target) as staging:
        staging.mkdir()
        (staging / "model.onnx").write_bytes(b"whole")
    assert (target / "model.onnx").read_bytes() == b"whole"
    # A second writer losing the race to a finished folder: its rename fails and its folder is removed.
    with pytest.raises(OSError), files.atomic_path(target) as staging:
        staging.mkdir()
        (staging / "model.onnx").write_bytes(b"late")
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["key"]
    assert (target / "model.onnx").read_bytes() == b"whole"


def test_staged_path_commit_and_discard(tmp_path):
    staged = files.StagedPath(tmp_path / "out.mp4", suffix=".mp4")
    staged.temporary.write_bytes(b"video")
    assert staged.commit() == tmp_path / "out.mp4" and (tmp_path / "out.mp4").read_bytes() == b"video"
    staged = files.StagedPath(tmp_path / "other.mp4")
    staged.temporary.write_bytes(b"half")
    staged.discard()
    staged.discard()  # twice, or when nothing was written: no error
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_images_round_trip_in_both_formats(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    files.write_image(rgb, tmp_path / "a.png")
    files.write_image(rgb, tmp_path / "b.jpg", quality=90)
    with Image.open(tmp_path / "a.png") as png, Image.open(tmp_path / "b.jpg") as jpg:
        assert png.format == "PNG" and jpg.format == "JPEG"
        np.testing.assert_array_equal(np.asarray(png), rgb)
    with pytest.raises(files.OutputError, match="Unknown image format"):
        files.encode_image(rgb, "gif")


@pytest.mark.parametrize("deflater", ["isal", "zlib"])  # where the isal package is installed, and where it is not
@pytest.mark.parametrize("piece_bytes", [1, 40, 4 << 20])  # a piece per row, a few rows, the whole image
@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (33, 17), (1, 9), (12, 4, 1)])
def test_png_encoding_is_lossless_in_any_number_of_pieces(shape, piece_bytes, deflater, monkeypatch):
    monkeypatch.setattr(files, "PNG_PIECE_BYTES", piece_bytes)
    if deflater == "zlib":
        monkeypatch.setitem(sys.modules, "isal", None)  # `import isal` raises ImportError
    assert files._deflater()[0].__name__.split(".")[0] == deflater
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] = pixels[:1]  # runs of equal rows, which the Up filter turns into zeros
    png = files.encode_png(pixels)
    with Image.open(io.BytesIO(png)) as image:
        image.load()  # Pillow checks every chunk's CRC; zlib checks the stream's Adler-32
        rgb = len(shape) == 3 and shape[-1] == 3
        assert image.mode == ("RGB" if rgb else "L") and image.info == {}  # no metadata
        np.testing.assert_array_equal(np.asarray(image), pixels if rgb else pixels.reshape(shape[:2]))
    chunks, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    assert len(kinds) - 2 == -(-shape[0] // max(1, piece_bytes // (int(np.prod(shape[1:])) + 1)))  # one per piece
    stream = b"".join(data for kind, data in chunks if kind == b"IDAT")
    assert zlib.decompress(stream)  # one valid zlib stream, whatever the pieces
    with pytest.raises(ValueError, match="uint8"):
        files.encode_png(pixels.astype(np.float32))


def test_check_writable(tmp_path):
    files.check_writable(tmp_path / "new" / "folder")
    assert list((tmp_path / "new" / "folder").iterdir()) == []
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(files.OutputError, match="choose another --output"):
        files.check_writable(tmp_path / "a_file" / "below")


def test_a_png_is_written_as_it_is_deflated_and_whole_or_not_at_all(tmp_path, monkeypatch):
    """`write_image` streams a PNG's chunks into the file (`write_png`): the same bytes as `encode_png`, and a
    photo that cannot be written leaves neither the file nor a temporary behind."""
    monkeypatch.setattr(files, "PNG_PIECE_BYTES", 64)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 9, 3), dtype=np.uint8)
    written = files.write_image(rgb, tmp_path / "out" / "photo.png")
    assert written.read_bytes() == files.encode_png(rgb) and written.read_bytes().count(b"IDAT") > 1
    with pytest.raises(ValueError, match="uint8"):
        files.write_image(rgb.astype(np.float32), tmp_path / "out" / "bad.png")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["photo.png"]
