"""Where a finding points, in the student's words.

The grader's findings name cells by position ("cell 6 calls JAX automatic differentiation (jax.grad)") or by
grade id ("q3_test"), but a student's feedback page shows only their answers. :class:`Locator` rewrites each
reference to name the question the cell belongs to (its heading, e.g. "Q2 — exponentials, logarithms and a^x")
and to quote the student's own line ("your cell in Q2 (`g = jax.grad(f2)`)"). A cell belongs to the question
whose test cell follows it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CELL_REF = re.compile(r"\bcell (\d+)(?: \((?:your code|[A-Za-z0-9_\-]+)\))?")
HEADING = re.compile(r"^\s*#+\s*(.+?)\s*(?:\(\d+(?:\.\d+)? points?\))?\s*$", re.M)
NAMES = re.compile(r"\(([^()]*)\)")
QUOTE_LIMIT = 100


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _meta(cell) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def _is_test(cell) -> bool:
    return bool(_meta(cell).get("grade")) and cell.get("cell_type") == "code"


def question_labels(release: dict) -> dict[str, str]:
    """grade id -> its question's label, for every grade id of the released notebook (text, answer, test)."""
    labels, pending, title, number = {}, [], "", 0
    for cell in release.get("cells", []):
        gid = _meta(cell).get("grade_id")
        found = HEADING.search(_source(cell)) if cell.get("cell_type") == "markdown" and gid else None
        if found:  # the last locked text cell before the test: the question's own
            title = found.group(1)
        if gid:
            pending.append(gid)
        if _is_test(cell):
            number += 1
            name = f"Q{number}"
            label = title if title.startswith(name) else f"{name} ({title})" if title else name
            labels.update({g: label for g in pending})
            pending, title = [], ""
    return labels


class Locator:
    """Rewrites the cell references of findings about one graded notebook (see the module's docstring)."""

    def __init__(self, release: dict, graded: dict):
        self.labels = question_labels(release)
        self.cells: dict[int, tuple[str, str]] = {}  # 1-based position -> (question label, source)
        pending: list[int] = []
        for n, cell in enumerate(graded.get("cells", []) if isinstance(graded, dict) else [], 1):
            if not isinstance(cell, dict):
                continue
            pending.append(n)
            meta = _meta(cell)
            instructors = (meta.get("locked") or meta.get("grade")) and not meta.get("solution")
            self.cells[n] = ("", "" if instructors else _source(cell))  # never quote a test (hidden source)
            if _is_test(cell):
                label = self.labels.get(_meta(cell).get("grade_id", ""), "")
                for m in pending:
                    self.cells[m] = (label, self.cells[m][1])
                pending = []
        for m in pending:
            self.cells[m] = ("after the last question", self.cells[m][1])

    @classmethod
    def from_files(cls, release: dict, graded_notebook: Path) -> "Locator":
        try:
            graded = json.loads(graded_notebook.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            graded = {}
        return cls(release, graded)

    def describe(self, text: str) -> str:
        """``text`` with each "cell N" naming its question and quoting the student's line, and each grade id
        naming its question."""
        out, last = [], 0
        for match in CELL_REF.finditer(text):
            out.append(self._grade_ids(text[last:match.start()]))
            out.append(self._cell(int(match.group(1)), text[match.end():]) or match.group(0))
            last = match.end()
        out.append(self._grade_ids(text[last:]))
        return "".join(out)

    def _cell(self, number: int, rest: str) -> str:
        if number not in self.cells:
            return ""
        label, source = self.cells[number]
        names = [n.strip().split(".")[-1] for group in NAMES.findall(rest.split(";")[0]) for n in group.split(",")]
        lines = [line.strip() for line in source.splitlines() if line.strip()]
        code = [line for line in lines if not line.startswith("#")] or lines
        quote = next((line for line in code if any(n and n in line for n in names)), code[0] if code else "")
        if len(quote) > QUOTE_LIMIT:
            quote = quote[:QUOTE_LIMIT - 1] + "…"
        mine = "your cell" if source else "the cell"
        where = f"{mine} in {label}" if label and not label.startswith("after") else f"{mine} {label}" \
            if label else mine
        return f"{where} (`{quote}`)" if quote else where

    def _grade_ids(self, text: str) -> str:
        for gid, label in self.labels.items():
            text = re.sub(rf"(?<![\w-]){re.escape(gid)}(?![\w-])", lambda m, g=gid, q=label: f"{g} ({q})", text)
        return text
