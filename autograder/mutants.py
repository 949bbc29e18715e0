"""Name a misapplied differentiation rule inside a set-up function (used by the checks).

The set-up function ``f`` is read as a jaxpr and evaluated again with the derivative rule of one of its
operations (a site) replaced by a typical slip: σ where σ′ belongs (the function itself for its derivative), the
chain-rule factor of an elementwise function or the derivative of its argument left out, the power rule applied
to aˣ or not lowering the exponent, half of the product rule missing or doubled, a square matrix factor where its
transpose belongs, a slip in the quotient rule. If differentiating that mutant (with the check's own transform)
gives the student's answer at every point, and differs from the true derivative, the clause names the slip. All
mutants of a function run as one batch: a traced number m selects the slip (autograder.mutants._Plan).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

MOST_SITES = 40
CLOSE = 1e-6

# unary elementwise operations: name shown to the student, derivative as a function of (input, output)
UNARY = {
    "sin": ("sin", lambda u, y: jnp.cos(u)),
    "cos": ("cos", lambda u, y: -jnp.sin(u)),
    "tan": ("tan", lambda u, y: 1 + y**2),
    "exp": ("exp", lambda u, y: y),
    "exp2": ("exp2", lambda u, y: y * jnp.log(2.0)),
    "expm1": ("expm1", lambda u, y: y + 1),
    "log": ("log", lambda u, y: 1 / u),
    "log1p": ("log1p", lambda u, y: 1 / (1 + u)),
    "tanh": ("tanh", lambda u, y: 1 - y**2),
    "logistic": ("the sigmoid σ", lambda u, y: y * (1 - y)),
    "sqrt": ("sqrt", lambda u, y: 0.5 / y),
    "rsqrt": ("rsqrt", lambda u, y: -0.5 * y / u),
    "erf": ("erf", lambda u, y: 2 / jnp.sqrt(jnp.pi) * jnp.exp(-u**2)),
    "atan": ("arctan", lambda u, y: 1 / (1 + u**2)),
}
_CALLS = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "remat",
          "checkpoint", "custom_vjp_call_jaxpr")


def _inner(eqn):
    """The jaxpr a call-like equation runs, as (jaxpr, consts), or None."""
    if eqn.primitive.name not in _CALLS:
        return None
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        inner = eqn.params.get(key)
        if isinstance(inner, jcore.ClosedJaxpr):
            return inner.jaxpr, inner.consts
        if isinstance(inner, jcore.Jaxpr):
            return inner, ()
    return None


def _evaluate(jaxpr, consts, args, rule):
    """Evaluate ``jaxpr``, inlining calls; every other equation goes through ``rule(eqn, invals)``."""
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        inner = _inner(eqn)
        if inner is not None:
            outs = _evaluate(inner[0], inner[1], invals[len(invals) - len(inner[0].invars):], rule)
        else:
            outs = rule(eqn, invals)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _floating(eqn) -> bool:
    return all(jnp.issubdtype(v.aval.dtype, jnp.floating) for v in list(eqn.invars) + list(eqn.outvars)
               if hasattr(v.aval, "dtype"))


def _kinds(eqn, x_shape) -> list:
    """The slips tried at this equation: (description, tangent rule (primals, tangents, y, x, ẋ) -> tangent)."""
    name = eqn.primitive.name
    if not _floating(eqn) or len(eqn.outvars) != 1:
        return []
    if name in UNARY:
        shown, deriv = UNARY[name]
        kinds = [
            (f"{shown} itself where its derivative belongs (the derivative of the wrong function)",
             lambda p, t, y, x, tx: y * t[0]),
            (f"the factor from the derivative of {shown} is missing (the chain rule through {shown})",
             lambda p, t, y, x, tx: t[0]),
            (f"the derivative of {shown} has the wrong sign", lambda p, t, y, x, tx: -deriv(p[0], y) * t[0]),
        ]
        if tuple(eqn.invars[0].aval.shape) == tuple(x_shape):
            kinds.append((f"the chain rule through {shown}: the derivative of its argument is missing",
                          lambda p, t, y, x, tx: deriv(p[0], y) * tx))
        return kinds
    if name == "pow" and isinstance(eqn.invars[0], jcore.Literal):
        return [("the power rule applied to an exponential aˣ (there the variable is the exponent, not the base)",
                 lambda p, t, y, x, tx: p[1] * p[0] ** (p[1] - 1) * t[1]),
                ("the factor ln a of the derivative of an exponential aˣ is missing",
                 lambda p, t, y, x, tx: y * t[1])]
    if name == "integer_pow" and eqn.params["y"] not in (0, 1):
        n = eqn.params["y"]
        return [(f"the power rule at a power {n}: the exponent was not lowered by one",
                 lambda p, t, y, x, tx: n * y * t[0]),
                (f"the power rule at a power {n}: the exponent was raised, not lowered",
                 lambda p, t, y, x, tx: n * y * p[0] * t[0]),
                (f"the power rule at a power {n}: the factor {n} is missing",
                 lambda p, t, y, x, tx: p[0] ** (n - 1) * t[0])]
    if name in ("mul", "dot_general") and not any(isinstance(v, jcore.Literal) for v in eqn.invars):
        twice = ("the product rule: one of its two terms is counted twice and the other is missing "
                 "(as if both factors were the same, or a matrix symmetric)")
        return [
            ("the product rule: the term with the derivative of the first factor is missing",
             lambda p, t, y, x, tx: _bin(eqn, p[0], t[1])),
            ("the product rule: the term with the derivative of the second factor is missing",
             lambda p, t, y, x, tx: _bin(eqn, t[0], p[1])),
            (twice, lambda p, t, y, x, tx: 2 * _bin(eqn, t[0], p[1])),
            (twice, lambda p, t, y, x, tx: 2 * _bin(eqn, p[0], t[1])),
        ] + _transposed(eqn)
    if name == "div" and not isinstance(eqn.invars[1], jcore.Literal):
        return [
            ("the quotient rule: the term with the derivative of the denominator is missing",
             lambda p, t, y, x, tx: t[0] / p[1]),
            ("the quotient rule: the term with the derivative of the numerator is missing",
             lambda p, t, y, x, tx: -p[0] * t[1] / p[1] ** 2),
            ("the quotient rule: the term with the derivative of the denominator has the wrong sign",
             lambda p, t, y, x, tx: (t[0] * p[1] + p[0] * t[1]) / p[1] ** 2),
            ("the quotient rule: the denominator is not squared",
             lambda p, t, y, x, tx: (t[0] * p[1] - p[0] * t[1]) / p[1]),
        ]
    return []


def _transposed(eqn) -> list:
    """A square matrix factor of a matrix product where its transpose belongs, in the chain rule."""
    if eqn.primitive.name != "dot_general":
        return []
    text = ("a square matrix in the chain rule where its transpose belongs (a transpose missing or extra on a "
            "factor of a matrix product)")
    shapes = [tuple(v.aval.shape) for v in eqn.invars]
    kinds = []
    if len(shapes[0]) == 2 and shapes[0][0] == shapes[0][1]:
        kinds.append((text, lambda p, t, y, x, tx: _bin(eqn, p[0].T, t[1]) + _bin(eqn, t[0], p[1])))
    if len(shapes[1]) == 2 and shapes[1][0] == shapes[1][1]:
        kinds.append((text, lambda p, t, y, x, tx: _bin(eqn, t[0], p[1].T) + _bin(eqn, p[0], t[1])))
    return kinds


def _bin(eqn, a, b):
    return eqn.primitive.bind(a, b, **eqn.params)


class _Plan:
    """Every (site, slip) of a function, numbered: mutant m of the function applies slip m, -1 none."""

    def __init__(self, closed, x_shape):
        self.closed, self.x_shape, self.sites, self.first, self.texts = closed, x_shape, [], [], []

        def count(eqn, invals):
            kinds = _kinds(eqn, x_shape)
            if kinds and len(self.sites) < MOST_SITES:
                self.first.append(len(self.texts))
                self.sites.append(eqn)
                self.texts += [text for text, _ in kinds]
            return eqn.primitive.bind(*invals, **eqn.params)

        self.counted = count

    def function(self, argnums):
        """f(m, *args): the function whose derivative follows slip m (a traced number)."""
        closed, plan = self.closed, self

        def fn(m, *args):
            seen = iter(range(len(plan.sites)))
            x = args[argnums]

            def rule(eqn, invals):
                kinds = _kinds(eqn, plan.x_shape)
                if not kinds:
                    return eqn.primitive.bind(*invals, **eqn.params)
                site = next(seen, None)
                if site is None:
                    return eqn.primitive.bind(*invals, **eqn.params)
                return _slipped(eqn, kinds, plan.first[site], m, x, invals)

            return _evaluate(closed.jaxpr, closed.consts, list(args), rule)[0]

        return fn


def _slipped(eqn, kinds, first, m, x, invals):
    params = eqn.params

    def plain(*xs):
        return eqn.primitive.bind(*xs, **params)

    @jax.custom_jvp
    def op(m, x, *xs):
        return plain(*xs)

    @op.defjvp
    def op_jvp(primals, tangents):
        m, x, *p = primals
        _, tx, *t = tangents
        y, out = jax.jvp(plain, tuple(p), tuple(t))
        for j, (_, tangent) in enumerate(kinds):
            slip = jnp.broadcast_to(tangent(p, t, y, x, tx), jnp.shape(y)).astype(y.dtype)
            out = jnp.where(m == first + j, slip, out)
        return y, out

    return op(m, x, *invals)


def slip(transform, f, argnums, cases, gots) -> str | None:
    """Name the one misapplied rule that turns the true derivative into the answers, or None.

    Every mutant is compared along random directions v at every point (forward mode, all mutants in one
    compiled batch): ⟨answer, v⟩ (twice contracted for a Hessian) against the mutant's directional derivative.
    A mutant that agrees in every direction at every point, and differs from the true derivative, is named."""
    gots = [np.asarray(g, np.float64) for g in gots]
    itself = _is_f_itself(f, cases, gots)
    if itself:
        return itself
    order = 2 if transform is jax.hessian else 1
    args0 = [jnp.asarray(a) for a in cases[0][0]]
    try:
        closed = jax.make_jaxpr(f)(*args0)
        if len(closed.jaxpr.outvars) != 1:
            return None
        plan = _Plan(closed, np.shape(args0[argnums]))
        jax.make_jaxpr(lambda *a: _evaluate(closed.jaxpr, closed.consts, a, plan.counted))(*args0)  # traced
        if not plan.texts:
            return None
        along = jax.jit(jax.vmap(_directional(plan.function(argnums), argnums, order), in_axes=(0, None, None)))
        rng = np.random.default_rng(0)
        alive, differs = np.arange(len(plan.texts)), np.zeros(len(plan.texts), bool)
        for (args, expected), got in zip(cases, gots):
            for _ in range(DIRECTIONS):
                v = rng.normal(size=np.shape(args[argnums]))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = np.asarray(along(jnp.asarray(alive, jnp.float64), tuple(args), v), np.float64)
                want, true = _contract(got, v, order), _contract(np.asarray(expected, np.float64), v, order)
                keep = np.array([_close(val, want) for val in values])
                differs = differs[keep] | np.array([not _close(val, true) for val in values[keep]], bool)
                alive = alive[keep]
                if len(alive) == 0:
                    return None
    except Exception:
        return None
    texts = list(dict.fromkeys(plan.texts[i] for i, d in zip(alive, differs) if d))
    if not texts:
        return None
    if order == 2:
        texts = [t.replace("itself where its derivative belongs (the derivative of the wrong function)",
                           "one derivative too low (its value where its derivative belongs in the gradient, or "
                           "its first derivative where its second belongs)") for t in texts]
    return f"your derivative misapplies one rule: {texts[0]}" + (f" (or: {texts[1]})" if len(texts) > 1 else "")


DIRECTIONS = 2


def _directional(mutant, argnums, order):
    def along(m, args, v):
        def g(z):
            return mutant(m, *args[:argnums], z, *args[argnums + 1:])

        if order == 1:
            return jax.jvp(g, (args[argnums],), (v,))[1]
        return jax.jvp(lambda z: jax.jvp(g, (z,), (v,))[1], (args[argnums],), (v,))[1]
    return along


def _contract(a: np.ndarray, v, order: int) -> np.ndarray:
    for _ in range(order):
        a = np.tensordot(a, v, axes=v.ndim)
    return a


def _close(value, got) -> bool:
    if value.shape != got.shape or not np.all(np.isfinite(value)):
        return False
    return bool(np.linalg.norm(value - got) <= CLOSE * (np.linalg.norm(value) + np.linalg.norm(got)) + 1e-300)


def _is_f_itself(f, cases, gots) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = [np.asarray(f(*args), np.float64) for args, _ in cases]
    except Exception:
        return None
    if all(_close(v, g) and not _close(v, e) for v, g, (_, e) in zip(values, gots, cases)):
        return "your answer is the function's value itself, not its derivative"
    return None
