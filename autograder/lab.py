"""Validate that teaches: the student's *Validate* button answers with one line per question.

nbgrader's validate handler returns, for every failing test cell, the cell's whole source and its error, and its
dialog prints them one after another. This Jupyter server extension serves the same URL
(`/assignments/validate`, enabled in lab/jupyter_server_config.json in place of nbgrader's) and runs nbgrader's
own Validator, then reports one line per graded question: its ✔ line, its ✘ line with the diagnosis, or
"not answered". Test cells' source never appears. The dialog shows those lines under a count such as
"2 of 7 questions pass".
"""

from __future__ import annotations

import html
import re
import traceback
from pathlib import Path

from nbgrader import utils
from nbgrader.validator import Validator

VERDICT = re.compile(r"^[✔✘].*$", re.M)
QUESTION = re.compile(r"^#+\s*(Q\d+[^\n]*?)(?:\s+\(\d+ points?\))?\s*$", re.M)
NOT_ANSWERED = ("not answered yet", "NotImplementedError")


def _outputs(cell) -> tuple[str, str]:
    """(printed text, error text) of a code cell."""
    printed, error = [], []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            (error if out.name == "stderr" else printed).append(out.text)
        elif out.output_type == "error":
            error.append(out.evalue if out.ename == "CheckFailed" else f"{out.ename}: {out.evalue}")
    return "".join(printed), "\n".join(error)


def verdict(cell) -> tuple[bool, str]:
    """(passed, one line) for an executed test cell."""
    printed, error = _outputs(cell)
    if any(marker in error for marker in NOT_ANSWERED):
        return False, "not answered"
    if error:
        lines = VERDICT.findall(error)
        return False, (lines[0] if lines else "✘ " + error.strip().splitlines()[-1])
    score, max_score = utils.determine_grade(cell, None)
    lines = VERDICT.findall(printed)
    if max_score and score is not None and score < max_score:
        return False, lines[-1] if lines else "✘ failed"
    return True, lines[-1] if lines else "✔ passed"


def question_lines(nb) -> list[tuple[bool, str]]:
    """One (passed, 'Q1 — title: verdict') per graded code cell, in order, named by the heading above it."""
    lines, title = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = QUESTION.findall(cell.source)
            if found:
                title = found[-1].replace("$", "").strip()
        elif utils.is_grade(cell):
            passed, line = verdict(cell)
            name = title or cell.metadata.get("nbgrader", {}).get("grade_id", "a test")
            lines.append((passed, f"{name}: {line}"))
    return lines


class TeachingValidator(Validator):
    """nbgrader's Validator whose `validate` result names each question once, without test source."""

    def validate(self, filename: str):
        results = super().validate(filename)
        if "failed" not in results:
            return results
        lines = question_lines(self._executed)
        passed = sum(ok for ok, _ in lines)
        summary = f"{passed} of {len(lines)} questions pass. Fix the lines marked ✘ or not answered."
        text = "\n".join(line for _, line in lines)
        return {"failed": [{"source": text, "error": html.escape(summary), "raw_error": summary}]}

    def _preprocess(self, nb):
        self._executed = super()._preprocess(nb)
        return self._executed


def _handlers():
    from nbgrader.server_extensions.validate_assignment import handlers as nbgrader_handlers
    from tornado import web

    class ValidateHandler(nbgrader_handlers.ValidateAssignmentHandler):
        """nbgrader's handler (same URL, config and path checks) with the TeachingValidator."""

        def validate_notebook(self, path):
            root = Path(self.root_dir).resolve()
            target = (root / path).resolve()
            if not target.is_relative_to(root):
                raise web.HTTPError(403, "Access denied: path outside allowed directory")
            try:
                result = TeachingValidator(config=self.load_config()).validate(str(target))
            except Exception:
                self.log.error(traceback.format_exc())
                return {"success": False, "value": traceback.format_exc()}
            return {"success": True, "value": result}

    return [(r"/assignments/validate", ValidateHandler),
            (r"/nbgrader_version", nbgrader_handlers.NbGraderVersionHandler)]


def _jupyter_server_extension_points():
    return [{"module": "autograder.lab"}]


def _load_jupyter_server_extension(server_app):
    from jupyter_server.utils import url_path_join

    web_app = server_app.web_app
    web_app.settings["root_dir"] = server_app.root_dir
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, pattern), handler) for pattern, handler in _handlers()])
    server_app.log.info("autograder.lab: Validate answers with one line per question")
