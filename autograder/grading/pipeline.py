"""The verbs of the command line, each a short composition of the grading modules, printing as it goes."""

from __future__ import annotations

from pathlib import Path

from . import autograde as grading
from . import classreport, collect as collecting, course, demo as demo_class, feedback as feedback_pages
from . import release as releasing, report as tables


def release(names: list[str]) -> None:
    for name in names:
        print(f"released {releasing.release(name).relative_to(course.root())}")


def collect(assignment: str, source: Path, force: bool, pattern: str | None) -> None:
    for item in collecting.collect(assignment, source, force, pattern):
        print(f"{item.student:>24}  {item.status}  ({item.source.name})")


def _students(assignment: str, only: list[str] | None) -> list[str]:
    everyone = grading.submissions(assignment)
    missing = sorted(set(only or []) - set(everyone))
    if missing:
        raise course.CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    return only or everyone


def autograde(assignments: list[str], students: list[str] | None, jobs: int, force: bool, autodiff: str = "zero",
              memory: str | None = None, notebook_timeout: int | None = None,
              scheduler: str | None = None) -> dict[str, list]:
    """Grade the assignments in one batch and print a score table for each."""
    from .. import sandbox

    try:
        size = sandbox.parse_size(memory) if memory else None
    except ValueError:
        raise course.CourseError(f"--memory {memory!r}: give a size such as 2G or 512M") from None
    limits = grading.default_limits(memory=size, notebook_timeout=notebook_timeout)
    batch = grading.autograde_many(assignments, students, jobs, force=force, policy=autodiff, limits=limits,
                                   scheduler=scheduler)
    tabled = {}
    for name, runs in batch.runs.items():
        if name in batch.failed or not runs:
            continue
        tabled[name] = tables.class_results(name, [r.student for r in runs])
        print(tables.table(name, tabled[name], runs))
    batch.raise_failures()
    return tabled


def feedback(assignment: str, students: list[str] | None, force: bool) -> list[Path]:
    course.require_assignment(assignment)
    ids = tables.question_order(assignment)
    written = []
    for row in tables.class_results(assignment, _students(assignment, students)):
        path = feedback_pages.write(row, ids, force)
        if path is None:
            print(f"{row.student}: feedback exists (use --force to overwrite)")
        else:
            written.append(path)
    print(f"wrote {len(written)} feedback page(s) under {course.data_dir() / 'feedback'}")
    return written


def report(assignment: str) -> Path:
    course.require_assignment(assignment)
    rows = tables.class_results(assignment, _students(assignment, None))
    print(tables.table(assignment, rows))
    path = classreport.write(assignment, rows, tables.question_order(assignment))
    print(f"\nclass report: {path} (and report.html, histogram.png, difficulty.png)")
    return path


def export(to: Path | None, canvas: Path | None) -> tuple[Path, Path]:
    data = course.data_dir()
    csv = tables.export_csv(to or data / "grades.csv")
    canvas_csv = tables.export_canvas(canvas or data / "grades_canvas.csv")
    print(f"wrote {csv}\nwrote {canvas_csv}")
    return csv, canvas_csv


def demo(names: list[str], jobs: int) -> None:
    names = names or demo_class.available()
    classes = {}
    for name in names:
        releasing.release(name)
        classes[name] = demo_class.build(name, demo_class.load(name))
    print(f"grading {sum(map(len, classes.values()))} demo submissions of {len(names)} assignment(s) "
          f"with {jobs} workers")
    batch = grading.autograde_many(names, None, jobs, force=True)
    batch.raise_failures()
    for name, students in classes.items():
        rows = tables.class_results(name, students)
        print(f"\n== {name}")
        print(tables.table(name, rows, batch.runs[name]))
        ids = tables.question_order(name)
        for row in rows:
            feedback_pages.write(row, ids)
        classreport.write(name, rows, ids)
    data = course.data_dir()
    export(None, None)
    print(f"feedback pages: {data / 'feedback'}/<student>/<assignment>/feedback.html")
    print(f"class reports:  {data / 'reports'}/<assignment>/report.md (+ report.html, figures)")
    print(f"autograded notebooks: {data / 'autograded'}")
