"""Grading speed: stock `nbgrader autograde` vs `autograder autograde --jobs N` vs bare nbclient, in one run.

Builds a class of at least 40 submissions from the demo classes (correct, rewritten, wrong, stub, syntax
error, and slow answers that sleep; infinite loops are left out so that timeouts do not dominate), grades it
three ways on fresh copies, and prints a table. The last line is
    speedup_vs_nbgrader=<stock / ours> overhead_vs_nbclient=<ours / nbclient>
where nbclient executes the same notebooks with the same number of worker processes and does nothing else.

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


def stock(data: Path, plan) -> float:
    env = {**os.environ, "AUTOGRADER_DATA": str(data), "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    start = time.perf_counter()
    for name in plan:
        subprocess.run([str(ROOT / ".venv/bin/nbgrader"), "autograde", name, "--force"], cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def ours(data: Path, plan, jobs: int) -> float:
    env = {**os.environ, "AUTOGRADER_DATA": str(data)}
    start = time.perf_counter()
    for name in plan:
        subprocess.run([sys.executable, "-m", "autograder", "autograde", name, "--jobs", str(jobs), "--force"],
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def _execute(path: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cwd:
        NotebookClient(nb, timeout=20, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": cwd}}).execute()


def bare(data: Path, jobs: int) -> float:
    notebooks = sorted(str(p) for p in (data / "submitted").glob("*/*/*.ipynb"))
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_execute, notebooks))
    return time.perf_counter() - start


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
        t_stock = stock(copies["stock"], plan)
        print(f"stock nbgrader autograde (serial)    {t_stock:8.1f} s  {t_stock / total:5.2f} s/submission", flush=True)
        t_ours = ours(copies["ours"], plan, args.jobs)
        print(f"autograder autograde --jobs {args.jobs}        {t_ours:8.1f} s  {t_ours / total:5.2f} s/submission", flush=True)
        t_bare = bare(copies["bare"], args.jobs)
        print(f"bare nbclient, {args.jobs} processes            {t_bare:8.1f} s  {t_bare / total:5.2f} s/submission", flush=True)
    print(f"speedup_vs_nbgrader={t_stock / t_ours:.2f} overhead_vs_nbclient={t_ours / t_bare:.2f}")


if __name__ == "__main__":
    main()
