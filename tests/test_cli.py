"""The command line: helpful errors and exit code 2 for wrong arguments, --help with an example."""

import subprocess
import sys

import pytest

from notebooks import ROOT


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("verb", ["release", "autograde", "report", "export", "demo"])
def test_every_verb_has_help_with_an_example(verb):
    r = run(verb, "--help")
    assert r.returncode == 0 and "example: python -m autograder" in r.stdout


def test_unknown_verb():
    r = run("grade-everything")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_unknown_assignment():
    r = run("autograde", "ch99_nothing")
    assert r.returncode == 2 and "unknown assignment 'ch99_nothing'" in r.stderr and "ch01_univariate" in r.stderr


def test_release_without_a_name():
    r = run("release")
    assert r.returncode == 2 and "name an assignment or pass --all" in r.stderr


def test_autograde_with_no_submissions(tmp_path):
    import os
    r = subprocess.run([sys.executable, "-m", "autograder", "autograde", "ch01_univariate"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "AUTOGRADER_DATA": str(tmp_path)})
    assert r.returncode == 2 and "no submissions of ch01_univariate" in r.stderr


def test_collect_from_a_missing_folder(tmp_path):
    r = run("collect", "ch01_univariate", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_collect_from_an_empty_folder(tmp_path):
    r = run("collect", "ch01_univariate", str(tmp_path))
    assert r.returncode == 2 and "no submissions found" in r.stderr


def test_collect_pattern_without_a_student_group(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    r = run("collect", "ch01_univariate", str(tmp_path), "--pattern", "(.*)")
    assert r.returncode == 2 and "(?P<student>" in r.stderr


@pytest.mark.parametrize("verb", ["feedback", "report"])
def test_feedback_and_report_name_unknown_assignments(verb):
    r = run(verb, "nope")
    assert r.returncode == 2 and "unknown assignment 'nope'" in r.stderr


def test_jobs_must_be_positive():
    r = run("autograde", "ch01_univariate", "--jobs", "0")
    assert r.returncode != 0 and "--jobs must be at least 1" in r.stderr


def test_unknown_student(tmp_path):
    import os
    sub = tmp_path / "submitted" / "alice" / "ch01_univariate"
    sub.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "autograder", "autograde", "ch01_univariate", "--student", "bob"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "AUTOGRADER_DATA": str(tmp_path)})
    assert r.returncode == 2 and "no submission of ch01_univariate for: bob" in r.stderr


@pytest.mark.parametrize("args, message", [
    ((), "name an assignment or pass --all"),
    (("ch01_univariate", "--all"), "name assignments or pass --all, not both"),
    (("ch01_univariate", "ch99_nothing"), "unknown assignment 'ch99_nothing'"),
    (("--all",), "no submissions in"),
])
def test_autograde_assignment_arguments(args, message, tmp_path):
    import os
    r = subprocess.run([sys.executable, "-m", "autograder", "autograde", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "AUTOGRADER_DATA": str(tmp_path)})
    assert r.returncode == 2 and message in r.stderr, r.stderr
