"""The score table printed after grading, and the grades CSV written with nbgrader's own exporter."""

from __future__ import annotations

from pathlib import Path

from . import course, results, safe_text


def question_order(assignment: str) -> list[str]:
    """Graded cells' ids in notebook order, read from the released notebook."""
    nb = course.read_release(assignment)
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def class_results(assignment: str, students: list[str]) -> list[results.SubmissionResult]:
    from nbgrader.api import Gradebook

    order = {g: i for i, g in enumerate(question_order(assignment))}
    config = course.load_config()
    out = []
    with Gradebook(config.CourseDirectory.db_url) as gb:
        for student in students:
            res = results.collect(gb, assignment, student, course.data_dir() / "autograded")
            res.questions.sort(key=lambda q: order.get(q.grade_id, len(order)))
            out.append(res)
    return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def table(assignment: str, rows: list[results.SubmissionResult], runs=None) -> str:
    """A per-student, per-question score table followed by the diagnosis of every lost point (each text from a
    submission on one line, without control characters: it goes to a terminal)."""
    clean = safe_text.one_line
    ids = question_order(assignment)
    short = [f"Q{i + 1}" for i in range(len(ids))]
    width = max([len(r.student) for r in rows] + [7])
    maxes = {}
    for r in rows:
        for q in r.questions:
            maxes[q.grade_id] = q.max_score
    lines = [f"{assignment}: " + ", ".join(f"{s} = {g} ({_num(maxes.get(g))} pt)" for s, g in zip(short, ids)), ""]
    lines.append("student".ljust(width) + "".join(s.rjust(6) for s in short) + "   total")
    for r in rows:
        by_id = {q.grade_id: q for q in r.questions}
        cells = "".join(_num(by_id[g].score if g in by_id else None).rjust(6) for g in ids)
        total = f"{r.score:g}/{r.max_score:g}" if r.questions else "-"
        lines.append(clean(r.student).ljust(width) + cells + "   " + total.rjust(7)
                     + (f"   {clean(r.problem)}" if r.problem else ""))
    problems: dict[tuple[str, str], list[str]] = {}  # (student, diagnosis) -> the questions it explains
    for r in rows:
        by_id = {q.grade_id: q for q in r.questions}
        for s, g in zip(short, ids):
            if g in by_id and by_id[g].diagnosis:
                problems.setdefault((r.student, by_id[g].diagnosis), []).append(s)
        for note in r.notes:
            problems.setdefault((r.student, note), [])
    failed_runs = [run for run in (runs or []) if not run.ok]
    if problems or failed_runs:
        lines += ["", "Diagnoses:"]
        lines += [f"  {clean(student)}{' ' + ' '.join(qs) if qs else ''}: {clean(text)}"
                  for (student, text), qs in problems.items()]
        lines += [f"  {clean(run.student)}: grading failed: {clean(run.error)}" for run in failed_runs]
    return "\n".join(lines)


NOT_SUBMITTED = ""  # an assignment a student did not submit: blank in both CSVs, never a 0 that looks earned
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]


def is_graded(row: results.SubmissionResult) -> bool:
    """False for a student who was collected but never graded: no feedback page, not in the class statistics."""
    return bool(row.questions) or row.problem != "not graded"


def _cell(value) -> str:
    """A CSV cell: one line without control characters; text that a spreadsheet would run as a formula is
    quoted (defends against formula injection through names)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    text = safe_text.one_line(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def export_csv(path: Path) -> Path:
    """nbgrader's grades CSV (its columns: assignment, student, score, max_score, ...) for the whole gradebook,
    except that an assignment a student did not submit has blank scores (nbgrader's own exporter writes 0)."""
    import csv

    from nbgrader.api import Gradebook, MissingEntry

    config = course.load_config()
    path.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(config.CourseDirectory.db_url) as gb, path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(NBGRADER_COLUMNS)
        for a in sorted(gb.assignments, key=lambda a: a.name):
            for student in sorted(gb.students, key=lambda s: s.id):
                row = {"assignment": a.name, "duedate": a.duedate, "student_id": student.id,
                       "last_name": student.last_name, "first_name": student.first_name, "email": student.email,
                       "max_score": a.max_score}
                try:
                    sub = gb.find_submission(a.name, student.id)
                    row.update(timestamp=sub.timestamp, raw_score=sub.score,
                               late_submission_penalty=sub.late_submission_penalty,
                               score=max(0.0, sub.score - (sub.late_submission_penalty or 0.0)))
                except MissingEntry:
                    row.update(raw_score=NOT_SUBMITTED, late_submission_penalty=NOT_SUBMITTED,
                               score=NOT_SUBMITTED)
                out.writerow([_cell(row.get(k)) for k in NBGRADER_COLUMNS])
    return path


def export_canvas(path: Path) -> Path:
    """A CSV that Canvas' gradebook import accepts: one row per student, one column per assignment."""
    import csv

    from nbgrader.api import Gradebook, MissingEntry

    config = course.load_config()
    path.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] + [a.name for a in assignments])
            out.writerow(["Points Possible", "", "", "", ""] + [f"{a.max_score:g}" for a in assignments])
            for student in sorted(gb.students, key=lambda s: s.id):
                name = ", ".join(x for x in (student.last_name, student.first_name) if x) or student.id
                scores = []
                for a in assignments:
                    try:
                        scores.append(f"{gb.find_submission(a.name, student.id).score:g}")
                    except MissingEntry:
                        scores.append(NOT_SUBMITTED)
                out.writerow([_cell(v) for v in [name, "", student.id, student.id, ""]] + scores)
    return path
