"""The verbs of the command line, each a short composition of the grading modules, printing as it goes.

Everything printed passes through :func:`say` (control characters removed: a submission's file names and
diagnoses reach the terminal). Each verb ends by naming the next step; what stops it is a ``CourseError`` that
names the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import autograde as grading
from . import classreport, collect as collecting, course, demo as demo_class, feedback as feedback_pages
from . import release as releasing, report as tables, safe_text, state
from .state import CLI


def say(text: object = "") -> None:
    print(safe_text.terminal(text))


def release(names: list[str], check: bool = True, jobs: int | None = None) -> None:
    """Release, then grade each solution against its own tests as grading will (unless ``check`` is off): the
    instructor learns of a failing test before students see the assignment, and the first batch skips it."""
    for name in names:
        say(f"released {releasing.release(name).relative_to(course.root())}")
    if check:
        say(f"checking {'the solution' if len(names) == 1 else f'{len(names)} solutions'} against "
            f"{'its' if len(names) == 1 else 'their'} own tests, graded as submissions are...")
        runs = grading.check_solutions(names, jobs, report=_checked)
        failed = [name for name, run in runs.items() if run is not None and not run.ok]
        if failed:
            raise course.CourseError(f"the solution of {', '.join(failed)} fails its own tests (above): fix the "
                                     f"solution or the tests in solutions/, then release again (the exercises "
                                     f"were written; do not hand them out yet)")
    say(f"next: {CLI} collect {names[0] if len(names) == 1 else '<assignment>'} <folder of submissions>")


def _checked(name: str, run) -> None:
    if run is None:
        say(f"{name:>24}  passes (checked before; nothing it depends on changed)")
    elif run.ok:
        say(f"{name:>24}  passes ({run.seconds:.1f} s)")
    else:
        say(f"{name:>24}  FAILS: {run.error}")


def collect(assignment: str, source: Path | None, force: bool,
            pattern: str | None) -> list[collecting.Collected]:
    """From the folder ``source``, or from nbgrader's exchange when it is None."""
    if source is None:
        items = collecting.collect_exchange(assignment, force=force)
    else:
        items = collecting.collect(assignment, source, force, pattern)
    for item in items:
        say(f"{safe_text.one_line(item.student):>24}  {safe_text.one_line(item.status)}  "
            f"({safe_text.one_line(item.source.name)})")
    refused = [item for item in items if item.refused]
    if refused:
        raise course.CourseError(f"{len(refused)} of the {len(items)} lines above refused something: fix those "
                                 f"files and run collect again (what was collected stays)")
    say(f"next: {CLI} autograde {assignment}")
    return items


def _students(assignment: str, only: list[str] | None, some_may_be_missing: bool = False) -> list[str]:
    everyone = sorted(set(state.submitted(assignment)) | set(state.graded(assignment)))
    missing = sorted(set(only or []) - set(everyone))
    if only and some_may_be_missing:
        return [s for s in only if s in everyone]
    if missing:
        raise course.CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    return only or everyone


def autograde(assignments: list[str], students: list[str] | None, jobs: int, force: bool, autodiff: str = "zero",
              memory: str | None = None, notebook_timeout: int | None = None,
              scheduler: str | None = None) -> dict[str, list]:
    """Grade the assignments in one batch and print a score table for each."""
    from .. import sandbox

    for name in assignments:
        course.require_assignment(name)
    if students:
        _students_submitted(assignments, students)
    else:
        for name in assignments:
            state.require_submissions(name)
    for name in assignments:
        state.require_released(name)
    try:
        size = sandbox.parse_size(memory) if memory else None
    except ValueError:
        raise course.CourseError(f"--memory {memory!r}: give a size such as 2G or 512M") from None
    limits = grading.default_limits(memory=size, notebook_timeout=notebook_timeout)
    batch = grading.autograde_many(assignments, students, jobs, force=force, policy=autodiff, limits=limits,
                                   scheduler=scheduler, stream=safe_text.TerminalStream(sys.stderr))
    tabled = {}
    for name, runs in batch.runs.items():
        if name in batch.failed or not runs:
            continue
        tabled[name] = tables.class_results(name, [r.student for r in runs])
        say(tables.table(name, tabled[name], runs))
    batch.raise_failures()
    say(f"next: {CLI} feedback {_one_or_all(assignments)}, then report and export")
    return tabled


def _students_submitted(assignments: list[str], students: list[str]) -> None:
    found = set().union(*(state.submitted(name) for name in assignments))
    missing = sorted(set(students) - found)
    if missing:
        raise course.CourseError(f"no submission of {', '.join(assignments)} for: {', '.join(missing)}")


def _one_or_all(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "--all"


def feedback(assignment: str, students: list[str] | None, force: bool,
             some_may_be_missing: bool = False) -> list[Path]:
    """One page per graded student; students collected but not graded yet get none (and a line saying so).
    ``some_may_be_missing`` (``--all``): a named student who did not submit this assignment is passed over."""
    state.require_graded(assignment)
    ids = tables.question_order(assignment)
    written = []
    for row in tables.class_results(assignment, _students(assignment, students, some_may_be_missing)):
        if not tables.is_graded(row):
            say(f"{row.student}: not graded yet, no feedback page (run `{CLI} autograde {assignment}`)")
            continue
        path = feedback_pages.write(row, ids, force)
        if path is None:
            say(f"{row.student}: feedback exists (use --force to overwrite)")
        else:
            written.append(path)
    say(f"{assignment}: wrote {len(written)} feedback page(s) under {course.data_dir() / 'feedback'}")
    return written


def report(assignment: str) -> Path:
    state.require_graded(assignment)
    rows = tables.class_results(assignment, _students(assignment, None))
    say(tables.table(assignment, rows))
    path = classreport.write(assignment, rows, tables.question_order(assignment))
    say(f"\nclass report: {path} (and report.html, histogram.png, difficulty.png, questions.png)")
    return path


def graded_assignments() -> list[str]:
    """``--all`` for feedback and report: every assignment with a graded submission."""
    return state.graded_assignments()


def export(to: Path | None, canvas: Path | None) -> tuple[Path, Path]:
    state.require_gradebook(f"nothing has been graded: run `{CLI} autograde <assignment>` first")
    data = course.data_dir()
    csv = tables.export_csv(to or data / "grades.csv")
    canvas_csv = tables.export_canvas(canvas or data / "grades_canvas.csv")
    say(f"wrote {csv}\nwrote {canvas_csv}\n(an assignment a student did not submit is left blank in both)")
    return csv, canvas_csv


def demo(names: list[str], jobs: int) -> None:
    names = names or demo_class.available()
    classes = {}
    for name in names:
        releasing.release(name)
        classes[name] = demo_class.build(name, demo_class.load(name))
    say(f"grading {sum(map(len, classes.values()))} demo submissions of {len(names)} assignment(s) "
        f"with {jobs} workers")
    batch = grading.autograde_many(names, None, jobs, force=True, stream=safe_text.TerminalStream(sys.stderr))
    batch.raise_failures()
    for name, students in classes.items():
        rows = tables.class_results(name, students)
        say(f"\n== {name}")
        say(tables.table(name, rows, batch.runs[name]))
        ids = tables.question_order(name)
        for row in rows:
            if tables.is_graded(row):
                feedback_pages.write(row, ids)
        classreport.write(name, rows, ids)
    data = course.data_dir()
    export(None, None)
    say(f"feedback pages: {data / 'feedback'}/<student>/<assignment>/feedback.html")
    say(f"class reports:  {data / 'reports'}/<assignment>/report.md (+ report.html, figures)")
    say(f"autograded notebooks: {data / 'autograded'}")
