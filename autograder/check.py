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
import contextvars
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from . import diagnosis, fingerprint, inputs, integrity, mutants, sampling, terms, twin  # noqa: E402
from .compare import RTOL, compare as _compare, relative_error  # noqa: E402,F401
from .sampling import interval, invertible, positive, spd  # noqa: E402,F401

DEFAULT_POINTS = 5

# While grading, test cells run in the trusted driver (autograder.grading.driver), never in the student's kernel.
# The driver sets this context around each test cell: the student's functions are then proxies into the kernel,
# and the checks add the integrity call (autograder.twin) and keep their messages free of points and values.
_DRIVER: contextvars.ContextVar = contextvars.ContextVar("vc4ml_driver", default=None)

__all__ = [
    "CheckResult", "CheckFailed", "derivative", "gradient", "jacobian", "hessian", "values", "close", "equal",
    "interval", "positive", "invertible", "spd", "environment", "rng", "named_mistakes",
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
    flags: list[str] = field(default_factory=list)   # integrity findings kept for review, not failed

    def __repr__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.passed

    def assert_passed(self) -> None:
        """Print the verdict; raise ``AssertionError`` with it if the check failed."""
        if not self.passed:
            raise CheckFailed(self.message)
        print(self.message)


class CheckFailed(AssertionError):
    """A failed check. In a notebook it shows as its one-line verdict, without a traceback that could leak the
    surrounding (hidden) test source; nbgrader still sees an error and gives the cell no points."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class _Fail(Exception):
    raised = False   # the student's function raised (not NotImplementedError)

    def __init__(self, message: str, mistakes: Sequence[str] = ()):
        super().__init__(message)
        self.message, self.mistakes = message, list(mistakes)


def environment() -> None:
    """Print one line naming the JAX version, backend, devices and x64 state; notebooks call it first."""
    print(f"jax {jax.__version__} | backend: {jax.default_backend()} | devices: {jax.devices()} "
          f"| x64: {jax.config.jax_enable_x64}")


# ---------------------------------------------------------------- named mistakes kept out of sight

# Named mistakes that a test cell declares in its hidden part (so the released notebook never holds their text or
# function) for the checks after it in the same cell: under the driver on its context, in a notebook until the
# cell ends (an IPython post_run_cell hook clears them).
_CELL_MISTAKES: list = []


def named_mistakes(mistakes: Mapping[str, Callable], *, only: str | None = None) -> None:
    """Declare named mistakes for the checks that follow in this test cell (for the check named ``only``, if
    given). Put the call in the cell's hidden part, above the visible checks: the released notebook then shows
    neither the labels nor the functions, and the grader's feedback still names the mistake."""
    driver = _driving()
    store = driver.named_mistakes if driver is not None else _CELL_MISTAKES
    store.append((dict(mistakes), only))
    if driver is None:
        _clear_after_cell()


def _clear_after_cell() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def clear(*_):
        del _CELL_MISTAKES[:]
        shell.events.unregister("post_run_cell", clear)

    shell.events.register("post_run_cell", clear)


def _declared(title: str, mistakes: Mapping[str, Callable] | None) -> dict:
    driver = _driving()
    store = driver.named_mistakes if driver is not None else _CELL_MISTAKES
    merged: dict = {}
    for declared, only in store:
        if only is None or only in title:
            merged.update(declared)
    merged.update(mistakes or {})
    return merged


# ---------------------------------------------------------------- test randomness


def rng(seed=None) -> np.random.Generator:
    """Random numbers for test code: fresh on every run (while grading too: points nobody knows in advance)."""
    return np.random.default_rng(seed)


def _driving():
    return _DRIVER.get()


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
        why = "" if _driving() else f": {exc}"
        raise _Fail(f"{what} returned {type(value).__name__}, which is not an array{why}") from None
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        shown = "" if _driving() else f": {_fmt(value)}"
        raise _Fail(f"{what} returned {type(value).__name__} that is not numeric{shown}")
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


def _copies(args: Sequence[Any]) -> list:
    return [np.array(a, copy=True) if np.ndim(a) else np.float64(a) for a in args]


def _call(fn: Callable, args: Sequence[Any], what: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*_copies(args))
    except NotImplementedError:
        raise _Fail(f"{what} is not answered yet (it still raises NotImplementedError)") from None
    except _Fail:
        raise
    except Exception as exc:
        if getattr(exc, "kind", None) and _driving():  # the channel's own words (autograder.grading.channel)
            raise _Fail(str(exc).replace("your function", what, 1)) from None
        why = "" if _driving() else f": {str(exc).rstrip('.')}"
        fail = _Fail(f"{what} raised {type(exc).__name__}{why}{diagnosis.product_mismatch(exc)}")
        fail.raised = True
        raise fail from None


# key -> its evaluator: one compile per set-up function, not per check. The key is,
# while grading, (transform, f, argnums) or the driver's key of a test's function; in a
# notebook, the fingerprint of what the reference computes (autograder.fingerprint): a
# redefined f, or a global it reads that changed, is compiled again, never served stale.
_REFERENCES: dict = {}


def _reference_key(key, reference: Callable):
    """The cache key of ``reference``, which ``key`` names as (transform, f, argnums) or
    is None."""
    driver = _driving()
    if driver is not None:
        return key if key is not None else driver.reference_key(reference)
    return fingerprint.of(reference if key is None else key)


def _jit_or_eager(reference: Callable, key=None) -> Callable:
    """Evaluate the reference under jit (one compile for all points) or, if it cannot be traced, eagerly."""
    if key is not None and key in _REFERENCES:
        return _REFERENCES[key]
    if _driving() is None:
        integrity.clear_traces()   # a jitted function f calls may hold a stale trace
    jitted, state = jax.jit(reference), {"jit": True}

    def evaluate(*args):
        if state["jit"]:
            try:
                return jitted(*args)
            except Exception:
                state["jit"] = False
        return reference(*args)

    if key is not None:
        if len(_REFERENCES) > 256:
            _REFERENCES.clear()
        _REFERENCES[key] = evaluate
    return evaluate


@dataclass
class _Hand:
    """What a "by hand" check forbids: following ``f`` (the set-up function under test) at its arguments ``at``."""

    f: Callable | None
    at: Sequence[int] | None
    policy: str | None      # "zero", "flag", or None: the batch's policy


def _run(kind: str, student: Callable, reference: Callable, *, shapes, domain, points: int, seed,
         rtol: float | None, atol: float, hand: _Hand | None, mistakes: Mapping[str, Callable] | None,
         name: str | None, key=None) -> CheckResult:
    title = f"{kind} {name}" if name else kind
    try:
        if not callable(student):
            raise _Fail(f"expected a function, got {type(student).__name__}"
                        + ("" if _driving() else f" {_fmt(student)}"))
        arg_shapes = _normalise_shapes(shapes)
        samplers = _normalise_domains(domain, len(arg_shapes))
        rng = np.random.default_rng(seed)
        names = _arg_names(student, len(arg_shapes))
        driver = _driving()
        cases, evaluate = [], _jit_or_eager(reference, _reference_key(key, reference))
        for _ in range(points):
            args = [s(rng, shp) for s, shp in zip(samplers, arg_shapes)]
            args = [np.float64(a) if np.ndim(a) == 0 else a for a in args]
            cases.append((args, _expected(evaluate, args, names)))
        result = _verdict(title, student, cases, names, rtol, atol, hand, _declared(title, mistakes), samplers,
                          key, (evaluate, reference))
        if result.passed and hand is not None and driver is not None:
            args = [np.float64(a) if np.ndim(a) == 0 else a for a in (s(rng, shp) for s, shp in
                                                                     zip(samplers, arg_shapes))]
            expected = _expected(evaluate, args, names)
            # one twin call per test cell, for its last passing "by hand" check (the hidden one): each costs the
            # kernel an uncompiled (jit disabled) evaluation of the answer
            driver.pending_twin = lambda: _twin_call(result, student, reference, args, expected, rtol, atol,
                                                     hand, rng)
        return result
    except _Fail as fail:
        return CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)


def _expected(evaluate, args, names) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(evaluate(*args), dtype=np.float64)
    if not np.all(np.isfinite(expected)):
        raise ValueError(f"the reference is not finite at {_at(names, args)}: choose another domain")
    return expected


def _answers(student, cases, hand) -> tuple[list, list, "_Fail | None"]:
    """The student's values at the cases' points (up to the first failure), the autodiff seen meanwhile, and that
    failure. In a notebook, trace hooks see autodiff while the answer runs with jit
    disabled (a gradient jitted earlier is traced again, and nothing is compiled); while
    grading, the kernel's end of the channel reports it with each value."""
    driver = _driving()
    if driver is not None:
        del driver.channel.findings[:]
        got, traces, fail = _collect(student, cases, contextlib.nullcontext([]))
        if hand is not None and fail is None:
            traces = list(driver.channel.findings)
        return got, traces, fail
    if hand is None:
        return _collect(student, cases, contextlib.nullcontext([]))
    eager = integrity.watch_autodiff(clear=False, eager=True)
    got, traces, fail = _collect(student, cases, eager)
    if fail is not None and fail.raised:
        # it may need jit (an ahead-of-time compiled executable does): run it again as
        # before, with every cache cleared, so that it is compiled afresh and traced
        afresh = integrity.watch_autodiff(clear=True)
        got, traces, fail = _collect(student, cases, afresh)
    return got, traces, fail


def _collect(student, cases, watch) -> tuple[list, list, "_Fail | None"]:
    """The student's values, the autodiff ``watch`` saw and the first failure."""
    got = []
    driver = _driving()
    many = getattr(student, "call_many", None) if driver is not None else None
    with watch as traces:
        try:
            if many is not None:  # a student's function in the kernel: every point in one request
                for out in many([_copies(args) for args, _ in cases]):
                    if isinstance(out, Exception):
                        raise _Fail(str(out))
                    got.append(_as_array(out, "your function"))
            else:
                if driver is not None:  # a test's wrapper around a student's function: its calls in one request
                    driver.channel.prefetch(lambda a: student(*_copies(a)), [args for args, _ in cases])
                for args, _ in cases:
                    got.append(_as_array(_call(student, args, "your function"), "your function"))
        except _Fail as fail:
            return got, list(traces), fail
    return got, list(traces), None


def _verdict(title, student, cases, names, rtol, atol, hand, mistakes, samplers, key=None,
             references=None) -> CheckResult:
    got, traces, fail = _answers(student, cases, hand)
    if fail:
        return CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)
    outcomes = [(args, expected, g, *_compare(g, expected, rtol, atol)) for (args, expected), g in zip(cases, got)]
    try:
        return _judge(title, student, cases, names, rtol, atol, hand, mistakes, samplers, outcomes, traces, key,
                      references)
    except _Fail as fail:
        return CheckResult(title, False, f"✘ {title}: {fail.message}", mistakes=fail.mistakes)


def _policy(hand: _Hand) -> str:
    driver = _driving()
    return hand.policy or (driver.policy if driver is not None else "zero")


def _finding(result: CheckResult, hand: _Hand, note: str) -> None:
    """An integrity finding: the check fails (policy "zero") or passes with the finding kept for review."""
    if _policy(hand) == "flag":
        result.flags.append(f"{result.name}: {note}")
        return
    result.passed = False
    result.message = f"✘ {result.name}: {note}"
    result.mistakes = ["integrity"]


def _judge(title, student, cases, names, rtol, atol, hand, mistakes, samplers, outcomes, traces,
           key=None, references=None) -> CheckResult:
    failed = [o for o in outcomes if not o[3]]
    worst = max(o[4] for o in outcomes)
    if not failed:
        result = CheckResult(title, True, f"✔ {title}: correct at {len(cases)} random points, "
                             f"{_domains(names, samplers)} "
                             f"(worst relative error {worst:.1e})", len(cases), worst)
        if traces and hand is not None:
            named = [] if _driving() else integrity.autodiff_names_in_source(student)
            how = ", ".join(named) if named else sorted(set(traces))[0]
            if not how.startswith("calls"):
                how = f"calls JAX automatic differentiation ({how})"
            _finding(result, hand, f"your hand derivation {how}: derive it by hand and write the formula")
        return result
    args, expected, got, _, err, _ = failed[0]
    named = [label for label, values in _mistake_values(mistakes, cases).items()
             if values is not None and all(_compare(o[2], v, diagnosis.CLOSE, 0)[0] for o, v in zip(outcomes, values))]
    rows = [(o[2], o[1], o[3], o[5]) for o in outcomes]
    fallback = None
    if not named and references is not None and all(np.shape(o[2]) == o[1].shape for o in outcomes):
        fallback = _once(lambda: _slip(key, references, names, cases, [o[2] for o in outcomes]))
    summary = diagnosis.summary(rows, named, fallback)
    detail = "" if np.shape(got) != expected.shape else f" (relative error {err:.1e})"
    message = (f"✘ {title}: {summary}. Inputs: {_domains(names, samplers)}{diagnosis.DETAILS}"
               f"at {_at(names, args)} expected {_fmt(expected)} but got {_fmt(got)}{detail}")
    return CheckResult(title, False, message, len(cases), worst, diagnosis.findings(rows, named, fallback))


def _slip(key, references, names, cases, gots) -> str | None:
    """A costlier diagnosis, tried when the values alone named nothing: altered inputs, a misplaced power of an
    input, a slip in one term (autograder.terms) or in one differentiation rule (autograder.mutants)."""
    evaluate, reference = references
    found = inputs.substituted(evaluate, names, cases, gots)
    if not found and isinstance(key, tuple):
        found = terms.slip(*key, cases, gots) or mutants.slip(*key, cases, gots)
    elif not found:
        found = terms.slip(None, reference, 0, cases, gots, what="the answer's term")
    return found or inputs.power_of_input(names, cases, gots)


def _once(compute: Callable) -> Callable:
    """``compute`` run at most once, when first called (a costly diagnosis only when nothing cheaper named it)."""
    memo: list = []

    def value():
        if not memo:
            memo.append(compute())
        return memo[0]
    return value


def _twin_call(result: CheckResult, student, reference, args, expected, rtol, atol, hand: _Hand, rng) -> None:
    """Grading only: call the answer once more, at a fresh point, with the set-up function ``hand.f`` swapped (in
    the kernel) for its twin, equal to it at the point but with other derivatives (autograder.twin). A formula
    gives the true value; an answer computed from f gives the twin's."""
    driver = _driving()
    label = driver.setup_name(hand.f)
    if label is None or not twin.swappable(hand.f):
        return
    at = list(hand.at) if hand.at is not None else list(range(len(args)))
    centre = [np.asarray(args[i], dtype=np.float64) for i in at]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = np.asarray(hand.f(*centre), dtype=np.float64)
    except Exception:
        return
    slopes = [_away_from_zero(rng, c.shape) / np.sqrt(max(1, c.size)) for c in centre]
    offset = _away_from_zero(rng, value.shape) * max(1.0, float(np.max(np.abs(value), initial=0.0)))
    spec = driver.twin_spec(label, centre, slopes, offset)
    if not _twin_applied(driver, hand.f, label, spec, centre, slopes, offset, rng):
        _finding(result, hand, f"the grader's channel in your kernel was altered: {label} was not swapped when "
                               "asked, so what your answer does with it cannot be checked")
        return
    note = (f"your answer follows {label} itself: it changed when {label} was replaced by a function with the "
            f"same value at the point but other derivatives there{{how}}. It is computed from {label} by automatic "
            f"differentiation or finite differences, not from a formula derived by hand")
    with driver.channel.twin(spec):
        try:
            got = _as_array(_call(student, args, "your function"), "your function")
        except _Fail as fail:
            _finding(result, hand, note.format(how=f" (then: {fail.message})"))
            return
    if _compare(got, expected, rtol, atol)[0]:
        return
    with twin.swapped([hand.f], centre, slopes, offset), jax.disable_jit(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            follows = np.asarray(reference(*args), dtype=np.float64)
            exact = _compare(got, follows, diagnosis.CLOSE, 0)[0]
        except Exception:
            exact = False
    _finding(result, hand, note.format(how=", to what differentiating the replacement gives" if exact else ""))


def _away_from_zero(rng, shape) -> np.ndarray:
    """Random numbers of either sign with 0.5 ≤ |x| ≤ 1.5: a twin's change is never too small to see."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


def _twin_applied(driver, f, label, spec, centre, slopes, offset, rng) -> bool:
    """The kernel really swaps ``f``: evaluated there, near the centre, under the same request, f gives the twin's
    value (computed here), not its own. A kernel whose end of the channel was patched to skip the swap fails."""
    norm = sum(float(np.sum(s * s)) for s in slopes) or 1.0
    near = [c + 1e-3 * s / norm for c, s in zip(centre, slopes)]   # ⟨s, y − c⟩ = 1e-3: within f's domain
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = np.asarray(f(*near), dtype=np.float64)
        if not np.all(np.isfinite(own)):
            return True
        bump = np.exp(sum(np.sum(s * (y - c)) for y, c, s in zip(near, centre, slopes))) - 1.0
        with driver.channel.twin(spec):
            seen = _as_array(driver.channel.call({"setup": label}, near, {}, label), label)
        return bool(_compare(seen.astype(np.float64), own + bump * offset, 1e-6, 0)[0])
    except Exception:
        return False


def _mistake_values(mistakes, cases) -> dict[str, list | None]:
    """label -> the named mistake's values at every point (None if it cannot be evaluated there)."""
    out = {}
    for label, wrong in (mistakes or {}).items():
        wrong = _jit_or_eager(wrong, _reference_key(None, wrong))
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
               rtol: float | None = None, atol: float = 0.0, mistakes=None, name: str | None = None,
               integrity: str | None = None) -> CheckResult:
    """Check ``df(x)`` against ``jax.grad(f)(x)`` for scalar x drawn from ``domain``.

    ``df`` must be derived by hand: while grading, an answer computed from f itself fails (``integrity="flag"``
    only flags it for review)."""
    return _run("derivative", df, _grad_ref(f, 0, jax.grad), shapes=None, domain=domain, points=points,
                seed=seed, rtol=rtol, atol=atol, hand=_Hand(f, None, integrity), mistakes=mistakes,
                name=name or f"of {_label(f, 'f')}", key=(jax.grad, f, 0))


def _autodiff_check(kind: str, transform: Callable, reference: str, doc: str) -> Callable:
    def check_against_jax(answer: Callable, f: Callable, shapes, domain=None, *, argnums: int = 0,
                          points: int = DEFAULT_POINTS, seed=None, rtol: float | None = None, atol: float = 0.0,
                          mistakes=None, name: str | None = None, integrity: str | None = None) -> CheckResult:
        return _run(kind, answer, _grad_ref(f, argnums, transform), shapes=shapes, domain=domain,
                    points=points, seed=seed, rtol=rtol, atol=atol, hand=_Hand(f, None, integrity),
                    mistakes=mistakes, name=name or f"of {_label(f, 'f')}", key=(transform, f, argnums))

    check_against_jax.__name__ = check_against_jax.__qualname__ = kind.lower()
    check_against_jax.__doc__ = (f"Check ``answer(*args)`` against ``{reference}(*args)``{doc}; the answer "
                                 "must be derived by hand (see ``derivative``).")
    return check_against_jax


gradient = _autodiff_check("gradient", jax.grad, "jax.grad(f, argnums)", "; ``shapes`` gives each argument's shape")
jacobian = _autodiff_check("Jacobian", jax.jacobian, "jax.jacobian(f, argnums)", " (output shape + input shape)")
hessian = _autodiff_check("Hessian", jax.hessian, "jax.hessian(f, argnums)", "")


def values(fn: Callable, reference: Callable, shapes=None, domain=None, *, points: int = DEFAULT_POINTS,
           seed=None, rtol: float | None = None, atol: float = 0.0, autodiff: bool = True,
           derived_from: Callable | None = None, at: Sequence[int] | None = None, integrity: str | None = None,
           mistakes=None, name: str | None = None) -> CheckResult:
    """Check ``fn(*args)`` against ``reference(*args)``: for HVPs, Taylor polynomials, finite differences.

    ``autodiff=False`` makes the answer a hand derivation: JAX autodiff inside ``fn`` fails the check and, while
    grading, so does an answer computed from ``derived_from`` (the set-up function the quantity is derived from,
    evaluated at the arguments ``at``, by default all of them); ``integrity="flag"`` only flags it.
    """
    hand = None if autodiff else _Hand(derived_from, at, integrity)
    return _run("values", fn, reference, shapes=shapes, domain=domain, points=points, seed=seed,
                rtol=rtol, atol=atol, hand=hand, mistakes=mistakes,
                name=name or f"of {_label(fn, 'your function')}")


def close(got, expected, *, rtol: float | None = None, atol: float = 0.0, name: str = "value",
          reveal: bool = False) -> CheckResult:
    """Compare one computed answer with the expected one (same rules: shape, finiteness, tolerance).

    The expected value is shown only with ``reveal=True`` (never while grading), so a self-check does not give
    the answer away.
    """
    try:
        g = _as_array(got, "your answer")
    except _Fail as fail:
        return CheckResult(name, False, f"✘ {name}: {fail.message}")
    return _close_verdict(g, expected, rtol, atol, name, reveal and not _driving())


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
    shown = (f"expected {_fmt(e)} but got {_fmt(g)}" if reveal else
             "your answer is not right" if _driving() else f"{_fmt(g)} is not right")
    return CheckResult(name, False, f"✘ {name}: {shown}" + (f". {reason}" if reason else ""),
                       1, err, [reason] if reason else [])


def equal(got, expected, *, name: str = "answer", cases: Sequence[str] | None = None,
          inputs: Sequence[Any] | None = None) -> CheckResult:
    """Exact comparison for discrete answers, e.g. "minimum" or a list of labels.

    For a list of answers, one per case, a failure names the cases that are wrong (counted from 1), with their
    description from ``cases`` and, in a notebook, the answer given and the case's input from ``inputs``."""
    if _same(got, expected):
        return CheckResult(name, True, f"✔ {name}: correct", 1, 0.0)
    which = _wrong_cases(got, expected, cases, inputs)
    if which:
        return CheckResult(name, False, f"✘ {name}: {which}", 1, 1.0, [which.split(diagnosis.DETAILS)[0]])
    shown = "your answer" if _driving() else f"got {got!r}, which"
    return CheckResult(name, False, f"✘ {name}: {shown} is not right", 1, 1.0)


def _same(got, expected) -> bool:
    try:
        return bool(got == expected)
    except Exception:
        return False


def _wrong_cases(got, expected, cases, inputs) -> str | None:
    """Which cases of a list answer are wrong, or None when the answer is not a list of the right length."""
    if isinstance(expected, str) or not isinstance(expected, (list, tuple)) or len(expected) < 2:
        return None
    try:
        answers = list(got)
    except TypeError:
        return None
    if isinstance(got, str) or len(answers) != len(expected):
        return f"your answer has {len(answers)} items, one per case, expected {len(expected)}"
    wrong = [i for i, (g, e) in enumerate(zip(answers, expected)) if not _same(g, e)]
    labels = [f"case {i + 1}" + (f" ({cases[i]})" if cases else "") for i in wrong]
    text = f"wrong in {len(wrong)} of {len(expected)} cases: " + ", ".join(labels)
    if _driving():
        return text
    first = wrong[0]
    where = f" for input {_fmt(inputs[first])}" if inputs is not None else ""
    return text + f"{diagnosis.DETAILS}case {first + 1}: you answered {answers[first]!r}{where}"
