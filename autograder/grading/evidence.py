"""The trusted verdict (DESIGN.md, "Grading principles" 1): compare the evidence a student's test cells produced
with the evidence the instructor's solution produces at the same secret points, outside any student kernel.

While grading, each check in a test cell records the points it drew (from a per-run secret) and the student's
values there. The solution notebook is run once per batch with the same secret. A graded cell earns its points
iff every check it ran matches the solution's, in order, by the course's comparison rule. Nothing the student's
code prints, patches or raises in the kernel can change that: credit needs the right numbers at points nobody
could know before the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import diagnosis
from ..compare import EVIDENCE_MIME, compare
from . import course, scan

POLICIES = ("zero", "flag")  # autodiff in a hand derivation: zero the question, or only flag it for review


@dataclass
class Verdict:
    passed: bool
    diagnosis: str = ""
    flags: list[str] = field(default_factory=list)


def records(nb: dict) -> dict[str, list[dict]]:
    """grade_id -> the evidence records of that graded cell, in the order its checks ran."""
    found: dict[str, list[dict]] = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not (meta.get("grade") and cell.get("cell_type") == "code"):
            continue
        recs = found.setdefault(meta.get("grade_id", ""), [])
        for out in cell.get("outputs", []):
            rec = out.get("data", {}).get(EVIDENCE_MIME) if isinstance(out.get("data"), dict) else None
            if isinstance(rec, dict):
                recs.append(rec)
    return found


def _decode(enc):
    if not isinstance(enc, dict):
        raise ValueError("malformed evidence")
    if "data" in enc:
        arr = np.asarray(enc["data"], dtype=np.float64).reshape(enc["shape"])
        return arr.astype(np.dtype(enc.get("dtype", "<f8"))) if np.dtype(enc.get("dtype", "<f8")).kind == "f" else arr
    if "json" in enc:
        return enc["json"]
    return enc.get("repr")


def _same_points(a: list, b: list) -> bool:
    try:
        if len(a) != len(b):
            return False
        for pa, pb in zip(a, b):
            if len(pa) != len(pb):
                return False
            for x, y in zip(pa, pb):
                x, y = _decode(x), _decode(y)
                if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                    if not np.array_equal(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)):
                        return False
                elif x != y:
                    return False
        return True
    except (ValueError, TypeError):
        return False


def _values_match(got, want, rtol, atol) -> tuple[bool, str]:
    if isinstance(want, np.ndarray):
        if not isinstance(got, np.ndarray):
            return False, "your answer is not numeric"
        ok, _, reason = compare(got, want, rtol, atol)
        return ok, reason or ""
    return got == want, ""


def _named_mistakes(values: list, want: dict) -> list[str]:
    """Labels of the instructor's named mistakes (evaluated in the solution's run) that the answer equals at
    every point."""
    named = []
    for label, encoded in (want.get("mistakes") or {}).items():
        try:
            wrong = [_decode(v) for v in encoded or []]
        except (ValueError, TypeError, KeyError):
            continue
        if len(wrong) == len(values) and all(isinstance(v, np.ndarray) and isinstance(w, np.ndarray)
                                              and compare(v, w, diagnosis.CLOSE, 0)[0] for v, w in zip(values, wrong)):
            named.append(label)
    return named


def _wrong(title: str, values: list, wanted: list, checks: list, want: dict) -> str:
    """What is wrong with an answer, said from the trusted values alone (never the points)."""
    numeric = all(isinstance(v, np.ndarray) and isinstance(t, np.ndarray) for v, t in zip(values, wanted))
    if numeric:
        rows = [(v, t, ok, reason or None) for v, t, (ok, reason) in zip(values, wanted, checks)]
        summary = diagnosis.summary(rows, _named_mistakes(values, want))
    else:
        summary = next(r for ok, r in checks if not ok) or "not the right answer"
    inputs = f". Inputs: {want['inputs']}" if want.get("inputs") else ""
    return f"{title}: {summary}{inputs}"


def judge(student: list[dict], solution: list[dict], policy: str = "zero") -> Verdict:
    """Decide one graded cell from its evidence (student) against the solution's evidence."""
    if not solution:
        return Verdict(False, "this test produced no reference evidence (instructor: check the solution)")
    flags = []
    for i, want in enumerate(solution):
        if i >= len(student):
            last = student[-1]["verdict"] if student else ""
            why = f"; the last check said: {last}" if last.startswith("✘") else ""
            return Verdict(False, f"the tests stopped after {len(student)} of {len(solution)} checks "
                                  f"(a crash, a timeout or an error in your code){why}", flags)
        got = student[i]
        title = want.get("title", "")
        kernel_says = str(got.get("verdict", ""))
        fallback = kernel_says.lstrip("✘ ") if kernel_says.startswith("✘") else ""
        if got.get("kind") != want.get("kind") or got.get("title") != title:
            return Verdict(False, f"{title}: the evidence does not belong to this test (test cells were altered?)", flags)
        if not _same_points(got.get("args", []), want.get("args", [])):
            return Verdict(False, f"{title}: the tests' points were altered", flags)
        if got.get("error"):
            return Verdict(False, fallback or f"{title}: {got['error']}", flags)
        if got.get("autodiff"):
            note = f"{title}: the hand derivation calls JAX automatic differentiation ({', '.join(got['autodiff'])})"
            if policy == "zero":
                return Verdict(False, note, flags)
            flags.append(note)
        try:
            values, wanted = [_decode(v) for v in got.get("got", [])], [_decode(v) for v in want.get("got", [])]
        except (ValueError, TypeError, KeyError):
            return Verdict(False, f"{title}: malformed evidence", flags)
        if len(values) != len(wanted):
            return Verdict(False, fallback or f"{title}: your function did not answer at every point", flags)
        checks = [_values_match(v, t, want.get("rtol"), float(want.get("atol") or 0.0)) for v, t in zip(values, wanted)]
        if not all(ok for ok, _ in checks):
            return Verdict(False, _wrong(title, values, wanted, checks, want), flags)
    if len(student) > len(solution):
        return Verdict(False, "more checks ran than the test has (test cells were altered?)", flags)
    return Verdict(True, "", flags)


def solution_evidence(assignment: str, secret: str, timeout: int = 120) -> dict[str, list[dict]]:
    """Run the instructor's source notebook once with the batch's secret and return its evidence per graded cell."""
    import nbformat
    from nbclient import NotebookClient

    source = course.root() / "solutions" / assignment
    nb = nbformat.read(source / f"{assignment}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / assignment
        shutil.copytree(source, work)
        saved = {k: os.environ.get(k) for k in ("AUTOGRADER_SECRET", "AUTOGRADER_REFERENCE")}
        os.environ.update(AUTOGRADER_SECRET=secret, AUTOGRADER_REFERENCE="1")
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                           resources={"metadata": {"path": str(work)}}).execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    found = records(nb)
    bad = [gid for gid, recs in found.items() if not recs or any(not r.get("verdict", "").startswith("✔") for r in recs)]
    if bad:
        raise course.CourseError(f"the solution of {assignment} does not pass its own tests while grading: {bad}")
    return found


RUN_FILE = ".run.json"   # written by autograder.grading.contained: what happened to each cell


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
        else:
            why = ""
        if is_test:
            out[gid] = why or pending
            pending = ""
        elif why and not pending:
            pending = why
    return {k: v for k, v in out.items() if v}


def score_submission(assignment: str, student: str, solution: dict[str, list[dict]], policy: str,
                     notes: list[str] | tuple = ()) -> dict:
    """Score one autograded submission from its evidence, write the gradebook, and keep the verdicts beside it.

    On top of the evidence: a trusted reading of the student's cells (autograder.grading.scan) voids a submission
    that tampers with the grader and applies the autodiff ``policy`` to what it names; the executor's record of
    each cell explains a test that timed out, was cut off or never ran."""
    folder = course.data_dir() / "autograded" / student / assignment
    try:
        nb = json.loads((folder / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        nb = {"cells": []}
    try:
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = {}
    source = reference_notebook(assignment)
    evidence = records(nb)
    verdicts = {gid: judge(evidence.get(gid, []), recs, policy) for gid, recs in solution.items()}
    reasons = _run_reasons(nb, run, set(solution))
    for gid, verdict in verdicts.items():
        if not verdict.passed and reasons.get(gid) and (not evidence.get(gid) or "stopped after" in verdict.diagnosis):
            verdict.diagnosis = reasons[gid]
    found = scan.scan(nb, source, set(solution))
    for gid, why in found.autodiff.items():
        verdict = verdicts.get(gid)
        if verdict is None:
            continue
        note = "; ".join(why) + " (outside the kernel: the notebook's own cells)"
        if policy == "zero":
            verdict.passed, verdict.diagnosis = False, note
        elif note not in verdict.flags:
            verdict.flags.append(note)
    if found.tamper:
        why = "no credit: the notebook tampers with the grader: " + "; ".join(found.tamper[:3]) + \
            (f" (and {len(found.tamper) - 3} more)" if len(found.tamper) > 3 else "")
        for verdict in verdicts.values():
            verdict.passed, verdict.diagnosis = False, why
    _write_grades(assignment, student, {gid: v.passed for gid, v in verdicts.items()})
    table = {gid: {"passed": v.passed, "diagnosis": v.diagnosis, "flags": v.flags} for gid, v in verdicts.items()}
    dropped = [c for c in run.get("cells", []) if c.get("dropped")]
    notes = list(notes) + [f"cell {c['index'] + 1} printed too much: {c['dropped'] / 2**20:.1f} MB of output dropped"
                           for c in dropped]
    table["_submission"] = {"problem": "", "notes": notes, "tamper": found.tamper, "flags": found.flags,
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
