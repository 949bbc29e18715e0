"""A solution that passed its own tests is not graded again while nothing it depends on has changed.

Every local batch first grades each assignment's solution (autograde.SolutionJob); regrading one late
submission would otherwise cost two gradings. The key covers all that the solution's run depends on: the
grader's code, the assignment's solution and release (remote.code_digest), the instructor's cells in the
gradebook, the containment plan and limits, and the Python, JAX and NumPy versions. Only passes are kept: a
solution that failed always runs again. The folder is the instructor's (<data>/cache/solutions, or
AUTOGRADER_SOLUTION_CACHE); no submission runs with it reachable, since the sandbox exposes only the job's
own folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from . import course


def folder() -> Path:
    return Path(os.environ.get("AUTOGRADER_SOLUTION_CACHE") or course.data_dir() / "cache" / "solutions")


def key(assignment: str, cells: dict, plan, limits) -> str:
    from importlib.metadata import version

    from .remote import code_digest

    digest = hashlib.sha256()
    for part in (code_digest([assignment]), json.dumps(cells, sort_keys=True), repr(plan), repr(limits),
                 sys.version, version("jax"), version("jaxlib"), version("numpy")):
        digest.update(part.encode())
        digest.update(b"\0")
    return f"{assignment}-{digest.hexdigest()}"


def passed(key: str) -> bool:
    return (folder() / key).is_file()


def remember(key: str) -> None:
    """Record a pass (written whole or not at all, so concurrent batches may record the same key)."""
    path = folder() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
    tmp.write_text("passed\n")
    os.replace(tmp, path)
