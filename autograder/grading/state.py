"""Where the instructor's loop stands for an assignment, and the one line that names the next step.

Each ``require_*`` raises a ``CourseError`` whose message says what is missing and which command fixes it; the
command line prints it and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path

from . import course

CLI = "python -m autograder"


def db_url() -> str:
    return course.load_config().CourseDirectory.db_url


def _sqlite_file(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def require_gradebook(fix: str) -> None:
    """A gradebook exists (for SQLite: its file; opening it would create an empty one)."""
    url = db_url()
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise course.CourseError(f"no gradebook at {path} yet: {fix}")
    if path is None:  # a database server (PostgreSQL): one line if it cannot be reached
        from .remote import require_gradebook as reachable

        reachable()


def _assignment_names() -> set[str]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url()) as gb:
        return {a.name for a in gb.assignments}


def require_released(assignment: str) -> None:
    """The assignment is in the gradebook: `release` records its cells and points there."""
    fix = f"run `{CLI} release {assignment}` first (it records the assignment's tests in the gradebook)"
    require_gradebook(fix)
    if assignment not in _assignment_names():
        from .remote import describe

        raise course.CourseError(f"{assignment} has not been released into the gradebook {describe(db_url())}: "
                                 f"{fix}")


def submitted(assignment: str) -> list[str]:
    """Student ids with a collected submission of ``assignment``."""
    base = course.data_dir() / "submitted"
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir()) if base.is_dir() else []


def require_submissions(assignment: str) -> list[str]:
    found = submitted(assignment)
    if not found:
        raise course.CourseError(f"no submissions of {assignment} in {course.data_dir() / 'submitted'}: collect "
                                 f"them first: `{CLI} collect {assignment} <folder of submissions>`")
    return found


def graded(assignment: str) -> list[str]:
    """Student ids with a graded submission of ``assignment`` in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url()) as gb:
        try:
            return sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return []


def require_graded(assignment: str) -> list[str]:
    """Student ids graded for ``assignment``; a CourseError naming the step that is missing if there are none."""
    course.require_assignment(assignment)
    fix = f"run `{CLI} autograde {assignment}` first"
    require_gradebook(fix)
    found = graded(assignment)
    if not found:
        require_submissions(assignment)
        raise course.CourseError(f"no submission of {assignment} has been graded yet: {fix}")
    return found


def graded_assignments() -> list[str]:
    """The course's assignments with at least one graded submission (for ``--all``)."""
    require_gradebook(f"run `{CLI} autograde --all` first")
    found = [name for name in course.assignments() if graded(name)]
    if not found:
        raise course.CourseError(f"nothing has been graded yet: run `{CLI} autograde --all` first")
    return found
