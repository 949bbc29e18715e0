"""The score table printed after grading, and the grades CSV written with nbgrader's own exporter."""

from __future__ import annotations

from pathlib import Path

from . import course, results


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
    """A per-student, per-question score table followed by the diagnosis of every lost point."""
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
        lines.append(r.student.ljust(width) + cells + "   " + total.rjust(7)
                     + (f"   {r.problem}" if r.problem else ""))
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
        lines += [f"  {student}{' ' + ' '.join(qs) if qs else ''}: {text}"
                  for (student, text), qs in problems.items()]
        lines += [f"  {run.student}: grading failed: {run.error}" for run in failed_runs]
    return "\n".join(lines)


def export_csv(path: Path) -> Path:
    """nbgrader's grades CSV (assignment, student, score, max_score, ...) for the whole gradebook."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    config = course.load_config()
    path.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
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
                        scores.append("")
                out.writerow([name, "", student.id, student.id, ""] + scores)
    return path
