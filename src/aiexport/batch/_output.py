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

from aiexport.io.decisions import atomic_path, output_format, parquet_schema, write_records
from aiexport.rules.determination import QuotaUse, Reason, _num

from ._plan import REF, REGIME, SLOT, Template, substitute


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


@dataclass
class Decisions:
    """Every order's decision, in input order, as columns."""

    n: int
    order_id: pa.Array
    rule_set: str
    templates: list[Template]
    tid: np.ndarray  # template id per row
    tpp: list[Decimal]  # exact tpp_total per row
    tpp_float: np.ndarray
    h100: np.ndarray
    reason_offsets: np.ndarray
    reason_ids: np.ndarray
    reasons: list[Reason]
    obligation_offsets: np.ndarray
    obligation_ids: np.ndarray
    obligations: list[str]
    quota: dict[int, tuple[QuotaUse, ...]]
    tpp_exact: Any = None  # callable row -> Decimal

    # -- per-row views -------------------------------------------------------------------
    def tpp_total(self, i: int) -> Decimal:
        value: Decimal = self.tpp_exact(i)
        return value

    def record(self, i: int) -> dict[str, Any]:
        t = self.templates[int(self.tid[i])]
        q = self.quota.get(i)
        quota: dict[str, Any] | None
        if not q:
            quota = None
        elif len(q) == 1:
            quota = q[0].to_record()
        else:
            first = q[0].to_record()
            quota = {**first, "accounts": [u.to_record() for u in q]}
        ro, oo = self.reason_offsets, self.obligation_offsets
        return {
            "order_id": self.order_id[i].as_py(),
            "eccn": t.eccn,
            "tpp_total": _num(self.tpp_total(i)),
            "h100_equivalents": float(self.h100[i]),
            "destination_tier": t.tier,
            "status": t.status,
            "authority": t.authority,
            "review_policy": t.policy,
            "obligations": [self.obligations[j] for j in self.obligation_ids[oo[i] : oo[i + 1]]],
            "quota": quota,
            "reasons": [self.reasons[j].to_record() for j in self.reason_ids[ro[i] : ro[i + 1]]],
            "rule_set": self.rule_set,
        }

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            yield self.record(i)

    # -- Arrow -----------------------------------------------------------------------------
    def table(self) -> pa.Table:
        schema = parquet_schema()
        tpl = self.templates
        tid = pa.array(self.tid.astype(np.int32))

        def per_template(values: list[Any], typ: pa.DataType) -> pa.Array:
            return pa.array(values, type=typ).take(tid)

        reasons = pa.array([r.rule for r in self.reasons], pa.string())
        citations = pa.array([r.citation for r in self.reasons], pa.string())
        texts = pa.array([r.text for r in self.reasons], pa.string())
        rid = pa.array(self.reason_ids.astype(np.int64))
        reason_struct = pa.StructArray.from_arrays(
            [reasons.take(rid), citations.take(rid), texts.take(rid)],
            fields=list(schema.field("reasons").type.value_type),
        )
        reason_list = pa.ListArray.from_arrays(
            pa.array(self.reason_offsets.astype(np.int32)),
            reason_struct,
            type=schema.field("reasons").type,
        )
        ob = pa.array(self.obligations, pa.string()).take(
            pa.array(self.obligation_ids.astype(np.int64))
        )
        ob_list = pa.ListArray.from_arrays(
            pa.array(self.obligation_offsets.astype(np.int32)),
            ob,
            type=schema.field("obligations").type,
        )
        quota_struct, quota_json = self._quota_columns(schema)
        cols = {
            "order_id": self.order_id,
            "eccn": per_template([t.eccn for t in tpl], pa.string()),
            "tpp_total": pa.array(self.tpp_float, pa.float64()),
            "h100_equivalents": pa.array(self.h100, pa.float64()),
            "destination_tier": per_template([t.tier for t in tpl], pa.int8()),
            "status": per_template([t.status for t in tpl], pa.string()),
            "authority": per_template([t.authority for t in tpl], pa.string()),
            "review_policy": per_template([t.policy for t in tpl], pa.string()),
            "obligations": ob_list,
            "quota": quota_struct,
            "quota_accounts": quota_json,
            "reasons": reason_list,
            "rule_set": pa.array([self.rule_set], pa.string()).take(
                pa.array(np.zeros(self.n, dtype=np.int32))
            ),
        }
        return pa.table([cols[f.name] for f in schema], schema=schema)

    def _quota_columns(self, schema: pa.Schema) -> tuple[pa.Array, pa.Array]:
        n = self.n
        account: list[str | None] = [None] * n
        used = np.zeros(n)
        limit = np.zeros(n)
        remaining = np.zeros(n)
        limit_null = np.ones(n, dtype=bool)
        draws = np.zeros(n, dtype=bool)
        valid = np.zeros(n, dtype=bool)
        js: list[str | None] = [None] * n
        for i, q in self.quota.items():
            if not q:
                continue
            rec = q[0].to_record()
            valid[i] = True
            account[i] = rec["account"]
            used[i] = rec["used_tpp"]
            if rec["limit_tpp"] is not None:
                limit_null[i] = False
                limit[i] = rec["limit_tpp"]
                remaining[i] = rec["remaining_tpp"]
            draws[i] = rec["draws"]
            if len(q) == 1:
                js[i] = json.dumps([rec])
            else:
                js[i] = json.dumps([u.to_record() for u in q])
        qtype = schema.field("quota").type
        struct = pa.StructArray.from_arrays(
            [
                pa.array(account, pa.string()),
                pa.array(used, pa.float64()),
                pa.array(limit, pa.float64(), mask=limit_null),
                pa.array(remaining, pa.float64(), mask=limit_null),
                pa.array(draws, pa.bool_()),
            ],
            fields=list(qtype),
            mask=pa.array(~valid),
        )
        return struct, pa.array(js, pa.string())

    def write(self, path: Path) -> int:
        fmt = output_format(path)
        if fmt != "parquet":
            return write_records(self.records(), path)
        import pyarrow.parquet as pq

        table = self.table()
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, table.schema) as writer:
            writer.write_table(table, row_group_size=65536)
        return self.n


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
    subs: Callable[[int], dict[str, str]],
    numbers: dict[int, dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, list[Reason]]:
    """Offsets and reason ids for every row; per-row texts only where a template has holes."""
    table = Interner()
    n = len(tid)
    lengths_t = np.array([len(t.items) for t in templates], dtype=np.int64)
    offsets = layout(lengths_t[tid] if n else np.zeros(0, dtype=np.int64))
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    order = np.argsort(tid, kind="stable")
    bounds = np.flatnonzero(np.diff(tid[order])) + 1
    for rows in np.split(order, bounds):
        if not rows.size:
            continue
        t = templates[int(tid[rows[0]])]
        length = len(t.items)
        if length == 0:
            continue
        mat = np.empty((rows.size, length), dtype=np.int64)
        for j, (kind, item) in enumerate(t.items):
            if kind == REGIME:
                r: Reason = item
                codes, inverse = np.unique(date_code[rows], return_inverse=True)
                ids = np.array(
                    [
                        table.id(Reason(r.rule, r.citation, r.text.replace(t.day, date_str[c], 1)))
                        for c in codes.tolist()
                    ],
                    dtype=np.int64,
                )
                mat[:, j] = ids[inverse.reshape(-1)]
            elif kind == REF:
                r = item
                mat[:, j] = [
                    table.id(Reason(r.rule, r.citation, substitute(r.text, subs(i))))
                    for i in rows.tolist()
                ]
            elif kind == SLOT:
                rule, citation, f = item
                mat[:, j] = [table.id(Reason(rule, citation, f(numbers[i]))) for i in rows.tolist()]
            else:
                mat[:, j] = table.id(item)
        pos = offsets[rows][:, None] + np.arange(length)
        flat[pos] = mat
    return offsets, flat, list(table.values)


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
