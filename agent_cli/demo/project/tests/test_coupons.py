import pytest

from shopcart import parse_coupon


def test_parse_percent_coupon():
    coupon = parse_coupon("save15")
    assert coupon.kind == "percent" and coupon.amount == 15


def test_parse_flat_coupon():
    assert parse_coupon("FLAT20").kind == "flat"


@pytest.mark.parametrize("code", ["SAVE0", "SAVE101", "FREE", ""])
def test_bad_codes_are_refused(code):
    with pytest.raises(ValueError):
        parse_coupon(code)
