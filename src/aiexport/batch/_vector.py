"""The quota pass, vectorised where the order of draws reduces to cumulative sums.

An AIA running total (`aia/<consignee>`) and an LPP allowance (`lpp/<consignee>/<year>`) are
drawn only by their own consignee's orders. When every quota-dependent order of a consignee is an
AIA or an LPP order (none goes to the engine or names a UVEU, the only ways another program could
touch those accounts), its accounts evolve independently of every other order:

* an AIA total after an order is the balance before the file plus the cumulative sum of the
  consignee's AIA orders up to and including it (AIA always draws);
* an LPP total is the cumulative sum of its orders while they fit the allowance; the first order
  that would exceed it draws nothing, and from there on that account's orders go to the
  sequential kernel, which starts from the exact total before that order.

An LPP order refused its allowance may fall back to AIA: a consignee with such an order keeps its
AIA total in the sequential kernel too.

Amounts are exact: every TPP is an integer at one common scale (x 10^S), summed in int64 under a
bound checked beforehand; the `Decimal` exponent that the engine's arithmetic gives a sum (the
smallest of its terms') is tracked alongside, so that texts print exactly what `Decimal` prints.
The first order of every (key, outcome) is still decided by the real engine and checked against
these numbers before its template is used (`_plan._branch_template`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from aiexport.rules.decide import Engine
from aiexport.rules.determination import QuotaUse
from aiexport.rules.quota import QuotaView

from ._convert import Orders
from ._plan import (
    AIA,
    ENGINE,
    LPP,
    UVEU,
    ItemInfo,
    Program,
    StateView,
    Template,
    branch_template,
)

BOUND = 2**62
_NO_LIMIT = '"limit_tpp": null, "remaining_tpp": null'


def _neg_exp(d: Decimal) -> int | None:
    """-exponent of a finite, non-negative Decimal with exponent <= 0 (else None)."""
    sign, _, e = d.as_tuple()
    if sign or not isinstance(e, int) or e > 0:
        return None
    return -e


@dataclass
class VecOutcomes:
    """The vectorised orders' outcomes as columns (index j), in processing order."""

    rows: np.ndarray  # input row of each
    tid: np.ndarray  # template id
    lpp: np.ndarray  # bool: an LPP order that fits (else an AIA order)
    key: np.ndarray  # decision key (its program holds the limit / thresholds)
    acc_id: np.ndarray
    accounts: list[str]
    after: np.ndarray  # int64: the account's total after the order, x 10^scale
    after_ne: np.ndarray  # -exponent of that total as a Decimal
    before_ne: np.ndarray  # -exponent of the total before the order
    tpp: np.ndarray  # int64: the order's TPP, x 10^scale
    tpp_ne: np.ndarray
    year: np.ndarray
    scale: int
    programs: list[Program]
    slot: np.ndarray  # per input row: its index j here, or -1

    # -- exact values --------------------------------------------------------------------
    def dec(self, scaled: int, ne: int) -> Decimal:
        """The Decimal `scaled x 10^-scale`, with exponent `-ne` (as Decimal arithmetic gives)."""
        return Decimal(scaled // 10 ** (self.scale - ne)).scaleb(-ne)

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

        after, tpp = int(self.after[j]), int(self.tpp[j])
        n: dict[str, Any] = {"tpp": v(tpp, int(self.tpp_ne[j]))}
        if self.lpp[j]:
            n.update(
                year=int(self.year[j]),
                lpp_used=v(after - tpp, int(self.before_ne[j])),
                lpp_after=v(after, int(self.after_ne[j])),
                lpp_limit=p("lpp_limit"),
                notice=p("notice"),
            )
        else:
            n.update(aia_after=v(after, int(self.after_ne[j])), aia_thr=p("aia_thr"))
        return n

    def use(self, j: int) -> QuotaUse:
        after = self.dec(int(self.after[j]), int(self.after_ne[j]))
        acc = self.accounts[int(self.acc_id[j])]
        if self.lpp[j]:
            return QuotaUse(acc, after, self._param(j, "lpp_limit"), True)
        return QuotaUse(acc, after, None, True)

    def draws(self, j: int) -> list[tuple[str, Decimal]]:
        tpp = self.dec(int(self.tpp[j]), int(self.tpp_ne[j]))
        return [(self.accounts[int(self.acc_id[j])], tpp)]

    def before(self, j: int) -> Decimal:
        return self.dec(int(self.after[j] - self.tpp[j]), int(self.before_ne[j]))

    # -- columns -------------------------------------------------------------------------
    def _value_column(self, name: str, js: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A number of the kernel's as (value x 10^scale, -exponent) per order j; None for a
        name that is not a number of these orders."""
        lpp = bool(self.lpp[js[0]]) if js.size else False
        if name == "tpp":
            return self.tpp[js], self.tpp_ne[js]
        if name in ("lpp_after", "aia_after") and (name == "lpp_after") == lpp:
            return self.after[js], self.after_ne[js]
        if name == "lpp_used" and lpp:
            return self.after[js] - self.tpp[js], self.before_ne[js]
        if name in ("lpp_limit", "notice") if lpp else name == "aia_thr":
            vals = np.zeros(js.size, dtype=np.int64)
            nes = np.zeros(js.size, dtype=np.int64)
            keys = self.key[js]
            for k in np.unique(keys).tolist():
                x: Decimal = self.programs[k].params[name]
                at = keys == k
                vals[at] = int(x.scaleb(self.scale))
                nes[at] = _neg_exp(x) or 0
            return vals, nes
        return None

    def _strings(self, name: str, spec: str, js: np.ndarray) -> list[str] | None:
        """`format(value, spec)` of the kernel's number `name` for each order j."""
        if name == "year":
            if not self.lpp[js].all():
                return None
            return [format(y, spec) for y in self.year[js].tolist()]
        col = self._value_column(name, js)
        if col is None:
            return None
        vals, nes = col
        if spec == "," and int(nes.max(initial=0)) <= 6:
            return _thousands(vals, nes, self.scale)
        return [
            format(self.dec(v, e), spec) for v, e in zip(vals.tolist(), nes.tolist(), strict=True)
        ]

    def texts(self, f: Callable[[dict[str, Any]], str], js: np.ndarray) -> list[str]:
        """`f(numbers)` for each order j, compiled to columns when `f` only formats numbers
        (checked on the first order against the formatter itself)."""
        if not js.size:
            return []
        compiled = _compile(f)
        if compiled is not None:
            literals, fields = compiled
            cols = [self._strings(name, spec, js) for name, spec in fields]
            if all(c is not None for c in cols):
                out = _interleave(literals, [c for c in cols if c is not None], js.size)
                if out[0] == f(self.numbers(int(js[0]))):
                    return out
        return [f(self.numbers(j, fast=True)) for j in js.tolist()]

    def quota_columns(
        self, pair: Callable[[Decimal], tuple[float, str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        """Per order j: used, limit, remaining (floats; limit and remaining 0 where null), limit
        null, and the JSON text `io.decisions` writes for its single quota line. `pair(d)` is the
        reference (float, JSON text) of a Decimal, used where a value is not an integer."""
        import pyarrow.compute as pc

        m = len(self.rows)
        unit = 10**self.scale
        limit_s = np.full(len(self.programs), -1, dtype=np.int64)
        limit_f = np.zeros(len(self.programs))
        limit_txt = [""] * len(self.programs)
        for k in np.unique(self.key[self.lpp]).tolist():
            lim: Decimal = self.programs[k].params["lpp_limit"]
            limit_s[k] = int(lim.scaleb(self.scale))
            limit_f[k], text = pair(lim)
            limit_txt[k] = f'"limit_tpp": {text}, "remaining_tpp": '
        null = ~self.lpp
        used_f, used_txt = _json_numbers(self.after, unit, pair, self.dec, self.after_ne)
        rem_s = np.where(null, 0, np.maximum(limit_s[self.key] - self.after, 0))
        rem_f, rem_txt = _json_numbers(rem_s, unit, pair, self.dec, None)
        lim_f = np.where(null, 0.0, limit_f[self.key])
        rem_f[null] = 0.0
        acc_json = pa.array([_json_str(a) for a in self.accounts], pa.string()).take(
            pa.array(self.acc_id)
        )
        limits = pa.array([*limit_txt, _NO_LIMIT], pa.string()).take(
            pa.array(np.where(null, len(self.programs), self.key))
        )
        rem_or_empty = pc.if_else(pa.array(null), "", rem_txt)
        js = pc.binary_join_element_wise(
            '[{"account": ',
            acc_json,
            ', "used_tpp": ',
            used_txt,
            ", ",
            limits,
            rem_or_empty,
            ', "draws": true}]',
            "",
        )
        assert len(js) == m
        return used_f, lim_f, rem_f, null, js


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
        fixed: list[str] = [float.__repr__(x) for x in floats[frac].tolist()]
        for p in np.flatnonzero(~exact).tolist():
            i = int(frac[p])
            floats[i], fixed[p] = pair(dec(int(scaled[i]), scale if nes is None else int(nes[i])))
        mask = np.zeros(len(scaled), dtype=bool)
        mask[frac] = True
        patch = np.zeros(len(scaled), dtype=np.int64)
        patch[frac] = np.arange(frac.size)
        texts = pc_if_else(mask, pa.array(fixed, pa.string()).take(pa.array(patch)), texts)
    return floats, texts


def pc_if_else(mask: np.ndarray, a: pa.Array, b: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.if_else(pa.array(mask), a, b)


def _thousands(vals: np.ndarray, nes: np.ndarray, scale: int) -> list[str]:
    """`format(Decimal, ",")` of non-negative values `vals x 10^-scale` with exponents `-nes`
    (0 <= nes <= 6, so `Decimal` prints them in fixed point)."""
    out: list[str] = [""] * vals.size
    for e in np.unique(nes).tolist():
        at = np.flatnonzero(nes == e)
        m = vals[at] // 10 ** (scale - e)
        whole, frac = np.divmod(m, 10**e)
        if e == 0:
            texts = [f"{w:,}" for w in whole.tolist()]
        else:
            texts = [f"{w:,}.{x:0{e}d}" for w, x in zip(whole.tolist(), frac.tolist(), strict=True)]
        for i, t in zip(at.tolist(), texts, strict=True):
            out[i] = t
    return out


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


def _compile(f: Callable[[dict[str, Any]], str]) -> tuple[list[str], list[tuple[str, str]]] | None:
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


def _interleave(literals: list[str], cols: list[list[str]], n: int) -> list[str]:
    """Row i: literals[0] + cols[0][i] + literals[1] + ... (cols has one fewer entry)."""
    if not cols:
        return [literals[0]] * n
    out = [literals[0] + x for x in cols[0]]
    for lit, col in zip(literals[1:], cols[1:], strict=False):
        out = [a + lit + b for a, b in zip(out, col, strict=True)]
    tail = literals[len(cols)]
    if tail:
        out = [a + tail for a in out]
    return out


def _json_str(s: str) -> str:
    import json

    return json.dumps(s)


@dataclass
class VecResult:
    handled: np.ndarray  # per position of the pass: decided here
    state: dict[str, Decimal]  # totals the sequential kernel starts from
    owned: frozenset[str]  # accounts whose every order is decided here
    vec: VecOutcomes


class Retry(Exception):
    """A key was sent to the engine: the analysis must be redone."""


def _segments(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stable grouping of positions by account code: (order, segment of each, segment starts,
    distinct codes)."""
    uniq, inv = np.unique(codes, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    seg = inv[order]
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if seg.size else seg
    return order, seg, starts, uniq


def _running(
    t: np.ndarray, seg: np.ndarray, starts: np.ndarray, u0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per position: the segment's total after it (u0 + cumulative sum), and the total before."""
    cs = np.cumsum(t)
    base = cs[starts] - t[starts]
    after = cs - base[seg] + u0[seg]
    return after, after - t


def _running_ne(
    ne: np.ndarray, seg: np.ndarray, starts: np.ndarray, u0_ne: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per position: -exponent of the Decimal total after it and before it (the largest -exponent
    of the terms so far, the starting balance's included)."""
    width = int(max(int(ne.max(initial=0)), int(u0_ne.max(initial=0)))) + 1
    w = seg.astype(np.int64) * width + ne
    run = np.maximum.accumulate(w) - seg.astype(np.int64) * width if w.size else w
    after = np.maximum(run, u0_ne[seg])
    before = np.empty_like(after)
    if after.size:
        before[1:] = after[:-1]
        before[starts] = u0_ne
    return after, before


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
    code = {AIA: 1, LPP: 2, ENGINE: 3, UVEU: 3}
    kinds = np.array([code.get(p.kind, 0) for p in programs] or [0], dtype=np.int8)
    kind_p = kinds[key_p] if n_pos else np.zeros(0, dtype=np.int8)
    if not n_pos or not np.isin(kind_p, (1, 2)).any():
        return None

    # Each item key's TPP per unit as an integer mantissa and -exponent (model weights: 0).
    unit = np.zeros(len(infos), dtype=np.int64)
    unit_ne = np.zeros(len(infos), dtype=np.int64)
    item_ok = np.ones(len(infos), dtype=bool)
    for k, f in enumerate(infos):
        if f.error:
            item_ok[k] = False
            continue
        if f.weights:
            continue
        ne = _neg_exp(f.tpp_per_ic)
        _, digits, _ = f.tpp_per_ic.as_tuple()
        m = int("".join(map(str, digits)) or "0") * int(f.chips)
        if ne is None or ne > 12 or m >= 2**53 or f.chips < 1:
            item_ok[k] = False
            continue
        unit[k], unit_ne[k] = m, ne
    q = np.array([x if type(x) is int and 0 < x < 2**53 else 0 for x in qty_p], dtype=np.int64)
    u_p = unit[ik_p]
    with np.errstate(over="ignore", invalid="ignore"):
        ok_p = item_ok[ik_p] & (q > 0) & (q.astype(np.float64) * u_p.astype(np.float64) < 2**53)
    mant = np.where(ok_p, q * u_p, 0)
    ne_p = unit_ne[ik_p]

    quota_kind = np.isin(kind_p, (1, 2))
    bad_cons = np.zeros(len(cons_names), dtype=bool)
    bad_cons[cons_p[(kind_p == 3) | (quota_kind & ~ok_p)]] = True
    cand = quota_kind & ~bad_cons[cons_p]
    if not cand.any():
        return None

    # Parameters of the keys involved, and the common scale.
    params: dict[str, np.ndarray] = {}
    scale = int(ne_p[cand].max())
    cand_keys = np.unique(key_p[cand]).tolist()
    for name in ("lpp_limit", "notice", "aia_thr"):
        for k in cand_keys:
            x = programs[k].params.get(name)
            if isinstance(x, Decimal):
                ne = _neg_exp(x)
                if ne is None or ne > 12:
                    return None
                scale = max(scale, ne)

    # Accounts and their balances before the file.
    lpp_pos = np.flatnonzero(cand & (kind_p == 2))
    aia_pos_all = np.flatnonzero(cand & (kind_p == 1))
    y0 = int(year_p.min()) if n_pos else 0
    span = int(year_p.max()) - y0 + 1 if n_pos else 1
    lpp_codes = cons_p[lpp_pos] * span + (year_p[lpp_pos] - y0)
    l_order, l_seg, l_starts, l_uniq = _segments(lpp_codes)
    l_names = [f"lpp/{cons_names[c // span]}/{c % span + y0}" for c in l_uniq.tolist()]
    a_cons = np.unique(cons_p[aia_pos_all])
    a_names_all = {c: f"aia/{cons_names[c]}" for c in a_cons.tolist()}
    u0: dict[str, Decimal] = {a: base.used(a) for a in [*l_names, *a_names_all.values()]}
    for v in u0.values():
        ne = _neg_exp(v)
        if ne is None or ne > 12:
            return None
        scale = max(scale, ne)
    if scale > 12:
        return None
    mult = np.where(cand, 10 ** np.clip(scale - ne_p, 0, 12), 0)
    with np.errstate(over="ignore", invalid="ignore"):
        if (
            float(np.sum(mant[cand].astype(np.float64) * mult[cand]))
            + max((float(v.scaleb(scale)) for v in u0.values()), default=0.0)
            >= 2**61
        ):
            return None
    tpp_s = np.where(cand, mant * mult, 0)
    for name in ("lpp_limit", "notice", "aia_thr"):
        arr = np.full(len(programs), -1, dtype=np.int64)
        for k in cand_keys:
            x = programs[k].params.get(name)
            if isinstance(x, Decimal):
                if x.scaleb(scale) >= BOUND:
                    return None
                arr[k] = int(x.scaleb(scale))
        params[name] = arr

    def u0_arrays(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        s = np.array([int(u0[a].scaleb(scale)) for a in names], dtype=np.int64)
        e = np.array([_neg_exp(u0[a]) or 0 for a in names], dtype=np.int64)
        return s, e

    # LPP: every order up to the first that does not fit.
    sp = lpp_pos[l_order]
    t = tpp_s[sp]
    lu0, lu0_ne = u0_arrays(l_names)
    l_after, _ = _running(t, l_seg, l_starts, lu0)
    limit = params["lpp_limit"][key_p[sp]]
    fits = (l_after <= limit) & (limit >= 0)
    idx = np.arange(sp.size)
    first_bad = np.full(len(l_names), sp.size, dtype=np.int64)
    np.minimum.at(first_bad, l_seg[~fits], idx[~fits])
    l_vec = idx < first_bad[l_seg]
    l_after_ne, l_before_ne = _running_ne(ne_p[sp], l_seg, l_starts, lu0_ne)
    state: dict[str, Decimal] = {}
    seg_start = l_starts
    for s_ in np.flatnonzero(first_bad < sp.size).tolist():
        fb = int(first_bad[s_])
        if fb == int(seg_start[s_]):
            state[l_names[s_]] = u0[l_names[s_]]
        else:
            state[l_names[s_]] = Decimal(
                int(l_after[fb - 1]) // 10 ** (scale - int(l_after_ne[fb - 1]))
            ).scaleb(-int(l_after_ne[fb - 1]))
    # A consignee one of whose LPP orders may be refused and fall back to AIA keeps AIA sequential.
    over_aia = np.array([p.over == AIA for p in programs] or [False], dtype=bool)
    seq = sp[~l_vec]
    aia_seq = np.zeros(len(cons_names), dtype=bool)
    aia_seq[cons_p[seq[over_aia[key_p[seq]]]]] = True

    # AIA: every order of the other consignees.
    aia_pos = aia_pos_all[~aia_seq[cons_p[aia_pos_all]]]
    a_order, a_seg, a_starts, a_uniq = _segments(cons_p[aia_pos])
    a_names = [a_names_all[c] for c in a_uniq.tolist()]
    ap = aia_pos[a_order]
    at = tpp_s[ap]
    au0, au0_ne = u0_arrays(a_names)
    a_after, _ = _running(at, a_seg, a_starts, au0)
    a_after_ne, a_before_ne = _running_ne(ne_p[ap], a_seg, a_starts, au0_ne)

    # Together, in processing order.
    lv = np.flatnonzero(l_vec)
    pos = np.concatenate([sp[lv], ap])
    srt = np.argsort(pos, kind="stable")
    pos = pos[srt]
    is_lpp = np.concatenate([np.ones(lv.size, dtype=bool), np.zeros(ap.size, dtype=bool)])[srt]
    acc_id = np.concatenate([l_seg[lv], a_seg + len(l_names)])[srt]
    after = np.concatenate([l_after[lv], a_after])[srt]
    after_ne = np.concatenate([l_after_ne[lv], a_after_ne])[srt]
    before_ne = np.concatenate([l_before_ne[lv], a_before_ne])[srt]
    keys = key_p[pos]
    tpp_v = tpp_s[pos]
    rows = order_rows[pos]
    slot = np.full(orders.n, -1, dtype=np.int64)
    slot[rows] = np.arange(pos.size)
    vec = VecOutcomes(
        rows=rows,
        tid=np.full(pos.size, -1, dtype=np.int64),
        lpp=is_lpp,
        key=keys,
        acc_id=acc_id,
        accounts=l_names + a_names,
        after=after,
        after_ne=after_ne,
        before_ne=before_ne,
        tpp=tpp_v,
        tpp_ne=ne_p[pos],
        year=year_p[pos],
        scale=scale,
        programs=programs,
        slot=slot,
    )

    # Outcomes: LPP (key, fits, notice, at the limit); AIA (key, threshold reached).
    b1 = np.where(is_lpp, tpp_v >= params["notice"][keys], after >= params["aia_thr"][keys])
    b2 = is_lpp & (after == params["lpp_limit"][keys])
    outcome = keys * 8 + is_lpp * 4 + b1 * 2 + b2
    uniq, first, inv = np.unique(outcome, return_index=True, return_inverse=True)
    tids = np.empty(len(uniq), dtype=np.int64)
    for u, (oc, j) in enumerate(zip(uniq.tolist(), first.tolist(), strict=True)):
        k = oc // 8
        bkey: tuple[Any, ...] = (
            (k, "fit", bool(oc & 2), bool(oc & 1)) if oc & 4 else (k, "aia", bool(oc & 2))
        )
        tid = branch_tpl.get(bkey)
        if tid is None:
            acc = vec.accounts[int(acc_id[j])]
            view = StateView({acc: vec.before(j)}, base)
            tid = branch_template(
                engine,
                orders,
                int(rows[j]),
                view,
                (vec.use(j),),
                vec.draws(j),
                vec.numbers(j),
                programs[k],
                templates,
                infos[int(ik_p[pos[j]])],
                special,
            )
            if tid is None:
                programs[k].kind = ENGINE
                raise Retry
            branch_tpl[bkey] = tid
        tids[u] = tid
    vec.tid = tids[inv.reshape(-1)]
    handled = np.zeros(n_pos, dtype=bool)
    handled[pos] = True
    owned = {vec.accounts[s_] for s_ in range(len(l_names)) if l_names[s_] not in state}
    owned.update(a_names)
    return VecResult(handled, state, frozenset(owned), vec)
