"""Grading speed: stock `nbgrader autograde` vs `autograder autograde --jobs N` vs bare nbclient, in one run.

Builds a class of at least 40 submissions from the demo classes of every assignment (correct, rewritten, wrong,
stub, syntax error, and slow answers that sleep; infinite loops are left out so that timeouts do not dominate),
grades it on fresh copies, and prints a table. Each grader gets one command for the whole class:
`nbgrader autograde "*"` (nbgrader takes a glob of assignments) and `autograder autograde --all`.
Our grader's instructor runs `autograder release --all` before students submit, as for stock nbgrader's
generate_assignment: it also grades each assignment's solution against its own tests (once per assignment, whatever
the class size; its reference compiles fill the cache). That time is printed on its own line, and a line before the
last counts it in the first batch. Our grader then runs twice on the same class: the first batch compiles what the
solutions did not need (the named mistakes of wrong answers); the next batch (`--force`, what regrading or the next
batch of a large class costs) finds everything cached. The last line is
    speedup_vs_nbgrader=<stock / ours> overhead_vs_nbclient=<ours / nbclient> steady_speedup_vs_nbgrader=<stock /
    ours next batch> steady_overhead_vs_nbclient=<ours next batch / nbclient>
where nbclient executes, with the same number of worker processes and nothing else, the notebooks that grading
executes: each submission with the instructor's hidden tests put back (taken from stock nbgrader's autograded
copies, outputs cleared), run as plain notebooks, as a student or stock nbgrader runs them. Our grader's kernels
run only the set-up and the student's cells; the test cells run in the trusted driver of each worker, which calls
the answers through the channel and computes the references itself (compiled once per worker and set-up
function): that division of work is part of what is measured.

    .venv/bin/python benchmarks/grading.py [--size 40] [--jobs CORES]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SLOW = {"q1_answer": "import time\ndef d_f1(x):\n    time.sleep(0.3)\n    return 20 * x**4 + 6 / x**3\n"}


def build_class(data: Path, size: int) -> dict[str, list[str]]:
    from autograder.grading import demo, release

    os.environ["AUTOGRADER_DATA"] = str(data)
    names = demo.available()
    per = -(-size // len(names))
    plan = {}
    for name in names:
        release.release(name)
        base = [s for s in demo.load(name) if "infinite" not in s.student and "loop" not in s.about]
        if name == "ch01_univariate":
            base.append(demo.DemoStudent("slow", "sleeps in every call", SLOW, {}))
        students = []
        for i in range(per):
            s = base[i % len(base)]
            students.append(demo.DemoStudent(f"{s.student}_{i:02d}", s.about, s.answers, s.expected))
        plan[name] = demo.build(name, students)
    return plan


def _timed(command: list[str], data: Path) -> float:
    env = {**os.environ, "AUTOGRADER_DATA": str(data), "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def stock(data: Path) -> float:
    return _timed([str(ROOT / ".venv/bin/nbgrader"), "autograde", "*", "--force"], data)


def ours(data: Path, jobs: int) -> float:
    return _timed([sys.executable, "-m", "autograder", "autograde", "--all", "--jobs", str(jobs), "--force"], data)


def graded_notebooks(stock_data: Path, bare_data: Path) -> list[str]:
    """Stock nbgrader's autograded notebooks (hidden tests restored), outputs cleared, each in its own folder."""
    import nbformat

    paths = []
    for graded in sorted((stock_data / "autograded").glob("*/*/*.ipynb")):
        folder = bare_data / "executed" / graded.parent.relative_to(stock_data / "autograded")
        shutil.copytree(stock_data / "submitted" / folder.relative_to(bare_data / "executed"), folder)
        nb = nbformat.read(graded, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, folder / graded.name)
        paths.append(str(folder / graded.name))
    return paths


def _execute(path: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    except Exception:  # a cell timeout: the notebook ran as long as a grader lets it
        pass


def _quiet() -> None:
    """Kernel start-up chatter to /dev/null, as our grader's workers send it to their log."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def bare(notebooks: list[str], jobs: int) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs, initializer=_quiet) as pool:
        list(pool.map(_execute, notebooks))
    return time.perf_counter() - start


def _row(label: str, seconds: float, total: int) -> None:
    print(f"{label:<48} {seconds:8.1f} s  {seconds / total:5.2f} s/submission", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        master = Path(tmp) / "master"
        plan = build_class(master, args.size)
        total = sum(len(v) for v in plan.values())
        copies = {k: Path(tmp) / k for k in ("stock", "ours", "bare")}
        for path in copies.values():
            shutil.copytree(master, path)
        print(f"class: {total} submissions across {', '.join(plan)}; {args.jobs} cores", flush=True)
        rows = [("stock: nbgrader autograde '*' (serial)", stock(copies["stock"]))]
        _row(*rows[-1], total)
        notebooks = graded_notebooks(copies["stock"], copies["bare"])
        assert len(notebooks) == total, f"stock nbgrader graded {len(notebooks)} of {total} submissions"
        checked = _timed([sys.executable, "-m", "autograder", "release", "--all", "--jobs", str(args.jobs)],
                         copies["ours"])
        print(f"{'ours: release --all, before students submit':<48} {checked:8.1f} s  (once per assignment: "
              f"regenerates the exercises, grades each solution against its tests)", flush=True)
        rows.append((f"ours: autograder autograde --all --jobs {args.jobs}", ours(copies["ours"], args.jobs)))
        _row(*rows[-1], total)
        rows.append(("ours, next batch (solutions, references cached)", ours(copies["ours"], args.jobs)))
        _row(*rows[-1], total)
        rows.append((f"bare nbclient, same notebooks, {args.jobs} processes", bare(notebooks, args.jobs)))
        _row(*rows[-1], total)
        (_, t_stock), (_, t_ours), (_, t_next), (_, t_bare) = rows
    print(f"with the release's solution checks counted in the first batch: "
          f"{t_stock / (checked + t_ours):.2f}x stock nbgrader, {(checked + t_ours) / t_bare:.2f}x nbclient")
    print(f"speedup_vs_nbgrader={t_stock / t_ours:.2f} overhead_vs_nbclient={t_ours / t_bare:.2f} "
          f"steady_speedup_vs_nbgrader={t_stock / t_next:.2f} steady_overhead_vs_nbclient={t_next / t_bare:.2f}")


if __name__ == "__main__":
    main()
