"""Kernels forked from the grading worker's fork server (autograder.forkserver) run in the same sandbox as an
exec'd kernel: same root, uid, privileges, namespaces and environment, nothing of the zygote or of another
kernel, and the launcher falls back to exec whenever the fork server cannot serve."""

import io
import json
import os
from pathlib import Path

import nbformat
import pytest

from autograder import forkserver, plainfork, sandbox
from autograder.grading import autograde, contained, demo, release, report
from notebooks import release_lock

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("driver")]
A = "ch01_univariate"

PROBE = r'''
import json, os, sys, autograder.check
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
fds = []
for fd in os.listdir("/proc/self/fd"):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass
others = {}
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            others[pid] = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            others[pid] = "?"
left = getattr(autograder.check, "LEFT_BY_ANOTHER_KERNEL", None)
autograder.check.LEFT_BY_ANOTHER_KERNEL = os.getpid()
import numpy
print("PROBE" + json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()], "cwd": os.getcwd(),
    "nnp": status["NoNewPrivs"].strip(), "caps": status["CapEff"].strip(), "root": sorted(os.listdir("/")),
    "env": dict(os.environ), "fds": fds, "others": others, "left": left, "random": numpy.random.rand(),
    "net": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]),
    "host": os.uname().nodename, "cmd": open("/proc/self/cmdline").read().replace("\0", " "),
    "seen": {p: os.path.exists(p) for p in PATHS}}))
'''


def _notebook(paths: list[str]):
    setup = nbformat.v4.new_code_cell("PATHS = %r" % paths)
    setup.metadata["nbgrader"] = {"grade_id": "setup", "grade": False, "locked": True, "solution": False,
                                  "schema_version": 3, "task": False}
    return nbformat.v4.new_notebook(cells=[setup, nbformat.v4.new_code_cell(PROBE)])


def _run(folder: Path, monkeypatch, paths: list[str]) -> tuple[dict, dict, str]:
    """The probe's view from inside a sandboxed kernel, with the launcher's status and log for that kernel."""
    seen = {}
    close = sandbox.Box.close

    def keep(box):
        seen.update(status=box.status(), log=box.log_tail(20000), uid=box.uid)
        close(box)

    monkeypatch.setattr(sandbox.Box, "close", keep)
    folder.mkdir()
    nb = _notebook(paths)
    limits = sandbox.Limits(cell_timeout=60)
    contained.CURRENT["job"] = contained.JobSpec(sandbox.probe(limits), limits,
                                                 {"setup": {"role": "instructor", "source": nb.cells[0].source}},
                                                 "zero")
    try:
        contained.ContainedExecute().preprocess(nb, {"metadata": {"path": str(folder)}})
    finally:
        contained.CURRENT["job"] = None
        monkeypatch.setattr(sandbox.Box, "close", close)
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "PROBE" in text, (text, seen.get("log"))
    probe = json.loads(text.split("PROBE", 1)[1])
    probe["uid"] = seen["uid"]
    return probe, seen["status"], seen["log"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two forked kernels and one exec'd kernel, in this order, from one worker (this process)."""
    plan = sandbox.probe(sandbox.Limits())
    if not forkserver.serves(plan):
        pytest.skip("no fork server here: it needs bubblewrap, root (a uid per kernel), VC4ML_FORKSERVER not 0")
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("forkserver")
    address = forkserver.address(plan)
    paths = [str(Path(address).parent), os.environ.get("AUTOGRADER_DATA", "/nonexistent"),
             str(Path(__file__).resolve().parents[1] / "solutions"), str(tmp)]
    out = {"address": address, "paths": paths}
    out["a"] = _run(tmp / "a", mp, paths)
    out["b"] = _run(tmp / "b", mp, paths)
    mp.setenv("VC4ML_FORKSERVER", "0")
    out["exec"] = _run(tmp / "exec", mp, paths)
    mp.undo()
    return out


def test_kernels_are_forked_from_the_fork_server(runs):
    assert runs["address"]
    for name in "ab":
        probe, status, log = runs[name]
        assert "autograder.forkserver" in probe["cmd"], log
        assert "fork server not used" not in log
    assert "autograder.forkserver" not in runs["exec"][0]["cmd"]


def test_a_forked_kernel_has_exactly_the_exec_d_kernels_sandbox(runs):
    exec_probe = runs["exec"][0]
    for name in "ab":
        probe = runs[name][0]
        uid = probe["uid"]
        assert uid and probe["ids"] == [uid, uid, uid, []]
        assert probe["nnp"] == "1" and int(probe["caps"], 16) == 0
        for key in ("root", "cwd", "net", "host", "seen", "nnp", "caps"):
            assert probe[key] == exec_probe[key], key
        assert probe["net"] == ["lo"] and probe["host"] == "sandbox"
        # the socket's folder, the grader's data, the solutions and the test's own folder are out of view
        assert not any(probe["seen"].values()), probe["seen"]
        env = {k: v for k, v in probe["env"].items() if k != "JUPYTER_RUNTIME_DIR"}
        assert env == {k: v for k, v in exec_probe["env"].items() if k != "JUPYTER_RUNTIME_DIR"}
        assert not any(k.startswith(("AUTOGRADER", "VC4ML")) for k in probe["env"])


def test_a_forked_kernel_holds_nothing_of_the_zygote_or_another_kernel(runs):
    a, b = runs["a"][0], runs["b"][0]
    for probe in (a, b):
        # no namespace, socket or folder of the grader stays open; the other processes are the sandbox's own
        assert not [f for f in probe["fds"] if f.startswith(("mnt:", "pid:", "net:")) or "vc4ml-fork" in f]
        assert len(probe["others"]) <= 2, probe["others"]
        assert not [c for c in probe["others"].values() if "forkserver" in c]
    assert a["left"] is None and b["left"] is None   # forked from the zygote, never from a used kernel
    assert a["random"] != b["random"]                  # numpy's global generator is seeded afresh


def test_the_launcher_falls_back_to_exec_when_the_fork_server_cannot_serve(tmp_path, monkeypatch):
    plan = sandbox.probe(sandbox.Limits())
    if not forkserver.serves(plan):
        pytest.skip("no fork server here: it needs bubblewrap, root (a uid per kernel), VC4ML_FORKSERVER not 0")
    forkserver.address(plan)
    started_with = forkserver.zygote_env()
    # a launcher whose environment is not the zygote's (the worker did not notice): its imports would have read
    # other settings, so the zygote refuses and the kernel is exec'd
    monkeypatch.setenv("JAX_ENABLE_X64", "0")
    monkeypatch.setattr(forkserver, "zygote_env", lambda: started_with)
    probe, status, log = _run(tmp_path / "env", monkeypatch, [])
    assert "autograder.forkserver" not in probe["cmd"] and "not the fork server's: JAX_ENABLE_X64" in log
    # the worker's environment changed since its zygote started: a new zygote, with that environment
    monkeypatch.undo()
    monkeypatch.setenv("JAX_ENABLE_X64", "0")
    probe, status, log = _run(tmp_path / "drift", monkeypatch, [])
    assert "autograder.forkserver" in probe["cmd"] and probe["env"]["JAX_ENABLE_X64"] == "0", log
    monkeypatch.delenv("JAX_ENABLE_X64")
    # a zygote that died: the next kernel starts a new one
    forkserver._server["proc"].kill()
    forkserver._server["proc"].wait()
    probe, status, log = _run(tmp_path / "restarted", monkeypatch, [])
    assert "autograder.forkserver" in probe["cmd"], log


KERNEL = r'''
import json as _json, os as _os, sys as _sys
print("KERNEL" + _json.dumps({"cmd": open("/proc/self/cmdline").read().replace("\0", " "),
                              "mode": _os.environ.get("NBGRADER_EXECUTION"),
                              "preloaded": "sklearn.datasets" in _sys.modules}))
'''


def test_submissions_graded_through_nbgrader_get_forked_kernels(tmp_path, monkeypatch):
    """nbgrader sets NBGRADER_EXECUTION in the worker while it autogrades a submission (not while the solution
    runs): those kernels are forked too, see the variable as an exec'd kernel does, and score as before. They
    start with what the course's notebooks import (forkserver.PRELOAD) already imported."""
    plan = sandbox.probe(sandbox.Limits())
    if not forkserver.serves(plan):
        pytest.skip("no fork server here: it needs bubblewrap, root (a uid per kernel), VC4ML_FORKSERVER not 0")
    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    answers = demo.solution_answers(A)
    answers["q1_answer"] += KERNEL
    solution = next(s for s in demo.load(A) if s.answers == "solution")
    with release_lock():
        release.release(A)
        demo.build(A, [demo.DemoStudent("s01_probe", "the solution, printing its kernel", answers,
                                        solution.expected)])
    runs = autograde.autograde(A, ["s01_probe"], jobs=1, force=True, stream=io.StringIO())
    assert [r.ok for r in runs] == [True], runs
    graded = nbformat.read(tmp_path / "autograded" / "s01_probe" / A / f"{A}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    assert "KERNEL" in text, text[:2000]
    kernel = json.loads(text.split("KERNEL", 1)[1].splitlines()[0])
    assert "autograder.forkserver" in kernel["cmd"] and kernel["mode"] == "autograde", kernel
    assert kernel["preloaded"], kernel   # what ch09 imports: 0.6 core-s a kernel when each imports it itself
    run = json.loads((tmp_path / "autograded" / "s01_probe" / A / contained.RUN_FILE).read_text())
    assert run["kernel"] == "forked"   # what the grader records of each kernel's start
    result = report.class_results(A, ["s01_probe"])[0]
    assert result.score == result.max_score > 0


PLAIN = r'''
import json, os, sys
print("PLAIN" + json.dumps({"cmd": open("/proc/self/cmdline").read().replace("\0", " "), "cwd": os.getcwd(),
                            "jax": "jax" in sys.modules, "flags": os.environ.get("XLA_FLAGS", "")}))
'''
FIGURE = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\n"
INTERRUPTED = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('INTERRUPTED')\n"


def _plain_run(folder: Path, km) -> tuple[dict, int, str]:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (PLAIN, FIGURE, INTERRUPTED)])
    kwargs = {"kernel_manager_class": km} if km else {}
    client = NotebookClient(nb, timeout=5, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(folder)}}, **kwargs)
    client.execute()
    probe = json.loads("".join(o.get("text", "") for o in nb.cells[0].outputs).split("PLAIN", 1)[1])
    figures = sum("image/png" in o.get("data", {}) for o in nb.cells[1].outputs)
    return probe, figures, "".join(o.get("text", "") for o in nb.cells[2].outputs)


def test_the_site_builds_kernels_are_forked_and_behave_as_exec_d_ones(tmp_path, monkeypatch):
    """The site build's plain fork server: inline figures, the notebook's folder, interrupts, and the
    environment read at import time, as in an exec'd kernel; exec when the server is gone."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false")
    server = plainfork.PlainServer()
    try:
        forked = _plain_run(tmp_path, plainfork.forked_kernel_manager())
    finally:
        server.close()
    execd = _plain_run(tmp_path, None)
    fallback = _plain_run(tmp_path, plainfork.forked_kernel_manager())  # no server any more
    assert "autograder.forkserver" in forked[0]["cmd"] and forked[0]["jax"]
    for run in (execd, fallback):
        assert "ipykernel_launcher" in run[0]["cmd"] and not run[0]["jax"]
    for run in (forked, execd, fallback):
        probe, figures, interrupted = run
        assert probe["cwd"] == str(tmp_path) and probe["flags"] == "--xla_cpu_use_fusion_emitters=false"
        assert figures == 1 and "INTERRUPTED" in interrupted
