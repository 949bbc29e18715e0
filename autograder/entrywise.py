"""Mistakes confined to some entries of an array answer (used by autograder.diagnosis).

Each function takes the student's arrays ``gots`` and the reference arrays ``expecteds`` at every point (same
shapes, finite) and returns one clause, or None. A clause is stated only when it holds at every point: an entry
counts as wrong where it differs from the reference by more than ``TOL`` times the size of the whole answer.
Indices are Python's, counting from 0, as in the course's code.
"""

from __future__ import annotations

import itertools

import numpy as np

TOL = 1e-6
MOST_LISTED = 3
MOST_FEW = 2      # few_places names at most this many wrong entries (a symmetric pair, say)


def _stack(arrays) -> np.ndarray:
    return np.stack([np.asarray(a, dtype=np.float64) for a in arrays])


def _scales(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The size of each point's answer, shaped to broadcast against its entries."""
    axes = tuple(range(1, got.ndim))
    norms = np.sqrt(np.sum(got**2, axis=axes)) + np.sqrt(np.sum(expected**2, axis=axes))
    return (TOL * norms + 1e-300).reshape((-1,) + (1,) * (got.ndim - 1))


def wrong_entries(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The entries wrong at one point or more (a boolean array of one point's shape)."""
    return np.any(np.abs(got - expected) > _scales(got, expected), axis=0)


def index(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _factor_text(c: float) -> str:
    from .diagnosis import _nice_factor   # one rule for printing factors

    return _nice_factor(c)


def _factor(g: np.ndarray, e: np.ndarray) -> float | None:
    """c with g = c·e entry by entry, established by two or more nonzero reference values; else None."""
    g, e = g.ravel(), e.ravel()
    big = np.abs(e) > TOL * (np.max(np.abs(e), initial=0.0) + 1e-300)
    if np.count_nonzero(big) < 2:
        return None
    c = float(np.vdot(g, e) / np.vdot(e, e))
    tol = TOL * (np.linalg.norm(g) + np.linalg.norm(e)) + 1e-300
    return c if np.linalg.norm(g - c * e) <= tol else None


def _how(g: np.ndarray, e: np.ndarray) -> str:
    """How a wrong block differs from the true one, as a clause after a colon, or ''."""
    if np.all(np.abs(g) <= TOL * (np.max(np.abs(e), initial=0.0) + 1e-300)):
        return ": it is 0 there"
    c = _factor(g, e)
    if c is None or abs(c - 1) < TOL:
        return ""
    if abs(c + 1) < TOL:
        return ": the wrong sign there"
    return f": {_factor_text(c)} times the true value there"


def _block_name(shape: tuple, axis: int, i: int) -> str:
    if len(shape) == 2:
        return f"{'row' if axis == 0 else 'column'} {i}"
    return "the entries " + index_slice(len(shape), axis, i)


def index_slice(ndim: int, axis: int, i: int) -> str:
    return "[" + ", ".join(str(i) if a == axis else ":" for a in range(ndim)) + "]"


def one_place(gots, expecteds) -> str | None:
    """Wrong in exactly one entry, row, column (or slice of a tensor), at every point."""
    got, expected = _stack(gots), _stack(expecteds)
    shape = expected.shape[1:]
    if not shape or int(np.prod(shape)) < 2:
        return None
    wrong = wrong_entries(got, expected)
    where = np.argwhere(wrong)
    if len(where) == 0 or len(where) == wrong.size:
        return None
    if len(where) == 1:
        idx = tuple(where[0])
        sel = (slice(None),) + idx
        return f"only entry {index(idx)} is wrong{_how(got[sel], expected[sel])} (indices from 0)"
    for axis in range(len(shape)):
        rows = set(where[:, axis].tolist())
        if len(rows) == 1 and shape[axis] > 1:
            i = rows.pop()
            g, e = np.take(got, i, axis=axis + 1), np.take(expected, i, axis=axis + 1)
            return (f"only {_block_name(shape, axis, i)} is wrong{_how(g, e)}; everything else is right "
                    "(indices from 0)")
    return None


def few_places(gots, expecteds) -> str | None:
    """Two to MOST_FEW entries wrong (fewer than half of them)."""
    got, expected = _stack(gots), _stack(expecteds)
    shape = expected.shape[1:]
    if not shape:
        return None
    wrong = wrong_entries(got, expected)
    where = [tuple(w) for w in np.argwhere(wrong)]
    if not 2 <= len(where) <= MOST_FEW or 2 * len(where) >= wrong.size:
        return None
    hows = [_how(got[(slice(None),) + w], expected[(slice(None),) + w]) for w in where]
    listed = ", ".join(index(w) for w in where[:-1]) + " and " + index(where[-1])
    if len(set(hows)) == 1:
        return f"only entries {listed} are wrong{hows[0]}; everything else is right (indices from 0)"
    parts = ", ".join(f"{index(w)}{' (' + h[2:] + ')' if h else ''}" for w, h in zip(where, hows))
    return f"only {len(where)} entries are wrong: {parts}; everything else is right (indices from 0)"


def entry_factors(gots, expecteds) -> str | None:
    """Two or more entries wrong, each by a constant factor of its own (a factorial or index slip)."""
    if len(gots) < 2:
        return None
    got, expected = _stack(gots), _stack(expecteds)
    shape = expected.shape[1:]
    if not shape:
        return None
    wrong = wrong_entries(got, expected)
    listed = []
    for idx in map(tuple, np.argwhere(wrong)):
        sel = (slice(None),) + idx
        c = _factor(got[sel], expected[sel])
        if c is None:
            return None
        listed.append((idx, c))
    if len(listed) < 2 or len({round(c, 6) for _, c in listed}) < 2:
        return None
    parts = [f"entry {index(i)} is {'minus' if abs(c + 1) < TOL else _factor_text(c) + ' times'} the true one"
             for i, c in listed[:MOST_LISTED]]
    more = ", …" if len(listed) > MOST_LISTED else ""
    hint = ": a factor that depends on the index (a factorial? a count off by one?)" if len(shape) == 1 else ""
    return (f"{len(listed)} entries are each off by a constant factor of their own ({', '.join(parts)}{more})"
            + hint)


def shifted(gots, expecteds) -> str | None:
    """A 1-D answer whose entries sit one place away from where they belong (an index off by one)."""
    got, expected = _stack(gots), _stack(expecteds)
    if expected.ndim != 2 or expected.shape[1] < 3:
        return None

    def same(a, b):
        return bool(np.all(np.abs(a - b) <= _scales(got, expected)))

    if same(expected[:, 1:], expected[:, :-1]):
        return None
    if same(got[:, :-1], expected[:, 1:]):
        return "your entries are shifted by one place: entry k holds the true entry k + 1 (an index off by one)"
    if same(got[:, 1:], expected[:, :-1]):
        return "your entries are shifted by one place: entry k holds the true entry k − 1 (an index off by one)"
    return None


def _symmetric_axes(expected: np.ndarray) -> list[int]:
    """The largest group of a point's axes (two or more, equal sizes) under whose permutations every reference is
    symmetric."""
    shape = expected.shape[1:]
    for size in range(len(shape), 1, -1):
        for axes in itertools.combinations(range(len(shape)), size):
            if len({shape[a] for a in axes}) != 1:
                continue
            if all(np.all(np.abs(expected - _permuted(expected, axes, p)) <= _scales(expected, expected))
                   for p in itertools.permutations(axes)):
                return list(axes)
    return []


def _permuted(a: np.ndarray, axes, perm) -> np.ndarray:
    order = list(range(a.ndim - 1))
    for src, dst in zip(axes, perm):
        order[src] = dst
    return np.transpose(a, [0] + [o + 1 for o in order])


def missing_copies(gots, expecteds) -> str | None:
    """A symmetric array of which only some copies of each entry are filled: every wrong entry is 0 while an entry
    that mirrors it is right."""
    got, expected = _stack(gots), _stack(expecteds)
    if expected.ndim < 3:
        return None
    axes = _symmetric_axes(expected)
    if not axes:
        return None
    scale = _scales(got, expected)
    bad = np.abs(got - expected) > scale
    if not np.any(bad) or np.any(bad & (np.abs(got) > scale)):
        return None
    right = ~bad & (np.abs(expected) > scale)
    perms = list(itertools.permutations(axes))
    unfilled = bad.copy()
    for p in perms:
        unfilled &= ~_permuted(right, axes, p)
    if np.any(unfilled):
        return None
    point, *idx = np.argwhere(bad)[0]
    for p in perms:
        mirror = list(idx)
        for src, dst in zip(axes, p):
            mirror[dst] = idx[src]
        if right[(point, *mirror)]:
            return (f"missing symmetric copies: the true array is symmetric, but your entry {index(idx)} is 0 "
                    f"while its mirror {index(mirror)} is filled (fill every copy)")
    return None
