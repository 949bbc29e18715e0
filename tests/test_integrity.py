"""Autodiff inside a "hand" derivation is flagged; honest code is not. Guards the JAX internals we hook."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import jet

from autograder import check, integrity


def f(x):
    return jnp.sum(jnp.sin(x) * x**2)


def honest_jnp(x):
    return jnp.cos(x) * x**2 + 2 * x * jnp.sin(x)


def honest_numpy(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def honest_fancy(x):
    # library calls with custom JVP rules or internal transposes must not look like autodiff
    noise = jax.nn.relu(x) * 0 + jax.nn.softmax(x) * 0 + jnp.linalg.norm(x) * 0
    solved = jnp.linalg.solve(jnp.eye(x.shape[0]) * 2.0, 2.0 * honest_jnp(x))
    return solved + noise + jax.scipy.special.logsumexp(x) * 0


ALIAS = jax.grad
WARM = jax.jit(jax.grad(f))
WARM(np.ones(4))


def _helper(x):
    return jax.grad(f)(x)


CHEATS = {
    "grad": lambda x: jax.grad(f)(x),
    "alias taken earlier": lambda x: ALIAS(f)(x),
    "getattr": lambda x: getattr(jax, "gr" + "ad")(f)(x),
    "importlib": lambda x: getattr(importlib.import_module("jax"), "jacrev")(f)(x),
    "vjp": lambda x: jax.vjp(f, x)[1](1.0)[0],
    "jvp basis": lambda x: jnp.array([jax.jvp(f, (x,), (e,))[1] for e in jnp.eye(x.shape[0])]),
    "jacfwd": lambda x: jax.jacfwd(f)(x),
    "linearize": lambda x: jnp.array([jax.linearize(f, x)[1](e) for e in jnp.eye(x.shape[0])]),
    "helper in another cell": _helper,
    "warm jit(grad) compiled earlier": lambda x: WARM(x),
    "numpy-wrapped grad": lambda x: np.asarray(jax.grad(f)(np.asarray(x))),
    "jet": lambda x: jnp.array([jet.jet(f, (x,), ((e,),))[1][0] for e in jnp.eye(x.shape[0])]),
}


@pytest.mark.parametrize("name", CHEATS)
def test_cheats_are_flagged(name):
    for _ in range(2):   # and again, warm: nothing the first check compiled hides it
        r = check.gradient(CHEATS[name], f, shapes=(4,))
        assert not r.passed and "automatic differentiation" in r.message, r.message


@pytest.mark.parametrize("honest", [honest_jnp, honest_numpy, honest_fancy])
def test_honest_answers_pass(honest):
    assert check.gradient(honest, f, shapes=(4,)).passed


def test_hooks_are_removed_afterwards():
    from jax._src.interpreters import ad

    before = ad.JVPTrace.__init__
    with integrity.watch_autodiff() as seen:
        jax.grad(f)(np.ones(3))
    assert seen and ad.JVPTrace.__init__ is before


def test_eager_watch_sees_a_warm_jitted_gradient_every_time():
    from jax._src import config

    for _ in range(3):
        with integrity.watch_autodiff(clear=False, eager=True) as seen:
            assert config.disable_jit.value
            WARM(np.ones(4))
        assert seen and not config.disable_jit.value
    WARM(np.ones(4))
    with integrity.watch_autodiff(clear=False) as seen:   # compiled, not traced: unseen
        WARM(np.ones(4))
    assert not seen


def test_clear_traces_retraces_staged_functions_and_keeps_eager_dispatch(capsys):
    from jax._src import dispatch

    def noisy(x):
        print("traced")
        return jnp.sin(x)

    staged = jax.checkpoint(noisy)
    with jax.disable_jit():
        staged(1.0), staged(2.0)
        assert capsys.readouterr().out.count("traced") == 1   # the trace is cached...
        integrity.clear_traces()
        staged(3.0)
        assert capsys.readouterr().out.count("traced") == 1   # ...and cleared
    jnp.cos(1.0)
    integrity.clear_traces()
    assert dispatch.xla_primitive_callable.cache_info().currsize > 0   # eager ops stay


def test_source_lint_names_the_call():
    assert integrity.autodiff_names_in_source(_helper) == ["jax.grad"]
    assert integrity.autodiff_names_in_source(honest_jnp) == []


def test_pinned_jax_version():
    # The hooks use jax._src internals; re-run this file before moving the pin in pyproject.toml.
    assert jax.__version__ == "0.10.2"
