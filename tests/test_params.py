"""collapsekit.params: check_int, check_number and Param.parse against good and bad input."""

import math

import numpy as np
import pytest

from collapsekit.params import Param, check_int, check_number, parse_params


def test_check_int_accepts_ints_and_returns_plain_int():
    assert check_int("n", 3) == 3 and check_int("n", 3, 3) == 3 and check_int("n", -7) == -7
    got = check_int("n", np.int64(4), 1)
    assert got == 4 and type(got) is int
    assert check_int("n", 5, 0, 5) == 5 and check_int("n", -2, -2, 1) == -2
    assert check_int("n", None, 1, optional=True) is None


@pytest.mark.parametrize("value, low, high, match", [
    (True, None, None, r"^n=True must be an integer$"),
    (False, 0, None, r"^n=False must be an integer >= 0$"),
    (2.0, 1, None, r"^n=2\.0 must be an integer >= 1$"),
    (2.5, None, None, "must be an integer"),
    (float("nan"), None, None, r"^n=nan must be an integer$"),
    (float("inf"), 1, None, r"n=inf must be an integer >= 1"),
    ("3", None, None, r"^n='3' must be an integer$"),
    (None, 1, None, r"^n=None must be an integer >= 1$"),
    (0, 1, None, r"^n=0 must be an integer >= 1$"),
    (6, 0, 5, r"^n=6 must be an integer >= 0 and <= 5$"),
    (-1, 0, 5, r"^n=-1 must be an integer >= 0 and <= 5$"),
    (4, None, 3, r"^n=4 must be an integer <= 3$"),
])
def test_check_int_rejects(value, low, high, match):
    with pytest.raises(ValueError, match=match):
        check_int("n", value, low, high)


def test_check_number_accepts_reals_and_returns_float():
    assert check_number("x", 2) == 2.0 and type(check_number("x", 2)) is float
    assert check_number("x", np.float32(0.5), 0, 1) == 0.5
    assert check_number("x", 0, 0) == 0.0 and check_number("x", 1, 0, 1, open_low=True) == 1.0
    assert check_number("x", -1e300) == -1e300
    assert check_number("x", None, 0, optional=True) is None


@pytest.mark.parametrize("value, kw, match", [
    (True, {}, r"^x=True must be a finite number$"),
    (float("nan"), {}, r"^x=nan must be a finite number$"),
    (float("inf"), {"low": 0}, r"^x=inf must be a finite number >= 0$"),
    (-math.inf, {}, "finite number"),
    ("0.5", {}, "finite number"),
    (None, {"low": 0}, r"^x=None must be a finite number >= 0$"),
    (-0.1, {"low": 0}, r"^x=-0\.1 must be a finite number >= 0$"),
    (0, {"low": 0, "open_low": True}, r"^x=0 must be a finite number > 0$"),
    (1.5, {"low": 0, "high": 1, "open_low": True}, r"^x=1\.5 must be a finite number > 0 and <= 1$"),
    (2, {"high": 1}, r"^x=2 must be a finite number <= 1$"),
    (1 + 2j, {}, "finite number"),
])
def test_check_number_rejects(value, kw, match):
    with pytest.raises(ValueError, match=match):
        check_number("x", value, **kw)


def test_param_parse_text_and_values():
    assert Param(int, 1, "n").parse("s", "n", "12") == 12
    assert Param(int, 1, "n").parse("s", "n", 3.0) == 3  # a whole float is an int
    assert Param(float, 1.0, "x").parse("s", "x", "0.25") == 0.25
    assert Param(bool, False, "b").parse("s", "b", "yes") is True
    assert Param(bool, False, "b").parse("s", "b", "off") is False
    assert Param(int, 1, "n", many=True).parse("s", "n", "1, 2,3") == (1, 2, 3)
    assert Param(str, "a", "c", choices=("a", "b")).parse("s", "c", "b") == "b"
    assert Param(int, None, "n").parse("s", "n", None) is None  # optional: not set
    assert Param(float, 0.5, "x", low=0, high=1).parse("s", "x", 1) == 1.0


@pytest.mark.parametrize("spec, raw, match", [
    (Param(int, 1, "n"), True, r"^--param n=True for s: expected an integer$"),
    (Param(int, 1, "n"), 2.5, "expected an integer"),
    (Param(int, 1, "n"), "2.5", "expected an integer"),
    (Param(int, 1, "n"), "nan", "expected an integer"),
    (Param(float, 1.0, "n"), "nan", r"^--param n=nan for s: expected a finite number$"),
    (Param(float, 1.0, "n"), float("inf"), "expected a finite number"),
    (Param(float, 1.0, "n"), "-inf", "expected a finite number"),
    (Param(float, 1.0, "n"), False, "expected a number"),
    (Param(int, 1, "n", low=1), "0", r"^--param n=0 for s: must be at least 1$"),
    (Param(float, 0.5, "n", low=0, high=1), 1.5, r"must be at most 1$"),
    (Param(bool, True, "n"), "maybe", "expected true or false"),
    (Param(str, "a", "n", choices=("a", "b")), "c", "choose one of a, b"),
    (Param(int, 1, "n", many=True), ",", "at least one value"),
    (Param(int, 1, "n", many=True), "1,x", "expected an integer"),
])
def test_param_parse_rejects(spec, raw, match):
    with pytest.raises(ValueError, match=match):
        spec.parse("s", "n", raw)


def test_parse_params_defaults_base_and_unknown_names():
    specs = {"n": Param(int, 2, "n", low=1), "x": Param(float, None, "x")}
    assert parse_params("s", specs, {}) == {"n": 2, "x": None}
    assert parse_params("s", specs, {"x": "0.5"}, base={"n": 4}) == {"n": 4, "x": 0.5}
    with pytest.raises(ValueError, match="unknown parameter.*y for s: it takes n, x"):
        parse_params("s", specs, {"y": 1})


def test_param_open_low_refuses_the_bound_itself():
    p = Param(float, 0.5, "a threshold", low=0, high=1, open_low=True)
    assert p.parse("study 'x'", "threshold", "1e-9") == 1e-9
    with pytest.raises(ValueError, match="--param threshold=0 for study 'x': must be above 0"):
        p.parse("study 'x'", "threshold", "0")
    assert Param(float, 0.5, "", low=0).parse("o", "t", 0) == 0  # inclusive by default
