"""Coupon codes: SAVE<n> takes n percent off, FLAT<n> takes n off the total."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"^(SAVE|FLAT)(\d{1,3})$")


@dataclass(frozen=True)
class Coupon:
    code: str
    kind: str  # "percent" or "flat"
    amount: int


def parse_coupon(code: str) -> Coupon:
    match = _CODE.match(code.strip().upper())
    if not match:
        raise ValueError(f"unknown coupon code: {code!r}")
    prefix, amount = match.groups()
    kind = "percent" if prefix == "SAVE" else "flat"
    if kind == "percent" and not 0 < int(amount) <= 100:
        raise ValueError(f"a percentage coupon must be between 1 and 100: {code!r}")
    return Coupon(code=code, kind=kind, amount=int(amount))
