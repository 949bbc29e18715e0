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
