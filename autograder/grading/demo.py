"""The bundled demo class: submissions described in demo/<assignment>.yml, built from the released notebook.

Each student's answers replace the stubs of the named solution cells (``answers: solution`` takes the
instructor's own), so the demo follows the assignment whenever it changes. ``expected`` records each graded
cell's exact score; tests/test_demo_class.py grades the class and holds the pipeline to those numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import course

MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


@dataclass
class DemoStudent:
    student: str
    about: str
    answers: dict[str, str] | str
    expected: dict[str, float]
    diagnosis: dict[str, str] = field(default_factory=dict)


def demo_dir() -> Path:
    return course.root() / "demo"


def load(assignment: str) -> list[DemoStudent]:
    spec = yaml.safe_load((demo_dir() / f"{assignment}.yml").read_text(encoding="utf-8"))
    return [DemoStudent(sid, s.get("about", ""), s.get("answers", {}), s.get("expected", {}), s.get("diagnosis", {}))
            for sid, s in spec["students"].items()]


def available() -> list[str]:
    return [a for a in course.assignments() if (demo_dir() / f"{a}.yml").is_file()]


def solution_answers(assignment: str) -> dict[str, str]:
    nb = json.loads((course.root() / "solutions" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]: MARKERS.sub("", "".join(c["source"]))
            for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def build(assignment: str, students: list[DemoStudent]) -> list[str]:
    """Write each demo student's notebook into the submitted/ folder; return their ids."""
    template = course.read_release(assignment)
    solution = solution_answers(assignment)
    for s in students:
        answers = solution if s.answers == "solution" else s.answers
        unknown = set(answers) - set(solution)
        if unknown:
            raise course.CourseError(f"demo student {s.student}: no solution cell named {sorted(unknown)}")
        nb = json.loads(json.dumps(template))
        for cell in nb["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell["source"] = answers[grade_id]
        folder = course.data_dir() / "submitted" / s.student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{assignment}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
        (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC\n")
    return [s.student for s in students]
