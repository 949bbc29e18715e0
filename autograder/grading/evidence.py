"""The trusted verdict (DESIGN.md, "Grading principles" 1): the driver's verdicts become the gradebook's scores.

While grading, every test cell runs in the trusted driver (autograder.grading.driver) inside the worker; the
executor (autograder.grading.contained) writes each test cell's verdict, in the grader's own words, to ``.run.json``
next to the autograded notebook, out of the kernel's reach. This module turns those verdicts into gradebook
scores, adds the executor's reasons for tests that could not run (a timeout, a dead kernel, the notebook's
deadline), and keeps a lint of the student's cells (autograder.grading.scan) as notes for the instructor's review:
the lint never changes a score.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from . import course, scan
from .channel import _type_name

POLICIES = ("zero", "flag")  # an answer computed from f in a hand derivation: zero the question, or only flag it
RUN_FILE = ".run.json"   # written by autograder.grading.contained: what happened to each cell, and each verdict


def check_solution(assignment: str, spec, workdir: Path) -> None:
    """Grade the instructor's source notebook as a submission (sandboxed kernel, driver); CourseError unless every
    test passes."""
    import nbformat

    from . import contained

    source = course.root() / "solutions" / assignment
    nb = nbformat.read(source / f"{assignment}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp) / assignment
        shutil.copytree(source, work)
        contained.CURRENT["job"] = spec
        try:
            contained.ContainedExecute().preprocess(nb, {"metadata": {"path": str(work)}})
        finally:
            contained.CURRENT["job"] = None
        run = json.loads((work / RUN_FILE).read_text(encoding="utf-8"))
    verdicts = run.get("verdicts", {})
    tests = [gid for gid, cell in spec.cells.items() if cell["role"] == "test"]
    bad = [f"{gid}: {verdicts.get(gid, {}).get('diagnosis') or 'no verdict'}" for gid in tests
           if not verdicts.get(gid, {}).get("passed")]
    if bad:
        if run.get("driver_error"):
            bad.append(run["driver_error"])
        raise course.CourseError(f"the solution of {assignment} does not pass its own tests while grading: "
                                 + "; ".join(bad)[-1500:])


def _run_reasons(nb: dict, run: dict, graded: set[str]) -> dict[str, str]:
    """grade_id -> why its test could not produce evidence, from the executor's trusted record of each cell: the
    test cell itself, or an answer cell before it (since the previous test), timed out, died or was not run."""
    per_cell = {c.get("index"): c for c in run.get("cells", [])}
    stopped = run.get("stopped", "")
    out, pending = {}, ""
    for index, cell in enumerate(nb.get("cells", [])):
        info = per_cell.get(index)
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") if isinstance(cell, dict) else None
        status = info.get("status") if info else None
        is_test = gid in graded and cell.get("cell_type") == "code"
        if status == "timeout":
            why = ("timed out: the test ran past the time limit per cell (an infinite loop or a very slow answer?)"
                   if is_test else f"timed out: cell {index + 1} (your code) ran past the time limit per cell")
        elif status == "died":
            why = f"stopped: {stopped or 'the kernel died'}"
        elif status == "not run":
            why = f"not run: {stopped}"
        elif info and info.get("raised") and not is_test:
            why = f"cell {index + 1} (your code) raised {_type_name(info['raised'])}"
        else:
            why = ""
        if is_test:
            out[gid] = why or pending
            pending = ""
        elif why and not pending:
            pending = why
    return {k: v for k, v in out.items() if v}


def score_submission(assignment: str, student: str, tests: set[str], notes: list[str] | tuple = ()) -> dict:
    """Score one autograded submission from the driver's verdicts, write the gradebook, keep the verdicts beside
    it. The executor's record of each cell explains a test that timed out, was cut off or never ran; the lint of
    the student's cells adds notes for review and changes no score."""
    folder = course.data_dir() / "autograded" / student / assignment
    try:
        nb = json.loads((folder / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        nb = {"cells": []}
    try:
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = {}
    found = run.get("verdicts", {}) if isinstance(run.get("verdicts"), dict) else {}
    table = {}
    reasons = _run_reasons(nb, run, tests)
    for gid in sorted(tests):
        verdict = found.get(gid) or {"passed": False, "diagnosis": "this test did not run", "flags": []}
        diagnosis = verdict.get("diagnosis", "")
        if not verdict.get("passed") and reasons.get(gid) and reasons[gid] not in diagnosis:
            diagnosis = reasons[gid] + (f" ({diagnosis})" if diagnosis and not diagnosis.startswith("not run") else "")
        table[gid] = {"passed": bool(verdict.get("passed")), "diagnosis": diagnosis,
                      "flags": list(verdict.get("flags", []))}
    lint = scan.scan(nb, reference_notebook(assignment), tests)
    review = [f"for review: {why}" for why in lint.tamper[:5]]
    for gid, why in lint.autodiff.items():
        if gid in table:
            table[gid]["flags"].append("for review: " + "; ".join(why))
    _write_grades(assignment, student, {gid: v["passed"] for gid, v in table.items()})
    dropped = [c for c in run.get("cells", []) if c.get("dropped")]
    skipped = [c for c in run.get("cells", []) if c.get("status") == "skipped"]
    notes = list(notes) + [f"cell {c['index'] + 1} printed too much: {c['dropped'] / 2**20:.1f} MB of output dropped"
                           for c in dropped]
    notes += [f"cell {c['index'] + 1} comes before the set-up cell and was not run: put your code below the set-up"
              for c in skipped]
    table["_submission"] = {"problem": "", "notes": notes + review, "tamper": [], "flags": lint.flags,
                            "stopped": run.get("stopped", ""), "seconds": run.get("seconds")}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".verdicts.json").unlink(missing_ok=True)
    (folder / ".verdicts.json").write_text(json.dumps(table, ensure_ascii=False, indent=1), encoding="utf-8")
    return table


def reference_notebook(assignment: str) -> dict:
    """The instructor's cells as nbgrader restores them while grading (from the gradebook, as released), in the
    shape of a notebook: what autograder.grading.scan trusts and reads the tests from."""
    from nbgrader.api import Gradebook

    cells = []
    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        nbk = gb.find_notebook(assignment, assignment)
        graded = {c.name for c in nbk.grade_cells}
        solution = {c.name for c in nbk.solution_cells}
        for cell in nbk.source_cells:
            cells.append({"cell_type": cell.cell_type, "source": cell.source or "", "metadata": {"nbgrader": {
                "grade_id": cell.name, "locked": bool(cell.locked), "grade": cell.name in graded,
                "solution": cell.name in solution}}})
    return {"cells": cells}


def _write_grades(assignment: str, student: str, passed: dict[str, bool] | None) -> None:
    """Auto scores from the verdicts (``None``: every graded cell scores 0); manual grades are left alone."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            gb.update_or_create_student(student)
            submission = gb.add_submission(assignment, student)
        for nbk in submission.notebooks:
            for grade in nbk.grades:
                if passed is not None and grade.name not in passed:
                    continue
                ok = bool(passed and passed.get(grade.name))
                grade.auto_score = grade.max_score if ok else 0.0
                grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()


def record_failure(assignment: str, student: str, problem: str, notes: list[str] | tuple = ()) -> None:
    """A submission that could not be graded scores 0 on every graded cell, with ``problem`` as the reason."""
    folder = course.data_dir() / "autograded" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.ipynb"):
        stale.unlink()
    (folder / RUN_FILE).unlink(missing_ok=True)
    _write_grades(assignment, student, None)
    table = {"_submission": {"problem": problem, "notes": list(notes), "tamper": [], "flags": []}}
    (folder / ".verdicts.json").unlink(missing_ok=True)
    (folder / ".verdicts.json").write_text(json.dumps(table, ensure_ascii=False, indent=1), encoding="utf-8")
