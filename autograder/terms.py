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


def slip(transform, f, argnums, cases, gots, what: str = "your derivative of the function's term") -> str | None:
    """Name the one term whose derivative the answers got wrong by a constant factor, or None.

    ``transform`` is jax.grad, jax.jacobian or jax.hessian, or None for the values of f's terms themselves.
    Each term's derivative is compared along random directions v (forward mode, all terms in one compiled
    function): the error ⟨answer − truth, v⟩ must be one constant multiple of one term's, at every point."""
    from .mutants import _contract, _directional

    args0 = cases[0][0]
    terms = split(f, args0)
    if not terms:
        return None
    order = {None: 0, jax.hessian: 2}.get(transform, 1)
    live = [t for t in terms if t is not None]
    index = [k for k, t in enumerate(terms) if t is not None]

    def parts(args, v):
        if order == 0:
            return [t(*args) for t in live]
        return [_directional(lambda m, *a, t=t: t(*a), argnums, order)(0.0, args, v) for t in live]

    rng = np.random.default_rng(1)
    diffs, cols = [], []
    try:
        along = jax.jit(parts)
        for (args, expected), got in zip(cases, gots):
            for _ in range(1 if order == 0 else 2):
                v = rng.normal(size=np.shape(args[argnums]))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = [np.asarray(p, np.float64).ravel() for p in along(tuple(args), v)]
                diff = np.asarray(got, np.float64) - np.asarray(expected, np.float64)
                diffs.append(_contract(diff, v, order).ravel())
                cols.append(values)
    except Exception:
        return None
    diffs = np.concatenate(diffs)
    if not np.any(diffs):
        return None
    named = []
    for j, k in enumerate(index):
        part = np.concatenate([c[j] for c in cols])
        if part.shape != diffs.shape or np.count_nonzero(np.abs(part) > 1e-12 * np.abs(part).max(initial=0)) < 2:
            continue
        lam = float(np.vdot(diffs, part) / np.vdot(part, part))
        if np.linalg.norm(diffs - lam * part) <= 1e-6 * (np.linalg.norm(diffs) + abs(lam) * np.linalg.norm(part)):
            named.append((k, 1 + lam))
    if len(named) != 1:      # no term, or several that the points cannot tell apart
        return None
    k, c = named[0]
    from .diagnosis import _nice_factor

    how = ("missing" if abs(c) < 1e-6 else "of the wrong sign" if abs(c + 1) < 1e-6
           else f"{_nice_factor(c)} times what it should be")
    return (f"right except in one term: {what} {k + 1} of {len(terms)} "
            f"(its added or subtracted terms, counted from the left) is {how}")
