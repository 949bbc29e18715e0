"""autograder.check: verdicts, messages and the diagnosis of each mistake class."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autograder import check


def f_quad(x, A):
    return x @ A @ x


def f_vec(x):
    return jnp.array([x[0] ** 2 * x[1], 5 * x[0] + jnp.sin(x[1]), x[2] * x[0]])[:2]


def jac_vec(x):
    return np.array([[2 * x[0] * x[1], x[0] ** 2, 0.0], [5.0, np.cos(x[1]), 0.0]])


def test_float64_is_on():
    assert jnp.ones(2).dtype == jnp.float64


def test_pass_line_names_points_and_worst_error():
    r = check.derivative(lambda x: 3 * x**2, lambda x: x**3, points=4)
    assert r.passed and r.points == 4 and r.worst_error < 1e-12
    assert repr(r).startswith("✔ derivative") and "4 random points" in repr(r) and "worst relative error" in repr(r)


def test_failure_shows_point_expected_and_got():
    r = check.derivative(lambda x: 2 * x**2, lambda x: x**3)
    assert not r.passed
    assert "at x = " in r.message and "expected" in r.message and "but got" in r.message


def test_assert_passed_raises_assertion_error_with_same_message():
    r = check.derivative(lambda x: 2 * x**2, lambda x: x**3)
    with pytest.raises(AssertionError) as info:
        r.assert_passed()
    assert str(info.value) == r.message
    assert info.value._render_traceback_() == [r.message]


def test_assert_passed_prints_on_success(capsys):
    check.derivative(lambda x: 3 * x**2, lambda x: x**3).assert_passed()
    assert capsys.readouterr().out.startswith("✔")


@pytest.mark.parametrize("answer", [
    lambda x, A: (A + A.T) @ x,                       # numpy
    lambda x, A: jnp.dot(A, x) + jnp.dot(x, A),       # jax, another form
    lambda x, A: list((A + A.T) @ x),                 # a Python list means the same thing
])
def test_equivalent_answers_in_numpy_jax_or_lists_pass(answer):
    assert check.gradient(answer, f_quad, shapes=[(4,), (4, 4)])


def test_python_scalar_answers_pass():
    assert check.derivative(lambda x: float(np.cos(x)), jnp.sin)


def test_shape_mismatch_shows_both_shapes():
    r = check.gradient(lambda x, A: ((A + A.T) @ x)[:, None], f_quad, shapes=[(4,), (4, 4)])
    assert "wrong shape: yours is (4, 1), expected (4,)" in r.message and "1-D" in r.message


def test_transposed_jacobian_is_a_layout_mix_up():
    r = check.jacobian(lambda x: jac_vec(x).T, f_vec, shapes=(3,))
    assert "transpose" in r.message and "layout" in r.message and "(3, 2)" in r.message


def test_transposed_square_jacobian_is_named():
    g = lambda x: jnp.array([x[0] * x[1], jnp.sin(x[0]) + x[1] ** 3])
    jac = lambda x: np.array([[x[1], x[0]], [np.cos(x[0]), 3 * x[1] ** 2]])
    assert "transpose of the true one" in check.jacobian(lambda x: jac(x).T, g, shapes=(2,)).message


def test_constant_factor_is_named():
    r = check.gradient(lambda x, A: 2 * (A + A.T) @ x, f_quad, shapes=[(3,), (3, 3)])
    assert "constant factor" in r.message and "2 times" in r.message
    r = check.gradient(lambda x, A: 0.5 * (A + A.T) @ x, f_quad, shapes=[(3,), (3, 3)])
    assert "1/2 times" in r.message


def test_sign_is_named():
    assert "wrong sign" in check.derivative(lambda x: -np.cos(x), jnp.sin).message


def test_nan_is_named():
    r = check.derivative(lambda x: np.nan * x, jnp.sin)
    assert "nan or inf" in r.message


def test_right_at_some_points_only():
    r = check.derivative(lambda x: abs(x), lambda x: x**2 / 2, domain=(-2, 2), points=40, seed=0)
    assert "right at" in r.message and "of 40 points" in r.message


def test_missing_symmetric_part_of_a_hessian():
    r = check.hessian(lambda x, A: 2 * A, f_quad, shapes=[(3,), (3, 3)])
    assert "symmetric" in r.message


def test_named_mistakes_win():
    r = check.gradient(lambda x, A: 2 * A @ x, f_quad, shapes=[(4,), (4, 4)],
                       mistakes={"2Ax, which is right only for a symmetric A": lambda x, A: 2 * A @ x})
    assert "your answer equals 2Ax" in r.message


def test_stub_none_and_exceptions_are_explained():
    def stub(x):
        raise NotImplementedError()
    assert "not answered yet" in check.derivative(stub, jnp.sin).message
    assert "returned None" in check.derivative(lambda x: None, jnp.sin).message
    assert "raised ZeroDivisionError" in check.derivative(lambda x: 1 / 0, jnp.sin).message
    assert "expected a function" in check.derivative(3.0, jnp.sin).message


def test_student_cannot_mutate_the_test_points():
    seen = []
    def sneaky(x, A):
        seen.append(x.copy()); x[:] = 0; A[:] = 0
        return (A + A.T) @ x
    r = check.gradient(sneaky, f_quad, shapes=[(3,), (3, 3)], seed=1)
    assert not r.passed   # zeroing its own copies gives the wrong answer, never a corrupted reference
    assert "all zeros" in r.message


def test_low_precision_answers_fail_and_say_so():
    """The question owns the tolerance: a float32 or float16 answer never loosens it (it used to pass)."""
    for dtype in (np.float32, np.float16):
        r = check.derivative(lambda x, dtype=dtype: dtype(np.cos(x)), jnp.sin)
        assert not r.passed and "checked in float64" in r.message and np.dtype(dtype).name in r.message


def test_autodiff_in_a_hand_derivation_is_flagged():
    r = check.derivative(lambda x: jax.grad(jnp.sin)(x), jnp.sin)
    assert not r.passed and "automatic differentiation" in r.message


def test_values_allows_autodiff_by_default_and_can_forbid_it():
    hvp = lambda x, v: jax.jvp(jax.grad(lambda y: jnp.sum(jnp.sin(y))), (x,), (v,))[1]
    ref = lambda x, v: -np.sin(x) * v
    assert check.values(hvp, ref, shapes=[(3,), (3,)])
    assert not check.values(hvp, ref, shapes=[(3,), (3,)], autodiff=False)


def test_close_hides_the_answer_unless_revealed():
    r = check.close(1.5, 2.5, name="x*")
    assert not r.passed and "2.5" not in r.message
    assert "2.5" in check.close(1.5, 2.5, reveal=True).message


def test_equal():
    assert check.equal("minimum", "minimum")
    assert not check.equal("maximum", "minimum")


def test_bad_domain_is_a_clear_error():
    with pytest.raises(TypeError, match="domain"):
        check.derivative(jnp.cos, jnp.sin, domain="positive")


# ---------------------------------------------------------------- property-based

UNARY = [
    (jnp.sin, np.cos), (jnp.cos, lambda x: -np.sin(x)), (jnp.exp, np.exp),
    (lambda x: x**3, lambda x: 3 * x**2), (jnp.tanh, lambda x: 1 - np.tanh(x) ** 2),
]


@st.composite
def compositions(draw):
    """A random f = a·u(b·x) + c·v(x) and its hand derivative."""
    (u, du), (v, dv) = draw(st.sampled_from(UNARY)), draw(st.sampled_from(UNARY))
    a, b, c = (draw(st.floats(0.3, 2.0)) * draw(st.sampled_from([-1, 1])) for _ in range(3))
    f = lambda x: a * u(b * x) + c * v(x)
    df = lambda x: a * b * du(b * x) + c * dv(x)
    return f, df


FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(compositions())
def test_correct_derivatives_of_random_functions_pass(pair):
    f, df = pair
    assert check.derivative(df, f, domain=(-1.5, 1.5)).passed


@FAST
@given(compositions(), st.sampled_from([-1.0, 2.0, 0.5, 3.0]))
def test_scaled_derivatives_are_named(pair, factor):
    f, df = pair
    assume(max(abs(float(df(x))) for x in np.linspace(-1.5, 1.5, 7)) > 1e-3)  # e.g. cos(x) − cos(−x) ≡ 0
    r = check.derivative(lambda x: factor * df(x), f, domain=(-1.5, 1.5), points=6)
    assert not r.passed
    word = "wrong sign" if factor == -1.0 else "constant factor"
    assert word in r.message


@FAST
@given(st.integers(2, 5), st.integers(2, 5))
def test_random_linear_maps_pass_and_their_transposes_are_named(m, n):
    W = np.random.default_rng(m * 10 + n).normal(size=(m, n))
    f = lambda x: jnp.tanh(W @ x)
    jac = lambda x: (1 - np.tanh(W @ x) ** 2)[:, None] * W
    assert check.jacobian(jac, f, shapes=(n,)).passed
    r = check.jacobian(lambda x: jac(x).T, f, shapes=(n,))
    assert not r.passed and "transpose" in r.message



# ------------------------------------------------------------ warm checks in a notebook
# References are compiled once and reused (keyed by what f reads); answers run with jit
# disabled, so a gradient jitted earlier is traced again. Every check must still see
# autodiff and never use a stale reference.


def cell(ns: dict, source: str) -> dict:
    """Run ``source`` in the notebook namespace ``ns``, as a new cell does."""
    exec(compile(source, f"<cell-{len(ns)}>", "exec"), ns)
    return ns


SETUP = """
import jax, jax.numpy as jnp, numpy as np
c = 2.0
def f(x):
    return c * x[0] ** 2 * x[1] + jnp.sin(x[2])
def grad_f(x):
    return jnp.array([2 * c * x[0] * x[1], c * x[0] ** 2, jnp.cos(x[2])])
"""


def gradient(ns, answer, f="f"):
    answer = ns[answer] if isinstance(answer, str) else answer
    return check.gradient(answer, ns[f], shapes=(3,))


def flagged(result) -> bool:
    return not result.passed and "automatic differentiation" in result.message


def test_a_jitted_cheat_is_flagged_on_every_warm_check():
    ns = cell({}, SETUP)
    assert gradient(ns, "grad_f")   # warm: the reference is compiled
    cell(ns, "cheat = jax.jit(jax.grad(f))\ncheat(np.ones(3))\n")
    for _ in range(3):
        assert flagged(gradient(ns, "cheat"))


def test_a_cheat_under_checkpoint_or_scan_is_flagged_on_every_warm_check():
    ns = cell({}, SETUP + "g = jax.grad(f)\n")
    cell(ns, "ckpt = jax.jit(jax.checkpoint(g))\n"
             "def body(s, _):\n    return g(s), None\n"
             "scan = jax.jit(lambda x: jax.lax.scan(body, x, None, length=1)[0])\n")
    for name in ("ckpt", "scan"):
        ns[name](np.ones(3))
        for _ in range(2):
            assert flagged(gradient(ns, name)), name


def test_jitted_and_precompiled_honest_answers_pass():
    ns = cell({}, SETUP)
    cell(ns, "jitted = jax.jit(grad_f)\njitted(np.ones(3))\n"
             "aot = jax.jit(grad_f).lower(np.ones(3)).compile()\n")   # runs only compiled
    for name in ("jitted", "aot", "jitted"):
        r = gradient(ns, name)
        assert r.passed, (name, r.message)


def test_switching_between_cheat_and_formula_gives_each_its_verdict():
    ns = cell({}, SETUP)
    verdicts = []
    cheat = "jax.jit(jax.grad(f))"
    for answer in (cheat, "grad_f", cheat, "jax.jit(grad_f)"):
        cell(ns, f"answer = {answer}")
        verdicts.append(gradient(ns, "answer").passed)
    assert verdicts == [False, True, False, True]


def test_a_redefined_f_is_checked_against_its_new_self():
    ns = cell({}, SETUP)
    old_answer = ns["grad_f"]
    assert gradient(ns, old_answer)
    cell(ns, "def f(x):\n    return c * x[0] ** 3 * x[1] + jnp.sin(x[2])\n")
    assert not gradient(ns, old_answer)
    cell(ns, "def grad_f(x):\n"
             "    x0, x1, x2 = x\n"
             "    return jnp.array([3 * c * x0 ** 2 * x1, c * x0 ** 3, jnp.cos(x2)])\n")
    assert gradient(ns, "grad_f")
    cell(ns, SETUP)   # the first f again: a new function object, the same computation
    assert gradient(ns, "grad_f")
    assert not gradient(ns, lambda x: jnp.zeros(3) + 1.0)


def test_a_changed_global_or_array_is_never_served_stale():
    ns = cell({}, SETUP)
    assert gradient(ns, "grad_f")
    frozen = ns["grad_f"](np.array([0.5, 1.5, 2.5]))
    ns["c"] = -3.0                  # f and grad_f both read c
    assert gradient(ns, "grad_f")
    assert not gradient(ns, lambda x: frozen)
    cell(ns, "W = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])\n"
             "def h(x):\n    return jnp.sum(jnp.tanh(W @ x))\n"
             "def grad_h(x):\n    return W.T @ (1 - jnp.tanh(W @ x) ** 2)\n")
    assert gradient(ns, "grad_h", "h")
    ns["W"][0, 0] = -4.0            # in place
    assert gradient(ns, "grad_h", "h")


def test_a_jitted_setup_function_sees_its_global_change():
    ns = cell({}, SETUP + "def plain(x):\n"
                          "    return c * x[0] ** 2 * x[1] + jnp.sin(x[2])\n"
                          "fj = jax.jit(plain)\n")
    assert gradient(ns, "grad_f", "fj")
    ns["c"] = 5.0
    assert gradient(ns, "grad_f", "fj")


def test_the_reference_is_compiled_once_per_function(capsys):
    ns = cell({}, SETUP + "def counted(x):\n"
                          "    print('traced')\n"   # when traced, not when run compiled
                          "    return c * x[0] ** 2 * x[1] + jnp.sin(x[2])\n")
    for _ in range(3):
        assert gradient(ns, "grad_f", "counted")
    assert capsys.readouterr().out.count("traced") == 1
    ns["c"] = 4.0
    assert gradient(ns, "grad_f", "counted")
    assert capsys.readouterr().out.count("traced") == 1


def test_a_ragged_answer_is_a_verdict_not_a_crash():
    ragged = lambda x: [1.0, [2.0, 3.0]]
    r = check.gradient(ragged, lambda x: jnp.sum(x ** 2), shapes=(2,))
    assert not r.passed and "not an array" in r.message
