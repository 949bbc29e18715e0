"""The instructor's side after grading (issue 13): safe sinks, a CLI that names the next step, feedback and
reports that count only graded students, CSVs that agree, findings that name the question, a readable report.

A small "graded class" is written straight into a gradebook (scores, verdict files, autograded notebooks) as
the grader leaves them, without running a kernel, into a copy of a gradebook that chapter 1 was released into
(tests/released.py).
"""

import csv
import json

import pytest

from autograder.__main__ import main
from autograder.grading import course, report, safe_text
from notebooks import ROOT
from released import gradebook_into

A = "ch01_univariate"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release")]
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m<img src=x onerror=alert(1)>"


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    gradebook_into(folder)
    monkeypatch.setenv("AUTOGRADER_DATA", str(folder))
    return folder


def _release_nb() -> dict:
    return json.loads((ROOT / "exercises" / A / f"{A}.ipynb").read_text(encoding="utf-8"))


def graded_ids(nb) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def grade(data, student, passed=(), diagnoses=None, flags=None, problem="", notes=(), notebook=None):
    """Leave ``student``'s submission as the grader does: submitted copy, gradebook scores, autograded notebook
    and verdict file. ``passed``: test ids that scored; ``diagnoses``/``flags``: per test id."""
    from nbgrader.api import Gradebook

    nb = notebook or _release_nb()
    for kind in ("submitted", "autograded"):
        folder = data / kind / student / A
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{A}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    verdicts = {gid: {"passed": gid in passed, "diagnosis": (diagnoses or {}).get(gid, "" if gid in passed
                      else "derivative of f: wrong values"), "flags": (flags or {}).get(gid, [])}
                for gid in graded_ids(nb)}
    verdicts["_submission"] = {"problem": problem, "notes": list(notes), "tamper": [], "flags": []}
    (data / "autograded" / student / A / ".verdicts.json").write_text(json.dumps(verdicts), encoding="utf-8")
    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        gb.update_or_create_student(student)
        sub = gb.add_submission(A, student)
        for nbk in sub.notebooks:
            for g in nbk.grades:
                g.auto_score = g.max_score if g.name in passed else 0.0
        gb.db.commit()


def collected_only(data, student):
    folder = data / "submitted" / student / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text(json.dumps(_release_nb()), encoding="utf-8")


@pytest.fixture
def graded_class(data):
    """alice: full marks; bob: zero, with hostile text in a diagnosis, a note and the submission's problem;
    carol: collected, never graded."""
    every = graded_ids(_release_nb())
    grade(data, "alice", passed=every)
    grade(data, "bob", diagnoses={"q1_test": f"ValidationError: got {HOSTILE}",
                                  "q2_test": f"derivative of f: your answer equals {HOSTILE}: wrong"},
          notes=[f"the notebook was named {HOSTILE}.ipynb"], problem=f"grading failed: {HOSTILE}")
    collected_only(data, "carol")
    return data


# --- untrusted text reaching the instructor -------------------------------------------------------------------

def test_report_prints_no_escape_sequences_to_the_terminal(graded_class, capsys):
    assert main(["report", A]) == 0
    out, err = capsys.readouterr()
    assert "pwned" in out and "<img" in out  # the text is shown...
    assert not safe_text.CONTROL.search(out + err), repr(out[-500:])  # ...without a control character


def test_the_score_table_printed_after_autograde_carries_no_escape_sequences(graded_class):
    rows = report.class_results(A, ["alice", "bob"])
    text = report.table(A, rows)
    assert "pwned" in text and not safe_text.CONTROL.search(text), repr(text)


def test_progress_stream_keeps_its_carriage_return_and_drops_the_rest():
    import io

    sink = io.StringIO()
    safe_text.TerminalStream(sink).write(f"\r[###---] 1/2 (bob{HOSTILE}: ok)")
    assert sink.getvalue().startswith("\r[###---]") and not safe_text.CONTROL.search(sink.getvalue()[1:])


def test_report_md_and_html_escape_student_text(graded_class):
    main(["report", A])
    folder = graded_class / "reports" / A
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    for text in (md, page):
        assert "<img src=x" not in text and "\x1b" not in text and "\x07" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in md


def test_safe_text_markdown_leaves_no_syntax():
    text = safe_text.markdown("# [click](javascript:alert(1)) ![x](http://e/x.png) *a* | b `c` <b>d</b>\nnext")
    assert text.startswith("\\#") and "\\[click\\]" in text and "\\!\\[x\\]" in text and "\\|" in text
    assert "<b>" not in text and "\n" not in text and "\\`c\\`" in text


# --- the CLI says what to do next ----------------------------------------------------------------------------

def test_autograde_before_release_names_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    collected_only(tmp_path, "alice")
    assert main(["autograde", A]) == 2
    err = capsys.readouterr().err
    assert f"run `python -m autograder release {A}` first" in err and len(err.strip().splitlines()) == 1, err


def test_autograde_of_an_assignment_the_gradebook_does_not_know_names_the_fix(data, capsys):
    other = "ch02_gradients"
    (data / "submitted" / "alice" / other).mkdir(parents=True)
    assert main(["autograde", other]) == 2
    assert f"{other} has not been released" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fix", [
    (["report", A], "run `python -m autograder autograde ch01_univariate` first"),
    (["feedback", A], "run `python -m autograder autograde ch01_univariate` first"),
    (["export"], "run `python -m autograder autograde <assignment>` first"),
    (["report", "--all"], "run `python -m autograder autograde --all` first"),
])
def test_no_gradebook_yet_names_the_fix(tmp_path, monkeypatch, capsys, argv, fix):
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no gradebook at" in err and fix in err, err


def test_empty_submission_folder_names_the_fix(data, capsys):
    assert main(["autograde", A]) == 2
    assert f"collect them first: `python -m autograder collect {A}" in capsys.readouterr().err
    assert main(["report", A]) == 2
    assert "collect them first" in capsys.readouterr().err


def test_unknown_assignment_suggests_the_name(capsys):
    assert main(["report", "ch01_univarite"]) == 2
    assert "did you mean ch01_univariate?" in capsys.readouterr().err


# --- graded students only; --all; export ---------------------------------------------------------------------

def test_ungraded_students_get_no_feedback_page_and_are_not_counted(graded_class, capsys):
    assert main(["feedback", A]) == 0
    out = capsys.readouterr().out
    pages = sorted(p.parts[-3] for p in (graded_class / "feedback").rglob("feedback.html"))
    assert pages == ["alice", "bob"] and "carol: not graded yet" in out, out
    assert main(["report", A]) == 0
    md = (graded_class / "reports" / A / "report.md").read_text()
    assert "2 graded submissions, mean 6.00 / 12." in md and "not graded yet (not counted above): carol" in md


def test_feedback_and_report_all(graded_class, capsys):
    assert main(["feedback", "--all", "--force"]) == 0
    assert main(["report", "--all"]) == 0
    assert (graded_class / "feedback" / "alice" / A / "feedback.html").is_file()
    assert (graded_class / "reports" / A / "report.html").is_file()
    assert main(["feedback", "--all", A]) == 2 and "not both" in capsys.readouterr().err


def test_export_leaves_not_submitted_blank_in_both_csvs(graded_class, tmp_path, capsys):
    from nbgrader.api import Gradebook

    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        gb.update_or_create_student("dave", first_name="=HYPERLINK(\"http://x\")")  # never submitted
    assert main(["export", "--to", str(tmp_path / "g.csv"), "--canvas", str(tmp_path / "c.csv")]) == 0
    plain = {r["student_id"]: r for r in csv.DictReader((tmp_path / "g.csv").open())}
    canvas = {r[2]: r for r in csv.reader((tmp_path / "c.csv").open())}
    assert plain["dave"]["score"] == "" and plain["dave"]["raw_score"] == "", plain["dave"]
    assert canvas["dave"][5] == ""
    assert float(plain["alice"]["score"]) == 12 and canvas["alice"][5] == "12"
    assert plain["dave"]["first_name"].startswith("'=")  # no formula for a spreadsheet to run
    assert "blank" in capsys.readouterr().out
    help_text = help_of("export")
    assert "left blank in both" in help_text


def help_of(verb: str) -> str:
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main([verb, "--help"])
    return " ".join(out.getvalue().split())


# --- findings name the question and quote the student's line ------------------------------------------------

def test_an_autodiff_finding_names_the_question_and_quotes_the_line(data):
    nb = _release_nb()
    at = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == "q2_test")
    nb["cells"].insert(at, {"cell_type": "code", "id": "scratch", "metadata": {}, "outputs": [],
                            "execution_count": None, "source": "# just checking\nimport jax\ng = jax.grad(f2)\n"})
    cell = at + 1
    grade(data, "dan", notebook=nb, diagnoses={"q2_test": "derivative of f2: follows f (used automatic "
                                                          "differentiation)"},
          flags={"q2_test": [f"for review: cell {cell} calls JAX automatic differentiation (jax.grad)"]})
    assert main(["feedback", A, "--student", "dan"]) == 0
    page = (data / "feedback" / "dan" / A / "feedback.html").read_text()
    assert "Q2 — exponentials" in page and "g = jax.grad(f2)" in page, page
    assert f"cell {cell} calls" not in page


def test_findings_never_quote_an_instructors_test_cell():
    from autograder.grading import locate

    nb = _release_nb()
    at = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == "q3_test")
    nb["cells"][at]["source"] = "SECRET_HIDDEN_TEST = 1\n"
    text = locate.Locator(_release_nb(), nb).describe(f"cell {at + 1} printed too much")
    assert "SECRET" not in text and "Q3" in text


# --- the class report -------------------------------------------------------------------------------------------

def test_class_report_has_distributions_mistakes_review_list_and_figures_with_alt_text(data):
    every = graded_ids(_release_nb())
    grade(data, "alice", passed=every)
    grade(data, "bob", passed=every[1:], diagnoses={"q1_test": "derivative of f1: wrong sign"})
    grade(data, "cy", passed=every[1:], diagnoses={"q1_test": "derivative of f1: wrong sign"},
          notes=["for review: cell 4 uses the private attribute ._x"])
    assert main(["report", A]) == 0
    folder = data / "reports" / A
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    assert "| Q1 | q1\\_test | 0.33 / 1 | 0 pt: 2, 1 pt: 1 | 2 of 3: wrong sign |" in md, md
    assert "## Flagged for review" in md and "private attribute" in md
    assert "cy: your cell in Q1 — power and constant rules (\\`def d\\_f1(x):\\`)" in md
    for name in ("histogram.png", "difficulty.png", "questions.png"):
        assert (folder / name).stat().st_size > 500 and f"src='{name}' alt='" in page
    assert "alt='Histogram of total scores out of 12: 2 at 11, 1 at 12.'" in page
    assert "Flagged for review" in page and "wrong sign" in page
