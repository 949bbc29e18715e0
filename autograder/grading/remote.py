"""Grading on workers that share nothing with the client but the course's code (issue 17).

A Dask worker on another machine sees neither the data folder nor the gradebook. So a job carries what its
submission needs, and a worker grades it exactly as a local worker does (autograder.grading.autograde.grade_one:
intake, sandboxed kernel, trusted driver) inside a private scratch data folder whose gradebook is a copy of the
batch's assignments, made once by the client (:func:`seed`). The worker returns the autograded files and the
scores; the client writes them (:func:`absorb`).

The client is the only writer of the gradebook: one transaction per submission, in the order results arrive, so
a PostgreSQL gradebook needs no cross-machine locking, a worker killed mid-job leaves nothing half written (the
job runs again elsewhere and its result is written once), and a gradebook that goes away stops the batch with
nothing partial (:class:`GradebookDown`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import sandbox
from . import course

MAX_FILES = 200            # files shipped per submission (intake refuses more than this anyway)
MAX_BYTES = 64 * 2**20     # bytes shipped per submission


class GradebookDown(Exception):
    """The gradebook could not be written: the batch stops and nothing partial is kept."""


@dataclass
class Shared:
    """The batch's trusted state, made once by the client and shipped once to each worker."""
    batch: str
    gradebook: bytes               # a SQLite gradebook holding the batch's assignments (no students)
    limits: sandbox.Limits
    policy: str = "zero"
    assignments: list[str] = field(default_factory=list)
    code: str = ""                 # digest of the grader's code and the batch's course files (see code_digest)


@dataclass
class RemoteJob:
    """Grade one submission (or, with ``student`` empty, the assignment's solution) on any worker."""
    assignment: str
    student: str = ""
    files: dict[str, bytes] = field(default_factory=dict)   # the submission folder, relative path -> bytes

    def run(self, shared: Shared) -> "Returned":
        from .autograde import compile_cache_dir

        with _ONE_AT_A_TIME:  # grading sets process-wide state (environment, the executor's job slot)
            own_cache = compile_cache_dir()   # the worker's own, read before the scratch folder replaces it
            scratch = _scratch(shared)
            saved = {k: os.environ.get(k) for k in ("AUTOGRADER_DATA", "AUTOGRADER_DB_URL")}
            os.environ["AUTOGRADER_DATA"] = str(scratch)
            os.environ["AUTOGRADER_DB_URL"] = "sqlite:///" + str(scratch / "gradebook.db")
            try:
                if shared.code and code_digest(shared.assignments) != shared.code:
                    return self.crashed(f"worker {socket.gethostname()} runs other grader code or course files "
                                        f"than the client: deploy the same checkout on every worker")
                worker_compile_cache(own_cache)
                return self._solution(shared, scratch) if not self.student else self._grade(shared, scratch)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def crashed(self, error: str) -> "Returned":
        return Returned(self.assignment, self.student, False, 0.0, error)

    def _solution(self, shared: Shared, scratch: Path) -> "Returned":
        from .autograde import SolutionJob

        out = scratch / f"solution-{self.assignment}.json"
        plan = worker_plan(shared.limits)
        run = SolutionJob(self.assignment, str(out), plan, shared.limits, str(scratch)).run()
        return Returned(self.assignment, "", run.ok, run.seconds, run.error)

    def _grade(self, shared: Shared, scratch: Path) -> "Returned":
        from .autograde import MANIFEST, Job, _write_json, grade_one

        submitted = scratch / "submitted" / self.student / self.assignment
        graded = scratch / "autograded" / self.student
        try:
            for rel, data in self.files.items():
                path = submitted / _safe_relative(rel)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            passed = scratch / f"solution-{self.assignment}.json"
            if not passed.exists():
                _write_json(passed, {})  # the client sends submissions only once the solution has passed
            run = grade_one(Job(self.assignment, self.student, str(passed), shared.policy,
                                worker_plan(shared.limits), shared.limits, str(scratch)))
            folder = graded / self.assignment
            files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                     if p.is_file() and not p.is_symlink() and p.name != MANIFEST} if folder.is_dir() else {}
            scores, stamp = _scores(self.assignment, self.student)
            return Returned(self.assignment, self.student, run.ok, run.seconds, run.error, files, scores, stamp)
        finally:
            shutil.rmtree(submitted.parent, ignore_errors=True)
            shutil.rmtree(graded, ignore_errors=True)


@dataclass
class Returned:
    """What a worker sends back: the outcome, the autograded folder's files and the scores to record."""
    assignment: str
    student: str
    ok: bool
    seconds: float
    error: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    scores: dict[str, float] | None = None    # grade cell -> auto score; None: nothing to record
    timestamp: str | None = None


def run_remote(job: RemoteJob, shared: Shared) -> Returned:
    """What a worker runs (one picklable entry point)."""
    return job.run(shared)


_ONE_AT_A_TIME = threading.Lock()
_SCRATCH: dict[str, Path] = {}
_PLANS: dict = {}


def code_digest(assignments: list[str]) -> str:
    """A hash of what grading runs besides the submission: the grader's code and each assignment's solution and
    release. A worker must have the client's (its tests come from the client, its solution run from its disk)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    folders = [(package, "*.py")] + [(course.root() / top / name, "*") for name in sorted(assignments)
                                     for top in ("solutions", "exercises")]
    for folder, pattern in folders:
        for path in sorted(p for p in folder.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _scratch(shared: Shared) -> Path:
    """This worker process's private data folder for the batch, its gradebook the batch's seed."""
    if shared.batch not in _SCRATCH:
        for old in _SCRATCH.values():  # one batch at a time per worker: drop the last one's folder
            shutil.rmtree(old, ignore_errors=True)
        _SCRATCH.clear()
        folder = Path(tempfile.mkdtemp(prefix=f"vc4ml-remote-{shared.batch[:8]}-"))
        (folder / "gradebook.db").write_bytes(shared.gradebook)
        (folder / "exchange").mkdir()
        _SCRATCH[shared.batch] = folder
    return _SCRATCH[shared.batch]


def worker_compile_cache(folder: Path | None = None) -> None:
    """Point this worker's compiles at its own cache (autograde.compile_cache_dir of its own data folder, once per
    process): it outlives batches and serves every worker process of the machine, where a cache in a batch's
    scratch folder was compiled anew by each worker and batch, then removed with the folder."""
    from . import autograde

    if "compile_cache" not in autograde._WORKER:
        autograde._WORKER["compile_cache"] = autograde._compile_cache(folder)


def worker_plan(limits: sandbox.Limits) -> sandbox.Plan:
    """What containment this worker's machine allows, probed once per process and limits."""
    key = repr(limits)
    if key not in _PLANS:
        _PLANS[key] = sandbox.probe(limits)
    return _PLANS[key]


def _safe_relative(rel: str) -> Path:
    """A shipped file's path, kept inside the submission folder (defends against ../ and absolute names)."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"refused file name {rel!r}")
    return path


def _scores(assignment: str, student: str) -> tuple[dict[str, float] | None, str | None]:
    """The auto scores the worker's grading wrote to its private gradebook, and the submission's time."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None, None
        scores = {g.name: float(g.auto_score or 0.0) for nb in sub.notebooks for g in nb.grades}
        stamp = sub.timestamp.isoformat() if sub.timestamp else None
        gb.remove_submission(assignment, student)  # keep the private gradebook small
    return scores, stamp


# ---- the client's side ------------------------------------------------------------------------------------------

def new_shared(assignments: list[str], limits: sandbox.Limits, policy: str) -> Shared:
    with tempfile.TemporaryDirectory(prefix="vc4ml-seed-") as tmp:
        path = Path(tmp) / "gradebook.db"
        seed(assignments, "sqlite:///" + str(path))
        data = path.read_bytes()
    return Shared(uuid.uuid4().hex, data, limits, policy, list(assignments), code_digest(assignments))


STRUCTURE = ("course", "assignment", "notebook", "base_cell", "source_cell", "grade_cells", "solution_cells",
             "task_cells")  # the released assignments; never a student's row


def seed(assignments: list[str], url: str) -> None:
    """Copy the released assignments' structure (notebooks, graded, solution, task and source cells) from the
    course's gradebook into a new gradebook at ``url``, in one transaction: what nbgrader's autograde needs to
    grade them, and no student data."""
    from nbgrader.api import Base, Gradebook
    from sqlalchemy import create_engine

    with Gradebook(gradebook_url()) as src:
        for name in assignments:
            src.find_assignment(name)  # MissingEntry if it was never released
    source, target = create_engine(gradebook_url()), create_engine(url)
    try:
        Base.metadata.create_all(target)
        with source.connect() as read, target.begin() as write:
            for name in STRUCTURE:
                table = Base.metadata.tables[name]
                rows = [dict(r._mapping) for r in read.execute(table.select())]
                if rows:
                    write.execute(table.insert(), rows)
    finally:
        source.dispose()
        target.dispose()


def gradebook_url() -> str:
    return course.load_config().CourseDirectory.db_url


def describe(url: str) -> str:
    """The gradebook's URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def require_gradebook() -> None:
    """One clear line if the gradebook cannot be reached, before anything is graded."""
    from nbgrader.api import Gradebook

    url = gradebook_url()
    try:
        with Gradebook(url):
            pass
    except Exception as exc:
        raise course.CourseError(f"cannot open the gradebook at {describe(url)}: {_first_line(exc)}; start the "
                                 f"database (or fix AUTOGRADER_DB_URL) and run the command again") from None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def submission_files(assignment: str, student: str) -> dict[str, bytes]:
    """The submission folder's plain files (links are not followed), within the shipping limits."""
    folder = course.data_dir() / "submitted" / student / assignment
    files, total = {}, 0
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if len(files) >= MAX_FILES or total > MAX_BYTES:
            break  # intake refuses an oversized submission with its reason; ship what it needs to say so
        files[str(path.relative_to(folder))] = path.read_bytes()
    return files


def absorb(result: Returned, stamp: str, gradebook=None) -> None:
    """Record a worker's result: the gradebook first (one transaction), then the autograded folder, then the
    fingerprint that marks the submission graded. Raises GradebookDown if the gradebook cannot be written."""
    from .autograde import MANIFEST, _write_json

    if result.scores is None:  # the worker recorded nothing (it crashed first): keep what was there
        return
    try:
        record_scores(result.assignment, result.student, result.scores, result.timestamp, gradebook)
    except Exception as exc:
        raise GradebookDown(f"could not write the gradebook at {describe(gradebook_url())}: "
                            f"{_first_line(exc)}") from None
    folder = course.data_dir() / "autograded" / result.student / result.assignment
    fresh = folder.with_name(f".{folder.name}.{os.getpid()}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    for rel, data in result.files.items():
        path = fresh / _safe_relative(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    fresh.mkdir(parents=True, exist_ok=True)
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    _write_json(folder / MANIFEST, {"fingerprint": stamp})


def open_gradebook():
    """The course's gradebook, opened once for a batch's writes (GradebookDown if it cannot be)."""
    from nbgrader.api import Gradebook

    try:
        return Gradebook(gradebook_url())
    except Exception as exc:
        raise GradebookDown(f"could not open the gradebook at {describe(gradebook_url())}: "
                            f"{_first_line(exc)}") from None


def _cell_names(gb, assignment: str) -> dict[str, str]:
    """Graded cell id -> name for ``assignment``, read once per open gradebook (a grade's own ``name`` costs a
    query each)."""
    cache = gb.__dict__.setdefault("_vc4ml_cell_names", {})
    if assignment not in cache:
        found = gb.find_assignment(assignment)
        cache[assignment] = {c.id: c.name for nb in found.notebooks
                             for c in list(nb.grade_cells) + list(nb.task_cells)}
    return cache[assignment]


def record_scores(assignment: str, student: str, scores: dict[str, float], timestamp: str | None,
                  gradebook=None) -> None:
    """Write one submission's auto scores in a single transaction (manual grades are left alone)."""
    from nbgrader import utils
    from nbgrader.api import Comment, Grade, MissingEntry, Student, SubmittedAssignment, SubmittedNotebook

    with contextlib.nullcontext(gradebook) if gradebook is not None else open_gradebook() as gb:
        try:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                try:
                    who = gb.find_student(student)
                except MissingEntry:
                    who = Student(id=student)
                    gb.db.add(who)
                with gb.db.no_autoflush:  # as nbgrader's add_submission, without its commit
                    sub = SubmittedAssignment(assignment=gb.find_assignment(assignment), student=who)
                    for notebook in sub.assignment.notebooks:
                        nb = SubmittedNotebook(notebook=notebook, assignment=sub)
                        for cell in notebook.grade_cells:
                            Grade(cell_id=cell.id, notebook=nb)
                        for cell in list(notebook.solution_cells) + list(notebook.task_cells):
                            Comment(cell_id=cell.id, notebook=nb)
                        for cell in notebook.task_cells:
                            Grade(cell_id=cell.id, notebook=nb)
                    gb.db.add(sub)
            if timestamp:
                sub.timestamp = utils.parse_utc(timestamp)
            names = _cell_names(gb, assignment)
            for nb in sub.notebooks:
                for grade in nb.grades:
                    grade.auto_score = float(scores.get(names.get(grade.cell_id, ""), 0.0))
                    grade.needs_manual_grade = grade.manual_score is not None
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise

