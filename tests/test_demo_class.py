"""The bundled demo class, graded through the real pipeline (nbgrader underneath), gets exactly its expected scores.

This is the end-to-end test of release -> submissions -> parallel autograde -> gradebook -> table -> CSV, on
the batch that grades every demo class and the honest corpus together (tests/classbatch.py).
It includes the solution (full marks), the untouched release (zero), typical mistakes with their diagnoses,
a syntax error, an infinite loop and answers that write JAX-style warnings to stderr.
"""

import csv
import json

import pytest

from autograder import forkserver, sandbox
from autograder.grading import contained, course, demo, report
from classbatch import graded as class_batch

ASSIGNMENTS = demo.available()


def _scores_exactly_as_expected(assignment, tmp_path, monkeypatch):
    shared = class_batch()   # every demo class and the honest corpus, graded in one batch (tests/classbatch.py)
    monkeypatch.setenv("AUTOGRADER_DATA", str(shared["data"]))
    assert assignment not in shared["batch"].failed, shared["batch"].failed[assignment]
    students = demo.load(assignment)
    mine = {s.student for s in students}
    everyone = shared["batch"].runs[assignment]
    runs = [r for r in everyone if r.student in mine]
    assert sorted(r.student for r in runs) == sorted(mine)
    assert all(run.ok for run in runs), [(r.student, r.error) for r in runs if not r.ok]

    graded = {r.student: r for r in report.class_results(assignment, [s.student for s in students])}
    ids = report.question_order(assignment)
    problems = []
    for s in students:
        got = {q.grade_id: q for q in graded[s.student].questions}
        assert set(got) == set(ids), f"{s.student}: graded cells {sorted(got)} != {ids}"
        for grade_id in ids:
            want = s.expected.get(grade_id, 0)
            if got[grade_id].score != want:
                problems.append(f"{s.student} {grade_id}: scored {got[grade_id].score}, expected {want} "
                                f"({got[grade_id].diagnosis})")
        for grade_id, word in s.diagnosis.items():
            if word.lower() not in got[grade_id].diagnosis.lower():
                problems.append(f"{s.student} {grade_id}: diagnosis {got[grade_id].diagnosis!r} lacks {word!r}")
    assert not problems, "\n".join(problems)

    # every kernel that ran was forked when this machine's sandbox allows it: nbgrader's own pipeline must not
    # send it back to exec (as NBGRADER_EXECUTION, which nbgrader sets while it autogrades, once did)
    if forkserver.serves(sandbox.probe(sandbox.Limits())):
        starts = {s.student: _run_info(shared["data"], assignment, s.student).get("kernel") for s in students}
        assert {k for k in starts.values() if k} == {"forked"}, starts

    full = [s for s in students if s.answers == "solution"]
    blank = [s for s in students if s.answers == {}]
    assert full and blank, "every demo class has the solution and the untouched release"
    assert all(graded[s.student].score == graded[s.student].max_score > 0 for s in full)
    assert all(graded[s.student].score == 0 for s in blank)

    table = report.table(assignment, list(graded.values()), runs)
    assert all(s.student in table for s in students)
    rows = list(csv.DictReader(report.export_csv(tmp_path / "grades.csv").open()))
    students_in_the_gradebook = {r.student for runs in shared["batch"].runs.values() for r in runs}
    assert {r["student_id"] for r in rows if r["assignment"] == assignment} == students_in_the_gradebook


def _run_info(data, assignment: str, student: str) -> dict:
    path = data / "autograded" / student / assignment / contained.RUN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def test_every_assignment_has_a_demo_class():
    # The demo class is where each solution is graded with its hidden tests (test_notebooks runs only the
    # visible self-checks, on the site's exercise page): an assignment without one would go unproven.
    assert ASSIGNMENTS == course.assignments()


# One xdist scope with tests/test_honest.py (tests/conftest.py): the worker that grades the shared batch also
# checks every class, instead of a second worker waiting for the batch.
@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_scores_exactly_as_expected(name, tmp_path, monkeypatch):
    _scores_exactly_as_expected(name, tmp_path, monkeypatch)
