"""The diagnosis layer names more mistakes (issue 15): each rule names its mistake, and stays silent on a near
miss where its sentence would be false."""

from math import factorial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autograder import check


@pytest.fixture(autouse=True)
def _no_declared_mistakes_left():
    yield
    check._CELL_MISTAKES.clear()


def g(x, A):
    return x @ A @ x + jnp.sin(x[0]) * x[1] + x[2] ** 3 * x[1]


def true_hessian(x, A):
    return np.array(jax.hessian(g)(x, A))


def edited(fn, edit):
    """``fn`` with its answer changed by ``edit(answer, *args)`` in place."""
    def answer(*args):
        out = fn(*args)
        edit(out, *args)
        return out
    return answer


HESS = dict(shapes=[(3,), (3, 3)])


# ------------------------------------------------------------------ a named mistake is the whole diagnosis

def test_a_named_mistake_gets_no_false_wrong_sign_clause():
    # ch01 Q5's self-check encodes the answer as signs: swapping max and min negates the evidence vector, and the
    # old diagnosis added "wrong sign: your answer is minus the true one" to the right, named, diagnosis.
    evidence = lambda p, q: np.array([0.0, 0.0, 1.0, -1.0])
    r = check.values(evidence, lambda p, q: np.array([0.0, 0.0, -1.0, 1.0]), shapes=[(), ()],
                     mistakes={"the maximum and the minimum swapped": evidence})
    assert "your answer equals the maximum and the minimum swapped" in r.message
    assert "sign" not in r.message.split(". First failure")[0]


def test_without_a_named_mistake_the_sign_is_still_named():
    r = check.values(lambda p, q: np.array([0.0, 0.0, 1.0, -1.0]), lambda p, q: np.array([0.0, 0.0, -1.0, 1.0]),
                     shapes=[(), ()])
    assert "wrong sign" in r.message


# ------------------------------------------------------------------ one entry, row or column

def test_one_entry_with_the_wrong_sign():
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__((1, 2), -H[1, 2])), g, **HESS)
    assert "only entry [1, 2] is wrong: the wrong sign there" in r.message


def test_one_entry_off_by_a_factor():
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__((0, 0), 3 * H[0, 0])), g, **HESS)
    assert "only entry [0, 0] is wrong: 3 times the true value there" in r.message


def test_one_entry_wrong_in_another_way():
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__((2, 0), H[2, 0] + x[0] ** 2)), g, **HESS)
    assert "only entry [2, 0] is wrong (indices from 0)" in r.message


def test_one_row_and_one_column():
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__(1, 2 * H[1])), g, **HESS)
    assert "only row 1 is wrong: 2 times the true value there" in r.message
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__((slice(None), 2), H[:, 2] + 1)), g,
                      **HESS)
    assert "only column 2 is wrong" in r.message


def test_one_entry_is_not_claimed_when_the_wrong_entry_moves_between_points():
    calls = []

    def moving(x, A):
        H = true_hessian(x, A)
        calls.append(1)
        H[len(calls) % 3, (len(calls) + 1) % 3] += 1.0
        return H

    r = check.hessian(moving, g, **HESS)
    assert not r.passed and "only" not in r.message


def test_a_sign_is_not_claimed_when_one_entry_is_wrong_by_varying_factors():
    r = check.hessian(edited(true_hessian, lambda H, x, A: H.__setitem__((1, 1), H[1, 1] * (1 + x[0] ** 2))), g,
                      **HESS)
    assert "only entry [1, 1] is wrong (indices" in r.message
    assert "sign" not in r.message and "times" not in r.message


# ------------------------------------------------------------------ symmetric copies

def test_a_missing_symmetric_copy_in_a_hessian():
    r = check.hessian(lambda x, A: np.triu(true_hessian(x, A)), g, **HESS)
    assert "missing symmetric copies" in r.message and "[1, 0] is 0 while its mirror [0, 1]" in r.message


def cubic(x):
    return x[0] * x[1] * x[2] + x[0] ** 2 * x[1] + jnp.sin(x[1]) * x[2] ** 2


def third(x):
    return np.array(jax.jacfwd(jax.hessian(cubic))(x))


def sorted_only(x):
    """D³f with only the entries whose indices are sorted filled, the other copies left at 0."""
    T = third(x)
    i, j, k = np.indices(T.shape)
    return np.where((i <= j) & (j <= k), T, 0.0)


def test_missing_symmetric_copies_in_a_third_derivative_tensor():
    r = check.values(sorted_only, third, shapes=(3,))
    assert "missing symmetric copies" in r.message and "the true array is symmetric" in r.message


def test_no_missing_copy_is_claimed_when_a_mirror_is_wrong_too():
    r = check.hessian(lambda x, A: np.diag(np.diag(true_hessian(x, A))), g, **HESS)
    assert not r.passed and "symmetric copies" not in r.message


def test_no_missing_copy_is_claimed_for_a_non_symmetric_answer():
    f = lambda x: jnp.array([x[0] * x[1], jnp.sin(x[0]) + x[1] ** 3])
    J = lambda x: np.array(jax.jacobian(f)(x))
    r = check.jacobian(lambda x: np.triu(J(x)), f, shapes=(2,))
    assert "symmetric" not in r.message and "only entry [1, 0] is wrong: it is 0 there" in r.message


# ------------------------------------------------------------------ factors per entry, shifts

def coefficients(x0):
    return jnp.array([jnp.exp(2 * x0) * 2.0**k / factorial(k) for k in range(5)])


def test_a_factorial_off_by_one_is_named_entry_by_entry():
    r = check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k + 1) for k in range(5)]),
                     coefficients)
    assert "4 entries are each off by a constant factor of their own" in r.message
    assert "entry [1] is 1/2 times the true one, entry [2] is 1/3 times" in r.message
    assert "factorial" in r.message


def test_no_factors_are_claimed_when_an_entry_is_off_by_a_varying_amount():
    r = check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k) * (1 + k * x0**2)
                                          for k in range(5)]), coefficients)
    assert not r.passed and "constant factor" not in r.message and "shifted" not in r.message


def test_an_index_shifted_by_one():
    r = check.values(lambda x0: np.array([np.exp(2 * x0) * 2.0**k / factorial(k) for k in range(1, 6)]),
                     coefficients)
    assert "shifted by one place: entry k holds the true entry k + 1" in r.message


# ------------------------------------------------------------------ products in the wrong order

def inner(x):                      # R² → R³
    return jnp.array([x[0] * x[1], jnp.sin(x[0]), x[1] ** 2])


def outer(u):                      # R³ → R²
    return jnp.array([u[0] + u[1] * u[2], jnp.exp(u[0]) * u[2]])


def composed(x):
    return outer(inner(x))


def J_inner(x):
    return np.array(jax.jacobian(inner)(x))


def J_outer(u):
    return np.array(jax.jacobian(outer)(u))


def test_a_non_square_chain_in_the_wrong_order_is_named_not_only_its_shape():
    r = check.jacobian(lambda x: J_inner(x) @ J_outer(inner(x)), composed, shapes=(2,))
    assert "wrong shape: yours is (3, 3), expected (2, 2)" in r.message
    assert "nonzero eigenvalues" in r.message and "wrong order" in r.message


def test_a_square_product_in_the_wrong_order_is_named():
    W = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.5, 0.2, -0.7]])
    layer = lambda x: jnp.tanh(W @ x)
    r = check.jacobian(lambda x: W @ np.diag(1 - np.tanh(W @ x) ** 2), layer, shapes=(3,))
    assert "nonzero eigenvalues" in r.message and "wrong order" in r.message


def test_no_wrong_order_is_claimed_for_another_wrong_matrix():
    r = check.jacobian(lambda x: J_inner(x) @ J_outer(inner(x)) + np.eye(3), composed, shapes=(2,))
    assert "wrong shape" in r.message and "order" not in r.message
    W = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.5, 0.2, -0.7]])
    r = check.jacobian(lambda x: W @ np.diag(1 - np.tanh(x) ** 2), lambda x: jnp.tanh(W @ x), shapes=(3,))
    assert not r.passed and "order" not in r.message


def test_a_product_whose_shapes_do_not_fit_says_so():
    r = check.jacobian(lambda x: jnp.dot(J_outer(inner(x)).T, J_inner(x)), composed, shapes=(2,))
    assert "raised TypeError" in r.message and "shapes do not fit" in r.message
    r = check.jacobian(lambda x: 1 / 0, composed, shapes=(2,))
    assert "shapes do not fit" not in r.message


# ------------------------------------------------------------------ discrete answers

def test_a_wrong_case_of_a_classifier_is_named_with_its_input():
    r = check.equal(["minimum", "saddle", "maximum"], ["minimum", "maximum", "maximum"], name="classify",
                    cases=["a minimum", "a maximum", "another maximum"], inputs=[[1.0, 2.0], [-1.0, -2.0], [-3.0]])
    assert "wrong in 1 of 3 cases: case 2 (a maximum)" in r.message
    assert "you answered 'saddle' for input" in r.message and "[-1. -2.]" in r.message
    assert r.mistakes == ["wrong in 1 of 3 cases: case 2 (a maximum)"]


def test_a_list_of_the_wrong_length_and_a_single_answer():
    assert "has 2 items, one per case, expected 3" in check.equal(["a", "b"], ["a", "b", "c"]).message
    assert check.equal("maximum", "minimum").message == "✘ answer: got 'maximum', which is not right"
    assert check.equal(["a", "b"], ["a", "b"]).passed


# ------------------------------------------------------------------ named mistakes declared out of sight

def test_declared_mistakes_apply_to_the_following_checks():
    check.named_mistakes({"the derivative of the wrong function": lambda x: jax.nn.sigmoid(x)})
    r = check.derivative(lambda x: 1 / (1 + np.exp(-x)), jax.nn.sigmoid)
    assert "your answer equals the derivative of the wrong function" in r.message


def test_declared_mistakes_can_be_limited_to_one_check():
    check.named_mistakes({"sigma itself": lambda x: jax.nn.sigmoid(x)}, only="of other")
    assert "sigma itself" not in check.derivative(lambda x: 1 / (1 + np.exp(-x)), jax.nn.sigmoid).message
    r = check.derivative(lambda x: 1 / (1 + np.exp(-x)), jax.nn.sigmoid, name="of other")
    assert "your answer equals sigma itself" in r.message


# ------------------------------------------------------------------ a slip in one term

def f1(x):
    return 4 * x**5 - 3 / x**2 + 7


def test_a_factor_slip_in_one_term_of_a_derivative():
    r = check.derivative(lambda x: 20 * x**4 + 3 / x**3, f1)
    assert "right except in one term: your derivative of the function's term 2 of 3" in r.message
    assert "1/2 times what it should be" in r.message


def test_a_sign_slip_or_a_dropped_term_in_a_gradient():
    q = lambda x, A, b: x @ A @ x - 2 * b @ x + jnp.sum(jnp.cos(x))
    shapes = [(3,), (3, 3), (3,)]
    r = check.gradient(lambda x, A, b: (A + A.T) @ x - 2 * b + np.sin(x), q, shapes=shapes)
    assert "term 3 of 3" in r.message and "is of the wrong sign" in r.message
    r = check.gradient(lambda x, A, b: (A + A.T) @ x - np.sin(x), q, shapes=shapes)
    assert "term 2 of 3" in r.message and "is missing" in r.message


def test_no_term_is_named_when_the_error_is_not_one_term():
    r = check.derivative(lambda x: 20 * x**4 + 6 / x**3 + 0.1 * x, f1)
    assert not r.passed and "term" not in r.message
    r = check.derivative(lambda x: 2 * x * np.cos(x), lambda x: x**2 * jnp.sin(x) / (1 + x**2))
    assert not r.passed and "term" not in r.message
