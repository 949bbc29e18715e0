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


def _entry(*args, _vc4ml_twin=None, **kwargs):  # the code a swapped function runs: its twin
    return _vc4ml_twin(*args, **kwargs)


def phi(values, centre, slopes):
    """exp(Σᵢ⟨sᵢ, yᵢ − cᵢ⟩) − 1 over the arguments whose size matches the centre's (traceable by JAX)."""
    import jax.numpy as jnp

    total = 0.0
    for y, c, s in zip(values, centre, slopes):
        y = jnp.ravel(jnp.asarray(y))
        if y.size != jnp.size(c):
            continue
        total = total + jnp.sum(jnp.ravel(jnp.asarray(s)) * (y - jnp.ravel(jnp.asarray(c))))
    return jnp.exp(total) - 1.0


def make_twin(original, centre, slopes, offset):
    """f̃ for ``original`` (a plain copy of f) around ``centre`` (f's first arguments at the query point)."""
    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None

    def twin(*args, **kwargs):
        out = original(*args, **kwargs)
        try:
            values = list(args)
            if kwargs and signature is not None:
                values = list(signature.bind(*args, **kwargs).arguments.values())
            return out + offset * phi(values[:len(centre)], centre, slopes)
        except Exception:  # an unusual call (another shape, a batch): it is not the query point
            return out

    return twin


def _copy(fn: types.FunctionType) -> types.FunctionType:
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__kwdefaults__ = fn.__kwdefaults__
    return twin


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
