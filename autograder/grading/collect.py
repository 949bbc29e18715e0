"""`collect`: bring submissions into <data>/submitted/<student>/<assignment>/ from the two usual shapes.

* nbgrader's layout: ``<dir>/<student>/<assignment>/<assignment>.ipynb`` (+ any other files, timestamp.txt);
* a flat folder of notebooks named by student, as an LMS download comes: ``alice.ipynb``,
  ``alice_ch01_univariate.ipynb`` or Canvas' ``smithalice_12345_678_ch01_univariate.ipynb``: the student id is
  the part of the name before the first underscore (or ``--pattern`` with a ``(?P<student>...)`` group).

Nothing already collected is replaced without ``force``. Unreadable notebooks are still collected (grading
gives them a score and a reason) but are reported.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import course

DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.\-]+?)(?:_.*)?\.ipynb$"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


@dataclass
class Collected:
    student: str
    source: Path
    status: str  # "collected", "replaced", "kept (exists; --force to replace)", "unreadable notebook: ..."


def _readable(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(nb, dict) or "cells" not in nb:
            return "not a notebook (no cells)"
    except UnicodeDecodeError:
        return "not a text file"
    except ValueError as exc:
        return f"invalid JSON ({exc.msg} at line {exc.lineno})"
    return ""


def _place(assignment: str, student: str, files: list[tuple[Path, str]], force: bool) -> str:
    if not STUDENT_ID.match(student):
        raise course.CourseError(f"{student!r} is not a usable student id (letters, digits, . _ -)")
    dest = course.data_dir() / "submitted" / student / assignment
    existed = dest.exists()
    if existed and not force:
        return "kept (already collected; --force to replace)"
    if existed:
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for src, name in files:
        shutil.copy2(src, dest / name)
    if not (dest / "timestamp.txt").exists():
        stamp = datetime.fromtimestamp(max(src.stat().st_mtime for src, _ in files), timezone.utc)
        (dest / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z") + "\n")
    return "replaced" if existed else "collected"


def collect(assignment: str, source: Path, force: bool = False, pattern: str | None = None) -> list[Collected]:
    course.require_assignment(assignment)
    if not source.is_dir():
        raise course.CourseError(f"no such folder: {source}")
    regex = re.compile(pattern or DEFAULT_PATTERN)
    if "student" not in regex.groupindex:
        raise course.CourseError("--pattern needs a named group (?P<student>...)")
    out = []
    nested = sorted(p for p in source.glob(f"*/{assignment}") if p.is_dir())
    if nested:  # nbgrader's submitted/ layout
        for folder in nested:
            files = [(p, str(p.relative_to(folder))) for p in sorted(folder.rglob("*")) if p.is_file()]
            notebook = folder / f"{assignment}.ipynb"
            problem = _readable(notebook) if notebook.exists() else f"missing {assignment}.ipynb"
            if files:
                status = _place(assignment, folder.parent.name, files, force)
                out.append(Collected(folder.parent.name, folder, f"{status}; {problem}" if problem else status))
        return out
    for path in sorted(source.glob("*.ipynb")):
        match = regex.match(path.name)
        if not match:
            out.append(Collected("?", path, "skipped: the name does not match the student pattern"))
            continue
        student = match.group("student")
        problem = _readable(path)
        status = _place(assignment, student, [(path, f"{assignment}.ipynb")], force)
        out.append(Collected(student, path, f"{status}; {problem}" if problem else status))
    if not out:
        raise course.CourseError(f"no submissions found in {source}: expected <student>/{assignment}/{assignment}.ipynb "
                                 f"folders or <student>_*.ipynb files")
    return out
