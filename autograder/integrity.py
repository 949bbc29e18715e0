"""Flag a "hand derivation" that calls JAX autodiff (research/jax_facts.md, section 6).

Two layers: a friendly lint of the function's source, and trace hooks that see any forward, linearize or jet
trace created while the function runs. The hooks use JAX internals (``jax._src.interpreters.ad``), so the JAX
version is pinned in pyproject.toml and tests/test_integrity.py guards the behaviour. Neither layer is security:
graded verdicts are decided outside the student's kernel.

A check in a notebook runs the answer with jit disabled (``watch_autodiff(eager=True)``):
a gradient jitted earlier then runs its Python body and is seen, and nothing is
compiled, where clearing every compiled cache would recompile everything on each check.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap

import jax

AUTODIFF_NAMES = {
    "grad", "value_and_grad", "jacfwd", "jacrev", "jacobian", "hessian",
    "vjp", "jvp", "linearize", "linear_transpose", "jet",
}


def _trace_classes():
    from jax._src.interpreters import ad
    from jax.experimental import jet

    return [ad.JVPTrace, ad.LinearizeTrace, jet.JetTrace]


def autodiff_names_in_source(fn) -> list[str]:
    """Autodiff names mentioned in ``fn``'s source, e.g. ['jax.grad']; [] if none or no source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in AUTODIFF_NAMES:
            found.add(f"{ast.unparse(node.value)}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in AUTODIFF_NAMES:
            found.add(node.id)
        elif isinstance(node, ast.alias) and node.name.split(".")[-1] in AUTODIFF_NAMES:
            found.add(node.name)
    return sorted(found)


# JAX's cache of compiled executables for eager (op-by-op) dispatch: kept, so that running
# an answer op by op compiles nothing. The other registered caches (traced jaxprs,
# lowerings) are cheap to refill.
_EXECUTABLE_CACHES = ("xla_primitive_callable",)


def clear_traces() -> None:
    """Empty JAX's staging caches (jaxprs traced from Python functions, e.g. by
    ``jax.checkpoint``), so that the next call of a function traces it again; compiled
    executables stay. Falls back to ``jax.clear_caches()`` if these internals are gone."""
    try:
        from jax._src import util

        caches = list(util._caches.items())
    except (ImportError, AttributeError):
        jax.clear_caches()
        return
    for cache, name in caches:
        if not any(keep in name for keep in _EXECUTABLE_CACHES):
            cache.cache_clear()


@contextlib.contextmanager
def watch_autodiff(clear: bool = True, eager: bool = False):
    """Yield a list that fills with the names of autodiff traces created inside the block.

    With ``clear``, compiled caches are cleared first, so a gradient jitted earlier is traced again and seen (at
    the price of compiling everything again). With ``eager``, the block runs under
    ``jax.disable_jit()`` after ``clear_traces()``: a jitted function runs its Python
    body on every call, so the same gradient is seen and nothing is compiled (an
    ahead-of-time compiled executable cannot run so: it raises).
    """
    seen: list[str] = []
    classes = _trace_classes()
    saved = [(cls, cls.__init__) for cls in classes]
    for cls, init in saved:
        def hooked(self, *args, _init=init, _name=cls.__name__, **kwargs):
            seen.append(_name)
            return _init(self, *args, **kwargs)

        cls.__init__ = hooked
    if clear:
        jax.clear_caches()
    elif eager:
        clear_traces()
    try:
        with jax.disable_jit() if eager else contextlib.nullcontext():
            yield seen
    finally:
        for cls, init in saved:
            cls.__init__ = init
