"""The trusted driver: runs an assignment's test cells in the grader's worker, never in the student's kernel.

The executor (autograder.grading.contained) runs the student's cells in the sandboxed kernel. Each instructor cell
(the set-up and any other locked code cell) runs in both places, from the instructor's source; each test cell runs
here only. The names a test uses that the instructor's code does not define are the student's: the driver asks
the kernel for them (autograder.grading.channel) and binds proxies (functions) or copies (data). The checks then
draw their points here, at call time, compute references and named mistakes here, and call the student's
functions through the channel. So no test source, point, reference or expected value is ever in the kernel, and
a verdict depends only on the values the student's functions return.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import types
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import check, wire
from ..diagnosis import DETAILS
from .channel import Channel, ChannelError, Missing, StudentFunction, global_names


@dataclass
class CellVerdict:
    passed: bool
    diagnosis: str = ""                          # the grader's words, no points, values or kernel text
    flags: list[str] = field(default_factory=list)


def public(message: str) -> str:
    """A check's message without the failing point and values (they follow DETAILS) and without its mark."""
    return message.split(DETAILS, 1)[0].strip().lstrip("✘✔ ").strip()


class _Context:
    """What the checks see while a test cell runs here (check._DRIVER)."""

    def __init__(self, channel: Channel, policy: str):
        self.channel, self.policy = channel, policy
        self.results: list[check.CheckResult] = []
        self.pending_twin = None   # set by the checks: the twin call of the cell's last passing hand check
        self.named_mistakes: list = []   # declared by the cell's hidden part (check.named_mistakes)

    def setup_name(self, fn) -> str | None:
        return self.channel.setup_names.get(id(fn))

    def reference_key(self, fn):
        """A key under which a reference compiled from ``fn`` (a test cell's function) serves later submissions
        of this worker: its code (compiled once per worker), defaults and captured values. None when any of them,
        or a global it reads, is the student's (then it is compiled for this submission only)."""
        try:
            return ("test", _freeze(fn, self.channel))
        except _Unkeyable:
            return None

    def twin_spec(self, name: str, centre, slopes, offset) -> dict:
        return {"name": name, "centre": [wire.encode(c) for c in centre],
                "slopes": [wire.encode(np.asarray(s)) for s in slopes], "offset": wire.encode(np.asarray(offset))}


class _Unkeyable(Exception):
    pass


def _freeze(value, channel, depth: int = 0):
    if depth > 4 or isinstance(value, (StudentFunction, Missing)):
        raise _Unkeyable
    if isinstance(value, types.FunctionType) and value.__code__.co_filename.startswith(("<test", "<instructor")):
        for name in global_names(value.__code__):
            if isinstance(value.__globals__.get(name), (StudentFunction, Missing)):
                raise _Unkeyable
        keyword = sorted((value.__kwdefaults__ or {}).items())   # `lambda *a, i=i: ...` keeps i here
        return (value.__code__, tuple(_freeze(d, channel, depth + 1) for d in value.__defaults__ or ()),
                tuple((k, _freeze(v, channel, depth + 1)) for k, v in keyword),
                tuple(_freeze(c.cell_contents, channel, depth + 1) for c in value.__closure__ or ()))
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    try:
        hash(value)
    except TypeError:
        raise _Unkeyable from None
    return value


_CODE: dict = {}          # (grade id, source) -> its compiled code, so that its functions' code objects are stable
_INSTRUCTOR: dict = {}   # (sources run so far) -> the namespace they made, per worker process
_RECORDED = ("derivative", "gradient", "jacobian", "hessian", "values", "close", "equal")


class _RecordingCheck:
    """The ``check`` module as test code sees it here: the same functions, each result also kept."""

    def __init__(self, context: _Context):
        self._context = context

    def __getattr__(self, name):
        value = getattr(check, name)
        if name not in _RECORDED:
            return value

        def recorded(*args, **kwargs):
            result = value(*args, **kwargs)
            self._context.results.append(result)
            return result

        return recorded


class Driver:
    """One submission's test run. ``channel`` reaches its kernel; ``policy`` is the batch's integrity policy. With
    ``explain`` (the instructor's own solution, never a student's), a failure keeps the point and values where it
    failed and what the test code raised, for the instructor to fix the test."""

    def __init__(self, channel: Channel, policy: str = "zero", explain: bool = False):
        self.channel, self.policy, self.explain = channel, policy, explain
        self.ns: dict = {"__name__": "__vc4ml_tests__", "__builtins__": builtins}
        self._student: set[str] = set()
        self._key: tuple | None = None

    def instructor_cell(self, source: str, label: str) -> None:
        """Run an instructor cell (already run in the kernel too) and tell the kernel which objects it made. Its
        objects are made once per worker and shared by later submissions' drivers, so that references compiled
        for them are reused (they are the instructor's, deterministic, and only ever swapped inside a block)."""
        self._key = (self._key, source)
        if self._key not in _INSTRUCTOR:
            before = dict(self.ns)
            with _quiet():
                exec(compile(source, f"<instructor {label}>", "exec"), self.ns)
            _INSTRUCTOR[self._key] = {k: v for k, v in self.ns.items()
                                      if not k.startswith("__") and (k not in before or before[k] is not v)}
        made = _INSTRUCTOR[self._key]
        self.ns.update(made)
        for name, value in made.items():
            if callable(value) or isinstance(value, type(np)):
                self.channel.setup_names[id(value)] = name
        self.channel.request("snapshot", names=sorted(n for n, v in made.items() if callable(v)))

    def test_cell(self, source: str, grade_id: str) -> CellVerdict:
        """Run one test cell here; it passes if it runs to the end (as in nbgrader) and every check passed."""
        try:
            if (grade_id, source) not in _CODE:
                _CODE[(grade_id, source)] = compile(source, f"<test {grade_id}>", "exec")
            code = _CODE[(grade_id, source)]
        except SyntaxError:
            return CellVerdict(False, "the test cell does not compile (instructor: check the source)")
        for name in self._student:          # the previous test's view of the student's names
            self.ns.pop(name, None)
        wanted = sorted(n for n in _loaded_names(source) if n not in self.ns and not hasattr(builtins, n))
        context = _Context(self.channel, self.policy)
        token = check._DRIVER.set(context)
        error = None
        try:
            found = self.channel.resolve(wanted) if wanted else {}
            self._student = set(found)
            self.ns.update(found)
            self.ns["check"] = _RecordingCheck(context)
            with _quiet():
                exec(code, self.ns)
                if context.pending_twin is not None:
                    context.pending_twin()
        except check.CheckFailed as exc:   # a check the context did not see (test code imported check itself)
            error = str(exc) if self.explain else public(str(exc))
        except NameError as exc:
            error = (f"`{exc.name}` is not defined in your notebook (NameError): did its cell run without errors?"
                     if exc.name else "a name the test needs is not defined (NameError)")
        except Exception as exc:
            error = _why(exc)
            if self.explain and not getattr(exc, "kind", None) and not isinstance(exc, ChannelError):
                error = f"the test cell raised {type(exc).__name__}: {str(exc)[:300]}"
        finally:
            check._DRIVER.reset(token)
            self.ns["check"] = check
        flags = [f for r in context.results for f in r.flags]
        failed = [r for r in context.results if not r.passed]
        if failed:
            return CellVerdict(False, failed[0].message if self.explain else public(failed[0].message), flags)
        if error:
            return CellVerdict(False, error, flags)
        return CellVerdict(True, "", flags)



def _why(exc: Exception) -> str:
    if getattr(exc, "kind", None):   # the channel's words about the student's function
        return str(exc)
    if isinstance(exc, ChannelError):
        return f"the tests could not reach your notebook's kernel: {exc}"
    return f"the tests could not use your answer ({type(exc).__name__})"


def _loaded_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@contextlib.contextmanager
def _quiet():
    """Instructor code here prints into nothing (its checks' results are collected instead)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
