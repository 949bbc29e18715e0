"""The twin (autograder.twin): equal to f at the centre, other derivatives there, seen through aliases and jit."""

import jax
import jax.numpy as jnp
import numpy as np

from autograder import check, twin  # noqa: F401  (check switches JAX to float64)


def f(x, W):
    return jnp.tanh(W @ x)


jitted = jax.jit(f)


def formula(x, W):
    return (1 - jnp.tanh(W @ x) ** 2)[:, None] * W


def setup(rng):
    x, W = rng.normal(size=4), rng.normal(size=(3, 4))
    slopes = [rng.normal(size=4), rng.normal(size=(3, 4))]
    return [x, W], slopes, rng.normal(size=3)


def test_same_value_other_derivative_and_formulas_do_not_notice():
    centre, slopes, offset = setup(np.random.default_rng(0))
    alias = f
    before = np.asarray(jax.jacobian(f)(*centre))
    with twin.swapped([f], centre, slopes, offset), jax.disable_jit():
        assert np.array_equal(alias(*centre), f(*centre))  # exactly equal at the centre
        after = np.asarray(jax.jacobian(alias)(*centre))
        by_hand = np.asarray(formula(*centre))
        h = 1e-6
        e = np.eye(4)[1]
        fd = (f(centre[0] + h * e, centre[1]) - f(centre[0] - h * e, centre[1])) / (2 * h)
    assert np.allclose(by_hand, before) and not np.allclose(after, before)
    assert not np.allclose(fd, before[:, 1], rtol=1e-6)
    assert np.array_equal(np.asarray(jax.jacobian(f)(*centre)), before)  # restored


def test_jitted_functions_and_compiled_caches_follow_the_twin():
    centre, slopes, offset = setup(np.random.default_rng(1))
    warm = jax.jit(jax.jacobian(jitted))
    before = np.asarray(warm(*centre))
    with twin.swapped([jitted], centre, slopes, offset), jax.disable_jit():
        assert not np.allclose(warm(*centre), before)
    assert np.allclose(warm(*centre), before)


def g(x):
    return jnp.sin(x) * x


def test_a_batch_of_points_is_a_batch_of_twins():
    """Vectorised finite differences and quadratures evaluate f on many points at once: each one is perturbed."""
    rng = np.random.default_rng(3)
    centre, offset = [rng.normal(size=4), rng.normal(size=(3, 4))], rng.normal(size=3)
    slopes = [rng.normal(size=4), np.zeros((3, 4))]
    h, x, W = 1e-6, centre[0], centre[1]
    points = x + h * np.eye(4)                      # shape (4, 4): a batch of 4 points
    true = (np.tanh(points @ W.T) - np.tanh(W @ x)) / h
    with twin.swapped([f], centre, slopes, offset):
        batched = (jax.vmap(lambda p: f(p, W))(points) - f(x, W)) / h
        looped = np.stack([(f(p, W) - f(x, W)) / h for p in points])
    assert not np.allclose(batched, true, rtol=1e-4) and not np.allclose(looped, true, rtol=1e-4)
    x0, h = 0.7, 1e-5                             # a scalar function on an array of points at once
    with twin.swapped([g], [np.float64(x0)], [np.float64(0.9)], np.float64(1.3)):
        stencil = g(x0 + h * np.array([-2.0, -1.0, 1.0, 2.0]))
    fd = (stencil[0] - 8 * stencil[1] + 8 * stencil[2] - stencil[3]) / (12 * h)
    assert abs(fd - (np.cos(x0) * x0 + np.sin(x0))) > 0.5


def test_an_unusual_call_is_not_the_centre():
    centre, slopes, offset = setup(np.random.default_rng(2))
    with twin.swapped([f], centre, slopes, offset):
        batch = f(np.ones((4, 2)), centre[1])          # another shape: the plain value
    assert np.allclose(batch, np.tanh(centre[1] @ np.ones((4, 2))))


def _compiles(run) -> int:
    """How many XLA programs ``run()`` compiles."""
    from jax._src import dispatch

    seen = []

    def listen(event, duration, **_):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            seen.append(duration)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(seen)


def heavy(X, a):   # many operations: op by op, each is compiled on its own
    Z = jnp.linalg.solve(X, jnp.outer(a, a)) + jnp.tanh(X) * jnp.exp(-X ** 2)
    return jnp.linalg.slogdet(X @ X.T + jnp.eye(len(a)))[1] + jnp.sum(jnp.log1p(Z ** 2)) / jnp.max(jnp.abs(a))


def test_the_kernel_runs_a_swapped_setup_function_as_one_compiled_program():
    """The kernel's check that f is really swapped evaluates the set-up function (autograder.endpoint): as one
    compiled program, traced afresh, not op by op. It must see the twin exactly as the op-by-op run does, even
    for a jit wrapper with a compiled copy of f in its cache, and fall back for Python control flow."""
    from autograder import endpoint

    rng = np.random.default_rng(4)
    for k, fn in enumerate((heavy, jax.jit(heavy))):
        n = 4 + k
        X, a = rng.normal(size=(n, n)) + n * np.eye(n), rng.normal(size=n)
        centre, slopes = [X, a], [rng.normal(size=(n, n)), rng.normal(size=n)]
        near = [X + 1e-3 * slopes[0], a + 1e-3 * slopes[1]]
        own = float(fn(*near))                       # a jit wrapper's cache now holds f itself
        with twin.swapped([fn], centre, slopes, 2.0):
            with jax.disable_jit():
                eager = []
                op_by_op = _compiles(lambda: eager.append(float(fn(*near))))
            compiled = []
            once = _compiles(lambda: compiled.append(float(endpoint._one_computation(fn)(*near))))
        assert abs(eager[0] - own) > 1e-4, "the twin differs from f near the centre"
        assert np.isclose(compiled[0], eager[0], rtol=1e-12, atol=0)
        assert once == 1 and op_by_op > 5, (once, op_by_op)
        assert not endpoint._TRACED and not endpoint._OWN_TRACE[0]

    def branchy(x):
        return jnp.sin(x) if float(x[0]) > 0 else x
    assert np.allclose(endpoint._one_computation(branchy)(np.ones(3)), np.sin(np.ones(3)))
