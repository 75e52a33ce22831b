"""`tpp_total` and `h100_equivalents` for every order, vectorised and exact.

The engine computes `Decimal(quantity) * chips_per_unit * tpp_per_ic`. Its value is held here as
an integer mantissa times a power of ten, `m x 10^e`, with `e` fixed per item key: the product of
integers is exact in int64 while it stays below 2^53, and the float the output needs is then the
correctly rounded `m / 10^-e` (IEEE division of two exact doubles), which is what `float(Decimal)`
gives. `h100_equivalents` is computed once per distinct amount with `Decimal`, as the engine
does. Orders outside those bounds (and orders the engine decided itself) use `Decimal` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa

from ._convert import Orders, factorize
from ._plan import ItemInfo

EXACT = 2**53


@dataclass
class Amounts:
    """Per order: the float `tpp_total`, `h100_equivalents`, and the exact value on demand."""

    tpp_float: np.ndarray
    h100: np.ndarray
    mantissa: np.ndarray  # int64, valid where `fast`
    exponent: np.ndarray  # int64 per row
    fast: np.ndarray
    exact: Callable[[int], Decimal]

    def total_where(self, mask: np.ndarray) -> Decimal:
        """The exact sum of `tpp_total` over the rows in `mask`."""
        total = Decimal(0)
        fast = mask & self.fast
        for e in np.unique(self.exponent[fast]).tolist():
            rows = fast & (self.exponent == e)
            s = int(np.sum(self.mantissa[rows].astype(object)))
            total += Decimal(s).scaleb(e)
        for i in np.flatnonzero(mask & ~self.fast).tolist():
            total += self.exact(i)
        return total


def unit_tpps(infos: list[ItemInfo]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item key's TPP per unit (`chips_per_unit x tpp_per_ic`, exactly as the engine's
    Decimal product) as an int64 mantissa and a decimal exponent (model weights: 0 and 0), and
    whether the key can be held so: not failed, not negative, the mantissa below 2^53."""
    unit = np.zeros(len(infos), dtype=np.int64)
    exp = np.zeros(len(infos), dtype=np.int64)
    ok = np.ones(len(infos), dtype=bool)
    for k, f in enumerate(infos):
        if f.error:
            ok[k] = False
            continue
        if f.weights:
            continue
        sign, digits, e = f.tpp_per_ic.as_tuple()
        m = int("".join(map(str, digits)) or "0") * f.chips
        if not isinstance(e, int) or sign or not 0 <= m < EXACT:
            ok[k] = False
            continue
        unit[k], exp[k] = m, e
    return unit, exp, ok


def amounts(
    orders: Orders,
    ikey: np.ndarray,
    infos: list[ItemInfo],
    engine_tpp: dict[int, Decimal],
    h100_tpp: Decimal,
) -> Amounts:
    n = orders.n
    qty = orders.cols["quantity"]
    q_u = np.array(
        [v if isinstance(v, int) and 0 < v < EXACT else -1 for v in qty.values], dtype=np.int64
    )
    q = q_u[qty.codes] if n else np.zeros(0, dtype=np.int64)
    unit, exp, ok = unit_tpps(infos)
    ok &= exp >= -15
    for k in np.flatnonzero(ok & (exp > 0)).tolist():
        # A positive exponent goes into the mantissa (the float and the sum need the value).
        m = int(unit[k]) * 10 ** int(exp[k])
        ok[k] = m < EXACT
        unit[k], exp[k] = (m, 0) if ok[k] else (0, 0)
    u = unit[ikey]
    fast = ok[ikey] & (q > 0)
    with np.errstate(over="ignore", invalid="ignore"):
        fast &= q.astype(np.float64) * u.astype(np.float64) < EXACT
    for r in engine_tpp:
        fast[r] = False
    m_row = np.where(fast, q * u, 0)
    e_row = exp[ikey]
    tpp_float = m_row.astype(np.float64) / np.power(10.0, -e_row)
    h100 = np.empty(n)
    for e in np.unique(exp[ok]).tolist():
        rows = np.flatnonzero(fast & (e_row == e))
        if not rows.size:
            continue
        # Distinct amounts by hashing (no sort of the rows).
        inv, uniq = factorize(pa.array(m_row[rows], type=pa.int64()), rows.size)
        vals = np.array([float(round(Decimal(m).scaleb(e) / h100_tpp, 4)) for m in uniq])
        h100[rows] = vals[inv]

    def exact(i: int) -> Decimal:
        d = engine_tpp.get(i)
        if d is not None:
            return d
        f = infos[int(ikey[i])]
        if f.weights:
            return Decimal(0)
        return Decimal(qty.at(i)) * f.chips * f.tpp_per_ic

    for i in np.flatnonzero(~fast).tolist():
        t = exact(i)
        tpp_float[i] = float(int(t)) if t == t.to_integral_value() else float(t)
        h100[i] = float(round(t / h100_tpp, 4))
    return Amounts(tpp_float, h100, m_row, e_row, fast, exact)


def from_decimals(tpps: list[Decimal], h100_tpp: Decimal) -> Amounts:
    """Amounts of decisions made one by one (the per-order fallback)."""
    n = len(tpps)
    tpp_float = np.array(
        [float(int(t)) if t == t.to_integral_value() else float(t) for t in tpps], dtype=np.float64
    )
    h100 = np.array([float(round(t / h100_tpp, 4)) for t in tpps], dtype=np.float64)
    zeros = np.zeros(n, dtype=np.int64)
    return Amounts(tpp_float, h100, zeros, zeros, np.zeros(n, dtype=bool), lambda i: tpps[i])
