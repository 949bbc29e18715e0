"""The channel's value format: what a kernel sends is plain data of bounded size, checked on the way in."""

import base64
import json

import numpy as np
import pytest

from autograder import wire


def roundtrip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value))))


def test_values_cross_unchanged_with_their_dtype():
    for value in [np.arange(6.0).reshape(2, 3), np.float32(1.5), np.array(2.0), np.array([1, 2], dtype=np.int8),
                  np.array([1 + 2j]), np.array([True, False])]:
        back = roundtrip(value)
        assert back.dtype == np.asarray(value).dtype and back.shape == np.shape(value)
        assert np.array_equal(back, value)
    assert roundtrip(np.float64(0.1)) == 0.1 and roundtrip(float("nan")) != roundtrip(float("nan"))
    assert roundtrip(("minimum", [1, 2.5, None], {"a": True})) == ("minimum", [1, 2.5, None], {"a": True})


@pytest.mark.parametrize("data, why", [
    ({"a": {"dtype": "|O", "shape": [1], "b64": ""}}, "dtype"),                     # objects: no pickles
    ({"a": {"dtype": "<f8", "shape": [4000, 4000], "b64": ""}}, "numbers"),         # too many numbers
    ({"a": {"dtype": "<f8", "shape": [2], "b64": base64.b64encode(b"x" * 8).decode()}}, "match"),
    ({"v": "x" * (wire.MAX_STRING + 1)}, "characters"),
    ({"l": [{"v": 1}] * (wire.MAX_ITEMS + 1)}, "longer"),
    ({"code": "import os"}, "malformed"),
    ({"d": {"k": {"v": object.__name__}, "": {"l": "not a list"}}}, "malformed"),
])
def test_hostile_replies_are_refused_with_a_reason(data, why):
    with pytest.raises(wire.WireError, match=why):
        wire.decode(data)


def test_nesting_is_bounded():
    data = {"v": 1}
    for _ in range(wire.MAX_DEPTH + 2):
        data = {"l": [data]}
    with pytest.raises(wire.WireError, match="deeply"):
        wire.decode(data)


def test_objects_are_not_encoded():
    with pytest.raises(wire.WireError):
        wire.encode(object())
