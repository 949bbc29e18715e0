"""The instructor's loop on a small class: collect -> autograde (parallel, resumable) -> feedback -> report -> export.

Feedback must teach without leaking: no hidden-test source, no test points, nothing of other students.
"""

import csv
import json
import re
import shutil
import stat

import pytest

from autograder.grading import autograde, classreport, collect, course, demo, feedback, pipeline, release, report
from notebooks import ROOT, load, release_lock

A = "ch01_univariate"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Collect three demo submissions from a flat LMS-style folder and grade them once."""
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_DATA", str(data))
        with release_lock():
            release.release(A)
            chosen = [s for s in demo.load(A) if s.student in ("s01_solution", "s03_quotient_sign", "s09_blank")]
            demo.build(A, chosen)
        downloads = tmp_path_factory.mktemp("downloads")
        for s in chosen:  # as an LMS download: <student>_<anything>.ipynb
            shutil.copy(data / "submitted" / s.student / A / f"{A}.ipynb", downloads / f"{s.student}_123_{A}.ipynb")
        shutil.rmtree(data / "submitted")
        (downloads / "broken_99_x.ipynb").write_text("{ not json")
        collected = collect.collect(A, downloads, pattern=r"^(?P<student>[a-z0-9]+(_[a-z]+)*?)_\d+_")
        runs = autograde.autograde(A, jobs=2)
        yield {"data": data, "collected": collected, "runs": runs, "mp": mp}


def test_collect_from_a_flat_folder_names_students_and_flags_unreadable_files(graded):
    status = {c.student: c.status for c in graded["collected"]}
    assert set(status) == {"s01_solution", "s03_quotient_sign", "s09_blank", "broken"}, status
    assert "not valid JSON" in status["broken"]


def test_a_corrupt_submission_is_a_line_in_the_report_not_a_failed_batch(graded):
    runs = {r.student: r for r in graded["runs"]}
    assert not runs["broken"].ok and runs["broken"].error
    assert all(runs[s].ok for s in ("s01_solution", "s03_quotient_sign", "s09_blank"))


def test_collect_keeps_existing_submissions_unless_forced(graded, tmp_path):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    (tmp_path / "s09_blank" / A).mkdir(parents=True)
    (tmp_path / "s09_blank" / A / f"{A}.ipynb").write_text("{}")
    kept = collect.collect(A, tmp_path)
    assert kept[0].status.startswith("kept")
    assert json.loads((graded["data"] / "submitted" / "s09_blank" / A / f"{A}.ipynb").read_text())["cells"]


def test_rerun_skips_unchanged_and_regrades_a_changed_submission(graded):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    runs = autograde.autograde(A, ["s01_solution", "s09_blank"], jobs=1)
    assert all(r.skipped for r in runs)
    path = graded["data"] / "submitted" / "s09_blank" / A / f"{A}.ipynb"
    nb = json.loads(path.read_text())
    answer = demo.solution_answers(A)["q1_answer"]
    next(c for c in nb["cells"] if c.get("id") == "q1_answer")["source"] = answer
    path.write_text(json.dumps(nb))
    runs = {r.student: r for r in autograde.autograde(A, ["s01_solution", "s09_blank"], jobs=1)}
    assert runs["s01_solution"].skipped and not runs["s09_blank"].skipped
    rows = {r.student: r for r in report.class_results(A, ["s09_blank"])}
    assert rows["s09_blank"].score == 1


def test_manual_grades_survive_a_forced_regrade(graded):
    from nbgrader.api import Gradebook

    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    url = course.load_config().CourseDirectory.db_url
    with Gradebook(url) as gb:
        grade = gb.find_grade("q3_test", A, A, "s03_quotient_sign")
        grade.manual_score = 1.5
        gb.db.commit()
    autograde.autograde(A, ["s03_quotient_sign"], jobs=1, force=True)
    with Gradebook(url) as gb:
        grade = gb.find_grade("q3_test", A, A, "s03_quotient_sign")
        assert grade.manual_score == 1.5 and grade.score == 1.5 and grade.auto_score == 0


def test_a_passed_solution_is_graded_again_only_when_what_it_depends_on_changes(graded, tmp_path):
    import io

    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    graded["mp"].setenv("AUTOGRADER_SOLUTION_CACHE", str(tmp_path / "passed"))

    def regrade(**limits) -> str:
        out = io.StringIO()
        runs = autograde.autograde(A, ["s03_quotient_sign"], jobs=1, force=True, stream=out,
                                   limits=autograde.default_limits(**limits) if limits else None)
        assert all(r.ok for r in runs), [r.error for r in runs]
        return out.getvalue()

    assert f"grading the solution of {A} first" in regrade()
    assert "the solutions passed before (unchanged)" in regrade()
    assert f"grading the solution of {A} first" in regrade(cell_timeout=41)  # other limits
    assert len(list((tmp_path / "passed").iterdir())) == 2
    rows = {r.student: r for r in report.class_results(A, ["s03_quotient_sign"])}
    assert rows["s03_quotient_sign"].score < rows["s03_quotient_sign"].max_score


def test_feedback_teaches_without_leaking(graded):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    pages = pipeline.feedback(A, None, force=True)
    assert len(pages) == 4
    source = load(ROOT / "solutions" / A / f"{A}.ipynb")
    hidden = set()
    for cell in source["cells"]:
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", "".join(cell["source"]), re.S):
            hidden |= {line.strip() for line in block.splitlines() if len(line.strip()) > 10}
    assert hidden
    for page in pages:
        text = page.read_text()
        student = page.parts[-3]
        own = "".join("".join(c["source"]) for c in load(graded["data"] / "submitted" / student / A / f"{A}.ipynb")["cells"]
                      if c.get("id", "").endswith("_answer")) if student != "broken" else ""
        leaked = [line for line in hidden if line in text and line not in own]  # a student may write what a test does
        assert not leaked, f"{page}: hidden test source leaked: {leaked[:3]}"
        assert "First failure" not in text and "expected [" not in text, "test points leaked"
        others = {"s01_solution", "s03_quotient_sign", "s09_blank", "broken"} - {page.parts[-3]}
        assert not any(f"feedback for {o}" in text for o in others)
    mistake = (graded["data"] / "feedback" / "s03_quotient_sign" / A / "feedback.html").read_text()
    assert "wrong sign" in mistake and "the inner derivative 3x² − 1 is missing" in mistake


def test_feedback_is_not_overwritten_without_force(graded, capsys):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    pipeline.feedback(A, ["s01_solution"], force=True)
    assert pipeline.feedback(A, ["s01_solution"], force=False) == []
    assert "use --force" in capsys.readouterr().out


def test_class_report_counts_mistakes_and_draws_figures(graded):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    path = pipeline.report(A)
    text = path.read_text()
    assert "| Q3 |" in text and "wrong sign" in text
    for name in ("report.html", "histogram.png", "difficulty.png"):
        assert (path.parent / name).stat().st_size > 500


def test_export_writes_nbgrader_and_canvas_csvs(graded, tmp_path):
    graded["mp"].setenv("AUTOGRADER_DATA", str(graded["data"]))
    plain, canvas = pipeline.export(tmp_path / "g.csv", tmp_path / "c.csv")
    rows = {r["student_id"]: r for r in csv.DictReader(plain.open())}
    assert float(rows["s01_solution"]["score"]) == 12.0
    lines = list(csv.reader(canvas.open()))
    assert lines[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and A in lines[0]
    assert lines[1][0] == "Points Possible"


def test_category_names():
    assert classreport.category("derivative of f: your answer is the transpose of the true one (a layout mix-up?)") \
        == "transpose (a layout mix-up)"
    assert classreport.category("NameError: name 'x' is not defined") == "raised NameError"
    assert feedback.public_diagnosis("g: wrong sign. Inputs: x in [0, 1]. First failure: at x = 0.3") == \
        "g: wrong sign. Inputs: x in [0, 1]"


def test_one_batch_grades_several_assignments_and_a_broken_solution_grades_nothing(tmp_path, monkeypatch):
    """`release` grades each solution against its own tests and names the one that fails (exit 2), before any
    student sees it; `autograde --all` then skips the solution that passed. One pool for every assignment. A
    solution that fails its own tests stops only its assignment: none of its submissions is graded or written,
    the others are, and the command says why (exit 2)."""
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=900)

    root, data, broken = tmp_path / "course", tmp_path / "data", "ch02_gradients"
    for part in (f"solutions/{A}", f"solutions/{broken}", "demo"):
        shutil.copytree(ROOT / part, root / part)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    path = root / "solutions" / broken / f"{broken}.ipynb"
    nb = json.loads(path.read_text())
    test = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    test["source"] = "raise RuntimeError('broken on purpose')\n" + "".join(test["source"])
    path.write_text(json.dumps(nb))
    monkeypatch.setenv("AUTOGRADER_COURSE_ROOT", str(root))
    monkeypatch.setenv("AUTOGRADER_DATA", str(data))
    monkeypatch.setenv("AUTOGRADER_SOLUTION_CACHE", str(tmp_path / "passed"))
    pipeline.release([A, broken], check=False)   # `release --no-check`
    assert not (tmp_path / "passed").exists()
    r = cli("release", "--all")
    assert r.returncode == 2, r.stdout + r.stderr[-2000:]
    assert re.search(rf"{A}  passes \(\d+\.\d s\)", r.stdout), r.stdout
    assert re.search(rf"{broken}  FAILS: the solution of {broken} does not pass its own tests while grading: "
                     rf"q1_test: the test cell raised RuntimeError: broken on purpose", r.stdout), r.stdout
    assert f"the solution of {broken} fails its own tests" in r.stderr and "do not hand them out" in r.stderr
    assert (root / "exercises" / broken / f"{broken}.ipynb").is_file()   # released all the same, and said so
    for name in (A, broken):
        demo.build(name, [s for s in demo.load(name) if s.answers == "solution" or s.answers == {}])
    r = cli("autograde", "--all", "--jobs", "2")
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"grading the solution of {broken} first" in r.stderr, r.stderr   # not A's: it passed at release
    assert f"{broken} was not graded: the solution of {broken} does not pass its own tests" in r.stderr
    assert f"{A}: Q1 = q1_test" in r.stdout and "12/12" in r.stdout
    assert not list((data / "autograded").glob(f"*/{broken}"))
    assert [p.name.split("-")[0] for p in (tmp_path / "passed").iterdir()] == [A]  # a failure is not kept
    from nbgrader.api import Gradebook

    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        assert not gb.find_assignment(broken).submissions
        assert {s.student.id for s in gb.find_assignment(A).submissions} == set(autograde.submissions(A))


def test_the_workers_keep_compiled_references_in_a_folder_only_the_grader_can_enter(graded):
    # JAX's persistent cache, shared by the workers of this and later batches (autograde.compile_cache_dir)
    folder = autograde.compile_cache_dir()
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert any(folder.iterdir()), "the batch's workers compiled nothing into the shared cache"
