"""`collect` is total and per file (issue 13): it never aborts, never follows a link, and refuses with a reason.

Each test builds a download folder as an instructor receives it and collects it into a fresh data folder; no
gradebook and no grading are needed, so these run in well under a second each.
"""

import json
import os
import shutil
import threading

import pytest

from autograder.__main__ import main
from autograder.grading import collect
from notebooks import ROOT

A = "ch01_univariate"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("AUTOGRADER_DATA", str(folder))
    return folder


def submitted(data, student):
    folder = data / "submitted" / student / A
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else None


def status(items):
    return {(c.student, c.source.name): c.status for c in items}


def test_nbgrader_layout_with_a_data_subfolder_is_collected_whole_and_nobody_after_it_is_lost(data, tmp_path):
    src = tmp_path / "downloads"
    for student in ("alice", "bob"):
        (src / student / A / "data").mkdir(parents=True)
        (src / student / A / f"{A}.ipynb").write_text(NOTEBOOK)
    (src / "alice" / A / "data" / "values.csv").write_text("1,2\n")
    items = collect.collect(A, src)
    assert [c.student for c in items] == ["alice", "bob"] and not any(c.refused for c in items), status(items)
    assert submitted(data, "alice") == ["ch01_univariate.ipynb", "data", "data/values.csv", "timestamp.txt"]
    assert submitted(data, "bob") == ["ch01_univariate.ipynb", "timestamp.txt"]


def test_a_deeply_nested_json_file_is_one_line_not_a_crash(data, tmp_path):
    (tmp_path / "alice_1.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "bob_1.ipynb").write_text(NOTEBOOK)
    lines = status(collect.collect(A, tmp_path))
    assert "nested too deeply" in lines[("alice", "alice_1.ipynb")], lines
    assert lines[("bob", "bob_1.ipynb")] == "collected"


def test_a_name_that_gives_no_usable_id_is_refused_and_the_rest_collected(data, tmp_path, capsys):
    (tmp_path / "-rf_1.ipynb").write_text(NOTEBOOK)
    (tmp_path / "bob_1.ipynb").write_text(NOTEBOOK)
    assert main(["collect", A, str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "'-rf' is not a usable student id" in out and "refused something" in err, (out, err)
    assert submitted(data, "bob") and not (data / "submitted" / "-rf").exists()


def test_links_and_special_files_are_refused_never_followed(data, tmp_path, capsys):
    solution = ROOT / "solutions" / A / f"{A}.ipynb"
    secret = tmp_path / "instructor_secret.txt"
    secret.write_text("exam answers")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "mallory_1.ipynb").symlink_to(solution)      # the solution as a "submission"
    (flat / "bob_1.ipynb").write_text(NOTEBOOK)
    lines = status(collect.collect(A, flat))
    assert lines[("mallory", "mallory_1.ipynb")].startswith("refused: a symbolic link"), lines
    assert submitted(data, "mallory") is None and submitted(data, "bob")

    nested = tmp_path / "nested"
    (nested / "mallory" / A).mkdir(parents=True)
    (nested / "mallory" / A / f"{A}.ipynb").symlink_to(solution)
    (nested / "eve" / A).mkdir(parents=True)
    (nested / "eve" / A / f"{A}.ipynb").write_text(NOTEBOOK)
    (nested / "eve" / A / "notes.txt").symlink_to(secret)   # a link among the extra files
    (nested / "eve" / A / "home").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(nested / "eve" / A / "pipe")
    (nested / "trudy").mkdir()
    (nested / "trudy" / A).symlink_to(nested / "eve" / A, target_is_directory=True)
    assert main(["collect", A, str(nested), "--force"]) == 2
    out = capsys.readouterr().out
    assert submitted(data, "eve") == ["ch01_univariate.ipynb", "timestamp.txt"], out
    assert "notes.txt (a symbolic link)" in out and "home (a symbolic link)" in out and "pipe (a special file)" in out
    assert submitted(data, "trudy") is None and "trudy" in out
    copied = data / "submitted" / "mallory" / A
    assert not (copied / f"{A}.ipynb").exists() and "a symbolic link" in out
    assert not any("exam answers" in p.read_text(errors="replace")
                   for p in (data / "submitted").rglob("*") if p.is_file() and not p.is_symlink())
    assert not [p for p in (data / "submitted").rglob("*") if p.is_symlink()]


def _release_reader(fifo):
    try:  # succeeds only while a reader waits; then the reader sees the end of the file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_a_special_file_is_refused_without_reading_it(data, tmp_path):
    fifo = tmp_path / "fifo_1.ipynb"
    os.mkfifo(fifo)
    # a reader of the pipe blocks until a writer comes: release it after a while, so a regression fails, not hangs
    writer = threading.Timer(10, _release_reader, [fifo])
    writer.start()
    try:
        lines = status(collect.collect(A, tmp_path))
    finally:
        writer.cancel()
        writer.join()
    assert lines[("fifo", "fifo_1.ipynb")].startswith("refused: a special file"), lines
    assert submitted(data, "fifo") is None


def test_two_files_for_one_student_id_are_both_refused(data, tmp_path, capsys):
    (tmp_path / "alice_first.ipynb").write_text(NOTEBOOK)
    (tmp_path / "alice_second.ipynb").write_text(NOTEBOOK)
    (tmp_path / "bob_1.ipynb").write_text(NOTEBOOK)
    assert main(["collect", A, str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert out.count("2 files map to student id 'alice'") == 2 and "neither is collected" in out, out
    assert submitted(data, "alice") is None and submitted(data, "bob")


def test_a_clean_collect_exits_zero_and_names_the_next_step(data, tmp_path, capsys):
    (tmp_path / "alice_1.ipynb").write_text(NOTEBOOK)
    assert main(["collect", A, str(tmp_path)]) == 0
    assert f"next: python -m autograder autograde {A}" in capsys.readouterr().out


def test_a_file_name_cannot_write_escape_sequences_to_the_terminal(data, tmp_path, capsys):
    (tmp_path / "zed_\x1b]0;owned\x07\x1b[2J.ipynb").write_text(NOTEBOOK)
    main(["collect", A, str(tmp_path)])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err and "zed" in out


def test_the_copy_is_all_or_nothing(data, tmp_path):
    """A submission appears in submitted/ whole: the scratch folder it was assembled in is gone."""
    (tmp_path / "alice" / A / "a" / "b").mkdir(parents=True)
    (tmp_path / "alice" / A / f"{A}.ipynb").write_text(NOTEBOOK)
    (tmp_path / "alice" / A / "a" / "b" / "deep.txt").write_text("x")
    collect.collect(A, tmp_path)
    collect.collect(A, tmp_path, force=True)
    assert "a/b/deep.txt" in submitted(data, "alice")
    assert not [p for p in data.iterdir() if p.name.startswith(".collect-")]
    shutil.rmtree(tmp_path / "alice")


def test_exchange_collects_the_latest_submission_per_student_and_refuses_odd_names(
        data, tmp_path, capsys):
    """nbgrader's inbound layout, <student>+<assignment>+<time>[+<random>], as the
    Assignment List's Submit writes it (tests/test_lab.py submits in the browser)."""
    inbound = data / "exchange" / "vc4ml" / "inbound"

    def submission(name, version="x"):
        (inbound / name).mkdir(parents=True)
        nb = json.loads(NOTEBOOK)
        nb["metadata"]["version"] = version
        (inbound / name / f"{A}.ipynb").write_text(json.dumps(nb))
        return inbound / name

    submission(f"alice+{A}+2026-11-29 09:30:00.000000 UTC+abc_-=", "old")
    late = submission(f"alice+{A}+2026-11-29 10:15:00.000000 UTC+Zz9", "new")
    (late / "timestamp.txt").write_text("2026-11-29 10:15:00.000000 UTC")
    submission(f"bob+{A}+2026-11-29 11:00:00.000000 UTC")          # no random suffix
    submission(f"-rf+{A}+2026-11-29 11:00:00.000000 UTC")      # no usable student id
    submission(f"carol+{A}+yesterday")                          # no timestamp
    submission("bob+ch02_gradients+2026-11-29 11:00:00.000000 UTC")  # not this one
    (inbound / f"mallory+{A}+2026-11-29 12:00:00.000000 UTC").symlink_to(
        ROOT / "solutions" / A)
    (inbound / f"eve+{A}+2026-11-29 12:00:00.000000 UTC").write_text("not a folder")

    assert main(["collect", A, "--exchange"]) == 2
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "collected" in lines["alice"] and "the latest of 2" in lines["alice"], out
    assert "10:15:00 UTC" in lines["alice"] and "collected" in lines["bob"], out
    assert "'-rf' is not a usable student id" in lines["-rf"], out
    assert "not nbgrader's" in lines["carol"], out
    assert "a symbolic link" in lines["mallory"], out
    assert "not a submission folder" in lines["eve"], out
    assert "refused something" in err, err
    nb = json.loads((data / "submitted" / "alice" / A / f"{A}.ipynb").read_text())
    assert nb["metadata"]["version"] == "new"
    assert submitted(data, "alice") == [f"{A}.ipynb", "timestamp.txt"]
    assert (data / "submitted" / "alice" / A / "timestamp.txt").read_text().startswith(
        "2026-11-29 10:15")
    assert submitted(data, "bob") == [f"{A}.ipynb", "timestamp.txt"]
    assert sorted(p.name for p in (data / "submitted").iterdir()) == ["alice", "bob"]
    assert not (data / "submitted" / "bob" / "ch02_gradients").exists()

    assert main(["collect", A]) == 2 and "or --exchange" in capsys.readouterr().err
    assert main(["collect", A, str(tmp_path), "--exchange"]) == 2
