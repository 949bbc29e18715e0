"""Warm latency of `check.derivative` and `check.gradient` in a real notebook kernel:
this checkout side by side with a baseline commit, in one run.

Two ipykernel kernels (started by jupyter_client with this virtual environment's
python, JAX_PLATFORMS=cpu) run the set-up cell, the solution and the visible test cell
of two exercises: chapter 1 Q2 (`check.derivative(d_f2, f2, ...)`) and chapter 2 Q1
(`check.gradient(grad_f1, f1, shapes=(3,), ...)`), 5 points each. One kernel imports
this checkout's `autograder`; the other the baseline commit's, extracted with `git
archive` and put first on its PYTHONPATH. After three warm-up runs, each test cell
runs `--calls` times in each kernel, the two kernels taking turns so that both see the
same load.

Times are medians in ms: "check" is the test cell's statement (the check, its verdict
and the printed line) timed inside the kernel; "cell" is the whole execution as the
front end sees it, from the request to the kernel's idle. Each kernel then answers
with a jitted autodiff cheat (`jax.jit(jax.grad(f))`, compiled before the checks)
three times: every one must be flagged. The last line gives the in-kernel medians and
the smaller of the two speed-ups:

    check_latency: derivative_ms=.. gradient_ms=.. (baseline ..,..) speedup=..x target<=50ms: PASS

    .venv/bin/python benchmarks/check_latency.py [--baseline 3378db2] [--calls 20]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0

# label -> (assignment, answer cell, test cell, a jitted cheat compiled before checks)
CASES = {
    "derivative": ("ch01_univariate", "q2_answer", "q2_test",
                   "d_f2 = jax.jit(jax.grad(f2)); d_f2(1.5)"),
    "gradient": ("ch02_gradients", "q1_answer", "q1_test",
                 "grad_f1 = jax.jit(jax.grad(f1)); grad_f1(np.ones(3))"),
}
NAMES = {"derivative": "derivative: ch01 Q2 d_f2 of f2",
         "gradient": "gradient: ch02 Q1 grad_f1 of f1"}


def cell_source(assignment: str, grade_id: str) -> str:
    """A cell of the instructor's notebook: the solution in, hidden tests out."""
    path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            source = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS\n?", "",
                            "".join(cell["source"]), flags=re.S)  # the visible test may follow a hidden part
            marker = re.compile(r"^\s*### (BEGIN|END) SOLUTION$\n?", flags=re.M)
            return marker.sub("", source).strip()
    raise KeyError(f"{assignment}: no cell {grade_id}")


def baseline_package(rev: str, folder: Path) -> Path:
    """The baseline's `autograder` package, extracted from git into ``folder``."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", rev, "autograder"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def kernelspec(folder: Path) -> Path:
    """A kernelspec for this python, so that both kernels run in this environment."""
    spec = folder / "bench"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "bench", "language": "python"}))
    return folder


class Kernel:
    """An ipykernel with ``path`` first on its PYTHONPATH, working in ``cwd``."""

    def __init__(self, name: str, path: Path, specs: Path, cwd: Path):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.km = KernelManager(kernel_name="bench")
        self.km.kernel_spec_manager = KernelSpecManager(kernel_dirs=[str(specs)])
        self.km.transport, self.km.ip = "ipc", str(cwd / f"kernel-{name}")
        env = {**os.environ, "PYTHONPATH": str(path), "JAX_PLATFORMS": "cpu"}
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str) -> tuple[float, str]:
        """Execute ``code`` as a cell: (ms from request to idle, its output)."""
        out: list[str] = []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{content['ename']}: {content['evalue']}\n")

        start = time.perf_counter()
        self.kc.execute_interactive(code, output_hook=hook, timeout=600)
        return 1e3 * (time.perf_counter() - start), "".join(out)

    def value(self, expression: str):
        """The JSON value of ``expression`` in the kernel."""
        wrapped = {"v": f"__import__('json').dumps({expression})"}
        reply = self.kc.execute_interactive("", user_expressions=wrapped, timeout=60,
                                            output_hook=lambda msg: None)
        text = reply["content"]["user_expressions"]["v"]["data"]["text/plain"]
        return json.loads(ast.literal_eval(text))

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def timed(test: str) -> str:
    """The test cell, timed inside the kernel into the list ``_bench``."""
    stop = "_bench.append(1e3 * (_time.perf_counter() - _t0))"
    return f"_t0 = _time.perf_counter()\n{test}\n{stop}"


def run_case(kernels: dict, label: str, calls: int) -> tuple[dict, dict]:
    """side -> (check ms, cell ms) medians; side -> the cheat was flagged each time."""
    assignment, answer_id, test_id, cheat = CASES[label]
    ids = ("setup", answer_id, test_id)
    setup, answer, test = (cell_source(assignment, g) for g in ids)
    for side, kernel in kernels.items():
        kernel.run(f"{setup}\n{answer}\nimport time as _time\n_bench = []")
        for _ in range(3):   # warm: imports, compiled references, the first print
            out = kernel.run(test)[1]
            if "✔" not in out:
                raise RuntimeError(f"{side} {label}: the solution does not pass: {out}")
    cells: dict = {side: [] for side in kernels}
    for _ in range(calls):
        for side, kernel in kernels.items():
            ms, out = kernel.run(timed(test))
            if "✔" not in out:
                raise RuntimeError(f"{side} {label}: {out}")
            cells[side].append(ms)
    times, flagged = {}, {}
    for side, kernel in kernels.items():
        inside = kernel.value("_bench")
        times[side] = (statistics.median(inside), statistics.median(cells[side]))
        kernel.run(cheat)
        verdicts = [kernel.run(test)[1] for _ in range(3)]
        flagged[side] = all("automatic differentiation" in v for v in verdicts)
    return times, flagged


def report(times: dict, flagged: dict, baseline: str, calls: int) -> None:
    print(f"warm checks at 5 points in an ipykernel kernel (JAX_PLATFORMS=cpu), "
          f"median of {calls}, in ms")
    print(f"{'check':32s} {'side':24s} {'check':>7s} {'cell':>7s}  "
          "jitted cheat flagged 3/3")
    for label in CASES:
        for side in ("baseline", "current"):
            who = (f"baseline ({baseline})" if side == "baseline"
                   else "current (this checkout)")
            check_ms, cell_ms = times[label][side]
            print(f"{NAMES[label]:32s} {who:24s} {check_ms:7.1f} {cell_ms:7.1f}  "
                  f"{'yes' if flagged[label][side] else 'NO'}")
    now = {label: times[label]["current"][0] for label in CASES}
    before = {label: times[label]["baseline"][0] for label in CASES}
    speedup = min(before[label] / now[label] for label in CASES)
    ok = all(now[label] <= TARGET_MS and flagged[label]["current"] for label in CASES)
    print(f"check_latency: derivative_ms={now['derivative']:.1f} "
          f"gradient_ms={now['gradient']:.1f} "
          f"(baseline {before['derivative']:.1f},{before['gradient']:.1f}) "
          f"speedup={speedup:.1f}x "
          f"target<={TARGET_MS:.0f}ms: {'PASS' if ok else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="3378db2",
                        help="the commit to compare with")
    parser.add_argument("--calls", type=int, default=20,
                        help="timed calls per check and side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vc4ml-latency-") as tmp:
        tmp = Path(tmp).resolve()
        sides = {"baseline": baseline_package(args.baseline, tmp / "baseline"),
                 "current": ROOT}
        specs = kernelspec(tmp / "kernels")
        (tmp / "work").mkdir()
        kernels: dict = {}
        try:
            for side, path in sides.items():
                kernels[side] = Kernel(side, path, specs, tmp / "work")
                where = kernels[side].value("__import__('autograder').__file__")
                if not where.startswith(str(path) + os.sep):
                    raise RuntimeError(f"the {side} kernel imports {where}, not {path}")
            times, flagged = {}, {}
            for label in CASES:
                times[label], flagged[label] = run_case(kernels, label, args.calls)
        finally:
            for kernel in kernels.values():
                kernel.close()
    report(times, flagged, args.baseline, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
