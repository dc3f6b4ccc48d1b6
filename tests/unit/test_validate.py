from __future__ import annotations

import math

import pytest

from jobcore.errors import InvalidInput, PermanentError
from jobcore.validate import minor_units, positive_id


@pytest.mark.parametrize("bad", ["12", 1.0, True, -1, 0, None, 2**63])
def test_ids_must_be_positive_integers(bad):
    with pytest.raises(InvalidInput, match="order_id"):
        positive_id(bad, "order_id")


@pytest.mark.parametrize("bad", [1.5, math.nan, math.inf, "100", -5, 0])
def test_money_is_integer_minor_units(bad):
    with pytest.raises(InvalidInput, match="amount"):
        minor_units(bad, "amount")


def test_invalid_input_is_permanent():
    assert issubclass(InvalidInput, PermanentError)
    assert minor_units(0, "amount", allow_zero=True) == 0
