"""The student's JupyterLab (`make lab`), driven in headless Chromium.

JupyterLab starts as `make lab` starts it (JUPYTER_CONFIG_PATH=lab/: nbgrader's assignment list and Validate, no
formgrader, no create-assignment), on 127.0.0.1 with a random free port and a token, in a throw-away copy of the
course root holding the released chapter 1 exercise, so running cells and Validate (which saves the notebook)
never touch the repository. The test runs every cell of the untouched exercise and expects a self-check verdict,
presses Validate (one line per question, autograder.lab), opens the assignment list, fetches the released
exercise from the exchange, and stops the server through its API. The round trip test then answers Q1,
validates, submits through the Assignment List (student id alice: NBGRADER_STUDENT_ID), collects from the
exchange, autogrades and opens the student's feedback page. Needs Debian's chromium
(`make browser`); skips, saying so, without it. Screenshots go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from notebooks import ROOT

ASSIGNMENT = "ch01_univariate"
STUDENT = "alice"
NOTEBOOK = f"exercises/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps"]
VERDICT = re.compile(r"[✔✘] [^\n]+")

# Meant for the pytest-xdist worker of the tests that regenerate exercises/ (group "release"), which this test
# copies; the grouping has no effect with pytest 9.2 + xdist 3.8, so the copy also waits out a rewrite.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lab")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for_jupyter(server, url: str, token: str, log, name: str, wait: float = 90) -> None:
    """Until the Jupyter server at ``url`` answers (failing with its log if it exits or stays silent)."""
    deadline = time.monotonic() + wait
    while True:
        assert server.poll() is None, f"{name} exited:\n" + log.read_text()[-3000:]
        try:
            if _get(f"{url}/api/status", token) == 200:
                return
        except OSError:
            pass                                           # not listening yet
        assert time.monotonic() < deadline, f"{name} did not answer within {wait:.0f} s"
        time.sleep(0.5)


def _released_notebook(wait: float = 60.0) -> str:
    """The exercise as released; `release` (run by other tests at the same time) may be rewriting it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            text = (ROOT / NOTEBOOK).read_text(encoding="utf-8")
            json.loads(text)
            return text
        except (FileNotFoundError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def lab(tmp_path):
    """A student JupyterLab on a copy of the course root; stopped (and checked to stop) after the tests."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `make browser` installs Debian's chromium for the browser tests")
    pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[site]'")
    if not (ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file():
        pytest.skip(f"no {ASSIGNMENT} assignment")
    psutil = pytest.importorskip("psutil")
    home = tmp_path / "student"
    (home / NOTEBOOK).parent.mkdir(parents=True)
    (home / NOTEBOOK).write_text(_released_notebook(), encoding="utf-8")
    shutil.copy2(ROOT / "nbgrader_config.py", home / "nbgrader_config.py")  # its data dir becomes <home>/var
    (home / "var" / "exchange").mkdir(parents=True)
    (home / "var" / "student").mkdir(parents=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ,
           "NBGRADER_STUDENT_ID": STUDENT,     # who submits (lab/nbgrader_config.py)
           "JUPYTER_CONFIG_PATH": str(ROOT / "lab"),           # what `make lab` sets: the student-side config
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),       # nothing from this machine's user config
           "JUPYTER_DATA_DIR": str(home / ".local"),
           "JUPYTER_RUNTIME_DIR": str(home / ".runtime"),
           "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    for var in ("JUPYTER_PLATFORM_DIRS", "AUTOGRADER_DATA", "AUTOGRADER_DB_URL"):
        env.pop(var, None)
    env["AUTOGRADER_DATA"] = str(home / "var")      # lab/nbgrader_config.py: the exchange and var/student here
    release = subprocess.run([sys.executable, "-m", "nbgrader", "release_assignment", "--force", ASSIGNMENT],
                             cwd=home, env=env, capture_output=True, text=True, timeout=300)   # as `make lab`
    assert release.returncode == 0, release.stdout + release.stderr
    log = open(home / "lab.log", "w")
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--allow-root",
         f"--ServerApp.root_dir={home}", f"--LabApp.user_settings_dir={home / 'settings'}",
         f"--LabApp.workspaces_dir={home / 'workspaces'}"],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_jupyter(server, url, token, home / "lab.log", "jupyter lab")
        yield {"url": url, "token": token, "home": home, "env": env, "started": started}
        children = psutil.Process(server.pid).children(recursive=True)
        assert _get(f"{url}/api/shutdown", token, method="POST") == 200
        assert server.wait(timeout=60) == 0, "jupyter lab did not exit cleanly"
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"processes left behind: {[p.cmdline() for p in alive]}"
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


def _menu(page, menu: str, command: str) -> None:
    page.click(f".lm-MenuBar-item:has-text('{menu}')")
    page.click(f".lm-Menu-item[data-command='{command}']")


# JupyterLab renders only the cells near the viewport: scroll to the top (set-up cell, Q1 and its self-check) and
# look for a verdict line in the outputs there.
FIRST_VERDICT = """() => {
    document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')?.scrollTo(0, 0);
    const out = [...document.querySelectorAll('.jp-OutputArea-output')].find(o => /[✔✘] /.test(o.textContent));
    return out ? out.textContent : null }"""


STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-InputPrompt')]
    .some(p => /\\[[0-9*]+\\]/.test(p.textContent))"""

def _offline_page(ctx, lab, *also: str):
    """A page that may load only from the lab server (and ``also``): any other request is
    aborted and recorded in ``external``; page errors go to ``errors``."""
    external, errors = [], []
    local = (lab["url"], lab["url"].replace("http", "ws"), "data:", "blob:", *also)
    ctx.route("**/*", lambda route: route.continue_()
              if route.request.url.startswith(local)
              else (external.append(route.request.url), route.abort()))
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, external, errors



def test_student_runs_the_exercise_validates_and_sees_the_assignment_list(lab):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
        page, external, errors = _offline_page(ctx, lab)
        page.set_default_timeout(90_000)
        try:
            # 1. open the exercise; the kernel is up when the toolbar names it
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
            page.wait_for_selector(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName:has-text('Python 3')")

            # 2. Run > Run All Cells: the untouched exercise stops at Q1's self-check with a one-line verdict.
            # On a busy machine the toolbar can name the kernel before its session takes requests, and a Run All
            # sent then is dropped; it is sent again only while no cell has started.
            with contextlib.suppress(Exception):
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            _menu(page, "Run", "runmenu:run-all")
            deadline, resend = time.monotonic() + 420, time.monotonic() + 60  # liveness bounds
            while not (verdict := page.evaluate(FIRST_VERDICT)):
                assert time.monotonic() < deadline, "no self-check verdict within 420 s of Run All"
                if time.monotonic() > resend and not page.evaluate(STARTED):
                    _menu(page, "Run", "runmenu:run-all")
                    resend = time.monotonic() + 60
                page.wait_for_timeout(500)
            line = VERDICT.search(verdict).group(0)
            assert line.startswith("✘") and "not answered yet" in line, line
            page.wait_for_timeout(500)
            page.evaluate(FIRST_VERDICT)
            assert "x64: True" in page.inner_text(".jp-NotebookPanel"), \
                "the set-up cell did not run (check.environment() prints the JAX set-up)"
            page.screenshot(path=str(SHOTS / "lab_run_all.png"))

            # 3. nbgrader's Validate button (in the notebook toolbar) runs nbgrader validate on the saved notebook
            button = page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='runAll']:has-text('Validate')")
            assert button.count() == 1, "nbgrader's Validate button is missing from the notebook toolbar"
            button.click()
            dialog = page.wait_for_selector(".jp-Dialog:has-text('Validation Results')", timeout=420_000)
            text = dialog.inner_text()
            # one line per question (autograder.lab), under a count; never a test cell's source
            assert "0 of " in text and "questions pass" in text and "Q1" in text, text[:2000]
            assert "not answered" in text and "assert_passed" not in text, text[:2000]
            page.screenshot(path=str(SHOTS / "lab_validate.png"))
            page.click(".jp-Dialog .jp-mod-accept")
            page.wait_for_selector(".jp-Dialog", state="detached")

            # 4. the Nbgrader menu offers the assignment list, and nothing of the instructor's side
            page.click(".lm-MenuBar-item:has-text('Nbgrader')")
            items = page.evaluate("""() => [...document.querySelectorAll('.lm-Menu-item')]
                .filter(e => getComputedStyle(e).display !== 'none').map(e => e.getAttribute('data-command'))""")
            assert "nbgrader:open-assignment-list" in items, items
            assert not [c for c in items if c and ("formgrader" in c or "create-assignment" in c)], items
            page.click(".lm-Menu-item[data-command='nbgrader:open-assignment-list']")
            panel = page.wait_for_selector("#nbgrader-assignment-list:has-text('Released assignments')")
            assert "Downloaded assignments" in panel.inner_text() and "Submitted assignments" in panel.inner_text()
            # the released exercise is listed (course vc4ml, from the exchange) and fetches into var/student/
            page.wait_for_selector(f"#released_assignments_list:has-text('{ASSIGNMENT}')", timeout=120_000)
            page.click("#released_assignments_list button:has-text('Fetch')")
            page.wait_for_selector(f"#fetched_assignments_list:has-text('{ASSIGNMENT}')", timeout=120_000)
            fetched = lab["home"] / "var" / "student" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            assert fetched.is_file(), sorted(str(p) for p in lab["home"].rglob("*.ipynb"))
            page.screenshot(path=str(SHOTS / "lab_assignment_list.png"))
        except Exception:
            page.screenshot(path=str(SHOTS / "lab_failure.png"))
            raise
        finally:
            browser.close()
    assert _get(f"{lab['url']}/formgrader", lab["token"]) == 404, "the formgrader is served to students"
    assert external == [], f"requests off this machine: {external}"
    assert errors == [], f"JavaScript errors: {errors}"


def test_validate_answers_with_one_line_per_question(tmp_path):
    """The Validate button's server side (autograder.lab, enabled in lab/): a right answer, a wrong one and
    stubs give a ✔ line, a ✘ line with its diagnosis and "not answered", with a count and no test source."""
    import nbformat

    from autograder.lab import TeachingValidator

    nb = nbformat.reads(_released_notebook(), as_version=4)
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
           if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    assert len(ids) >= 3, ids
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == ids[0]:
            cell.source = "\n".join(l for l in answers[grade_id].splitlines() if "SOLUTION" not in l)
        elif grade_id == ids[1]:        # a wrong answer with the right name: the stub's function, returning 0
            name = re.search(r"def (\w+)\(([^)]*)\)", cell.source)
            cell.source = f"def {name[1]}({name[2]}):\n    return 0.0 * {name[2].split(',')[0]}"
    path = tmp_path / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    result = TeachingValidator().validate(str(path))
    (failed,) = result["failed"]
    lines = failed["source"].splitlines()
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert len(lines) == len(tests), lines
    assert lines[0].startswith("Q1") and "✔" in lines[0], lines[0]
    assert lines[1].startswith("Q2") and "✘" in lines[1] and len(lines[1]) > 20, lines[1]
    assert all(line.endswith("not answered") for line in lines[2:]), lines
    assert failed["raw_error"].startswith(f"1 of {len(lines)} questions pass"), failed["raw_error"]
    for cell in tests:    # the dialog shows verdicts, never a test cell's code
        leaked = [code for code in map(str.strip, cell.source.splitlines()) if len(code) > 12
                  and code in failed["source"]]
        assert not leaked, leaked
    print("\n".join(lines))


def _answer_first_question(path) -> str:
    """Write the solution's Q1 answer into the fetched notebook's first answer cell (as
    a student would type it, without the solution markers); return its grade id."""
    import nbformat

    def answers(nb):
        return [c for c in nb.cells if c.cell_type == "code"
                and c.metadata.get("nbgrader", {}).get("solution")]

    nb = nbformat.read(path, as_version=4)
    solution = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cell, grade_id = answers(nb)[0], answers(nb)[0].metadata["nbgrader"]["grade_id"]
    (right,) = [c.source for c in answers(nbformat.read(solution, as_version=4))
                if c.metadata["nbgrader"]["grade_id"] == grade_id]
    cell.source = "\n".join(l for l in right.splitlines() if "SOLUTION" not in l)
    nbformat.write(nb, path)
    return grade_id


def _instructor(lab, *args: str, timeout: float = 600) -> str:
    """`python -m autograder ...` on the test's data folder (<home>/var) and course root
    (<home>, a copy), as the instructor runs it, without the student's lab config."""
    env = {k: v for k, v in lab["env"].items()
           if k not in ("JUPYTER_CONFIG_PATH", "NBGRADER_STUDENT_ID")}
    env["AUTOGRADER_COURSE_ROOT"] = str(lab["home"])
    r = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    said = f"autograder {' '.join(args)}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    assert r.returncode == 0, said
    return r.stdout


SCORES = """() => [...document.querySelectorAll('tr')]
    .filter(r => r.cells[0].tagName === 'TD')
    .map(r => [r.cells[0].textContent, r.cells[1].className, r.cells[1].textContent])"""


def test_round_trip_fetch_answer_validate_submit_collect_autograde_feedback(lab):
    """The student fetches ch01 in the Assignment List; Q1 is answered by editing the
    fetched file before it is opened (the solution's answer); Validate in the notebook
    says 1 question passes; Submit in the Assignment List puts it into the exchange;
    the instructor's release, collect --exchange, autograde and feedback run as
    subprocesses; the feedback page, opened in Chromium, gives Q1 its points and the others 0."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    home = lab["home"]
    fetched = home / "var" / "student" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
        page, external, errors = _offline_page(ctx, lab, "file:")
        page.set_default_timeout(120_000)
        try:
            # 1. fetch in the Assignment List
            page.goto(f"{lab['url']}/lab?token={lab['token']}")
            page.wait_for_selector(".lm-MenuBar-item:has-text('Nbgrader')")
            _menu(page, "Nbgrader", "nbgrader:open-assignment-list")
            listed = "#{}_assignments_list:has-text('" + ASSIGNMENT + "')"
            page.wait_for_selector(listed.format("released"))
            page.click("#released_assignments_list button:has-text('Fetch')")
            page.wait_for_selector(listed.format("fetched"))
            assert fetched.is_file(), sorted(str(p) for p in home.rglob("*.ipynb"))

            # 2. answer Q1 in the fetched file, open it, Validate: one question passes
            _answer_first_question(fetched)
            where = fetched.relative_to(home)
            page.goto(f"{lab['url']}/lab/tree/{where}?token={lab['token']}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
            page.click(".jp-NotebookPanel-toolbar [data-jp-item-name='runAll']"
                       ":has-text('Validate')")
            dialog = page.wait_for_selector(".jp-Dialog:has-text('Validation Results')",
                                            timeout=420_000)
            print(f"\nserver start to the first verdict (Validate): "
                  f"{time.monotonic() - lab['started']:.1f} s")
            text = dialog.inner_text()
            assert "1 of " in text and "questions pass" in text, text[:2000]
            assert "✔" in text and "not answered" in text, text[:2000]
            page.screenshot(path=str(SHOTS / "lab_roundtrip_validate.png"))
            page.click(".jp-Dialog .jp-mod-accept")
            page.wait_for_selector(".jp-Dialog", state="detached")

            # 3. Submit in the Assignment List: into the exchange's inbound folder
            _menu(page, "Nbgrader", "nbgrader:open-assignment-list")
            page.click(f"#fetched_assignments_list .list_item:has-text('{ASSIGNMENT}') "
                       "button:has-text('Submit')")
            page.wait_for_selector(listed.format("submitted"))
            inbound = home / "var" / "exchange" / "vc4ml" / "inbound"
            names = [d.name.split("+")[:2] for d in inbound.iterdir()]
            assert names == [[STUDENT, ASSIGNMENT]], names
            page.screenshot(path=str(SHOTS / "lab_roundtrip_submitted.png"))
        except Exception:
            page.screenshot(path=str(SHOTS / "lab_roundtrip_failure.png"))
            browser.close()
            raise

        # 4. the instructor: release (records the tests in the gradebook), collect from
        # the exchange, autograde, feedback
        source = ROOT / "solutions" / ASSIGNMENT
        shutil.copytree(source, home / "solutions" / ASSIGNMENT)
        _instructor(lab, "release", ASSIGNMENT)
        out = _instructor(lab, "collect", ASSIGNMENT, "--exchange")
        assert STUDENT in out and "collected" in out, out
        _instructor(lab, "autograde", ASSIGNMENT, "--jobs", "1")
        _instructor(lab, "feedback", ASSIGNMENT)

        # 5. the student's feedback page: Q1 full marks, every other question 0
        feedback = home / "var" / "feedback" / STUDENT / ASSIGNMENT / "feedback.html"
        try:
            page.goto(feedback.as_uri())
            rows = page.evaluate(SCORES)
            print(f"server start to the feedback page: "
                  f"{time.monotonic() - lab['started']:.1f} s")
            shot = SHOTS / "lab_roundtrip_feedback.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert len(rows) >= 3 and rows[0][0] == "Q1" and rows[0][1] == "full", rows
    assert all(cls == "zero" and score.startswith("0 /")
               for _, cls, score in rows[1:]), rows
    assert external == [], f"requests off this machine: {external}"
    assert errors == [], f"JavaScript errors: {errors}"
