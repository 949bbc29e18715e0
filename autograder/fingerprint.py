"""A hashable fingerprint of what a function computes: the key under which a notebook's
checks reuse a compiled reference.

A jitted reference bakes in what its function read when it was traced: its code,
defaults and captured values, the globals it names, and so on through the user's own
functions it calls. The fingerprint is all of that (an array by its contents, a
library function or a module by identity), so a reference is reused only while
nothing it read has changed: a redefined ``f``, a reassigned global or an array
changed in place gives another fingerprint. ``of`` gives None for what it cannot see
into (an arbitrary object, a bound method): then nothing is reused.
"""

from __future__ import annotations

import functools
import hashlib
import os
import site
import sysconfig
import types

import jax
import numpy as np

_DEPTH = 8
_SCALARS = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))


def _library_folders() -> tuple[str, ...]:
    """Where the standard library, installed packages and this package live: their
    functions count by identity (they do not change); others (a notebook cell, a test)
    are looked into."""
    found = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {found[k] for k in keys if k in found}
    paths |= set(site.getsitepackages()) | {os.path.dirname(os.path.abspath(__file__))}
    folders = {os.path.join(q, "") for p in paths if p and os.path.isdir(p)
               for q in (p, os.path.realpath(p))}
    return tuple(sorted(folders)) + ("<frozen",)


_LIBRARY = _library_folders()


class _Unkeyable(Exception):
    pass


class _Ref:
    """Stands for an object by identity; keeps it alive, so its id is not reused."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Ref) and other.obj is self.obj


def of(value) -> tuple | None:
    """The fingerprint of ``value`` (a function, or a tuple of them and plain values),
    or None."""
    try:
        return ("fingerprint", _fp(value, 0, frozenset()))
    except (_Unkeyable, RecursionError):
        return None


def _fp(value, depth: int, path: frozenset):
    if depth > _DEPTH:
        raise _Unkeyable
    deeper = functools.partial(_fp, depth=depth + 1, path=path)
    if isinstance(value, _SCALARS):
        return (type(value), value)
    if isinstance(value, (np.ndarray, np.generic)):
        return _array(value)
    if isinstance(value, jax.Array):      # immutable
        return _Ref(value)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(deeper(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((deeper(k), deeper(v)) for k, v in value.items()))
    if isinstance(value, (types.ModuleType, type)):
        return _Ref(value)
    if isinstance(value, functools.partial):
        return ("partial", deeper(value.func), deeper(value.args),
                deeper(value.keywords))
    if isinstance(value, types.FunctionType):
        return _function(value, depth, path)
    if callable(value):
        return _callable(value, deeper)
    raise _Unkeyable


def _array(value) -> tuple:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufc":
        raise _Unkeyable
    data = np.ascontiguousarray(arr).tobytes()
    if len(data) > 256:
        data = hashlib.blake2b(data, digest_size=20).digest()
    return ("array", type(value), arr.dtype.str, arr.shape, data)


def _callable(value, deeper) -> tuple:
    """A library callable (jax.jit's wrapper, a ufunc, a custom_jvp): by identity, plus
    the user's functions it wraps. An object's method is not keyed: its state may
    change."""
    owner = getattr(value, "__self__", None)
    if owner is not None and not isinstance(owner, (types.ModuleType, type)):
        raise _Unkeyable
    inner = tuple(deeper(getattr(value, attr))
                  for attr in ("__wrapped__", "jvp", "fwd", "bwd")
                  if callable(getattr(value, attr, None)))
    return ("callable", _Ref(value), inner)


def _function(fn: types.FunctionType, depth: int, path: frozenset) -> tuple:
    code = fn.__code__
    if code.co_filename.startswith(_LIBRARY):
        return _Ref(fn)
    if id(fn) in path:    # recursion: already being described further up
        return ("recursive", code)
    deeper = functools.partial(_fp, depth=depth + 1, path=path | {id(fn)})
    scope = fn.__globals__
    return ("function", code,   # code objects compare by content
            deeper(fn.__defaults__), deeper(fn.__kwdefaults__),
            tuple(deeper(_cell(c)) for c in fn.__closure__ or ()),
            tuple((name, deeper(scope[name]))
                  for name in _global_names(code) if name in scope))


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:     # not yet assigned
        return Ellipsis


@functools.lru_cache(maxsize=1024)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """Names ``code`` (or a function or comprehension inside it) may read as globals: a
    superset, since attribute names are listed too."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_global_names(const))
    return tuple(sorted(names))
