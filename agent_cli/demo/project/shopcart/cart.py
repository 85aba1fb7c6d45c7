"""The cart: lines of (name, unit price, quantity) and at most one coupon."""

from __future__ import annotations

from dataclasses import dataclass, field

from shopcart.coupons import Coupon, parse_coupon


@dataclass
class Line:
    name: str
    price: float
    qty: int


@dataclass
class Cart:
    lines: list[Line] = field(default_factory=list)
    coupon: Coupon | None = None

    def add(self, name: str, price: float, qty: int = 1) -> None:
        if price < 0 or qty < 1:
            raise ValueError("price must be >= 0 and qty >= 1")
        for line in self.lines:
            if line.name == name and line.price == price:
                line.qty += qty
                return
        self.lines.append(Line(name, price, qty))

    def subtotal(self) -> float:
        return sum(line.price * line.qty for line in self.lines)

    def apply_coupon(self, code: str) -> None:
        self.coupon = parse_coupon(code)

    def total(self) -> float:
        subtotal = self.subtotal()
        if self.coupon is None:
            return round(subtotal, 2)
        discount = self.coupon.amount
        return round(max(subtotal - discount, 0.0), 2)
