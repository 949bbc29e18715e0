"""The course site built once per test run, and the notebooks as that build executed them.

The site build executes every lecture (myst-nb, into site/_build/.jupyter_cache); tests/test_notebooks.py
reads the lectures' outputs from that cache instead of running them a second time. pytest-xdist workers share
one build through a lock and a stamp naming the run (PYTEST_XDIST_TESTRUNUID). The cache is keyed by the
notebooks' code only, so it is emptied when the code the lectures call (autograder/) or the pinned
environment changed since it was filled: a cached lecture never hides a failure that code would now cause.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from notebooks import ROOT, release_lock

SITE = ROOT / "site"
OUT = SITE / "_build" / "html"
CACHE = SITE / "_build" / ".jupyter_cache"
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-mml-chtml.js"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
_DIGEST = SITE / "_build" / ".cache-code-digest"


class Unavailable(Exception):
    """The site cannot be built here (a missing extra or npm); the message says what to install."""


class BuildFailed(Exception):
    pass


def unavailable() -> str | None:
    import importlib.util

    for module in ("sphinx", "myst_nb", "jupyter_cache"):
        if importlib.util.find_spec(module) is None:
            return "the site needs the [site] extra: pip install -e '.[site]'"
    if not (MATHJAX.is_file() and AXE.is_file()) and shutil.which("npm") is None:
        return "node_modules/mathjax is missing and npm is not installed: run `npm ci` for the site"
    return None


def _code_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "autograder").rglob("*.py")) + [ROOT / "requirements.lock"]:
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _build() -> str:
    """Build as `make site` does (warnings are errors); '' or the reason it failed."""
    if not (MATHJAX.is_file() and AXE.is_file()):
        subprocess.run([shutil.which("npm"), "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True,
                       capture_output=True)
    digest = _code_digest()
    if not _DIGEST.is_file() or _DIGEST.read_text() != digest:
        shutil.rmtree(CACHE, ignore_errors=True)
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
           "VC4ML_PRACTICE_SEED": os.environ.get("VC4ML_PRACTICE_SEED", "20261129")}  # repeatable tests
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(SITE), str(OUT)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    took = time.perf_counter() - t0
    _DIGEST.parent.mkdir(parents=True, exist_ok=True)
    _DIGEST.write_text(digest)
    print(f"site built in {took:.1f} s")
    if proc.returncode:
        return f"sphinx-build failed after {took:.0f} s:\n{proc.stderr[-6000:]}"
    return ""


_DONE: dict[str, str] = {}   # this process's outcome, once known


def built() -> Path:
    """The built site (html folder), building it if no worker of this test run has; raises Unavailable or
    BuildFailed."""
    if "outcome" not in _DONE:
        why = unavailable()
        if why:
            raise Unavailable(why)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        stamp = OUT.parent / f".built-in-test-run-{run}" if run else None
        with open(OUT.parent / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if stamp is not None and stamp.exists():
                _DONE["outcome"] = stamp.read_text()
            else:
                with release_lock():  # the build copies solutions/ and exercises/
                    _DONE["outcome"] = _build()
                for old in OUT.parent.glob(".built-in-test-run-*"):
                    old.unlink()
                if stamp is not None:
                    stamp.write_text(_DONE["outcome"])
    if _DONE["outcome"]:
        raise BuildFailed(_DONE["outcome"])
    return OUT


def executed_lecture(path: Path):
    """The lecture (or practice notebook) as the site build executed it, or None when the site cannot be built
    here or did not execute it (the build failed on it): the caller then runs it itself, to show its own error."""
    return _executed(path)


def executed_exercise(name: str):
    """The exercise page of assignment ``name`` as the site build executed it: the solution with its visible
    self-checks, hidden tests cut (site/conf.py assignment_copy); None as for executed_lecture."""
    return _executed(SITE / "assignments" / f"{name}.ipynb")


def _executed(path: Path):
    import nbformat

    try:
        built()
    except Unavailable:
        return None
    except BuildFailed:
        pass  # the other lectures may still be in the cache
    from jupyter_cache import get_cache

    try:
        return get_cache(str(CACHE)).merge_match_into_notebook(nbformat.read(path, as_version=4))[1]
    except (KeyError, FileNotFoundError):
        return None
