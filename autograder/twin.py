"""The twin of a function: equal to it at one point, with other derivatives there (DESIGN.md, principle 4).

    f̃(y) = f(y) + u · (exp(⟨s, y − c⟩) − 1)

is equal to f at the centre c (exactly: exp(0) − 1 = 0 in floating point) and every derivative of f̃ at c differs
from f's by u·s⊗…⊗s, which is not zero. A hand-derived formula that evaluates f only at the query point cannot
tell f̃ from f; autodiff, finite differences, complex steps and library derivatives all follow f̃. The grader uses
this on both sides: in the student's kernel to call the answer with f swapped, and in the driver to compute what
an answer that follows f would give.

The swap changes the function *object* (its ``__code__``; for a ``jax.jit`` wrapper, the function it wraps, run
under ``jax.disable_jit()``), so aliases of f and compiled functions built on it see the twin as well.
"""

from __future__ import annotations

import contextlib
import inspect
import types

import numpy as np


def _entry(*args, _vc4ml_twin=None, **kwargs):  # the code a swapped function runs: its twin
    return _vc4ml_twin(*args, **kwargs)


def phi(values, centre, slopes):
    """exp(Σᵢ⟨sᵢ, yᵢ − cᵢ⟩) − 1, traceable by JAX. An argument with extra leading axes is a batch of points
    (a vectorised finite difference, a quadrature): the result then has those axes. None when an argument's
    shape is neither the centre's nor a batch of it."""
    import jax.numpy as jnp

    total = 0.0
    for y, c, s in zip(values, centre, slopes):
        y, c, s = jnp.asarray(y), jnp.asarray(c), jnp.asarray(s)
        if y.ndim < c.ndim or y.shape[y.ndim - c.ndim:] != c.shape:
            return None
        axes = tuple(range(y.ndim - c.ndim, y.ndim))
        total = total + jnp.sum(s * (y - c), axis=axes)
    return jnp.exp(total) - 1.0


def _concrete_phi(values, centre, slopes):
    """phi in numpy when every argument is a concrete array (no JAX trace): no compilation, exactly 0 at c."""
    try:
        arrays = [np.asarray(y) for y in values]
    except Exception:
        return None
    if any(a.dtype == object for a in arrays):
        return None
    total = 0.0
    for y, c, s in zip(arrays, centre, slopes):
        c, s = np.asarray(c), np.asarray(s)
        if y.ndim < c.ndim or y.shape[y.ndim - c.ndim:] != c.shape:
            return None
        total = total + np.sum(s * (y - c), axis=tuple(range(y.ndim - c.ndim, y.ndim)))
    return np.exp(total) - 1.0


def make_twin(original, centre, slopes, offset):
    """f̃ for ``original`` (a plain copy of f) around ``centre`` (f's first arguments at the query point)."""
    import jax

    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None
    offset = np.asarray(offset)

    def twin(*args, **kwargs):
        out = original(*args, **kwargs)
        values = list(args)
        if kwargs and signature is not None:
            values = list(signature.bind(*args, **kwargs).arguments.values())
        values = values[:len(centre)]
        traced = any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(values))
        bump = None if traced else _concrete_phi(values, centre, slopes)
        if bump is not None and not np.any(bump):
            return out                    # the query point itself: f's own value, untouched
        if bump is None:
            bump = phi(values, centre, slopes)
        if bump is None:                  # not a call at the query point or a batch of points
            return out
        bump = jax.numpy.asarray(bump)
        return out + bump.reshape(bump.shape + (1,) * offset.ndim) * offset

    return twin


def _copy(fn: types.FunctionType):
    """A callable that does what ``fn`` does now (for a function already redirected, what it is redirected to)."""
    if fn.__code__ is _entry.__code__:
        return fn.__kwdefaults__["_vc4ml_twin"]
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__kwdefaults__ = fn.__kwdefaults__
    return twin


def redirect(fn, to) -> None:
    """From now on, calling ``fn`` (the function object, under every alias) calls ``to``."""
    fn = _unwrap(fn)
    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = _entry.__code__, None, {"_vc4ml_twin": to}


def is_jit_wrapper(fn) -> bool:
    return _unwrap(fn) is not fn


def _unwrap(fn):
    """The Python function behind ``fn`` (a ``jax.jit`` wrapper runs it when jit is disabled)."""
    for _ in range(5):
        inner = getattr(fn, "__wrapped__", None)
        if inner is None:
            break
        fn = inner
    return fn


def swappable(fn) -> bool:
    fn = _unwrap(fn)
    return isinstance(fn, types.FunctionType) and not fn.__code__.co_freevars


@contextlib.contextmanager
def swapped(functions, centre, slopes, offset):
    """Within the block, every function object in ``functions`` behaves as its twin."""
    saved = []
    try:
        for fn in {id(_unwrap(f)): _unwrap(f) for f in functions if swappable(f)}.values():
            original = _copy(fn)
            saved.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
            fn.__code__ = _entry.__code__
            fn.__defaults__ = None
            fn.__kwdefaults__ = {"_vc4ml_twin": make_twin(original, centre, slopes, offset)}
        yield
    finally:
        for fn, code, defaults, kwdefaults in saved:
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
