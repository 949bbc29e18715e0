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
