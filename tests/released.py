"""A gradebook with chapter 1 released into it, made once per test process and copied for each use (creating a
gradebook and releasing into it is the slow step of the instructor-side tests)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from notebooks import release_lock

A = "ch01_univariate"
_CACHE: dict[str, Path] = {}


def gradebook_into(data: Path) -> Path:
    """Copy the released gradebook into the data folder ``data``; return the copy's path."""
    if "db" not in _CACHE:
        from autograder.grading import release

        folder = Path(tempfile.mkdtemp(prefix="vc4ml-released-"))
        atexit.register(shutil.rmtree, folder, True)
        old = os.environ.get("AUTOGRADER_DATA")
        os.environ["AUTOGRADER_DATA"] = str(folder)
        try:
            with release_lock():
                release.release(A)
        finally:
            os.environ.pop("AUTOGRADER_DATA") if old is None else os.environ.update(AUTOGRADER_DATA=old)
        _CACHE["db"] = folder / "gradebook.db"
    data.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(_CACHE["db"], data / "gradebook.db"))
