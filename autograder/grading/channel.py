"""The narrow channel between the trusted driver and a student's kernel: the only place where a value the student's
code produced enters the trusted side.

Outbound, a request carries concrete arguments (data, set-up functions by name, modules by name, and the test's
own small functions as their code and captured numbers) and, for the integrity check, the twin to swap in
(autograder.twin). Inbound, a reply is taken only from the display output that carries this request's id, and
its value only through :func:`autograder.wire.decode` (plain data of bounded size, no pickles, no code). What
reaches the test code is therefore numbers, strings and containers of them, never an object the student made.
Kernel text (exception messages, prints) never crosses: an exception is reported by its type name alone.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import marshal
import re
import types

from .. import wire
from ..endpoint import MIME

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,59}")


class ChannelError(Exception):
    """No usable reply: the kernel timed out, died, or answered with something malformed."""


class StudentTimeout(ChannelError):
    pass


class KernelGone(ChannelError):
    pass


class _Deferred(BaseException):
    """Raised at a student's function while the channel only records calls (see Channel.prefetch)."""


class StudentError(Exception):
    """The student's function did not give a value; the message is the grader's own words."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


def _type_name(value) -> str:
    text = value if isinstance(value, str) else ""
    match = _IDENT.fullmatch(text)
    return match.group(0) if match else "an exception"


class Channel:
    """Requests to one kernel. ``execute(code)`` runs code in the kernel and returns the cell's outputs (raising
    StudentTimeout or KernelGone); the executor supplies it."""

    def __init__(self, execute, setup_names: dict[int, str] | None = None):
        self._execute = execute
        self._ids = itertools.count(1)
        self.setup_names = setup_names or {}   # id(object) -> its name in the set-up
        self.twin_spec: dict | None = None
        self.findings: list[str] = []          # autodiff traces or compiled executables seen in calls
        self._recording: list | None = None
        self._memo: dict = {}

    def request(self, op: str, **fields) -> dict:
        rid = f"r{next(self._ids)}"
        payload = json.dumps({"op": op, "id": rid, **fields})
        outputs = self._execute(f"__import__('autograder.endpoint').endpoint.serve({payload!r})")
        for out in outputs:
            data = out.get("data") if out.get("output_type") == "display_data" else None
            reply = data.get(MIME) if isinstance(data, dict) else None
            if isinstance(reply, dict) and reply.get("id") == rid:
                return reply
        raised = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
        if raised:   # e.g. a KeyboardInterrupt or SystemExit raised by the student's code
            raise ChannelError(f"it raised {_type_name(raised[0])}")
        raise ChannelError("the kernel gave no reply (the set-up or the channel was broken)")

    # -- names

    def resolve(self, names: list[str]) -> dict:
        """name -> a StudentFunction, a value, or a Missing saying why it cannot be used."""
        reply = self.request("resolve", names=names)
        found = reply.get("names")
        out = {}
        for name in names:
            info = found.get(name) if isinstance(found, dict) else None
            if not isinstance(info, dict):
                continue
            if info.get("callable") is True:
                out[name] = StudentFunction(self, name)
            elif "value" in info:
                try:
                    out[name] = wire.decode(info["value"])
                except wire.WireError as exc:
                    out[name] = Missing(name, f"`{name}` is {exc}")
            else:
                out[name] = Missing(name, f"`{name}` is a {_type_name(info.get('unsupported'))}, "
                                          "which the grader cannot read")
        return out

    # -- calls

    @contextlib.contextmanager
    def twin(self, spec: dict | None):
        """Calls inside the block run with the set-up function ``spec['name']`` swapped for its twin."""
        saved, self.twin_spec = self.twin_spec, spec
        try:
            yield
        finally:
            self.twin_spec = saved

    def prefetch(self, fn, argsets: list) -> None:
        """Make the calls of the student's functions that ``fn(args)`` would make for every argument set, in one
        request per function: ``fn`` first runs with each call only recorded, then the results wait in a memo for
        the real runs (a test's small wrapper around a student's function then costs one round trip, not one
        per point)."""
        self._memo.clear()
        recorded: list = []
        self._recording = recorded
        try:
            for args in argsets:
                try:
                    fn(args)
                except _Deferred:
                    pass
                except Exception:
                    pass
        finally:
            self._recording = None
        groups: dict = {}
        for target, call, key in recorded:
            groups.setdefault(json.dumps(target, sort_keys=True), []).append((call, key))
        for target, group in groups.items():
            results = self.call_many(json.loads(target), [call for call, _ in group], "your function")
            self._memo.update({key: result for (_, key), result in zip(group, results)})

    def call(self, target: dict, args, kwargs, label: str):
        if self._recording is not None or self._memo:
            key = json.dumps([target, [self.ref(a) for a in args], {k: self.ref(v) for k, v in kwargs.items()}],
                             sort_keys=True)
            if self._recording is not None:
                self._recording.append((target, (args, kwargs), key))
                raise _Deferred
            if key in self._memo:
                out = self._memo.pop(key)
                if isinstance(out, StudentError):
                    raise out
                return out
        out = self.call_many(target, [(args, kwargs)], label)[0]
        if isinstance(out, StudentError):
            raise out
        return out

    def call_many(self, target: dict, calls: list, label: str) -> list:
        """One request for several calls: each result is a value or a StudentError; the kernel stops at the first
        call that gives no value, and a shorter list is padded with that error."""
        try:
            encoded = [{"args": [self.ref(a) for a in args], "kwargs": {k: self.ref(v) for k, v in kwargs.items()}}
                       for args, kwargs in calls]
        except wire.WireError as exc:
            raise StudentError(f"the test could not send its arguments: {exc}", "grader") from None
        request = {"target": target, "calls": encoded}
        if self.twin_spec:
            request["twin"] = self.twin_spec
        try:
            reply = self.request("call", **request)
        except StudentTimeout:
            return [StudentError(f"{label} timed out: it ran past the time limit per test (an infinite loop or "
                                 "a very slow answer?)", "timeout")] * len(calls)
        except KernelGone as exc:
            return [StudentError(f"{label} could not be called: {exc}", "gone")] * len(calls)
        except ChannelError as exc:
            return [StudentError(f"{label} could not be called: {exc}", "channel")] * len(calls)
        traces = reply.get("autodiff")
        if isinstance(traces, list) and traces:
            self.findings.append("calls JAX automatic differentiation ("
                                 + ", ".join(_type_name(t) for t in traces[:3]) + ")")
        if reply.get("compiled") is True:
            self.findings.append("calls a precompiled JAX executable (made before the tests ran)")
        results = reply.get("results")
        if not isinstance(results, list) or not results or len(results) > len(calls):
            return [StudentError(f"{label} could not be called (the kernel's end of the channel failed)",
                                 "channel")] * len(calls)
        out = [self._result(r, label) for r in results]
        return out + [out[-1]] * (len(calls) - len(out))

    def _result(self, reply, label: str):
        if not isinstance(reply, dict):
            return StudentError(f"{label} could not be called (the kernel's end of the channel failed)", "channel")
        if reply.get("not_answered") is True:
            return StudentError(f"{label} is not answered yet (it still raises NotImplementedError)", "stub")
        if "raised" in reply:
            return StudentError(f"{label} raised {_type_name(reply['raised'])}", "raised")
        if "unsendable" in reply:
            return StudentError(f"{label} returned a {_type_name(reply['unsendable'])}, which is not a value "
                                "the tests can read (return numbers or arrays)", "unsendable")
        if "value" not in reply:
            return StudentError(f"{label} could not be called (the kernel's end of the channel failed)", "channel")
        try:
            return wire.decode(reply["value"])
        except wire.WireError as exc:
            return StudentError(f"{label} returned {exc}", "unreadable")

    # -- arguments (trusted -> kernel)

    def ref(self, value, depth: int = 0) -> dict:
        if depth > 6:
            raise wire.WireError("a function nested too deeply to send")
        if isinstance(value, StudentFunction):
            return {"student": value.name}
        if isinstance(value, types.ModuleType):
            return {"module": value.__name__}
        if callable(value) and id(value) in self.setup_names:
            return {"setup": self.setup_names[id(value)]}
        if isinstance(value, types.FunctionType) and value.__code__.co_filename.startswith("<test"):
            return {"fn": self._function(value, depth)}
        if callable(value) and not isinstance(value, type):
            module, name = getattr(value, "__module__", None), getattr(value, "__name__", None)
            if module and name:
                return self._library(value, module, name)
        return {"value": wire.encode(value)}

    def _library(self, value, module: str, name: str) -> dict:
        import importlib

        for candidate in (module, module.rsplit(".", 1)[0], "jax.numpy", "numpy"):
            try:
                if getattr(importlib.import_module(candidate), name, None) is value:
                    return {"attr": [candidate, name]}
            except ImportError:
                continue
        raise wire.WireError(f"a function ({module}.{name}) that cannot be sent")

    def _function(self, fn: types.FunctionType, depth: int) -> dict:
        scope = {}
        for name in global_names(fn.__code__):
            if name in fn.__globals__:
                scope[name] = self.ref(fn.__globals__[name], depth + 1)
        cells = [self.ref(c.cell_contents, depth + 1) for c in fn.__closure__ or ()]
        defaults = [self.ref(d, depth + 1) for d in fn.__defaults__ or ()]
        return {"code": base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii"), "name": fn.__name__,
                "globals": scope, "closure": cells, "defaults": defaults}


def global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


class StudentFunction:
    """A student's function, as the test code sees it: calling it calls it in the kernel."""

    def __init__(self, channel: Channel, name: str):
        self.channel, self.name, self.__name__ = channel, name, name

    def __call__(self, *args, **kwargs):
        return self.channel.call({"student": self.name}, args, kwargs, "your function")

    def call_many(self, calls: list) -> list:
        """Several calls (lists of positional arguments) in one request: values or StudentErrors."""
        return self.channel.call_many({"student": self.name}, [(args, {}) for args in calls], "your function")

    def __repr__(self) -> str:
        return f"<your function {self.name}>"


class Missing:
    """A name the test needs that the student's notebook does not provide in a usable form."""

    def __init__(self, name: str, why: str):
        self.name, self.why = name, why

    def __call__(self, *args, **kwargs):
        raise StudentError(self.why, "missing")
