"""Name a mistake through the inputs of a question (used by the checks).

``substituted``: the answer equals the reference evaluated at altered inputs: a square matrix transposed, two
inputs of one shape swapped, or one used in place of the other (Aᵀ for A in a VJP, x for v in an HVP).
``power_of_input``: a scalar answer that is the true one times c·xᵏ for a scalar input x (a factor in the wrong
place, as operator precedence puts it: a/2*x is (a/2)·x, x**-1/2 is x⁻¹/2).
Each clause is stated only when it holds at every point and the altered answer differs from the true one.
"""

from __future__ import annotations

import warnings

import numpy as np

CLOSE = 1e-6
POWERS = (1, -1, 2, -2, 3, -3, 0.5, -0.5, 1.5, -1.5)
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _close(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        return False
    return bool(np.linalg.norm(a - b) <= CLOSE * (np.linalg.norm(a) + np.linalg.norm(b)) + 1e-300)


def _alterations(names, args):
    """(clause, function of the arguments giving the altered arguments)."""
    for i, a in enumerate(args):
        a = np.asarray(a)
        if a.ndim == 2 and a.shape[0] == a.shape[1] > 1 and not _close(a, a.T):
            yield (f"with {names[i]} transposed (a transpose missing or extra on {names[i]})",
                   lambda xs, i=i: [np.asarray(x).T if k == i else x for k, x in enumerate(xs)])
    for i in range(len(args)):
        for j in range(len(args)):
            if i != j and np.shape(args[i]) == np.shape(args[j]) and np.size(args[i]) > 1:
                yield (f"with {names[i]} in place of {names[j]} (check which input each part uses)",
                       lambda xs, i=i, j=j: [xs[i] if k == j else x for k, x in enumerate(xs)])
                if i < j:
                    yield (f"with {names[i]} and {names[j]} swapped",
                           lambda xs, i=i, j=j: [xs[j] if k == i else xs[i] if k == j else x
                                                 for k, x in enumerate(xs)])


def substituted(evaluate, names, cases, gots) -> str | None:
    """The alteration of the inputs under which the reference gives the answers at every point, or None."""
    for clause, alter in _alterations(names, cases[0][0]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = [np.asarray(evaluate(*alter(args)), np.float64) for args, _ in cases]
        except Exception:
            continue
        if all(_close(v, g) for v, g in zip(values, gots)) and \
                not all(_close(v, e) for v, (_, e) in zip(values, cases)):
            return f"your answer equals the true one computed {clause}"
    return None


def power_of_input(names, cases, gots) -> str | None:
    """c·xᵏ with x a scalar input, the same c and k at every point (k ≠ 0), or None."""
    from .diagnosis import _nice_factor

    gots = [np.asarray(g, np.float64) for g in gots]
    if any(g.ndim != 0 for g in gots) or len(cases) < 3:
        return None
    expected = np.array([float(e) for _, e in cases])
    if np.any(expected == 0):
        return None
    ratio = np.array([float(g) for g in gots]) / expected
    for i, name in enumerate(names):
        if np.ndim(cases[0][0][i]) != 0:
            continue
        x = np.array([float(args[i]) for args, _ in cases])
        if len(set(np.round(np.abs(x), 12))) < 3:
            continue
        for k in POWERS:
            if k != int(k) and np.any(x <= 0):
                continue
            c = ratio / x**k
            if np.all(np.isfinite(c)) and np.allclose(c, c[0], rtol=CLOSE, atol=0) and c[0] != 0:
                coeff = "" if abs(c[0] - 1) < CLOSE else f"{_nice_factor(float(c[0]))}·"
                power = name if k == 1 else f"{name}{str(int(k)).translate(SUPERSCRIPT)}" if k == int(k) \
                    else f"{name}^({_nice_factor(k)})"
                return (f"your answer is {coeff}{power} times the true one at every point: a factor in the wrong "
                        "place (operator precedence? in Python a/2*x is (a/2)·x and x**-1/2 is x⁻¹/2)")
    return None
