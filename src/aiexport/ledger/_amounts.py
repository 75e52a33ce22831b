"""Exact TPP amounts stored as integer micro-TPP.

SQLite has no exact decimal type (its NUMERIC is a float), so every amount is stored as a 64-bit
integer count of millionths of a TPP. The largest cap in the rule (5,064,000,000 TPP) is 5e15
micro-TPP, far inside int64. An amount finer than a millionth is refused, never rounded.

>>> to_micro(Decimal("1979.5"))
1979500000
>>> from_micro(1979500000)
Decimal('1979.5')
"""

from __future__ import annotations

from decimal import Decimal

from aiexport.errors import InputError

SCALE = 1_000_000
_QUANTUM = Decimal(1) / SCALE
_MAX_MICRO = 2**63 - 1  # a signed 64-bit column on both backends


def to_micro(amount: Decimal | int | str) -> int:
    """Convert a TPP amount to integer micro-TPP, refusing anything that would need rounding."""
    if type(amount) is Decimal and amount.is_finite():  # the common case, in a few C calls
        micro = int(scaled := amount.scaleb(6))
        if micro == scaled and -_MAX_MICRO <= micro <= _MAX_MICRO:
            return micro
    elif type(amount) is int:
        micro = amount * SCALE
        if -_MAX_MICRO <= micro <= _MAX_MICRO:
            return micro
    value = Decimal(amount)
    if not value.is_finite():
        raise InputError(f"TPP amount {amount!r} is not a finite number; give a decimal number")
    scaled = value.scaleb(6)
    micro = int(scaled)
    if micro != scaled:
        raise InputError(
            f"TPP amount {value} is finer than {_QUANTUM} TPP; round it to 6 decimal places"
        )
    if not -_MAX_MICRO <= micro <= _MAX_MICRO:
        raise InputError(
            f"TPP amount {value} is too large for the ledger: at most "
            f"{_MAX_MICRO // SCALE:,} TPP (amounts are kept in 64-bit micro-TPP)"
        )
    return micro


def from_micro(micro: int) -> Decimal:
    """Convert integer micro-TPP back to an exact `Decimal` in TPP, without trailing zeros."""
    value = Decimal(micro) / SCALE
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()
