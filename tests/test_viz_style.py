"""style.fmt over every float: always a short text, never an error, and it reads back within its
rounding (issue: 300 with 2 significant figures once recursed forever)."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tinygraph.viz.style import fmt


@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
       st.integers(min_value=1, max_value=8))
def test_fmt_every_float(x: float, sig: int) -> None:
    s = fmt(x, sig)
    assert isinstance(s, str) and 0 < len(s) <= sig + 8
    if math.isnan(x):
        assert s == "NaN"
    elif math.isinf(x):
        assert float(s) == x
    elif x == 0:
        assert s == "0"
    else:
        # Exact decimal arithmetic: the text may round past the largest float (2e308).
        back, exact = Decimal(s), Decimal(x)
        assert (back < 0) == (x < 0)
        # sig significant figures: within half a unit of the last kept digit
        unit = Decimal(10) ** (exact.adjusted() - sig + 1)
        assert abs(back - exact) <= unit / 2
        assert ("e" in s) == (abs(back) < Decimal("1e-3") or abs(back) >= 10**4)


def test_fmt_examples() -> None:
    assert fmt(300, 2) == "300"
    assert fmt(9999.7) == "1e4"
    assert fmt(1e-6) == "1e-6"
    assert fmt(0.00099996) == "0.001"
    assert fmt(-0.0) == "0"
    assert fmt(5e-324) == "4.941e-324"
    assert fmt(float("-inf")) == "-Inf"
    assert fmt(123.456) == "123.5"
    assert fmt(None) == "—"
