"""The kernel's end of the grading channel: runs inside the student's (sandboxed) kernel while grading.

The trusted driver (autograder.grading.channel) sends one request per execution, as
``__import__('autograder.endpoint').endpoint.serve('<json>')``, and reads the reply from a display output. Nothing
here is trusted and nothing here is secret: student code can read or replace all of it, which only changes what
the student's answer is. The driver decodes every reply with autograder.wire's checks and judges values alone.

Requests: ``snapshot`` (remember the set-up's function objects), ``resolve`` (what the student's names are) and
``call`` (call a student's function with concrete arguments, optionally with a set-up function swapped for its
twin, see autograder.twin).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import marshal
import base64
import types

from . import twin, wire

MIME = "application/vnd.vc4ml.channel+json"
_SETUP: dict = {}          # name -> the set-up's object, as it was right after the set-up cell
_TRACED: set = set()       # set-up functions a jit trace has evaluated: compiled code may hold their old self
_OWN_TRACE = [False]       # our own compiled call of a set-up function is tracing: not the student's jit


def _namespace() -> dict:
    from IPython import get_ipython

    return get_ipython().user_ns


def serve(request: str) -> None:
    from IPython.display import display

    req = json.loads(request)
    try:
        reply = _HANDLERS[req["op"]](req)
    except Exception as exc:  # our own failure, reported by type; the driver treats it as no answer
        reply = {"failed": type(exc).__name__}
    display({MIME: dict(reply, id=req["id"]), "text/plain": ""}, raw=True)


def _snapshot(req) -> dict:
    ns = _namespace()
    for name in req["names"]:
        if name in ns and name not in _SETUP:
            _SETUP[name] = ns[name]
            if twin.swappable(ns[name]):
                _spy(name, ns[name])
    return {"ok": True}


def _spy(name: str, fn) -> None:
    """Note when a jit trace evaluates the set-up function ``name`` (then its twin must run with jit disabled,
    since a compiled copy would not see the swap); otherwise the twin runs compiled, which costs no compiling."""
    import inspect

    import jax

    original = twin._copy(twin._unwrap(fn))

    def spy(*args, **kwargs):
        if not _OWN_TRACE[0] and name not in _TRACED and \
                any(_under_jit(v) for v in jax.tree_util.tree_leaves((args, kwargs))):
            _TRACED.add(name)
        return original(*args, **kwargs)

    try:
        spy.__signature__ = inspect.signature(original)
    except (TypeError, ValueError):
        pass
    twin.redirect(fn, spy)


def _under_jit(value) -> bool:
    for _ in range(8):   # a tracer of a transformation wraps the tracer of the one below it
        if "Jaxpr" in type(value).__name__:
            return True
        inner = getattr(value, "primal", None)
        if inner is None:
            inner = getattr(value, "val", None)
        if inner is None or inner is value:
            return False
        value = inner
    return False


def _resolve(req) -> dict:
    ns, found = _namespace(), {}
    for name in req["names"]:
        if name not in ns:
            continue
        value = ns[name]
        if callable(value) and not isinstance(value, type):
            found[name] = {"callable": True}
            continue
        try:
            found[name] = {"value": wire.encode(value)}
        except wire.WireError:
            found[name] = {"unsupported": type(value).__name__[:60]}
    return {"names": found}


def _ref(spec):
    """Rebuild an argument the driver sent: data, a module, a set-up or student object, or a function."""
    if "module" in spec:
        return importlib.import_module(spec["module"])
    if "attr" in spec:
        return getattr(importlib.import_module(spec["attr"][0]), spec["attr"][1])
    if "setup" in spec:
        return _SETUP.get(spec["setup"], _namespace().get(spec["setup"]))
    if "student" in spec:
        return _namespace()[spec["student"]]
    if "fn" in spec:
        fn = spec["fn"]
        code = marshal.loads(base64.b64decode(fn["code"]))
        scope = {"__builtins__": __builtins__}
        scope.update({name: _ref(ref) for name, ref in fn["globals"].items()})
        cells = tuple(types.CellType(_ref(ref)) for ref in fn["closure"]) or None
        defaults = tuple(_ref(ref) for ref in fn["defaults"]) or None
        return types.FunctionType(code, scope, fn["name"], defaults, cells)
    value = wire.decode(spec["value"])
    return value[()] if getattr(value, "ndim", None) == 0 else value  # a 0-d array as a numpy scalar


@contextlib.contextmanager
def _twin(spec):
    if not spec:
        yield
        return
    import jax

    name = spec["name"]
    functions = [f for f in (_SETUP.get(name), _namespace().get(name)) if f is not None]
    centre = [wire.decode(c) for c in spec["centre"]]
    slopes = [wire.decode(s) for s in spec["slopes"]]
    # compiled code made earlier may hold f as it was: then run uncompiled (each operation compiled on its own)
    stale = name in _TRACED or name not in _SETUP or any(twin.is_jit_wrapper(f) for f in functions)
    with twin.swapped(functions, centre, slopes, wire.decode(spec["offset"])), \
            (jax.disable_jit() if stale else contextlib.nullcontext()):
        yield
    if not stale and name in _TRACED:  # compiled during this call: that copy holds the twin, so forget it
        jax.clear_caches()


@contextlib.contextmanager
def _compiled_calls(seen: list):
    """Notice calls of ahead-of-time compiled executables (they are never traced again)."""
    try:
        from jax import stages
    except ImportError:
        yield
        return
    original = stages.Compiled.__call__

    def watched(self, *args, **kwargs):
        seen.append("a precompiled JAX executable")
        return original(self, *args, **kwargs)

    stages.Compiled.__call__ = watched
    try:
        yield
    finally:
        stages.Compiled.__call__ = original


def _call(req) -> dict:
    """Call the target once per argument list in ``calls`` (stopping at the first that gives no value)."""
    from . import integrity

    target = _ref(req["target"])
    results: list = []
    compiled: list = []
    with integrity.watch_autodiff(clear=False) as traces, _compiled_calls(compiled), _twin(req.get("twin")):
        if "setup" in req["target"]:
            target = _one_computation(target)
        for call in req["calls"]:
            results.append(_one(target, call))
            if "value" not in results[-1]:
                break
    return {"results": results, "autodiff": sorted(set(traces))[:5], "compiled": bool(compiled)}


def _one_computation(fn):
    """The instructor's set-up function ``fn`` run as one compiled XLA program instead of op by op (one compile
    instead of one per operation). It is traced afresh with every jit inside inlined, so a swapped function is
    seen as it is now, exactly as when it runs op by op under ``jax.disable_jit()``. ``fn`` as it is when it
    cannot be traced (Python control flow on values)."""
    import jax
    from jax.extend.core import jaxpr_as_fun

    def run(*args, **kwargs):
        try:
            _OWN_TRACE[0] = True
            try:
                with jax.disable_jit():
                    closed, shape = jax.make_jaxpr(lambda *a: fn(*a, **kwargs), return_shape=True)(*args)
            finally:
                _OWN_TRACE[0] = False
            with jax.disable_jit(False):
                flat = jax.jit(jaxpr_as_fun(closed))(*jax.tree_util.tree_leaves(args))
            return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), flat)
        except Exception:
            return fn(*args, **kwargs)
    return run


def _one(target, call) -> dict:
    try:
        args = [_ref(a) for a in call["args"]]
        kwargs = {k: _ref(v) for k, v in call.get("kwargs", {}).items()}
        result = target(*args, **kwargs)
    except NotImplementedError:
        return {"not_answered": True}
    except Exception as exc:
        return {"raised": type(exc).__name__[:60]}
    try:
        return {"value": wire.encode(result)}
    except wire.WireError:
        return {"unsendable": type(result).__name__[:60]}


_HANDLERS = {"snapshot": _snapshot, "resolve": _resolve, "call": _call}
