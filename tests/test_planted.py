"""Issue 15, item 4: the diagnosis names at least 95 % of a corpus of planted mistakes (tests/planted.py), every
correct answer passes, and no rule states a false diagnosis: random wrong answers and near misses of each rule
get only the neutral "wrong at k of n points"."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planted
from autograder import check

NEUTRAL = "wrong at 5 of 5 points"


def test_the_corpus_is_named(capsys):
    hits, total, rows = planted.table()
    with capsys.disabled():
        print("\n" + "\n".join(rows) + f"\nnamed: {hits} of {total} ({100 * hits / total:.0f} %)")
    assert total >= 60
    assert hits >= 0.95 * total, "\n".join(r for r in rows if " · " in r)


@pytest.mark.parametrize("item", [p for p in planted.corpus() if p.right], ids=lambda p: p.ident)
def test_correct_answers_pass(item):
    r = item.right()
    assert r.passed, r.message


# ------------------------------------------------------------------ random wrong answers: nothing is claimed

def _wobble(seed):
    """A smooth random error, different at every point and in every entry."""
    rng = np.random.default_rng(seed)

    def error(shape, x):
        c = rng.normal(size=shape)
        return 0.3 * np.sin(c * (1.7 + np.sum(np.asarray(x) ** 2)) + c)
    return error


BASES = [
    ("derivative", planted.f_d1, lambda x: 3 * x**2 * np.sin(x) + x**3 * np.cos(x), None),
    ("derivative", planted.f_d5, lambda x: 2 * planted.npsig(2 * x + 1) * (1 - planted.npsig(2 * x + 1)), None),
    ("gradient", planted.f_g10, lambda x: 2 * x - 2 * np.sin(2 * x), (3,)),
    ("gradient", planted.f_g9, lambda x: planted.X53.T @ (planted.npsig(planted.X53 @ x) *
                                                          (1 - planted.npsig(planted.X53 @ x))), (3,)),
    ("jacobian", planted.polar, planted.J_polar, (2,)),
    ("jacobian", planted.sq_layer, lambda x: np.diag(1 - np.tanh(planted.W33 @ x) ** 2) @ planted.W33, (3,)),
    ("hessian", planted.f_h4, lambda x: np.diag(12 * x**2) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]]),
     (3,)),
]


@pytest.mark.parametrize("base", BASES, ids=lambda b: f"{b[0]}-{b[1].__name__}")
@pytest.mark.parametrize("seed", [0, 1])
def test_random_wrong_answers_get_no_false_diagnosis(base, seed):
    kind, f, true, shapes = base
    error = _wobble(seed)

    def wrong(x):
        t = np.asarray(true(x), np.float64)
        return t + error(t.shape, x)

    run = getattr(check, kind)
    r = run(wrong, f, seed=3) if shapes is None else run(wrong, f, shapes, seed=3)
    assert planted.diagnosis_of(r) == NEUTRAL, r.message


def test_random_wrong_values_get_no_false_diagnosis():
    for seed in range(3):
        error = _wobble(seed)
        r = check.values(lambda x, v: planted.hvp_np(x, v) + error((3,), x), planted.hvp,
                         shapes=[(3,), (3,)], seed=3)
        assert planted.diagnosis_of(r) == NEUTRAL, r.message
        r = check.values(lambda x0, h: planted.taylor2_np(x0, h) + error((), x0 + h), planted.taylor2,
                         shapes=[(), ()], seed=3)
        assert planted.diagnosis_of(r) == NEUTRAL, r.message


# ------------------------------------------------------------------ near misses of each rule

def near(answer, x, eps=1e-3):
    """An answer a little off the mistake it imitates (an extra small term that varies with x)."""
    return answer + eps * np.cos(3 * np.sum(x)) * np.ones(np.shape(answer))


def test_a_misapplied_rule_is_not_claimed_for_a_near_miss():
    r = check.derivative(lambda x: near(2 * planted.npsig(2 * x + 1), x), planted.f_d5, seed=3)
    assert "misapplies" not in r.message and planted.diagnosis_of(r) == NEUTRAL
    r = check.jacobian(lambda x, W, b: near(W, x), planted.layer, **planted.JL)
    assert "misapplies" not in r.message
    r = check.derivative(lambda x: near(x * 3.0 ** (x - 1) + 2 * x, x), planted.f_d3, seed=3)
    assert "power rule" not in r.message


def test_the_hessian_of_a_slipped_gradient_is_named_and_a_near_miss_is_not():
    sig = planted.npsig
    X = planted.X53
    r = check.hessian(lambda x: X.T @ np.diag(sig(X @ x) * (1 - sig(X @ x))) @ X, planted.f_h7, (3,), seed=3)
    assert "one derivative too low" in r.message
    r = check.hessian(lambda x: X.T @ np.diag(sig(X @ x) * (1 - sig(X @ x))) @ X + 1e-3 * np.outer(x, x),
                      planted.f_h7, (3,), seed=3)
    assert "misapplies" not in r.message


def test_the_function_itself_is_not_claimed_for_a_near_miss():
    r = check.derivative(lambda x: near(x * np.exp(x), x), planted.f_d14, seed=3)
    assert "value itself" not in r.message


def test_altered_inputs_are_not_claimed_for_a_near_miss_or_a_symmetric_matrix():
    r = check.values(lambda A, u: near(A @ u, u), planted.vjp_linear, shapes=[(3, 3), (3,)], seed=3)
    assert "computed with" not in r.message
    r = check.values(lambda A, u: (A + A.T) @ u, lambda A, u: (A + A.T) @ u * 2, shapes=[(3, 3), (3,)], seed=3)
    assert "transposed" not in r.message and "1/2 times" in r.message
    r = check.values(lambda x, v: near(planted.hvp_np(x, v, "x"), x), planted.hvp, shapes=[(3,), (3,)], seed=3)
    assert "in place of" not in r.message


def test_a_power_of_the_input_is_not_claimed_when_the_ratio_is_not_one():
    r = check.derivative(lambda x: np.sqrt(x) / 2 * (1 + 0.01 * x), planted.f_d11, check.positive(), seed=3)
    assert "times the true one at every point" not in r.message and planted.diagnosis_of(r) == NEUTRAL


def test_a_power_of_the_input_is_named():
    r = check.derivative(lambda x: 1 / 2 * np.sqrt(x), planted.f_d11, check.positive(), seed=3)
    assert "your answer is x times the true one at every point" in r.message


def test_few_entries_are_not_claimed_when_three_are_wrong():
    J = planted.J_j11
    r = check.jacobian(lambda x: J(x) * np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]]), planted.f_j11, (3,), seed=3)
    assert "only entries" not in r.message


def test_a_term_of_a_values_answer_is_not_claimed_for_a_near_miss():
    r = check.values(lambda x0, h: near(planted.taylor2_np(x0, h, 1.0), x0 + h), planted.taylor2,
                     shapes=[(), ()], seed=3)
    assert "term" not in r.message


def test_a_transposed_factor_in_the_chain_rule_is_not_claimed_for_a_symmetric_one():
    S = planted.S3
    f = lambda x: jnp.sum(jnp.tanh(S @ x))
    r = check.gradient(lambda x: S @ (1 - np.tanh(S @ x) ** 2) * 1.01, f, (3,), seed=3)
    assert "transpose" not in r.message and "1.01 times" in r.message


def test_a_slip_at_an_exponential_is_named_once_even_if_its_derivative_is_itself():
    # exp's "itself" slip is the true derivative: it can never match a wrong answer
    r = check.derivative(lambda x: np.exp(2 * x), lambda x: jnp.exp(2 * x), seed=3)
    assert "misapplies" not in r.message and "1/2 times" in r.message
    assert jax.config.jax_enable_x64
