"""The hostile corpus (tests/hostile/corpus.yml) and honest submissions graded in ONE batch through the real
pipeline (issue 7): every case gets a score and a reason, exactly the score written down for it (so no tamper or
cheat case gets credit it did not earn), honest submissions keep their exact scores, nothing else in the gradebook
or on disk changes, and every runaway ends within its limit plus 5 s.
"""

import hashlib
import io
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.grading import autograde, course, demo, evidence, release, report
from hostile import build
from notebooks import ROOT

A = "ch01_univariate"
HONEST = ("s01_solution", "s02_numpy_rewritten", "s05_half_difference")
CELL, NOTEBOOK, SLACK = 15, 90, 5
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release")]


def _hashes(folder: Path, skip=lambda rel: False) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        rel = str(path.relative_to(folder))
        if skip(rel) or not (path.is_file() or path.is_symlink()):
            continue
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        out[rel] = hashlib.sha256(data).hexdigest() + oct(path.lstat().st_mode)
    return out


def _files(data: Path, graded: set[str]) -> dict[str, str]:
    """Every file the batch may not change: the data folder except the graded students' autograded folders, the
    gradebook (compared row by row) and the logs; and the course's own files."""
    def skip(rel):
        parts = rel.split(os.sep)
        return rel == "gradebook.db" or parts[0] == "logs" or (parts[0] == "autograded" and len(parts) > 1
                                                               and parts[1] in graded)
    out = {f"data/{k}": v for k, v in _hashes(data, skip).items()}
    for sub in (f"solutions/{A}", f"exercises/{A}", "autograder", "tests/hostile"):
        out.update({f"{sub}/{k}": v for k, v in _hashes(ROOT / sub, lambda rel: "__pycache__" in rel).items()})
    out["nbgrader_config.py"] = hashlib.sha256((ROOT / "nbgrader_config.py").read_bytes()).hexdigest()
    return out


def _rows(db: Path, graded: set[str]) -> dict[str, list]:
    """All gradebook rows except those of the graded students' submissions."""
    con = sqlite3.connect(db)
    try:
        tables = [t for (t,) in con.execute("select name from sqlite_master where type='table'")]
        mine_sa = {r[0] for r in con.execute(
            f"select id from submitted_assignment where student_id in ({','.join('?' * len(graded))})", sorted(graded))}
        mine_sn = {r[0] for r in con.execute("select id, assignment_id from submitted_notebook") if r[1] in mine_sa}
        out = {}
        for table in tables:
            cols = [c[1] for c in con.execute(f"pragma table_info('{table}')")]
            rows = []
            for row in con.execute(f"select * from '{table}'"):
                rec = dict(zip(cols, row))
                if (table == "student" and rec.get("id") in graded) or \
                        (table == "submitted_assignment" and rec.get("student_id") in graded) or \
                        (table == "submitted_notebook" and rec.get("assignment_id") in mine_sa) or \
                        (table in ("grade", "comment") and rec.get("notebook_id") in mine_sn):
                    continue
                rows.append(tuple(str(v) for v in row))
            out[table] = sorted(rows)
        return out
    finally:
        con.close()


def _bystander() -> None:
    """A student graded in an earlier batch, with a manual grade and a comment: nothing here may change."""
    from nbgrader.api import Gradebook

    folder = course.data_dir() / "submitted" / "zz_bystander" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text((ROOT / "exercises" / A / f"{A}.ipynb").read_text())
    graded = course.data_dir() / "autograded" / "zz_bystander" / A
    graded.mkdir(parents=True)
    (graded / ".verdicts.json").write_text('{"q1_test": {"passed": true, "diagnosis": "", "flags": []}}')
    with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
        gb.update_or_create_student("zz_bystander", first_name="Zed")
        sub = gb.update_or_create_submission(A, "zz_bystander")
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = grade.max_score
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.manual_comment = "well done"
        gb.find_grade("q3_test", A, A, "zz_bystander").manual_score = 1.5
        gb.db.commit()


def _sandbox_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid >= sandbox.UID_BASE:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_DATA", str(data))
        release.release(A)
        honest = [s for s in demo.load(A) if s.student in HONEST]
        demo.build(A, honest)
        _bystander()
        cases = build.load()
        limits = autograde.default_limits(cell_timeout=CELL, notebook_timeout=NOTEBOOK)
        build.build(cases, {"ROOT": ROOT, "DATA": data, "A": A, "HONEST": HONEST[0], "CELL": CELL})
        students = [c.name for c in cases] + list(HONEST)
        graded = set(students)
        files, rows = _files(data, graded), _rows(data / "gradebook.db", graded)
        plan = sandbox.probe(limits)
        started = time.monotonic()
        runs = autograde.autograde(A, students, jobs=3, force=True, limits=limits)
        elapsed = time.monotonic() - started
        results = {r.student: r for r in report.class_results(A, students)}
        runinfo = {}
        for s in students:
            path = data / "autograded" / s / A / ".run.json"
            runinfo[s] = json.loads(path.read_text()) if path.exists() else {}
        yield {"data": data, "cases": cases, "runs": {r.student: r for r in runs}, "results": results,
               "run": runinfo, "plan": plan, "elapsed": elapsed, "files": files, "rows": rows, "graded": graded,
               "mp": mp, "table": report.table(A, list(results.values()), runs)}


def _reasons(res) -> str:
    return " | ".join([res.problem, *res.notes, *(q.diagnosis for q in res.questions)])


def test_the_corpus_is_large_and_covers_every_category(batch):
    cats = {c.category for c in batch["cases"]}
    assert len(batch["cases"]) >= 40 and cats == {"runaway", "crash", "tamper", "cheat", "malformed"}
    lines = ["| case | category | outcome | time |", "|---|---|---|---|"]
    for case in batch["cases"]:
        res, run = batch["results"][case.name], batch["run"][case.name]
        why = res.problem or next((n for n in res.notes if n.startswith(("tampering", "execution stopped"))), "") \
            or next((q.diagnosis for q in res.questions if q.diagnosis and q.diagnosis != "not answered"), "") \
            or (res.notes[0] if res.notes else "")
        took = f"{run['seconds']:.0f} s" if run else f"{batch['runs'][case.name].seconds:.1f} s (not run)"
        lines.append(f"| {case.name} | {case.category} | {res.score:g}/{res.max_score:g}: {why[:110]} | {took} |")
    print(f"\nhostile batch: {len(batch['cases'])} cases + {len(HONEST)} honest in {batch['elapsed']:.0f} s\n"
          + batch["plan"].report() + "\n" + "\n".join(lines) + "\n\n" + batch["table"])


def test_every_case_gets_a_score_and_a_reason(batch):
    ids = report.question_order(A)
    problems = []
    for case in batch["cases"]:
        res = batch["results"][case.name]
        scores = {q.grade_id: q.score for q in res.questions}
        if set(scores) != set(ids) or any(v is None for v in scores.values()):
            problems.append(f"{case.name}: not every graded cell has a score: {scores} ({res.problem})")
            continue
        text = _reasons(res)
        if not text.strip(" |"):
            problems.append(f"{case.name}: no reason given")
        if case.reasons() and not any(r.lower() in text.lower() for r in case.reasons()):
            problems.append(f"{case.name}: reasons lack {case.reason!r}: {text[:400]}")
    assert not problems, "\n".join(problems)


def test_every_case_scores_exactly_what_it_earned(batch):
    """Exact per-question scores; for tamper and cheat cases this is: no credit they did not earn."""
    isolated = bool(batch["plan"].bwrap)
    problems = []
    for case in batch["cases"]:
        if case.needs == "isolation" and not isolated:
            continue  # without bubblewrap student code can read the repository: nothing to hold it to
        got = {q.grade_id: q.score for q in batch["results"][case.name].questions}
        for gid, score in got.items():
            if score != case.expected.get(gid, 0):
                problems.append(f"{case.category} {case.name} {gid}: scored {score}, expected "
                                f"{case.expected.get(gid, 0)} ({_reasons(batch['results'][case.name])[:300]})")
    assert not problems, "\n".join(problems)


def test_honest_submissions_in_the_same_batch_keep_their_exact_scores(batch):
    want = {s.student: s.expected for s in demo.load(A) if s.student in HONEST}
    for student, expected in want.items():
        got = {q.grade_id: q.score for q in batch["results"][student].questions}
        assert got == {gid: expected.get(gid, 0) for gid in got}, (student, got, batch["results"][student].notes)
        assert batch["runs"][student].ok


def test_the_gradebooks_other_rows_and_all_other_files_are_byte_identical(batch):
    assert _rows(batch["data"] / "gradebook.db", batch["graded"]) == batch["rows"]
    now = _files(batch["data"], batch["graded"])
    changed = sorted(k for k in set(now) | set(batch["files"]) if now.get(k) != batch["files"].get(k))
    assert not changed, changed


def test_every_runaway_ends_within_its_limit_plus_5_s(batch):
    problems = []
    for case in batch["cases"]:
        run = batch["run"][case.name]
        if not run:
            continue
        if run["seconds"] > NOTEBOOK + SLACK:
            problems.append(f"{case.name}: the notebook took {run['seconds']} s")
        slowest = max((c["seconds"] for c in run["cells"]), default=0)
        if case.limit == "cell" and slowest > CELL + SLACK:
            problems.append(f"{case.name}: a cell took {slowest} s")
        if case.category == "runaway":
            assert case.limit, f"{case.name}: a runaway needs a limit"
    assert not problems, "\n".join(problems)


def test_the_batch_survives_and_leaves_nothing_running(batch):
    crashed = [r for r in batch["runs"].values() if "worker crashed" in r.error]
    assert not crashed
    assert set(batch["runs"]) == batch["graded"]
    assert not _sandbox_processes(), "sandboxed processes outlived their notebook"
    for parent in batch["plan"].cgroup.values():
        if isinstance(parent, str):
            assert not list(Path(parent).glob(f"vc4ml-{os.getpid()}-*"))


def test_the_secret_never_reaches_the_graded_notebook(batch):
    text = (batch["data"] / "autograded" / "t17_read_the_secret" / A / f"{A}.ipynb").read_text()
    assert "SECRET=" in text and not re.search(r"SECRET=[0-9a-f]{32}", text)


def test_sandboxed_code_saw_only_its_own_folder(batch):
    if not batch["plan"].bwrap:
        pytest.skip("bubblewrap is not available: no file system isolation to check")
    for name in ("h06_read_the_solution", "h07_write_gradebook_and_others", "h08_hidden_tests_and_network"):
        nb = json.loads((batch["data"] / "autograded" / name / A / f"{A}.ipynb").read_text())
        printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
        assert "blocked:" in printed and "WROTE" not in printed and "READ THE SOLUTION" not in printed, (name, printed)


def test_autodiff_policy_flag_keeps_the_points_and_reports_the_question(batch):
    """Item 4: with policy "flag" the hand derivation that called jax.grad passes, flagged for review; with "zero"
    (the batch's policy) it scored 0. The honest solution's evidence is the reference (same secret)."""
    def recs(student):
        nb = json.loads((batch["data"] / "autograded" / student / A / f"{A}.ipynb").read_text())
        return evidence.records(nb)["q1_test"]

    cheat, reference = recs("h01_autodiff_direct"), recs("s01_solution")
    flagged = evidence.judge(cheat, reference, "flag")
    assert flagged.passed and "automatic differentiation" in flagged.flags[0]
    zeroed = evidence.judge(cheat, reference, "zero")
    assert not zeroed.passed and "automatic differentiation" in zeroed.diagnosis


def test_without_namespaces_or_cgroups_time_memory_and_crashes_are_still_contained(tmp_path, monkeypatch):
    """The weakest containment (a machine or container without bubblewrap, cgroups or namespaces; simulated with
    AUTOGRADER_SANDBOX=minimal): the log says what is missing, and wall time, per-process memory and crashes are
    still contained with the same scores. Only cases that are safe without the sandbox run here."""
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "minimal")
    release.release(A)
    demo.build(A, [s for s in demo.load(A) if s.student == "s01_solution"])
    cases = [c for c in build.load() if c.name in ("r01_infinite_loop", "r04_memory_bomb_numpy", "x05_stack_overflow")]
    build.build(cases, {"ROOT": ROOT, "DATA": tmp_path, "A": A, "HONEST": "s01_solution", "CELL": CELL})
    limits = autograde.default_limits(cell_timeout=CELL, notebook_timeout=NOTEBOOK)
    stream = io.StringIO()
    runs = autograde.autograde(A, [c.name for c in cases] + ["s01_solution"], jobs=2, force=True, limits=limits,
                               stream=stream)
    assert all(r.ok for r in runs), [(r.student, r.error) for r in runs]
    log = (tmp_path / "logs" / "sandbox.log").read_text()
    for missing in ("NOT APPLIED: file system", "NOT APPLIED: network", "NOT APPLIED: cgroup"):
        assert missing in log and missing in stream.getvalue(), missing
    results = {r.student: r for r in report.class_results(A, [c.name for c in cases] + ["s01_solution"])}
    assert results["s01_solution"].score == 12
    for case in cases:
        got = {q.grade_id: q.score for q in results[case.name].questions}
        assert got == {g: case.expected.get(g, 0) for g in got}, (case.name, got, _reasons(results[case.name]))
        run = json.loads((tmp_path / "autograded" / case.name / A / ".run.json").read_text())
        assert max(c["seconds"] for c in run["cells"]) <= CELL + SLACK
    assert "SIGSEGV" in _reasons(results["x05_stack_overflow"])
