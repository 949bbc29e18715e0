"""Scale-out: one class graded through the Dask executor with 1 and then 2 worker processes, side by side, plus
the scheduler's overhead per task and the PostgreSQL gradebook's writes per second, in one run.

Everything is real and local: Debian's PostgreSQL in a temporary folder, a `dask scheduler` and `dask worker
--nthreads 1 --preload autograder.grading.warm` processes on 127.0.0.1 (tests/services.py starts them, as the
README does). The class is built from the demo class of ch01 (correct, rewritten and wrong answers), copied up to
--size submissions: by default 64, 32 per worker at 2 workers, so that what a batch pays once (the solution's run
on one worker, its start, its last task's tail) weighs about as little as in a class; a MOOC's batch gives each
core far more. Each worker count grades the whole class once on fresh workers with an empty compile cache of its
own, so each run checks the solution and compiles its references itself. A cluster's workers start once for many
batches, so the clock starts when they are ready: their start, warm-up included (imports, fork server), is
printed on its own. The client's own one-off imports and its first connection to the gradebook are done before
either clock starts.
"busy cores" is the whole machine's CPU use during each run: one worker's processes (its sandboxed kernel, its
trusted driver, the scheduler, the client) keep more than one core busy at times, which caps the ratio a 2-core
machine can show. The last line is

    scaling_2_over_1=<t1 / t2> task_overhead_ms=<per no-op task> gradebook_writes_per_s=<submissions/s>

    .venv/bin/python benchmarks/scaling.py [--size 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

A = "ch01_univariate"


def build_class(size: int) -> list[str]:
    from autograder.grading import demo, release

    release.release(A)
    base = [s for s in demo.load(A) if "infinite" not in s.student and "loop" not in s.about]
    students = [demo.DemoStudent(f"{base[i % len(base)].student}_{i:02d}", "", base[i % len(base)].answers, {})
                for i in range(size)]
    return demo.build(A, students)


def busy_cores() -> float:
    """Core-seconds the whole machine has spent busy since boot (from /proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def grade_with(workers: int, folder: Path) -> tuple[float, float, float]:
    """Wall seconds to grade the class on ``workers`` fresh workers, the machine's busy cores meanwhile, and the
    seconds the workers took to start and warm up."""
    from services import DaskCluster

    from autograder.grading import autograde

    start = time.perf_counter()
    cluster = DaskCluster(folder / f"dask-{workers}", workers=workers,
                          env={"AUTOGRADER_COMPILE_CACHE": str(folder / f"compiled-{workers}")})
    try:
        cluster.wait_for_workers(workers)
        ready = time.perf_counter() - start
        start, busy = time.perf_counter(), busy_cores()
        runs = autograde.autograde(A, force=True, scheduler=cluster.address, stream=open(os.devnull, "w"))
        seconds = time.perf_counter() - start
        busy = (busy_cores() - busy) / seconds
        bad = [(r.student, r.error) for r in runs if not r.ok]
        if bad:
            raise SystemExit(f"grading failed: {bad[:3]}")
        return seconds, busy, ready
    finally:
        cluster.close()


def _client_warm() -> None:
    """The client's one-off costs, paid before either clock starts so that neither run carries them: importing
    Dask's client and opening the gradebook (its tables are created on first use)."""
    import distributed  # noqa: F401

    from autograder.grading import remote

    remote.require_gradebook()


def _idle_load(seconds: float = 5.0) -> float:
    """Busy cores over a few seconds before grading: what else is running (the ratios assume nothing)."""
    busy = busy_cores()
    time.sleep(seconds)
    return (busy_cores() - busy) / seconds


def task_overhead(folder: Path, tasks: int = 500) -> float:
    """Seconds per no-op task through scheduler and worker, submitted as the executor submits."""
    from distributed import Client, as_completed
    from services import DaskCluster

    cluster = DaskCluster(folder / "dask-noop", workers=1)
    try:
        cluster.wait_for_workers(1)
        with Client(cluster.address, set_as_default=False) as client:
            client.submit(abs, -1).result()
            start = time.perf_counter()
            futures = [client.submit(abs, -i, pure=False) for i in range(tasks)]
            for _ in as_completed(futures, loop=client.loop):
                pass
            return (time.perf_counter() - start) / tasks
    finally:
        cluster.close()


def gradebook_writes(count: int = 200) -> float:
    """Submissions recorded per second by the client (one transaction each, as after grading)."""
    from autograder.grading import remote, report

    scores = {q: 1.0 for q in report.question_order(A)}
    with remote.open_gradebook() as gradebook:
        start = time.perf_counter()
        for i in range(count):
            remote.record_scores(A, f"writer_{i:04d}", scores, "2026-11-20 12:00:00", gradebook)
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="submissions in the class (default 64)")
    args = parser.parse_args()
    from services import Postgres

    pg = Postgres()
    pg.start()
    with tempfile.TemporaryDirectory(prefix="vc4ml-scaling-") as tmp:
        folder = Path(tmp)
        os.environ.update(AUTOGRADER_DATA=str(folder / "data"), AUTOGRADER_DB_URL=pg.url)
        try:
            students = build_class(args.size)
            _client_warm()
            quiet = _idle_load()
            (t1, b1, r1), (t2, b2, r2) = grade_with(1, folder), grade_with(2, folder)
            overhead = task_overhead(folder)
            writes = gradebook_writes()
        finally:
            pg.remove()
    n = len(students)
    print(f"class: {n} submissions of {A}; PostgreSQL gradebook; Dask workers with one thread each; "
          f"{os.cpu_count()} cores")
    print(f"busy cores before grading (other processes): {quiet:.2f}")
    print(f"{'workers':>8}  {'wall s':>8}  {'s/submission':>12}  {'busy cores':>10}  {'workers ready after s':>21}")
    print(f"{1:>8}  {t1:8.1f}  {t1 / n:12.2f}  {b1:10.2f}  {r1:21.1f}")
    print(f"{2:>8}  {t2:8.1f}  {t2 / n:12.2f}  {b2:10.2f}  {r2:21.1f}")
    print(f"scheduler overhead per task: {overhead * 1e3:.2f} ms; gradebook writes: {writes:.0f} submissions/s")
    print(f"scaling_2_over_1={t1 / t2:.2f} (target >= 1.7) task_overhead_ms={overhead * 1e3:.2f} "
          f"gradebook_writes_per_s={writes:.0f}")


if __name__ == "__main__":
    main()
