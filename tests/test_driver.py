"""The trusted driver end to end (issue 12): a notebook executed by the grader's executor in the real sandbox,
with the instructor's cells given as the gradebook would, and each verdict read from the executor's record.

One notebook holds one question per property, so that one kernel start covers them all.
"""

import json
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.grading import autograde, contained

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("driver")]

SETUP = """import jax, jax.numpy as jnp, numpy as np
from autograder import check

def f(x):
    return jnp.sin(x) * x**2

def layer(x, W):
    return jnp.tanh(W @ x)
"""
DERIV = "check.derivative(d_f, f, domain=(0.5, 2.0)).assert_passed()\n# HIDDEN_MARK_41\n"
JAC = "check.jacobian(jac_layer, layer, shapes=[(4,), (3, 4)]).assert_passed()\n"
TESTS = {
    "q_honest": (JAC, "def jac_layer(x, W):\n    t = layer(x, W)   # the set-up's function at the point\n"
                      "    return (1 - t**2)[:, None] * W\n"),
    "q_alias": (DERIV, "J = jax\nd_f = lambda x: getattr(J, 'gr' + 'ad')(f)(x)\n"),
    "q_complex": (DERIV, "def d_f(x):\n    h = 1e-30\n    return (f(x + 1j * h)).imag / h\n"),
    "q_fd": (DERIV, "def d_f(x, h=1e-3):\n    return (-f(x + 2*h) + 8*f(x + h) - 8*f(x - h) + f(x - 2*h)) / (12*h)\n"),
    "q_float32": (DERIV, "def d_f(x):\n    return np.float32(np.sin(x) * 2 * x + x**2 * np.cos(x))\n"),
    "q_raises": (DERIV, "def d_f(x):\n    raise ValueError('KERNEL-TEXT ' + ' || '.join(In))\n"),
    "q_peek": (DERIV, "import sys, gc\n"
                      "def d_f(x):\n"
                      "    seen = repr(In) + repr(Out) + repr(globals()) + repr(gc.get_objects()[-5000:])\n"
                      "    good = np.sin(x) * 2 * x + x**2 * np.cos(x)\n"
                      "    return good if 'HIDDEN_' + 'MARK_41' in seen else -good\n"),
    # last: it rewrites the kernel's end of the channel for every later call
    "q_patched": (DERIV, "import contextlib, autograder.endpoint as e\n"
                         "e._twin = lambda spec: contextlib.nullcontext()   # never swap f\n"
                         "def d_f(x, h=1e-3):\n"
                         "    return (-f(x + 2*h) + 8*f(x + h) - 8*f(x - h) + f(x - 2*h)) / (12*h)\n"),
}


# a student cell after the tests: where this kernel's JAX keeps compiled code, and whether it wrote there
# ... and whether it can see the workers' cache of compiled references (autograde.compile_cache_dir)
CACHE_PROBE = """import os, jax
where = jax.config.jax_compilation_cache_dir
jax.lax.while_loop(lambda c: c < 3, lambda c: c + 1, 0)
print("JAX-CACHE", where, bool(where) and os.path.isdir(where) and len(os.listdir(where)) > 0)
print("XLA-FLAGS", repr(os.environ.get("XLA_FLAGS", "")))
try:
    print("REFERENCES", os.listdir(%r))
except OSError as exc:
    print("REFERENCES", type(exc).__name__)
"""


def _cell(kind, source, gid=None, grade=False, locked=False):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if gid:
        cell.metadata["nbgrader"] = {"grade_id": gid, "grade": grade, "locked": locked, "solution": not locked,
                                     "schema_version": 3, "task": False, **({"points": 1} if grade else {})}
    return cell


def _run(tmp_path: Path, policy: str) -> dict:
    cells = [_cell("code", "open('above-setup-ran', 'w').write('x')\n", "above"),
             _cell("code", SETUP, "setup", locked=True)]
    spec = {"setup": {"role": "instructor", "source": SETUP}}
    for gid, (test, answer) in TESTS.items():
        cells += [_cell("code", answer, f"{gid}_answer"), _cell("code", "# edited by the student\n",
                                                                f"{gid}_test", grade=True, locked=True)]
        spec[f"{gid}_test"] = {"role": "test", "source": test}
    compiled = autograde._compile_cache()  # as a grading worker makes it, with an entry in it
    (compiled / "a-compiled-reference").write_text("x")
    cells.append(_cell("code", CACHE_PROBE % str(compiled), "cache_probe"))
    nb = nbformat.v4.new_notebook(cells=cells)
    folder = tmp_path / policy
    folder.mkdir()
    # a module beside the notebook that would hijack any trusted interpreter started in this folder
    (folder / "autograder.py").write_text(f"open({str(tmp_path / 'HIJACKED')!r}, 'w').write('x')\n")
    (folder / "json.py").write_text(f"open({str(tmp_path / 'HIJACKED')!r}, 'w').write('x')\n")
    limits = sandbox.Limits(cell_timeout=60)
    contained.CURRENT["job"] = contained.JobSpec(sandbox.probe(limits), limits, spec, policy)
    try:
        contained.ContainedExecute().preprocess(nb, {"metadata": {"path": str(folder)}})
    finally:
        contained.CURRENT["job"] = None
    assert not (tmp_path / "HIJACKED").exists(), "SANDBOX ESCAPE: a submission's module ran in a trusted process"
    run = json.loads((folder / contained.RUN_FILE).read_text())
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    return {"run": run, "outputs": outputs, "sources": sources, "nb": nb}


@pytest.fixture(scope="module")
def zero(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("driver"), "zero")


def test_an_honest_formula_that_evaluates_the_setup_function_passes(zero):
    assert zero["run"]["verdicts"]["q_honest_test"] == {"passed": True, "diagnosis": "", "flags": []}


@pytest.mark.parametrize("gid", ["q_alias", "q_complex", "q_fd"])
def test_answers_computed_from_f_follow_the_twin_and_score_zero(zero, gid):
    verdict = zero["run"]["verdicts"][f"{gid}_test"]
    found = verdict["diagnosis"]   # the twin, or (seen first) the autodiff trace hooks in the kernel
    assert not verdict["passed"] and ("follows f" in found or "automatic differentiation" in found), verdict


def test_a_kernel_that_skips_the_swap_is_caught(zero):
    verdict = zero["run"]["verdicts"]["q_patched_test"]
    assert not verdict["passed"] and "channel in your kernel was altered" in verdict["diagnosis"], verdict


def test_a_float32_answer_fails_and_says_why(zero):
    verdict = zero["run"]["verdicts"]["q_float32_test"]
    assert not verdict["passed"] and "float32" in verdict["diagnosis"] and "float64" in verdict["diagnosis"]


def test_kernel_text_never_reaches_the_verdict_or_the_outputs(zero):
    verdict = zero["run"]["verdicts"]["q_raises_test"]
    assert not verdict["passed"] and "raised ValueError" in verdict["diagnosis"]
    assert "KERNEL-TEXT" not in json.dumps(zero["run"]) and "KERNEL-TEXT" not in zero["outputs"]


def test_test_source_never_exists_in_the_kernel(zero):
    verdict = zero["run"]["verdicts"]["q_peek_test"]
    assert not verdict["passed"], "the kernel saw the test's source"
    assert "HIDDEN_MARK" not in zero["outputs"], "test source in the graded copy's outputs"


def test_the_graded_copy_keeps_its_cells_and_shows_each_verdict(zero):
    """The channel's requests never replace a cell of the graded notebook (nbclient writes cells back by index)."""
    assert zero["sources"]["setup"] == SETUP
    assert zero["sources"]["q_fd_test"] == DERIV
    assert not any(src.startswith("__import__") for src in zero["sources"].values())
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in zero["nb"].cells}
    assert by_id["q_honest_test"].outputs[0]["text"].startswith("✔")
    assert any(o.get("output_type") == "error" for o in by_id["q_fd_test"].outputs)


def test_each_kernel_keeps_compiled_code_in_a_cache_of_its_own(zero):
    # a computation compiled again is loaded, not recompiled; no other kernel reads that folder (/tmp is the
    # sandbox's own tmpfs; without bubblewrap, the kernel's own files folder)
    probe = next(c for c in zero["nb"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == "cache_probe")
    text = "".join(o.get("text", "") for o in probe.outputs)
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in text.splitlines() if " " in line}
    where, wrote = lines["JAX-CACHE"].split()
    references = lines["REFERENCES"]
    plan = sandbox.probe()
    own = "/tmp/.jax_cache" if plan.bwrap else "/files/.jax_cache"
    assert where.endswith(own) and wrote == "True", text
    if plan.bwrap or plan.drop_uid:  # the references compiled by the workers stay out of the kernel's reach
        assert references.strip() in ("FileNotFoundError", "PermissionError"), text


def test_each_kernel_compiles_with_the_fast_compile_flags(zero):
    # the answers run op by op, so compiling each operation is most of a kernel's work (autograder.sandbox)
    probe = next(c for c in zero["nb"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == "cache_probe")
    text = "".join(o.get("text", "") for o in probe.outputs)
    flags = text.split("XLA-FLAGS", 1)[1].splitlines()[0]
    assert sandbox.fast_compile_flags(), "the pinned jaxlib should have its fast-compile flags"
    assert all(flag in flags for flag in sandbox.fast_compile_flags()), text


def test_a_cell_above_the_setup_is_not_run(zero):
    above = [c for c in zero["run"]["cells"] if c["grade_id"] == "above"]
    assert above and above[0]["status"] == "skipped"


def test_policy_flag_keeps_the_points_and_the_finding(tmp_path):
    flagged = _run(tmp_path, "flag")["run"]["verdicts"]
    assert flagged["q_alias_test"]["passed"] and "automatic differentiation" in flagged["q_alias_test"]["flags"][0]
    assert flagged["q_fd_test"]["passed"] and "follows f" in flagged["q_fd_test"]["flags"][0]
    assert not flagged["q_float32_test"]["passed"]       # precision is not an integrity finding


def test_the_instructors_solution_run_explains_its_failures(tmp_path):
    """A solution's run (JobSpec.explain, only ever the instructor's notebook) keeps what a student's verdict
    leaves out (tests above: no point, value or kernel text), for the instructor to fix the test: the failing
    point and values, and what the test cell raised."""
    cells = [_cell("code", SETUP, "setup", locked=True),
             _cell("code", "def d_f(x):\n    return -(jnp.sin(x) * 2 * x + x**2 * jnp.cos(x))\n", "q_answer"),
             _cell("code", "", "q_test", grade=True, locked=True),
             _cell("code", "", "r_test", grade=True, locked=True)]
    spec = {"setup": {"role": "instructor", "source": SETUP}, "q_test": {"role": "test", "source": DERIV},
            "r_test": {"role": "test", "source": "{}['no such key']\n"}}
    limits = sandbox.Limits(cell_timeout=60)
    contained.CURRENT["job"] = contained.JobSpec(sandbox.probe(limits), limits, spec, "zero", explain=True)
    try:
        contained.ContainedExecute().preprocess(nbformat.v4.new_notebook(cells=cells),
                                                {"metadata": {"path": str(tmp_path)}})
    finally:
        contained.CURRENT["job"] = None
    instructor = json.loads((tmp_path / contained.RUN_FILE).read_text())["verdicts"]
    assert "First failure: at x = " in instructor["q_test"]["diagnosis"], instructor
    assert instructor["r_test"]["diagnosis"] == "the test cell raised KeyError: 'no such key'", instructor
    assert not any(v["passed"] for v in instructor.values())
