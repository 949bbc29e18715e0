"""Where the course lives, and nbgrader's API configured from the repository's nbgrader_config.py."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# nbgrader runs the `alembic` executable from PATH; make the one next to this Python findable even when the
# virtual environment is not activated (e.g. `.venv/bin/python -m autograder`).
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


class CourseError(Exception):
    """A mistake the instructor can fix: the message says what and how."""


def root() -> Path:
    return Path(os.environ.get("AUTOGRADER_COURSE_ROOT") or ROOT)


def data_dir() -> Path:
    path = Path(os.environ.get("AUTOGRADER_DATA") or root() / "var").resolve()
    (path / "exchange").mkdir(parents=True, exist_ok=True)  # nbgrader's API insists that it exists
    return path


def assignments() -> list[str]:
    """Assignment names: the folders of solutions/ holding a notebook of the same name."""
    src = root() / "solutions"
    return sorted(p.name for p in src.iterdir() if (p / f"{p.name}.ipynb").is_file()) if src.is_dir() else []


def release_notebook(assignment: str) -> Path:
    """The student version of ``assignment``: exercises/<assignment>/<assignment>.ipynb."""
    return root() / "exercises" / assignment / f"{assignment}.ipynb"


def read_release(assignment: str) -> dict:
    return json.loads(release_notebook(assignment).read_text(encoding="utf-8"))


def require_assignment(name: str) -> str:
    known = assignments()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        raise CourseError(f"unknown assignment {name!r}: {hint}the course has: {', '.join(known) or 'none'} "
                          f"(the folders of solutions/)")
    return name


def load_config():
    from traitlets.config.loader import PyFileConfigLoader

    _use_alembic_head()
    data_dir()
    return PyFileConfigLoader("nbgrader_config.py", path=str(root())).load_config()


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:'([0-9a-f]+)'|None)\s*$", re.MULTILINE)


@functools.cache
def alembic_head() -> str:
    """The head of nbgrader's database migrations, read from its revision files. nbgrader asks for it (once per
    new gradebook) by running `alembic heads` in a subprocess, which costs seconds of imports each time."""
    from nbgrader.dbutil import ALEMBIC_DIR

    revisions, parents = set(), set()
    for path in (Path(ALEMBIC_DIR) / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        revisions.add(found.get("revision"))
        parents.add(found.get("down_revision"))
    heads = revisions - parents - {None, ""}
    if len(heads) != 1:
        raise CourseError(f"cannot tell nbgrader's database revision (heads: {sorted(heads)})")
    return heads.pop()


def _use_alembic_head() -> None:
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head


def api(log_level: int = logging.WARNING, config=None):
    """An ``NbGraderAPI`` for this course (``config``: the course's, possibly adjusted), quiet unless asked."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _use_alembic_head()
    config = config or load_config()
    log = logging.getLogger("nbgrader")
    log.setLevel(log_level)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config, log=log)
