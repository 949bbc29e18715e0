"""Sphinx configuration of the course site: `make site` builds it into site/_build/html.

The site reads the notebooks where they live; nothing under site/ duplicates them in git:

- lectures: course/*.ipynb, executed at build time (myst-nb, jupyter-cache in site/_build/.jupyter_cache, so an
  unchanged notebook is not run again), in parallel: _ext/parallel_execution.py runs every notebook that is not
  cached yet in a pool of processes (one per core) before Sphinx reads it, so that myst-nb then finds each one in
  the cache (`-D parallel_execution_jobs=1` switches that off: myst-nb's own serial execution);
- assignments: solutions/<name>/<name>.ipynb, transformed on a copy: every solution is folded under its question
  ("Show solution"), and every `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` block is cut out before
  Sphinx sees the notebook; the copy is then executed like a lecture, so each self-check shows its ✔ line.
  The page offers the student version from exercises/ for download, never the source.

The copies go to site/lectures/ and site/assignments/ (git-ignored) and are rewritten only when they change, so
incremental builds stay incremental. Notebooks are globbed: a chapter appears as soon as its notebook exists.
MathJax 3 comes from node_modules/ (`npm ci`, pinned in package.json) and is copied into the site, so math
renders offline, from file:// too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"


def _repository_url() -> str:
    """The course's public repository: VC4ML_REPOSITORY_URL, else this checkout's `origin` remote (as https);
    '' when neither exists: the pages then link the zip of the course's files (_ext/run_locally.py)."""
    url = os.environ.get("VC4ML_REPOSITORY_URL", "")
    if not url:
        try:
            url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            url = ""
    url = re.sub(r"^git@([^:]+):", r"https://\1/", url)
    return url if url.startswith("https://") else ""


REPOSITORY_URL = _repository_url()   # the header button and the footer link on every page
GENERATED = {"lectures": SITE / "lectures", "assignments": SITE / "assignments", "practice": SITE / "practice"}
STUDENT = GENERATED["assignments"] / "_student"     # snapshots of exercises/<name>/<name>.ipynb, the downloads
sys.path.insert(0, str(SITE / "_ext"))
from autograder.sandbox import with_fast_compile  # noqa: E402  (installed with the venv, as the lectures need)

# The notebooks' cells run JAX op by op, so XLA compiling each new operation is most of a cold build: their
# kernels get the grader's fast-compile flags (autograder.sandbox.FAST_COMPILE; float64 results equal to a few ulps).
os.environ["XLA_FLAGS"] = with_fast_compile(os.environ.get("XLA_FLAGS", ""))

# -- project --------------------------------------------------------------------------------------------------
project = "Vector Calculus for Machine Learning"
author = "the course authors"
copyright = "the course authors, MIT licence"
html_title = "Vector Calculus for ML"

# _ext/: lectures executed in parallel, into the cache; accessible names and alt text; the "run it" wheel
extensions = ["myst_nb", "parallel_execution", "accessibility", "run_locally"]
templates_path = ["_templates"]          # the search button without a label that hides its visible text
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute", "README.md", "assignments/_student",
                    "assignments/_student/*"]
suppress_warnings = ["myst.header"]      # lectures may skip a heading level; that is style, not breakage

# -- MyST and notebooks ---------------------------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "dollarmath", "colon_fence"]
myst_dmath_double_inline = True          # "$$...$$" glued to a line of text is still display math
myst_heading_anchors = 3
nb_execution_mode = "cache"              # jupyter-cache: re-run a notebook only when its code changed
# Exercises run too, with their solutions and visible self-checks (hidden tests are cut before execution): each
# folded solution is followed by the ✔ line a student's correct answer earns.
nb_execution_timeout = 180               # seconds per cell; a lecture runs in well under a minute
nb_execution_raise_on_error = True       # a failing cell fails the build
nb_execution_show_tb = True              # ...and the log shows the traceback
nb_render_markdown_format = "gfm"       # Markdown(...) outputs: GitHub tables, not a paragraph of pipes
nb_merge_streams = True                  # one output box per cell, not one per print()
nb_kernel_rgx_aliases = {".*": "python3"}
# parallel_execution_jobs = <cores>      # processes that pre-execute uncached notebooks (_ext/parallel_execution.py)

# -- HTML -----------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,         # .ipynb (lectures: the course notebook; exercises: the student version)
    "use_fullscreen_button": True,
    "repository_url": REPOSITORY_URL,    # the header's repository button, on every page
    "use_repository_button": bool(REPOSITORY_URL),
    "footer_content_items": ["run-locally.html", "copyright.html"],   # _templates/: every page says how to run
    "navigation_with_keys": False,
    "navbar_persistent": [],             # sbt 1.4 + pydata 0.20 would otherwise add a second search bar on top
}
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = True
html_sourcelink_suffix = ""              # _sources/<page>.ipynb, not .ipynb.txt
html_last_updated_fmt = None

# MathJax 3 from node_modules/, copied into <site>/_static/mathjax by _copy_mathjax below.
mathjax_path = "mathjax/tex-mml-chtml.js"
_MATHJAX_PARTS = ["tex-mml-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors"]

# -- the notebook copies --------------------------------------------------------------------------------------
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
SOLUTION_BEGIN, SOLUTION_END = "BEGIN SOLUTION", "END SOLUTION"


def strip_hidden_tests(source: str) -> str:
    """Drop every hidden-test region, delimiters included (nbgrader's ClearHiddenTests rule: a line that contains
    the delimiter opens or closes a region). An unterminated region is an error: publish nothing rather than leak."""
    kept, hidden = [], False
    for line in source.splitlines(keepends=True):
        if HIDDEN_BEGIN in line:
            if hidden:
                raise ValueError("nested BEGIN HIDDEN TESTS")
            hidden = True
        elif HIDDEN_END in line:
            if not hidden:
                raise ValueError("END HIDDEN TESTS without BEGIN")
            hidden = False
        elif not hidden:
            kept.append(line)
    if hidden:
        raise ValueError("BEGIN HIDDEN TESTS without END")
    return "".join(kept).rstrip()


def strip_solution_markers(source: str) -> str:
    """The solution as a reader should see it: the `### BEGIN/END SOLUTION` marker lines removed."""
    return "".join(l for l in source.splitlines(keepends=True)
                   if SOLUTION_BEGIN not in l and SOLUTION_END not in l).rstrip()


def _insert_after_title(nb, text: str, cell_id: str) -> None:
    """Put a markdown note right under the notebook's first heading (a new cell after the first cell)."""
    note = nbformat.v4.new_markdown_cell(text)
    note.id = cell_id
    nb.cells.insert(1 if nb.cells else 0, note)


CHAPTER = re.compile(r"ch\d+_")             # chNN_<topic>: a chapter; any other course notebook is an About page


def is_chapter(stem: str) -> bool:
    return CHAPTER.match(stem) is not None


def _assignment_exists(stem: str) -> bool:
    return (ROOT / "solutions" / stem / f"{stem}.ipynb").is_file()


def _lecture_exists(stem: str) -> bool:
    return (ROOT / "course" / f"{stem}.ipynb").is_file()


def lecture_copy(path: Path):
    nb = nbformat.read(path, as_version=4)
    rel = Path("..", "..", "course", path.name).as_posix()
    what = "lecture" if is_chapter(path.stem) else "page"
    _insert_after_title(nb, f"{{download}}`Download this {what} as a notebook <{rel}>` "
                            "(run it in JupyterLab; it needs the course's `autograder` package: see "
                            "[Run it yourself](../index.md#run-it-yourself)).", "site-download")
    if is_chapter(path.stem) and _assignment_exists(path.stem):
        end = nbformat.v4.new_markdown_cell(f"**Now practise:** {{doc}}`../assignments/{path.stem}` (the "
                                            "exercise for this lecture, with its solutions folded).")
        end.id = "site-next-exercise"
        nb.cells.append(end)
    return nb


COURSE_PATH = re.compile(r"`course/([\w-]+)\.ipynb`")


def link_lectures(source: str) -> str:
    """A repository path such as `course/ch03_jacobians.ipynb` becomes a link to that lecture's page."""
    return COURSE_PATH.sub(lambda m: f"{{doc}}`../lectures/{m[1]}`" if _lecture_exists(m[1]) else m[0], source)


def _tracked(path: Path) -> bool:
    try:
        return subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def student_notebook(name: str, wait: float = 60.0) -> str | None:
    """The text of exercises/<name>/<name>.ipynb, or None if it is not released.

    `release` (nbgrader generate_assignment --force) deletes the folder and writes it again, and the test suite
    runs it alongside the site build: a file that is committed but missing or half-written is waited for."""
    path = ROOT / "exercises" / name / f"{name}.ipynb"
    deadline = time.monotonic() + wait
    while True:
        try:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
            return text
        except FileNotFoundError:
            if not _tracked(path) or time.monotonic() > deadline:
                return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def fold_solution(cell) -> None:
    """A code cell whose source the page folds under "Show solution" (myst-nb's hide-input)."""
    cell.metadata["tags"] = sorted(set(cell.metadata.get("tags", [])) | {"hide-input", "solution"})
    cell.metadata["mystnb"] = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}


def assignment_copy(path: Path, released: bool | None = None):
    """The published form of an nbgrader source notebook: hidden tests cut, solutions folded."""
    name = path.stem
    if released is None:
        released = (ROOT / "exercises" / name / f"{name}.ipynb").is_file()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        source = strip_hidden_tests(cell.source)
        if meta.get("solution"):
            source = strip_solution_markers(source)
            if cell.cell_type == "code":
                fold_solution(cell)
            else:
                source = ("```{raw} html\n<details class=\"solution\"><summary>Show solution</summary>\n```\n\n"
                          f"{source}\n\n```{{raw}} html\n</details>\n```")
        cell.metadata.pop("nbgrader", None)
        cell.source = link_lectures(source) if cell.cell_type == "markdown" else source
    if released:
        where = (f"{{download}}`Download the exercise notebook <_student/{name}.ipynb>` (the student version: "
                 "answers left for you, self-check cells included; open it in JupyterLab, see the "
                 "[home page](../index.md#run-it-yourself)).")
    else:
        where = "The student version of this assignment is not released yet (`make release` writes it)."
    _insert_after_title(nb, where + " Each solution is folded under its question: try first, then open "
                        "*Show solution*. The hidden tests used for grading are not published.", "site-download")
    if _lecture_exists(name):
        _insert_after_title(nb, f"**Lecture:** {{doc}}`../lectures/{name}` (read it first).", "site-lecture")
    return nb


def practice_copy(path: Path):
    """A practice notebook's page: each cell tagged `solution` is folded under its problem ("Show solution")."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []) and cell.cell_type == "code":
            fold_solution(cell)
        elif cell.cell_type == "markdown":
            cell.source = link_lectures(cell.source)
    rel = Path("..", "..", "course", "practice", path.name).as_posix()
    _insert_after_title(nb, f"{{download}}`Download these problems as a notebook <{rel}>` (new numbers on "
                            "every run; in JupyterLab the solutions start folded). Nothing here is graded.",
                        "site-download")
    if _lecture_exists(path.stem):
        _insert_after_title(nb, f"**Lecture:** {{doc}}`../lectures/{path.stem}`.", "site-lecture")
    return nb


# -- the table of contents: conventions, then each lecture followed by its exercise, then the About pages ---------
def chapter_entries(root: Path = ROOT) -> list[str]:
    """Toctree entries in reading order: per chapter (sorted by name), its lecture, its exercise, its practice."""
    lectures = {p.stem for p in (root / "course").glob("*.ipynb") if is_chapter(p.stem)}
    exercises = {p.stem for p in (root / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name}
    practice = {p.stem for p in (root / "course" / "practice").glob("*.ipynb") if is_chapter(p.stem)}
    entries = []
    for stem in sorted(lectures | exercises | practice):
        entries += ([f"lectures/{stem}"] * (stem in lectures) + [f"assignments/{stem}"] * (stem in exercises)
                    + [f"practice/{stem}"] * (stem in practice))
    return entries


def about_entries(root: Path = ROOT) -> list[str]:
    """Course notebooks that are not chapters (the errata): pages of the About part, not lectures."""
    return [f"lectures/{p.stem}" for p in sorted((root / "course").glob("*.ipynb")) if not is_chapter(p.stem)]


TOC_SLOTS = {"{{ chapters }}": chapter_entries, "{{ course pages }}": about_entries}


def fill_toc(app, docname: str, source: list[str]) -> None:
    """The home page's toctrees name their slots; the entries come from the notebooks present."""
    if docname == app.config.root_doc:
        for slot, entries in TOC_SLOTS.items():
            source[0] = source[0].replace(slot, "\n".join(entries()))



def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate(app=None) -> dict[str, list[Path]]:
    """(Re)write site/lectures/*.ipynb and site/assignments/*.ipynb (and the student versions offered for
    download, in site/assignments/_student/) from the notebooks that exist now."""
    students = {p.stem: student_notebook(p.stem) for p in sorted((ROOT / "solutions").glob("*/*.ipynb"))
                if p.stem == p.parent.name}
    wanted = {
        "lectures": {p.name: lecture_copy(p) for p in sorted((ROOT / "course").glob("*.ipynb"))},
        "assignments": {f"{name}.ipynb": assignment_copy(ROOT / "solutions" / name / f"{name}.ipynb",
                                                         released=text is not None)
                        for name, text in students.items()},
        "practice": {p.name: practice_copy(p) for p in sorted((ROOT / "course" / "practice").glob("*.ipynb"))},
    }
    written = {}
    for kind, notebooks in wanted.items():
        folder = GENERATED[kind]
        folder.mkdir(exist_ok=True)
        for stale in folder.glob("*.ipynb"):
            if stale.name not in notebooks:
                stale.unlink()
        for name, nb in notebooks.items():
            _write_if_changed(folder / name, nbformat.writes(nb) + "\n")
        written[kind] = [folder / n for n in notebooks]
    STUDENT.mkdir(exist_ok=True)
    for stale in STUDENT.glob("*.ipynb"):
        if students.get(stale.stem) is None:
            stale.unlink()
    for name, text in students.items():
        if text is not None:
            _write_if_changed(STUDENT / f"{name}.ipynb", text)
    return written


# -- build-finished: offline MathJax, downloads ---------------------------------------------------------------
def _copy_mathjax(outdir: Path) -> None:
    dst = outdir / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        src, out = MATHJAX / part, dst / part
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        else:
            shutil.copy2(src, out)


def _fix_source_downloads(outdir: Path) -> None:
    """The theme's download button serves _sources/<page>.ipynb: make it the course notebook for a lecture and the
    student version for an assignment (never the solution; not released yet: no download)."""
    sources = outdir / "_sources"
    for page in (sources / "lectures").glob("*.ipynb"):
        shutil.copyfile(ROOT / "course" / page.name, page)
    for page in (sources / "practice").glob("*.ipynb"):
        shutil.copyfile(ROOT / "course" / "practice" / page.name, page)
    for page in (sources / "assignments").glob("*.ipynb"):
        student = STUDENT / page.name
        if student.is_file():
            shutil.copyfile(student, page)
        else:
            page.unlink()


def _finish(app, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _copy_mathjax(outdir)
    _fix_source_downloads(outdir)


def setup(app):
    if not (MATHJAX / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"{MATHJAX} is missing: run `npm ci` in the repository root (MathJax for offline math)")
    generate()
    app.connect("source-read", fill_toc)
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
