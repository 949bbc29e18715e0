"""`feedback`: one HTML page per student and assignment that teaches without leaking.

Each page shows the student's own answers and, per question, the score and the diagnosis: what was wrong and on
which inputs. It never contains test-cell source (visible or hidden), raw test output or tracebacks, the exact
points a test used, or anything about another student: it is built from the gradebook and the student's own
answer cells, not by rendering the graded notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import course, locate, results
from .safe_text import html as esc
from ..diagnosis import DETAILS

STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
.full{color:#1a7f37}.part{color:#9a6700}.zero{color:#cf222e}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}pre{background:#222}td,th{border-color:#333}}"""


def public_diagnosis(text: str) -> str:
    """The part of a diagnosis a student may see after grading: the mistake and the kind of input, no points."""
    return text.split(DETAILS, 1)[0].strip()


def _answers(autograded: Path) -> list[tuple[str, str]]:
    try:
        nb = json.loads(autograded.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [(c["metadata"]["nbgrader"].get("grade_id", ""), "".join(c.get("source", "")))
            for c in nb.get("cells", [])
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.get("cell_type") == "code"]


def page(res: results.SubmissionResult, question_ids: list[str]) -> str:
    graded = course.data_dir() / "autograded" / res.student / res.assignment / f"{res.assignment}.ipynb"
    where = locate.Locator.from_files(course.read_release(res.assignment), graded)

    def finding(text: str) -> str:  # names the question, quotes the student's line, escaped
        return esc(where.describe(text))

    rows = []
    for n, grade_id in enumerate(question_ids, 1):
        q = next((q for q in res.questions if q.grade_id == grade_id), None)
        if q is None:
            rows.append(f"<tr><td>Q{n}</td><td>-</td><td>not graded</td></tr>")
            continue
        score = q.score or 0.0
        cls = "full" if score >= q.max_score else "part" if score > 0 else "zero"
        why = finding(public_diagnosis(q.diagnosis)) if score < q.max_score else "correct"
        rows.append(f'<tr><td>Q{n}</td><td class="{cls}">{score:g} / {q.max_score:g}</td><td>{why}</td></tr>')
    answers = _answers(graded)
    code = "".join(f"<h3>{esc(gid)}</h3><pre>{esc(src)}</pre>" for gid, src in answers)
    problem = f"<p class='zero'>{finding(res.problem)}</p>" if res.problem else ""
    shown = [n for n in res.notes if not n.startswith("for review:")]
    if shown:
        problem += "<ul>" + "".join(f"<li>{finding(n)}</li>" for n in shown) + "</ul>"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Feedback: {esc(res.assignment)}"
            f"</title><style>{STYLE}</style></head><body><h1>{esc(res.assignment)}: feedback for "
            f"{esc(res.student)}</h1><p><strong>Score: {res.score:g} / {res.max_score:g}</strong></p>{problem}"
            f"<table><tr><th>question</th><th>score</th><th>what the tests found</th></tr>{''.join(rows)}</table>"
            f"<p>Tests ran at fresh random points; a diagnosis names the mistake and the inputs it was seen on. "
            f"Re-run the self-check cells in your notebook to see a failing point.</p>"
            f"<h2>Your answers</h2>{code or '<p>(none found)</p>'}</body></html>")


def write(res: results.SubmissionResult, question_ids: list[str], force: bool = True) -> Path | None:
    out = course.data_dir() / "feedback" / res.student / res.assignment / "feedback.html"
    if out.exists() and not force:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(res, question_ids), encoding="utf-8")
    return out
