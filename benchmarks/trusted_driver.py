"""Grading time per submission before and after the trusted driver (issue 12), side by side in one run.

Each side is a checkout of the repository with its own virtual environment (this one, and a clone of the baseline
commit in the temporary folder, set up by its own `make .venv/.installed` the first time). Each builds the bundled
demo classes (every assignment, every demo student except infinite loops) in a fresh data folder and grades them
with one `autograde_many` over every assignment (what `autograder autograde --all --jobs N` runs). The sides
alternate for `--rounds` rounds; the table gives the median of each, and the last line is

    ratio_after_vs_before=<after / before>

    .venv/bin/python benchmarks/trusted_driver.py [--baseline c638fa6] [--jobs CORES] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside one side's checkout: build its demo classes, grade them, print "<submissions> <seconds>".
SIDE = """
import os, sys, time
from autograder.grading import autograde, demo, release
os.environ["AUTOGRADER_DATA"] = sys.argv[1]
count = 0
for name in demo.available():
    release.release(name)
    students = [s for s in demo.load(name) if "infinite" not in s.student and "loop" not in s.about]
    count += len(demo.build(name, students))
start = time.perf_counter()
autograde.autograde_many(demo.available(), jobs=int(sys.argv[2]), stream=open(os.devnull, "w"))
print(count, time.perf_counter() - start)
"""


def run_side(tree: Path, jobs: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="vc4ml-bench-") as data:
        out = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-c", SIDE, data, str(jobs)], cwd=tree,
                             check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1])


def baseline_tree(rev: str) -> Path:
    """A clone of ``rev`` with its own virtual environment (kept for the next run)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = Path(tempfile.gettempdir()) / f"vc4ml-baseline-{sha}"
    if not (tree / ".git").exists():
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(tree)], check=True)
        subprocess.run(["git", "checkout", "--quiet", sha], cwd=tree, check=True)
    subprocess.run(["make", "--quiet", ".venv/.installed"], cwd=tree, check=True, capture_output=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="c638fa6", help="the commit before the trusted driver")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    before = baseline_tree(args.baseline)
    times: dict[str, list[float]] = {"before": [], "after": []}
    counts = {}
    for _ in range(args.rounds):
        for side, tree in (("before", before), ("after", ROOT)):
            counts[side], seconds = run_side(tree, args.jobs)
            times[side].append(seconds)
    print(f"demo classes of every assignment, {args.jobs} workers, {args.rounds} round(s)")
    for side in ("before", "after"):
        median = statistics.median(times[side])
        print(f"{side:7s} {counts[side]:3d} submissions  {median:7.1f} s  {median / counts[side]:5.2f} s/submission"
              f"  ({args.baseline if side == 'before' else 'this checkout'})")
    before = statistics.median(times["before"]) / counts["before"]
    after = statistics.median(times["after"]) / counts["after"]
    print(f"ratio_after_vs_before={after / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
