"""The comparison rule of DESIGN.md, in numpy only (used in the kernel by the checks and outside it by the grader).

Shapes must match exactly, values must be finite, and an answer passes iff ‖a−b‖ ≤ rtol·(‖a‖+‖b‖) + atol. The
question owns rtol (1e-8 unless it sets one): the answer's dtype never loosens it, and an answer in a float type
less precise than float64 fails with a diagnosis that says so (DESIGN.md, Grading principle 3).
"""

from __future__ import annotations

import numpy as np

from . import diagnosis

RTOL = 1e-8   # unless the question sets its own


def tolerance(got: np.ndarray, expected: np.ndarray, rtol: float | None) -> float:
    return RTOL if rtol is None else rtol


def low_precision(got) -> str | None:
    """The name of a float dtype less precise than float64 (float16, bfloat16, float32, complex64), or None."""
    name = getattr(got, "wire_dtype", None) or np.asarray(got).dtype.name
    kind = np.asarray(got).dtype.kind
    if name == "bfloat16" or (kind in "fc" and np.asarray(got).dtype.itemsize < (8 if kind == "f" else 16)):
        return name
    return None


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """‖a−b‖ / (‖a‖+‖b‖), and 0 when both are zero."""
    g, e = got.astype(np.float64), expected.astype(np.float64)
    scale = np.linalg.norm(g) + np.linalg.norm(e)
    return float(np.linalg.norm(g - e) / scale) if scale > 0 else 0.0


def compare(got: np.ndarray, expected: np.ndarray, rtol: float | None, atol: float) -> tuple[bool, float, str | None]:
    """(passed, relative error, reason it failed)."""
    if got.shape != expected.shape:
        return False, float("inf"), diagnosis.shape_mistake(got, expected)
    low = low_precision(got)
    if low:
        return False, float("inf"), (f"your answer is {low}, but this question is checked in float64: keep "
                                     "jax_enable_x64 on and do not cast to a lower precision")
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
