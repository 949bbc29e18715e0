"""autograder.fingerprint: equal while nothing a function reads has changed, different
as soon as anything has."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from autograder import fingerprint


def cell(ns: dict, source: str) -> dict:
    """Run ``source`` in the notebook namespace ``ns``, as a new cell does."""
    exec(compile(source, f"<cell-{len(ns)}>", "exec"), ns)
    return ns


def test_unchanged_function_keeps_its_fingerprint():
    ns = cell({}, "import jax.numpy as jnp\nc = 2.0\n"
                  "def f(x):\n    return c * jnp.sin(x)\n")
    assert fingerprint.of(ns["f"]) == fingerprint.of(ns["f"])
    assert hash(fingerprint.of(ns["f"])) == hash(fingerprint.of(ns["f"]))


def test_rerunning_the_same_cell_keeps_it_and_another_body_changes_it():
    ns = cell({}, "def f(x):\n    return x ** 2\n")
    first = fingerprint.of(ns["f"])
    cell(ns, "def f(x):\n    return x ** 2\n")
    assert fingerprint.of(ns["f"]) == first     # the same computation
    cell(ns, "def f(x):\n    return x ** 3\n")
    assert fingerprint.of(ns["f"]) != first


def test_a_reassigned_global_changes_it():
    ns = cell({}, "c = 2.0\ndef f(x):\n    return c * x\n")
    first = fingerprint.of(ns["f"])
    ns["c"] = 3.0
    assert fingerprint.of(ns["f"]) != first


def test_an_array_changed_in_place_changes_it():
    ns = cell({"np": np}, "A = np.arange(6.0).reshape(2, 3)\nB = np.zeros(1000)\n"
                          "def f(x):\n    return A @ x + B[0]\n")
    first = fingerprint.of(ns["f"])
    ns["A"][0, 0] = 7.0
    second = fingerprint.of(ns["f"])
    assert second != first
    ns["B"][999] = 1.0      # a large array: by digest
    assert fingerprint.of(ns["f"]) != second


def test_a_redefined_helper_of_f_changes_it():
    ns = cell({}, "def g(x):\n    return x + 1\ndef f(x):\n    return g(x) * 2\n")
    first = fingerprint.of(ns["f"])
    cell(ns, "def g(x):\n    return x - 1\n")
    assert fingerprint.of(ns["f"]) != first


def test_closures_and_defaults_count():
    def make(c, d=1.0):
        return lambda x, d=d: c * x + d
    assert fingerprint.of(make(2.0)) == fingerprint.of(make(2.0))
    assert fingerprint.of(make(2.0)) != fingerprint.of(make(3.0))
    assert fingerprint.of(make(2.0)) != fingerprint.of(make(2.0, 5.0))


def test_a_jitted_function_is_looked_into():
    ns = cell({"jax": jax}, "c = 2.0\ndef g(x):\n    return c * x\nf = jax.jit(g)\n")
    first = fingerprint.of(ns["f"])
    ns["c"] = 3.0
    assert fingerprint.of(ns["f"]) != first


def test_library_functions_count_by_identity():
    key = fingerprint.of((jax.grad, jnp.sin, 0))
    assert key == fingerprint.of((jax.grad, jnp.sin, 0))
    assert key != fingerprint.of((jax.grad, jnp.cos, 0))
    assert fingerprint.of(functools.partial(jnp.power, 2.0)) is not None


def test_recursion_and_jax_arrays():
    ns = cell({}, "def f(x, n=2):\n    return x if n == 0 else f(x, n - 1) * W\n")
    ns["W"] = jnp.ones(3)
    first = fingerprint.of(ns["f"])
    assert first is not None and first == fingerprint.of(ns["f"])
    ns["W"] = jnp.ones(3)   # another array, even if equal
    assert fingerprint.of(ns["f"]) != first


def test_what_it_cannot_see_into_gives_none():
    class Model:
        scale = 2.0

        def loss(self, x):
            return self.scale * x

    ns = cell({"model": Model()}, "def f(x):\n    return model.loss(x)\n")
    assert fingerprint.of(ns["f"]) is None
    assert fingerprint.of(Model().loss) is None
    assert fingerprint.of(np.array([object()])) is None
