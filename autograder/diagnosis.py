"""Name the mistake behind a wrong answer (DESIGN.md, "diagnosis").

Every function here compares a student's array ``got`` with the reference ``expected`` at one point and
returns a short sentence, or None when it does not recognise the mistake.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import entrywise

DETAILS = ". First failure: "  # what follows names the exact point: shown to the student, cut from feedback
CLOSE = 1e-6  # how close a transformed answer must be to count as "the same mistake"


def _close(a: np.ndarray, b: np.ndarray, tol: float = CLOSE) -> bool:
    if a.shape != b.shape:
        return False
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return bool(np.linalg.norm(a - b) <= tol * scale + 1e-300)


def _nice_factor(c: float) -> str:
    frac = Fraction(c).limit_denominator(12)
    if abs(float(frac) - c) <= 1e-6 * abs(c):
        return str(frac)
    return f"{c:.4g}"


def _axis_swaps(expected: np.ndarray):
    """Ways of moving the output axes behind the input axes: (description, transposed array)."""
    nd = expected.ndim
    for k in range(1, nd):
        perm = tuple(range(k, nd)) + tuple(range(k))
        yield perm, np.transpose(expected, perm)


def same_spectrum(got: np.ndarray, expected: np.ndarray) -> bool:
    """Two square matrices (sizes may differ) with the same nonzero eigenvalues, counted with multiplicity, as AB
    and BA always have: their traces of powers 1..n agree (n the larger size), which determines them."""
    if got.ndim != 2 or expected.ndim != 2 or got.shape[0] != got.shape[1] or \
            expected.shape[0] != expected.shape[1] or max(got.shape[0], expected.shape[0]) > 12:
        return False
    g, e = got.astype(np.float64), expected.astype(np.float64)
    gn, en = np.linalg.norm(g), np.linalg.norm(e)
    if gn == 0 or en == 0:
        return False
    gp, ep = np.eye(len(g)), np.eye(len(e))
    for p in range(1, max(len(g), len(e)) + 1):
        gp, ep = gp @ g, ep @ e
        if abs(np.trace(gp) - np.trace(ep)) > CLOSE * (gn**p + en**p):
            return False
    return True


SWAPPED = ("it has exactly the true answer's nonzero eigenvalues, as BA has those of AB: the factors of a "
           "product (a chain of Jacobians, say) are probably in the wrong order")


def shape_mistake(got: np.ndarray, expected: np.ndarray) -> str:
    """Explain a shape mismatch; always returns a sentence."""
    base = f"wrong shape: yours is {got.shape}, expected {expected.shape}"
    if same_spectrum(got, expected):
        return f"{base}: {SWAPPED}"
    for perm, swapped in _axis_swaps(expected):
        if got.shape == swapped.shape and _close(got, swapped):
            return base + ". It is the transpose of the true answer (a layout mix-up: this course uses numerator layout, output axes first)"
    if got.size == expected.size and _close(got.reshape(expected.shape), expected):
        if expected.ndim == 1 and got.ndim == 2:
            return base + ". The numbers are right: return a 1-D array of shape (n,), e.g. g.ravel(), not a row or column"
        return base + f". The numbers are right; reshape to {expected.shape}"
    if got.size == expected.size:
        for perm, swapped in _axis_swaps(expected):
            if got.size == swapped.size and _close(got.reshape(swapped.shape), swapped):
                return base + ". It holds the transposed entries (a layout mix-up)"
    return base


def value_mistake(gots: list[np.ndarray], expecteds: list[np.ndarray]) -> str | None:
    """Name a same-shape mistake that holds at every given point: zero, sign, factor, transpose, symmetry, or one
    confined to some entries (autograder.entrywise)."""
    got, expected = np.stack(gots), np.stack(expecteds)
    if not np.any(got):
        return "your answer is all zeros"
    e2 = float(np.vdot(expected, expected))
    if e2 > 0 and (len(gots) > 1 or expected[0].ndim > 0):
        c = float(np.vdot(got, expected)) / e2
        if abs(c) > 1e-12 and _close(got, c * expected):
            if abs(c + 1) < 1e-6:
                return "wrong sign: your answer is minus the true one"
            return f"off by a constant factor: your answer is {_nice_factor(c)} times the true one"
    if expected[0].ndim >= 2:
        for perm, _ in _axis_swaps(expected[0]):
            pairs = [(g, np.transpose(e, perm)) for g, e in zip(gots, expecteds)]
            if all(g.shape == t.shape and _close(g, t) for g, t in pairs) and \
                    not all(_close(e, t) for e, (_, t) in zip(expecteds, pairs)):
                return "your answer is the transpose of the true one (a layout mix-up?)"
    e0 = expected[0]
    if all(same_spectrum(g, e) for g, e in zip(gots, expecteds)) and not all(_close(g, e.T) for g, e in
                                                                              zip(gots, expecteds)):
        return f"your answer is not the true one, but {SWAPPED}"
    if e0.ndim == 2 and e0.shape[0] == e0.shape[1] and all(_close(e, e.T) for e in expecteds):
        if any(not _close(g, g.T) for g in gots) and all(_close((g + g.T) / 2, e) for g, e in zip(gots, expecteds)):
            return ("missing the symmetric part: the true matrix is symmetric and yours is not, "
                    "though their symmetric parts agree")
    for rule in (entrywise.missing_copies, entrywise.one_place, entrywise.shifted, entrywise.entry_factors,
                 entrywise.few_places):
        name = rule(gots, expecteds)
        if name:
            return name
    return None


_MISMATCH = ("mismatch in its core dimension", "contracting dimensions to have the same shape",
             "shapes not aligned", "incompatible shapes for dot", "size of the contracting dimension")


def product_mismatch(exc: Exception) -> str:
    """A clause for an exception raised by a matrix product whose factors' shapes do not fit, else ''."""
    text = str(exc)
    if isinstance(exc, (ValueError, TypeError)) and any(m in text for m in _MISMATCH):
        return (". A matrix product got factors whose shapes do not fit: check the order of its factors "
                "(a chain of Jacobians multiplies the outer one on the left) and any transposes")
    return ""


def points_pattern(n_ok: int, n_total: int) -> str | None:
    if 0 < n_ok < n_total:
        return f"right at {n_ok} of {n_total} points and wrong at the others: a case or a branch is missing"
    return None


def summary(outcomes: list[tuple], named: list[str] = (), fallback: str | None = None) -> str:
    """One sentence for a wrong answer from ``(got, expected, passed, reason)`` at every point (some failed) and
    the labels of the instructor's named mistakes that the answer equals at every point. Used by the checks in
    the kernel and by the trusted grader outside it, so both say the same thing."""
    failed = [o for o in outcomes if not o[2]]
    return "; ".join(findings(outcomes, named, fallback)) or f"wrong at {len(failed)} of {len(outcomes)} points"


def findings(outcomes: list[tuple], named: list[str] = (), fallback: str | None = None) -> list[str]:
    """The parts of :func:`summary`: named mistakes, then a shape or value mistake, then a pattern of points.
    A named mistake is the whole diagnosis of the values: a generic clause about the same numbers (a sign, a
    factor, a pattern of points) would describe an artefact of how the test encodes them, not the mistake."""
    failed = [o for o in outcomes if not o[2]]
    got, expected, _, reason = failed[0]
    found = [reason] if reason and np.shape(got) != np.shape(expected) else []
    if named:
        shape = [f"wrong shape: yours is {np.shape(got)}, expected {np.shape(expected)}"] if found else []
        return [f"your answer equals {label}" for label in named] + shape
    if not found:
        found = _same_mistake(outcomes, failed)
    if not found and fallback:   # a slip in one term or one rule (autograder.terms, autograder.mutants)
        text = fallback() if callable(fallback) else fallback
        found = [text] if text else []
    pattern = points_pattern(len(outcomes) - len(failed), len(outcomes))
    if pattern:
        found.append(pattern)
    return found


def _same_mistake(outcomes, failed) -> list[str]:
    """Name a mistake that holds at every point (or, failing that, at every wrong point)."""
    first_reason = failed[0][3]
    if first_reason and first_reason.startswith(("your answer contains", "your answer is")):
        return [first_reason]
    for rows, prefix in ((outcomes, ""), (failed, "where it is wrong: ")):
        if any(np.shape(o[0]) != np.shape(o[1]) or not np.all(np.isfinite(o[0])) for o in rows):
            continue
        name = value_mistake([np.asarray(o[0], dtype=np.float64) for o in rows],
                             [np.asarray(o[1], dtype=np.float64) for o in rows])
        if name:
            return [prefix + name]
    return []
