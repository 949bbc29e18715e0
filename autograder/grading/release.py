"""`release`: nbgrader's generate_assignment, then a normalised student notebook.

Normalised means: no outputs, no execution counts, and cell ids taken from nbgrader's grade ids (or the cell's
position), so that regenerating an unchanged source leaves `git diff` empty.
"""

from __future__ import annotations

import json
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


def release(assignment: str) -> Path:
    """Generate exercises/<assignment>/ from solutions/<assignment>/ and return the student notebook's path."""
    course.require_assignment(assignment)
    result = course.api().generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        raise course.CourseError(f"nbgrader could not release {assignment}: {result.get('error') or ''}\n"
                                 f"{result.get('log', '')}".strip())
    out = course.root() / "exercises" / assignment
    for nb in sorted(out.glob("*.ipynb")):
        normalise(nb)
    return out / f"{assignment}.ipynb"
