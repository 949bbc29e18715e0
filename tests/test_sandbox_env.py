"""What a grading kernel's environment says to XLA (autograder.sandbox): compile fast, change no result."""

import json
import os
import subprocess
import sys

import numpy as np

from autograder import sandbox

CFG = {"plan": {"bwrap": True}, "files": "/files", "ipc": "/ipc"}

# float64 results of the operations the course's answers use, printed exactly
PROGRAM = """
import json, numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
r = np.random.default_rng(0)
x, A = r.normal(size=(7, 5)) * 3, r.normal(size=(5, 5))
ops = [jnp.sin, jnp.exp, jnp.tanh, lambda v: jnp.log1p(jnp.abs(v)), jnp.expm1, jax.nn.sigmoid, jax.nn.softplus,
       lambda v: jax.nn.logsumexp(v, axis=1), lambda v: jax.nn.softmax(v, axis=1), lambda v: v @ A @ A.T,
       lambda v: jnp.sum(v ** 3), lambda v: jnp.abs(v) ** 2.7, lambda v: jnp.linalg.slogdet(A + v[:5] @ v[:5].T)[1],
       lambda v: jnp.linalg.solve(A, v.T), jax.grad(lambda v: jnp.sum(jnp.tanh(v) * jnp.exp(-v ** 2))),
       jax.jit(lambda v: jnp.sum(jnp.sin(v) * jnp.cos(v) + jnp.exp(-v) / (1 + v ** 2)))]
print(json.dumps([np.asarray(op(x)).ravel().tolist() for op in ops]))
"""


def test_the_fast_compile_flags_come_first_and_the_instructors_own_win(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    flags = sandbox._kernel_env(CFG)["XLA_FLAGS"].split()
    assert flags == [*sandbox.fast_compile_flags(), "--xla_backend_optimization_level=3"]
    monkeypatch.delenv("XLA_FLAGS")
    assert sandbox._kernel_env(CFG)["XLA_FLAGS"].split() == list(sandbox.fast_compile_flags())


def test_a_jaxlib_without_known_flags_gets_none(monkeypatch):
    # XLA aborts on a flag it does not know: another jaxlib gets no flag rather than dead kernels
    monkeypatch.setattr(sandbox, "FAST_COMPILE", {})
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert "XLA_FLAGS" not in sandbox._kernel_env(CFG)


def _results(flags: str) -> list:
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_pinned_jaxlib_accepts_the_flags_and_results_do_not_change():
    plain, fast = _results(""), _results(" ".join(sandbox.fast_compile_flags()))
    for a, b in zip(plain, fast):
        assert np.allclose(a, b, rtol=1e-15, atol=0), "a fast-compile flag changed a float64 result"


WORKER = """
import os, sys
from autograder.grading import autograde
if sys.argv[1] == "late":
    import jax.numpy as jnp
    jnp.ones(2).block_until_ready()   # the backend started before the worker set up its cache
autograde._compile_cache()
print(os.environ.get("XLA_FLAGS", ""))
"""


def test_a_grading_worker_compiles_its_references_with_the_fast_compile_flags(tmp_path):
    """The driver's references compile with the kernels' flags; a backend already started is left as it is."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(AUTOGRADER_COMPILE_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    said = {when: subprocess.run([sys.executable, "-c", WORKER, when], env=env, capture_output=True, text=True,
                                 check=True).stdout.split() for when in ("early", "late")}
    assert said == {"early": list(sandbox.fast_compile_flags()), "late": []}
