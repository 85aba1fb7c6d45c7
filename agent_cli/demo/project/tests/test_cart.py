import pytest

from shopcart import Cart


def test_empty_cart_totals_zero():
    assert Cart().total() == 0


def test_lines_with_same_item_merge():
    cart = Cart()
    cart.add("pen", 1.5)
    cart.add("pen", 1.5, qty=3)
    assert len(cart.lines) == 1
    assert cart.total() == 6.0


def test_flat_coupon_takes_amount_off():
    cart = Cart()
    cart.add("book", 40.0)
    cart.apply_coupon("FLAT5")
    assert cart.total() == 35.0


def test_flat_coupon_never_goes_below_zero():
    cart = Cart()
    cart.add("sticker", 2.0)
    cart.apply_coupon("FLAT5")
    assert cart.total() == 0.0


def test_percentage_coupon_takes_percent_off():
    cart = Cart()
    cart.add("lamp", 80.0, qty=2)
    cart.apply_coupon("SAVE10")
    assert cart.total() == 144.0


def test_negative_price_is_refused():
    with pytest.raises(ValueError):
        Cart().add("bad", -1.0)
