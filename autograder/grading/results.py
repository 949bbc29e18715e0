"""Read grades from nbgrader's gradebook and a diagnosis for each lost point from the autograded notebook."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIMED_OUT = "timed out: the code ran too long (an infinite loop?)"


@dataclass
class QuestionResult:
    grade_id: str
    score: float | None
    max_score: float
    diagnosis: str = ""


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    questions: list[QuestionResult] = field(default_factory=list)
    problem: str = ""  # a submission-level failure: unreadable notebook, grading crashed, ...
    notes: list[str] = field(default_factory=list)  # what the grader repaired, cut off or flagged for review

    @property
    def score(self) -> float:
        return sum(q.score or 0.0 for q in self.questions)

    @property
    def max_score(self) -> float:
        return sum(q.max_score for q in self.questions)


def _cell_diagnosis(cell: dict) -> str:
    """The first error a graded cell printed, as one line."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), ANSI.sub("", out.get("evalue", ""))
            if "Timeout" in name or any("CellTimeoutError" in ANSI.sub("", str(line)) for o in cell["outputs"]
                                        for line in o.get("traceback", []) or []):
                return TIMED_OUT
            if "not answered yet" in value or name == "NotImplementedError":
                return "not answered"
            if value.startswith("✘"):
                return value.splitlines()[0].lstrip("✘ ")
            return (f"{name}: {value}" if value.strip() else name).splitlines()[0][:400]
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return "wrote to stderr: " + ANSI.sub("", "".join(out.get("text", "")))[:200].strip()
    return ""


def diagnoses(autograded_notebook: Path) -> dict[str, str]:
    """grade_id -> diagnosis line for each graded cell that printed an error."""
    try:
        nb = json.loads(autograded_notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found, broken = {}, ""
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.get("cell_type") == "code":
            err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
            if err and err.get("ename") != "NotImplementedError":
                broken = f"your answer cell {meta.get('grade_id', '')} raised {err.get('ename')}: " \
                         f"{ANSI.sub('', err.get('evalue', ''))}".splitlines()[0][:300]
        if meta.get("grade") and cell.get("cell_type") == "code":
            text = _cell_diagnosis(cell)
            if broken and text.startswith("NameError"):
                text = f"{text} ({broken})"
            if text:
                found[meta["grade_id"]] = text
            broken = ""
    return found


def trusted_diagnoses(path: Path, from_outputs: dict[str, str]) -> dict[str, str]:
    """Diagnoses decided by the trusted grader; a timeout or crash seen in the outputs explains a missing check."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for gid, v in table.items():
        if gid.startswith("_") or not isinstance(v, dict):
            continue
        text = v.get("diagnosis", "")
        seen = from_outputs.get(gid, "")
        if text.startswith("the tests stopped") and seen:
            text = seen
        elif "not answered yet" in text:
            text = "not answered"
        if v.get("flags"):
            text = "; ".join([text] + [f"flagged: {f}" for f in v["flags"]]) if text else "flagged: " + "; ".join(v["flags"])
        out[gid] = text
    return out


def submission_notes(path: Path) -> tuple[str, list[str]]:
    """(problem, notes) recorded for the whole submission by the grader, from the verdict file."""
    try:
        info = json.loads(path.read_text(encoding="utf-8")).get("_submission", {})
    except (OSError, ValueError, AttributeError):
        return "", []
    notes = list(info.get("notes", []))
    if info.get("stopped"):
        notes.append(f"execution stopped: {info['stopped']}")
    notes += [f"tampering: {t}" for t in info.get("tamper", [])]
    notes += [f"for review: {f}" for f in info.get("flags", [])]
    return info.get("problem", ""), notes


def collect(gradebook, assignment: str, student: str, autograded_dir: Path) -> SubmissionResult:
    """Scores for one student from the gradebook, with diagnoses for the graded cells that lost points."""
    result = SubmissionResult(student, assignment)
    try:
        submission = gradebook.find_submission(assignment, student)
    except Exception:
        result.problem = "not graded"
        return result
    why = {}
    result.problem, result.notes = submission_notes(autograded_dir / student / assignment / ".verdicts.json")
    for nb in submission.notebooks:
        folder = autograded_dir / student / assignment
        why.update(diagnoses(folder / f"{nb.name}.ipynb"))
        why.update(trusted_diagnoses(folder / ".verdicts.json", why))
        for grade in sorted(nb.grades, key=lambda g: g.cell.notebook.name + g.name):
            score = grade.score
            text = why.get(grade.name, "")
            if (score or 0) >= grade.max_score and "flagged:" not in text:
                text = ""
            if score is None:
                text = text or "needs manual grading"
            result.questions.append(QuestionResult(grade.name, score, grade.max_score, text))
    return result
