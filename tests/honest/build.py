"""Build the honest-explorers corpus (corpus.yml) as submissions.

Each case becomes ``<data>/submitted/<case>/<assignment>/<assignment>.ipynb``, made
from the released notebook (exercises/<assignment>/<assignment>.ipynb): every answer
cell gets the instructor's answer unless the case rewrites it, and the case's
exploration cells are inserted after the cells it names. The cell helpers are
tests/hostile/build.py's.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.grading import course, demo
from hostile.build import _code, _find

HERE = Path(__file__).parent
STAMP = "2026-11-20 12:00:00.000000 UTC\n"


@dataclass
class Case:
    name: str
    assignment: str
    about: str
    expected: str
    spec: dict = field(default_factory=dict)


def load() -> list[Case]:
    spec = yaml.safe_load((HERE / "corpus.yml").read_text(encoding="utf-8"))
    cases = [Case(name, c["assignment"], c.get("about", ""), c.get("expected", ""), c)
             for name, c in spec["cases"].items()]
    for case in cases:
        if case.expected != "full":
            raise ValueError(f"{case.name}: expected must be `full`: {case.expected!r}")
    return cases


def assignments(cases: list[Case]) -> list[str]:
    return sorted({c.assignment for c in cases})


def _markdown(source: str) -> dict:
    return {"cell_type": "markdown", "id": None, "metadata": {}, "source": source}


def notebook(case: Case) -> dict:
    """The case's notebook: the release, full-marks answers, the exploration cells."""
    nb = copy.deepcopy(course.read_release(case.assignment))
    solution = demo.solution_answers(case.assignment)
    answers = {gid: "correct" for gid in solution}
    answers.update(case.spec.get("answers") or {})
    unknown = sorted(set(answers) - set(solution))
    if unknown:
        raise ValueError(f"{case.name}: no answer cell named {unknown}")
    for grade_id, source in answers.items():
        nb["cells"][_find(nb, grade_id)]["source"] = \
            solution[grade_id] if source == "correct" else source
    setup = _find(nb, "setup")
    added: dict[str, int] = {}  # anchor -> cells inserted after it so far (keeps order)
    for item in case.spec.get("insert") or []:
        anchor = item["after"]
        kind = item.get("type", "code")
        where = _find(nb, anchor) + 1 + added.get(anchor, 0)
        if kind == "code" and where <= setup:
            raise ValueError(f"{case.name}: code above the set-up cell is not run")
        cell = _code(item["source"]) if kind == "code" else _markdown(item["source"])
        nb["cells"].insert(where, cell)
        added[anchor] = added.get(anchor, 0) + 1
    for i, cell in enumerate(nb["cells"]):
        if cell.get("id") is None:
            cell["id"] = f"explore-{i}"
    return nb


def build(cases: list[Case]) -> dict[str, list[str]]:
    """Write every case's submission; return assignment -> the students who sent it."""
    data = course.data_dir()
    built: dict[str, list[str]] = {}
    for case in cases:
        a = case.assignment
        folder = data / "submitted" / case.name / a
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "timestamp.txt").write_text(STAMP)
        text = json.dumps(notebook(case), indent=1, ensure_ascii=False)
        (folder / f"{a}.ipynb").write_text(text, encoding="utf-8")
        built.setdefault(a, []).append(case.name)
    return built
