"""The one reader of PyTorch weight files (`torch.save` output) into NumPy, without torch and without running code.

A `.pth` written by `torch.save` is a pickle whose tensors point at raw storages by key:

- the zip format (PyTorch >= 1.6): `<name>/data.pkl` (the pickle), `<name>/data/<key>` (one raw storage per key),
  `<name>/byteorder` ("little" or "big"; absent in old files, which are little-endian);
- the legacy format (older releases such as torchvision's 2017 VGG16): five pickles and the storages back to back
  in one stream (magic number, protocol version, system info, the object, the storage keys; then per storage an
  int64 element count and its bytes).

In both, a tensor is a call `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and a storage a
persistent id `("storage", torch.FloatStorage, key, location, numel)`. Pickle can name and call any importable
function, so a weights file opened with a plain `pickle.load` can run any code. `_RestrictedUnpickler` resolves
only the globals below, to functions of its own that build NumPy arrays, and refuses every other global in one
line naming it:

- `torch._utils._rebuild_tensor`, `_rebuild_tensor_v2`, `_rebuild_tensor_v3`, `_rebuild_parameter` (the tensor and
  `nn.Parameter` rebuilders; a parameter becomes its array);
- `torch.<Dtype>Storage` and `torch[.storage].UntypedStorage` (only as the storage type inside a persistent id), and the
  dtypes `torch.float32`, ... (`_rebuild_tensor_v3` names the dtype);
- `collections.OrderedDict` (a state dict), `builtins.set`/`frozenset`, and `_codecs.encode` (protocol 2's way of
  writing bytes; only the latin-1 round trip it needs).

Tensors come back as NumPy arrays of their own, writable and in C order (float32/float16/bfloat16 via `ml_dtypes`,
int*, uint8, bool, complex), laid out with the tensor's own strides and storage offset, so views and tensors sharing a
storage read exactly what torch's loader reads. Each storage is read once, straight from the file into a NumPy
buffer; a tensor that is its whole storage (every parameter of a state dict) is that buffer, any other tensor a copy
cut from it. So a file costs its own size in memory, not twice that (a 912 MB DDColor-L file read in a process
that imported JAX: 1.0 GiB peak RSS; 1.9 GiB when storages were read as bytes and every tensor copied out of them). `read_state_dict` is what the weight importers use.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from colorjax import ColorjaxError

# torch.save's legacy stream starts with this pickled number, then the protocol version.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage class name -> element dtype (torch's `_get_dtype_from_pickle_storage_type` table, as NumPy dtypes).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),
}

# torch dtype names -> NumPy dtypes (for `_rebuild_tensor_v3`, which names the dtype itself).
TORCH_DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64),
    "double": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "half": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int64": np.dtype(np.int64),
    "long": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "short": np.dtype(np.int16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
    "complex64": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
}

StateDict = dict[str, np.ndarray]
_READ_CHUNK = 16 << 20  # bytes read from the file at a time into a storage's buffer


class PthError(ColorjaxError, ValueError):
    """A weights file colorjax cannot (or will not) read; the message is one line naming the file."""


class _StorageType:
    """What `torch.FloatStorage` etc. resolve to: only a dtype, used inside a storage persistent id."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _TorchDtype:
    """What `torch.float32` etc. resolve to."""

    def __init__(self, name: str):
        self.dtype = TORCH_DTYPES[name]


class _Storage:
    """A storage's bytes (read lazily from the file) and its element dtype. `lent`: a tensor already took the
    whole buffer (`_Tensor.array`), so any other tensor of this storage gets a copy."""

    def __init__(self, key: str, dtype: np.dtype, numel: int, read: Any):
        self.key, self.dtype, self.numel = key, dtype, numel
        self._read = read
        self._data: np.ndarray | None = None
        self.lent = False

    def elements(self, dtype: np.dtype | None = None) -> np.ndarray:
        if self._data is None:
            self._data = self._read(self)
        return self._data if dtype is None else self._data.view(dtype)


class _Tensor:
    """A tensor as the pickle describes it; `array()` cuts it from its storage once the data is read."""

    def __init__(self, source, storage, storage_offset, size, stride, dtype, metadata):
        self.source, self.storage = source, storage
        self.offset = int(storage_offset)
        self.size, self.stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
        self.dtype = storage.dtype if dtype is None else dtype
        self.metadata = metadata

    def array(self) -> np.ndarray:
        size, stride, offset, dtype = self.size, self.stride, self.offset, self.dtype
        if any(n == 0 for n in size):
            return np.zeros(size, dtype)
        elements = self.storage.elements(dtype)
        end = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
        if offset < 0 or any(s < 0 for s in stride) or end > elements.size:
            raise PthError(
                f"{self.source}: a tensor of size {size} and stride {stride} at offset {offset} runs past "
                f"its storage of {elements.size} elements; the file is damaged."
            )
        if offset == 0 and size_of(size) == elements.size and _c_order(size, stride) and not self.metadata:
            if not self.storage.lent:  # the tensor is its whole storage: the buffer itself, no copy
                self.storage.lent = True
                return elements.reshape(size)
        view = np.lib.stride_tricks.as_strided(
            elements[offset:],
            shape=size,
            strides=tuple(s * dtype.itemsize for s in stride),
            writeable=False,
        )
        array = np.array(view, order="C")  # a copy that owns its memory
        if self.metadata:  # torch's lazy conjugate / negative bits
            if self.metadata.get("conj"):
                array = np.conj(array)
            if self.metadata.get("neg"):
                array = -array
        return array


def _materialize(value: Any) -> Any:
    """`value` with every `_Tensor` inside dicts, lists and tuples replaced by its array (containers in place,
    so an OrderedDict keeps its type and attributes)."""
    if isinstance(value, _Tensor):
        return value.array()
    if isinstance(value, dict):
        for key in value:
            value[key] = _materialize(value[key])
    elif isinstance(value, list):
        value[:] = [_materialize(item) for item in value]
    elif isinstance(value, tuple):
        return tuple(_materialize(item) for item in value)
    return value


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs (see the module docstring); every other global is refused.

    The callables handed to pickle are bound methods of this instance: pickle's BUILD cannot set attributes on
    them, and nothing outside this unpickler is ever reachable from the file.
    """

    def __init__(self, file: Any, source: str, storage_for: Any):
        super().__init__(file, encoding="utf-8")
        self.source = source
        self._storage_for = storage_for
        self._allowed = {
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("_codecs", "encode"): self._encode,
        }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[module, name]
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in TORCH_DTYPES:
            return _TorchDtype(name)
        raise PthError(
            f"{self.source} names {module}.{name}, which no tensor state dict needs; refused (colorjax reads "
            "only tensors from weights files and never runs code from them)."
        )

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not (isinstance(saved_id, tuple) and saved_id and _text(saved_id[0]) == "storage"):
            raise PthError(f"{self.source}: unknown persistent id {saved_id!r:.60}; not a tensor file.")
        storage_type, key = saved_id[1], _text(saved_id[2])
        numel = saved_id[4]
        if not isinstance(storage_type, _StorageType):
            raise PthError(f"{self.source}: storage {key} has no storage type; not a tensor file.")
        view = saved_id[5] if len(saved_id) > 5 else None  # legacy files only; never written since 2018
        if view is not None:
            raise PthError(f"{self.source}: storage views of the pre-2018 format are not supported.")
        return self._storage_for(key, storage_type.dtype, int(numel))

    # ----------------------------------------------------------------------------- the allowed callables
    def _rebuild_tensor(self, storage, storage_offset, size, stride, dtype=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise PthError(f"{self.source}: a tensor without a storage; not a tensor file.")
        # Legacy files store the data after the pickle: tensors are cut from their storages once all are read.
        return _Tensor(self.source, storage, storage_offset, size, stride, dtype, metadata)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
        return self._rebuild_tensor(storage, storage_offset, size, stride, metadata=metadata)

    def _rebuild_tensor_v3(
        self,
        storage,
        storage_offset,
        size,
        stride,
        requires_grad,
        backward_hooks,
        dtype,
        metadata=None,
    ):
        if not isinstance(dtype, _TorchDtype):
            raise PthError(f"{self.source}: a tensor with an unknown dtype {dtype!r:.40}.")
        return self._rebuild_tensor(storage, storage_offset, size, stride, dtype.dtype, metadata)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        return data

    def _encode(self, text: str, encoding: str = "utf-8") -> bytes:
        if encoding != "latin1":
            raise PthError(f"{self.source}: _codecs.encode with {encoding!r} refused.")
        return text.encode("latin1")


def _text(value: Any) -> Any:
    return value.decode("ascii") if isinstance(value, bytes) else value


def size_of(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _c_order(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Whether `stride` (in elements) lays `size` out contiguously in C order (dims of length 1 may have any)."""
    expected = 1
    for n, s in zip(reversed(size), reversed(stride), strict=True):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _read_into_array(stream: Any, nbytes: int) -> np.ndarray:
    """Up to `nbytes` bytes of `stream` read into a new writable uint8 array (shorter only where the stream ends)."""
    buffer = np.empty(nbytes, np.uint8)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        count = stream.readinto(view[filled : filled + _READ_CHUNK])
        if not count:
            return buffer[:filled]
        filled += count
    return buffer


def _elements(buffer: np.ndarray, dtype: np.dtype, big_endian: bool) -> np.ndarray:
    """A storage's bytes (a uint8 array) as a flat array of `dtype` in this machine's byte order (swapped in place)."""
    elements = buffer.view(dtype)
    if dtype.itemsize > 1 and big_endian != (sys.byteorder == "big"):
        elements.byteswap(inplace=True)
    return elements


def load(path: str | Path) -> Any:
    """The object `torch.save` wrote to `path`, with every tensor as a NumPy array.

    Raises FileNotFoundError for a missing file and a one-line PthError for a file that is not a PyTorch pickle, is
    damaged, or names a global outside the allowed few (see the module docstring).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {str(path)!r} not found.")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with path.open("rb") as file:
            return _load_legacy(file, str(path))
    except PthError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise PthError(
            f"{path} is not a readable PyTorch weights file ({type(error).__name__}: {error})".splitlines()[0]
        ) from None
    except (TypeError, AttributeError, IndexError) as error:
        raise PthError(f"{path}: unexpected content in the pickle ({error}).".splitlines()[0]) from None


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise PthError(
                f"{path} is a zip without <name>/data.pkl, so not a torch.save file "
                "(a TorchScript archive or another zip?)."
            )
        prefix = pickles[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = archive.read(prefix + "byteorder").strip() == b"big"

        def read(storage: _Storage) -> np.ndarray:
            member = f"{prefix}data/{storage.key}"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise PthError(f"{path} has no {member}; the file is damaged.") from None
            nbytes = storage.numel * storage.dtype.itemsize
            with archive.open(info) as stream:
                raw = _read_into_array(stream, nbytes)
            if raw.size < nbytes:
                raise PthError(
                    f"{path}: {member} holds {raw.size} bytes, its tensors need {nbytes}; the file is truncated."
                )
            return _elements(raw, storage.dtype, big_endian)

        storages: dict[str, _Storage] = {}

        def storage_for(key: str, dtype: np.dtype, numel: int) -> _Storage:
            if key not in storages:
                storages[key] = _Storage(key, dtype, numel, read)
            return storages[key]

        with archive.open(pickles[0]) as pickled:
            result = _RestrictedUnpickler(io.BytesIO(pickled.read()), str(path), storage_for).load()
        return _materialize(result)  # before the archive closes


def _load_legacy(file: Any, source: str) -> Any:
    """torch.save's pre-1.6 stream (`_use_new_zipfile_serialization=False`)."""

    def plain() -> Any:
        # The three header pickles hold only numbers and a dict of them: no global is allowed there either.
        return _RestrictedUnpickler(file, source, _no_storage).load()

    try:
        magic = plain()
    except (pickle.UnpicklingError, EOFError, ValueError):
        raise PthError(
            f"{source} is neither a zip nor a legacy torch.save stream; not a PyTorch weights file."
        ) from None
    if magic != _LEGACY_MAGIC:
        raise PthError(f"{source} does not start with torch.save's magic number; not a PyTorch file.")
    if plain() != _LEGACY_PROTOCOL:
        raise PthError(f"{source}: unknown legacy torch.save protocol version.")
    sys_info = plain()
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    storages: dict[str, _Storage] = {}

    def storage_for(key: str, dtype: np.dtype, numel: int) -> _Storage:
        if key not in storages:
            storages[key] = _Storage(key, dtype, numel, _unread)
        return storages[key]

    result = _RestrictedUnpickler(file, source, storage_for).load()
    keys = plain()
    for key in keys:
        storage = storages.get(_text(key))
        if storage is None:
            raise PthError(f"{source}: storage {key!r} is listed but never used; the file is damaged.")
        header = file.read(8)
        if len(header) < 8:
            raise PthError(f"{source} ends before storage {key}; the file is truncated.")
        count = struct.unpack("<q" if not big_endian else ">q", header)[0]
        nbytes = count * storage.dtype.itemsize
        raw = _read_into_array(file, nbytes)
        if raw.size < nbytes:
            raise PthError(f"{source} ends inside storage {key}; the file is truncated.")
        storage._data = _elements(raw, storage.dtype, big_endian)
    return _materialize(result)


def _no_storage(key, dtype, numel):
    raise PthError("a tensor in a torch.save header; not a PyTorch weights file.")


def _unread(storage: _Storage) -> np.ndarray:
    raise PthError(f"storage {storage.key} was used before the file's data was read.")


def read_state_dict(path: str | Path) -> StateDict:
    """{key: array} of a weights file: a `torch.save(state_dict)` `.pth`/`.pt`/`.bin` (read by `load`, no torch),
    or an `.npz` of the same arrays.

    A training checkpoint's `{"state_dict": ...}`, BasicSR's `{"params": ...}` (`save_network`, as in the
    DDColor-models files) and Meta's `{"model": ...}` (the ConvNeXt release) are unwrapped, `nn.DataParallel`'s "module." prefix dropped and non-tensor entries left
    out. A one-line PthError when the file holds no tensors.
    """
    path = Path(path).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"Weights file {str(path)!r} not found.")
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile) as error:
            raise PthError(f"Could not read {path} as an .npz state dict: {error}") from None
    state = load(path)
    for wrapper in ("state_dict", "params", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise PthError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    arrays = {str(key).removeprefix("module."): value for key, value in state.items() if isinstance(value, np.ndarray)}
    if not arrays:
        raise PthError(f"{path} holds a dict without tensors, not a state dict.")
    return arrays
