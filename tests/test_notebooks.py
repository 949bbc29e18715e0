"""Every lecture, practice notebook and assignment source executes top to bottom on CPU, and is stored clean."""

import re

import pytest

from notebooks import ROOT, execute, lectures, load, outputs_text, practice, sources
from sitebuild import executed_exercise, executed_lecture

ALL = lectures() + practice() + sources()
BUILT_BY_THE_SITE = {"course", "practice"}   # run once, by the site build (tests/sitebuild.py)


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_without_outputs_and_with_stable_ids(path):
    nb = load(path)
    ids = [c.get("id") for c in nb["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique, stable id"
    dirty = [c["id"] for c in nb["cells"] if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"cells stored with outputs: {dirty}"


def _executes_and_every_check_passes(path):
    # Each notebook executes once per test run: a lecture's or practice notebook's run is the site build's
    # (tests/sitebuild.py). So is a solution's: its exercise page runs the solution with the visible self-checks
    # (each raises on failure), and tests/test_demo_class.py grades the solution with the hidden tests too.
    if path.parent.name in BUILT_BY_THE_SITE:
        nb = executed_lecture(path) or execute(path)
    else:
        nb = executed_exercise(path.stem) or execute(path)
    text = outputs_text(nb)
    if path.parent.name != "course":  # lectures may show a wrong answer's diagnosis on purpose
        assert "✘" not in text, "a check failed while running the solution:\n" + \
            "\n".join(line for line in text.splitlines() if "✘" in line)[:2000]
    assert "✔" in text, "the notebook never ran an autograder.check"
    if path.parent.name == "course":
        images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        assert images >= 1, "a lecture shows at least one figure"


# One class per notebook: `make test` distributes with --dist loadscope (a class is a unit), so the notebooks
# spread over the workers while each other module's fixtures are built once.
for _path in ALL:
    _kind = _path.parent.name if _path.parent.name in BUILT_BY_THE_SITE else "solution"
    _name = f"TestExecutes_{_kind}_{_path.stem}"
    globals()[re.sub(r"\W", "_", _name)] = type(_name, (), {
        "pytestmark": [pytest.mark.slow],
        "test_executes_and_every_check_passes": lambda self, path=_path: _executes_and_every_check_passes(path),
    })


PROBLEMS_PER_CHAPTER = 8


@pytest.mark.parametrize("path", practice(), ids=lambda p: p.stem)
def test_practice_has_enough_problems_each_with_a_folded_solution_and_a_self_check(path):
    nb = load(path)
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) >= PROBLEMS_PER_CHAPTER, f"{len(solutions)} problems with a solution cell"
    folded = [c["id"] for c in solutions if not c["metadata"].get("jupyter", {}).get("source_hidden")]
    assert not folded, f"solution cells not folded in JupyterLab (metadata.jupyter.source_hidden): {folded}"
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert code.count("practice.attempt(") >= PROBLEMS_PER_CHAPTER, "each problem has a self-check to try"
    assert "practice.draw(" in code, "the parameters are drawn at random (practice.draw)"


LIST_MARKER = re.compile(r"\n\s*(?:[-+*]|\d+[.)])\s")   # Markdown starts a list item at such a line


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_display_math_has_no_line_that_markdown_reads_as_a_list_item(path):
    # "$$a\n+ b$$": the "+ b" line becomes a list item and the page shows raw TeX (issue 18's ch08, issue 15's ch06)
    bad = [c.get("id") for c in load(path)["cells"] if c["cell_type"] == "markdown"
           and any(LIST_MARKER.search(m) for m in re.findall(r"\$\$.*?\$\$", "".join(c["source"]), re.S))]
    assert not bad, f"display math with a line starting like a list item in cells {bad}"
