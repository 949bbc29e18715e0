"""`release` makes exercises/ from solutions/ reproducibly, with no solution or hidden test left in it."""

import json
import re
import subprocess

import pytest

from autograder.grading import course, release
from notebooks import ROOT, load, release_lock, sources


@pytest.mark.slow
def test_regenerating_leaves_no_diff(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    with release_lock():
        before = {p: p.read_bytes() for p in (ROOT / "exercises").rglob("*") if p.is_file()}
        for name in course.assignments():
            release.release(name)
        after = {p: p.read_bytes() for p in (ROOT / "exercises").rglob("*") if p.is_file()}
    changed = sorted(str(p.relative_to(ROOT)) for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"release changed committed files (run `make release` and commit): {changed}"


@pytest.mark.parametrize("source", sources(), ids=lambda p: p.parent.name)
def test_release_exists_and_holds_no_solution_or_hidden_test(source):
    released = ROOT / "exercises" / source.parent.name / source.name
    assert released.is_file(), f"{released} missing: run `make release`"
    text = released.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    src = load(source)
    solution_lines = set()
    for cell in src["cells"]:
        body = "".join(cell["source"])
        for block in re.findall(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END", body, re.S):
            solution_lines |= {l.strip() for l in block[1].splitlines() if len(l.strip()) > 12}
    rel = load(released)
    released_lines = {l.strip() for c in rel["cells"] for l in "".join(c["source"]).splitlines()}
    leaked = sorted(solution_lines & released_lines)
    assert not leaked, f"solution or hidden-test lines in the release: {leaked[:5]}"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in rel["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("source", sources(), ids=lambda p: p.parent.name)
def test_assignment_has_at_least_six_graded_questions_each_with_hidden_tests(source):
    graded = [c for c in load(source)["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert len(graded) >= 6
    for cell in graded:
        body = "".join(cell["source"])
        assert "### BEGIN HIDDEN TESTS" in body and "check." in body, cell["metadata"]["nbgrader"]["grade_id"]


def test_unknown_assignment_is_a_clear_error():
    with pytest.raises(course.CourseError, match="unknown assignment 'nope'"):
        release.release("nope")
