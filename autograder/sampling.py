"""Random, generic test points inside a declared domain (DESIGN.md, "Test points")."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Sampler = Callable[[np.random.Generator, tuple], np.ndarray]


def interval(lo: float, hi: float, avoid: Sequence[float] = (), margin: float = 0.05) -> Sampler:
    """Uniform on [lo, hi], staying ``margin`` away from each value in ``avoid`` (kinks, 0, 1)."""
    if not lo < hi:
        raise ValueError(f"interval needs lo < hi, got [{lo}, {hi}]")
    avoid = tuple(float(a) for a in avoid)

    def sample(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        x = rng.uniform(lo, hi, size=shape)
        for _ in range(100):
            bad = np.zeros(np.shape(x), dtype=bool)
            for a in avoid:
                bad |= np.abs(x - a) < margin
            if not bad.any():
                return np.asarray(x, dtype=np.float64)
            x = np.where(bad, rng.uniform(lo, hi, size=shape), x)
        raise ValueError(f"could not sample [{lo}, {hi}] away from {avoid}")

    sample.description = f"[{lo}, {hi}]" + (f" avoiding {list(avoid)}" if avoid else "")
    return sample


def positive(lo: float = 0.2, hi: float = 3.0) -> Sampler:
    """Strictly positive reals, e.g. for log and sqrt."""
    return interval(lo, hi, avoid=(1.0,))


def invertible(shift: float | None = None) -> Sampler:
    """Square, non-symmetric, well-conditioned matrices: Gaussian plus ``n`` times the identity."""

    def sample(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"invertible() needs a square shape, got {shape}")
        n = shape[0]
        return rng.normal(size=shape) + (n if shift is None else shift) * np.eye(n)

    sample.description = "well-conditioned square matrices"
    return sample


def spd() -> Sampler:
    """Symmetric positive-definite matrices with condition number of order 10."""

    def sample(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        n = shape[0]
        m = rng.normal(size=(n, n))
        return m @ m.T / n + np.eye(n)

    sample.description = "symmetric positive-definite matrices"
    return sample


DEFAULT = interval(-2.0, 2.0, avoid=(-1.0, 0.0, 1.0))


def as_sampler(domain) -> Sampler:
    """Accept a sampler, a ``(lo, hi)`` pair or None (the default interval)."""
    if domain is None:
        return DEFAULT
    if callable(domain):
        return domain
    if isinstance(domain, (tuple, list)) and len(domain) == 2 and all(np.isscalar(v) for v in domain):
        return interval(float(domain[0]), float(domain[1]))
    raise TypeError(f"domain must be a (lo, hi) pair or a sampler, got {domain!r}")


def describe(sampler: Sampler) -> str:
    label = getattr(sampler, "description", None)
    return label or "a custom domain"
