"""nbgrader's cell metadata checks, as our grading workers run them: the same verdicts as nbgrader's own, with
each schema checked once per worker instead of once per cell (autograde._validate_metadata_once_per_schema)."""

import copy

import jsonschema
import nbformat
import pytest
from nbgrader.nbgraderformat import common
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

from autograder.grading import autograde, course

A = "ch01_univariate"
BROKEN = {"points": "many", "grade": "yes", "schema_version": 3}   # wrong types, as a hand edit leaves them


def _errors(nb) -> list[str]:
    validator, out = MetadataValidatorV3(), []
    for cell in nb.cells:
        try:
            validator.validate_cell(cell)
            out.append("")
        except jsonschema.ValidationError as exc:
            out.append(exc.message)
    return out


def _notebooks():
    nb = nbformat.read(course.release_notebook(A), as_version=4)
    broken = copy.deepcopy(nb)
    for cell in broken.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.update(BROKEN)
            break
    return nb, broken


@pytest.fixture
def stock(monkeypatch):
    """nbgrader's own verdicts on a good and a broken notebook; then the workers' checks are in place (undone
    after the test)."""
    nb, broken = _notebooks()
    verdicts = (_errors(nb), _errors(broken))
    monkeypatch.setattr(common, "jsonschema", common.jsonschema)
    autograde._validate_metadata_once_per_schema()
    return verdicts


def test_the_workers_metadata_checks_give_nbgrader_s_verdicts(stock):
    nb, broken = _notebooks()
    assert (_errors(nb), _errors(broken)) == stock
    assert not any(stock[0]) and sum(map(bool, stock[1])) == 1


def test_the_schema_is_checked_once_not_once_per_cell(stock, monkeypatch):
    nb, _ = _notebooks()
    cls = jsonschema.validators.validator_for(MetadataValidatorV3().schema)
    checked = []
    original = cls.check_schema
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s, **k: checked.append(1) or original(s, **k)))
    for _ in range(3):
        _errors(nb)
    graded = sum("nbgrader" in c.metadata for c in nb.cells)
    assert graded > 5 and len(checked) <= 1, f"{len(checked)} schema checks for {3 * graded} cells"
