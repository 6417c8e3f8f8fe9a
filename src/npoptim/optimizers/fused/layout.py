"""Where NumPy keeps an ndarray's header fields, read by the compiled header checks."""

from __future__ import annotations

import ctypes
import pickle

import numpy as np

__all__ = ["ndarray_layout"]

_layout: np.ndarray | None = None


def ndarray_layout() -> np.ndarray | None:
    """Byte offsets of (ob_type, data, nd, dimensions, descr, flags) in an ndarray object
    and of (type_num, byteorder) in a dtype object.

    These are fields of NumPy's public C structs ``PyArrayObject_fields`` and
    ``PyArray_Descr`` (unchanged from NumPy 1.x to 2.x); the offsets are derived
    from the running interpreter and verified against Python-level attributes of
    several arrays and dtypes.  ``None`` if anything disagrees (then the fast
    path is never used).
    """
    global _layout
    if _layout is not None:
        return _layout if _layout.size else None
    ptr = ctypes.sizeof(ctypes.c_void_p)
    o_type = object.__basicsize__ - ptr  # ob_type is the last field of PyObject
    o_data = object.__basicsize__
    offsets = [o_type, o_data, o_data + ptr, o_data + 2 * ptr, o_data + 5 * ptr, o_data + 6 * ptr]
    offsets += [o_data + ptr + 4, o_data + ptr + 2]  # dtype: type_num (int), byteorder (char)
    offsets += [tuple.__basicsize__]  # tuple: first item pointer
    layout = np.array(offsets, np.int64)
    samples = [
        np.zeros((3, 5), np.float32),
        np.zeros(7, np.float64)[::2],
        np.zeros((2, 3, 4), np.float64, order="F"),
        np.zeros(0, np.float32),
        np.array(1.0),
    ]
    samples[2].flags.writeable = False
    ok = True
    for a in samples:
        base = id(a)
        dims = ctypes.c_void_p.from_address(base + int(layout[3])).value or 0
        ok = ok and (
            ctypes.c_void_p.from_address(base + int(layout[0])).value == id(type(a))
            and ctypes.c_void_p.from_address(base + int(layout[1])).value == a.__array_interface__["data"][0]
            and ctypes.c_int.from_address(base + int(layout[2])).value == a.ndim
            and all(ctypes.c_ssize_t.from_address(dims + 8 * j).value == s for j, s in enumerate(a.shape))
            and ctypes.c_void_p.from_address(base + int(layout[4])).value == id(a.dtype)
            and ctypes.c_int.from_address(base + int(layout[5])).value == a.flags.num
        )
    for dt in (np.dtype(np.float32), np.dtype(">f8"), pickle.loads(pickle.dumps(np.dtype(np.float64)))):
        ok = ok and (
            ctypes.c_int.from_address(id(dt) + int(layout[6])).value == dt.num
            and ctypes.c_char.from_address(id(dt) + int(layout[7])).value == dt.byteorder.encode()
        )
    sample = tuple(samples)
    ok = ok and all(
        ctypes.c_void_p.from_address(id(sample) + int(layout[8]) + ptr * i).value == id(a) for i, a in enumerate(sample)
    )
    _layout = layout if ok and ptr == 8 else np.zeros(0, np.int64)
    return _layout if _layout.size else None
