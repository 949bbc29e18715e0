"""`autograde`: grade a class with nbgrader, one submission per worker process, several at once.

Each submission runs through nbgrader's own ``autograde`` (its sanitising and executing preprocessors and its
gradebook), in a fresh worker process, so one submission's crash or timeout cannot take the batch down. The
pool sits behind ``Executor``: anything with ``map_unordered(fn, items)`` can replace it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import course


@dataclass
class GradeRun:
    student: str
    ok: bool
    seconds: float
    error: str = ""


class LocalPool:
    """Run jobs in ``jobs`` fresh processes (spawned: no state shared with the parent)."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)

    def map_unordered(self, fn: Callable, items: Iterable) -> Iterator:
        items = list(items)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(items) or 1), mp_context=ctx,
                                 max_tasks_per_child=1) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died: report it, keep going
                    yield GradeRun(str(futures[future][1]), False, 0.0, f"worker crashed: {exc!r}")


def submissions(assignment: str) -> list[str]:
    """Student ids with a submitted notebook folder for ``assignment``."""
    base = course.data_dir() / "submitted"
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir()) if base.is_dir() else []


def grade_one(job: tuple[str, str]) -> GradeRun:
    """Worker: nbgrader-autograde one student's submission (runs in its own process)."""
    assignment, student = job
    start = time.perf_counter()
    try:
        result = course.api().autograde(assignment, student, force=True, create=True)
        ok, error = bool(result.get("success")), (result.get("error") or "")
        if not ok and not error:
            error = (result.get("log") or "").strip().splitlines()[-1:] or ["nbgrader failed"]
            error = error[0]
    except Exception as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    return GradeRun(student, ok, time.perf_counter() - start, error.strip()[:500])


def _progress(done: int, total: int, started: float, last: GradeRun, stream) -> None:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done) if done else 0.0
    width = 24
    bar = "#" * (width * done // total) + "-" * (width - width * done // total)
    status = "ok" if last.ok else "FAILED"
    stream.write(f"\r[{bar}] {done}/{total}  {elapsed:5.0f}s elapsed, ETA {eta:4.0f}s  "
                 f"({last.student}: {status} in {last.seconds:.1f}s)".ljust(100))
    if done == total:
        stream.write("\n")
    stream.flush()


def autograde(assignment: str, students: list[str] | None = None, jobs: int | None = None,
              executor=None, stream=sys.stderr) -> list[GradeRun]:
    """Grade ``students`` (default: every submission) and return one ``GradeRun`` each."""
    course.require_assignment(assignment)
    everyone = submissions(assignment)
    if students:
        missing = sorted(set(students) - set(everyone))
        if missing:
            raise course.CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    todo = students or everyone
    if not todo:
        raise course.CourseError(f"no submissions of {assignment} in {course.data_dir() / 'submitted'}")
    course.api()  # creates the gradebook once, before workers race to do it
    pool = executor or LocalPool(jobs or os.cpu_count() or 1)
    runs, started = [], time.perf_counter()
    for run in pool.map_unordered(grade_one, [(assignment, s) for s in todo]):
        runs.append(run)
        _progress(len(runs), len(todo), started, run, stream)
    return sorted(runs, key=lambda r: r.student)


def autograded_dir() -> Path:
    return course.data_dir() / "autograded"
