"""The additive terms of a set-up function, to name a slip in one term of its derivative (used by the checks).

``f(x) = t₁(x) ± t₂(x) ± …``: the terms are read off the top of f's jaxpr (its last additions and subtractions,
counted from the left as written). A wrong derivative that differs from the true one by a constant multiple of
one term's derivative, at every point, got that term right up to a sign or a factor (or left it out).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
from jax.extend import core as jcore

MOST_TERMS = 12


def split(f, args) -> list:
    """Functions of f's arguments giving each additive term of f (with its sign); [] if f is not a sum."""
    try:
        closed = jax.make_jaxpr(f)(*args)
    except Exception:
        return []
    jaxpr = closed.jaxpr
    if len(jaxpr.outvars) != 1 or isinstance(jaxpr.outvars[0], jcore.Literal):
        return []
    made = {v: e for e in jaxpr.eqns for v in e.outvars}
    shape = jaxpr.outvars[0].aval.shape

    def leaves(var, sign):
        eqn = None if isinstance(var, jcore.Literal) else made.get(var)
        if eqn is not None and eqn.primitive.name in ("add", "sub", "neg") and \
                all(isinstance(v, jcore.Literal) or v.aval.shape == shape for v in eqn.invars):
            signs = [sign] if eqn.primitive.name != "sub" else [sign, -sign]
            if eqn.primitive.name == "neg":
                signs = [-sign]
            elif eqn.primitive.name == "add":
                signs = [sign, sign]
            return [leaf for v, s in zip(eqn.invars, signs) for leaf in leaves(v, s)]
        return [(var, sign)]

    found = leaves(jaxpr.outvars[0], 1)
    if not 2 <= len(found) <= MOST_TERMS:
        return []
    return [None if isinstance(var, jcore.Literal) else _term(closed, var, sign) for var, sign in found]


def _term(closed, var, sign):
    fn = jcore.jaxpr_as_fun(jcore.ClosedJaxpr(closed.jaxpr.replace(outvars=[var], debug_info=None),
                                              closed.consts))
    return lambda *args: sign * fn(*args)[0]


def slip(transform, f, argnums, cases, gots) -> str | None:
    """Name the one term whose derivative the answers got wrong by a constant factor, or None."""
    args0 = cases[0][0]
    terms = split(f, args0)
    diffs = np.stack([np.asarray(g, np.float64) - e for g, (_, e) in zip(gots, cases)])
    if not terms or not np.any(diffs):
        return None
    named = []
    for k, term in enumerate(terms):
        if term is None:         # a constant
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = transform(term, argnums=argnums)
                parts = np.stack([np.asarray(d(*args), np.float64) for args, _ in cases])
        except Exception:
            continue
        if parts.shape != diffs.shape or np.count_nonzero(np.abs(parts) > 1e-12 * np.abs(parts).max()) < 2:
            continue
        lam = float(np.vdot(diffs, parts) / np.vdot(parts, parts))
        if np.linalg.norm(diffs - lam * parts) <= 1e-6 * (np.linalg.norm(diffs) + abs(lam) *
                                                          np.linalg.norm(parts)):
            named.append((k, 1 + lam))
    if len(named) != 1:      # no term, or several that the points cannot tell apart
        return None
    k, c = named[0]
    from .diagnosis import _nice_factor

    what = ("missing" if abs(c) < 1e-6 else "of the wrong sign" if abs(c + 1) < 1e-6
            else f"{_nice_factor(c)} times what it should be")
    return (f"right except in one term: your derivative of the function's term {k + 1} of {len(terms)} "
            f"(its added or subtracted terms, counted from the left) is {what}")
