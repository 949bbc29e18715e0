"""The comparison rule of DESIGN.md, in numpy only (used in the kernel by the checks and outside it by the grader).

Shapes must match exactly, values must be finite, and an answer passes iff ‖a−b‖ ≤ rtol·(‖a‖+‖b‖) + atol, with
rtol chosen by the less precise of the two arrays unless given.
"""

from __future__ import annotations

import numpy as np

from . import diagnosis

EVIDENCE_MIME = "application/vnd.vc4ml.evidence+json"  # a check's evidence in a cell's outputs, while grading
RTOL = {2: 1e-2, 4: 1e-4, 8: 1e-8}  # by the float itemsize of the less precise array


def tolerance(got: np.ndarray, expected: np.ndarray, rtol: float | None) -> float:
    if rtol is not None:
        return rtol
    sizes = [a.dtype.itemsize if a.dtype.kind == "f" else 8 for a in (got, expected)]
    return RTOL.get(min(sizes), 1e-8)


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """‖a−b‖ / (‖a‖+‖b‖), and 0 when both are zero."""
    g, e = got.astype(np.float64), expected.astype(np.float64)
    scale = np.linalg.norm(g) + np.linalg.norm(e)
    return float(np.linalg.norm(g - e) / scale) if scale > 0 else 0.0


def compare(got: np.ndarray, expected: np.ndarray, rtol: float | None, atol: float) -> tuple[bool, float, str | None]:
    """(passed, relative error, reason it failed)."""
    if got.shape != expected.shape:
        return False, float("inf"), diagnosis.shape_mistake(got, expected)
    if got.dtype.kind == "c" and expected.dtype.kind != "c":
        return False, float("inf"), "your answer is complex; the derivative is real"
    if not np.all(np.isfinite(got)):
        bad = np.argwhere(~np.isfinite(got))
        where = "" if got.ndim == 0 else f" at entry {tuple(int(i) for i in bad[0])}"
        return False, float("inf"), f"your answer contains nan or inf{where}"
    g64, e64 = got.astype(np.float64), expected.astype(np.float64)
    tol = tolerance(got, expected, rtol)
    diff = float(np.linalg.norm(g64 - e64))
    scale = float(np.linalg.norm(g64) + np.linalg.norm(e64))
    err = relative_error(got, expected)
    if diff <= tol * scale + atol:
        return True, err, None
    return False, err, None
