"""The quota pass, vectorised where the order of draws reduces to cumulative sums.

Three kinds of account are drawn only by orders that the kernel models completely:

* an AIA running total (`aia/<consignee>`): every AIA order of the consignee draws;
* an LPP allowance (`lpp/<consignee>/<year>`): an order draws when it fits; the first order that
  would exceed the allowance draws nothing;
* a country allocation (`allocation/<country>`): an order whose license review reads it draws
  nothing; an order citing a license draws when it fits (or always, for a license the allocation
  never refuses); the first cited license that does not fit draws nothing.

When no order that could touch an account goes elsewhere (to the engine, to a UVEU whose share may
break, or to what follows a refused LPP allowance), the account evolves independently of every
other order: its total before an order is the balance before the file plus the cumulative sum of
the earlier draws, up to the first refusal. From that order on, the account's orders go to the
sequential kernel, which starts from the exact total before it.

Amounts are exact: every TPP is an integer at one common scale (x 10^S), summed in int64 under a
bound checked beforehand; the `Decimal` exponent that the engine's arithmetic gives a sum (the
smallest of its terms') is tracked alongside, so that texts print exactly what `Decimal` prints.
The first order of every (key, outcome) is still decided by the real engine and checked against
these numbers before its template is used (`_plan.branch_template`).
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiexport.rules.decide import Engine
from aiexport.rules.determination import QuotaUse
from aiexport.rules.quota import QuotaView

from ._amounts import unit_tpps
from ._convert import Orders
from ._plan import (
    AIA,
    ALLOC,
    ENGINE,
    LIC,
    LPP,
    UVEU,
    ItemInfo,
    Program,
    StateView,
    Template,
    branch_template,
)

BOUND = 2**62
_NEVER = 2**62  # a position after every order
_NO_LIMIT = '"limit_tpp": null, "remaining_tpp": null'


def _neg_exp(d: Decimal) -> int | None:
    """-exponent of a finite, non-negative Decimal with exponent <= 0 (else None)."""
    sign, _, e = d.as_tuple()
    if sign or not isinstance(e, int) or e > 0:
        return None
    return -e


# Kinds of bulk-decided order.
# AIA; LPP that fits; allocation read (a license review, or a refused cited license); cited
# license drawn; LPP refused with nothing after it; LPP refused, then a license review.
K_AIA, K_LPP, K_READ, K_LIC, K_OVER, K_OVER_READ = 0, 1, 2, 3, 4, 5
LPP_KINDS = (K_LPP, K_OVER, K_OVER_READ)


@dataclass
class VecOutcomes:
    """The bulk-decided orders' outcomes as columns (index j), in processing order.

    Values are integers x 10^scale; `*_ne` are the -exponents of the Decimals the engine's
    arithmetic gives them.
    """

    rows: np.ndarray  # input row of each
    tid: np.ndarray  # template id
    kind: np.ndarray  # K_*
    key: np.ndarray  # decision key (its program holds limits, thresholds, names)
    acc_id: np.ndarray
    accounts: list[str]
    before: np.ndarray  # the account's total before the order
    before_ne: np.ndarray
    tpp: np.ndarray  # the order's TPP
    tpp_ne: np.ndarray
    year: np.ndarray
    scale: int
    programs: list[Program]
    slot: np.ndarray  # per input row: its index j here, or -1
    # K_OVER_READ: the allocation the license review reads, and its total before the order.
    al_acc: np.ndarray
    al_before: np.ndarray
    al_before_ne: np.ndarray

    @functools.cached_property
    def account_array(self) -> pa.Array:
        return pa.array(self.accounts, pa.string())

    @property
    def after(self) -> np.ndarray:
        """before + tpp (what the account holds after the order when it draws)."""
        out: np.ndarray = self.before + self.tpp
        return out

    @functools.cached_property
    def after_ne(self) -> np.ndarray:
        """The Decimal exponent of `after`, as the engine's addition gives it."""
        out: np.ndarray = np.maximum(self.before_ne, self.tpp_ne)
        return out

    # -- exact values --------------------------------------------------------------------
    def dec(self, scaled: int, ne: int) -> Decimal:
        """The Decimal `scaled x 10^-scale`, with exponent `-ne` (as Decimal arithmetic gives)."""
        return _dec(scaled, ne, self.scale)

    def _param(self, j: int, name: str) -> Any:
        return self.programs[int(self.key[j])].params[name]

    def numbers(self, j: int, fast: bool = False) -> dict[str, Any]:
        """The kernel's numbers for order j; with `fast`, a Decimal of exponent 0 is given as
        the equal int (which formats identically)."""

        def v(scaled: int, ne: int) -> Any:
            if fast and ne == 0:
                return scaled // 10**self.scale
            return self.dec(scaled, ne)

        def p(name: str) -> Any:
            x = self._param(j, name)
            if fast and isinstance(x, Decimal) and x.as_tuple().exponent == 0:
                return int(x)
            return x

        before, tpp = int(self.before[j]), int(self.tpp[j])
        b = v(before, int(self.before_ne[j]))
        a = v(before + tpp, int(self.after_ne[j]))
        n: dict[str, Any] = {"tpp": v(tpp, int(self.tpp_ne[j]))}
        kind = int(self.kind[j])
        if kind in LPP_KINDS:
            n.update(
                year=int(self.year[j]),
                lpp_used=b,
                lpp_after=a,
                lpp_limit=p("lpp_limit"),
                notice=p("notice"),
            )
        elif kind == K_AIA:
            n.update(aia_after=a, aia_thr=p("aia_thr"))
        if kind in (K_READ, K_LIC):
            acc, al_b, al_a = self.accounts[int(self.acc_id[j])], b, a
        elif kind == K_OVER_READ:
            ab, ane = int(self.al_before[j]), int(self.al_before_ne[j])
            acc = self.accounts[int(self.al_acc[j])]
            al_b = v(ab, ane)
            al_a = v(ab + tpp, max(ane, int(self.tpp_ne[j])))
        else:
            return n
        n.update(
            al_acc=acc,
            al_used=al_b,
            al_after=al_a,
            al_limit=p("al_limit"),
            country=self._param(j, "country"),
        )
        return n

    def uses(self, j: int) -> tuple[QuotaUse, ...]:
        """Order j's quota lines (one, or none for an LPP refusal with nothing after it)."""
        kind = int(self.kind[j])
        if kind == K_OVER:
            return ()
        acc = self.accounts[int(self.acc_id[j])]
        if kind == K_READ:
            return (QuotaUse(acc, self.before_dec(j), self._param(j, "al_limit"), False),)
        if kind == K_OVER_READ:
            al = self.accounts[int(self.al_acc[j])]
            used = self.dec(int(self.al_before[j]), int(self.al_before_ne[j]))
            return (QuotaUse(al, used, self._param(j, "al_limit"), False),)
        after = self.dec(int(self.before[j] + self.tpp[j]), int(self.after_ne[j]))
        if kind == K_AIA:
            return (QuotaUse(acc, after, None, True),)
        return (QuotaUse(acc, after, self._param(j, LIMIT_OF[kind]), True),)

    def draws(self, j: int) -> list[tuple[str, Decimal]]:
        if self.kind[j] not in (K_AIA, K_LPP, K_LIC):
            return []
        tpp = self.dec(int(self.tpp[j]), int(self.tpp_ne[j]))
        return [(self.accounts[int(self.acc_id[j])], tpp)]

    def before_dec(self, j: int) -> Decimal:
        return self.dec(int(self.before[j]), int(self.before_ne[j]))

    # -- columns -------------------------------------------------------------------------
    def _param_column(self, name: str, js: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vals = np.zeros(js.size, dtype=np.int64)
        nes = np.zeros(js.size, dtype=np.int64)
        keys = self.key[js]
        for k in np.unique(keys).tolist():
            x: Decimal = self.programs[k].params[name]
            at = keys == k
            vals[at] = int(x.scaleb(self.scale))
            nes[at] = _neg_exp(x) or 0
        return vals, nes

    def _value_column(self, name: str, js: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A number of the kernel's as (value x 10^scale, -exponent) per order j; None for a
        name that is not a number of every one of these orders."""
        kinds = self.kind[js]
        lpp, aia = np.isin(kinds, LPP_KINDS), kinds == K_AIA
        al_own, al_over = np.isin(kinds, (K_READ, K_LIC)), kinds == K_OVER_READ
        if name == "tpp":
            return self.tpp[js], self.tpp_ne[js]
        after = self.before[js] + self.tpp[js], self.after_ne[js]
        if (name == "lpp_after" and lpp.all()) or (name == "aia_after" and aia.all()):
            return after
        if name == "lpp_used" and lpp.all():
            return self.before[js], self.before_ne[js]
        if name in ("al_used", "al_after") and (al_own | al_over).all():
            own = (self.before[js], self.before_ne[js]) if name == "al_used" else after
            ab, ane = self.al_before[js], self.al_before_ne[js]
            if name == "al_after":
                ab, ane = ab + self.tpp[js], np.maximum(ane, self.tpp_ne[js])
            return np.where(al_over, ab, own[0]), np.where(al_over, ane, own[1])
        if all(name in PARAMS_OF[k] for k in np.unique(kinds).tolist()):
            return self._param_column(name, js)
        return None

    def _strings(self, name: str, spec: str, js: np.ndarray) -> pa.Array | None:
        """`format(value, spec)` of the kernel's number `name` for each order j."""
        kinds = self.kind[js]
        if name == "year":
            if not np.isin(kinds, LPP_KINDS).all():
                return None
            if spec == "":
                return pa.array(self.year[js]).cast(pa.string())
            return pa.array([format(y, spec) for y in self.year[js].tolist()], pa.string())
        if name in ("al_acc", "country"):
            over = kinds == K_OVER_READ
            if not (over | np.isin(kinds, (K_READ, K_LIC))).all():
                return None
            ids = np.where(over, self.al_acc[js], self.acc_id[js])
            if name == "al_acc":
                if spec == "":
                    return self.account_array.take(pa.array(ids))
                return pa.array([format(self.accounts[a], spec) for a in ids.tolist()], pa.string())
            uniq, inv = np.unique(self.key[js], return_inverse=True)
            per_key = [format(self.programs[k].params["country"], spec) for k in uniq.tolist()]
            return pa.array(per_key, pa.string()).take(pa.array(inv.reshape(-1)))
        col = self._value_column(name, js)
        if col is None:
            return None
        vals, nes = col
        if spec == "," and int(nes.max(initial=0)) <= 6 and int(vals.min(initial=0)) >= 0:
            return _thousands(vals, nes, self.scale)
        return pa.array(
            [
                format(self.dec(v, e), spec)
                for v, e in zip(vals.tolist(), nes.tolist(), strict=True)
            ],
            pa.string(),
        )

    def texts(self, f: Callable[[dict[str, Any]], str], js: np.ndarray) -> pa.Array:
        """`f(numbers)` for each order j, compiled to columns when `f` only formats numbers
        (checked on the first order against the formatter itself)."""
        if not js.size:
            return pa.array([], pa.string())
        compiled = compile_formatter(f)
        if compiled is not None:
            literals, fields = compiled
            cols = [self._strings(name, spec, js) for name, spec in fields]
            if all(c is not None for c in cols):
                out = _interleave(literals, [c for c in cols if c is not None], js.size)
                if out[0].as_py() == f(self.numbers(int(js[0]))):
                    return out
        return pa.array([f(self.numbers(j, fast=True)) for j in js.tolist()], pa.string())

    def quota_columns(
        self, pair: Callable[[Decimal], tuple[float, str]]
    ) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.Array, pa.Array
    ]:
        """Per order j, its (single) quota line: valid, used, limit, remaining (floats; limit and
        remaining 0 where null), limit null, draws, account, and the JSON text `io.decisions`
        writes (null where there is no line). `pair(d)` is the reference (float, JSON text) of
        a Decimal, used where a value is not an integer."""
        unit = 10**self.scale
        kind = self.kind
        # The limit of each row's line: per (key, which limit), as a row's index into tables.
        n_k = len(self.programs)
        which = np.where(kind == K_LPP, 0, 1)  # 0: the LPP allowance, 1: the allocation
        lim_id = self.key * 2 + which
        limit_s = np.full(2 * n_k, -1, dtype=np.int64)
        limit_f = np.zeros(2 * n_k)
        limit_txt = [""] * (2 * n_k)
        for kd in (K_LPP, K_READ, K_LIC, K_OVER_READ):
            for k in np.unique(self.key[kind == kd]).tolist():
                lim: Decimal = self.programs[k].params[LIMIT_OF[kd]]
                i = k * 2 + (0 if kd == K_LPP else 1)
                limit_s[i] = int(lim.scaleb(self.scale))
                limit_f[i], text = pair(lim)
                limit_txt[i] = f'"limit_tpp": {text}, "remaining_tpp": '
        valid = kind != K_OVER
        null = (kind == K_AIA) | ~valid
        reads = (kind == K_READ) | (kind == K_OVER_READ)
        over = kind == K_OVER_READ
        used_s = np.where(
            over, self.al_before, np.where(kind == K_READ, self.before, self.before + self.tpp)
        )
        used_ne = np.where(
            over, self.al_before_ne, np.where(kind == K_READ, self.before_ne, self.after_ne)
        )
        used_s = np.where(valid, used_s, 0)
        used_f, used_txt = _json_numbers(used_s, unit, pair, self.dec, used_ne)
        rem_s = np.where(null, 0, np.maximum(limit_s[lim_id] - used_s, 0))
        rem_f, rem_txt = _json_numbers(rem_s, unit, pair, self.dec, None)
        lim_f = np.where(null, 0.0, limit_f[lim_id])
        rem_f[null] = 0.0
        acc = np.where(over, self.al_acc, self.acc_id)
        account = self.account_array.take(pa.array(acc, mask=~valid))
        acc_json = pa.array([json.dumps(a) for a in self.accounts], pa.string()).take(
            pa.array(np.where(valid, acc, 0))
        )
        limits = pa.array([*limit_txt, _NO_LIMIT], pa.string()).take(
            pa.array(np.where(null, 2 * n_k, lim_id))
        )
        rem_or_empty = pc.if_else(pa.array(null), "", rem_txt)
        flags = pc.if_else(pa.array(reads), ', "draws": false}]', ', "draws": true}]')
        js = pc.binary_join_element_wise(
            '[{"account": ', acc_json, ', "used_tpp": ', used_txt, ", ", limits, rem_or_empty,
            flags, "",
        )  # fmt: skip
        js = pc.if_else(pa.array(valid), js, pa.scalar(None, pa.string()))
        return valid, used_f, lim_f, rem_f, null, valid & ~reads, account, js


LIMIT_OF = {K_LPP: "lpp_limit", K_READ: "al_limit", K_LIC: "al_limit", K_OVER_READ: "al_limit"}
PARAMS_OF = {
    K_LPP: ("lpp_limit", "notice"),
    K_AIA: ("aia_thr",),
    K_READ: ("al_limit",),
    K_LIC: ("al_limit",),
    K_OVER: ("lpp_limit", "notice"),
    K_OVER_READ: ("lpp_limit", "notice", "al_limit"),
}


def _json_numbers(
    scaled: np.ndarray,
    unit: int,
    pair: Callable[[Decimal], tuple[float, str]],
    dec: Callable[[int, int], Decimal],
    nes: np.ndarray | None,
) -> tuple[np.ndarray, pa.Array]:
    """Floats and JSON texts of exact values `scaled / unit`, as `_num` gives them: an integer
    where the value is integral, else the float's repr."""
    whole = scaled % unit == 0
    q = scaled // unit
    floats = q.astype(np.float64)
    texts = pa.array(q).cast(pa.string())
    frac = np.flatnonzero(~whole)
    if frac.size:
        # Below 2^53 the value and 10^scale are exact doubles, so IEEE division gives the
        # correctly rounded float, which is `float(Decimal)`; its repr is what `json` writes.
        scale = len(str(unit)) - 1
        exact = (np.abs(scaled[frac]) < 2**53) & (unit <= 10**22)
        floats[frac] = scaled[frac].astype(np.float64) / float(unit)
        # With at most 15 significant digits a decimal survives the round trip through a
        # double (DBL_DIG), so the shortest repr is the decimal itself, in fixed point from
        # 1e-4 up: written here from its digits. Other values go through `float.__repr__`.
        v = scaled[frac]
        short = (v > 0) & (v < 10**15) & (v >= -(-unit // 10**4))
        units, part = np.divmod(v[short], unit)
        digits = pc.utf8_rtrim(
            pc.utf8_lpad(pa.array(part).cast(pa.string()), width=scale, padding="0"),
            characters="0",
        )
        texts_short = pc.binary_join_element_wise(pa.array(units).cast(pa.string()), digits, ".")
        fixed: list[str | None] = [None] * frac.size
        for p in np.flatnonzero(~short).tolist():
            i = int(frac[p])
            if exact[p]:
                fixed[p] = float.__repr__(float(floats[i]))
            else:
                floats[i], fixed[p] = pair(
                    dec(int(scaled[i]), scale if nes is None else int(nes[i]))
                )
        at_short = np.flatnonzero(short)
        at_rest = np.flatnonzero(~short)
        order = np.empty(frac.size, dtype=np.int64)
        order[at_short] = np.arange(at_short.size)
        order[at_rest] = at_short.size + np.arange(at_rest.size)
        frac_texts = pa.concat_arrays(
            [texts_short, pa.array([fixed[p] for p in at_rest.tolist()], pa.string())]
        ).take(pa.array(order))
        mask = np.zeros(len(scaled), dtype=bool)
        mask[frac] = True
        patch = np.zeros(len(scaled), dtype=np.int64)
        patch[frac] = np.arange(frac.size)
        texts = pc.if_else(pa.array(mask), frac_texts.take(pa.array(patch)), texts)
    return floats, texts


def _thousands(vals: np.ndarray, nes: np.ndarray, scale: int) -> pa.Array:
    """`format(Decimal, ",")` of non-negative values `vals x 10^-scale` with exponents `-nes`
    (0 <= nes <= 6, so `Decimal` prints them in fixed point), computed in Arrow."""
    groups = np.unique(nes).tolist()
    parts: list[pa.Array] = []
    where = np.empty(vals.size, dtype=np.int64)
    done = 0
    for e in groups:
        at = np.flatnonzero(nes == e)
        m = vals[at] // 10 ** (scale - e)
        whole, frac = np.divmod(m, 10**e)
        text = _commas(pa.array(whole).cast(pa.string()))
        if e:
            digits = pc.utf8_lpad(pa.array(frac).cast(pa.string()), width=e, padding="0")
            text = pc.binary_join_element_wise(text, digits, ".")
        parts.append(text)
        where[at] = done + np.arange(at.size)
        done += at.size
    if len(parts) == 1:
        return parts[0]
    return pa.concat_arrays(parts).take(pa.array(where))


def _commas(digits: pa.Array) -> pa.Array:
    """Thousands separators in strings of decimal digits: reversed, a comma after every three
    digits, the trailing one trimmed, reversed back ("1234567" -> "1,234,567")."""
    r = pc.replace_substring_regex(pc.utf8_reverse(digits), pattern=r"(\d{3})", replacement=r"\1,")
    return pc.utf8_reverse(pc.utf8_rtrim(r, characters=","))


class _Field:
    """Stands for a number in a formatter's output: records its name and format spec."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __format__(self, spec: str) -> str:
        return f"\x00{self.name}\x01{spec}\x00"

    def __str__(self) -> str:
        return self.__format__("")


class _Fields(dict[str, Any]):
    def __missing__(self, name: str) -> _Field:
        return _Field(name)


_COMPILED: dict[Any, tuple[list[str], list[tuple[str, str]]] | None] = {}


def compile_formatter(
    f: Callable[[dict[str, Any]], str],
) -> tuple[list[str], list[tuple[str, str]]] | None:
    """A formatter's output as literal texts between (number name, format spec) fields."""
    if f in _COMPILED:
        return _COMPILED[f]
    result: tuple[list[str], list[tuple[str, str]]] | None
    try:
        text = f(_Fields())
    except Exception:
        result = None
    else:
        parts = text.split("\x00")
        if len(parts) % 2 == 0:
            result = None
        else:
            fields = []
            for p in parts[1::2]:
                name, _, spec = p.partition("\x01")
                fields.append((name, spec))
            result = (parts[0::2], fields)
    _COMPILED[f] = result
    return result


def _interleave(literals: list[str], cols: list[pa.Array], n: int) -> pa.Array:
    """Row i: literals[0] + cols[0][i] + literals[1] + ... (cols has one fewer entry)."""
    if not cols:
        return pa.array([literals[0]] * n, pa.string())
    args: list[Any] = []
    for lit, col in zip(literals, cols, strict=False):
        if lit:
            args.append(lit)
        args.append(col)
    if literals[len(cols)]:
        args.append(literals[len(cols)])
    if len(args) == 1:
        out: pa.Array = args[0]
        return out
    return pc.binary_join_element_wise(*args, "")


@dataclass
class Reader:
    """An allocation account drawn here, as orders left to the kernel read it: at a position
    before `until` (its first refusal), the balance before the file plus the draws decided here
    at earlier positions; from `until` on, the kernel's own state."""

    start: Decimal
    positions: list[int]  # of the draws, increasing
    totals: list[Decimal]  # after each draw
    until: int

    def at(self, position: int) -> Decimal:
        i = bisect.bisect_left(self.positions, position)
        return self.totals[i - 1] if i else self.start


@dataclass
class VecResult:
    handled: np.ndarray  # per position of the pass: decided here
    state: dict[str, Decimal]  # totals the sequential kernel starts from
    owned: frozenset[str]  # accounts whose every order is decided here
    vec: VecOutcomes
    readers: dict[str, Reader]


class Retry(Exception):
    """A key was sent to the engine: the analysis must be redone."""


@dataclass
class _Run:
    """One family of accounts, run with cumulative sums (arrays in account-then-time order)."""

    pos: np.ndarray  # positions of the pass
    seg: np.ndarray  # account of each (0..len(names)-1)
    names: list[str]
    before: np.ndarray
    before_ne: np.ndarray
    vec: np.ndarray  # before the account's first refusal
    ok: np.ndarray  # fits its limit (or has none)
    state: dict[str, Decimal]  # refused accounts: the total before their first refusal
    draws: np.ndarray
    tpp: np.ndarray
    tpp_ne: np.ndarray
    until: np.ndarray  # per account: the position from which the kernel holds it (or _NEVER)
    starts: np.ndarray  # index of each account's first order


def _run(
    pos: np.ndarray,
    codes: np.ndarray,
    name_of: Callable[[int], str],
    tpp: np.ndarray,
    tpp_ne: np.ndarray,
    draws: np.ndarray,
    limit: np.ndarray,
    refusable: np.ndarray,
    u0: Callable[[str], tuple[int, int, Decimal]],
    scale: int,
    cut_of: Callable[[str], int] | None = None,
    scan: bool = False,
) -> _Run:
    """Run accounts: `codes` names each position's account; an order draws its `tpp` where
    `draws`, unless it is `refusable` and does not fit its `limit` (< 0: none), which is the
    account's first refusal: it and the account's later orders are left to the kernel. So are
    the orders at or after an account's `cut_of(name)` position (an order left to the kernel
    that may draw on it); the kernel then starts from the total before the cut. With `scan`, the
    orders after a refusal are decided here too, one by one in integers, up to the cut."""
    uniq, inv = np.unique(codes, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    seg = inv[order]
    p = pos[order]
    t, t_ne, dr, lim, ref = tpp[order], tpp_ne[order], draws[order], limit[order], refusable[order]
    names = [name_of(c) for c in uniq.tolist()]
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if seg.size else seg
    base = [u0(a) for a in names]
    u0_s = np.array([b[0] for b in base] or [0], dtype=np.int64)[: len(names)]
    u0_ne = np.array([b[1] for b in base] or [0], dtype=np.int64)[: len(names)]
    td = np.where(dr, t, 0)
    cs = np.cumsum(td)
    start_cs = cs[starts] - td[starts] if seg.size else cs
    before = cs - td - start_cs[seg] + u0_s[seg] if seg.size else cs
    after = before + t
    ok = (lim < 0) | (after <= lim)
    idx = np.arange(p.size)
    cut = np.array([cut_of(a) if cut_of else _NEVER for a in names] or [0], dtype=np.int64)
    cut = cut[: len(names)]
    refused = (~ok & ref) | (p >= cut[seg])
    first = np.full(len(names), p.size, dtype=np.int64)
    np.minimum.at(first, seg[refused], idx[refused])
    vec = idx < first[seg] if seg.size else idx < 0
    # -exponent of the total before each order: the largest of the starting balance's and the
    # earlier draws' (a running maximum restarted at each account).
    w_ne = np.where(dr, t_ne, 0)
    width = int(max(int(w_ne.max(initial=0)), int(u0_ne.max(initial=0)))) + 1
    shifted = seg.astype(np.int64) * width + w_ne
    incl = np.maximum(np.maximum.accumulate(shifted) - seg * width, u0_ne[seg]) if seg.size else seg
    before_ne = np.empty_like(incl)
    if seg.size:
        before_ne[1:] = incl[:-1]
        before_ne[starts] = u0_ne
    state: dict[str, Decimal] = {}
    drew = dr.copy()  # what actually draws (a refused order does not)
    if scan:
        _scan(first, cut, starts, p, t, t_ne, dr, lim, ref, before, before_ne, ok, vec, drew)
        # Now only a cut hands an account to the kernel.
        first = np.full(len(names), p.size, dtype=np.int64)
        at_cut = p >= cut[seg]
        np.minimum.at(first, seg[at_cut], idx[at_cut])

    for s_ in np.flatnonzero(first < p.size).tolist():
        f = int(first[s_])
        state[names[s_]] = _dec(int(before[f]), int(before_ne[f]), scale)
    ends = np.r_[starts[1:], p.size] - 1 if seg.size else seg
    for s_ in np.flatnonzero((first >= p.size) & (cut < _NEVER)).tolist():
        last = int(ends[s_])  # every order before the cut: the kernel starts after them
        if drew[last]:
            state[names[s_]] = _dec(
                int(before[last] + t[last]), max(int(before_ne[last]), int(t_ne[last])), scale
            )
        else:
            state[names[s_]] = _dec(int(before[last]), int(before_ne[last]), scale)
    until = cut.copy()
    has = first < p.size
    until[has] = np.minimum(p[first[has]], cut[has])
    return _Run(p, seg, names, before, before_ne, vec, ok, state, drew, t, t_ne, until, starts)


def _scan(
    first: np.ndarray,
    cut: np.ndarray,
    starts: np.ndarray,
    p: np.ndarray,
    t: np.ndarray,
    t_ne: np.ndarray,
    dr: np.ndarray,
    lim: np.ndarray,
    ref: np.ndarray,
    before: np.ndarray,
    before_ne: np.ndarray,
    ok: np.ndarray,
    vec: np.ndarray,
    drew: np.ndarray,
) -> None:
    """From each account's first refusal to its cut, the running total one order at a time
    (a refused order draws nothing, so a later smaller one may fit). Arrays are updated in
    place."""
    n = p.size
    for s_ in np.flatnonzero(first < n).tolist():
        lo = int(first[s_])
        hi = int(starts[s_ + 1]) if s_ + 1 < len(starts) else n
        if p[lo] >= cut[s_]:
            continue  # the cut came first
        total, tne = int(before[lo]), int(before_ne[lo])
        for i in range(lo, hi):
            if p[i] >= cut[s_]:
                before[i], before_ne[i] = total, tne  # where the kernel starts
                break
            a = total + int(t[i])
            fits = lim[i] < 0 or a <= lim[i]
            before[i], before_ne[i], ok[i], vec[i] = total, tne, fits, True
            if dr[i] and (fits or not ref[i]):
                total = a
                tne = max(tne, int(t_ne[i]))
            else:
                drew[i] = False


def vector_pass(
    engine: Engine,
    orders: Orders,
    order_rows: np.ndarray,
    key_p: np.ndarray,
    cons_p: np.ndarray,
    cons_names: list[str],
    year_p: np.ndarray,
    qty_p: list[Any],
    ik_p: np.ndarray,
    programs: list[Program],
    infos: list[ItemInfo],
    base: QuotaView,
    branch_tpl: dict[tuple[Any, ...], int],
    templates: list[Template],
    special: frozenset[str],
) -> VecResult | None:
    """Decide every order that cumulative sums can decide; None when there is none.

    Raises `Retry` after sending a key to the engine (its first order's decision did not match
    the kernel): the caller runs the analysis again.
    """
    n_pos = len(order_rows)
    code = {AIA: 1, LPP: 2, ALLOC: 4, LIC: 5, ENGINE: 3, UVEU: 6}
    kinds = np.array([code.get(p.kind, 0) for p in programs] or [0], dtype=np.int8)
    kind_p = kinds[key_p] if n_pos else np.zeros(0, dtype=np.int8)
    modelled = np.isin(kind_p, (1, 2, 4, 5))
    if not n_pos or not modelled.any():
        return None

    # Each item key's TPP per unit as an integer mantissa and -exponent (model weights: 0).
    unit, exp, item_ok = unit_tpps(infos)
    item_ok &= (exp <= 0) & (exp >= -12)
    unit_ne = np.where(item_ok, -exp, 0)
    q = np.array([x if type(x) is int and 0 < x < 2**53 else 0 for x in qty_p], dtype=np.int64)
    u_p = unit[ik_p]
    with np.errstate(over="ignore", invalid="ignore"):
        ok_p = item_ok[ik_p] & (q > 0) & (q.astype(np.float64) * u_p.astype(np.float64) < 2**53)
    mant = np.where(ok_p, q * u_p, 0)
    ne_p = unit_ne[ik_p]

    # Consignees whose AIA and LPP accounts something else may touch; allocation accounts too.
    cons_kind = np.isin(kind_p, (1, 2))
    bad_cons = np.zeros(len(cons_names), dtype=bool)
    bad_cons[cons_p[(kind_p == 3) | (kind_p == 6) | (cons_kind & ~ok_p)]] = True
    alloc_kind = np.isin(kind_p, (4, 5))
    al_acc_k = [str(p.params.get("al_acc", "")) for p in programs]
    # Allocation accounts with an order whose amount is not exact here stay in the kernel.
    bad_alloc = {al_acc_k[k] for k in np.unique(key_p[alloc_kind & ~ok_p]).tolist()}
    cand = (cons_kind & ~bad_cons[cons_p]) | (alloc_kind & ok_p)
    if not cand.any():
        return None

    # The common scale: every amount, parameter and starting balance an integer x 10^scale.
    names_used = ("lpp_limit", "notice", "aia_thr", "al_limit")
    scale = int(ne_p[cand].max())
    cand_keys = np.unique(key_p[cand]).tolist()
    for k in cand_keys:
        for name in names_used:
            x = programs[k].params.get(name)
            if isinstance(x, Decimal):
                ne = _neg_exp(x)
                if ne is None or ne > 12:
                    return None
                scale = max(scale, ne)
    y0 = int(year_p.min())
    span = int(year_p.max()) - y0 + 1
    lpp_pos = np.flatnonzero(cand & (kind_p == 2))
    aia_pos_all = np.flatnonzero(cand & (kind_p == 1))
    al_pos = np.flatnonzero(cand & alloc_kind)
    al_names = sorted({al_acc_k[k] for k in np.unique(key_p[al_pos]).tolist()})
    balances: dict[str, Decimal] = {}
    wanted = (
        [f"lpp/{cons_names[c // span]}/{c % span + y0}" for c in
         np.unique(cons_p[lpp_pos] * span + (year_p[lpp_pos] - y0)).tolist()]
        + [f"aia/{cons_names[c]}" for c in np.unique(cons_p[aia_pos_all]).tolist()]
        + al_names
    )  # fmt: skip
    for a in wanted:
        v = balances[a] = base.used(a)
        ne = _neg_exp(v)
        if ne is None or ne > 12:
            return None
        scale = max(scale, ne)
    if scale > 12:
        return None
    mult = np.where(cand, 10 ** np.clip(scale - ne_p, 0, 12), 0)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.sum(mant[cand].astype(np.float64) * mult[cand]))
        top = max((float(v.scaleb(scale)) for v in balances.values()), default=0.0)
        if total + top >= 2**61:
            return None
    tpp_s = np.where(cand, mant * mult, 0)
    params: dict[str, np.ndarray] = {}
    for name in names_used:
        arr = np.full(len(programs), -1, dtype=np.int64)
        for k in cand_keys:
            x = programs[k].params.get(name)
            if isinstance(x, Decimal):
                if x.scaleb(scale) >= BOUND:
                    return None
                arr[k] = int(x.scaleb(scale))
        params[name] = arr

    def u0(name: str) -> tuple[int, int, Decimal]:
        v = balances.get(name)
        if v is None:
            v = balances[name] = base.used(name)
        return int(v.scaleb(scale)), _neg_exp(v) or 0, v

    yes = np.ones(n_pos, dtype=bool)
    no = np.zeros(n_pos, dtype=bool)
    none = np.full(n_pos, -1, dtype=np.int64)
    # Country allocations: license reviews read, cited licenses draw; not those an order left
    # to the kernel may draw on.
    drawn, cuts = _touched_allocations(engine, orders, order_rows, kind_p, programs)
    bad_alloc |= drawn
    al_names = [a for a in al_names if a not in bad_alloc]
    al_code_k = np.array([al_names.index(a) if a in al_names else -1 for a in al_acc_k] or [-1])
    al_pos = al_pos[al_code_k[key_p[al_pos]] >= 0]
    lic = kind_p[al_pos] == 5
    exempt = np.array([bool(p.params.get("exempt")) for p in programs] or [False], dtype=bool)
    al = _run(
        al_pos, al_code_k[key_p[al_pos]], lambda c: al_names[c],
        tpp_s[al_pos], ne_p[al_pos], lic,
        params["al_limit"][key_p[al_pos]], lic & ~exempt[key_p[al_pos]], u0, scale,
        lambda a: cuts.get(a, _NEVER), scan=True,
    )  # fmt: skip
    readers = _readers(al, scale)

    # LPP: every order, one by one in integers past the first refusal. A refused order gets what
    # follows the allowance in its key's program: nothing, or a license review reading the
    # allocation (here when the allocation is run here, else in the kernel, as is AIA).
    lpp = _run(
        lpp_pos,
        cons_p[lpp_pos] * span + (year_p[lpp_pos] - y0),
        lambda c: f"lpp/{cons_names[c // span]}/{c % span + y0}",
        tpp_s[lpp_pos], ne_p[lpp_pos], yes[lpp_pos],
        params["lpp_limit"][key_p[lpp_pos]], yes[lpp_pos], u0, scale, scan=True,
    )  # fmt: skip
    refused = ~lpp.draws
    lk = key_p[lpp.pos]
    over_none = np.array([p.over == "none" for p in programs] or [False], dtype=bool)[lk]
    over_read = np.array([p.over == ALLOC for p in programs] or [False], dtype=bool)[lk]
    al_of_lpp = np.array([al_names.index(a) if a in al_names else -1 for a in al_acc_k] or [-1])
    over_acc = al_of_lpp[lk]
    until = np.array([readers[a].until for a in al_names] or [0], dtype=np.int64)
    over_read &= (over_acc >= 0) & (lpp.pos < until[np.maximum(over_acc, 0)])
    to_kernel = refused & ~over_none & ~over_read
    lpp.vec &= ~to_kernel
    lpp_kind = np.where(refused, np.where(over_none, K_OVER, K_OVER_READ), K_LPP)
    # The kernel reads those accounts as they stand at its orders' positions.
    for s_ in np.unique(lpp.seg[to_kernel]).tolist():
        at = np.flatnonzero((lpp.seg == s_) & lpp.draws)
        head = int(np.flatnonzero(lpp.seg == s_)[0])
        readers[lpp.names[s_]] = Reader(
            start=_dec(int(lpp.before[head]), int(lpp.before_ne[head]), scale),
            positions=lpp.pos[at].tolist(),
            totals=[
                _dec(int(v), int(e), scale)
                for v, e in zip(
                    (lpp.before[at] + lpp.tpp[at]).tolist(),
                    np.maximum(lpp.before_ne[at], lpp.tpp_ne[at]).tolist(),
                    strict=True,
                )
            ],
            until=_NEVER,
        )
    # A consignee with such an order that may fall back to AIA keeps AIA in the kernel.
    over_aia = np.array([p.over == AIA for p in programs] or [False], dtype=bool)
    seq = lpp.pos[to_kernel]
    aia_seq = np.zeros(len(cons_names), dtype=bool)
    aia_seq[cons_p[seq[over_aia[key_p[seq]]]]] = True
    aia_pos = aia_pos_all[~aia_seq[cons_p[aia_pos_all]]]
    aia = _run(
        aia_pos, cons_p[aia_pos], lambda c: f"aia/{cons_names[c]}",
        tpp_s[aia_pos], ne_p[aia_pos], yes[aia_pos], none[aia_pos], no[aia_pos], u0, scale,
    )  # fmt: skip

    # Together, in processing order.
    runs = [(lpp, K_LPP), (aia, K_AIA), (al, -1)]
    offsets = np.cumsum([0] + [len(r.names) for r, _ in runs])
    parts = [
        (r, np.flatnonzero(r.vec), off, kind) for (r, kind), off in zip(runs, offsets, strict=False)
    ]
    pos = np.concatenate([r.pos[v] for r, v, _, _ in parts])
    srt = np.argsort(pos, kind="stable")
    pos = pos[srt]

    def cat(f: Callable[[_Run, np.ndarray, int, int], np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.concatenate([f(r, v, o, k) for r, v, o, k in parts])[srt]
        return out

    # A cited license that does not fit (and is refused) draws nothing: like a read.
    kind_v = cat(
        lambda r, v, o, k: (
            lpp_kind[v]
            if r is lpp
            else np.full(v.size, k)
            if k >= 0
            else np.where(r.draws[v], K_LIC, K_READ)
        )
    ).astype(np.int8)
    keys = key_p[pos]
    rows = order_rows[pos]
    slot = np.full(orders.n, -1, dtype=np.int64)
    slot[rows] = np.arange(pos.size)
    tpp_ne = ne_p[pos]
    before_ne = cat(lambda r, v, o, k: r.before_ne[v])
    # The allocation a refused LPP order's license review reads: as it stands at its position.
    al_acc_v = np.full(pos.size, -1, dtype=np.int64)
    al_before = np.zeros(pos.size, dtype=np.int64)
    al_before_ne = np.zeros(pos.size, dtype=np.int64)
    ovr = np.flatnonzero(kind_v == K_OVER_READ)
    if ovr.size:
        acc_o = al_of_lpp[key_p[pos[ovr]]]
        al_acc_v[ovr] = acc_o + offsets[2]
        al_before[ovr], al_before_ne[ovr] = _read_at(al, acc_o, pos[ovr])
    vec = VecOutcomes(
        rows=rows,
        tid=np.full(pos.size, -1, dtype=np.int64),
        kind=kind_v,
        key=keys,
        acc_id=cat(lambda r, v, o, k: r.seg[v] + o),
        accounts=lpp.names + aia.names + al.names,
        before=cat(lambda r, v, o, k: r.before[v]),
        before_ne=before_ne,
        tpp=tpp_s[pos],
        tpp_ne=tpp_ne,
        year=year_p[pos],
        scale=scale,
        programs=programs,
        slot=slot,
        al_acc=al_acc_v,
        al_before=al_before,
        al_before_ne=al_before_ne,
    )
    ok_v = cat(lambda r, v, o, k: r.ok[v])
    al_lim = params["al_limit"][keys]
    ok_v[ovr] = (al_before[ovr] + tpp_s[pos[ovr]]) <= al_lim[ovr]

    # Outcomes: LPP (notice, at the limit); AIA (threshold reached); allocation (fits).
    after = vec.after
    b1 = np.select(
        [kind_v == K_LPP, kind_v == K_AIA],
        [tpp_s[pos] >= params["notice"][keys], after >= params["aia_thr"][keys]],
        ok_v,
    )
    b2 = (kind_v == K_LPP) & (after == params["lpp_limit"][keys])
    outcome = (keys * 8 + kind_v) * 4 + b1 * 2 + b2
    uniq, first, inv = np.unique(outcome, return_index=True, return_inverse=True)
    tids = np.empty(len(uniq), dtype=np.int64)
    branch_names = {K_LPP: "fit", K_AIA: "aia", K_READ: ALLOC, K_LIC: LIC}
    for u, (oc, j) in enumerate(zip(uniq.tolist(), first.tolist(), strict=True)):
        k, kind, flag = oc // 32, (oc // 4) % 8, bool(oc & 2)
        bkey: tuple[Any, ...]
        if kind == K_OVER:
            bkey = (k, "over")
        elif kind == K_OVER_READ:
            bkey = (k, "over", ALLOC, flag)
        else:
            name = LIC if kind == K_READ and programs[k].kind == LIC else branch_names[kind]
            bkey = (k, name, flag, bool(oc & 1)) if kind == K_LPP else (k, name, flag)
        tid = branch_tpl.get(bkey)
        if tid is None:
            seen = {vec.accounts[int(vec.acc_id[j])]: vec.before_dec(j)}
            if kind == K_OVER_READ:
                seen[vec.accounts[int(al_acc_v[j])]] = _dec(
                    int(al_before[j]), int(al_before_ne[j]), scale
                )
            tid = branch_template(
                engine, orders, int(rows[j]), StateView(seen, base), vec.uses(j), vec.draws(j),
                vec.numbers(j), programs[k], templates, infos[int(ik_p[pos[j]])], special,
            )  # fmt: skip
            if tid is None:
                programs[k].kind = ENGINE
                raise Retry
            branch_tpl[bkey] = tid
        tids[u] = tid
    vec.tid = tids[inv.reshape(-1)]
    handled = np.zeros(n_pos, dtype=bool)
    handled[pos] = True
    state = {**lpp.state, **aia.state, **al.state}
    owned = frozenset(a for a in vec.accounts if a not in state)
    return VecResult(handled, state, owned, vec, readers)


def _dec(v: int, ne: int, scale: int) -> Decimal:
    return Decimal(v // 10 ** (scale - ne)).scaleb(-ne)


def _read_at(al: _Run, acc: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The totals (x 10^scale, -exponent) of allocation accounts `acc` just before positions
    `at` (all before the account's cut): the starting balance plus the draws decided earlier."""
    vals = np.zeros(at.size, dtype=np.int64)
    nes = np.zeros(at.size, dtype=np.int64)
    starts = al.starts
    drew = al.vec & al.draws
    for a in np.unique(acc).tolist():
        lo = int(starts[a])
        hi = int(starts[a + 1]) if a + 1 < len(starts) else al.pos.size
        d = lo + np.flatnonzero(drew[lo:hi])
        totals = al.before[d] + al.tpp[d]
        t_ne = np.maximum(al.before_ne[d], al.tpp_ne[d])
        mine = np.flatnonzero(acc == a)
        i = np.searchsorted(al.pos[d], at[mine], side="left")
        vals[mine] = np.where(i > 0, totals[np.maximum(i - 1, 0)] if d.size else 0, al.before[lo])
        nes[mine] = np.where(i > 0, t_ne[np.maximum(i - 1, 0)] if d.size else 0, al.before_ne[lo])
    return vals, nes


def _readers(al: _Run, scale: int) -> dict[str, Reader]:
    """Readers of the allocation accounts decided here."""
    out: dict[str, Reader] = {}
    draw = al.vec & al.draws
    after = al.before + al.tpp
    after_ne = np.maximum(al.before_ne, al.tpp_ne)
    starts = al.starts
    for s_, name in enumerate(al.names):
        lo = int(starts[s_])
        hi = int(starts[s_ + 1]) if s_ + 1 < len(starts) else al.pos.size
        at = lo + np.flatnonzero(draw[lo:hi])
        out[name] = Reader(
            start=_dec(int(al.before[lo]), int(al.before_ne[lo]), scale),
            positions=al.pos[at].tolist(),
            totals=[
                _dec(v, e, scale)
                for v, e in zip(after[at].tolist(), after_ne[at].tolist(), strict=True)
            ],
            until=int(al.until[s_]),
        )
    return out


def _touched_allocations(
    engine: Engine,
    orders: Orders,
    order_rows: np.ndarray,
    kind_p: np.ndarray,
    programs: list[Program],
) -> tuple[set[str], dict[str, int]]:
    """Allocation accounts that orders left to the kernel may draw on: those of a cited license
    that follows a broken UVEU share (excluded), and the account of every country that an order
    going to the engine with a cited license names, or that governs one (cut at the first such
    order's position). Orders left to the kernel that only read an allocation read it through
    `Reader`s."""
    out: set[str] = set()
    for p in programs:
        sub = p.params.get("fail") if p.kind == UVEU else None
        if isinstance(sub, Program) and sub.kind == LIC:
            out.add(str(sub.params.get("al_acc", "")))
    cuts: dict[str, int] = {}
    cols = orders.cols
    # Only an order citing a license draws on an allocation; the others the engine decides
    # read it (through a `Reader`, or from the kernel's state past the account's cut). Should one
    # draw after all, the kernel notices and the pass is redone one by one.
    auth = cols["authorization"]
    cites = np.array(
        [isinstance(a, str) and a.startswith("LICENSE:") for a in auth.values] or [False]
    )
    at = np.flatnonzero((kind_p == 3) & cites[auth.codes[order_rows]])
    if at.size:
        rows = order_rows[at]
        dates = cols["order_date"]
        seen: dict[tuple[str, Any], int] = {}
        for c in ("destination", "consignee_country", "consignee_hq_country"):
            col = cols[c]
            for p_, code, day in zip(
                at.tolist(), col.codes[rows].tolist(), dates.codes[rows].tolist(), strict=True
            ):
                k = (col.values[code], dates.values[day])
                seen[k] = min(seen.get(k, _NEVER), p_)
        for (country, day), p_ in seen.items():
            if not country:
                continue
            try:
                aliases = engine.rules.value("countries.aliases", day)
            except Exception:
                aliases = {}
            names = {country}
            if isinstance(aliases, dict):
                names.add(str(aliases.get(country, country)))
            for c in names:
                a = f"allocation/{c}"
                cuts[a] = min(cuts.get(a, _NEVER), p_)
    return out, cuts
