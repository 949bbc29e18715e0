"""`autograde`: grade a class with nbgrader, one submission per worker process, several at once.

Each submission runs through nbgrader's own ``autograde`` (its sanitising and executing preprocessors and its
gradebook). Workers are long-lived processes, one per core, so nbgrader is imported once per worker rather than
once per submission; every submission still executes in its own fresh kernel process, with nbgrader's per-cell
timeout, so one submission's crash or runaway cannot take the batch down. A submission is regraded only when its
files changed since it was last graded (a hash kept next to the autograded copy) unless ``force`` is set.
The pool sits behind a one-method interface: anything with ``map_unordered(fn, items)`` can replace ``LocalPool``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import course, evidence


@dataclass
class GradeRun:
    student: str
    ok: bool
    seconds: float
    error: str = ""
    skipped: bool = False  # unchanged since the last grading


MANIFEST = ".autograder.json"


def fingerprint(assignment: str, student: str) -> str:
    """A hash of the submitted files and of the release they answer; changes when either does."""
    digest = hashlib.sha256()
    folders = [course.data_dir() / "submitted" / student / assignment, course.root() / "solutions" / assignment]
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _manifest(assignment: str, student: str) -> Path:
    return course.data_dir() / "autograded" / student / assignment / MANIFEST


def up_to_date(assignment: str, student: str) -> bool:
    try:
        return json.loads(_manifest(assignment, student).read_text())["fingerprint"] == fingerprint(assignment, student)
    except (OSError, ValueError, KeyError):
        return False


class LocalPool:
    """Run jobs in ``jobs`` fresh processes (spawned: no state shared with the parent)."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)

    def map_unordered(self, fn: Callable, items: Iterable) -> Iterator:
        items = list(items)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(items) or 1), mp_context=ctx,
                                 initializer=_quiet_worker) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died: report it, keep going
                    yield GradeRun(futures[future].student, False, 0.0, f"worker crashed: {exc!r}")


def _quiet_worker() -> None:
    """Send a worker's stderr (kernel start-up chatter, nbgrader's log) to a file, keeping the progress bar clean."""
    logs = course.data_dir() / "logs"
    logs.mkdir(exist_ok=True)
    fd = os.open(logs / f"worker-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def submissions(assignment: str) -> list[str]:
    """Student ids with a submitted notebook folder for ``assignment``."""
    base = course.data_dir() / "submitted"
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir()) if base.is_dir() else []


@dataclass
class Job:
    assignment: str
    student: str
    secret: str                        # per batch; reaches only the kernels, through their environment
    solution: dict                     # the solution's evidence at the secret points
    policy: str = "zero"               # autodiff in a hand derivation: "zero" or "flag"


def grade_one(job: Job) -> GradeRun:
    """Worker: nbgrader executes the submission in a fresh kernel that gets the secret; then the trusted verdict
    from its evidence is written to the gradebook (runs in a worker process, never in the kernel)."""
    start = time.perf_counter()
    try:
        stamp = fingerprint(job.assignment, job.student)
        os.environ["AUTOGRADER_SECRET"] = job.secret
        try:
            result = _api().autograde(job.assignment, job.student, force=True, create=True)
        finally:
            os.environ.pop("AUTOGRADER_SECRET", None)
        ok, error = bool(result.get("success")), (result.get("error") or "")
        if not ok and not error:
            error = (result.get("log") or "").strip().splitlines()[-1:] or ["nbgrader failed"]
            error = error[0]
        if ok:
            evidence.score_submission(job.assignment, job.student, job.solution, job.policy)
            _manifest(job.assignment, job.student).write_text(json.dumps({"fingerprint": stamp}))
    except Exception as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    return GradeRun(job.student, ok, time.perf_counter() - start, error.strip()[:500])


_API = {}


def _api():
    """One nbgrader API per worker process and data folder (the import and set-up are paid once)."""
    key = str(course.data_dir())
    if key not in _API:
        _API[key] = course.api()
    return _API[key]


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
              executor=None, stream=sys.stderr, force: bool = False, policy: str = "zero") -> list[GradeRun]:
    """Grade ``students`` (default: every submission) and return one ``GradeRun`` each.

    Without ``force``, submissions graded before and unchanged since are skipped (reported as skipped).
    """
    course.require_assignment(assignment)
    everyone = submissions(assignment)
    if students:
        missing = sorted(set(students) - set(everyone))
        if missing:
            raise course.CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    wanted = students or everyone
    if not wanted:
        raise course.CourseError(f"no submissions of {assignment} in {course.data_dir() / 'submitted'}")
    runs = [] if force else [GradeRun(s, True, 0.0, skipped=True) for s in wanted if up_to_date(assignment, s)]
    todo = [s for s in wanted if s not in {r.student for r in runs}]
    if runs:
        stream.write(f"{len(runs)} submission(s) unchanged since last graded: skipped (use --force to regrade)\n")
    if not todo:
        return sorted(runs, key=lambda r: r.student)
    if policy not in evidence.POLICIES:
        raise course.CourseError(f"unknown autodiff policy {policy!r}; use one of {', '.join(evidence.POLICIES)}")
    course.api()  # creates the gradebook once, before workers race to do it
    secret = secrets.token_hex(16)
    stream.write(f"running the solution of {assignment} at this batch's secret points...\n")
    solution = evidence.solution_evidence(assignment, secret)
    pool = executor or LocalPool(jobs or os.cpu_count() or 1)
    started = time.perf_counter()
    graded: list[GradeRun] = []
    for run in pool.map_unordered(grade_one, [Job(assignment, s, secret, solution, policy) for s in todo]):
        graded.append(run)
        _progress(len(graded), len(todo), started, run, stream)
    return sorted(runs + graded, key=lambda r: r.student)


def autograded_dir() -> Path:
    return course.data_dir() / "autograded"
