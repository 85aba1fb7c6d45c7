"""A tiny shopping cart."""

from shopcart.cart import Cart
from shopcart.coupons import Coupon, parse_coupon

__all__ = ["Cart", "Coupon", "parse_coupon"]
