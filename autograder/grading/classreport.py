"""`report`: a class summary in Markdown and HTML, with a score histogram, per-question difficulty and the most
common diagnosed mistakes per question ("3 of 9: transpose (a layout mix-up) in Q3")."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

from . import course, results
from .feedback import public_diagnosis

CATEGORIES = [
    ("not answered", "not answered"), ("timed out", "timed out"),
    ("automatic differentiation", "used autodiff in a hand derivation"),
    ("transpose", "transpose (a layout mix-up)"), ("wrong shape", "wrong shape"),
    ("constant factor", "off by a constant factor"), ("wrong sign", "wrong sign"),
    ("symmetric part", "missing the symmetric part"), ("nan or inf", "nan or inf"),
    ("right at", "right at some points only"),
]


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
    per_q = {}
    for n, gid in enumerate(ids, 1):
        qs = [q for r in rows for q in r.questions if q.grade_id == gid]
        max_score = max((q.max_score for q in qs), default=0)
        mean = sum(q.score or 0 for q in qs) / len(qs) if qs else 0
        mistakes = Counter(category(q.diagnosis) for q in qs if (q.score or 0) < q.max_score)
        per_q[f"Q{n}"] = {"grade_id": gid, "mean": mean, "max": max_score, "mistakes": mistakes.most_common(3)}
    return per_q


def _figures(rows, per_q, folder: Path) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = [r.score for r in rows]
    top = max((r.max_score for r in rows), default=1) or 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(totals, bins=min(20, int(top) + 1), range=(0, top), color="#4c72b0", edgecolor="white")
    ax.set(xlabel="total score", ylabel="students", title="Score distribution")
    fig.tight_layout(); fig.savefig(folder / "histogram.png", dpi=100); plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(per_q)
    ax.bar(names, [q["mean"] / q["max"] if q["max"] else 0 for q in per_q.values()], color="#55a868")
    ax.set(ylim=(0, 1), ylabel="mean fraction of points", title="Per-question difficulty (lower = harder)")
    fig.tight_layout(); fig.savefig(folder / "difficulty.png", dpi=100); plt.close(fig)
    return "histogram.png", "difficulty.png"


def write(assignment: str, rows: list[results.SubmissionResult], ids: list[str]) -> Path:
    folder = course.data_dir() / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    per_q = summarise(rows, ids)
    hist, diff = _figures(rows, per_q, folder)
    n = len(rows)
    mean = sum(r.score for r in rows) / n if n else 0
    top = max((r.max_score for r in rows), default=0)
    lines = [f"# {assignment}: class report", "", f"{n} submissions, mean {mean:.2f} / {top:g}.", "",
             f"![score histogram]({hist})", "", f"![per-question difficulty]({diff})", "",
             "| question | cell | mean | most common mistakes |", "|---|---|---|---|"]
    for name, q in per_q.items():
        common = "; ".join(f"{c} of {n}: {label}" for label, c in q["mistakes"]) or "-"
        lines.append(f"| {name} | `{q['grade_id']}` | {q['mean']:.2f} / {q['max']:g} | {common} |")
    problems = [r for r in rows if r.problem]
    if problems:
        lines += ["", "Submissions that could not be graded normally:", ""]
        lines += [f"- {r.student}: {r.problem}" for r in problems]
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = "".join(
        f"<tr><td>{name}</td><td>{html.escape(q['grade_id'])}</td><td>{q['mean']:.2f} / {q['max']:g}</td><td>"
        + html.escape("; ".join(f"{c} of {n}: {label}" for label, c in q["mistakes"]) or "-") + "</td></tr>"
        for name, q in per_q.items())
    (folder / "report.html").write_text(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(assignment)} report</title>"
        f"<style>body{{font:15px system-ui;max-width:60rem;margin:2rem auto}}td,th{{padding:.3rem .6rem;"
        f"border-bottom:1px solid #ddd;text-align:left}}</style></head><body><h1>{html.escape(assignment)}: class "
        f"report</h1><p>{n} submissions, mean {mean:.2f} / {top:g}.</p><img src='{hist}' alt='score histogram'>"
        f"<img src='{diff}' alt='per-question difficulty'><table><tr><th>question</th><th>cell</th><th>mean</th>"
        f"<th>most common mistakes</th></tr>{body}</table></body></html>", encoding="utf-8")
    return folder / "report.md"
