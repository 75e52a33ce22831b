"""How evasive groups adapt to the LPP allowance: more shells, each one more trace.

A planted scheme (truth.json) keeps buying what it bought in the world. Where its orders ride
on License Exception LPP, every entity it buys through must stay under the allowance in each
calendar year (§ 740.29(d)). When some entity of the group would go over the allowance in force
in the scenario, the group re-packs that year's LPP orders: each entity takes at most
`shell_fill_share` of the allowance, orders too big for that are split into smaller orders, and
when the existing entities are full the group forms a new shell. New shells are clones of the
group's members with noisy shared identifiers (a copied phone, address, e-mail domain or
officer), the way the world plants rings, so each one leaves traces that the real
`investigate` pipeline may link. Groups never merge shells when the allowance rises.

Evasive orders that no license exception carries are not applied for (a license review asks for
the purchase order and end user, Supp. No. 2 to part 748 (c)(3)): they are refused, not diverted.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from aiexport.simulate._static import LPP, Static
from aiexport.simulate.world import Scheme, to_date

_IDENTITY = (
    "consignee_id",
    "consignee_name",
    "consignee_address",
    "consignee_phone",
    "consignee_email",
    "consignee_website",
    "consignee_registration",
    "consignee_officers",
    "consignee_founded",
)
_WORDS = ("Nova", "Apex", "Summit", "Orion", "Vega", "Crest", "Zenith", "Helix", "Astra", "Lumen",
          "Quanta", "Meridian", "Atlas", "Sigma", "Polaris", "Cobalt")  # fmt: skip
_FIRST = ("Wei", "Arjun", "Omar", "Lina", "Mehmet", "Siti", "Rafael", "Elena", "Yusuf", "Priya")
_LAST = ("Tan", "Sharma", "Haddad", "Lim", "Demir", "Rahman", "Costa", "Novak", "Aziz", "Nair")


@dataclass
class Adapted:
    """The scenario's order table after the groups adapted, and where each row came from."""

    table: pa.Table
    src: npt.NDArray[np.int64]  # original row each row derives from
    position: npt.NDArray[np.int64]  # processing tie-break: original row x 64 + chunk
    new_shells: int
    split_orders: int


def adapt(
    table: pa.Table,
    days: npt.NDArray[np.int32],
    static: Static,
    scheme_of_row: npt.NDArray[np.int32],
    schemes: list[Scheme],
    fill_share: float,
    seed: int,
) -> Adapted:
    n = table.num_rows
    identity_cols = [c for c in _IDENTITY if c in table.column_names]
    quantity = np.asarray(table.column("quantity").to_numpy(zero_copy_only=False), dtype=np.int64)
    consignee = table.column(
        "consignee_id" if "consignee_id" in table.column_names else "consignee_name"
    )
    evasive_lpp = np.nonzero((scheme_of_row >= 0) & (static.cat == LPP))[0]
    edits: dict[int, list[tuple[int, dict[str, Any] | None]]] = {}
    new_shells = 0
    split_orders = 0
    rows_read: dict[int, dict[str, Any]] = {}
    if len(evasive_lpp):
        cons = consignee.take(pa.array(evasive_lpp)).to_pylist()
        years = np.asarray([to_date(d).year for d in days[evasive_lpp]], dtype=np.int32)
        groups: dict[int, list[int]] = defaultdict(list)
        for j, r0 in enumerate(evasive_lpp):
            groups[int(scheme_of_row[r0])].append(j)
        for s_idx, members_j in sorted(groups.items()):
            scheme = schemes[s_idx]
            rng = random.Random(f"{seed}/{scheme.scheme_id}")
            shells: list[
                dict[str, Any] | None
            ] = []  # None = an existing member (identity unchanged)
            shell_names: list[str] = []
            template_rows: dict[str, int] = {}
            for j in members_j:
                template_rows.setdefault(str(cons[j]), int(evasive_lpp[j]))
            by_year: dict[int, list[int]] = defaultdict(list)
            for j in members_j:
                by_year[int(years[j])].append(j)
            for _year, js in sorted(by_year.items()):
                js.sort(key=lambda j: (int(days[evasive_lpp[j]]), int(evasive_lpp[j])))
                rows = evasive_lpp[js]
                tpp = quantity[rows] * static.unit_tpp[rows]
                limit = int(static.lpp_limit[rows].min())
                totals: dict[str, int] = defaultdict(int)
                for j, t in zip(js, tpp, strict=True):
                    totals[str(cons[j])] += int(t)
                if max(totals.values()) <= limit:
                    continue
                cap = int(limit * fill_share)
                load: dict[str, int] = defaultdict(int)
                for j, r_np in zip(js, rows, strict=True):
                    r = int(r_np)
                    unit = int(static.unit_tpp[r])
                    per_chunk = max(1, cap // unit) if unit > 0 else int(quantity[r])
                    left = int(quantity[r])
                    chunks: list[int] = []
                    while left > 0:
                        q = min(left, per_chunk)
                        chunks.append(q)
                        left -= q
                    if len(chunks) > 1:
                        split_orders += 1
                    placed: list[tuple[int, dict[str, Any] | None]] = []
                    own = str(cons[j])
                    for q in chunks:
                        t = q * unit
                        target: str | None = None
                        for name in [own, *template_rows, *shell_names]:
                            if load[name] + t <= cap:
                                target = name
                                break
                        if target is None:
                            k = len(shells)
                            template = list(template_rows.values())[k % len(template_rows)]
                            ident = _new_identity(
                                table,
                                identity_cols,
                                template,
                                scheme.scheme_id,
                                k,
                                rng,
                                int(days[r]),
                                seed,
                            )
                            shells.append(ident)
                            target = str(ident["consignee_id"])
                            shell_names.append(target)
                            new_shells += 1
                        load[target] += t
                        ident_out: dict[str, Any] | None
                        if target == own:
                            ident_out = None
                        elif target in template_rows:
                            ident_out = _identity_of(
                                table, identity_cols, template_rows[target], rows_read
                            )
                        else:
                            ident_out = shells[shell_names.index(target)]
                        placed.append((q, ident_out))
                    if len(placed) > 1 or placed[0][1] is not None:
                        edits[r] = placed
    if not edits:
        return Adapted(table, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64) * 64, 0, 0)
    edited = np.asarray(sorted(edits), dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    keep[edited] = False
    records = table.take(pa.array(edited)).to_pylist()
    out_rows: list[dict[str, Any]] = []
    out_src: list[int] = []
    out_pos: list[int] = []
    for r, rec in zip(edited, records, strict=True):
        for c, (q, ident_c) in enumerate(edits[int(r)]):
            row = dict(rec)
            row["quantity"] = q
            if c:
                row["order_id"] = f"{rec['order_id']}~{c + 1}"
            if ident_c is not None:
                row.update(ident_c)
            out_rows.append(row)
            out_src.append(int(r))
            out_pos.append(int(r) * 64 + min(c, 63))
    extra = pa.Table.from_pylist(out_rows, schema=table.schema)
    kept_idx = np.nonzero(keep)[0].astype(np.int64)
    new_table = pa.concat_tables([table.filter(pa.array(keep)), extra])
    src = np.concatenate([kept_idx, np.asarray(out_src, dtype=np.int64)])
    pos = np.concatenate([kept_idx * 64, np.asarray(out_pos, dtype=np.int64)])
    return Adapted(new_table, src, pos, new_shells, split_orders)


def _identity_of(
    table: pa.Table, cols: list[str], row: int, cache: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The identity columns of one row, as a new dict (callers may edit it). A group re-packs
    many orders onto the same few template rows: `cache` keeps the rows read in one `adapt`."""
    rec = None if cache is None else cache.get(row)
    if rec is None:
        rec = dict(table.slice(row, 1).select(cols).to_pylist()[0])
        if cache is not None:
            cache[row] = rec
    return dict(rec)


def _new_identity(
    table: pa.Table,
    cols: list[str],
    template_row: int,
    scheme_id: str,
    k: int,
    rng: random.Random,
    day: int,
    seed: int,
) -> dict[str, Any]:
    """A new shell cloned from a group member, sharing one or two identifiers with it."""
    t = _identity_of(table, cols, template_row)
    digest = hashlib.sha1(f"{seed}/{scheme_id}/{k}".encode()).hexdigest()[:10].upper()
    name = str(t.get("consignee_name") or "Shell")
    tokens = name.split()
    word = rng.choice(_WORDS)
    if len(tokens) >= 2:
        tokens[min(1, len(tokens) - 2)] = word
    else:
        tokens = [word, *tokens]
    new_name = " ".join(tokens)
    slug = re.sub(r"[^a-z0-9]+", "", new_name.lower())[:20] or digest.lower()
    shared = set(rng.sample(["address", "phone", "email", "officers"], k=rng.choice([1, 2])))
    ident: dict[str, Any] = {"consignee_id": f"C{digest}", "consignee_name": new_name}
    addr = str(t.get("consignee_address") or "")
    ident["consignee_address"] = (
        addr
        if "address" in shared
        else re.sub(r"^\d+", str(rng.randint(2, 998)), addr)
        or f"{rng.randint(2, 998)} Commerce Road"
    )
    phone = str(t.get("consignee_phone") or "+00 0000 0000")
    ident["consignee_phone"] = (
        phone if "phone" in shared else phone[:-4] + f"{rng.randint(0, 9999):04d}"
    )
    email = str(t.get("consignee_email") or "")
    domain = email.split("@", 1)[1] if "@" in email else f"{slug}.com"
    ident["consignee_email"] = f"sales{k}@{domain}" if "email" in shared else f"info@{slug}.com"
    ident["consignee_website"] = f"www.{slug}.com"
    ident["consignee_registration"] = f"{rng.randint(10**8, 10**9 - 1)}"
    officers = t.get("consignee_officers")
    ident["consignee_officers"] = (
        officers
        if "officers" in shared and officers
        else f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    )
    ident["consignee_founded"] = to_date(day - rng.randint(30, 240))
    return {c: v for c, v in ident.items() if c in cols}
