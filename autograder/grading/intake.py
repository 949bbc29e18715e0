"""What students do to notebooks, made gradable (issue 7, item 3) before nbgrader sees the submission.

:func:`stage` copies one submission into a private staging folder that the worker's nbgrader reads instead of
``submitted/`` (the submitted files stay untouched). On the way it

* finds the notebook: ``<assignment>.ipynb``, or the one other notebook in the folder (a wrong file name), or the
  one whose cells carry the assignment's grade ids;
* refuses, with a reason, what cannot be graded: no notebook, an empty, binary or oversized file, invalid JSON,
  JSON that is not a notebook;
* repairs what nbgrader would trip on or misgrade: cells that are not objects, unknown cell types, malformed
  nbgrader metadata, grade ids the assignment does not have, duplicated (copied or split) cells, changed points,
  flags or cell types of the instructor's cells, locked cells that were deleted (put back where they were), a
  changed kernelspec, missing or duplicate cell ids, stored outputs of any size;
* copies the other files of the submission that are regular files of reasonable size (no links);
* notes each of these for the student's report.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import course

MAX_NOTEBOOK = 100 * 2**20   # bytes of .ipynb we are willing to parse
MAX_FILE = 20 * 2**20        # any other submitted file
MAX_FILES = 200
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
NB_KEYS = ("grade", "solution", "locked", "task")


@dataclass
class Intake:
    student: str
    folder: Path | None = None           # staged <stage>/<student>/<assignment>/, or None if ungradable
    problem: str = ""                    # why it cannot be graded
    notes: list[str] = field(default_factory=list)


def _grade_ids(nb) -> set[str]:
    out = set()
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        gid = meta.get("nbgrader", {}).get("grade_id") if isinstance(meta, dict) and isinstance(
            meta.get("nbgrader"), dict) else None
        if isinstance(gid, str):
            out.add(gid)
    return out


def _read(path: Path) -> tuple[dict | None, str]:
    """(notebook dict, "") or (None, the reason it is not one)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"cannot read {path.name}: {exc.strerror}"
    if size == 0:
        return None, f"{path.name} is an empty file"
    if size > MAX_NOTEBOOK:
        return None, f"{path.name} is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK // 2**20} MB limit (clear its outputs)"
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, f"{path.name} is not a text file (binary data, not a notebook)"
    if "\x00" in text:
        return None, f"{path.name} is not a text file (binary data, not a notebook)"
    try:
        nb = json.loads(text)
    except RecursionError:
        return None, f"{path.name} is not valid JSON (nested too deeply)"
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        return None, f"{path.name} is not valid JSON ({msg} at line {getattr(exc, 'lineno', '?')}): a broken notebook file"
    if isinstance(nb, dict) and "worksheets" in nb and "cells" not in nb:
        try:
            import nbformat

            nb = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
        except Exception:
            return None, f"{path.name} is an old-format notebook that cannot be converted"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, f"{path.name} is JSON but not a Jupyter notebook (no list of cells)"
    return nb, ""


def _choose(src: Path, assignment: str, wanted: set[str]) -> tuple[Path | None, str, str]:
    """(notebook path, note, problem)."""
    expected = src / f"{assignment}.ipynb"
    if expected.is_symlink():
        return None, "", f"{assignment}.ipynb is a link, not a file"
    if expected.is_file():
        return expected, "", ""
    others = sorted(p for p in src.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if not others:
        present = sorted(p.name for p in src.iterdir())[:5] if src.is_dir() else []
        extra = f" (the folder holds: {', '.join(present)})" if present else " (the folder is empty)"
        return None, "", f"no notebook submitted: {assignment}.ipynb is missing{extra}"
    if len(others) == 1:
        return others[0], f"the notebook was named {others[0].name}; graded it as {assignment}.ipynb", ""
    scored = []
    for p in others:
        nb, _ = _read(p)
        scored.append((len(_grade_ids(nb) & wanted) if nb else -1, p))
    best = max(scored, key=lambda t: t[0])
    if best[0] <= 0:
        return None, "", f"{assignment}.ipynb is missing and none of {', '.join(p.name for p in others)} is this assignment"
    return best[1], (f"{assignment}.ipynb is missing; graded {best[1].name}, the notebook that holds this "
                     f"assignment's cells (also found: {', '.join(p.name for p in others if p != best[1])})"), ""


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else str(v) for v in value)
    return "" if value is None else str(value)


def repair(nb: dict, release: dict) -> tuple[dict, list[str]]:
    """A notebook nbgrader can sanitise and grade, and notes on what was changed (see the module's docstring)."""
    notes: list[str] = []
    ref = {c["metadata"]["nbgrader"]["grade_id"]: (i, c) for i, c in enumerate(release["cells"])
           if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    cells, dropped, retyped, stored = [], 0, 0, 0
    for raw in nb["cells"]:
        if not isinstance(raw, dict):
            dropped += 1
            continue
        kind = raw.get("cell_type")
        if kind not in ("code", "markdown", "raw"):
            retyped += 1
            kind = "markdown"
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        cell = {"cell_type": kind, "id": raw.get("id"), "metadata": meta, "source": _text(raw.get("source"))}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
            if isinstance(raw.get("outputs"), list) and raw["outputs"]:
                stored += len(json.dumps(raw["outputs"], default=str))
        elif isinstance(raw.get("attachments"), dict) and len(json.dumps(raw["attachments"])) < 2**20:
            cell["attachments"] = raw["attachments"]
        cells.append(cell)
    if dropped:
        notes.append(f"{dropped} malformed cell(s) were dropped")
    if stored > 2**20:
        notes.append(f"{stored / 2**20:.0f} MB of stored outputs were removed before grading")
    if retyped:
        notes.append(f"{retyped} cell(s) of an unknown type were read as markdown")

    # nbgrader metadata: only the assignment's own cells keep it, exactly as released; the last copy wins
    last = {}
    for i, cell in enumerate(cells):
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id") if isinstance(
            cell["metadata"].get("nbgrader"), dict) else None
        if isinstance(gid, str) and gid in ref:
            last[gid] = i
    changed, unknown, copies, broken = [], [], [], 0
    for i, cell in enumerate(cells):
        meta = cell["metadata"]
        if "nbgrader" not in meta:
            continue
        nbg = meta["nbgrader"]
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if not isinstance(gid, str):
            broken += 1
            del meta["nbgrader"]
            continue
        if gid not in ref:
            unknown.append(gid[:40])
            del meta["nbgrader"]
            continue
        if last[gid] != i:
            copies.append(gid)
            del meta["nbgrader"]
            continue
        want = ref[gid][1]
        want_meta = want["metadata"]["nbgrader"]
        diffs = [k for k in (*NB_KEYS, "points") if nbg.get(k) != want_meta.get(k) and not (
            k == "points" and _same_number(nbg.get(k), want_meta.get(k)))]
        if want_meta.get("locked") and cell["source"] != _text(want.get("source")):
            diffs.append("source")
        if cell["cell_type"] != want["cell_type"]:
            diffs.append("cell type")
            cell["cell_type"] = want["cell_type"]
            cell.pop("attachments", None)
            if want["cell_type"] == "code":
                cell.update(outputs=[], execution_count=None)
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        if diffs:
            changed.append(f"{gid} ({', '.join(diffs)})")
        meta["nbgrader"] = json.loads(json.dumps(want_meta))
    if changed:
        notes.append("changed instructor cells were restored: " + "; ".join(changed))
    if broken:
        notes.append(f"malformed grading metadata on {broken} cell(s) was ignored (graded as ordinary cells)")
    if unknown:
        notes.append(f"cells claiming grade ids this assignment does not have were graded as ordinary cells: "
                     f"{', '.join(sorted(set(unknown)))}")
    if copies:
        notes.append(f"copies of cells were found ({', '.join(sorted(set(copies)))}): the last copy is the graded one")

    # put back the instructor's locked cells that were deleted, after the cell they followed
    present = {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells if "nbgrader" in c["metadata"]}
    missing = []
    for gid, (index, want) in sorted(ref.items(), key=lambda kv: kv[1][0]):
        meta = want["metadata"]["nbgrader"]
        if gid in present or not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        position = 0
        for prev in reversed(release["cells"][:index]):
            pid = prev.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if pid in present:
                position = next(i for i, c in enumerate(cells) if c is present[pid]) + 1
                break
        restored = json.loads(json.dumps(want))
        restored["id"] = None
        cells.insert(position, restored)
        present[gid] = restored
        missing.append(gid)
    if missing:
        notes.append(f"deleted instructor cells were put back: {', '.join(missing)}")

    order = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    ref_order = [g for g in sorted(ref, key=lambda g: ref[g][0]) if g in order]
    if order != ref_order:
        notes.append("the assignment's cells are in a different order than released (graded in the submitted order)")

    seen = set()
    for cell in cells:
        cid = cell.get("id")
        if not (isinstance(cid, str) and CELL_ID.match(cid)) or cid in seen:
            cid = uuid.uuid4().hex[:12]
        seen.add(cid)
        cell["id"] = cid
    out_meta = {k: v for k, v in (nb.get("metadata") or {}).items() if k not in ("kernelspec", "language_info")} \
        if isinstance(nb.get("metadata"), dict) else {}
    want_ks = release.get("metadata", {}).get("kernelspec")
    got_ks = nb.get("metadata", {}).get("kernelspec") if isinstance(nb.get("metadata"), dict) else None
    if want_ks:
        out_meta["kernelspec"] = want_ks
        if got_ks != want_ks:
            notes.append(f"the notebook asked for kernel {(got_ks or {}).get('name', 'none') if isinstance(got_ks, dict) else got_ks!r}; "
                         f"graded with {want_ks.get('name')}")
    if "language_info" in release.get("metadata", {}):
        out_meta["language_info"] = release["metadata"]["language_info"]
    return {"cells": cells, "metadata": out_meta, "nbformat": 4, "nbformat_minor": 5}, notes


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def stage(assignment: str, student: str, stage_root: Path) -> Intake:
    """Copy ``student``'s submission, repaired, to ``stage_root/<student>/<assignment>/``."""
    src = course.data_dir() / "submitted" / student / assignment
    result = Intake(student)
    release = course.read_release(assignment)
    path, note, problem = _choose(src, assignment, _grade_ids(release))
    if note:
        result.notes.append(note)
    if path is None:
        result.problem = problem
        return result
    nb, problem = _read(path)
    if nb is None:
        result.problem = problem
        return result
    try:
        fixed, notes = repair(nb, release)
        import nbformat

        nbformat.validate(nbformat.from_dict(fixed))
    except Exception as exc:
        result.problem = f"{path.name} could not be read as a notebook ({type(exc).__name__}: {str(exc)[:160]})"
        return result
    result.notes += notes
    dest = stage_root / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / f"{assignment}.ipynb").write_text(json.dumps(fixed, ensure_ascii=False, indent=1), encoding="utf-8")
    skipped, copied = [], 0
    for item in sorted(src.rglob("*")):
        rel = item.relative_to(src)
        if item == path or item.suffix == ".ipynb" or rel.parts[0].startswith(".ipynb_checkpoints"):
            continue
        if item.is_symlink() or not (item.is_file() or item.is_dir()):
            skipped.append(f"{rel} (a link or special file)")
            continue
        if item.is_dir():
            continue
        if item.name == "timestamp.txt" and len(rel.parts) == 1:
            stamp = _timestamp(item)
            if stamp:
                (dest / "timestamp.txt").write_text(stamp)
            else:
                skipped.append("timestamp.txt (not a time)")
            continue
        if item.stat().st_size > MAX_FILE or copied >= MAX_FILES:
            skipped.append(f"{rel} (too large)" if item.stat().st_size > MAX_FILE else f"{rel} (too many files)")
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item, dest / rel, follow_symlinks=False)
        copied += 1
    if skipped:
        result.notes.append(f"files not used: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    result.folder = dest
    return result


def _timestamp(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")[:100].strip()
        from nbgrader.utils import parse_utc

        parse_utc(text)
        return text + "\n"
    except Exception:
        return ""
