"""Read torch's legacy (pre-zip) .pth checkpoint format with numpy only, no torch.

The legacy format is a run of pickles: magic number, protocol version, system info, the
object itself (whose tensors are ``torch._utils._rebuild_tensor_v2`` over persistent-id
storages), then the list of storage keys; after that, each storage's raw little-endian data
prefixed by its element count as int64, in the order of that list. A restricted unpickler
allows only the few names a state dict needs, so a hostile file cannot run code.
"""
import collections
import pickle

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *_rest: _Tensor(storage, offset, size, stride)
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return pid


def load_state_dict(path):
    """Return an ordered dict name -> numpy array."""
    with open(path, "rb") as f:
        if _Unpickler(f).load() != MAGIC:
            raise ValueError(f"{path}: not a legacy torch file (bad magic)")
        if _Unpickler(f).load() != PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol")
        sysinfo = _Unpickler(f).load()
        if not sysinfo.get("little_endian", False):
            raise ValueError(f"{path}: big-endian file")
        obj = _Unpickler(f).load()
        keys = _Unpickler(f).load()
        # Storage types by key, from the tensors that refer to them.
        types = {}
        for t in obj.values():
            types[t.storage[2]] = t.storage[1]
        storages = {}
        for key in keys:
            n = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            dt = np.dtype(_DTYPES[types[key]]).newbyteorder("<")
            storages[key] = np.frombuffer(f.read(n * dt.itemsize), dtype=dt)
            if storages[key].size != n:
                raise ValueError(f"{path}: truncated storage {key}")
    out = collections.OrderedDict()
    for name, t in obj.items():
        data = storages[t.storage[2]]
        item = data.itemsize
        arr = np.lib.stride_tricks.as_strided(
            data[t.offset:], shape=t.size, strides=[s * item for s in t.stride]
        )
        out[name] = np.array(arr)  # contiguous copy
    return out
