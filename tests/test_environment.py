"""One pinned dependency set: pyproject.toml, environment.yml and requirements.lock agree."""

import re
import tomllib

import yaml

from notebooks import ROOT


def _pins(lines):
    return {re.split(r"==", l)[0].strip().lower(): l.split("==")[1].strip() for l in lines if "==" in l}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + [d for g in ("dev", "site") for d in project["optional-dependencies"][g]])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip) == wanted
    assert all("==" in d for d in project["dependencies"]), "every direct dependency is pinned"


def test_lock_file_agrees_with_the_direct_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + [d for g in ("dev", "site") for d in project["optional-dependencies"][g]])
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    assert {k: lock.get(k) for k in wanted} == wanted


def test_the_grading_stack_imports_without_building_a_uri_grammar():
    # jsonschema >= 4.25 imports rfc3987-syntax when present, which builds a Lark grammar at import: 3 s of CPU
    # in every process that imports nbformat (grader, workers, notebook runs). The lock pins jsonschema 4.24.
    import subprocess
    import sys

    code = ("import sys, nbformat, nbclient, nbgrader.apps.api, jupyter_events; "
            "print(sorted(m for m in ('rfc3987_syntax', 'lark') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", f"slow import back: {loaded}"
