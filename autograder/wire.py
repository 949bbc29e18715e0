"""The values that travel between the trusted driver and a student's kernel, as JSON-safe data.

Both ends encode with :func:`encode`. The trusted end decodes what a kernel sends only through :func:`decode`,
which defends against hostile replies: it accepts plain data (arrays of an allowed dtype, numbers, strings,
lists, tuples, string-keyed dicts, None), never pickles or code, and refuses anything deeper, longer or larger
than its limits (:class:`WireError` says why).
"""

from __future__ import annotations

import base64
import math

import numpy as np

MAX_ELEMENTS = 1 << 20        # numbers in one array
MAX_ITEMS = 10_000            # entries of one list, tuple or dict
MAX_DEPTH = 8
MAX_STRING = 10_000           # characters of one string
DTYPES = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
          "<f2", "<f4", "<f8", "<c8", "<c16"}


class WireError(ValueError):
    """A value that cannot cross (too large, too deep, an unknown kind)."""


def encode(value, depth: int = 0):
    """Plain data as JSON-safe dicts; raises WireError for anything else (a module, an object, a generator)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise WireError(f"a string of {len(value)} characters (at most {MAX_STRING})")
    if value is None or isinstance(value, (bool, str)):
        return {"v": value}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"v": value} if abs(value) < 2**63 else {"v": float(value)}
    if isinstance(value, float):
        return {"v": value} if math.isfinite(value) else {"f": repr(value)}
    if isinstance(value, complex):
        return encode(np.complex128(value), depth)
    if isinstance(value, (list, tuple, dict)) and len(value) > MAX_ITEMS:
        raise WireError(f"a {type(value).__name__} of {len(value)} items (at most {MAX_ITEMS})")
    if isinstance(value, (list, tuple)):
        return {"t" if isinstance(value, tuple) else "l": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("a dict with keys that are not strings")
        return {"d": {k: encode(v, depth + 1) for k, v in value.items()}}
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise WireError(f"a {type(value).__name__} cannot be sent: {type(exc).__name__}") from None
    if arr.dtype.kind not in "biufc" or arr.dtype.newbyteorder("<").str not in DTYPES:
        if arr.dtype.name == "bfloat16":
            arr = arr.astype(np.float32)
            return {"a": _raw(arr), "dtype": "bfloat16"}
        raise WireError(f"a {type(value).__name__} of dtype {arr.dtype} cannot be sent")
    if arr.size > MAX_ELEMENTS:
        raise WireError(f"an array of {arr.size} numbers (at most {MAX_ELEMENTS})")
    return {"a": _raw(arr)}


def _raw(arr: np.ndarray) -> dict:
    arr = np.array(arr, dtype=arr.dtype.newbyteorder("<"), order="C")  # keeps 0-d arrays 0-d
    return {"dtype": arr.dtype.str, "shape": list(arr.shape),
            "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode(data, depth: int = 0):
    """The value ``data`` encodes, checked against the limits (the trusted end's only way in)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise WireError("malformed value")
    if "v" in data:
        v = data["v"]
        if v is None or isinstance(v, bool) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            return v
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise WireError(f"a string of {len(v)} characters (at most {MAX_STRING})")
            return v
        raise WireError("malformed value")
    if "f" in data:
        if data["f"] not in ("nan", "inf", "-inf"):
            raise WireError("malformed number")
        return float(data["f"])
    for key, kind in (("l", list), ("t", tuple)):
        if key in data:
            items = data[key]
            if not isinstance(items, list) or len(items) > MAX_ITEMS:
                raise WireError(f"a {kind.__name__} that is malformed or longer than {MAX_ITEMS}")
            return kind(decode(v, depth + 1) for v in items)
    if "d" in data:
        items = data["d"]
        if not isinstance(items, dict) or len(items) > MAX_ITEMS:
            raise WireError(f"a dict that is malformed or longer than {MAX_ITEMS}")
        if any(not isinstance(k, str) or len(k) > 200 for k in items):
            raise WireError("a dict with a malformed key")
        return {k: decode(v, depth + 1) for k, v in items.items()}
    if "a" in data:
        return _array(data["a"], data.get("dtype"))
    raise WireError("malformed value")


def _array(raw, label) -> np.ndarray:
    if not isinstance(raw, dict):
        raise WireError("malformed array")
    dtype, shape, b64 = raw.get("dtype"), raw.get("shape"), raw.get("b64")
    if dtype not in DTYPES:
        raise WireError("an array of an unsupported dtype")
    if not isinstance(shape, list) or len(shape) > MAX_DEPTH or \
            not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ELEMENTS for n in shape):
        raise WireError("an array of a malformed shape")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise WireError(f"an array of {count} numbers (at most {MAX_ELEMENTS})")
    if not isinstance(b64, str) or len(b64) > 4 * (count * np.dtype(dtype).itemsize + 2) // 3 + 4:
        raise WireError("an array whose data does not match its shape")
    try:
        buf = base64.b64decode(b64, validate=True)
        arr = np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape).copy()
    except (ValueError, TypeError):
        raise WireError("an array whose data does not match its shape") from None
    if label == "bfloat16":
        arr.flags.writeable = True
        return _Labelled(arr, "bfloat16")
    return arr


class _Labelled(np.ndarray):
    """An array that arrived in a dtype numpy lacks (bfloat16), kept with its name for the diagnosis."""

    def __new__(cls, arr, label):
        obj = np.asarray(arr).view(cls)
        obj.wire_dtype = label
        return obj

