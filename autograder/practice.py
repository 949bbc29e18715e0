"""Practice problems: parameters drawn at random so a learner can repeat a problem with new numbers, and
self-checks that wait politely for an answer that is not written yet.

A practice notebook (course/practice/<chapter>.ipynb) draws its parameters from ``draw()``; each problem has a
"your turn" cell that calls ``attempt(check.<kind>, my_answer, ...)`` and a folded solution cell that runs the
same check on the worked answer. Nothing here is graded.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Callable

import numpy as np

SEED_VARIABLE = "VC4ML_PRACTICE_SEED"   # the tests and the site build fix it; a learner gets new numbers


def draw(seed: int | None = None) -> np.random.Generator:
    """The generator of this notebook's parameters: a fresh seed on every run unless one is given (or set in
    the environment variable VC4ML_PRACTICE_SEED). The seed is printed, so the same problems can be drawn again."""
    if seed is None:
        fixed = os.environ.get(SEED_VARIABLE, "").strip()
        seed = int(fixed) if fixed.isdigit() else secrets.randbelow(10**6)
    print(f"practice seed {seed}: `rng = practice.draw({seed})` draws these problems again")
    return np.random.default_rng(seed)


def unanswered(answer: Any) -> bool:
    """True for the placeholders a "your turn" cell starts with: ``None`` or ``...``."""
    return answer is None or answer is Ellipsis


def attempt(check: Callable, answer: Any, *args, **kwargs):
    """``check(answer, *args, **kwargs)``, or a reminder when the answer is still the placeholder."""
    if unanswered(answer):
        print("… not answered yet: replace the placeholder above with your answer, then run this cell again")
        return None
    return check(answer, *args, **kwargs)
