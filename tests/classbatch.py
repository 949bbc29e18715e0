"""Every demo class and the honest-explorers corpus, graded ONCE per test run in one batch.

tests/test_demo_class.py and tests/test_honest.py read their results from this batch: one pool of workers
for every assignment (each worker imports the grader and compiles an assignment's references once, not once
per test module and assignment), each solution graded once. pytest-xdist workers share it through a lock and
a folder named after the run (PYTEST_XDIST_TESTRUNUID), as tests/sitebuild.py shares the site build.
"""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import shutil
import tempfile
import traceback
from pathlib import Path

from notebooks import release_lock

_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
_PREFIX = f"vc4ml-class-{os.getuid()}-"
FOLDER = Path(tempfile.gettempdir()) / f"{_PREFIX}{_RUN}"
# The demo classes' infinite loop runs until the cell limit: 30 s instead of the course's 60 keeps that
# proof and gives every honest cell ample time on a busy machine.
CELL_TIMEOUT = 30
_DONE: dict = {}


def _grade() -> dict:
    from autograder.grading import autograde, demo, release
    from honest import build

    data = FOLDER / "data"
    data.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("AUTOGRADER_DATA")
    os.environ["AUTOGRADER_DATA"] = str(data)
    try:
        cases = build.load()
        with release_lock():
            names = demo.available()
            for name in names:
                release.release(name)
                demo.build(name, demo.load(name))
            build.build(cases)
        stream = io.StringIO()
        limits = autograde.default_limits(cell_timeout=CELL_TIMEOUT)
        batch = autograde.autograde_many(names, jobs=2, force=True, stream=stream, limits=limits)
        return {"data": data, "batch": batch, "log": stream.getvalue(), "error": ""}
    except Exception:  # every test that reads the batch fails with this, instead of grading it again
        return {"data": data, "batch": None, "log": "", "error": traceback.format_exc()}
    finally:
        os.environ.pop("AUTOGRADER_DATA") if old is None else os.environ.update(AUTOGRADER_DATA=old)


def graded() -> dict:
    """{"data": the batch's data folder, "batch": autograde.Batch, "log": its progress output}; raises
    AssertionError with the traceback if the batch could not be graded."""
    if "result" not in _DONE:
        lock_name = f"{FOLDER.name}.lock"
        with open(FOLDER.parent / lock_name, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            saved = FOLDER / "batch.pickle"
            if not saved.exists():
                for old in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):  # earlier runs' batches
                    if old.is_dir() and old != FOLDER:
                        shutil.rmtree(old, ignore_errors=True)
                    elif old.name != lock_name:
                        old.unlink(missing_ok=True)
                result = _grade()
                saved.write_bytes(pickle.dumps(result))
            _DONE["result"] = pickle.loads(saved.read_bytes())
    result = _DONE["result"]
    assert not result["error"], "the shared class batch could not be graded:\n" + result["error"]
    return result
