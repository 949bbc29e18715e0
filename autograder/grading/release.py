"""`release`: nbgrader's generate_assignment, then a normalised student notebook.

Normalised means: no outputs, no execution counts, and cell ids taken from nbgrader's grade ids (or the cell's
position), so that regenerating an unchanged source leaves `git diff` empty.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import course


def normalise(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    seen = set()
    for index, cell in enumerate(nb.get("cells", [])):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        cell_id = grade_id if grade_id and grade_id not in seen else f"{cell['cell_type']}-{index}"
        seen.add(cell_id)
        cell["id"] = cell_id
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def _install(built: Path, dest: Path) -> None:
    """Make ``dest`` hold exactly the files of ``built``; each file is replaced atomically and only if it changed,
    so a reader of exercises/ never sees a missing or half-written notebook."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    for rel in sorted(wanted):
        data, target = (built / rel).read_bytes(), dest / rel
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        staging.write_bytes(data)
        os.replace(staging, target)
    for old in sorted(p for p in dest.rglob("*") if p.is_file() and p.relative_to(dest) not in wanted):
        old.unlink()


def release(assignment: str) -> Path:
    """Generate exercises/<assignment>/ from solutions/<assignment>/ and return the student notebook's path.

    nbgrader writes the release into a scratch folder (it deletes its output folder first); the normalised result
    is then installed into exercises/ file by file.
    """
    course.require_assignment(assignment)
    with tempfile.TemporaryDirectory(dir=course.data_dir(), prefix="release-") as scratch:
        config = course.load_config()
        config.CourseDirectory.release_directory = scratch
        result = course.api(config=config).generate_assignment(assignment, force=True, create=True)
        if not result.get("success"):
            raise course.CourseError(f"nbgrader could not release {assignment}: {result.get('error') or ''}\n"
                                     f"{result.get('log', '')}".strip())
        built = Path(scratch) / assignment
        for nb in sorted(built.glob("*.ipynb")):
            normalise(nb)
        _install(built, course.release_notebook(assignment).parent)
    return course.release_notebook(assignment)
