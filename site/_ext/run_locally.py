"""Run it from the site: the course's check library as a wheel next to the pages, and a recipe on every page.

Every downloaded notebook starts with `from autograder import check`. The build makes a wheel of this project
(`pip wheel --no-deps`, the `autograder` package and its pinned dependencies as requirements) and publishes it at
the site's root, so a reader who has only the site runs a notebook with two commands:

    python -m venv .venv && .venv/bin/pip install <wheel>
    .venv/bin/jupyter lab <notebook>

The footer of every page (_templates/run-locally.html) links the wheel, the repository and the home page's
"Run it yourself"; the home page's slot `{{ run recipe }}` is filled with the same commands.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "site" / "_build" / "wheel"      # copied to the site's root (html_extra_path)
PACKAGE_FILES = ["pyproject.toml", "autograder/**/*.py"]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in PACKAGE_FILES:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_wheel() -> Path:
    """The project's wheel in WHEELHOUSE, rebuilt only when the package's sources changed."""
    stamp = WHEELHOUSE / ".fingerprint"
    fingerprint = _fingerprint()
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if len(wheels) == 1 and stamp.is_file() and stamp.read_text() == fingerprint:
        return wheels[0]
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(WHEELHOUSE), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    shutil.rmtree(ROOT / "build", ignore_errors=True)   # setuptools' in-tree scratch folder
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise RuntimeError(f"could not build the autograder wheel:\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(fingerprint)
    return wheels[0]


def recipe(wheel: str) -> str:
    """The two commands, in the folder holding the downloaded notebook and the wheel (POSIX shell)."""
    return f"python3 -m venv .venv && .venv/bin/pip install {wheel}\n.venv/bin/jupyter lab"


def _builder_inited(app) -> None:
    wheel = build_wheel()
    app.config.html_extra_path = [*app.config.html_extra_path, str(WHEELHOUSE)]
    app.config.course_wheel = wheel.name


def _fill_recipe(app, docname: str, source: list[str]) -> None:
    if docname == app.config.root_doc:
        wheel = app.config.course_wheel
        source[0] = (source[0].replace("{{ run recipe }}", recipe(wheel))
                     .replace("{{ wheel link }}", f'<a href="{wheel}" download>{wheel}</a>')
                     .replace("{{ repository link }}",
                              f"[course repository]({app.config.html_theme_options['repository_url']})"))


def _page_context(app, pagename, templatename, context, doctree) -> None:
    context["course_wheel"] = app.config.course_wheel
    context["course_recipe"] = recipe(app.config.course_wheel)
    context["course_repository"] = app.config.html_theme_options.get("repository_url", "")


def setup(app):
    app.add_config_value("course_wheel", "", "env")
    app.connect("builder-inited", _builder_inited)
    app.connect("source-read", _fill_recipe)
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
