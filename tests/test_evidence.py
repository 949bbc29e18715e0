"""The trusted judge: a graded cell passes iff its evidence matches the solution's at the same secret points."""

import json

import numpy as np
import pytest

from autograder.grading.evidence import EVIDENCE_MIME, judge, records


def enc(a):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "dtype": a.dtype.str, "data": a.ravel().tolist()}


def rec(values, points=((0.5,), (1.5,)), title="derivative of f", error="", autodiff=(), verdict="✔ ok", rtol=None):
    return {"kind": "derivative", "title": title, "error": error, "rtol": rtol, "atol": 0.0,
            "args": [[enc(p) for p in point] for point in points], "got": [enc(v) for v in values],
            "autodiff": list(autodiff), "verdict": verdict}


SOLUTION = [rec([1.0, 2.0])]


def test_matching_evidence_passes():
    assert judge([rec([1.0, 2.0 + 1e-15])], SOLUTION).passed


def test_wrong_values_fail_with_a_diagnosis():
    v = judge([rec([-1.0, -2.0])], SOLUTION)
    assert not v.passed and "wrong sign" in v.diagnosis


def test_a_fake_pass_printed_by_the_kernel_earns_nothing():
    v = judge([rec([7.0, 7.0], verdict="✔ derivative of f: correct at 5 random points")], SOLUTION)
    assert not v.passed


def test_missing_evidence_fails():
    v = judge([], SOLUTION)
    assert not v.passed and "stopped after 0 of 1" in v.diagnosis


def test_altered_points_fail():
    v = judge([rec([1.0, 2.0], points=((0.1,), (0.2,)))], SOLUTION)
    assert not v.passed and "points were altered" in v.diagnosis


def test_extra_or_foreign_records_fail():
    assert not judge([rec([1.0, 2.0]), rec([1.0, 2.0])], SOLUTION).passed
    assert not judge([rec([1.0, 2.0], title="something else")], SOLUTION).passed


def test_shape_must_match_exactly():
    student = rec([1.0, 2.0])
    student["got"] = [enc([1.0]), enc([2.0])]
    v = judge([student], SOLUTION)
    assert not v.passed and "wrong shape" in v.diagnosis


def test_autodiff_policy():
    cheat = [rec([1.0, 2.0], autodiff=["LinearizeTrace"])]
    assert not judge(cheat, SOLUTION, policy="zero").passed
    flagged = judge(cheat, SOLUTION, policy="flag")
    assert flagged.passed and "automatic differentiation" in flagged.flags[0]


def test_an_error_in_the_kernel_fails_with_its_message():
    v = judge([rec([], error="your function raised ZeroDivisionError", verdict="✘ f: raised ZeroDivisionError")],
              SOLUTION)
    assert not v.passed and "ZeroDivisionError" in v.diagnosis


def test_no_reference_evidence_is_never_a_pass():
    assert not judge([rec([1.0, 2.0])], []).passed


def test_records_are_read_only_from_graded_cells():
    out = {"output_type": "display_data", "data": {EVIDENCE_MIME: rec([1.0, 2.0])}, "metadata": {}}
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [out]},                        # a student cell
        {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "grade_id": "q1_test"}}, "outputs": [out]},
    ]}
    assert {k: len(v) for k, v in records(json.loads(json.dumps(nb))).items()} == {"q1_test": 1}
