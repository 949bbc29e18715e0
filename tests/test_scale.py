"""Grading a large class (issue 17) with the real components: a Dask cluster (scheduler and two workers on
127.0.0.1) and a PostgreSQL gradebook (Debian's server in a temporary folder), each started here.

The client alone writes the gradebook; the failure cases: a worker killed mid-batch (its submission is graded
again elsewhere and recorded once), PostgreSQL stopped mid-batch (the batch stops with one line, nothing partial
is kept, and running again grades the rest), an unreachable scheduler or database (one line, exit status 2).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time

import pytest

from autograder.grading import autograde, course, demo, release, report
from notebooks import ROOT, release_lock
from services import DaskCluster, Postgres, free_port, pg_bin

A = "ch01_univariate"
CHOSEN = ("s01_solution", "s03_quotient_sign", "s09_blank")
SLOW = "s99_slow"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scale"),
              pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed (make test installs it)"),
              pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                 reason="Dask is not installed: pip install -e '.[scale]' (make test does)")]


def _class(data, url, mp, slow_seconds: int = 0) -> dict[str, dict]:
    """Release ch01 into the gradebook at ``url`` and submit three demo students (and a slow one)."""
    mp.setenv("AUTOGRADER_DATA", str(data))
    mp.setenv("AUTOGRADER_DB_URL", url)
    students = [s for s in demo.load(A) if s.student in CHOSEN]
    if slow_seconds:
        answers = demo.solution_answers(A)
        answers["q1_answer"] = f"import time\ntime.sleep({slow_seconds})\n" + answers["q1_answer"]
        students.append(demo.DemoStudent(SLOW, "the solution, slowly", answers,
                                         next(s for s in students if s.answers == "solution").expected))
    with release_lock():
        release.release(A)
        demo.build(A, students)
    return {s.student: s.expected for s in students}


def _scores(students) -> dict[str, dict]:
    rows = report.class_results(A, list(students))
    return {r.student: {q.grade_id: q.score for q in r.questions} for r in rows}


def _recorded(url: str) -> list[str]:
    """Students with a submission of A in the gradebook (one row each, or the test fails)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("select s.student_id from submitted_assignment s join assignment a "
                                   "on s.assignment_id = a.id where a.name = :a"), {"a": A}).scalars().all()
    finally:
        engine.dispose()
    assert len(rows) == len(set(rows)), f"a submission recorded twice: {sorted(rows)}"
    return sorted(rows)


def _manifests(data) -> list[str]:
    return sorted(p.parent.parent.name for p in (data / "autograded").glob(f"*/{A}/{autograde.MANIFEST}"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two warmed workers whose data folder (where their compile cache goes) is their own, as on another
    machine: not the test run's shared compile cache, not the client's data folder."""
    own = tmp_path_factory.mktemp("worker-data")
    dask = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2,
                       env={"AUTOGRADER_DATA": str(own), "AUTOGRADER_COMPILE_CACHE": ""})
    dask.own = own
    try:
        dask.wait_for_workers(2)
        yield dask
    finally:
        dask.close()


def _states(cluster) -> dict:
    """What each worker holds besides its batches."""
    from distributed import Client

    def state() -> dict:   # defined here, so that it is shipped by value (the workers cannot import tests/)
        from autograder import forkserver
        from autograder.grading import autograde as grading, remote

        cache = grading._WORKER.get("compile_cache")
        return {"fork_server": bool(forkserver._server.get("path")), "batches": len(remote._SCRATCH),
                "cache": str(cache or ""),
                "compiled": len(list(cache.rglob("*"))) if cache and cache.is_dir() else 0}

    with Client(cluster.address, timeout="60s", set_as_default=False) as client:
        return client.run(state)


def test_workers_warm_up_before_their_first_task(cluster):
    """`dask worker --preload autograder.grading.warm`: each worker has started its fork server and chosen its
    compile cache before it registers, so its first submission costs what the others do."""
    states = _states(cluster)
    assert len(states) == 2 and all(s["fork_server"] and s["batches"] == 0 for s in states.values()), states
    assert all(s["cache"] == str(cluster.own / "cache" / "jax") for s in states.values()), states


@pytest.fixture(scope="module")
def graded(cluster, tmp_path_factory):
    """The class graded on the cluster into PostgreSQL, with a slow submission; a worker is killed while it
    grades that one."""
    pg = Postgres()
    pg.start()
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        expected = _class(data, pg.url, mp, slow_seconds=6)
        killed, box = [], {}

        def grade():
            try:
                box["runs"] = autograde.autograde(A, scheduler=cluster.address)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                box["error"] = exc

        thread = threading.Thread(target=grade)
        thread.start()
        killed.append(_kill_worker_grading(cluster, SLOW, thread))
        thread.join(timeout=600)
        yield {"data": data, "pg": pg, "expected": expected, "box": box, "killed": killed, "mp": mp}
    pg.remove()


def _kill_worker_grading(cluster, student: str, thread) -> str:
    """SIGKILL the worker (and its kernels) while it grades ``student``'s submission; its name, or ''."""
    from distributed import Client

    with Client(cluster.address, timeout="60s", set_as_default=False) as client:
        deadline = time.monotonic() + 300
        while thread.is_alive() and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any(f"/{student}-" in str(k) for k in keys):
                    time.sleep(2)  # well inside the submission's run
                    name = client.scheduler_info(n_workers=-1)["workers"][address]["name"]
                    proc = cluster.by_name(name)
                    cluster.kill(proc)
                    cluster.workers.remove(proc)
                    cluster.workers.append(cluster.add_worker())  # the class goes on with two workers
                    return name
            time.sleep(0.2)
    return ""


def test_the_cluster_grades_the_class_into_postgresql_exactly(graded):
    assert "error" not in graded["box"], graded["box"].get("error")
    runs = graded["box"]["runs"]
    assert all(r.ok for r in runs), [(r.student, r.error) for r in runs if not r.ok]
    assert _scores(graded["expected"]) == {s: {k: float(v) for k, v in e.items()}
                                           for s, e in graded["expected"].items()}
    assert _recorded(graded["pg"].url) == sorted(graded["expected"])


def test_a_worker_keeps_its_compiled_references_after_the_batch(graded, cluster):
    """In the worker's own data folder, not in the batch's scratch folder (removed with it): the next batch, and
    the machine's other workers, load them instead of compiling them again."""
    states = _states(cluster)
    assert all(s["cache"] == str(cluster.own / "cache" / "jax") for s in states.values()), states
    assert any(s["compiled"] > 0 for s in states.values()), states


def test_a_worker_killed_mid_batch_loses_nothing_and_its_submission_is_recorded_once(graded):
    assert graded["killed"][0], "no worker was grading the slow submission"
    slow = _scores([SLOW])[SLOW]
    assert sum(slow.values()) == 12.0
    assert _recorded(graded["pg"].url).count(SLOW) == 1


def test_an_unchanged_class_is_skipped_on_the_cluster(graded, cluster):
    runs = autograde.autograde(A, scheduler=cluster.address)
    assert all(r.skipped for r in runs)


def test_postgresql_stopped_mid_batch_stops_the_batch_with_nothing_partial(cluster, tmp_path, monkeypatch):
    pg = Postgres()
    pg.start()
    data = tmp_path / "data"
    try:
        _class(data, pg.url, monkeypatch, slow_seconds=5)

        def stop_after_first_record():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not _manifests(data):
                time.sleep(0.2)
            pg.stop("immediate")

        stopper = threading.Thread(target=stop_after_first_record)
        stopper.start()
        with pytest.raises(course.CourseError) as err:
            autograde.autograde(A, scheduler=cluster.address)
        stopper.join()
        message = str(err.value)
        assert "could not write the gradebook" in message and "127.0.0.1" in message, message
        assert "\n" not in message
        pg.start()
        recorded = _recorded(pg.url)
        assert recorded and recorded == _manifests(data), "a graded submission without its grades, or back"
        assert SLOW not in recorded
        # resumable: only what was not recorded is graded; local workers (with PostgreSQL the client writes too)
        again = autograde.autograde(A, jobs=2)
        assert {r.student for r in again if not r.skipped} == {SLOW} | (set(CHOSEN) - set(recorded))
        assert _recorded(pg.url) == sorted(set(CHOSEN) | {SLOW})
        assert sum(_scores([SLOW])[SLOW].values()) == 12.0
    finally:
        pg.remove()


def _cli(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_an_unreachable_scheduler_or_database_is_one_clear_line(graded, monkeypatch):
    import os

    env = {**os.environ, "AUTOGRADER_DATA": str(graded["data"]), "AUTOGRADER_DB_URL": graded["pg"].url,
           "AUTOGRADER_SCHEDULER_TIMEOUT": "3"}
    port = free_port()
    out = _cli("autograde", A, "--force", "--scheduler", f"tcp://127.0.0.1:{port}", env=env)
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines()[-1].startswith(
        f"autograder: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"), out.stderr
    down = {**env, "AUTOGRADER_DB_URL": f"postgresql+psycopg://grader@127.0.0.1:{port}/gradebook"}
    out = _cli("autograde", A, "--force", env=down)
    assert out.returncode == 2, out
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"autograder: error: cannot open the gradebook at postgresql+psycopg://grader@"
                           f"127.0.0.1:{port}/gradebook"), out.stderr
