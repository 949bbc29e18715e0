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
from ..compare import compare
from . import course

EVIDENCE_MIME = "application/vnd.vc4ml.evidence+json"  # the same constant as autograder.check (no jax import here)
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
            reason = next(r for ok, r in checks if not ok)
            numeric = all(isinstance(v, np.ndarray) and isinstance(t, np.ndarray) and v.shape == t.shape
                          for v, t in zip(values, wanted))
            if numeric and len(values) > 1:
                reason = diagnosis.value_mistake([v.astype(np.float64) for v in values],
                                                 [t.astype(np.float64) for t in wanted]) or reason
            trusted = f"{title}: {reason}" if reason else f"{title}: wrong at the grading points"
            return Verdict(False, fallback or trusted, flags)
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
        saved = os.environ.get("AUTOGRADER_SECRET")
        os.environ["AUTOGRADER_SECRET"] = secret
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(work)}}).execute()
        finally:
            if saved is None:
                os.environ.pop("AUTOGRADER_SECRET", None)
            else:
                os.environ["AUTOGRADER_SECRET"] = saved
    found = records(nb)
    bad = [gid for gid, recs in found.items() if not recs or any(not r.get("verdict", "").startswith("✔") for r in recs)]
    if bad:
        raise course.CourseError(f"the solution of {assignment} does not pass its own tests while grading: {bad}")
    return found


def score_submission(assignment: str, student: str, solution: dict[str, list[dict]], policy: str) -> dict:
    """Score one autograded submission from its evidence, write the gradebook, and keep the verdicts beside it."""
    from nbgrader.api import Gradebook

    folder = course.data_dir() / "autograded" / student / assignment
    try:
        nb = json.loads((folder / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        nb = {"cells": []}
    evidence = records(nb)
    verdicts = {gid: judge(evidence.get(gid, []), recs, policy) for gid, recs in solution.items()}
    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        submission = gb.find_submission(assignment, student)
        for nbk in submission.notebooks:
            for grade in nbk.grades:
                verdict = verdicts.get(grade.name)
                if verdict is None:
                    continue
                grade.auto_score = grade.max_score if verdict.passed else 0.0
                grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()
    table = {gid: {"passed": v.passed, "diagnosis": v.diagnosis, "flags": v.flags} for gid, v in verdicts.items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".verdicts.json").write_text(json.dumps(table, ensure_ascii=False, indent=1), encoding="utf-8")
    return table
