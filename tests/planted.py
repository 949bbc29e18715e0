"""A corpus of planted mistakes, written as students write them (issue 15, item 4).

Each entry is one wrong answer to a question of the course's kinds (derivatives, gradients, Jacobians, matrix
gradients, VJPs, Hessians, HVPs, Taylor polynomials, discrete answers), run through the real ``autograder.check``
function against the real reference, and a pattern its ✘ message must contain to *name* the mistake. No named
mistakes are declared (``check.named_mistakes``): the corpus measures the generic diagnosis layer.

``python tests/planted.py`` prints the table and the count; tests/test_planted.py asserts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import factorial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from autograder import check

jax.config.update("jax_enable_x64", True)

_R = np.random.default_rng(15)
A3 = _R.normal(size=(3, 3))                     # a generic, non-symmetric matrix
S3 = A3 @ A3.T + 3 * np.eye(3)                   # symmetric positive definite
W34 = _R.normal(size=(3, 4))
W33 = _R.normal(size=(3, 3))
X52 = _R.normal(size=(5, 2))
X53 = _R.normal(size=(5, 3))
Y5 = _R.normal(size=(5,))
L5 = _R.choice([-1.0, 1.0], size=5)
B23, C42 = _R.normal(size=(2, 3)), _R.normal(size=(4, 2))
C34 = _R.normal(size=(3, 4))
sig = jax.nn.sigmoid


def npsig(z):
    return 1 / (1 + np.exp(-z))


@dataclass
class Planted:
    ident: str
    kind: str          # the kind of answer: derivative, gradient, Jacobian, ...
    mistake: str       # what the student did wrong
    run: Callable      # () -> CheckResult of the wrong answer
    names: str         # a regular expression the diagnosis must match
    right: Callable | None = None   # () -> CheckResult of a correct answer to the same question


def diagnosis_of(result) -> str:
    """The part of a ✘ message before the inputs and the first failure: what the student reads as the cause."""
    text = result.message.split(": ", 1)[1] if ": " in result.message else result.message
    return text.split(". Inputs:")[0]


def named(p: Planted) -> tuple[bool, str]:
    r = p.run()
    text = diagnosis_of(r)
    return (not r.passed and re.search(p.names, text) is not None), text


C: list[Planted] = []


def plant(ident, kind, mistake, names, right=None):
    def add(run):
        C.append(Planted(ident, kind, mistake, run, names, right))
        return run
    return add


SEED = 7
D = dict(seed=SEED)
POS = check.positive()

# ------------------------------------------------------------------ ch01: derivatives


def f_d1(x):
    return x**3 * jnp.sin(x)


plant("D01", "derivative", "product rule: one term missing", r"product rule: the term with the derivative",
      lambda: check.derivative(lambda x: 3 * x**2 * np.sin(x) + x**3 * np.cos(x), f_d1, **D))(
    lambda: check.derivative(lambda x: 3 * x**2 * np.sin(x), f_d1, **D))


def f_d2(x):
    return jnp.sin(x**2)


plant("D02", "derivative", "chain rule: inner derivative missing", r"derivative of its argument is missing",
      lambda: check.derivative(lambda x: 2 * x * np.cos(x**2), f_d2, **D))(
    lambda: check.derivative(lambda x: np.cos(x**2), f_d2, **D))


def f_d3(x):
    return 3.0**x + x**2


plant("D03", "derivative", "power rule applied to 3ˣ", r"power rule applied to an exponential",
      lambda: check.derivative(lambda x: 3.0**x * np.log(3) + 2 * x, f_d3, **D))(
    lambda: check.derivative(lambda x: x * 3.0 ** (x - 1) + 2 * x, f_d3, **D))
plant("D04", "derivative", "3ˣ without the factor ln 3", r"ln a .* is missing|term 1 of 2.*times",
      lambda: check.derivative(lambda x: 3.0**x * np.log(3) + 2 * x, f_d3, **D))(
    lambda: check.derivative(lambda x: 3.0**x + 2 * x, f_d3, **D))


def f_d5(x):
    return sig(2 * x + 1)


plant("D05", "derivative", "σ instead of σ′", r"sigmoid σ itself where its derivative belongs",
      lambda: check.derivative(lambda x: 2 * npsig(2 * x + 1) * (1 - npsig(2 * x + 1)), f_d5, **D))(
    lambda: check.derivative(lambda x: 2 * npsig(2 * x + 1), f_d5, **D))


def f_d6(x):
    return x**4 - 2 / x + 5


plant("D06", "derivative", "sign slip in one term", r"term 2 of 3 .* wrong sign")(
    lambda: check.derivative(lambda x: 4 * x**3 - 2 / x**2, f_d6, **D))


def f_d7(x):
    return jnp.exp(-(x**2))


plant("D07", "derivative", "sign of the inner derivative lost", r"wrong sign")(
    lambda: check.derivative(lambda x: 2 * x * np.exp(-(x**2)), f_d7, **D))


def f_d8(x):
    return jnp.log(1 + x**2)


plant("D08", "derivative", "log: the inner derivative missing", r"derivative of its argument is missing")(
    lambda: check.derivative(lambda x: 1 / (1 + x**2), f_d8, **D))


def f_d9(x):
    return x / (1 + x**2)


plant("D09", "derivative", "quotient rule: numerator terms swapped", r"wrong sign")(
    lambda: check.derivative(lambda x: (2 * x * x - (1 + x**2)) / (1 + x**2) ** 2, f_d9, **D))
plant("D10", "derivative", "quotient rule: denominator not squared", r"denominator is not squared",
      lambda: check.derivative(lambda x: (1 - x**2) / (1 + x**2) ** 2, f_d9, **D))(
    lambda: check.derivative(lambda x: (1 + x**2 - 2 * x * x) / (1 + x**2), f_d9, **D))


def f_d11(x):
    return jnp.sqrt(x)


plant("D11", "derivative", "precedence: 1/2*sqrt(x) for 1/(2 sqrt x)", r"x¹ times the true one|x times the",
      lambda: check.derivative(lambda x: 1 / (2 * np.sqrt(x)), f_d11, POS, **D))(
    lambda: check.derivative(lambda x: 1 / 2 * np.sqrt(x), f_d11, POS, **D))


def f_d12(x):
    return 2 * jnp.sqrt(x) + jnp.log(x)


plant("D12", "derivative", "precedence: x**-1/2 for x**(-1/2)", r"precedence")(
    lambda: check.derivative(lambda x: x**-1 / 2 + 1 / x, f_d12, POS, **D))


def f_d13(x):
    return x**1.5


plant("D13", "derivative", "precedence: 1.5*x**1/2 for 1.5*x**(1/2)", r"precedence")(
    lambda: check.derivative(lambda x: 1.5 * x**1 / 2, f_d13, POS, **D))


def f_d14(x):
    return x * jnp.exp(x)


plant("D14", "derivative", "returned the function, not its derivative", r"function's value itself")(
    lambda: check.derivative(lambda x: x * np.exp(x), f_d14, **D))


def f_d15(x):
    return x**5 - 3 * x


plant("D15", "derivative", "power rule: exponent not lowered (off by one)", r"exponent was not lowered")(
    lambda: check.derivative(lambda x: 5 * x**5 - 3, f_d15, **D))


def f_d16(x):
    return 3 * x**2 + jnp.sin(2 * x)


plant("D16", "derivative", "inner factor 2 missing in one term", r"term 2 of 2 .* 1/2 times")(
    lambda: check.derivative(lambda x: 6 * x + np.cos(2 * x), f_d16, **D))


def f_d17(x):
    return x * jnp.cos(x)


plant("D17", "derivative", "derivative of cos taken as +sin", r"derivative of cos has the wrong sign")(
    lambda: check.derivative(lambda x: np.cos(x) + x * np.sin(x), f_d17, **D))


def f_d18(x):
    return jnp.exp(jnp.sin(x))


plant("D18", "derivative", "chain rule: cos x missing", r"derivative of its argument is missing|"
      r"factor from the derivative of sin is missing|function's value itself")(
    lambda: check.derivative(lambda x: np.exp(np.sin(x)), f_d18, **D))


def f_d19(x):
    return jnp.tanh(3 * x) + x**2


plant("D19", "derivative", "factor 3 of the inner function missing", r"term 1 of 2 .* 1/3 times")(
    lambda: check.derivative(lambda x: 1 - np.tanh(3 * x) ** 2 + 2 * x, f_d19, **D))

# ------------------------------------------------------------------ ch02: gradients


def f_g1(x, A, b):
    return x @ A @ x + b @ x


G1 = dict(shapes=[(3,), (3, 3), (3,)], **D)
plant("G01", "gradient", "2Ax for a non-symmetric A", r"counted twice",
      lambda: check.gradient(lambda x, A, b: (A + A.T) @ x + b, f_g1, **G1))(
    lambda: check.gradient(lambda x, A, b: 2 * A @ x + b, f_g1, **G1))


def f_mse(w, X, y):
    return jnp.mean((X @ w - y) ** 2)


MSE = dict(shapes=[(3,), (6, 3), (6,)], **D)
plant("G02", "gradient", "mean squared error: 1/N missing", r"6 times the true one",
      lambda: check.gradient(lambda w, X, y: 2 * X.T @ (X @ w - y) / len(y), f_mse, **MSE))(
    lambda: check.gradient(lambda w, X, y: 2 * X.T @ (X @ w - y), f_mse, **MSE))
plant("G03", "gradient", "mean squared error: factor 2 missing", r"1/2 times the true one")(
    lambda: check.gradient(lambda w, X, y: X.T @ (X @ w - y) / len(y), f_mse, **MSE))


def f_g4(x, A, b):
    return x @ A @ x - 2 * b @ x + jnp.sum(jnp.cos(x))


plant("G04", "gradient", "sign slip in one term", r"term 3 of 3 .* wrong sign")(
    lambda: check.gradient(lambda x, A, b: (A + A.T) @ x - 2 * b + np.sin(x), f_g4, **G1))


def f_ce(z, y):
    return jnp.log(jnp.sum(jnp.exp(z))) - y @ z


CE = dict(shapes=[(4,), (4,)], **D)
plant("G05", "gradient", "softmax cross-entropy: −y missing", r"term 2 of 2 .* missing",
      lambda: check.gradient(lambda z, y: np.exp(z) / np.sum(np.exp(z)) - y, f_ce, **CE))(
    lambda: check.gradient(lambda z, y: np.exp(z) / np.sum(np.exp(z)), f_ce, **CE))
plant("G06", "gradient", "returned as a row (1, n)", r"numbers are right")(
    lambda: check.gradient(lambda z, y: (np.exp(z) / np.sum(np.exp(z)) - y)[None, :], f_ce, **CE))


def f_logreg(w):
    return jnp.mean(jnp.log1p(jnp.exp(-L5 * (X53 @ w))))


plant("G07", "gradient", "logistic regression: overall minus lost", r"wrong sign",
      lambda: check.gradient(lambda w: -X53.T @ (L5 * npsig(-L5 * (X53 @ w))) / 5, f_logreg, (3,), **D))(
    lambda: check.gradient(lambda w: X53.T @ (L5 * npsig(-L5 * (X53 @ w))) / 5, f_logreg, (3,), **D))


def f_g8(w):
    return jnp.sum(jnp.tanh(X53 @ w))


plant("G08", "gradient", "tanh′ forgotten", r"factor from the derivative of tanh is missing",
      lambda: check.gradient(lambda w: X53.T @ (1 - np.tanh(X53 @ w) ** 2), f_g8, (3,), **D))(
    lambda: check.gradient(lambda w: X53.T @ np.ones(5), f_g8, (3,), **D))


def f_g9(w):
    return jnp.sum(sig(X53 @ w))


plant("G09", "gradient", "σ instead of σ′", r"sigmoid σ itself where its derivative belongs")(
    lambda: check.gradient(lambda w: X53.T @ npsig(X53 @ w), f_g9, (3,), **D))


def f_g10(x):
    return x @ x + jnp.sum(jnp.cos(2 * x))


plant("G10", "gradient", "sign slip in the cos term", r"term 2 of 2 .* wrong sign")(
    lambda: check.gradient(lambda x: 2 * x + 2 * np.sin(2 * x), f_g10, (3,), **D))


def f_g11(x, A, b):
    return 0.5 * jnp.sum((A @ x - b) ** 2)


G11 = dict(shapes=[(3,), (4, 3), (4,)], **D)
plant("G11", "gradient", "A r instead of Aᵀ r (shapes do not fit)", r"shapes do not fit",
      lambda: check.gradient(lambda x, A, b: A.T @ (A @ x - b), f_g11, **G11))(
    lambda: check.gradient(lambda x, A, b: jnp.dot(A, A @ x - b), f_g11, **G11))


def f_g12(x):
    return x @ S3 @ x / (x @ x)


plant("G12", "gradient", "Rayleigh quotient: denominator's term missing", r"derivative of the denominator is"
      r" missing")(lambda: check.gradient(lambda x: 2 * S3 @ x / (x @ x), f_g12, (3,), **D))


def f_g13(x):
    return jnp.sum(x**3)


plant("G13", "gradient", "power rule: exponent not lowered", r"exponent was not lowered")(
    lambda: check.gradient(lambda x: 3 * x**3, f_g13, (3,), **D))


def f_g14(x):
    return jnp.exp(x @ x) + x[0] * x[1]


plant("G14", "gradient", "chain rule: inner gradient 2x missing", r"derivative of its argument is missing|"
      r"term 1 of 2")(
    lambda: check.gradient(lambda x: np.exp(x @ x) * np.ones(3) + np.array([x[1], x[0], 0.0]), f_g14, (3,),
                           **D))

# ------------------------------------------------------------------ ch03: Jacobians


def layer(x, W, b):
    return jnp.tanh(W @ x + b)


JL = dict(shapes=[(4,), (3, 4), (3,)], **D)
plant("J01", "Jacobian", "tanh′ forgotten", r"factor from the derivative of tanh is missing",
      lambda: check.jacobian(lambda x, W, b: np.diag(1 - np.tanh(W @ x + b) ** 2) @ W, layer, **JL))(
    lambda: check.jacobian(lambda x, W, b: W, layer, **JL))


def sig_layer(x, W):
    return sig(W @ x)


plant("J02", "Jacobian", "σ instead of σ′", r"sigmoid σ itself where its derivative belongs")(
    lambda: check.jacobian(lambda x, W: np.diag(npsig(W @ x)) @ W, sig_layer, shapes=[(3,), (3, 3)], **D))


def sq_layer(x):
    return jnp.tanh(W33 @ x)


plant("J03", "Jacobian", "square product in the wrong order", r"wrong order")(
    lambda: check.jacobian(lambda x: W33 @ np.diag(1 - np.tanh(W33 @ x) ** 2), sq_layer, (3,), **D))


def inner(x):
    return jnp.array([x[0] * x[1], jnp.sin(x[0]), x[1] ** 2])


def outer(u):
    return jnp.array([u[0] + u[1] * u[2], jnp.exp(u[0]) * u[2]])


def composed(x):
    return outer(inner(x))


def J_in(x):
    return np.array([[x[1], x[0]], [np.cos(x[0]), 0.0], [0.0, 2 * x[1]]])


def J_out(u):
    return np.array([[1.0, u[2], u[1]], [np.exp(u[0]) * u[2], 0.0, np.exp(u[0])]])


def inner_np(x):
    return np.array([x[0] * x[1], np.sin(x[0]), x[1] ** 2])


plant("J04", "Jacobian", "non-square chain in the wrong order", r"wrong order",
      lambda: check.jacobian(lambda x: J_out(inner_np(x)) @ J_in(x), composed, (2,), **D))(
    lambda: check.jacobian(lambda x: J_in(x) @ J_out(inner_np(x)), composed, (2,), **D))


def polar(p):
    return jnp.array([p[0] * jnp.cos(p[1]), p[0] * jnp.sin(p[1]), p[0] ** 2])


def J_polar(p):
    r, t = p
    return np.array([[np.cos(t), -r * np.sin(t)], [np.sin(t), r * np.cos(t)], [2 * r, 0.0]])


plant("J05", "Jacobian", "transpose (non-square)", r"transpose",
      lambda: check.jacobian(J_polar, polar, (2,), **D))(
    lambda: check.jacobian(lambda p: J_polar(p).T, polar, (2,), **D))


def polar2(p):
    return jnp.array([p[0] * jnp.cos(p[1]), p[0] * jnp.sin(p[1])])


plant("J06", "Jacobian", "transpose (square)", r"transpose")(
    lambda: check.jacobian(lambda p: J_polar(p)[:2].T, polar2, (2,), **D))
plant("J07", "Jacobian", "one entry with the wrong sign", r"only entry \[0, 1\] is wrong: the wrong sign")(
    lambda: check.jacobian(lambda p: J_polar(p) * np.array([[1, -1], [1, 1], [1, 1]]), polar, (2,), **D))
plant("J08", "Jacobian", "one column wrong (the r in ∂/∂θ forgotten)", r"only column 1 is wrong")(
    lambda: check.jacobian(lambda p: np.array([[np.cos(p[1]), -np.sin(p[1])], [np.sin(p[1]), np.cos(p[1])],
                                               [2 * p[0], 0.0]]), polar, (2,), **D))


def softmax(z):
    e = jnp.exp(z)
    return e / jnp.sum(e)


def np_softmax(z):
    return np.exp(z) / np.sum(np.exp(z))


plant("J09", "Jacobian", "softmax: the −ssᵀ term missing", r"derivative of the denominator is missing",
      lambda: check.jacobian(lambda z: np.diag(np_softmax(z)) - np.outer(np_softmax(z), np_softmax(z)),
                             softmax, (4,), **D))(
    lambda: check.jacobian(lambda z: np.diag(np_softmax(z)), softmax, (4,), **D))


def xex(x):
    return W34 @ (x * jnp.exp(x))


plant("J10", "Jacobian", "product rule: x·eˣ differentiated as eˣ", r"product rule")(
    lambda: check.jacobian(lambda x: W34 @ np.diag(np.exp(x)), xex, (4,), **D))


def f_j11(x):
    return jnp.array([x[0] ** 2 * x[1], x[1] * jnp.sin(x[2]), x[0] + x[2] ** 3])


def J_j11(x):
    return np.array([[2 * x[0] * x[1], x[0] ** 2, 0], [0, np.sin(x[2]), x[1] * np.cos(x[2])],
                     [1, 0, 3 * x[2] ** 2]])


plant("J11", "Jacobian", "one row twice too large", r"only row 2 is wrong: 2 times")(
    lambda: check.jacobian(lambda x: J_j11(x) * np.array([[1], [1], [2]]), f_j11, (3,), **D))
plant("J12", "Jacobian", "two entries forgotten (0)", r"entries \[0, 1\] and \[1, 2\]|\[0, 1\].*\[1, 2\]")(
    lambda: check.jacobian(lambda x: J_j11(x) * np.array([[1, 0, 1], [1, 1, 0], [1, 1, 1]]), f_j11, (3,), **D))

# ------------------------------------------------------------------ ch04: matrix gradients


def f_m1(X):
    return jnp.trace(B23 @ X @ C42)


plant("M01", "matrix gradient", "trace(AXB): B A instead of Aᵀ Bᵀ", r"transpose",
      lambda: check.gradient(lambda X: B23.T @ C42.T, f_m1, (3, 4), **D))(
    lambda: check.gradient(lambda X: C42 @ B23, f_m1, (3, 4), **D))


def f_m2(X, A, B):
    return jnp.sum((A @ X - B) ** 2)


M2 = dict(shapes=[(3, 2), (4, 3), (4, 2)], **D)
plant("M02", "matrix gradient", "‖AX − B‖²: factor 2 missing", r"1/2 times")(
    lambda: check.gradient(lambda X, A, B: A.T @ (A @ X - B), f_m2, **M2))


def f_m3(X):
    return jnp.linalg.slogdet(X)[1]


plant("M03", "matrix gradient", "log det: X⁻¹ instead of X⁻ᵀ", r"transpose",
      lambda: check.gradient(lambda X: np.linalg.inv(X).T, f_m3, (3, 3), check.invertible(), **D))(
    lambda: check.gradient(lambda X: np.linalg.inv(X), f_m3, (3, 3), check.invertible(), **D))


def f_m4(X, x, y):
    return x @ X @ y


plant("M04", "matrix gradient", "xᵀXy: y xᵀ instead of x yᵀ", r"transpose")(
    lambda: check.gradient(lambda X, x, y: np.outer(y, x), f_m4, shapes=[(3, 3), (3,), (3,)], **D))


def f_m5(W, x, y):
    return 0.5 * jnp.sum((W @ x - y) ** 2)


plant("M05", "matrix gradient", "½‖Wx − y‖²: x rᵀ instead of r xᵀ", r"transpose",
      lambda: check.gradient(lambda W, x, y: np.outer(W @ x - y, x), f_m5, shapes=[(2, 4), (4,), (2,)], **D))(
    lambda: check.gradient(lambda W, x, y: np.outer(x, W @ x - y), f_m5, shapes=[(2, 4), (4,), (2,)], **D))


def f_m6(X, A):
    return jnp.trace(X.T @ A @ X)


plant("M06", "matrix gradient", "trace(XᵀAX): 2AX for a non-symmetric A", r"counted twice")(
    lambda: check.gradient(lambda X, A: 2 * A @ X, f_m6, shapes=[(3, 2), (3, 3)], **D))


def f_m7(X, C):
    return jnp.trace(X @ X) + jnp.sum(C * X)


plant("M07", "matrix gradient", "a term forgotten", r"term 2 of 2 .* missing")(
    lambda: check.gradient(lambda X, C: 2 * X.T, f_m7, shapes=[(3, 3), (3, 3)], **D))


def f_m8(W):
    return jnp.mean(jnp.sum((X53 @ W.T - X52 @ np.ones((2, 2))) ** 2, axis=1))


plant("M08", "matrix gradient", "batch loss: 1/N missing", r"5 times the true one")(
    lambda: check.gradient(lambda W: 2 * (W @ X53.T - (X52 @ np.ones((2, 2))).T) @ X53, f_m8, (2, 3), **D))

# ------------------------------------------------------------------ ch05: backprop and VJPs


def vjp_linear(A, u):
    return A.T @ u


plant("V01", "VJP", "VJP of Ax: A u instead of Aᵀ u", r"with A transposed",
      lambda: check.values(lambda A, u: A.T @ u, vjp_linear, shapes=[(3, 3), (3,)], **D))(
    lambda: check.values(lambda A, u: A @ u, vjp_linear, shapes=[(3, 3), (3,)], **D))


def vjp_solve(A, v):
    return jnp.linalg.solve(A.T, v)


plant("V02", "VJP", "VJP of solve: A⁻¹v instead of A⁻ᵀv", r"with A transposed")(
    lambda: check.values(lambda A, v: np.linalg.solve(A, v), vjp_solve, shapes=[(3, 3), (3,)],
                         domain=[check.invertible(), None], **D))


def vjp_prod(x, y, u):
    return u * y


plant("V03", "VJP", "VJP of x⊙y wrt x: u⊙x instead of u⊙y", r"x in place of y")(
    lambda: check.values(lambda x, y, u: u * x, vjp_prod, shapes=[(3,), (3,), (3,)], **D))


def vjp_weight(x, u):
    return jnp.outer(u, x)


plant("V04", "VJP", "VJP wrt W of Wx: x uᵀ instead of u xᵀ", r"transpose")(
    lambda: check.values(lambda x, u: np.outer(x, u), vjp_weight, shapes=[(4,), (3,)], **D))


def vjp_sq(x, u):
    return 2 * x * u


plant("V05", "VJP", "VJP of x⊙x: factor 2 missing", r"1/2 times")(
    lambda: check.values(lambda x, u: x * u, vjp_sq, shapes=[(3,), (3,)], **D))


def net(W1, W2, x, y):
    return 0.5 * jnp.sum((W2 @ jnp.tanh(W1 @ x) - y) ** 2)


def net_grad(W1, W2, x, y, slip=None):
    h = np.tanh(W1 @ x)
    r = W2 @ h - y
    back = (W2 if slip == "T" else W2.T) @ r
    d = back if slip == "no tanh'" else back * (1 - h**2)
    return np.outer(d, x) * (0.5 if slip == "half" else 1)


NET = dict(shapes=[(3, 2), (3, 3), (2,), (3,)], **D)
plant("V06", "backprop gradient", "W2 instead of W2ᵀ", r"with W2 transposed|where its transpose belongs",
      lambda: check.gradient(net_grad, net, **NET))(
    lambda: check.gradient(lambda W1, W2, x, y: net_grad(W1, W2, x, y, "T"), net, **NET))
plant("V07", "backprop gradient", "tanh′ forgotten", r"factor from the derivative of tanh is missing")(
    lambda: check.gradient(lambda W1, W2, x, y: net_grad(W1, W2, x, y, "no tanh'"), net, **NET))
plant("V08", "backprop gradient", "factor ½ kept", r"1/2 times")(
    lambda: check.gradient(lambda W1, W2, x, y: net_grad(W1, W2, x, y, "half"), net, **NET))


def jvp_layer(W, x, v):
    return (1 - jnp.tanh(W @ x) ** 2) * (W @ v)


plant("V09", "JVP", "JVP with W applied to x, not to v", r"x in place of v")(
    lambda: check.values(lambda W, x, v: (1 - np.tanh(W @ x) ** 2) * (W @ x), jvp_layer,
                         shapes=[(3, 3), (3,), (3,)], **D))

# ------------------------------------------------------------------ ch06: Hessians and HVPs


def f_h(x, A):
    return x @ A @ x + jnp.sin(x[0]) * x[1] + x[2] ** 3 * x[1]


def H_true(x, A):
    H = A + A.T
    H[0, 0] -= np.sin(x[0]) * x[1]
    H[0, 1] += np.cos(x[0])
    H[1, 0] += np.cos(x[0])
    H[1, 2] += 3 * x[2] ** 2
    H[2, 1] += 3 * x[2] ** 2
    H[2, 2] += 6 * x[2] * x[1]
    return H


HS = dict(shapes=[(3,), (3, 3)], **D)
plant("H01", "Hessian", "only the upper triangle filled", r"missing symmetric copies",
      lambda: check.hessian(H_true, f_h, **HS))(
    lambda: check.hessian(lambda x, A: np.triu(H_true(x, A)), f_h, **HS))
plant("H02", "Hessian", "one entry of the wrong sign (and its copy)", r"\[0, 1\].*\[1, 0\].*wrong sign|"
      r"wrong sign.*\[0, 1\].*\[1, 0\]")(
    lambda: check.hessian(lambda x, A: H_true(x, A) * np.array([[1, -1, 1], [-1, 1, 1], [1, 1, 1]]), f_h,
                          **HS))


def f_h3(x, A):
    return x @ A @ x


plant("H03", "Hessian", "2A for a non-symmetric A", r"counted twice|symmetric part|transpose")(
    lambda: check.hessian(lambda x, A: 2 * A, f_h3, **HS))


def f_h4(x):
    return jnp.sum(x**4) + x[0] * x[1]


plant("H04", "Hessian", "diagonal factor 12 written as 4", r"term 1 of 2 .* 1/3 times")(
    lambda: check.hessian(lambda x: np.diag(4 * x**2) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]), f_h4,
                          (3,), **D))


def f_h5(x, A):
    return x @ A @ x + jnp.sum(jnp.exp(x))


plant("H05", "Hessian", "the exp term forgotten", r"term 2 of 2 .* missing")(
    lambda: check.hessian(lambda x, A: A + A.T, f_h5, **HS))
plant("H06", "Hessian", "mixed partial forgotten (the x₀x₁ term)", r"term 2 of 2 .* missing|"
      r"only entries \[0, 1\] and \[1, 0\] are wrong: it is 0")(
    lambda: check.hessian(lambda x: np.diag(12 * x**2), f_h4, (3,), **D))


def f_h7(x):
    return jnp.sum(sig(X53 @ x))


plant("H07", "Hessian", "σ′ where σ″ belongs", r"sigmoid σ one derivative too low")(
    lambda: check.hessian(lambda x: X53.T @ np.diag(npsig(X53 @ x) * (1 - npsig(X53 @ x))) @ X53, f_h7, (3,),
                          **D))


def hvp(x, v):
    return jax.jvp(jax.grad(lambda y: jnp.sum(y**3) + y[0] * y[1] * y[2]), (x,), (v,))[1]


def hvp_np(x, v, use=None):
    H = np.diag(6 * x) + np.array([[0, x[2], x[1]], [x[2], 0, x[0]], [x[1], x[0], 0]])
    return H @ (x if use == "x" else v)


plant("HV1", "HVP", "H x instead of H v", r"x in place of v",
      lambda: check.values(hvp_np, hvp, shapes=[(3,), (3,)], **D))(
    lambda: check.values(lambda x, v: hvp_np(x, v, "x"), hvp, shapes=[(3,), (3,)], **D))
plant("HV2", "HVP", "factor 2 on the diagonal forgotten... no: ½ everywhere", r"1/2 times")(
    lambda: check.values(lambda x, v: hvp_np(x, v) / 2, hvp, shapes=[(3,), (3,)], **D))
plant("HV3", "HVP", "one entry of the product wrong", r"only entry \[2\] is wrong")(
    lambda: check.values(lambda x, v: hvp_np(x, v) + np.array([0, 0, x[0] * v[0]]), hvp, shapes=[(3,), (3,)],
                         **D))


def newton_step(x):
    g = jax.grad(lambda y: jnp.sum(jnp.exp(y)) + y @ S3 @ y)(x)
    H = jax.hessian(lambda y: jnp.sum(jnp.exp(y)) + y @ S3 @ y)(x)
    return -jnp.linalg.solve(H, g)


def newton_np(x, sign=-1):
    g = np.exp(x) + 2 * S3 @ x
    return sign * np.linalg.solve(np.diag(np.exp(x)) + 2 * S3, g)


plant("HV4", "Newton step", "uphill step (sign)", r"wrong sign")(
    lambda: check.values(lambda x: newton_np(x, 1), newton_step, shapes=(3,), **D))

# ------------------------------------------------------------------ ch07: Taylor polynomials


def coeffs(x0):
    return jnp.array([jnp.exp(2 * x0) * 2.0**k / factorial(k) for k in range(5)])


plant("T01", "Taylor", "(k+1)! divisor", r"factorial",
      lambda: check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k) for k in range(5)]),
                           coeffs, **D))(
    lambda: check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k + 1) for k in range(5)]),
                         coeffs, **D))
plant("T02", "Taylor", "index off by one", r"shifted by one place")(
    lambda: check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k) for k in range(1, 6)]),
                         coeffs, **D))
plant("T03", "Taylor", "last coefficient left out", r"only entry \[4\] is wrong: it is 0")(
    lambda: check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k) if k < 4 else 0.0
                                              for k in range(5)]), coeffs, **D))


def sin_coeffs(x0):
    d = [jnp.sin(x0), jnp.cos(x0), -jnp.sin(x0), -jnp.cos(x0)]
    return jnp.array([d[k] / factorial(k) for k in range(4)])


plant("T04", "Taylor", "k! left out", r"factorial|constant factor of their own")(
    lambda: check.values(lambda x0: np.array([np.sin(x0), np.cos(x0), -np.sin(x0), -np.cos(x0)]), sin_coeffs,
                         **D))


def taylor2(x0, h):
    return jnp.exp(x0) * jnp.cos(x0) + (jnp.exp(x0) * (jnp.cos(x0) - jnp.sin(x0))) * h + \
        (-2 * jnp.exp(x0) * jnp.sin(x0)) * h**2 / 2


def taylor2_np(x0, h, half=0.5, sign=1):
    return np.exp(x0) * np.cos(x0) + sign * np.exp(x0) * (np.cos(x0) - np.sin(x0)) * h - \
        2 * np.exp(x0) * np.sin(x0) * h**2 * half


plant("T05", "Taylor", "½ of the quadratic term forgotten", r"term 3 of 3 .* 2 times",
      lambda: check.values(taylor2_np, taylor2, shapes=[(), ()], **D))(
    lambda: check.values(lambda x0, h: taylor2_np(x0, h, 1.0), taylor2, shapes=[(), ()], **D))
plant("T06", "Taylor", "linear term with the wrong sign", r"term 2 of 3 .* wrong sign")(
    lambda: check.values(lambda x0, h: taylor2_np(x0, h, 0.5, -1), taylor2, shapes=[(), ()], **D))


def quad_model(x, d):
    f = lambda y: jnp.sum(jnp.exp(y)) + y @ S3 @ y
    return f(x) + jax.grad(f)(x) @ d + 0.5 * d @ jax.hessian(f)(x) @ d


def quad_np(x, d, half=0.5):
    g = np.exp(x) + 2 * S3 @ x
    H = np.diag(np.exp(x)) + 2 * S3
    return np.sum(np.exp(x)) + x @ S3 @ x + g @ d + half * d @ H @ d


plant("T07", "Taylor", "second-order model without ½", r"term \d of \d .* 2 times")(
    lambda: check.values(lambda x, d: quad_np(x, d, 1.0), quad_model, shapes=[(3,), (3,)], **D))

# ------------------------------------------------------------------ discrete answers

KINDS = ["minimum", "saddle", "maximum", "minimum"]
PTS = [[1.0, 2.0], [0.0, -1.0], [-1.0, 0.5], [2.0, 2.0]]
plant("C01", "classifier", "one case wrong", r"case 3",
      lambda: check.equal(list(KINDS), KINDS, name="classify", cases=["a", "b", "c", "d"], inputs=PTS))(
    lambda: check.equal(["minimum", "saddle", "minimum", "minimum"], KINDS, name="classify",
                        cases=["a", "b", "c", "d"], inputs=PTS))
plant("C02", "classifier", "minimum and maximum swapped", r"case 1 .*case 3, case 4|case 1.*case 3.*case 4")(
    lambda: check.equal(["maximum", "saddle", "minimum", "maximum"], KINDS, name="classify", inputs=PTS))
plant("C03", "classifier", "a case left out", r"3 items, one per case, expected 4")(
    lambda: check.equal(KINDS[:3], KINDS, name="classify"))

# ------------------------------------------------------------------ form of the answer

plant("F01", "gradient", "float32", r"float32")(
    lambda: check.gradient(lambda x: (2 * x + 2 * np.sin(2 * x) * -1).astype(np.float32), f_g10, (3,), **D))
plant("F02", "gradient", "no return", r"returned None")(
    lambda: check.gradient(lambda x: None, f_g10, (3,), **D))
plant("F03", "Jacobian", "all zeros", r"all zeros")(
    lambda: check.jacobian(lambda p: np.zeros((3, 2)), polar, (2,), **D))
plant("F04", "derivative", "log of a negative number", r"nan")(
    lambda: check.derivative(lambda x: np.log(x - 10) * 0 + np.cos(x), jnp.sin, **D))


def corpus() -> list[Planted]:
    return list(C)


def table() -> tuple[int, int, list[str]]:
    rows, hits = [], 0
    for p in C:
        ok, text = named(p)
        hits += ok
        rows.append(f"{p.ident:4} {'✔' if ok else '·'} {p.kind:18.18} {p.mistake:45.45} | {text[:150]}")
    return hits, len(C), rows


if __name__ == "__main__":
    hits, total, rows = table()
    print("\n".join(rows))
    print(f"named: {hits} of {total} ({100 * hits / total:.0f} %)")
