"""Run it from the site: the course's check library as a wheel next to the pages, and a recipe on every page.

Every downloaded notebook starts with `from autograder import check`. The build writes a wheel of this project (the
`autograder` package, with the pinned dependencies of pyproject.toml as requirements) and publishes it at the
site's root, so a reader who has only the site runs a notebook with two commands:

    python3 -m venv .venv && .venv/bin/pip install <wheel>
    .venv/bin/jupyter lab

The footer of every page (_templates/run-locally.html) links the wheel, the repository and the home page's
"Run it yourself"; the home page's slot `{{ run recipe }}` is filled with the same commands.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tomllib
import zipfile
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


def _metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project.get('description', '')}", f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def write_wheel(folder: Path) -> Path:
    """A pure-Python wheel of the project's packages, written directly (PEP 427: the package files, METADATA,
    WHEEL, entry_points.txt, RECORD), so the build needs neither network nor a wheel-building backend."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project, packages = config["project"], config["tool"]["setuptools"]["packages"]
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    dist_info = f"{name}-{project['version']}.dist-info"
    files = {}
    for package in packages:
        folder_of = ROOT / package.replace(".", "/")
        for path in sorted(folder_of.glob("*.py")):
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = _metadata(project).encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: vc4ml-site\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n")
    scripts = project.get("scripts", {})
    if scripts:
        files[f"{dist_info}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
            f"{key} = {value}\n" for key, value in scripts.items())).encode()
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()
    wheel = folder / f"{name}-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel() -> Path:
    """The project's wheel in WHEELHOUSE, rewritten only when the package's sources changed."""
    stamp = WHEELHOUSE / ".fingerprint"
    fingerprint = _fingerprint()
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if len(wheels) == 1 and stamp.is_file() and stamp.read_text() == fingerprint:
        return wheels[0]
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    wheel = write_wheel(WHEELHOUSE)
    stamp.write_text(fingerprint)
    return wheel


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
                     .replace("{{ repository link }}", _repository_markdown(app)))


def _repository_markdown(app) -> str:
    """The repository as a link; without a known public address (conf.REPOSITORY_URL is empty) the page says
    so rather than invent one. The solutions and hidden tests it holds are never put on the site."""
    url = app.config.html_theme_options.get("repository_url", "")
    return f"[course repository]({url})" if url else "course repository (ask your teacher for its address)"


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
