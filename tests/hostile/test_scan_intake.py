"""Fast checks of the trusted pieces of hardened grading (no kernel): the reading of student cells
(autograder.grading.scan), the repair of mangled notebooks (autograder.grading.intake) and the size parser."""

import copy
import json

import pytest

from autograder import sandbox
from autograder.grading import intake, scan
from notebooks import ROOT

A = "ch01_univariate"
SOLUTION = json.loads((ROOT / "solutions" / A / f"{A}.ipynb").read_text())
RELEASE = json.loads((ROOT / "exercises" / A / f"{A}.ipynb").read_text())
GRADED = {c["metadata"]["nbgrader"]["grade_id"] for c in SOLUTION["cells"] if c["metadata"]["nbgrader"].get("grade")}


def graded_nb(answers: dict[str, str], extra: list[tuple[str, str]] = ()) -> dict:
    """The solution notebook as nbgrader grades it, with answer cells replaced and cells added after ids."""
    nb = copy.deepcopy(SOLUTION)
    for cell in nb["cells"]:
        gid = cell["metadata"]["nbgrader"].get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    for after, source in extra:
        i = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == after)
        nb["cells"].insert(i + 1, {"cell_type": "code", "metadata": {}, "source": source, "outputs": []})
    return nb


def test_the_instructors_solution_and_ordinary_code_are_not_flagged():
    found = scan.scan(graded_nb({}), SOLUTION, GRADED)
    assert not found.tamper and not found.autodiff and not found.flags
    honest = graded_nb({"q1_answer": "import math, sys, warnings\nimport numpy as np\n"
                                     "def d_f1(x):\n    print(x, file=sys.stderr)\n    return 20*x**4 + 6/x**3\n"},
                       [("q1_test", "%timeit d_f1(1.0)\nsum = 0\nfor k in range(3):\n    sum += k\n")])
    found = scan.scan(honest, SOLUTION, GRADED)
    assert not found.tamper and not found.autodiff and not found.flags, found


@pytest.mark.parametrize("code, word", [
    ("import autograder.check as C\nC._verdict = None", "autograder.check"),
    ("check.derivative = lambda *a, **k: None", "assigns check.derivative"),
    ("np.testing.assert_allclose = print", "assigns np.testing"),
    ("check = None", "rebinds `check`"),
    ("import numpy as check", "rebinds `check`"),
    ("get_ipython().showtraceback = None", "get_ipython"),
    ("exec('x = 1')", "exec"),
    ("getattr(jax, 'gr' + 'ad')", "computed name"),
    ("getattr(check, '_SECRET')", "_SECRET"),
    ("import sys\nsys.modules['x'] = None", "sys.modules"),
    ("import os\nos._exit(0)", "_exit"),
    ("from os import system", "os.system"),
    ("import signal", "signal"),
    ("import subprocess", "subprocess"),
    ("from jax._src import api", "private"),
    ("f = jax.jit(jax.grad(f1)).lower(1.0).compile()", "precompiled"),
    ("jax.make_jaxpr(f1)(1.0)", "make_jaxpr"),
    ("!ls /", "shell"),
    ("%%timeit\nimport ctypes", "ctypes"),
    ("x = f1.__globals__", "__globals__"),
])
def test_tampering_is_found_outside_the_kernel(code, word):
    found = scan.scan(graded_nb({}, [("setup", code)]), SOLUTION, GRADED)
    assert any(word in t for t in found.tamper), found.tamper


def test_autodiff_is_charged_to_the_question_whose_part_of_the_notebook_names_it():
    nb = graded_nb({"q1_answer": "def d_f1(x):\n    return jax.grad(f1)(x)\n",
                    "q3_answer": "from jax import jvp as J\ndef d_f3(x):\n    return J(f3, (x,), (1.0,))[1]\n",
                    "q6_answer": "def classify(f, x0):\n    return jax.hessian(f)(x0)\n"})
    found = scan.scan(nb, SOLUTION, GRADED)
    assert set(found.autodiff) == {"q1_test", "q3_test"}  # q6 allows autodiff
    assert "jax.grad" in found.autodiff["q1_test"][0] and not found.tamper


def test_file_access_and_unusual_modules_are_only_flagged():
    found = scan.scan(graded_nb({}, [("setup", "import sympy\ntext = open('x.txt').read()")]), SOLUTION, GRADED)
    assert not found.tamper and len(found.flags) == 2


def test_repair_restores_the_instructors_cells_and_notes_what_it_did():
    nb = copy.deepcopy(RELEASE)
    cells = nb["cells"]
    test = next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "q1_test")
    test["metadata"]["nbgrader"].update(points=100, grade=False, locked=False)
    test["cell_type"] = "markdown"
    cells.remove(next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "setup"))
    cells.insert(3, copy.deepcopy(next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "q2_answer")))
    next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "q7_text")["metadata"]["nbgrader"][
        "grade_id"] = "no_such_cell"
    cells.append("a string")
    nb["metadata"]["kernelspec"] = {"name": "ir"}
    fixed, notes = intake.repair(nb, RELEASE)
    text = " | ".join(notes)
    for word in ("q1_test (grade, locked, points, cell type)", "put back: setup, q7_text", "no_such_cell", "copies",
                 "malformed cell", "kernel 'ir'"):
        assert word in text, (word, text)
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in fixed["cells"] if "nbgrader" in c["metadata"]]
    assert ids.count("q2_answer") == 1 and ids[0] in ("intro", "setup") and "setup" in ids
    restored = next(c for c in fixed["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "q1_test")
    assert restored["cell_type"] == "code" and restored["metadata"]["nbgrader"]["points"] == 1
    assert len({c["id"] for c in fixed["cells"]}) == len(fixed["cells"])


@pytest.mark.parametrize("content, word", [
    (b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"), (b"{ nope", "not valid JSON"),
    (b"[1, 2]", "not a Jupyter notebook"), (b'{"cells": 3}', "not a Jupyter notebook"),
])
def test_unreadable_notebooks_get_a_reason(tmp_path, content, word):
    path = tmp_path / f"{A}.ipynb"
    path.write_bytes(content)
    nb, problem = intake._read(path)
    assert nb is None and word in problem


def test_sizes():
    assert sandbox.parse_size("2G") == 2 * 2**30 == sandbox.parse_size("2GiB")
    assert sandbox.parse_size("512M") == 512 * 2**20 and sandbox.parse_size("1000") == 1000
