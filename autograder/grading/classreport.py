"""`report`: a class summary an instructor wants to read, in Markdown and HTML.

Per question: the score distribution ("0 pt: 3, 1 pt: 1, 2 pt: 5"), the mean and the most common diagnosed
mistakes with counts ("3 of 9: transpose (a layout mix-up)"). Then the submissions flagged for review, each with
its reasons, the submissions that could not be graded normally, and the students collected but not graded yet
(listed, never counted in the statistics). Figures (score histogram, per-question difficulty and distribution)
carry alt text that states their numbers. Text from submissions is escaped for each format (safe_text).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from . import course, locate, results, safe_text
from .feedback import public_diagnosis
from .report import is_graded

CATEGORIES = [
    ("not answered", "not answered"), ("timed out", "timed out"),
    ("automatic differentiation", "used autodiff in a hand derivation"),
    ("transpose", "transpose (a layout mix-up)"), ("wrong shape", "wrong shape"),
    ("constant factor", "off by a constant factor"), ("wrong sign", "wrong sign"),
    ("symmetric part", "missing the symmetric part"), ("nan or inf", "nan or inf"),
    ("right at", "right at some points only"),
]
REVIEW_PREFIXES = ("for review: ", "tampering: ")
TOP_MISTAKES = 3


def category(diagnosis: str) -> str:
    text = public_diagnosis(diagnosis)
    named = re.search(r"your answer equals ([^:;.]+)", text)
    if named:
        return named.group(1).strip()
    for key, label in CATEGORIES:
        if key in text:
            return label
    error = re.match(r"([A-Z][A-Za-z]+Error)\b", text)
    return f"raised {error.group(1)}" if error else "wrong values"


def summarise(rows: list[results.SubmissionResult], ids: list[str]) -> dict:
    """Per question (Q1, Q2, ...): grade id, mean, max, score distribution and most common mistakes, over the
    graded submissions only."""
    per_q = {}
    for n, gid in enumerate(ids, 1):
        qs = [q for r in rows if is_graded(r) for q in r.questions if q.grade_id == gid]
        max_score = max((q.max_score for q in qs), default=0)
        mean = sum(q.score or 0 for q in qs) / len(qs) if qs else 0
        mistakes = Counter(category(q.diagnosis) for q in qs if (q.score or 0) < q.max_score)
        scores = Counter(q.score or 0.0 for q in qs)
        per_q[f"Q{n}"] = {"grade_id": gid, "mean": mean, "max": max_score, "count": len(qs),
                          "scores": sorted(scores.items()), "mistakes": mistakes.most_common(TOP_MISTAKES)}
    return per_q


def flagged(rows: list[results.SubmissionResult], ids: list[str], assignment: str) -> list[tuple[str, list[str]]]:
    """(student, reasons) for each graded submission with something for the instructor to review: the lint of its
    cells and integrity flags on its answers, each naming the question and quoting the student's line."""
    release = course.read_release(assignment)
    short = {gid: f"Q{n}" for n, gid in enumerate(ids, 1)}
    out = []
    for r in rows:
        reasons = [n.split(": ", 1)[1] if n.startswith(REVIEW_PREFIXES) else n for n in r.notes
                   if n.startswith(REVIEW_PREFIXES)]
        for q in r.questions:
            for flag in re.findall(r"flagged: (?:for review: )?([^;]+)", q.diagnosis or ""):
                reasons.append(f"{short.get(q.grade_id, q.grade_id)}: {flag.strip()}")
        if reasons:
            graded = course.data_dir() / "autograded" / r.student / assignment / f"{assignment}.ipynb"
            where = locate.Locator.from_files(release, graded)
            out.append((r.student, [where.describe(why) for why in dict.fromkeys(reasons)]))
    return out


def _distribution(scores: list[tuple[float, int]]) -> str:
    return ", ".join(f"{s:g} pt: {c}" for s, c in scores) or "-"


def _figures(rows, per_q, folder: Path) -> list[tuple[str, str]]:
    """(file name, alt text) of each figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = [r.score for r in rows]
    top = max((r.max_score for r in rows), default=1) or 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(totals, bins=min(20, int(top) + 1), range=(0, top), color="#4c72b0", edgecolor="white")
    ax.set(xlabel="total score", ylabel="students", title="Score distribution")
    fig.tight_layout(); fig.savefig(folder / "histogram.png", dpi=100); plt.close(fig)
    counts = ", ".join(f"{c} at {s:g}" for s, c in sorted(Counter(totals).items()))
    figures = [("histogram.png", f"Histogram of total scores out of {top:g}: {counts or 'no submissions'}.")]

    names = list(per_q)
    fractions = [q["mean"] / q["max"] if q["max"] else 0 for q in per_q.values()]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(names, fractions, color="#55a868")
    ax.set(ylim=(0, 1), ylabel="mean fraction of points", title="Per-question difficulty (lower = harder)")
    fig.tight_layout(); fig.savefig(folder / "difficulty.png", dpi=100); plt.close(fig)
    figures.append(("difficulty.png", "Mean fraction of points per question: "
                    + ", ".join(f"{n} {f:.0%}" for n, f in zip(names, fractions)) + "."))

    full = [sum(c for s, c in q["scores"] if q["max"] and s >= q["max"]) for q in per_q.values()]
    zero = [sum(c for s, c in q["scores"] if s <= 0) for q in per_q.values()]
    part = [q["count"] - f - z for q, f, z in zip(per_q.values(), full, zero)]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(names, full, color="#55a868", label="full")
    ax.bar(names, part, bottom=full, color="#dd8452", label="partial")
    ax.bar(names, zero, bottom=[f + p for f, p in zip(full, part)], color="#c44e52", label="zero")
    ax.set(ylabel="students", title="Scores per question")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout(); fig.savefig(folder / "questions.png", dpi=100); plt.close(fig)
    figures.append(("questions.png", "Students with full, partial and zero points per question: "
                    + ", ".join(f"{n} {f}/{p}/{z}" for n, f, p, z in zip(names, full, part, zero)) + "."))
    return figures


def write(assignment: str, rows: list[results.SubmissionResult], ids: list[str]) -> Path:
    folder = course.data_dir() / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    graded = [r for r in rows if is_graded(r)]
    waiting = [r.student for r in rows if not is_graded(r)]
    per_q = summarise(graded, ids)
    figures = _figures(graded, per_q, folder)
    review = flagged(graded, ids, assignment)
    problems = [(r.student, r.problem) for r in graded if r.problem]
    n = len(graded)
    mean = sum(r.score for r in graded) / n if n else 0
    top = max((r.max_score for r in graded), default=0)
    summary = f"{n} graded submissions, mean {mean:.2f} / {top:g}."
    (folder / "report.md").write_text(_markdown(assignment, summary, figures, per_q, n, review, problems,
                                                waiting), encoding="utf-8")
    (folder / "report.html").write_text(_html(assignment, summary, figures, per_q, n, review, problems, waiting),
                                        encoding="utf-8")
    return folder / "report.md"


def _mistakes(q: dict, n: int) -> str:
    return "; ".join(f"{c} of {n}: {label}" for label, c in q["mistakes"]) or "-"


def _markdown(assignment, summary, figures, per_q, n, review, problems, waiting) -> str:
    md = safe_text.markdown
    lines = [f"# {md(assignment)}: class report", "", summary, ""]
    lines += [f"![{md(alt)}]({name})\n" for name, alt in figures]
    lines += ["| question | cell | mean | score distribution | most common mistakes |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {md(q['grade_id'])} | {q['mean']:.2f} / {q['max']:g} | {_distribution(q['scores'])} "
              f"| {md(_mistakes(q, n))} |" for name, q in per_q.items()]
    if review:
        lines += ["", "## Flagged for review", ""]
        lines += [f"- {md(student)}: {md('; '.join(why))}" for student, why in review]
    if problems:
        lines += ["", "## Could not be graded normally", ""]
        lines += [f"- {md(student)}: {md(problem)}" for student, problem in problems]
    if waiting:
        lines += ["", f"Collected but not graded yet (not counted above): {md(', '.join(waiting))}."]
    return "\n".join(lines) + "\n"


def _html(assignment, summary, figures, per_q, n, review, problems, waiting) -> str:
    h = safe_text.html
    rows = "".join(f"<tr><td>{name}</td><td>{h(q['grade_id'])}</td><td>{q['mean']:.2f} / {q['max']:g}</td>"
                   f"<td>{h(_distribution(q['scores']))}</td><td>{h(_mistakes(q, n))}</td></tr>"
                   for name, q in per_q.items())
    body = [f"<h1>{h(assignment)}: class report</h1><p>{h(summary)}</p>"]
    body += [f"<figure><img src='{h(name)}' alt='{h(alt)}'></figure>" for name, alt in figures]
    body.append("<table><tr><th>question</th><th>cell</th><th>mean</th><th>score distribution</th>"
                f"<th>most common mistakes</th></tr>{rows}</table>")
    if review:
        body.append("<h2>Flagged for review</h2><ul>" + "".join(
            f"<li><strong>{h(s)}</strong>: {h('; '.join(why))}</li>" for s, why in review) + "</ul>")
    if problems:
        body.append("<h2>Could not be graded normally</h2><ul>" + "".join(
            f"<li><strong>{h(s)}</strong>: {h(p)}</li>" for s, p in problems) + "</ul>")
    if waiting:
        body.append(f"<p>Collected but not graded yet (not counted above): {h(', '.join(waiting))}.</p>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{h(assignment)} report</title>"
            f"<style>body{{font:15px system-ui;max-width:60rem;margin:2rem auto}}td,th{{padding:.3rem .6rem;"
            f"border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}figure{{margin:1rem 0}}</style>"
            f"</head><body>{''.join(body)}</body></html>")
