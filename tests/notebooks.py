"""Helpers shared by the notebook tests: find notebooks and execute them with nbclient."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lectures() -> list[Path]:
    return sorted((ROOT / "course").glob("*.ipynb"))


def practice() -> list[Path]:
    return sorted((ROOT / "course" / "practice").glob("*.ipynb"))


def sources() -> list[Path]:
    return sorted((ROOT / "solutions").glob("*/*.ipynb"))


def releases() -> list[Path]:
    return sorted((ROOT / "exercises").glob("*/*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def execute(path: Path, timeout: int = 300):
    """Run a notebook top to bottom in its own folder, on CPU; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if "text" in out else json.dumps(out.get("data", {}).get("text/plain", ""), ensure_ascii=False))
    return "\n".join(parts)


@contextlib.contextmanager
def release_lock():
    """Serialise everything that rewrites or reads exercises/ across pytest-xdist workers (xdist_group marks are
    ignored by pytest 9 + xdist 3.8, so the file lock does the job)."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / f"vc4ml-release-{os.getuid()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
