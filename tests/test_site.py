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
from pathlib import Path

import pytest

import sitebuild
from notebooks import ROOT, lectures, sources

SITE = ROOT / "site"
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOCAL = ("file://", "data:", "blob:")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps"]
HIDDEN = re.compile(r"BEGIN HIDDEN TESTS|END HIDDEN TESTS")

# Meant for the pytest-xdist worker of the tests that regenerate exercises/ (group "release"). With pytest 9.2
# and pytest-xdist 3.8 the grouping has no effect, so the build also waits out a rewrite (conf.student_notebook).
pytestmark = pytest.mark.xdist_group("site")

LECTURES = [p.stem for p in lectures()]
ASSIGNMENTS = [p.stem for p in sources() if p.stem == p.parent.name]


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


@pytest.mark.slow
def test_front_pages_render_offline(page):
    for rel, min_math in [("index.html", 0), ("conventions.html", 20), ("references.html", 1), ("status.html", 0)]:
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
    except AssertionError:
        page.screenshot(path=str(SHOTS / f"site_{name}_FAILED.png"), full_page=True)
        raise
    if name == LECTURES[0]:
        page.screenshot(path=str(SHOTS / f"site_{name}.png"))


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
