"""The driver's cache key of a test's function covers everything the function's value depends on."""

from autograder.grading.driver import _freeze


def _test_functions(source: str) -> dict:
    scope: dict = {}
    exec(compile(source, "<test q1_test>", "exec"), scope)
    return scope


def test_keyword_only_defaults_make_different_keys():
    # `lambda *a, i=i: ...` keeps i in __kwdefaults__: the i-th output of a reference is another reference,
    # and sharing one compiled reference between them graded the solution wrong (ch09 Q5, found while writing it).
    scope = _test_functions("outputs = [lambda *a, i=i: a[i] for i in range(2)]")
    first, second = scope["outputs"]
    assert _freeze(first, None) != _freeze(second, None)
    assert _freeze(first, None) == _freeze(first, None)


def test_positional_defaults_and_closures_make_different_keys():
    scope = _test_functions("def pick(i):\n    return lambda a: a[i]\n"
                            "by_default = [lambda a, i=i: a[i] for i in range(2)]\n"
                            "by_closure = [pick(i) for i in range(2)]")
    for first, second in (scope["by_default"], scope["by_closure"]):
        assert _freeze(first, None) != _freeze(second, None)
