"""nbgrader's formgrader shows a hostile graded notebook inertly (issue 13; DESIGN.md, principle 8).

The README's manual-grading route is nbgrader's formgrader, which renders the autograded notebook inside the
Jupyter server's origin: a script there could act as the instructor. A copy of the course root (this
repository's nbgrader_config.py) gets chapter 1 released into its gradebook and one graded submission whose
markdown and outputs try every way we know to run a script. One Jupyter server, one page in headless Chromium:
no script may run (each payload would record itself in ``window.__pwned`` or open a dialog), and the notebook
must still be shown. Needs Debian's chromium (`make browser`); skips, saying so, without it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from notebooks import ROOT
from released import gradebook_into
from test_lab import CHROMIUM, CHROMIUM_ARGS, SHOTS, _free_port, wait_for_jupyter

A = "ch01_univariate"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release")]
RECORD = "(window.__pwned=window.__pwned||[]).push"


def _payload(name: str) -> str:
    return f"{RECORD}('{name}')"


def _hostile(release: dict) -> dict:
    """The release with a student's markdown and outputs that would run scripts if rendered as they are."""
    nb = json.loads(json.dumps(release))
    markdown = (f"# Notes\n\n<script>{_payload('md-script')}</script>\n\n"
                f"<img src=x onerror=\"{_payload('md-img')}\">\n\n"
                f"<svg><animate onbegin=\"{_payload('md-svg')}\" attributeName=x dur=1s></svg>\n")
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {
            "text/html": f"<img src=x onerror=\"{_payload('html-img')}\"><script>{_payload('html-script')}</script>",
            "text/plain": "<IPython.core.display.HTML object>"}},
        {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": _payload("js")}},
        {"output_type": "display_data", "metadata": {}, "data": {
            "text/markdown": f"<script>{_payload('md-output')}</script>"
                             f"<img src=x onerror=\"{_payload('md-out-img')}\">"}},
        {"output_type": "display_data", "data": {"image/png": "not base64!"},
         "metadata": {"image/png": {"width": f"1 onerror={_payload('png-width')}"}}},
        {"output_type": "display_data", "data": {"image/png": f"x\" onerror=\"{_payload('png-data')}"},
         "metadata": {}},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {
            "image/svg+xml": f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{_payload('svg')}\"/>",
            "text/plain": "svg"}},
    ]
    at = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == "q1_answer")
    nb["cells"][at]["source"] = "def d_f1(x):\n    return 20 * x**4\n"
    nb["cells"][at]["outputs"] = outputs
    nb["cells"].insert(at, {"cell_type": "markdown", "id": "mallory-notes", "metadata": {}, "source": markdown})
    return nb


@pytest.fixture
def formgrader(tmp_path):
    """A Jupyter server with nbgrader's formgrader on a copy of the course root holding one hostile submission."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `make browser` installs Debian's chromium for the browser tests")
    pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[site]'")
    from nbgrader.api import Gradebook

    from autograder.grading import course

    home = tmp_path / "course"
    home.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", home / "nbgrader_config.py")
    data = home / "var"
    gradebook_into(data)
    nb = _hostile(course.read_release(A))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_DATA", str(data))
        with Gradebook(course.load_config().CourseDirectory.db_url) as gb:
            gb.update_or_create_student("mallory")
            submission_id = gb.add_submission(A, "mallory").notebooks[0].id
    graded = data / "autograded" / "mallory" / A
    graded.mkdir(parents=True)
    (graded / f"{A}.ipynb").write_text(json.dumps(nb), encoding="utf-8")

    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_DATA_DIR": str(home / ".local"),
           "JUPYTER_RUNTIME_DIR": str(home / ".runtime"), "AUTOGRADER_DATA": str(data)}
    for var in ("JUPYTER_PLATFORM_DIRS", "JUPYTER_CONFIG_PATH", "AUTOGRADER_DB_URL"):
        env.pop(var, None)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--allow-root",
         f"--ServerApp.root_dir={home}"], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_jupyter(server, url, token, tmp_path / "server.log", "jupyter server")
        yield {"url": url, "token": token, "submission": submission_id, "log": tmp_path / "server.log"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_the_formgrader_shows_a_hostile_notebook_without_running_its_scripts(formgrader):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1200, "height": 1600})
        local = (formgrader["url"], "data:", "blob:")
        ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local) else route.abort())
        page = ctx.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.set_default_timeout(60_000)
        try:
            response = page.goto(f"{formgrader['url']}/formgrader/submissions/{formgrader['submission']}/"
                                 f"?token={formgrader['token']}")
            assert response.status == 200, (formgrader["log"].read_text()[-3000:])
            page.wait_for_selector("#notebook-container")
            page.wait_for_timeout(2000)  # time for onerror/onload handlers and animations to fire
            ran = page.evaluate("() => window.__pwned || []")
            text = page.inner_text("#notebook-container")
            page.screenshot(path=str(SHOTS / "formgrader_hostile.png"), full_page=True)
        finally:
            browser.close()
    assert "Q1 — power and constant rules" in text and "Notes" in text and "20 * x**4" in text, text[:2000]
    assert ran == [] and dialogs == [], f"scripts ran in the formgrader: {ran} {dialogs}"
