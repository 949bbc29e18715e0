"""The honest-explorers corpus (tests/honest/corpus.yml, issue 12), graded in ONE batch.

Every case answers every question correctly and explores honestly: scratch jax.grad /
jacobian / hessian comparisons (also right after test cells), jax.make_jaxpr,
inspect.getsource, magics, dual-number classes with ``__radd__ = __add__``, plots,
helper functions, answers that call the set-up's own function at the query point.
Exploring costs nothing: every case must score exactly full marks on every question,
through the real pipeline (release -> submissions -> autograde_many -> gradebook ->
results), in the batch shared with the demo classes (tests/classbatch.py).
"""

import pytest

from autograder.grading import course, report
from classbatch import graded as class_batch
from honest import build

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def batch():
    """The corpus as graded in the batch shared with the demo classes (tests/classbatch.py)."""
    shared = class_batch()
    cases = build.load()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_DATA", str(shared["data"]))
        built = {}
        for case in cases:
            built.setdefault(case.assignment, []).append(case.name)
        results = {}
        for name, names in built.items():
            for res in report.class_results(name, names):
                results[res.student] = res
        order = {name: report.question_order(name) for name in built}
        yield {"cases": cases, "batch": shared["batch"], "results": results, "order": order,
               "log": shared["log"]}


def _why(res) -> str:
    """Everything the grader said about a submission: problem, notes, diagnoses."""
    lost = [f"{q.grade_id} {q.score}/{q.max_score:g}: {q.diagnosis or '(no diagnosis)'}"
            for q in res.questions if q.score != q.max_score]
    flagged = [f"{q.grade_id}: {q.diagnosis}" for q in res.questions
               if q.score == q.max_score and q.diagnosis]
    parts = [f"problem: {res.problem}"] if res.problem else []
    parts += lost + [f"note: {n}" for n in res.notes] + [f"flag: {f}" for f in flagged]
    return "\n      ".join(parts)


def test_the_corpus_covers_every_assignment():
    cases = build.load()
    per = {name: [c.name for c in cases if c.assignment == name]
           for name in course.assignments()}
    assert len(cases) >= 22, len(cases)
    assert all(len(names) >= 2 for names in per.values()), per
    assert set(build.assignments(cases)) == set(per)
    assert all(c.about.strip() and c.expected == "full" for c in cases)


def test_every_assignment_was_graded(batch):
    assert not batch["batch"].failed, (batch["batch"].failed, batch["log"][-2000:])
    names = {c.name for c in batch["cases"]}
    runs = [r for runs in batch["batch"].runs.values() for r in runs if r.student in names]
    assert sorted(r.student for r in runs) == sorted(names)
    assert all(r.ok for r in runs), [(r.student, r.error) for r in runs if not r.ok]


def test_every_case_scores_full_marks_on_every_question(batch):
    lines, problems = [], []
    for case in batch["cases"]:
        res = batch["results"][case.name]
        ids = batch["order"][case.assignment]
        scores = {q.grade_id: q.score for q in res.questions}
        full = set(scores) == set(ids) and res.score == res.max_score > 0 \
            and all(q.score == q.max_score for q in res.questions)
        said = "; ".join(res.notes)  # findings for review cost nothing; show them
        score = f"{res.score:g}/{res.max_score:g}"
        lines.append(f"{case.name:34} {case.assignment:22} {score}"
                     + (f"  [{said[:160]}]" if said else ""))
        if not full:
            problems.append(f"{case.name} ({case.assignment}): {res.score:g}/"
                            f"{res.max_score:g}, graded cells {sorted(scores)}\n      "
                            f"{_why(res)}\n      about: {case.about}")
    print("\nhonest explorers:\n" + "\n".join(lines))
    assert not problems, "honest exploration lost points:\n" + "\n".join(problems)
