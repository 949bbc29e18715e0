"""Check a hand-derived derivative against JAX at random, generic points.

Each check returns a :class:`CheckResult` that prints as one line in a notebook. In an nbgrader test cell, call
``.assert_passed()`` on it: a failure then raises ``AssertionError`` carrying the same line.

    from autograder import check
    check.derivative(df, f, domain=check.positive())
    check.gradient(grad_f, f, shapes=[(4,), (4, 4)])          # grad_f(x, A) vs jax.grad(f)(x, A)
    check.jacobian(jac_g, g, shapes=(3,)).assert_passed()

Conventions (DESIGN.md): float64, exact shape match, all values finite, and a pass iff
``‖a−b‖ ≤ rtol·(‖a‖+‖b‖) + atol`` with rtol 1e-8 in float64 and 1e-4 in float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import warnings
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from . import diagnosis, integrity, sampling  # noqa: E402
from .compare import RTOL, compare as _compare, relative_error  # noqa: E402,F401
from .sampling import interval, invertible, positive, spd  # noqa: E402,F401

DEFAULT_POINTS = 5

# Grading mode (DESIGN.md, "Grading principles"): the grader starts the kernel with a per-run secret. Checks then
# draw their points from it, record the student's values as evidence in the cell's output, and never raise; a
# trusted step outside the kernel compares that evidence with the solution's and decides the score.
_SECRET = os.environ.pop("AUTOGRADER_SECRET", None)
# The grader's run of the instructor's solution also computes the reference (so it can prove the solution right)
# and the named mistakes at the secret points; a student's kernel only records the student's values there.
_REFERENCE = os.environ.pop("AUTOGRADER_REFERENCE", "") == "1"
from .compare import EVIDENCE_MIME  # noqa: E402
_CALLS = {"cell": None, "count": 0}

__all__ = [
    "CheckResult", "CheckFailed", "derivative", "gradient", "jacobian", "hessian", "values", "close", "equal",
    "interval", "positive", "invertible", "spd", "environment", "rng", "grading",
]


@dataclass
class CheckResult:
    """The verdict of one check: prints as a single line, raises on demand."""

    name: str
    passed: bool
    message: str
    points: int = 0
    worst_error: float = float("nan")
    mistakes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.passed

    def assert_passed(self) -> None:
        """Print the verdict; raise ``AssertionError`` with it if the check failed (not while grading: there
        the evidence decides, so every check in a cell runs)."""
        if not self.passed and _SECRET is None:
            raise CheckFailed(self.message)
        print(self.message)


class CheckFailed(AssertionError):
    """A failed check. In a notebook it shows as its one-line verdict, without a traceback that could leak the
    surrounding (hidden) test source; nbgrader still sees an error and gives the cell no points."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class _Fail(Exception):
    def __init__(self, message: str, mistakes: Sequence[str] = ()):
        super().__init__(message)
        self.message, self.mistakes = message, list(mistakes)


def environment() -> None:
    """Print one line naming the JAX version, backend, devices and x64 state; notebooks call it first."""
    print(f"jax {jax.__version__} | backend: {jax.default_backend()} | devices: {jax.devices()} "
          f"| x64: {jax.config.jax_enable_x64}")


# ---------------------------------------------------------------- grading mode


def grading() -> bool:
    """True while the course's grader runs this kernel (checks record evidence instead of deciding)."""
    return _SECRET is not None


def _current_cell() -> str:
    try:
        return get_ipython().history_manager.input_hist_raw[-1]  # noqa: F821  (IPython)
    except Exception:
        return ""


def _grading_seed() -> int:
    """Deterministic per (secret, test cell, call): the solution's run and the student's draw the same points."""
    cell = _current_cell()
    if _CALLS["cell"] != cell:
        _CALLS["cell"], _CALLS["count"] = cell, 0
    _CALLS["count"] += 1
    digest = hashlib.sha256(f"{_SECRET}|{cell}|{_CALLS['count']}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def rng(seed=None) -> np.random.Generator:
    """Random numbers for test code: fresh in a notebook, reproducible from the secret while grading."""
    return np.random.default_rng(_grading_seed() if _SECRET is not None and seed is None else seed)


def _encode(value):
    try:
        arr = np.asarray(value)
        if arr.dtype.kind in "fiucb":
            return {"shape": list(arr.shape), "dtype": arr.dtype.str, "data": arr.astype(np.float64).ravel().tolist()}
    except Exception:
        pass
    try:
        return {"json": json.loads(json.dumps(value))}
    except (TypeError, ValueError):
        return {"repr": repr(value)[:200]}


def _record(kind: str, title: str, result: "CheckResult", args=(), got=(), error: str = "", rtol=None,
            atol: float = 0.0, autodiff=(), inputs: str = "", mistakes: dict | None = None) -> None:
    """Show the evidence of one check as a cell output the trusted grader reads (grading mode only)."""
    if _SECRET is None:
        return
    from IPython.display import display

    record = {"kind": kind, "title": title, "error": error, "rtol": rtol, "atol": atol,
              "args": [[_encode(a) for a in point] for point in args], "got": [_encode(g) for g in got],
              "autodiff": sorted(set(autodiff)), "verdict": result.message, "inputs": inputs}
    if mistakes:
        record["mistakes"] = {label: None if values is None else [_encode(v) for v in values]
                              for label, values in mistakes.items()}
    display({EVIDENCE_MIME: record, "text/plain": f"[evidence for {title}]"}, raw=True)


def _evidence_only() -> bool:
    """A student's kernel while grading: record the answers at the secret points; the grader judges them."""
    return _SECRET is not None and not _REFERENCE


# ---------------------------------------------------------------- formatting


def _fmt(a) -> str:
    arr = np.asarray(a)
    if arr.ndim == 0:
        return f"{float(arr):.6g}" if arr.dtype.kind in "fiu" else repr(a)
    return np.array2string(arr, precision=4, threshold=12, edgeitems=2, max_line_width=100).replace("\n", "")


def _at(names: Sequence[str], args: Sequence[Any]) -> str:
    return ", ".join(f"{n} = {_fmt(a)}" for n, a in zip(names, args))


def _arg_names(fn: Callable, count: int) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    default = ["x", "y", "z"] if count <= 3 else [f"x{i}" for i in range(count)]
    return (params + default[len(params):])[:count] if len(params) >= count else default[:count]


def _domains(names: Sequence[str], samplers: Sequence[Callable]) -> str:
    if len(set(map(id, samplers))) == 1:
        return f"{', '.join(names)} in {sampling.describe(samplers[0])}"
    return ", ".join(f"{n} in {sampling.describe(s)}" for n, s in zip(names, samplers))


def _label(fn: Callable, fallback: str) -> str:
    label = getattr(fn, "__name__", None)
    return fallback if not label or label.startswith("<") else label


# ---------------------------------------------------------------- comparison


def _as_array(value, what: str) -> np.ndarray:
    if value is None:
        raise _Fail(f"{what} returned None: is a `return` missing?")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # a jax tracer, a ragged list, ...
        raise _Fail(f"{what} returned {type(value).__name__}, which is not an array: {exc}") from None
    if arr.dtype == object:
        raise _Fail(f"{what} returned {type(value).__name__} that is not numeric: {_fmt(value)}")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float64)
    return arr


# ---------------------------------------------------------------- the engine


def _normalise_shapes(shapes) -> list[tuple]:
    if shapes is None:
        return [()]
    if isinstance(shapes, int):
        return [(shapes,)]
    shapes = tuple(shapes)
    if all(isinstance(s, int) for s in shapes):
        return [tuple(shapes)]
    return [tuple((s,) if isinstance(s, int) else s) for s in shapes]


def _normalise_domains(domain, count: int) -> list[Callable]:
    if isinstance(domain, list):
        if len(domain) != count:
            raise ValueError(f"{count} arguments but {len(domain)} domains")
        return [sampling.as_sampler(d) for d in domain]
    return [sampling.as_sampler(domain)] * count


def _call(fn: Callable, args: Sequence[Any], what: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*[np.array(a, copy=True) if np.ndim(a) else np.float64(a) for a in args])
    except NotImplementedError:
        raise _Fail(f"{what} is not answered yet (it still raises NotImplementedError)") from None
    except _Fail:
        raise
    except Exception as exc:
        raise _Fail(f"{what} raised {type(exc).__name__}: {exc}") from None


def _jit_or_eager(reference: Callable) -> Callable:
    """Evaluate the reference under jit (one compile for all points) or, if it cannot be traced, eagerly."""
    jitted, state = jax.jit(reference), {"jit": True}

    def evaluate(*args):
        if state["jit"]:
            try:
                return jitted(*args)
            except Exception:
                state["jit"] = False
        return reference(*args)

    return evaluate


def _run(kind: str, student: Callable, reference: Callable, *, shapes, domain, points: int, seed,
         rtol: float | None, atol: float, autodiff: bool, mistakes: Mapping[str, Callable] | None,
         name: str | None) -> CheckResult:
    title = f"{kind} {name}" if name else kind
    try:
        if not callable(student):
            raise _Fail(f"expected a function, got {type(student).__name__} {_fmt(student)}")
        arg_shapes = _normalise_shapes(shapes)
        samplers = _normalise_domains(domain, len(arg_shapes))
        rng = np.random.default_rng(_grading_seed() if _SECRET is not None else seed)
        names = _arg_names(student, len(arg_shapes))
        cases, evaluate = [], _jit_or_eager(reference)
        for _ in range(points):
            args = [s(rng, shp) for s, shp in zip(samplers, arg_shapes)]
            args = [np.float64(a) if np.ndim(a) == 0 else a for a in args]
            if _evidence_only():
                cases.append((args, None))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = np.asarray(evaluate(*args), dtype=np.float64)
            if not np.all(np.isfinite(expected)):
                raise ValueError(f"the reference is not finite at {_at(names, args)}: choose another domain")
            cases.append((args, expected))
        if _evidence_only():
            return _evidence(kind, title, student, cases, rtol, atol, autodiff, _domains(names, samplers))
        return _verdict(kind, title, student, cases, names, rtol, atol, autodiff, mistakes, samplers)
    except _Fail as fail:
        result = CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)
        _record(kind, title, result, error=fail.message, rtol=rtol, atol=atol)
        return result


def _answers(student, cases, autodiff: bool) -> tuple[list, list, "_Fail | None"]:
    """The student's values at the cases' points (up to the first failure), the autodiff traces seen meanwhile, and
    that failure. Caches are cleared only in a notebook: while grading, the hooks are a courtesy and the grader's
    own scan of the notebook's cells is what counts."""
    got = []
    watch = contextlib.nullcontext([]) if autodiff else integrity.watch_autodiff(clear=_SECRET is None)
    with watch as traces:
        try:
            for args, _ in cases:
                got.append(_as_array(_call(student, args, "your function"), "your function"))
        except _Fail as fail:
            return got, list(traces), fail
    return got, list(traces), None


def _evidence(kind, title, student, cases, rtol, atol, autodiff, inputs) -> CheckResult:
    """Grading a student: evaluate the answer at the secret points and record it, nothing more (no reference, no
    verdict: the grader decides outside the kernel)."""
    got, traces, fail = _answers(student, cases, autodiff)
    if fail:
        result = CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)
    else:
        result = CheckResult(title, True, f"• {title}: answers recorded at {len(cases)} points for the grader")
    _record(kind, title, result, [c[0] for c in cases], got, fail.message if fail else "", rtol, atol, traces,
            inputs)
    return result


def _verdict(kind, title, student, cases, names, rtol, atol, autodiff, mistakes, samplers) -> CheckResult:
    got, traces, fail = _answers(student, cases, autodiff)
    if fail:
        result = CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)
        _record(kind, title, result, [c[0] for c in cases], got, fail.message, rtol, atol, traces)
        return result
    outcomes = [(args, expected, g, *_compare(g, expected, rtol, atol)) for (args, expected), g in zip(cases, got)]
    try:
        result = _judge(title, student, cases, names, rtol, atol, autodiff, mistakes, samplers, outcomes, traces)
    except _Fail as fail:
        result = CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)
    if _SECRET is not None:  # the solution's run: the grader names these mistakes in students' answers
        _record(kind, title, result, [c[0] for c in cases], got, "", rtol, atol, traces, _domains(names, samplers),
                _mistake_values(mistakes, cases))
    return result


def _judge(title, student, cases, names, rtol, atol, autodiff, mistakes, samplers, outcomes, traces) -> CheckResult:
    if traces and not autodiff:
        named = integrity.autodiff_names_in_source(student)
        how = f" ({', '.join(named)})" if named else f" (JAX traced {sorted(set(traces))[0]})"
        raise _Fail("your hand derivation calls JAX automatic differentiation" + how
                    + ": derive it by hand and write the formula", ["autodiff"])
    failed = [o for o in outcomes if not o[3]]
    worst = max(o[4] for o in outcomes)
    if not failed:
        return CheckResult(title, True, f"✔ {title}: correct at {len(cases)} random points, "
                           f"{_domains(names, samplers)} "
                           f"(worst relative error {worst:.1e})", len(cases), worst)
    args, expected, got, _, err, _ = failed[0]
    named = [label for label, values in _mistake_values(mistakes, cases).items()
             if values is not None and all(_compare(o[2], v, diagnosis.CLOSE, 0)[0] for o, v in zip(outcomes, values))]
    rows = [(o[2], o[1], o[3], o[5]) for o in outcomes]
    summary = diagnosis.summary(rows, named)
    detail = "" if np.shape(got) != expected.shape else f" (relative error {err:.1e})"
    message = (f"✘ {title}: {summary}. Inputs: {_domains(names, samplers)}{diagnosis.DETAILS}"
               f"at {_at(names, args)} expected {_fmt(expected)} but got {_fmt(got)}{detail}")
    return CheckResult(title, False, message, len(cases), worst, diagnosis.findings(rows, named))


def _mistake_values(mistakes, cases) -> dict[str, list | None]:
    """label -> the named mistake's values at every point (None if it cannot be evaluated there)."""
    out = {}
    for label, wrong in (mistakes or {}).items():
        wrong = _jit_or_eager(wrong)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[label] = [np.asarray(wrong(*args), dtype=np.float64) for args, _ in cases]
        except Exception:
            out[label] = None
    return out


# ---------------------------------------------------------------- public checks


def _grad_ref(f: Callable, argnums: int, transform: Callable) -> Callable:
    return lambda *args: transform(f, argnums=argnums)(*args)


def derivative(df: Callable, f: Callable, domain=None, *, points: int = DEFAULT_POINTS, seed=None,
               rtol: float | None = None, atol: float = 0.0, mistakes=None, name: str | None = None) -> CheckResult:
    """Check ``df(x)`` against ``jax.grad(f)(x)`` for scalar x drawn from ``domain``."""
    return _run("derivative", df, _grad_ref(f, 0, jax.grad), shapes=None, domain=domain, points=points,
                seed=seed, rtol=rtol, atol=atol, autodiff=False, mistakes=mistakes,
                name=name or f"of {_label(f, 'f')}")


def _autodiff_check(kind: str, transform: Callable, reference: str, doc: str) -> Callable:
    def check_against_jax(answer: Callable, f: Callable, shapes, domain=None, *, argnums: int = 0,
                          points: int = DEFAULT_POINTS, seed=None, rtol: float | None = None, atol: float = 0.0,
                          mistakes=None, name: str | None = None) -> CheckResult:
        return _run(kind, answer, _grad_ref(f, argnums, transform), shapes=shapes, domain=domain,
                    points=points, seed=seed, rtol=rtol, atol=atol, autodiff=False, mistakes=mistakes,
                    name=name or f"of {_label(f, 'f')}")

    check_against_jax.__name__ = check_against_jax.__qualname__ = kind.lower()
    check_against_jax.__doc__ = f"Check ``answer(*args)`` against ``{reference}(*args)``{doc}."
    return check_against_jax


gradient = _autodiff_check("gradient", jax.grad, "jax.grad(f, argnums)", "; ``shapes`` gives each argument's shape")
jacobian = _autodiff_check("Jacobian", jax.jacobian, "jax.jacobian(f, argnums)", " (output shape + input shape)")
hessian = _autodiff_check("Hessian", jax.hessian, "jax.hessian(f, argnums)", "")


def values(fn: Callable, reference: Callable, shapes=None, domain=None, *, points: int = DEFAULT_POINTS,
           seed=None, rtol: float | None = None, atol: float = 0.0, autodiff: bool = True,
           mistakes=None, name: str | None = None) -> CheckResult:
    """Check ``fn(*args)`` against ``reference(*args)``: for HVPs, Taylor polynomials, finite differences.

    ``autodiff=False`` makes JAX autodiff inside ``fn`` a failure, as in the derivative checks.
    """
    return _run("values", fn, reference, shapes=shapes, domain=domain, points=points, seed=seed,
                rtol=rtol, atol=atol, autodiff=autodiff, mistakes=mistakes,
                name=name or f"of {_label(fn, 'your function')}")


def close(got, expected, *, rtol: float | None = None, atol: float = 0.0, name: str = "value",
          reveal: bool = False) -> CheckResult:
    """Compare one computed answer with the expected one (same rules: shape, finiteness, tolerance).

    The expected value is shown only with ``reveal=True``, so a self-check does not give the answer away.
    """
    try:
        g = _as_array(got, "your answer")
    except _Fail as fail:
        result = CheckResult(name, False, f"✘ {name}: {fail.message}")
        _record("close", name, result, error=fail.message, rtol=rtol, atol=atol)
        return result
    result = _close_verdict(g, expected, rtol, atol, name, reveal)
    _record("close", name, result, got=[g], rtol=rtol, atol=atol)
    return result


def _close_verdict(g, expected, rtol, atol, name, reveal) -> CheckResult:
    e = np.asarray(expected, dtype=np.float64)
    ok, err, reason = _compare(g, e, rtol, atol)
    if not ok and reason is None:
        reason = diagnosis.value_mistake([g.astype(np.float64)], [e])
    if ok:
        scale = float(np.linalg.norm(g.astype(np.float64)) + np.linalg.norm(e))
        error = f"relative error {err:.1e}" if scale > atol else \
            f"absolute error {float(np.linalg.norm(g.astype(np.float64) - e)):.1e}"
        return CheckResult(name, True, f"✔ {name}: correct ({error})", 1, err)
    shown = f"expected {_fmt(e)} but got {_fmt(g)}" if reveal else f"{_fmt(g)} is not right"
    return CheckResult(name, False, f"✘ {name}: {shown}" + (f". {reason}" if reason else ""),
                       1, err, [reason] if reason else [])


def equal(got, expected, *, name: str = "answer") -> CheckResult:
    """Exact comparison for discrete answers, e.g. "minimum" or a list of labels."""
    try:
        same = bool(got == expected)
    except Exception:
        same = False
    result = (CheckResult(name, True, f"✔ {name}: correct", 1, 0.0) if same
              else CheckResult(name, False, f"✘ {name}: got {got!r}, which is not right", 1, 1.0))
    _record("equal", name, result, got=[got])
    return result
