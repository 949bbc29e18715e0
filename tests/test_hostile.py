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
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.grading import autograde, course, demo, feedback, release, report
from hostile import build
from notebooks import ROOT

A = "ch01_univariate"
HONEST = ("s01_solution", "s02_numpy_rewritten", "s05_half_difference")
# The notebook limit is 3 cell limits: r09 (eight cells that each sleep just under CELL) ends there, early
# enough not to be the batch's last case alone; an honest notebook here takes a few seconds.
CELL, NOTEBOOK, SLACK = 15, 45, 10   # slack: a busy 2-core machine delays the stop, not the limit
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile")]


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


def _sandbox_processes(workers: set[int] | None = None) -> list[int]:
    """Processes under a kernel's uid (UID_BASE + the worker's pid); only those of ``workers`` if given (another
    batch may run on the same machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            uid = entry.stat().st_uid if entry.name.isdigit() else -1
            if uid >= sandbox.UID_BASE and (workers is None or uid - sandbox.UID_BASE in workers):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _marker_folders(data: Path) -> list[Path]:
    """Where an escape case leaves its marker when a trusted process (outside the sandbox) runs submitted code."""
    return [data, ROOT, Path("/tmp"), Path(tempfile.gettempdir()), Path.home()]


def _markers(data: Path, names: list[str]) -> dict[str, str]:
    found = {}
    for folder in dict.fromkeys(_marker_folders(data)):
        for path in folder.glob("pwned-*") if folder.is_dir() else []:
            if any(path.name == f"pwned-{n}" or path.name.startswith(f"pwned-{n}-") for n in names):
                try:
                    found[str(path)] = path.read_text(errors="replace")[:2000] + f" [owner uid {path.stat().st_uid}]"
                except OSError as exc:
                    found[str(path)] = f"(unreadable: {exc})"
    return found


class _Watch(threading.Thread):
    """Samples, while the batch runs, what the resource-cap cases (c..) may leave on the host: the bytes of their
    fill files in any folder under the host's temporary folders, and the peak memory of the grader's workers."""

    SKIP = ("pytest-of-", "bash_jobs")

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.fill, self.worker_peak, self.workers = threading.Event(), 0, 0, set()

    def _fill_bytes(self) -> int:
        total = 0
        for base in dict.fromkeys([tempfile.gettempdir(), "/tmp", "/dev/shm"]):
            depth0 = base.rstrip(os.sep).count(os.sep)
            for folder, dirs, files in os.walk(base):
                if folder.count(os.sep) - depth0 >= 4:
                    dirs[:] = []
                dirs[:] = [d for d in dirs if not d.startswith(self.SKIP)]
                for name in files:
                    if name.startswith("c01-fill"):
                        try:
                            total += os.path.getsize(os.path.join(folder, name))
                        except OSError:
                            pass
        return total

    def _workers_peak(self) -> int:
        peak = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                    continue
                self.workers.add(int(entry.name))
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                continue
        return peak

    def run(self):
        while not self.stop.is_set():
            self.fill = max(self.fill, self._fill_bytes())
            self.worker_peak = max(self.worker_peak, self._workers_peak())
            self.stop.wait(0.3)


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
        names = [c.name for c in cases]
        for path in _markers(data, names):  # left by an earlier run
            Path(path).unlink(missing_ok=True)
        build.build(cases, {"ROOT": ROOT, "DATA": data, "A": A, "HONEST": HONEST[0], "CELL": CELL})
        students = [c.name for c in cases] + list(HONEST)
        graded = set(students)
        files, rows = _files(data, graded), _rows(data / "gradebook.db", graded)
        plan = sandbox.probe(limits)
        watch = _Watch()
        watch.start()
        started = time.monotonic()
        try:
            runs = autograde.autograde(A, students, jobs=3, force=True, limits=limits)
        finally:
            elapsed = time.monotonic() - started
            watch.stop.set()
            watch.join()
            markers = _markers(data, names)
            for path in markers:  # never leave them in the repository or /tmp, whatever the tests say
                Path(path).unlink(missing_ok=True)
        results = {r.student: r for r in report.class_results(A, students)}
        runinfo = {}
        for s in students:
            path = data / "autograded" / s / A / ".run.json"
            runinfo[s] = json.loads(path.read_text()) if path.exists() else {}
        yield {"data": data, "cases": cases, "runs": {r.student: r for r in runs}, "results": results,
               "run": runinfo, "plan": plan, "elapsed": elapsed, "files": files, "rows": rows, "graded": graded,
               "mp": mp, "table": report.table(A, list(results.values()), runs), "markers": markers,
               "watch": watch}


def _reasons(res) -> str:
    return " | ".join([res.problem, *res.notes, *(q.diagnosis for q in res.questions)])


def test_the_corpus_is_large_and_covers_every_category(batch):
    cats = {c.category for c in batch["cases"]}
    assert len(batch["cases"]) >= 90 and cats == {"runaway", "crash", "tamper", "cheat", "malformed", "escape", "leak"}
    lines = ["| case | category | outcome | time |", "|---|---|---|---|"]
    for case in batch["cases"]:
        res, run = batch["results"][case.name], batch["run"][case.name]
        why = res.problem or next((n for n in res.notes if n.startswith(("tampering", "execution stopped"))), "") \
            or next((q.diagnosis for q in res.questions if q.diagnosis and q.diagnosis != "not answered"), "") \
            or (res.notes[0] if res.notes else "")
        took = f"{run['seconds']:.0f} s" if run else f"{batch['runs'][case.name].seconds:.1f} s (not run)"
        lines.append(f"| {case.name} | {case.category} | {res.score:g}/{res.max_score:g}: {why[:110]} | {took} |")
    print(f"\nhostile batch: {len(batch['cases'])} cases + {len(HONEST)} honest in {batch['elapsed']:.0f} s; "
          f"fill files seen on the host: {batch['watch'].fill / 2**20:.1f} MiB, workers' peak memory: "
          f"{batch['watch'].worker_peak / 2**30:.2f} GiB\n"
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
        diagnoses = {q.grade_id: q.diagnosis or "" for q in res.questions}
        for gid, words in case.why.items():
            if not any(r.lower() in diagnoses.get(gid, "").lower() for r in case.reasons(words)):
                problems.append(f"{case.name} {gid}: its diagnosis lacks {words!r}: {diagnoses.get(gid, '')[:300]!r}")
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


def test_every_runaway_ends_within_its_limit_plus_10_s(batch):
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
    left = _sandbox_processes(batch["watch"].workers)
    assert not left, f"sandboxed processes outlived their notebook: {left}"
    for parent in batch["plan"].cgroup.values():
        if isinstance(parent, str):
            assert not list(Path(parent).glob(f"vc4ml-{os.getpid()}-*"))


def test_no_trusted_process_ever_runs_a_submitted_file(batch):
    """Root cause 1 (issue 12): the escape cases ship autograder.py, tempfile.py, json.py, sitecustomize.py, IPython
    profiles and config files, numpy.py, runpy.py, ...; each leaves a marker in the data folder, the repository,
    /tmp and the grader's home when it runs outside the sandbox. None may exist after the batch. Without
    bubblewrap the kernel itself can write to /tmp: markers written by the kernel's own uid (or, when it shares the
    grader's uid, by a process started with the connection file but not the launcher) are not escapes then."""
    escaped = {}
    for path, text in batch["markers"].items():
        owner = re.search(r"\[owner uid (\d+)\]", text)
        by_kernel = owner and int(owner.group(1)) >= sandbox.UID_BASE or \
            (not batch["plan"].bwrap and not batch["plan"].drop_uid and "'-f'" in text and "'launch'" not in text)
        if batch["plan"].bwrap or not by_kernel:
            escaped[path] = text
    if escaped:
        pytest.fail("SANDBOX ESCAPE: a trusted process ran code from a submission:\n" +
                    "\n".join(f"  {path}: {text.strip()}" for path, text in sorted(escaped.items())))


def _hidden_test_lines() -> list[str]:
    nb = json.loads((ROOT / "solutions" / A / f"{A}.ipynb").read_text())
    lines = []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", source, re.S):
            lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) >= 20]
    assert len(lines) >= 10
    return lines


def test_feedback_and_diagnoses_never_show_kernel_text(batch):
    """Root cause 6 (issue 12): nothing the kernel produced reaches what the student (feedback page) or the report
    reads verbatim: no hidden-test source, no secret, no LEAK-k.. marker that the leak cases (k..) assemble at run
    time, and no diagnosis longer than a short sentence. The page shows the student's own answers, so a hidden-test
    line that also is one of the case's answer lines does not count."""
    hidden, ids, problems = _hidden_test_lines(), report.question_order(A), []
    for case in batch["cases"]:
        res = batch["results"][case.name]
        page = feedback.page(res, ids)
        own = "\n".join(src for _, src in feedback._answers(
            batch["data"] / "autograded" / case.name / A / f"{A}.ipynb"))
        texts = {"feedback page": page, "diagnoses and notes": _reasons(res)}
        for where, text in texts.items():
            leak = re.search(r"LEAK-k\d\d", text)
            if leak:
                problems.append(f"{case.name}: kernel text in the {where}: ...{text[max(0, leak.start() - 80):leak.end() + 80]!r}")
            if re.search(r"AUTOGRADER_SECRET=[0-9a-f]{32}", text):
                problems.append(f"{case.name}: the batch secret in the {where}")
            shown = [ln for ln in hidden if ln in text and ln not in own]
            if shown:
                problems.append(f"{case.name}: hidden-test source in the {where}: {shown[:3]}")
        long = [t for t in [res.problem, *res.notes, *(q.diagnosis for q in res.questions)] if len(t or "") > 2000]
        if long:
            problems.append(f"{case.name}: {len(long)} diagnosis/note(s) over 2000 characters ({len(long[0])} chars: "
                            f"{long[0][:120]!r}...)")
    assert not problems, "\n".join(problems)


def test_resource_caps_bound_what_a_submission_leaves(batch):
    """Root cause 7 (issue 12): the runtime (IPC) folder cannot grow (c01 tries to write 300 MB into it), a cell's
    output is capped at its raw size whatever the message carries (c02-c05: a 50 MB error, 120 MB of metadata,
    30 MB MIME keys, 20 000 messages of 10 kB metadata), so no graded notebook grows past a few times the cap, and the workers'
    memory stays bounded."""
    limits = autograde.default_limits(cell_timeout=CELL, notebook_timeout=NOTEBOOK)
    problems = []
    if batch["watch"].fill > 8 * 2**20:
        problems.append(f"c01's files in the runtime folder reached {batch['watch'].fill / 2**20:.0f} MiB on the host")
    graded = batch["data"] / "autograded" / "c01_fill_the_runtime_folder" / A / f"{A}.ipynb"
    if graded.exists():
        said = [int(n) for n in re.findall(r"c01 wrote (\d+) bytes", graded.read_text(errors="replace"))]
        if said and max(said) > 8 * 2**20:
            problems.append(f"c01 wrote {max(said) / 2**20:.0f} MiB into its runtime folder")
    for case in batch["cases"]:
        path = batch["data"] / "autograded" / case.name / A / f"{A}.ipynb"
        if case.name.startswith("c0") and path.exists() and path.stat().st_size > 4 * limits.output:
            problems.append(f"{case.name}: the graded notebook holds {path.stat().st_size / 2**20:.0f} MiB")
    if batch["watch"].worker_peak > 3 * 2**30:
        problems.append(f"a grading worker peaked at {batch['watch'].worker_peak / 2**30:.1f} GiB")
    assert not problems, "\n".join(problems)


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


MINIMAL = ("r01_infinite_loop", "r04_memory_bomb_numpy", "x05_stack_overflow")
FLAGGED = {"h01_autodiff_direct": "automatic differentiation", "n01_central_and_five_point": "follows"}


@pytest.fixture(scope="module")
def minimal(tmp_path_factory):
    """A second, small batch in the weakest containment (a machine or container without bubblewrap, cgroups or
    namespaces; simulated with AUTOGRADER_SANDBOX=minimal) and with the integrity policy "flag": only cases that are
    safe without the sandbox, and two that compute Q1 from f1 (autodiff, a central difference)."""
    data = tmp_path_factory.mktemp("minimal")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_DATA", str(data))
        mp.setenv("AUTOGRADER_SANDBOX", "minimal")
        release.release(A)
        demo.build(A, [s for s in demo.load(A) if s.student == "s01_solution"])
        cases = [c for c in build.load() if c.name in MINIMAL or c.name in FLAGGED]
        build.build(cases, {"ROOT": ROOT, "DATA": data, "A": A, "HONEST": "s01_solution", "CELL": CELL})
        limits = autograde.default_limits(cell_timeout=CELL, notebook_timeout=NOTEBOOK)
        stream = io.StringIO()
        students = [c.name for c in cases] + ["s01_solution"]
        runs = autograde.autograde(A, students, jobs=2, force=True, limits=limits, stream=stream, policy="flag")
        results = {r.student: r for r in report.class_results(A, students)}
        yield {"data": data, "cases": cases, "runs": runs, "stream": stream.getvalue(), "results": results}


def test_without_namespaces_or_cgroups_time_memory_and_crashes_are_still_contained(minimal):
    """The log says what is missing, and wall time, per-process memory and crashes are still contained with the
    same scores."""
    runs, data = minimal["runs"], minimal["data"]
    assert all(r.ok for r in runs), [(r.student, r.error) for r in runs]
    log = (data / "logs" / "sandbox.log").read_text()
    for missing in ("NOT APPLIED: file system", "NOT APPLIED: network", "NOT APPLIED: cgroup"):
        assert missing in log and missing in minimal["stream"], missing
    results = minimal["results"]
    assert results["s01_solution"].score == 12
    for case in minimal["cases"]:
        if case.name not in MINIMAL:
            continue
        got = {q.grade_id: q.score for q in results[case.name].questions}
        assert got == {g: case.expected.get(g, 0) for g in got}, (case.name, got, _reasons(results[case.name]))
        run = json.loads((data / "autograded" / case.name / A / ".run.json").read_text())
        assert max(c["seconds"] for c in run["cells"]) <= CELL + SLACK
    assert "SIGSEGV" in _reasons(results["x05_stack_overflow"])


def test_integrity_policy_flag_keeps_the_points_and_reports_the_question(minimal):
    """Item 4 (issue 12): with policy "flag" an answer computed from f passes, with the finding kept for review on
    its question; with "zero" (the main batch's policy) the same answers scored 0."""
    for name, word in FLAGGED.items():
        verdicts = json.loads((minimal["data"] / "autograded" / name / A / ".verdicts.json").read_text())
        q1 = verdicts["q1_test"]
        assert q1["passed"] and any(word in f for f in q1["flags"]), (name, q1)
        assert {q.grade_id: q.score for q in minimal["results"][name].questions}["q1_test"] == 1
    honest = json.loads((minimal["data"] / "autograded" / "s01_solution" / A / ".verdicts.json").read_text())
    assert not any(v.get("flags") for k, v in honest.items() if k != "_submission"), honest
