"""The course site (site/, `make site`): built once per session, then read file by file and in headless Chromium.

The build reuses site/_build/.jupyter_cache, so only lectures whose code changed are executed again. Hidden tests
must never reach any published file; exercise downloads are the student version; math renders from the local
MathJax with no network at all. Browser tests need Debian's chromium (`make browser`) and skip, saying so,
without it. Screenshots go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sitebuild
from notebooks import ROOT, lectures, practice, sources

SITE = ROOT / "site"
SHOTS = ROOT / "tests" / "screenshots"
AXE = sitebuild.AXE
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOCAL = ("file://", "data:", "blob:")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps"]
HIDDEN = re.compile(r"BEGIN HIDDEN TESTS|END HIDDEN TESTS")

# Meant for the pytest-xdist worker of the tests that regenerate exercises/ (group "release"). With pytest 9.2
# and pytest-xdist 3.8 the grouping has no effect, so the build also waits out a rewrite (conf.student_notebook).
pytestmark = pytest.mark.xdist_group("site")

CHAPTER = re.compile(r"ch\d+_")
LECTURES = [p.stem for p in lectures() if CHAPTER.match(p.stem)]
COURSE_PAGES = [p.stem for p in lectures() if not CHAPTER.match(p.stem)]   # the errata: About, not a lecture
ASSIGNMENTS = [p.stem for p in sources() if p.stem == p.parent.name]
PRACTICE = [p.stem for p in practice() if CHAPTER.match(p.stem)]


@functools.cache
def _conf():
    """site/conf.py as a module (its notebook transforms are tested directly, without a build)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("site_conf", SITE / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the transforms, no build needed ----------------------------------------------------------------------------
def test_strip_hidden_tests_follows_nbgrader_and_refuses_to_leak():
    conf = _conf()
    source = "visible()\n### BEGIN HIDDEN TESTS\nsecret(1)\n### END HIDDEN TESTS\nalso_visible()\n"
    assert conf.strip_hidden_tests(source) == "visible()\nalso_visible()"
    assert conf.strip_hidden_tests("a\n    # BEGIN HIDDEN TESTS\n    b\n    # END HIDDEN TESTS") == "a"
    for broken in ["a\n### BEGIN HIDDEN TESTS\nsecret()", "### END HIDDEN TESTS\n",
                   "### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"]:
        with pytest.raises(ValueError):
            conf.strip_hidden_tests(broken)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_published_assignment_has_no_hidden_tests_and_folds_every_solution(name):
    conf = _conf()
    nb = conf.assignment_copy(ROOT / "solutions" / name / f"{name}.ipynb")
    text = "\n".join(c.source for c in nb.cells)
    assert not HIDDEN.search(text)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert all("nbgrader" not in c.metadata for c in nb.cells)
    source = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    answers = [c for c in source["cells"] if c["cell_type"] == "code"
               and c["metadata"].get("nbgrader", {}).get("solution")]
    folded = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])]
    assert len(folded) == len(answers) >= 1


@pytest.mark.parametrize("path", practice(), ids=lambda p: p.stem)
def test_practice_page_folds_every_solution_and_offers_the_notebook(path):
    nb = _conf().practice_copy(path)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions and all("hide-input" in c.metadata["tags"] for c in solutions)
    assert all(c.metadata["mystnb"]["code_prompt_show"] == "Show solution" for c in solutions)
    assert f"course/practice/{path.name}" in nb.cells[1].source + nb.cells[2].source


def _first(cells, kind="markdown"):
    return [c for c in cells if c.cell_type == kind]


def test_reading_order_is_each_lecture_then_its_exercise_then_its_practice():
    conf = _conf()
    entries = conf.chapter_entries()
    expected = []
    for stem in sorted(set(LECTURES) | set(ASSIGNMENTS) | set(PRACTICE)):
        expected += ([f"lectures/{stem}"] * (stem in LECTURES) + [f"assignments/{stem}"] * (stem in ASSIGNMENTS)
                     + [f"practice/{stem}"] * (stem in PRACTICE))
    assert entries == expected and len(entries) >= 2
    assert conf.about_entries() == [f"lectures/{stem}" for stem in COURSE_PAGES]
    assert conf.is_chapter("ch08_optimisation") and not conf.is_chapter("errata")


def test_new_chapters_and_the_errata_find_their_place(tmp_path):
    conf = _conf()
    for rel in ["course/ch01_a.ipynb", "course/ch10_c.ipynb", "course/ch09_b.ipynb", "course/errata.ipynb",
                "solutions/ch01_a/ch01_a.ipynb", "solutions/ch09_b/ch09_b.ipynb", "solutions/ch09_b/notes.ipynb",
                "course/practice/ch01_a.ipynb"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert conf.chapter_entries(tmp_path) == ["lectures/ch01_a", "assignments/ch01_a", "practice/ch01_a",
                                              "lectures/ch09_b",
                                              "assignments/ch09_b", "lectures/ch10_c"]
    assert conf.about_entries(tmp_path) == ["lectures/errata"]


@pytest.mark.parametrize("name", LECTURES)
def test_lecture_copy_ends_with_a_link_to_its_exercise(name):
    nb = _conf().lecture_copy(ROOT / "course" / f"{name}.ipynb")
    if name in ASSIGNMENTS:
        assert f"{{doc}}`../assignments/{name}`" in nb.cells[-1].source
    else:
        assert "../assignments/" not in nb.cells[-1].source


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_assignment_copy_starts_with_a_link_to_its_lecture(name):
    nb = _conf().assignment_copy(ROOT / "solutions" / name / f"{name}.ipynb")
    if name in LECTURES:
        assert f"{{doc}}`../lectures/{name}`" in nb.cells[1].source, nb.cells[1].source
    text = "\n".join(c.source for c in _first(nb.cells))
    assert not re.search(r"`course/[\w-]+\.ipynb`", text), "a lecture named by its repository path, not linked"


def test_figure_alt_text_comes_from_the_plot_titles():
    sys.path.insert(0, str(SITE / "_ext"))
    from accessibility import plot_titles

    code = ('ax.set_title(r"$x^3 - 3x$")\nfig.suptitle("area scales by det J", fontsize=9)\n'
            'ax2.set_title(f"slice {i} of {J.shape}")\nplt.title(label)\n')
    assert plot_titles(code) == ["x^3 - 3x", "area scales by det J", "slice … of …"]


# -- parallel execution (site/_ext/parallel_execution.py), on a small project of its own ----------------------
def _mini_site(folder: Path, notebooks: dict[str, list[str]], markdown_notebook: bool = True) -> None:
    """A Sphinx project with the site's execution settings and notebooks of one code cell list each."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(SITE / '_ext')!r})\n"
        "extensions = ['myst_nb', 'parallel_execution']\n"
        "exclude_patterns = ['_build']\n"
        "nb_execution_mode = 'cache'\n"
        "nb_execution_timeout = 10\n"
        "nb_execution_raise_on_error = True\n"
        "nb_execution_show_tb = True\n"
        "nb_kernel_rgx_aliases = {'.*': 'python3'}\n"
        "parallel_execution_jobs = 2\n", encoding="utf-8")
    docs = sorted(notebooks) + (["mdnb"] if markdown_notebook else [])
    (folder / "index.md").write_text("# Mini\n\n```{toctree}\n" + "\n".join(docs) + "\n```\n", encoding="utf-8")
    for name, cells in notebooks.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "some-other-kernel", "display_name": "K", "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}")] + [nbformat.v4.new_code_cell(c) for c in cells]
        nbformat.write(nb, folder / f"{name}.ipynb")
    if markdown_notebook:
        (folder / "mdnb.md").write_text("---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: P\n"
                                        "---\n\n# A MyST notebook\n\n```{code-cell}\nprint('from markdown', 2 * 21)\n```\n",
                                        encoding="utf-8")


def _sphinx(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", *extra, str(src), str(out)], cwd=src,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_parallel_execution_fills_the_cache_myst_nb_reads_and_fails_with_the_traceback(tmp_path):
    pytest.importorskip("myst_nb", reason="the site needs the [site] extra: pip install -e '.[site]'")
    src, out = tmp_path / "src", tmp_path / "_build" / "html"
    ok = ["answer = 6 * 7", "print('the answer is', answer)"]
    _mini_site(src, {"ok": ok, "broken": ["def broken_on_purpose():\n    return 1 / 0", "broken_on_purpose()"],
                     "slow": ["import time\ntime.sleep(120)"]})
    first = _sphinx(src, out)
    log = first.stdout + first.stderr
    assert first.returncode != 0, log
    assert "parallel execution: 4 notebook(s) on 2 process(es)" in log, log
    # the failing cell's traceback, in the log and in the report myst-nb would write
    assert "ZeroDivisionError" in log and "broken_on_purpose()" in log, log
    assert "CellTimeoutError" in log, log                                  # nb_execution_timeout applies per cell
    assert "ZeroDivisionError" in (out / "reports" / "broken.err.log").read_text(encoding="utf-8")
    assert "Executing notebook using" not in log, "myst-nb executed a notebook itself"

    # fixed: only the notebooks that failed run again; every notebook is then read from the cache
    _mini_site(src, {"ok": ok, "broken": ["print('fixed')"]})
    (src / "slow.ipynb").unlink()
    second = _sphinx(src, out)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    assert "parallel execution: 1 notebook(s) on 1 process(es)" in log, log
    for name in ["ok", "broken", "mdnb"]:
        assert re.search(rf"{name}\.(ipynb|md): Using cached notebook", log), (name, log)
    assert "Executing notebook using" not in log, "a cache miss: myst-nb executed a notebook again"
    assert "the answer is 42" in (out / "ok.html").read_text(encoding="utf-8")
    assert "from markdown 42" in (out / "mdnb.html").read_text(encoding="utf-8")

    # warm: a notebook read again with unchanged code is not executed
    os.utime(src / "ok.ipynb")
    third = _sphinx(src, out)
    log = third.stdout + third.stderr
    assert third.returncode == 0 and "parallel execution" not in log and "Executing notebook" not in log, log
    assert "ok.ipynb: Using cached notebook" in log, log

    # switched off: myst-nb's own serial execution, same pages
    serial_out = tmp_path / "serial" / "html"
    fourth = _sphinx(src, serial_out, "-D", "parallel_execution_jobs=1")
    log = fourth.stdout + fourth.stderr
    assert fourth.returncode == 0 and "parallel execution" not in log, log
    assert log.count("Executing notebook using") == 3, log
    assert "the answer is 42" in (serial_out / "ok.html").read_text(encoding="utf-8")


# -- the build ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site():
    """The site as `make site` builds it (warnings are errors), once per test run (tests/sitebuild.py)."""
    try:
        return sitebuild.built()
    except sitebuild.Unavailable as exc:
        pytest.skip(str(exc))
    except sitebuild.BuildFailed as exc:
        pytest.fail(str(exc), pytrace=False)


def _published_text(path: Path) -> str:
    """What a reader of this file sees: page text for HTML, cell sources and outputs for notebooks."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        return raw + "\n" + html.unescape(re.sub(r"<[^>]+>", "", raw))
    if path.suffix == ".ipynb":
        nb = json.loads(raw)
        return raw + "\n" + "\n".join("".join(c.get("source", "")) + "\n" + json.dumps(c.get("outputs", []))
                                      for c in nb.get("cells", []))
    return raw


def _squash(text: str) -> str:
    return " ".join(text.split())


def _hidden_snippets() -> dict[str, set[str]]:
    """Per assignment, what must never be published: each hidden-test block whole, and its first statement line
    (when that line appears in no public notebook), whitespace collapsed."""
    conf = _conf()
    public = set()
    for nb_path in lectures() + sources():
        for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
            try:
                public |= {_squash(l) for l in conf.strip_hidden_tests("".join(cell["source"])).splitlines()}
            except ValueError:
                pass
    snippets = {}
    for name in ASSIGNMENTS:
        found = set()
        for cell in json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            for block in re.findall(r"BEGIN HIDDEN TESTS[^\n]*\n(.*?)\n[^\n]*END HIDDEN TESTS", source, re.S):
                found.add(_squash(block))
                first = _squash(block.strip().splitlines()[0])
                if first not in public and len(first) >= 20:
                    found.add(first)
        snippets[name] = found
    return snippets


@pytest.mark.slow
def test_every_notebook_has_a_page_linked_from_the_home_page(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for name in LECTURES:
        assert (site / "lectures" / f"{name}.html").is_file(), name
        assert f'href="lectures/{name}.html"' in home, name
    for name in ASSIGNMENTS:
        assert (site / "assignments" / f"{name}.html").is_file(), name
        assert f'href="assignments/{name}.html"' in home, name
    for page in ["conventions", "references", "status", "search"]:
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.slow
def test_no_published_file_contains_a_hidden_test(site):
    hidden = _hidden_snippets()
    assert any(hidden.values()), "expected some hidden tests to look for"
    suffixes = {".html", ".ipynb", ".js", ".json", ".txt", ".md", ".py"}
    leaks = []
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path.suffix not in suffixes or "_static" in path.parts:
            continue
        text = _squash(_published_text(path))
        rel = path.relative_to(site)
        if HIDDEN.search(text):
            leaks.append(f"{rel}: a hidden-test delimiter")
        leaks += [f"{rel}: {name}: {snippet[:80]}" for name, found in hidden.items() for snippet in found
                  if snippet in text]
    assert not leaks, "hidden tests published:\n" + "\n".join(leaks[:20])


def _downloads(page: Path) -> list[Path]:
    html = page.read_text(encoding="utf-8")
    return [page.parent / href for href in re.findall(r'href="([^"]*_downloads/[^"]+\.ipynb)"', html)]


@pytest.mark.slow
@pytest.mark.parametrize("name", LECTURES)
def test_lecture_offers_its_notebook(site, name):
    original = (ROOT / "course" / f"{name}.ipynb").read_bytes()
    links = _downloads(site / "lectures" / f"{name}.html")
    assert len(links) == 1 and links[0].resolve().read_bytes() == original
    assert (site / "_sources" / "lectures" / f"{name}.ipynb").read_bytes() == original  # the theme's button


def _cells(text: str) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(text)["cells"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_exercise_page_offers_the_student_version_only(site, name):
    page = site / "assignments" / f"{name}.html"
    links = _downloads(page)
    button = site / "_sources" / "assignments" / f"{name}.ipynb"
    student = _conf().student_notebook(name)   # waits out a concurrent `release` rewriting exercises/
    if student is None:
        assert links == [] and not button.exists() and "not released yet" in page.read_text(encoding="utf-8")
        return
    assert len(links) == 1, links
    published = links[0].resolve().read_text(encoding="utf-8")
    assert _cells(published) == _cells(student), "the download is not the student version from exercises/"
    assert button.read_text(encoding="utf-8") == published
    assert "BEGIN SOLUTION" not in published and not HIDDEN.search(published)


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def _article(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index('<article class="bd-article"')
    return text[start:text.index("</article>", start)]


@pytest.mark.slow
def test_markdown_outputs_render_as_tables(site):
    pipes = re.compile(r"<p>\s*\|[^<]*\|")
    paragraphs = [f"{p.relative_to(site)}: {m[0][:80]}" for p in _pages(site)
                  for m in pipes.finditer(p.read_text(encoding="utf-8"))]
    assert not paragraphs, "Markdown tables rendered as paragraphs of pipes:\n" + "\n".join(paragraphs)
    for name in ["ch04_matrix_gradients", "ch05_backprop"]:
        page = site / "lectures" / f"{name}.html"
        if page.is_file():   # each generates several tables with display(Markdown(...))
            assert _article(page).count("<table") >= 3, name


def _next(page: Path) -> Path | None:
    found = re.search(r'<link rel="next"[^>]* href="([^"]+)"', page.read_text(encoding="utf-8"))
    return (page.parent / found[1]).resolve() if found else None


@pytest.mark.slow
def test_next_links_follow_the_course(site):
    order, page = [], (site / "index.html").resolve()
    while (page := _next(page)) is not None and len(order) < 200:
        order.append(page.relative_to(site.resolve()).with_suffix("").as_posix())
    chapters = _conf().chapter_entries()
    assert order[0] == "conventions", order
    assert order[1:1 + len(chapters)] == chapters, order
    about = order[1 + len(chapters):]
    assert about[0] == "references" and about[-1] == "status", about
    assert about[1:-1] == [f"lectures/{stem}" for stem in COURSE_PAGES], about


def _internal_links(article: str) -> list[str]:
    return [h for h in re.findall(r'<a class="reference internal" href="([^"#]+)[^"]*"', article)]


@pytest.mark.slow
@pytest.mark.parametrize("name", LECTURES)
def test_lecture_page_ends_with_its_exercise(site, name):
    links = _internal_links(_article(site / "lectures" / f"{name}.html"))
    if name in ASSIGNMENTS:
        assert links and links[-1] == f"../assignments/{name}.html", links[-3:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_exercise_page_starts_with_its_lecture(site, name):
    article = _article(site / "assignments" / f"{name}.html")
    links = _internal_links(article)
    if name in LECTURES:
        assert links and links[0] == f"../lectures/{name}.html", links[:3]
    assert "course/" not in re.sub(r"<[^>]+>", "", article).replace("../course/", ""), "a repository path"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_exercise_page_shows_the_check_line_under_each_solution(site, name):
    """The exercise copy runs at build time: the self-check after each folded solution shows its ✔ line."""
    cells = re.split(r'<div class="cell(?= |")', _article(site / "assignments" / f"{name}.html"))[1:]
    folds = [i for i, cell in enumerate(cells) if "tag_solution" in cell.split(">", 1)[0]]
    assert folds, "no folded solution"
    for i in folds:
        after = next((c for c in cells[i + 1:] if "cell_output" in c), "")
        shown = html.unescape(re.sub(r"<[^>]+>", "", after))
        assert "✔" in shown, f"no ✔ line after solution {folds.index(i) + 1}: {shown[:300]}"
    outputs = html.unescape(re.sub(r"<[^>]+>", "", "".join(cells)))
    assert "✘" not in outputs and "not answered" not in outputs


def _wheel(site: Path) -> Path:
    wheels = sorted(site.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_every_page_links_the_repository_and_says_how_to_run_it(site):
    conf = _conf()
    wheel = _wheel(site)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "autograder/check.py" in names or "autograder/check/__init__.py" in names, names[:20]
    assert not any(n.startswith(("solutions/", "exercises/", "tests/")) for n in names)
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(site)
        if conf.REPOSITORY_URL:   # no public address known: no link at all, never an invented one
            assert f'href="{conf.REPOSITORY_URL}"' in text, f"{rel}: no link to the repository"
        else:
            assert "the course repository</a>" not in text, rel
        recipe = re.search(r'<pre class="run-recipe">(.*?)</pre>', text, re.S)
        assert recipe and f"pip install {wheel.name}" in html.unescape(recipe[1]), f"{rel}: no recipe"
        link = re.search(rf'href="([^"]*{re.escape(wheel.name)})"', text)
        assert link and (page.parent / link[1]).resolve() == wheel.resolve(), f"{rel}: no link to the wheel"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "{{" not in html.unescape(re.sub(r"<[^>]+>", "", home)), "an unfilled slot on the home page"


# Run in the reader's environment: execute a notebook as JupyterLab's Run All would, keeping going past errors
# only in the student version (its unanswered questions raise).
RUN_NOTEBOOK = """import sys, nbformat, nbclient
name, stub = sys.argv[1], sys.argv[2] == "True"
nb = nbformat.read(name, as_version=4)
nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=stub).execute()
nbformat.write(nb, name.replace(".ipynb", ".run.ipynb"))
"""


def _fresh_venv(folder: Path) -> Path:
    """A virtual environment of the base interpreter that sees this test's packages (JAX, Jupyter) through a
    .pth line but not the checkout's editable `autograder`: only a wheel installed into it provides that."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    import sysconfig
    (Path(purelib) / "course_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return python


@pytest.mark.slow
def test_downloaded_notebooks_run_as_the_site_says(site, tmp_path):
    """A reader's path: download a lecture, an exercise and the wheel into an empty folder, install as the page
    says (here offline: --no-deps --no-index, the pinned dependencies coming from this test's environment)."""
    import nbformat
    from nbclient import NotebookClient

    wheel = _wheel(site)
    home = (site / "index.html").read_text(encoding="utf-8")
    recipe = html.unescape(re.search(r'<pre class="run-recipe">(.*?)</pre>', home, re.S)[1])
    install = next(line for line in recipe.splitlines() if "pip install" in line).split("&&")[-1].split()
    assert install[:2] == [".venv/bin/pip", "install"], recipe
    folder = tmp_path / "reader"
    folder.mkdir()
    # a lecture and the exercise of another chapter (a chapter's two downloads share the file name)
    lecture = LECTURES[0]
    exercise = next((name for name in ASSIGNMENTS if name != lecture), None)
    for page in [f"lectures/{lecture}.html"] + ([f"assignments/{exercise}.html"] if exercise else []):
        (download,) = _downloads(site / page)
        shutil.copyfile(download, folder / download.name)
    shutil.copyfile(wheel, folder / wheel.name)
    python = _fresh_venv(folder / ".venv")
    subprocess.run([str(folder / install[0]), *install[1:], "--no-deps", "--no-index"], cwd=folder, check=True,
                   capture_output=True, timeout=300)
    where = subprocess.run([str(python), "-c", "import autograder; print(autograder.__file__)"], cwd=folder,
                           check=True, capture_output=True, text=True).stdout
    assert str(folder / ".venv") in where, where

    kernels = tmp_path / "jupyter" / "kernels" / "python3"   # the reader's kernel: the fresh environment's python
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f",
                                                              "{connection_file}"],
                                                     "display_name": "reader", "language": "python"}))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JUPYTER_PATH": str(tmp_path / "jupyter"), "PYTHONPATH": ""}
    for name, stub in [(lecture, False)] + ([(exercise, True)] if exercise else []):
        proc = subprocess.run([str(python), "-c", RUN_NOTEBOOK, f"{name}.ipynb", str(stub)], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
        cells = json.loads((folder / f"{name}.run.ipynb").read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        outputs = "\n".join(json.dumps(o, ensure_ascii=False) for c in code for o in c["outputs"])
        if not stub:
            assert "✔" in outputs, f"{name}: no passing check"
        else:   # the student version: the set-up cell runs; the first self-check says what is missing
            assert not any(o["output_type"] == "error" for o in code[0]["outputs"]), code[0]["outputs"]
            assert "not answered yet" in outputs, outputs[:2000]


@pytest.mark.slow
def test_math_and_assets_are_local(site):
    assert (site / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', html)
        assert not remote, f"{page.relative_to(site)} loads {remote}"
    assert 'src="_static/mathjax/tex-mml-chtml.js' in (site / "conventions.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_execution_status_lists_every_lecture(site):
    text = (site / "status.html").read_text(encoding="utf-8")
    for name in LECTURES:
        assert f"lectures/{name}" in text, name


# -- in Chromium -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(site):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `make browser` installs Debian's chromium for the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[site]'")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1600})
    external, errors = [], []
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(LOCAL)
              else (external.append(route.request.url), route.abort()))
    pg = ctx.new_page()
    pg.external, pg.errors = external, errors
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()


def _open(page, rel: str) -> None:
    page.goto((sitebuild.OUT / rel).as_uri(), wait_until="load")
    page.evaluate("() => window.MathJax?.startup?.promise?.then(() => 1) ?? 1")  # wait for typesetting


RAW_TEX = re.compile(r"\\frac|\\partial|\\begin\{|\\mathbf|\$\$")
PROSE_TEXT = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('pre, code, mjx-container, script, style, .cell_output').forEach(e => e.remove());
  return copy.innerText;
}"""


def _assert_page_renders(page, rel: str, min_math: int, min_figures: int = 0) -> None:
    _open(page, rel)
    math = page.locator("mjx-container").count()
    assert math >= min_math, f"{rel}: {math} typeset formulas, expected at least {min_math}"
    assert page.locator("mjx-merror").count() == 0, f"{rel}: MathJax reports a TeX error"
    red = page.evaluate("""() => [...document.querySelectorAll('mjx-container [style*="color: red"], mjx-container [color="red"]')]
                                 .map(e => e.closest('mjx-container').getAttribute('aria-label') || e.textContent).slice(0, 5)""")
    assert not red, f"{rel}: undefined TeX macros (drawn in red): {red}"
    raw = sorted(set(RAW_TEX.findall(page.evaluate(PROSE_TEXT))))
    assert not raw, f"{rel}: raw TeX left in the prose: {raw}"
    images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])")
    broken = [src for src, width in images if not width]
    assert not broken, f"{rel}: images that did not load: {broken}"
    figures = sum(1 for src, width in images if width and width > 100 and "_images/" in (src or ""))
    assert figures >= min_figures, f"{rel}: {figures} figures, expected at least {min_figures}"
    assert page.external == [], f"{rel}: requests off this machine: {page.external}"
    assert page.errors == [], f"{rel}: JavaScript errors: {page.errors}"
    _assert_accessible(page, rel)


# Moderate and minor findings axe reports on the theme's markup (the logo outside a landmark) and on tables whose
# first header cell is empty; they are recorded in tests/screenshots/axe.json, not failed on.
AXE_FAILS_ON = {"critical", "serious"}


# Two of axe's rules cost most of its time on a long page (on a lecture, about 30 s and 20 s on a busy 2-core
# machine): they are checked on every other page, which share the lectures' theme, cell and output styles.
AXE_SLOW_RULES = ["color-contrast", "target-size"]


def _assert_accessible(page, rel: str) -> None:
    """axe-core (node_modules, pinned in package.json) on the page as typeset; alt text on every figure."""
    page.add_script_tag(path=str(AXE))
    skip = AXE_SLOW_RULES if rel.startswith("lectures/") and rel[len("lectures/"):-5] in LECTURES else []
    result = page.evaluate("""skip => axe.run(document, {resultTypes: ['violations'],
        rules: Object.fromEntries(skip.map(r => [r, {enabled: false}]))})""", skip)
    counts = {impact: 0 for impact in ["critical", "serious", "moderate", "minor"]}
    failing = []
    for v in result["violations"]:
        counts[v["impact"]] = counts.get(v["impact"], 0) + len(v["nodes"])
        if v["impact"] in AXE_FAILS_ON:
            failing += [f"{v['id']} ({v['impact']}): {n['html'][:120]}" for n in v["nodes"][:3]]
    record = SHOTS / "axe.json"
    table = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    table[rel] = counts | {"rules": sorted({v["id"] for v in result["violations"]})}
    record.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
    assert not failing, f"{rel}: axe-core violations:\n" + "\n".join(failing)
    unnamed = page.evaluate("""() => [...document.querySelectorAll('main img')]
        .map(i => i.getAttribute('alt') || '').filter(a => !a || /\\.(png|svg|jpe?g)$/.test(a))""")
    assert not unnamed, f"{rel}: figures without alt text: {unnamed[:3]}"
    summaries = page.evaluate("""() => [...document.querySelectorAll('main details > summary')]
        .filter(s => s.hasAttribute('aria-label')).map(s => s.getAttribute('aria-label'))""")
    assert not summaries, f"{rel}: a fold is named {summaries[:1]}, not by the text it shows"


@pytest.mark.slow
def test_front_pages_render_offline(page):
    front = [("index.html", 0), ("conventions.html", 20), ("references.html", 1), ("status.html", 0),
             ("genindex.html", 0), ("search.html", 0)] + [(f"lectures/{name}.html", 0) for name in COURSE_PAGES]
    for rel, min_math in front:
        _assert_page_renders(page, rel, min_math)
    _open(page, "index.html")
    page.screenshot(path=str(SHOTS / "site_index.png"), full_page=False)
    assert page.locator("nav a[href='conventions.html']").count() >= 1
    _open(page, "conventions.html")
    assert "✔ Jacobian of f" in page.inner_text("main") and "transpose" in page.inner_text("main")


@pytest.mark.slow
@pytest.mark.parametrize("name", LECTURES)
def test_lecture_renders_math_output_and_figures_offline(page, name):
    try:
        _assert_page_renders(page, f"lectures/{name}.html", min_math=10, min_figures=1)
        text = page.inner_text("main")
        assert "jax " in text and "x64: True" in text, "the set-up cell's output (check.environment()) is missing"
        assert "✔" in text, "no passing check in the executed lecture"
        page.set_viewport_size({"width": 1366, "height": 900})
        wide = page.evaluate(WIDER_THAN_COLUMN)
        assert not wide, f"code or output wider than its column at 1366 px: {wide[:3]}"
    except AssertionError:
        page.screenshot(path=str(SHOTS / f"site_{name}_FAILED.png"), full_page=True)
        raise
    if name == LECTURES[0]:
        page.screenshot(path=str(SHOTS / f"site_{name}.png"))


# Blocks of code or printed output that scroll sideways: [first line, block width, column width].
WIDER_THAN_COLUMN = """() => [...document.querySelectorAll('main pre')]
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => [(e.textContent || '').split('\\n')[0].slice(0, 60), e.scrollWidth, e.clientWidth])"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_exercise_page_folds_solutions(page, name):
    _assert_page_renders(page, f"assignments/{name}.html", min_math=1)
    folds = page.locator("details.hide:has(summary:has-text('Show solution'))")
    n = folds.count()
    assert n >= 1
    first = folds.first
    code = first.locator(".cell_input")
    assert not code.is_visible(), "a solution is visible before the reader opens it"
    first.locator("summary").click()
    assert code.is_visible() and "def " in code.inner_text()
    assert "BEGIN SOLUTION" not in code.inner_text()
    # the question comes before its folded solution
    headings = page.evaluate("""() => { const d = document.querySelector('details.hide');
        return [...document.querySelectorAll('main h2')].filter(h => h.compareDocumentPosition(d) & 4).length }""")
    assert headings >= 1, "the first solution is not after a question"
    if name == ASSIGNMENTS[0]:
        first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"site_{name}_solution_open.png"))


@pytest.fixture(scope="module")
def served(site):
    """The site on a local web server, as it would be hosted (Sphinx's search fetches result pages for their
    summaries, which a file:// page may not do)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_search_works_offline(page, served):
    page.context.unroute("**/*")
    page.context.route("**/*", lambda route: route.continue_() if route.request.url.startswith((served,) + LOCAL)
                       else (page.external.append(route.request.url), route.abort()))
    page.goto(f"{served}/search.html?q=jacobian", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=30000)
    hits = page.locator("#search-results ul.search li")
    assert hits.count() >= 2
    linked = " ".join(hits.nth(i).locator("a").first.get_attribute("href") or "" for i in range(hits.count()))
    assert "lectures/" in linked
    page.screenshot(path=str(SHOTS / "site_search.png"))
    assert page.external == [] and page.errors == []
