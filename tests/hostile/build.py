"""Build the hostile corpus (corpus.yml) as submissions in <data>/submitted/<case>/<assignment>/."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.grading import course, demo

HERE = Path(__file__).parent
A = "ch01_univariate"


@dataclass
class Case:
    name: str
    category: str
    about: str
    expected: dict[str, float]
    reason: str = ""
    limit: str = ""
    needs: str = ""
    spec: dict = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)   # grade id -> words its own diagnosis must contain

    def reasons(self, text: str | None = None) -> list[str]:
        """The alternatives (separated by `|`) of ``reason``, or of ``text``: at least one must appear."""
        return [r.strip() for r in (self.reason if text is None else text).split("|") if r.strip()]


def load() -> list[Case]:
    spec = yaml.safe_load((HERE / "corpus.yml").read_text(encoding="utf-8"))
    return [Case(name, c["category"], c.get("about", ""), c.get("expected") or {}, c.get("reason", ""),
                 c.get("limit", ""), c.get("needs", ""), c, c.get("why") or {}) for name, c in spec["cases"].items()]


def _find(nb: dict, grade_id: str) -> int:
    for i, cell in enumerate(nb["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if isinstance(meta, dict) and meta.get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": None, "metadata": {}, "outputs": [], "source": source}


def _edit(nb: dict, op: dict) -> None:
    kind = op["op"]
    if kind == "kernelspec":
        nb["metadata"]["kernelspec"] = op["value"]
        return
    if kind == "garbage":
        q1, q3, q4 = (_find(nb, g) for g in ("q1_answer", "q3_answer", "q4_answer"))
        nb["cells"][q4]["id"] = nb["cells"][q1]["id"]
        nb["cells"][q3]["metadata"]["nbgrader"] = ["not", "a", "dict"]
        nb["cells"].insert(1, "this cell is a string")
        nb["cells"].insert(2, {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Old-style heading"})
        return
    i = _find(nb, op["id"])
    cell = nb["cells"][i]
    if kind == "delete":
        del nb["cells"][i]
    elif kind == "source":
        cell["source"] = op["source"]
    elif kind == "meta":
        cell["metadata"]["nbgrader"].update(op["set"])
    elif kind == "retype":
        cell["cell_type"] = op["type"]
        if op["type"] != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    elif kind == "duplicate":  # a copy just before the original, as a paste above it does
        twin = copy.deepcopy(cell)
        if "source" in op:
            twin["source"] = op["source"]
        nb["cells"].insert(i, twin)
    elif kind == "split":  # both halves keep the metadata, as JupyterLab's "split cell" does
        lines = "".join(cell["source"]).splitlines(keepends=True)
        first, second = copy.deepcopy(cell), copy.deepcopy(cell)
        first["source"], second["source"] = "".join(lines[:op["line"]]), "".join(lines[op["line"]:])
        nb["cells"][i:i + 1] = [first, second]
    elif kind == "move":
        moved = nb["cells"].pop(i)
        nb["cells"].insert(_find(nb, op["before"]), moved)
    elif kind == "outputs":
        line = "z" * 999 + "\n"
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": line * (op["mb"] * 1049)}]
    else:
        raise ValueError(f"unknown edit {kind}")


def notebook(case: Case, values: dict) -> dict:
    """The case's notebook, built from the release (before any file-level mangling)."""
    release = course.read_release(A)
    solution = demo.solution_answers(A)
    nb = copy.deepcopy(release)
    for grade_id, source in (case.spec.get("answers") or {}).items():
        nb["cells"][_find(nb, grade_id)]["source"] = solution[grade_id] if source == "correct" else source
    for item in case.spec.get("insert") or []:
        where = 0 if item["after"] == "start" else _find(nb, item["after"]) + 1
        nb["cells"].insert(where, _code(_fill(item["source"], {**values, "CASE": case.name})))
    for i, cell in enumerate(nb["cells"]):
        if cell.get("id") is None:
            cell["id"] = f"added-{i}"
    for op in case.spec.get("edits") or []:
        _edit(nb, op)
    return nb


def _fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def build(cases: list[Case], values: dict) -> list[str]:
    """Write every case's submission; ``values`` fills {ROOT}, {DATA}, {A}, {HONEST}, {CELL} (and {CASE}, the case's
    name) in inserted cells and extra files."""
    data = course.data_dir()
    for case in cases:
        folder = data / "submitted" / case.name / A
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC\n")
        spec = case.spec.get("file") or {}
        name = spec.get("name", f"{A}.ipynb")
        if "text" in spec:
            (folder / name).write_text(spec["text"], encoding="utf-8")
        elif "hex" in spec:
            (folder / name).write_bytes(bytes.fromhex(spec["hex"]))
        elif "json" in spec:
            (folder / name).write_text(json.dumps(spec["json"]), encoding="utf-8")
        elif not spec.get("missing"):
            (folder / name).write_text(json.dumps(notebook(case, values), indent=1, ensure_ascii=False),
                                       encoding="utf-8")
        for rel, content in (spec.get("extra") or {}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(_fill(content, {**values, "CASE": case.name}), encoding="utf-8")
        for rel, mb in (spec.get("big") or {}).items():
            with open(folder / rel, "wb") as fh:
                fh.truncate(mb * 2**20)
        for rel, target in (spec.get("symlink") or {}).items():
            os.symlink(_fill(target, values), folder / rel)
    return [c.name for c in cases]
