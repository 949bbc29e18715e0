"""`collect`: bring submissions into <data>/submitted/<student>/<assignment>/ from the usual shapes.

* nbgrader's layout: ``<dir>/<student>/<assignment>/<assignment>.ipynb`` (+ any other files, timestamp.txt);
* nbgrader's exchange (``collect --exchange``), as the Assignment List submits:
  ``<data>/exchange/vc4ml/inbound/<student>+<assignment>+<time>[+<random>]``; the latest
  folder per student (by the time in its name) is collected, its line counts the others;
* a flat folder of notebooks named by student, as an LMS download comes: ``alice.ipynb``,
  ``alice_ch01_univariate.ipynb`` or Canvas' ``smithalice_12345_678_ch01_univariate.ipynb``: the student id is
  the part of the name before the first underscore (or ``--pattern`` with a ``(?P<student>...)`` group).

Collect is total and per file: every file is looked at with ``lstat`` and opened without following links, and each
problem becomes one line of the summary, never an abort. Refused, with the reason: symbolic links and special
files (a link could make any file the instructor can read a submission), names that give no usable student id,
files over the size limits, and two files that map to one student id (neither is collected: which one would be
graded must not depend on the sort order). A submission is copied into a scratch folder and moved into place
whole, so a half-copied submission is never graded. Unreadable notebooks are still collected (grading gives them
a score and a reason) and are reported. Nothing already collected is replaced without ``force``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import course, intake

DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.\-]+?)(?:_.*)?\.ipynb$"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
SKIPPED_DIRS = {".ipynb_checkpoints", "__pycache__"}
COURSE_ID = "vc4ml"      # as nbgrader_config.py and lab/nbgrader_config.py
# nbgrader's submit: <student>+<assignment>+<timestamp>[+<random string>]
INBOUND = re.compile(r"^(?P<student>[^+]*)\+(?P<assignment>[^+]*)\+(?P<stamp>[^+]+)"
                     r"(?:\+[A-Za-z0-9_=\-]+)?$")


@dataclass
class Collected:
    student: str
    source: Path
    status: str           # "collected", "replaced", "kept (...)", or why it was refused; problems follow a ";"
    refused: bool = False  # something here was not collected: collect exits non-zero


class Refused(Exception):
    """One file or submission that is not collected; the message says why."""


def _readable(path: Path) -> str:
    """"" for a notebook, else what is wrong with it (never raises: any parse error is this file's problem)."""
    try:
        return intake._read(path)[1]
    except Exception as exc:  # e.g. RecursionError, MemoryError from a hostile file
        return f"{path.name} could not be read as a notebook ({type(exc).__name__})"


def _kind(mode: int) -> str:
    return "a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "a special file"


def _copy_regular(src: Path, dest: Path, limit: int) -> float:
    """Copy ``src`` to ``dest`` if it is a regular file (opened without following a link, so a file swapped for
    a link after the listing is refused too); return its modification time."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise Refused(f"cannot read it: {why}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(_kind(info.st_mode))
        if info.st_size > limit:
            raise Refused(f"{info.st_size / 2**20:.0f} MB, over the {limit // 2**20} MB limit")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("xb") as out:
            shutil.copyfileobj(fh, out)
    os.utime(dest, (info.st_atime, info.st_mtime))
    return info.st_mtime


def _walk(folder: Path) -> tuple[list[Path], list[str]]:
    """Regular-looking files under ``folder`` (relative paths, sorted) and the entries refused on the way
    (links, special files); links to folders are never followed."""
    files, refused = [], []

    def unreadable(exc: OSError) -> None:
        refused.append(f"{Path(exc.filename).relative_to(folder)} (cannot read it: {exc.strerror})")

    for top, dirs, names in os.walk(folder, onerror=unreadable, followlinks=False):
        here = Path(top)
        for name in sorted(dirs):
            path = here / name
            if path.is_symlink():
                refused.append(f"{path.relative_to(folder)} (a symbolic link)")
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            try:
                mode = path.lstat().st_mode
            except OSError as exc:
                unreadable(exc)
                continue
            if stat.S_ISREG(mode):
                files.append(path.relative_to(folder))
            else:
                refused.append(f"{path.relative_to(folder)} ({_kind(mode)})")
    return sorted(files), refused


def _lexists(path: Path) -> bool:
    try:
        path.lstat()
        return True
    except OSError:
        return False


def _place(assignment: str, student: str, notebook: Path | None, extras: list[tuple[Path, Path]],
           force: bool) -> tuple[str, list[str]]:
    """Copy the notebook and ``extras`` ((source, relative destination)) to the student's submitted folder, all
    or nothing; return the status and the extra files refused on the way."""
    dest = course.data_dir() / "submitted" / student / assignment
    existed = _lexists(dest)
    if existed and not force:
        return "kept (already collected; --force to replace)", []
    scratch = Path(tempfile.mkdtemp(prefix=".collect-", dir=course.data_dir()))
    try:
        staged, refused, mtimes = scratch / assignment, [], []
        staged.mkdir()
        if notebook is not None:
            try:
                mtimes.append(_copy_regular(notebook, staged / f"{assignment}.ipynb", intake.MAX_NOTEBOOK))
            except Refused as why:  # nothing of this submission is collected
                raise Refused(f"{notebook.name}: {why}") from None
        for n, (src, rel) in enumerate(extras):
            try:
                if n >= intake.MAX_FILES:
                    raise Refused("too many files")
                mtimes.append(_copy_regular(src, staged / rel, intake.MAX_FILE))
            except Refused as why:
                refused.append(f"{rel} ({why})")
        if not mtimes:
            raise Refused("no file could be copied: " + ", ".join(refused))
        if not (staged / "timestamp.txt").exists():
            stamp = datetime.fromtimestamp(max(mtimes), timezone.utc)
            (staged / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z") + "\n")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if existed:
            os.replace(dest, scratch / "old")
        os.replace(staged, dest)  # the whole submission appears at once
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ("replaced" if existed else "collected"), refused


def _submission(assignment: str, student: str, source: Path, notebook: Path | None,
                extras: list[tuple[Path, Path]], force: bool, refused: list[str] = ()) -> Collected:
    """Collect one student's notebook and other files into a line of the summary."""
    if not STUDENT_ID.match(student):
        return Collected(student, source, f"refused: {student!r} is not a usable student id (letters, digits, "
                                          f". _ -, starting with a letter or digit): rename it", True)
    try:
        status, skipped = _place(assignment, student, notebook, extras, force)
    except Refused as why:
        return Collected(student, source, f"refused: {why}", True)
    except OSError as exc:
        return Collected(student, source, f"refused: cannot copy it ({exc.strerror or exc})", True)
    if status.startswith("kept"):
        return Collected(student, source, status)
    skipped = list(refused) + skipped
    copy = course.data_dir() / "submitted" / student / assignment / f"{assignment}.ipynb"
    problems = [_readable(copy) if notebook else f"missing {assignment}.ipynb"]
    if skipped:
        problems.append("files refused: " + ", ".join(skipped))
    return Collected(student, source, "; ".join([status] + [p for p in problems if p]), bool(skipped))


def _folder(assignment: str, student: str, folder: Path, force: bool) -> Collected:
    """One submission folder holding ``<assignment>.ipynb`` and any other files."""
    files, refused = _walk(folder)
    name = Path(f"{assignment}.ipynb")
    notebook = folder / name if name in files else None
    extras = [(folder / p, p) for p in files if p != name]
    if notebook is None and not extras:
        also = f"; refused: {', '.join(refused)}" if refused else ""
        why = f"refused: no files (missing {name}){also}"
        return Collected(student, folder, why, True)
    return _submission(assignment, student, folder, notebook, extras, force, refused)


def _nested(assignment: str, source: Path, force: bool) -> list[Collected]:
    out = []
    for entry in sorted(source.iterdir()):
        folder = entry / assignment
        if not _lexists(folder):
            continue
        if entry.is_symlink() or folder.is_symlink() or not folder.is_dir():
            out.append(Collected(entry.name, folder, "refused: a symbolic link or not a folder", True))
            continue
        out.append(_folder(assignment, entry.name, folder, force))
    return out


def _stamp(text: str) -> datetime:
    """The UTC time of an nbgrader timestamp ("2026-11-29 20:55:01.123456 UTC");
    ValueError if it is not one."""
    from nbgrader.utils import parse_utc

    if not re.fullmatch(r"\d{4}-\d\d-\d\d[ T][0-9:.]+( [A-Za-z0-9:+\-]+)?", text):
        raise ValueError(text)
    return parse_utc(text)


def collect_exchange(assignment: str, root: Path | None = None,
                     force: bool = False) -> list[Collected]:
    """The latest submission per student in nbgrader's inbound folder under ``root``
    (default <data>/exchange, as nbgrader_config.py)."""
    course.require_assignment(assignment)
    inbound = (root or course.data_dir() / "exchange") / COURSE_ID / "inbound"
    if not inbound.is_dir():
        raise course.CourseError(f"no such folder: {inbound} (nothing released or "
                                 f"submitted through the exchange there)")
    out, by_student = [], defaultdict(list)
    for entry in sorted(inbound.iterdir()):
        match = INBOUND.match(entry.name)
        if match and match["assignment"] != assignment:
            continue                                   # another assignment's submission
        student = match["student"] if match else "?"
        mode = entry.lstat().st_mode
        try:
            when = _stamp(match["stamp"]) if match else None
        except (ValueError, OverflowError):
            when = None
        if not match or when is None:
            out.append(Collected(student, entry, "refused: the name is not nbgrader's "
                                 f"<student>+{assignment}+<time> layout", True))
        elif not stat.S_ISDIR(mode):
            why = f"refused: {_kind(mode)}, not a submission folder"
            out.append(Collected(student, entry, why, True))
        else:
            by_student[student].append((when, entry))
    for student, found in sorted(by_student.items()):
        found.sort()
        when, latest = found[-1]
        item = _folder(assignment, student, latest, force)
        if len(found) > 1:
            stamp = f"{when:%Y-%m-%d %H:%M:%S} UTC"
            item.status += f"; the latest of {len(found)} ({stamp})"
        out.append(item)
    if not out:
        raise course.CourseError(f"no submissions of {assignment} in {inbound}")
    return sorted(out, key=lambda c: (c.student, c.source.name))


def _flat(assignment: str, source: Path, regex: re.Pattern, force: bool) -> list[Collected]:
    out, by_student = [], defaultdict(list)
    for path in sorted(source.glob("*.ipynb")):
        mode = path.lstat().st_mode
        match = regex.match(path.name)
        if not stat.S_ISREG(mode):
            out.append(Collected(match.group("student") if match else "?", path,
                                 f"refused: {_kind(mode)}, not a notebook file", True))
        elif not match:
            out.append(Collected("?", path, "refused: the name does not match the student pattern "
                                            "(rename it or use --pattern)", True))
        else:
            by_student[match.group("student")].append(path)
    for student, paths in by_student.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            earlier = course.data_dir() / "submitted" / student / assignment
            kept = "; the copy collected before is unchanged" if earlier.exists() else ""
            out += [Collected(student, p, f"refused: {len(paths)} files map to student id {student!r} ({names}): "
                                          f"neither is collected{kept}; remove one or use --pattern", True)
                    for p in paths]
            continue
        path = paths[0]
        out.append(_submission(assignment, student, path, path, [], force))
    return sorted(out, key=lambda c: (c.student, c.source.name))


def collect(assignment: str, source: Path, force: bool = False, pattern: str | None = None) -> list[Collected]:
    course.require_assignment(assignment)
    if not source.is_dir():
        raise course.CourseError(f"no such folder: {source}")
    regex = re.compile(pattern or DEFAULT_PATTERN)
    if "student" not in regex.groupindex:
        raise course.CourseError("--pattern needs a named group (?P<student>...)")
    nested = any(_lexists(p / assignment) for p in source.iterdir())
    out = _nested(assignment, source, force) if nested else _flat(assignment, source, regex, force)
    if not out:
        raise course.CourseError(f"no submissions found in {source}: expected <student>/{assignment}/"
                                 f"{assignment}.ipynb folders or <student>_*.ipynb files")
    return out
