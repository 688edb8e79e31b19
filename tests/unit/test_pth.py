"""colorjax.pth: PyTorch weight files read without torch, checked against torch's own loader."""

import collections
import os
import sys

import numpy as np
import pytest

from colorjax.weights import pth


def random_state_dict(torch):
    """Tensors of several dtypes, plus views that share one storage (a transpose, a strided slice, an offset)."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=generator)
    return collections.OrderedDict(
        float32=torch.randn(3, 4, 5, generator=generator),
        float16=torch.randn(7, generator=generator).half(),
        bfloat16=torch.randn(2, 3, generator=generator).bfloat16(),
        float64=torch.randn(2, 2, generator=generator).double(),
        int64=torch.randint(-(2**40), 2**40, (5,), generator=generator),
        int32=torch.randint(-1000, 1000, (3,), generator=generator, dtype=torch.int32),
        uint8=torch.randint(0, 255, (6,), generator=generator, dtype=torch.uint8),
        bool=torch.randn(4, generator=generator) > 0,
        scalar=torch.tensor(3.5),
        empty=torch.zeros(0, 3),
        shared=base,
        transposed=base.t(),
        strided=base[1:, ::2],
        offset_row=base[2],
    )


def torch_to_numpy(torch, tensor) -> np.ndarray:
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_what_torch_reads(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    state = random_state_dict(torch)
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    reference = torch.load(path, map_location="cpu", weights_only=True)

    ours = pth.load(path)
    assert isinstance(ours, collections.OrderedDict) and list(ours) == list(reference)
    for key, tensor in reference.items():
        array = ours[key]
        expected = torch_to_numpy(torch, tensor)
        assert array.shape == expected.shape, key
        if key == "bfloat16":
            assert array.dtype.name == "bfloat16"
            array = array.astype(np.float32)
        else:
            assert array.dtype == expected.dtype, key
        np.testing.assert_array_equal(array, expected, err_msg=key)
    # Views come back as arrays of their own (C order), with the values of the view, not of the whole storage.
    assert ours["transposed"].flags.c_contiguous and ours["transposed"].shape == (6, 4)
    np.testing.assert_array_equal(ours["transposed"], ours["shared"].T)
    np.testing.assert_array_equal(ours["strided"], ours["shared"][1:, ::2])


def test_reads_a_module_state_dict_and_parameters_without_torch(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "checkpoint.pt")
    torch.save({"weight": torch.nn.Parameter(torch.ones(2))}, tmp_path / "parameter.pth")
    expected = {k: v.numpy() for k, v in model.state_dict().items()}

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    for name in ("model.pth", "checkpoint.pt"):
        state = pth.read_state_dict(tmp_path / name)
        assert list(state) == list(expected)  # "module." dropped, {"state_dict": ...} unwrapped
        for key, value in expected.items():
            np.testing.assert_array_equal(state[key], value)
    assert state["1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(pth.load(tmp_path / "parameter.pth")["weight"], [1.0, 1.0])


class RunsCode:
    """What an attacker would put in a weights file: unpickling it calls os.system."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_pickle_naming_any_other_global_is_refused_in_one_line(tmp_path, capfd, zip_format):
    torch = pytest.importorskip("torch")
    path = tmp_path / "evil.pth"
    torch.save(
        {"weight": torch.zeros(2), "payload": RunsCode()},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(pth.PthError) as error:
        pth.load(path)
    message = str(error.value)
    assert "\n" not in message
    assert f"{path} names posix.system" in message or f"{path} names nt.system" in message
    assert "refused" in message
    assert "this must never run" not in capfd.readouterr().out


def test_files_that_are_not_pytorch_weights_are_one_line_errors(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(pth.PthError, match=r"text.pth is neither a zip nor a legacy torch.save"):
        pth.load(tmp_path / "text.pth")
    import zipfile

    with zipfile.ZipFile(tmp_path / "other.pth", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(pth.PthError, match=r"other.pth is a zip without <name>/data.pkl"):
        pth.load(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        pth.load(tmp_path / "missing.pth")


def test_a_truncated_file_is_an_error_not_a_short_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.randn(1000)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(pth.PthError, match="truncated"):
        pth.load(path)


PEAK_RSS_SCRIPT = """
import sys
from colorjax.weights import pth

def peak_rss():  # VmHWM, not getrusage: a child's ru_maxrss starts at its parent's (pytest's) high-water mark
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

before = peak_rss()
state = pth.read_state_dict(sys.argv[1])
assert all(array.flags.writeable and array.flags.c_contiguous for array in state.values())
print(peak_rss() - before)
"""


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_file_costs_its_size_in_memory_once(tmp_path, zip_format):
    """Storages are read straight into the arrays a state dict's tensors become: reading a 96 MB file grows the
    peak RSS of a fresh process by about 96 MB, not twice that (bytes, then a copy of each tensor)."""
    import subprocess

    if not sys.platform.startswith("linux"):
        pytest.skip("reads the peak RSS from /proc/self/status")
    torch = pytest.importorskip("torch")
    state = {f"w{i}": torch.randn(4096, 2048) for i in range(3)}  # 3 x 32 MiB
    path = tmp_path / "big.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    size = path.stat().st_size
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, str(path)], capture_output=True, text=True, check=True, timeout=300
    )
    grown = int(result.stdout.split()[-1])
    assert grown < 1.25 * size, (grown, size)
