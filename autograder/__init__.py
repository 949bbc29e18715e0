"""Vector Calculus for Machine Learning: the course's check library and grading tools.

Notebooks import :mod:`autograder.check`; instructors use ``python -m autograder``.
"""

__version__ = "0.1.0"
