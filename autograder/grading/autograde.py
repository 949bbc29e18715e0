"""`autograde`: grade a class with nbgrader, one submission per worker process, several at once.

Each submission runs through nbgrader's own ``autograde`` (its sanitising and executing preprocessors and its
gradebook). Workers are long-lived processes, one per core, so nbgrader is imported once per worker rather than
once per submission; every submission still executes in its own fresh kernel process, with nbgrader's per-cell
timeout, so one submission's crash or runaway cannot take the batch down. A submission is regraded only when its
files changed since it was last graded (a hash kept next to the autograded copy) unless ``force`` is set.
The pool sits behind a one-method interface: anything with ``map_unordered(fn, items)`` can replace ``LocalPool``
(the items are picklable jobs and ``fn`` is :func:`run_job`).

A batch may hold several assignments. Its first jobs grade each assignment's solution the way a submission is
graded (:class:`SolutionJob`); a worker grading a submission waits for that result before it touches the gradebook,
so a solution that fails its own tests leaves that assignment's grades as they were.

Verdicts (issue 12): the test cells run in the trusted driver of autograder.grading.contained, in the worker,
never in the kernel. A job carries everything its submission's run needs (:class:`contained.JobSpec`: containment
plan, limits, the instructor's cells from the gradebook, integrity policy) from the executor to the verdict.

Containment (issue 7): each kernel runs in the sandbox of autograder.sandbox with the batch's ``Limits``, through
autograder.grading.contained in place of nbgrader's ``Execute``; what the machine allows is probed once per batch
and written to the log. Before nbgrader sees a submission, autograder.grading.intake stages a repaired copy (or
refuses it with a reason: it then scores 0 with that reason, and the batch goes on).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import sandbox
from . import course, evidence, intake, solution_cache


@dataclass
class GradeRun:
    student: str
    ok: bool
    seconds: float
    error: str = ""
    skipped: bool = False  # unchanged since the last grading
    assignment: str = ""


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

    def map_unordered(self, fn: Callable, items: Iterable, shared=None) -> Iterator:
        items = list(items)
        extra = () if shared is None else (shared,)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(items) or 1), mp_context=ctx,
                                 initializer=_quiet_worker) as pool:
            futures = {pool.submit(fn, item, *extra): item for item in items}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died: report it, keep going
                    yield futures[future].crashed(f"worker crashed: {exc!r}")


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
    """Grade one submission."""
    assignment: str
    student: str
    solution: str                      # file where the batch's SolutionJob leaves the solution's result
    policy: str = "zero"               # an answer computed from f in a hand derivation: "zero" or "flag"
    plan: sandbox.Plan | None = None   # what containment this machine allows (probed once per batch)
    limits: sandbox.Limits | None = None
    workdir: str = ""                  # the batch's private folder: kernelspec, staging; removed after the batch

    def run(self) -> GradeRun:
        return grade_one(self)

    def crashed(self, error: str) -> GradeRun:
        return GradeRun(self.student, False, 0.0, error, assignment=self.assignment)


@dataclass
class SolutionRun:
    assignment: str
    ok: bool
    seconds: float
    error: str = ""


@dataclass
class SolutionJob:
    """Grade the instructor's solution once, as a submission is graded (sandbox, driver), outside the gradebook;
    the result goes to ``path`` ({} or the reason it failed), where the workers grading that assignment's
    submissions wait for it."""
    assignment: str
    path: str
    plan: sandbox.Plan | None = None
    limits: sandbox.Limits | None = None
    workdir: str = ""

    def run(self) -> SolutionRun:
        start = time.perf_counter()
        try:
            _prepare_worker(self)
            evidence.check_solution(self.assignment, self._spec(), Path(self.workdir))
            payload: dict = {}
        except Exception as exc:  # a CourseError says what is wrong with the solution; anything else, how it broke
            payload = {"error": str(exc) if isinstance(exc, course.CourseError) else f"{type(exc).__name__}: {exc}"}
        _write_json(Path(self.path), payload)
        return SolutionRun(self.assignment, "error" not in payload, time.perf_counter() - start,
                           payload.get("error", ""))

    def _spec(self):
        from .contained import JobSpec

        return JobSpec(self.plan or sandbox.probe(), self.limits or sandbox.Limits(),
                       instructor_cells(self.assignment), "zero", explain=True)

    def crashed(self, error: str) -> SolutionRun:
        if not Path(self.path).exists():
            _write_json(Path(self.path), {"error": error})
        return SolutionRun(self.assignment, False, 0.0, error)


def run_job(job):
    """What a worker runs: a submission's grading or a solution's run (one picklable entry point for any pool)."""
    return job.run()


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)  # readers never see half a file


SOLUTION_WAIT = 3600  # seconds a worker waits for the solution's evidence before giving up


class SolutionFailed(Exception):
    pass


def _solution(job: Job) -> dict:
    """The solution's result for ``job`` (waiting for the SolutionJob if it is still running), cached per worker."""
    cache = _WORKER.setdefault("solutions", {})
    if job.solution not in cache:
        path, deadline, parent = Path(job.solution), time.monotonic() + SOLUTION_WAIT, os.getppid()
        while not path.exists():
            if time.monotonic() > deadline or os.getppid() != parent:
                raise SolutionFailed("the solution's run did not finish")
            time.sleep(0.05)
        cache[job.solution] = json.loads(path.read_text())
    payload = cache[job.solution]
    if "error" in payload:
        raise SolutionFailed(payload["error"])
    return payload


def instructor_cells(assignment: str) -> dict:
    """grade id -> {"role", "source"} for the instructor's code cells, from the gradebook (cached per worker)."""
    cache = _WORKER.setdefault("cells", {})
    key = f"{course.data_dir()}|{assignment}"
    if key not in cache:
        cache[key] = read_instructor_cells(assignment)
    return cache[key]


def read_instructor_cells(assignment: str) -> dict:
    cells = {}
    for cell in evidence.reference_notebook(assignment)["cells"]:
        meta = cell["metadata"]["nbgrader"]
        if cell["cell_type"] == "code" and meta["locked"] and not meta["solution"]:
            cells[meta["grade_id"]] = {"role": "test" if meta["grade"] else "instructor",
                                       "source": cell["source"]}
    return cells


def grade_one(job: Job) -> GradeRun:
    """Worker: stage the submission, let nbgrader execute it (the student's cells in a fresh sandboxed kernel, the
    tests in this process's driver), then write the driver's verdicts to the gradebook.
    Whatever happens, the gradebook ends with a score for every graded cell and the verdict file with a reason."""
    start = time.perf_counter()
    staged = None
    try:
        _solution(job)
    except SolutionFailed as exc:  # the instructor must fix the solution: grade nothing, overwrite nothing
        return GradeRun(job.student, False, time.perf_counter() - start, f"not graded: {exc}"[:500],
                        assignment=job.assignment)
    try:
        stamp = fingerprint(job.assignment, job.student)
        _prepare_worker(job)
        _api()  # creates the gradebook if needed, before anything is written to it
        staged = intake.stage(job.assignment, job.student, _stage_root())
        if staged.problem:
            evidence.record_failure(job.assignment, job.student, staged.problem, staged.notes)
            _manifest(job.assignment, job.student).write_text(json.dumps({"fingerprint": stamp}))
            return GradeRun(job.student, False, time.perf_counter() - start, staged.problem[:500],
                            assignment=job.assignment)
        from . import contained

        contained.CURRENT["job"] = contained.JobSpec(job.plan or sandbox.probe(), job.limits or sandbox.Limits(),
                                                     instructor_cells(job.assignment), job.policy)
        try:
            result = _api().autograde(job.assignment, job.student, force=True, create=True)
        finally:
            contained.CURRENT["job"] = None
        ok, error = bool(result.get("success")), (result.get("error") or "")
        if not ok and not error:
            error = (result.get("log") or "").strip().splitlines()[-1:] or ["nbgrader failed"]
            error = error[0]
        if ok:
            tests = {gid for gid, cell in instructor_cells(job.assignment).items() if cell["role"] == "test"}
            evidence.score_submission(job.assignment, job.student, tests, staged.notes)
            _manifest(job.assignment, job.student).write_text(json.dumps({"fingerprint": stamp}))
        else:
            evidence.record_failure(job.assignment, job.student, f"grading failed: {error.strip()[:300]}",
                                    staged.notes)
    except Exception as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
        try:
            evidence.record_failure(job.assignment, job.student, f"grading failed: {error[:300]}",
                                    staged.notes if staged else [])
        except Exception:
            pass
    finally:
        if staged is not None and staged.folder is not None:
            shutil.rmtree(staged.folder.parent, ignore_errors=True)
    return GradeRun(job.student, ok, time.perf_counter() - start, error.strip()[:500], assignment=job.assignment)


_API = {}
_WORKER: dict = {}


def _stage_root() -> Path:
    """This worker's private staging folder: nbgrader's ``submitted_directory`` for the worker's API."""
    return _WORKER["stage"]


def _prepare_worker(job) -> None:
    """This worker's staging folder in the batch's private folder (the sandbox kernelspec is written per kernel
    by the executor), and its compile cache."""
    workdir = Path(job.workdir or tempfile.mkdtemp(prefix="vc4ml-batch-"))
    if _WORKER.get("workdir") != workdir:
        _WORKER.update(workdir=workdir, stage=workdir / f"stage-{os.getpid()}")
        _WORKER["stage"].mkdir(exist_ok=True)
    if "compile_cache" not in _WORKER:
        _WORKER["compile_cache"] = _compile_cache()


def compile_cache_dir() -> Path:
    return Path(os.environ.get("AUTOGRADER_COMPILE_CACHE") or course.data_dir() / "cache" / "jax")


def _compile_cache(folder: Path | None = None) -> Path:
    """JAX's persistent compilation cache for the driver's references and named mistakes, shared by the workers
    of this and later batches: a worker loads what another compiled (it is keyed by the computation, so it can
    never return another one's result). The folder is the grader's alone (0700): kernels, which run under
    uids of their own and, with bubblewrap, see only their submission's files, can neither read the compiled
    references nor write into it. The worker's own XLA gets the kernels' fast-compile flags before its backend
    starts: a reference runs at a few points, so compiling it ~3x faster is what counts (the nine solutions'
    check, fresh caches: 61 -> 49 core-s)."""
    import jax

    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:   # another JAX: compile with its defaults rather than fail the worker
        backends_are_initialized = lambda: True  # noqa: E731
    if not backends_are_initialized():
        os.environ["XLA_FLAGS"] = sandbox.with_fast_compile(os.environ.get("XLA_FLAGS", ""))
    folder = folder or compile_cache_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def _api():
    """One nbgrader API per worker process, data folder and batch (the import and set-up are paid once). It reads
    submissions from the worker's staging folder and executes them with the contained executor."""
    key = f"{course.data_dir()}|{_stage_root()}"
    if key not in _API:
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                            SaveAutoGrades)

        from .contained import ContainedExecute

        _validate_metadata_once_per_schema()
        config = course.load_config()
        config.CourseDirectory.submitted_directory = str(_stage_root())
        config.Autograde.autograde_preprocessors = [ContainedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                                    LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                                    CheckCellMetadata]
        _ensure_gradebook(config)
        _API[key] = course.api(config=config)
    return _API[key]


class _SchemaCache:
    """``jsonschema`` as nbgrader's metadata checks see it: the same validation of every cell's metadata, but each
    schema is checked and its validator built once, not once per cell (that was 5 % of a submission's CPU)."""

    def __init__(self, module):
        self._module, self._validators = module, {}

    def __getattr__(self, name):
        return getattr(self._module, name)

    def validate(self, instance, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            cls = self._module.validators.validator_for(schema)
            cls.check_schema(schema)
            self._validators = {key: cls(schema)}   # nbgrader uses one schema: keep the last only
        error = self._module.exceptions.best_match(self._validators[key].iter_errors(instance))
        if error is not None:
            raise error


def _validate_metadata_once_per_schema() -> None:
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _SchemaCache):
        common.jsonschema = _SchemaCache(common.jsonschema)


def _ensure_gradebook(config) -> None:
    """Create the gradebook if it does not exist, one worker of the batch at a time (nbgrader creates it on first
    use, and two workers doing so at once would race)."""
    import fcntl

    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    with open(_WORKER["workdir"] / "gradebook.lock", "w") as lock:  # the batch's private folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        with Gradebook(CourseDirectory(config=config).db_url):
            pass


def default_limits(**overrides) -> sandbox.Limits:
    """The batch's limits: nbgrader_config.py's ``Execute.timeout`` per cell, the rest from ``sandbox.Limits``."""
    timeout = course.load_config().Execute.get("timeout", 20) or 20
    values = {"cell_timeout": int(timeout)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return sandbox.Limits(**values)


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
              executor=None, stream=sys.stderr, force: bool = False, policy: str = "zero",
              limits: sandbox.Limits | None = None, scheduler: str | None = None) -> list[GradeRun]:
    """Grade ``students`` (default: every submission) of one assignment and return one ``GradeRun`` each.

    Without ``force``, submissions graded before and unchanged since are skipped (reported as skipped).
    ``limits`` default to :func:`default_limits`. Raises ``CourseError`` if the solution fails its own tests.
    """
    batch = autograde_many([assignment], students, jobs, executor, stream, force, policy, limits, scheduler)
    batch.raise_failures()
    return batch.runs[assignment]


@dataclass
class Batch:
    runs: dict[str, list[GradeRun]]   # assignment -> one run per wanted student, sorted by student
    failed: dict[str, str]            # assignment -> why its solution could not be run (nothing of it was graded)

    def raise_failures(self) -> None:
        """A ``CourseError`` naming each assignment left ungraded and why, if there is one."""
        if self.failed:
            raise course.CourseError("; ".join(f"{name} was not graded: {why}" for name, why in self.failed.items()))


def autograde_many(assignments: list[str], students: list[str] | None = None, jobs: int | None = None,
                   executor=None, stream=sys.stderr, force: bool = False, policy: str = "zero",
                   limits: sandbox.Limits | None = None, scheduler: str | None = None) -> Batch:
    """Grade several assignments in one batch: one pool of workers, each solution run once as the batch's first
    jobs, then every submission. ``students`` limits each assignment to those of them who submitted it (each
    named student must have submitted at least one).

    With a Dask ``scheduler`` (or $AUTOGRADER_SCHEDULER), or a gradebook that is not a local SQLite file, the
    workers share nothing with this process and the client alone writes the gradebook
    (autograder.grading.remote); otherwise local workers write it as they go."""
    from . import cluster, remote

    scheduler = cluster.scheduler_address(scheduler)
    if scheduler or not remote.gradebook_url().startswith("sqlite"):
        remote.require_gradebook()
    for name in assignments:
        course.require_assignment(name)
    if policy not in evidence.POLICIES:
        raise course.CourseError(f"unknown autodiff policy {policy!r}; use one of {', '.join(evidence.POLICIES)}")
    everyone = {name: submissions(name) for name in assignments}
    if students:
        missing = sorted(set(students) - set().union(*everyone.values()))
        if missing:
            raise course.CourseError(f"no submission of {', '.join(assignments)} for: {', '.join(missing)}")
    runs: dict[str, list[GradeRun]] = {}
    todo: dict[str, list[str]] = {}
    for name in assignments:
        wanted = [s for s in everyone[name] if s in students] if students else everyone[name]
        if not wanted and not students:
            raise course.CourseError(f"no submissions of {name} in {course.data_dir() / 'submitted'}")
        runs[name] = [] if force else [GradeRun(s, True, 0.0, skipped=True, assignment=name)
                                       for s in wanted if up_to_date(name, s)]
        todo[name] = [s for s in wanted if s not in {r.student for r in runs[name]}]
        if runs[name]:
            stream.write(f"{name}: {len(runs[name])} submission(s) unchanged since last graded: skipped "
                         f"(use --force to regrade)\n")
    failed: dict[str, str] = {}
    total = sum(map(len, todo.values()))
    if total:
        limits = limits or default_limits()
        plan = sandbox.probe(limits)
        _log_plan(plan, limits, stream)
        if scheduler or not remote.gradebook_url().startswith("sqlite"):
            pool = executor or (cluster.DaskPool(scheduler) if scheduler else LocalPool(jobs or os.cpu_count() or 1))
            return _remote_batch(pool, assignments, todo, runs, policy, limits, stream)
        workdir = Path(tempfile.mkdtemp(prefix="vc4ml-batch-"))
        try:
            names = [name for name in assignments if todo[name]]
            keys = _solution_keys(names, plan, limits)
            fresh = [name for name in names if not solution_cache.passed(keys[name])]
            for name in set(names) - set(fresh):  # passed before, nothing it depends on changed
                _write_json(workdir / f"solution-{name}.json", {})
            first = [SolutionJob(name, str(workdir / f"solution-{name}.json"), plan, limits, str(workdir))
                     for name in fresh]
            then = [Job(name, s, str(workdir / f"solution-{name}.json"), policy, plan, limits, str(workdir))
                    for name in names for s in todo[name]]
            if fresh:
                stream.write(f"grading the solution of {', '.join(fresh)} first, then {total} "
                             f"submission(s)...\n")
            else:
                stream.write(f"the solutions passed before (unchanged): grading {total} submission(s)...\n")
            pool = executor or LocalPool(jobs or os.cpu_count() or 1)
            started, done = time.perf_counter(), 0
            for run in pool.map_unordered(run_job, first + then):
                if isinstance(run, SolutionRun):
                    if run.ok:
                        solution_cache.remember(keys[run.assignment])
                    else:
                        failed[run.assignment] = run.error
                    continue
                runs[run.assignment].append(run)
                done += 1
                _progress(done, total, started, run, stream)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, why in failed.items():
        stream.write(f"{name}: NOT GRADED: {why}\n")
    return Batch({name: sorted(r, key=lambda r: r.student) for name, r in runs.items()}, failed)


def _solution_keys(names: list[str], plan: sandbox.Plan, limits: sandbox.Limits) -> dict[str, str]:
    return {name: solution_cache.key(name, read_instructor_cells(name), plan, limits) for name in names}


def check_solutions(assignments: list[str], jobs: int | None = None, limits: sandbox.Limits | None = None,
                    report: Callable | None = None) -> dict[str, SolutionRun | None]:
    """Grade each assignment's solution as a local batch would (sandbox, driver, ``limits``, default
    :func:`default_limits`), several at once, unless it passed before with nothing changed (then None), and
    remember each pass: a later batch with the same limits skips it and finds its references compiled in
    the cache. Returns assignment -> its run (failed runs say why); ``report(name, run)`` hears each as it
    comes."""
    limits = limits or default_limits()
    plan = sandbox.probe(limits)
    keys = _solution_keys(list(assignments), plan, limits)
    done: dict[str, SolutionRun | None] = {name: None for name in assignments
                                           if solution_cache.passed(keys[name])}
    for name in done if report else ():
        report(name, None)
    fresh = [name for name in assignments if name not in done]
    if not fresh:
        return done
    workdir = Path(tempfile.mkdtemp(prefix="vc4ml-solutions-"))
    try:
        first = [SolutionJob(name, str(workdir / f"solution-{name}.json"), plan, limits, str(workdir))
                 for name in fresh]
        for run in LocalPool(min(jobs or os.cpu_count() or 1, len(fresh))).map_unordered(run_job, first):
            if run.ok:
                solution_cache.remember(keys[run.assignment])
            done[run.assignment] = run
            if report:
                report(run.assignment, run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {name: done[name] for name in assignments}


def _remote_batch(pool, assignments, todo, runs, policy, limits, stream) -> Batch:
    """The batch through workers that share nothing with this process (autograder.grading.remote): each
    solution and every submission at once, so no worker idles while a solution runs. A submission's result is
    written here only once its assignment's solution has passed; if that fails, its results are dropped."""
    from . import remote

    names = [name for name in assignments if todo[name]]
    shared = remote.new_shared(names, limits, policy)
    jobs, stamps = [remote.RemoteJob(name) for name in names], {}
    for name in names:
        for student in todo[name]:
            stamps[name, student] = fingerprint(name, student)
            jobs.append(remote.RemoteJob(name, student, remote.submission_files(name, student)))
    total = len(jobs) - len(names)
    stream.write(f"grading the solution of {', '.join(names)} and {total} submission(s)...\n")
    failed: dict[str, str] = {}
    passed: set[str] = set()
    waiting: dict[str, list] = {name: [] for name in names}
    started, done, results = time.perf_counter(), 0, pool.map_unordered(remote.run_remote, jobs, shared)
    gradebook = None

    def record(got) -> None:
        nonlocal done
        remote.absorb(got, stamps[got.assignment, got.student], gradebook)
        run = GradeRun(got.student, got.ok, got.seconds, got.error, assignment=got.assignment)
        runs[got.assignment].append(run)
        done += 1
        _progress(done, total, started, run, stream)

    try:
        gradebook = remote.open_gradebook()
        for got in results:
            if not got.student:  # a solution's run
                if got.ok:
                    passed.add(got.assignment)
                    for held in waiting.pop(got.assignment):
                        record(held)
                else:
                    failed[got.assignment] = got.error or "the solution's run did not finish"
                    waiting.pop(got.assignment)
            elif got.assignment in passed:
                record(got)
            elif got.assignment in waiting:
                waiting[got.assignment].append(got)
    except remote.GradebookDown as exc:
        results.close()
        raise course.CourseError(f"{exc}; the batch stopped: {done} submission(s) were recorded, nothing partial "
                                 f"was kept; run the same command again when the gradebook is back") from None
    finally:
        if gradebook is not None:
            gradebook.close()
        if hasattr(pool, "close"):
            pool.close()
    if done < total:
        stream.write("\n")
    for name, why in failed.items():
        stream.write(f"{name}: NOT GRADED: {why}\n")
    return Batch({name: sorted(r, key=lambda r: r.student) for name, r in runs.items()}, failed)


def _log_plan(plan: sandbox.Plan, limits: sandbox.Limits, stream) -> None:
    """Say what containment applies, and loudly what does not, on the console and in <data>/logs/sandbox.log."""
    text = f"limits: {limits.describe()}\n{plan.report()}\n"
    if plan.missing:
        stream.write(text)
    else:
        stream.write(f"sandbox: all limits apply ({limits.describe()})\n")
    logs = course.data_dir() / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / "sandbox.log").open("a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n{text}")


def autograded_dir() -> Path:
    return course.data_dir() / "autograded"
