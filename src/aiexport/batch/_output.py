"""Decisions as Arrow columns, built from templates with `take`, and written like `io.decisions`.

Every order has a template id; reasons and obligations are ids into small tables of distinct
entries, laid out per template with NumPy and materialised with one `take` per column. Only the
quota-dependent texts (running totals) and authorization references are formatted per order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiexport.io.decisions import atomic_path, output_format, parquet_schema, write_records
from aiexport.rules.determination import QuotaUse, Reason, _num

from ._amounts import Amounts
from ._plan import CLS, REF, REGIME, SLOT, Template, substitute
from ._stages import stage
from ._vector import VecOutcomes, compile_formatter


def _pair(v: Decimal) -> tuple[float, str]:
    """(the float Parquet stores, the JSON text `json.dumps` writes) for `_num(v)`."""
    x = _num(v)
    return float(x), (str(x) if isinstance(x, int) else float.__repr__(x))


class Interner:
    """Distinct values and their ids."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def id(self, value: Any) -> int:
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.values)
            self.values.append(value)
        return i


class ReasonTable:
    """Reasons as three parallel columns; fixed reasons are interned, per-order texts appended
    (the bulk pass's as Arrow arrays, never turned into Python strings)."""

    def __init__(self) -> None:
        self.rule: list[str] = []
        self.citation: list[str] = []
        self.ids: dict[tuple[str, str, str], int] = {}
        self._segments: list[list[str] | pa.Array] = []
        self._flat: list[str] | None = None

    def id(self, rule: str, citation: str, text: str) -> int:
        key = (rule, citation, text)
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = self.append(rule, citation, text)
        return i

    def append(self, rule: str, citation: str, text: str) -> int:
        self.rule.append(rule)
        self.citation.append(citation)
        last = self._segments[-1] if self._segments else None
        if isinstance(last, list):
            last.append(text)
        else:
            self._segments.append([text])
        self._flat = None
        return len(self.rule) - 1

    def extend(self, rule: str, citation: str, texts: pa.Array) -> np.ndarray:
        start = len(self.rule)
        self.rule.extend([rule] * len(texts))
        self.citation.extend([citation] * len(texts))
        self._segments.append(texts)
        self._flat = None
        return np.arange(start, start + len(texts), dtype=np.int64)

    def text_array(self) -> pa.Array:
        parts = [
            pa.array(seg, pa.string()) if isinstance(seg, list) else seg.cast(pa.string())
            for seg in self._segments
        ]
        return pa.concat_arrays(parts) if parts else pa.array([], pa.string())

    @property
    def text(self) -> list[str]:
        """Every text as a Python list (for per-order records)."""
        if self._flat is None:
            self._flat = self.text_array().to_pylist()
        return self._flat


@dataclass
class Decisions:
    """Every order's decision, in input order, as columns."""

    n: int
    order_id: pa.Array
    rule_set: str
    templates: list[Template]
    tid: np.ndarray  # template id per row
    amounts: Amounts
    reason_offsets: np.ndarray
    reason_ids: np.ndarray
    reasons: ReasonTable
    obligation_offsets: np.ndarray
    obligation_ids: np.ndarray
    obligations: list[str]
    quota: dict[int, tuple[QuotaUse, ...]]
    vec: VecOutcomes | None = None  # the orders the quota pass decided in bulk

    def quota_uses(self, i: int) -> tuple[QuotaUse, ...]:
        q = self.quota.get(i)
        if q is None and self.vec is not None:
            j = int(self.vec.slot[i])
            if j >= 0:
                return self.vec.uses(j)
        return q or ()

    # -- per-row views -------------------------------------------------------------------
    def tpp_total(self, i: int) -> Decimal:
        return self.amounts.exact(i)

    def record(self, i: int) -> dict[str, Any]:
        t = self.templates[int(self.tid[i])]
        q = self.quota_uses(i)
        quota: dict[str, Any] | None
        if not q:
            quota = None
        elif len(q) == 1:
            quota = q[0].to_record()
        else:
            first = q[0].to_record()
            quota = {**first, "accounts": [u.to_record() for u in q]}
        ro, oo = self.reason_offsets, self.obligation_offsets
        rt = self.reasons
        return {
            "order_id": self.order_id[i].as_py(),
            "eccn": t.eccn,
            "tpp_total": _num(self.tpp_total(i)),
            "h100_equivalents": float(self.amounts.h100[i]),
            "destination_tier": t.tier,
            "status": t.status,
            "authority": t.authority,
            "review_policy": t.policy,
            "obligations": [self.obligations[j] for j in self.obligation_ids[oo[i] : oo[i + 1]]],
            "quota": quota,
            "reasons": [
                {"rule": rt.rule[j], "citation": rt.citation[j], "text": rt.text[j]}
                for j in self.reason_ids[ro[i] : ro[i + 1]].tolist()
            ],
            "rule_set": self.rule_set,
        }

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            yield self.record(i)

    # -- Arrow -----------------------------------------------------------------------------
    def table(self, dictionary: bool = False) -> pa.Table:
        """The decisions as an Arrow table with `io.decisions`' schema.

        With `dictionary`, repeated strings (reasons, obligations, codes) stay dictionary-encoded
        over their distinct values instead of being copied per order; written to Parquet without
        the Arrow schema, the file reads back as exactly the plain table.
        """
        schema = parquet_schema()
        tpl = self.templates
        tid = pa.array(self.tid.astype(np.int32))

        def strings(values: list[Any], idx: pa.Array) -> pa.Array:
            d = pa.array(values, pa.string())
            if dictionary:
                return pa.DictionaryArray.from_arrays(idx, d)
            return d.take(idx)

        def per_template(values: list[Any], typ: pa.DataType) -> pa.Array:
            if dictionary and pa.types.is_string(typ):
                return pa.DictionaryArray.from_arrays(tid, pa.array(values, type=typ))
            return pa.array(values, type=typ).take(tid)

        rid = pa.array(self.reason_ids.astype(np.int32))
        # Texts include one per order for running totals: those are copied, not encoded.
        parts = [
            strings(self.reasons.rule, rid),
            strings(self.reasons.citation, rid),
            self.reasons.text_array().take(rid),
        ]
        reason_struct = pa.StructArray.from_arrays(parts, names=["rule", "citation", "text"])
        reason_list = pa.ListArray.from_arrays(
            pa.array(self.reason_offsets.astype(np.int32)), reason_struct
        )
        ob = strings(self.obligations, pa.array(self.obligation_ids.astype(np.int32)))
        ob_list = pa.ListArray.from_arrays(pa.array(self.obligation_offsets.astype(np.int32)), ob)
        quota_struct, quota_json = self._quota_columns(schema)
        cols = {
            "order_id": self.order_id,
            "eccn": per_template([t.eccn for t in tpl], pa.string()),
            "tpp_total": pa.array(self.amounts.tpp_float, pa.float64()),
            "h100_equivalents": pa.array(self.amounts.h100, pa.float64()),
            "destination_tier": per_template([t.tier for t in tpl], pa.int8()),
            "status": per_template([t.status for t in tpl], pa.string()),
            "authority": per_template([t.authority for t in tpl], pa.string()),
            "review_policy": per_template([t.policy for t in tpl], pa.string()),
            "obligations": ob_list,
            "quota": quota_struct,
            "quota_accounts": quota_json,
            "reasons": reason_list,
            "rule_set": strings([self.rule_set], pa.array(np.zeros(self.n, dtype=np.int32))),
        }
        arrays = [cols[f.name] for f in schema]
        if dictionary:
            return pa.Table.from_arrays(arrays, names=schema.names)
        return pa.table(
            [a.cast(f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
        )

    def _quota_columns(self, schema: pa.Schema) -> tuple[pa.Array, pa.Array]:
        """The `quota` struct and `quota_accounts` JSON exactly as `io.decisions` writes them."""
        n = self.n
        account: list[str | None] = [None] * n
        used = np.zeros(n)
        limit = np.zeros(n)
        remaining = np.zeros(n)
        limit_null = np.ones(n, dtype=bool)
        draws = np.zeros(n, dtype=bool)
        valid = np.zeros(n, dtype=bool)
        js: list[str | None] = [None] * n
        names: dict[str, str] = {}
        nums: dict[Decimal, tuple[float, str]] = {}
        for i, q in self.quota.items():
            if not q:
                continue
            parts = []
            for j, u in enumerate(q):
                acc = names.get(u.account)
                if acc is None:
                    acc = names[u.account] = json.dumps(u.account)
                # Balances repeat (orders that only read an allocation): one conversion each.
                hit = nums.get(u.used_tpp)
                if hit is None:
                    hit = nums[u.used_tpp] = _pair(u.used_tpp)
                uf, us = hit
                if u.limit_tpp is None:
                    lf = rf = 0.0
                    limits = '"limit_tpp": null, "remaining_tpp": null'
                else:
                    hit = nums.get(u.limit_tpp)
                    if hit is None:
                        hit = nums[u.limit_tpp] = _pair(u.limit_tpp)
                    lf, ls = hit
                    rem = max(u.limit_tpp - u.used_tpp, Decimal(0))
                    hit = nums.get(rem)
                    if hit is None:
                        hit = nums[rem] = _pair(rem)
                    rf, rs = hit
                    limits = f'"limit_tpp": {ls}, "remaining_tpp": {rs}'
                flag = "true" if u.draws else "false"
                parts.append(f'{{"account": {acc}, "used_tpp": {us}, {limits}, "draws": {flag}}}')
                if j == 0:
                    valid[i] = True
                    account[i] = u.account
                    used[i] = uf
                    if u.limit_tpp is not None:
                        limit_null[i] = False
                        limit[i] = lf
                        remaining[i] = rf
                    draws[i] = u.draws
            js[i] = "[" + ", ".join(parts) + "]"
        if self.vec is not None and self.vec.rows.size:
            v = self.vec
            rows = v.rows
            v_valid, u_f, l_f, r_f, null, v_draws, v_account, v_js = v.quota_columns(_pair)
            valid[rows] = v_valid
            used[rows] = u_f
            limit[rows] = l_f
            remaining[rows] = r_f
            limit_null[rows] = null
            draws[rows] = v_draws
            # Row i's account and JSON: the kernel's (a Python list) or the bulk pass' (Arrow).
            src = np.full(n, -1, dtype=np.int64)
            seq = np.array([i for i, q in self.quota.items() if q], dtype=np.int64)
            src[seq] = np.arange(seq.size)
            src[rows] = seq.size + np.arange(rows.size)
            taker = pa.array(src, mask=src < 0)
            seq_l = seq.tolist()
            acc_all = pa.concat_arrays(
                [
                    pa.array([account[i] for i in seq_l], pa.string()),
                    v_account,
                ]
            )
            js_all = pa.concat_arrays([pa.array([js[i] for i in seq_l], pa.string()), v_js])
            account_arr, js_arr = acc_all.take(taker), js_all.take(taker)
        else:
            account_arr, js_arr = pa.array(account, pa.string()), pa.array(js, pa.string())
        struct = self._quota_struct(
            schema, account_arr, used, limit, remaining, limit_null, draws, valid
        )
        return struct, js_arr

    @staticmethod
    def _quota_struct(
        schema: pa.Schema,
        account: pa.Array,
        used: np.ndarray,
        limit: np.ndarray,
        remaining: np.ndarray,
        limit_null: np.ndarray,
        draws: np.ndarray,
        valid: np.ndarray,
    ) -> pa.Array:
        qtype = schema.field("quota").type
        return pa.StructArray.from_arrays(
            [
                account,
                pa.array(used, pa.float64()),
                pa.array(limit, pa.float64(), mask=limit_null),
                pa.array(remaining, pa.float64(), mask=limit_null),
                pa.array(draws, pa.bool_()),
            ],
            fields=list(qtype),
            mask=pa.array(~valid),
        )

    def write(self, path: Path) -> int:
        fmt = output_format(path)
        if fmt != "parquet":
            return write_records(self.records(), path)
        import pyarrow.parquet as pq

        with stage("output columns"):
            table = self.table(dictionary=True)
        with stage("Parquet write"), atomic_path(path) as tmp:
            table = pa.Table.from_arrays(
                [pa.chunked_array([_compact(a) for a in c.chunks], c.type) for c in table.columns],
                schema=table.schema,
            )
            leaves = _leaf_paths(table.schema)
            with pq.ParquetWriter(
                tmp,
                table.schema,
                store_schema=False,
                # Distinct per order: a dictionary would only be tried and dropped.
                use_dictionary=[c for c in leaves if c not in PLAIN_COLUMNS],
                # Long texts: min/max statistics cost time and serve no filter.
                write_statistics=[c for c in leaves if c not in NO_STATISTICS],
            ) as writer:
                writer.write_table(table, row_group_size=65536)
        return self.n


PLAIN_COLUMNS = frozenset({"order_id", "quota_accounts"})
NO_STATISTICS = frozenset({"quota_accounts", "reasons.list.element.text"})


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Parquet column paths of an Arrow schema's leaves (lists as `name.list.element`)."""

    def walk(prefix: str, t: pa.DataType) -> list[str]:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return walk(prefix + ".list.element", t.value_type)
        if pa.types.is_struct(t):
            return [p for f in t for p in walk(f"{prefix}.{f.name}", f.type)]
        return [prefix]

    return [p for f in schema for p in walk(f.name, f.type)]


def _compact(arr: pa.Array) -> pa.Array:
    """The same values with every dictionary reduced to its distinct entries.

    A dictionary built over a table of reasons repeats each rule once per reason: written
    as is, the Parquet writer stores (and soon abandons) that whole dictionary per column
    chunk. Arrays with nulls or offsets at a nesting level are left as they are.
    """
    if isinstance(arr, pa.DictionaryArray):
        enc = pc.dictionary_encode(arr.dictionary)
        return pa.DictionaryArray.from_arrays(enc.indices.take(arr.indices), enc.dictionary)
    if arr.offset or arr.null_count:
        return arr
    if isinstance(arr, pa.ListArray):
        return pa.ListArray.from_arrays(arr.offsets, _compact(arr.values), type=arr.type)
    if isinstance(arr, pa.StructArray):
        return pa.StructArray.from_arrays(
            [_compact(arr.field(i)) for i in range(arr.type.num_fields)], fields=list(arr.type)
        )
    return arr


def layout(
    per_row_lengths: np.ndarray,
) -> np.ndarray:
    offsets = np.zeros(len(per_row_lengths) + 1, dtype=np.int64)
    np.cumsum(per_row_lengths, out=offsets[1:])
    return offsets


def build_reason_ids(
    templates: list[Template],
    tid: np.ndarray,
    date_code: np.ndarray,
    date_str: list[str],
    subs: tuple[np.ndarray, list[dict[str, str]]],
    numbers: dict[int, dict[str, Any]],
    ikey: np.ndarray | None,
    cls_reasons: list[tuple[Reason, ...]],
    vec: VecOutcomes | None = None,
) -> tuple[np.ndarray, np.ndarray, ReasonTable]:
    """Offsets and reason ids for every row; per-row texts only where a template has holes.

    A template's CLS hole (always its second item) takes the reasons of the row's item key.
    """
    table = ReasonTable()
    n = len(tid)
    has_cls_t = np.array([any(k == CLS for k, _ in t.items) for t in templates], dtype=bool)
    len_t = np.array([len(t.items) for t in templates], dtype=np.int64) - has_cls_t
    cls_len_i = np.array([len(c) for c in cls_reasons], dtype=np.int64)
    has_cls = has_cls_t[tid] if n else np.zeros(0, dtype=bool)
    k_row = np.zeros(n, dtype=np.int64)
    if ikey is not None and has_cls.any():
        k_row[has_cls] = cls_len_i[ikey[has_cls]]
    lengths = (len_t[tid] if n else np.zeros(0, dtype=np.int64)) + k_row
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    sub_code, sub_values = subs
    n_dates, n_subs = max(len(date_str), 1), max(len(sub_values), 1)
    regime_keys: dict[tuple[str, str, str, str], int] = {}
    ref_keys: dict[tuple[str, str, str], int] = {}
    regime_pos: list[np.ndarray] = []
    regime_code: list[np.ndarray] = []
    ref_pos: list[np.ndarray] = []
    ref_code: list[np.ndarray] = []
    slots: dict[
        tuple[str, str, Any], list[tuple[Callable[[dict[str, Any]], str], np.ndarray, np.ndarray]]
    ] = {}
    order = np.argsort(tid, kind="stable")
    bounds = np.flatnonzero(np.diff(tid[order])) + 1
    for rows in np.split(order, bounds):
        if not rows.size:
            continue
        t = templates[int(tid[rows[0]])]
        base = offsets[rows]
        shift = np.zeros(rows.size, dtype=np.int64)
        for j, (kind, item) in enumerate(t.items):
            if kind == CLS:
                if j != 1:
                    raise AssertionError("a classification hole is the second reason")
                shift = k_row[rows] - 1
                continue
            pos = base + j + shift
            if kind == REGIME:
                # Deferred: (the reason with its representative's date, this row's date).
                r: Reason = item
                rk = regime_keys.setdefault((r.rule, r.citation, r.text, t.day), len(regime_keys))
                regime_pos.append(pos)
                regime_code.append(rk * n_dates + date_code[rows])
            elif kind == REF:
                # Deferred: (the reason with tokens, this row's values of the tokens).
                r = item
                rk = ref_keys.setdefault((r.rule, r.citation, r.text), len(ref_keys))
                ref_pos.append(pos)
                ref_code.append(rk * n_subs + sub_code[rows])
            elif kind == SLOT:
                # Deferred: every template's rows of one formatter are formatted together.
                rule, citation, f = item
                compiled = compile_formatter(f)
                shape = (tuple(compiled[0]), tuple(compiled[1])) if compiled is not None else id(f)
                slots.setdefault((rule, citation, shape), []).append((f, pos, rows))
            else:
                r = item
                flat[pos] = table.id(r.rule, r.citation, r.text)
    for (rule, citation, _), items in slots.items():
        f = items[0][0]
        rows_all = np.concatenate([r for _, _, r in items])
        flat[np.concatenate([p for _, p, _ in items])] = table.extend(
            rule, citation, _slot_texts(f, rows_all, numbers, vec)
        )
    if regime_pos:
        regimes = list(regime_keys)
        codes, inverse = np.unique(np.concatenate(regime_code), return_inverse=True)
        ids = np.empty(codes.size, dtype=np.int64)
        for u, c in enumerate(codes.tolist()):
            rule, citation, text, day = regimes[c // n_dates]
            ids[u] = table.id(rule, citation, text.replace(day, date_str[c % n_dates], 1))
        flat[np.concatenate(regime_pos)] = ids[inverse.reshape(-1)]
    if ref_pos:
        refs = list(ref_keys)
        codes, inverse = np.unique(np.concatenate(ref_code), return_inverse=True)
        ids = np.empty(codes.size, dtype=np.int64)
        for u, c in enumerate(codes.tolist()):
            rule, citation, text = refs[c // n_subs]
            ids[u] = table.id(rule, citation, substitute(text, sub_values[c % n_subs]))
        flat[np.concatenate(ref_pos)] = ids[inverse.reshape(-1)]
    if ikey is not None and has_cls.any():
        rows_c = np.flatnonzero(has_cls)
        keys = ikey[rows_c]
        by_key = np.argsort(keys, kind="stable")
        kb = np.flatnonzero(np.diff(keys[by_key])) + 1
        for grp in np.split(by_key, kb):
            rows = rows_c[grp]
            reasons = cls_reasons[int(ikey[rows[0]])]
            if not reasons:
                continue
            ids = np.array([table.id(r.rule, r.citation, r.text) for r in reasons], dtype=np.int64)
            pos = offsets[rows][:, None] + 1 + np.arange(len(reasons))
            flat[pos] = ids
    return offsets, flat, table


def _slot_texts(
    f: Callable[[dict[str, Any]], str],
    rows: np.ndarray,
    numbers: dict[int, dict[str, Any]],
    vec: VecOutcomes | None,
) -> pa.Array:
    """A formatter's text for each row: from the kernel's numbers, or the bulk pass' columns."""
    if vec is None:
        return pa.array([f(numbers[i]) for i in rows.tolist()], pa.string())
    j = vec.slot[rows]
    bulk = np.flatnonzero(j >= 0)
    rest = np.flatnonzero(j < 0)
    kernel = pa.array([f(numbers[int(rows[p])]) for p in rest.tolist()], pa.string())
    if not bulk.size:
        return kernel
    texts = vec.texts(f, j[bulk])
    if not rest.size:
        return texts
    where = np.empty(rows.size, dtype=np.int64)
    where[bulk] = np.arange(bulk.size)
    where[rest] = bulk.size + np.arange(rest.size)
    return pa.concat_arrays([texts, kernel]).take(pa.array(where))


def build_obligation_ids(
    templates: list[Template], tid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = Interner()
    per_t = [np.array([table.id(o) for o in t.obligations], dtype=np.int64) for t in templates]
    lengths_t = np.array([len(x) for x in per_t], dtype=np.int64)
    n = len(tid)
    offsets = layout(lengths_t[tid] if n else np.zeros(0, dtype=np.int64))
    if not per_t:
        return offsets, np.zeros(0, dtype=np.int64), []
    width = int(lengths_t.max()) if lengths_t.size else 0
    padded = np.full((len(per_t), max(width, 1)), -1, dtype=np.int64)
    for k, x in enumerate(per_t):
        padded[k, : len(x)] = x
    rows_pad = padded[tid]
    flat = rows_pad[rows_pad >= 0] if width else np.zeros(0, dtype=np.int64)
    return offsets, flat, list(table.values)
