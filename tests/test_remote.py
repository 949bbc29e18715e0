"""The shared-nothing worker's guards (autograder.grading.remote), without a cluster: tests/test_scale.py grades
through a real one."""

import pytest

from autograder import sandbox
from autograder.grading import remote

A = "ch01_univariate"


def test_a_worker_with_other_code_or_course_files_grades_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    shared = remote.Shared("batch-x", b"", sandbox.Limits(), "zero", [A], code="not this checkout")
    got = remote.RemoteJob(A, "alice", {f"{A}.ipynb": b"{}"}).run(shared)
    assert not got.ok and "other grader code or course files" in got.error
    assert got.scores is None and not got.files
    remote.absorb(got, "stamp")  # nothing recorded, nothing written
    assert not (tmp_path / "autograded").exists()


def test_the_digest_follows_the_course_files(tmp_path, monkeypatch):
    before = remote.code_digest([A])
    assert remote.code_digest([A]) == before
    copy = tmp_path / "course"
    for top in ("solutions", "exercises"):
        (copy / top / A).mkdir(parents=True)
        (copy / top / A / f"{A}.ipynb").write_text("{}")
    monkeypatch.setenv("AUTOGRADER_COURSE_ROOT", str(copy))
    assert remote.code_digest([A]) != before


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
def test_shipped_file_names_stay_inside_the_submission(name):
    with pytest.raises(ValueError):
        remote._safe_relative(name)

