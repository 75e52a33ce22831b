"""Put the world together and stream it to disk in date order, chunk by chunk."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aiexport.errors import InputError
from aiexport.world import _names as nm
from aiexport.world._core import (
    AUTH_FIXED,
    AUTH_PARTY_DEFAULT,
    AUTH_PARTY_LICENSE,
    END_USES,
    ITEM_TPP,
    N_DAYS,
    PAYER_ALT,
    PAYER_SELF,
    Background,
    Lines,
    day_weights,
)
from aiexport.world._parties import PartyBook, build_background
from aiexport.world._schemes import Planter, describe_established, plant, plant_lookalikes
from aiexport.world.calibration import (
    COMPLIANCE_DATE,
    COUNTRIES,
    COUNTRY_BY_CODE,
    EFFECTIVE_DATE,
    EXPORTERS,
    ITEMS,
    LPP_ANNUAL_LIMIT_TPP_FALLBACK,
    LPP_DESTINATIONS,
    SEGMENTS,
    WORLD_END,
    WORLD_START,
)

TRUTH_FORMAT = "aiexport.world.truth/1"

ORDER_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("order_date", pa.date32()),
        ("exporter", pa.string()),
        ("item", pa.string()),
        ("item_kind", pa.string()),
        ("quantity", pa.int64()),
        ("chips_per_unit", pa.int64()),
        ("tpp_per_unit", pa.float64()),
        ("die_area_mm2", pa.float64()),
        ("datacenter", pa.bool_()),
        ("memory_bandwidth_gbps", pa.float64()),
        ("training_ops", pa.float64()),
        ("open_weights", pa.bool_()),
        ("unit_price_usd", pa.float64()),
        ("destination", pa.string()),
        ("consignee_id", pa.string()),
        ("consignee_name", pa.string()),
        ("consignee_address", pa.string()),
        ("consignee_country", pa.string()),
        ("consignee_hq_country", pa.string()),
        ("consignee_government", pa.bool_()),
        ("consignee_phone", pa.string()),
        ("consignee_email", pa.string()),
        ("consignee_website", pa.string()),
        ("consignee_registration", pa.string()),
        ("consignee_officers", pa.string()),
        ("consignee_founded", pa.date32()),
        ("end_use", pa.string()),
        ("intermediate_name", pa.string()),
        ("intermediate_country", pa.string()),
        ("payer_name", pa.string()),
        ("payer_country", pa.string()),
        ("authorization", pa.string()),
    ]
)
"""Every column of contract §1, in the contract's order, with its Parquet type."""

ORDER_COLUMNS: tuple[str, ...] = tuple(ORDER_SCHEMA.names)

_EPOCH_OFFSET = (WORLD_START - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class WorldSummary:
    """What `generate_world` wrote."""

    out_dir: Path
    orders: int
    consignees: int
    schemes: int
    scheme_orders: int
    seconds: float
    files: dict[str, str] = field(default_factory=dict)


def lpp_limits() -> dict[int, int]:
    """LPP allowance per calendar year since the rule took effect (2025), from the law files."""
    out: dict[int, int] = {}
    try:
        rules = importlib.import_module("aiexport.rules")
        rs = rules.load_rule_set("diffusion-2025")
        for year in range(EFFECTIVE_DATE.year, WORLD_END.year + 1):
            on = max(dt.date(year, 7, 1), COMPLIANCE_DATE)
            out[year] = int(rs.value("exceptions.lpp.annual_limit_tpp", on))
    except Exception:
        out = {}
    if not out:
        out = {
            y: LPP_ANNUAL_LIMIT_TPP_FALLBACK for y in range(EFFECTIVE_DATE.year, WORLD_END.year + 1)
        }
    return out


def default_counts(orders: int) -> tuple[dict[str, int], dict[str, int]]:
    """How many schemes and look-alikes a world of `orders` lines gets (planted ~1-3 % of lines)."""

    def k(per: int, lo: int, hi: int) -> int:
        return max(lo, min(hi, orders // per))

    schemes = {
        "structuring": k(1500, 1, 400),
        "transshipment": k(3000, 1, 200),
        "front": k(3000, 1, 200),
        "surge": k(6000, 1, 60),
        "hidden_tier3_hq": k(4000, 1, 150),
    }
    looks = {
        "corporate_group": k(5000, 1, 60),
        "similar_name": k(500, 4, 200),
        "new_big_buyer": k(5000, 1, 60),
        "lpp_heavy_user": k(3000, 1, 100),
        "legit_burst": k(3000, 1, 100),
        "legit_pre_deadline_buyer": k(6000, 1, 30),
    }
    return schemes, looks


def generate_world(
    out_dir: str | Path,
    *,
    seed: int = 0,
    orders: int = 10_000,
    chunk_size: int = 250_000,
    schemes: dict[str, int] | None = None,
    lookalikes: dict[str, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WorldSummary:
    """Write `orders.csv`, `orders.parquet` and `truth.json` for a world of `orders` lines.

    The same `seed` and arguments give byte-identical files. `chunk_size` bounds memory (that many
    lines, or one ~50k-line block of days if larger, plus the consignee table of at most ~120k
    parties and the planted lines); it changes only the Parquet row-group layout, never the rows,
    the CSV or the truth's contents.
    """
    import time

    t0 = time.perf_counter()
    if orders < 1:
        raise InputError(f"orders must be at least 1 (got {orders})", column="orders")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a directory for the world's three files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror}; choose another --out") from exc
    r = random.Random(seed * 7919 + 17)
    nrng = np.random.default_rng([seed, 1])

    book = PartyBook()
    n_bg = max(len(COUNTRIES) * len(SEGMENTS), min(120_000, orders // 30))
    bg = build_background(book, r, nrng, n_bg)

    limits = lpp_limits()
    d_schemes, d_looks = default_counts(orders)
    pl = plant(r, book, limits, schemes if schemes is not None else d_schemes)
    # Keep planted lines under 40 % of the world; drop the last-planted schemes if needed.
    cap = int(orders * 0.4)
    while pl.groups and len(pl.events.rows) > cap:
        _drop_last_group(pl)
    plant_lookalikes(pl, bg, lookalikes if lookalikes is not None else d_looks)
    while pl.groups and len(pl.events.rows) > cap:
        _drop_last_group(pl)

    background = _background_sampler(book, pl, nrng)
    book.assign_ids(nrng)
    consignees = book.to_arrow()
    events = pl.events.freeze()

    n_bg_lines = orders - len(events)
    w = day_weights()
    daily = nrng.multinomial(n_bg_lines, w / w.sum())

    csv_path, pq_path = out / "orders.csv", out / "orders.parquet"
    pools = _Pools.build(book, pl)
    tag_orders: dict[int, list[str]] = {g.tag: g.order_ids for g in pl.groups}
    fwd_seen: dict[int, int] = {}
    written = 0
    with (
        pq.ParquetWriter(pq_path, ORDER_SCHEMA, compression="zstd") as pw,
        pacsv.CSVWriter(
            csv_path, ORDER_SCHEMA, write_options=pacsv.WriteOptions(quoting_style="needed")
        ) as cw,
    ):
        blocks = _blocks(daily)
        ev_pos = 0
        b = 0
        while b < len(blocks):
            total = 0
            parts: list[Lines] = []
            while b < len(blocks) and (not parts or total + blocks[b][2] <= chunk_size):
                first, last, n = blocks[b]
                b += 1
                total += n
                # Each block of days has its own random stream, and the blocks depend only on
                # the seed and the size of the world, so the chunk size never changes a row.
                brng = np.random.default_rng([seed, 2, first])
                days = np.repeat(np.arange(first, last, dtype=np.int64), daily[first:last])
                part = background.sample(brng, days)
                ev_end = int(np.searchsorted(events.day, last, side="left"))
                both = Lines.concat([part, events.take(np.arange(ev_pos, ev_end))])
                ev_pos = ev_end
                parts.append(both.take(np.lexsort((brng.random(len(both)), both.day))))
            batch = Lines.concat(parts)
            if len(batch) == 0:
                continue
            table = _to_table(batch, written, consignees, pools)
            for pos in np.flatnonzero(batch.tag >= 0).tolist():
                tag_orders[int(batch.tag[pos])].append(f"ORD{written + pos + 1:08d}")
            for pos in np.flatnonzero(batch.inter >= 0).tolist():
                party = int(batch.party[pos])
                fwd_seen[party] = fwd_seen.get(party, 0) + 1
            pw.write_table(table, row_group_size=chunk_size)
            cw.write_table(table)
            written += len(batch)
            if progress is not None:
                progress(written, orders)

    files = {
        "orders.csv": _sha256(csv_path),
        "orders.parquet": _sha256(pq_path),
    }
    truth = _truth(seed, orders, written, book, pl, bg, limits, files, fwd_seen, len(events))
    (out / "truth.json").write_text(
        json.dumps(truth, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )
    return WorldSummary(
        out_dir=out,
        orders=written,
        consignees=len(book),
        schemes=sum(1 for g in pl.groups if g.is_scheme),
        scheme_orders=sum(len(g.order_ids) for g in pl.groups if g.is_scheme),
        seconds=time.perf_counter() - t0,
        files=files,
    )


BLOCK_LINES = 50_000


def _blocks(daily: npt.NDArray[np.int64]) -> list[tuple[int, int, int]]:
    """Split the days into (first, last_exclusive, background lines) of about BLOCK_LINES lines."""
    out: list[tuple[int, int, int]] = []
    first = 0
    n = 0
    for d in range(N_DAYS):
        n += int(daily[d])
        if n >= BLOCK_LINES or d == N_DAYS - 1:
            out.append((first, d + 1, n))
            first, n = d + 1, 0
    return out


def _drop_last_group(pl: Planter) -> None:
    g = pl.groups.pop()
    keep = [i for i, row in enumerate(pl.events.rows) if row[-1] != g.tag]
    pl.events.rows = [pl.events.rows[i] for i in keep]
    pl.events.prices = [pl.events.prices[i] for i in keep]
    for idx, _, _ in g.members:
        pl.book.parties[idx].background = False
        pl.book.parties[idx].weight = 0.0


def _background_sampler(book: PartyBook, pl: Planter, nrng: np.random.Generator) -> Background:
    """Turn party weights into a sampling distribution that hits the calibrated shares.

    Order share of a party = destination share x segment share x its weight within the
    (destination, segment) cell, so the background reproduces `calibration` whatever the draw.
    """
    parties = book.parties
    idx = [i for i, p in enumerate(parties) if p.background]
    cty_w = {c.code: c.weight for c in COUNTRIES}
    total_c = sum(cty_w.values())
    seg_w: dict[str, float] = {s.name: s.order_share for s in SEGMENTS}
    cell_sum: dict[tuple[str, str], float] = {}
    cells_in_country: dict[str, set[str]] = {}
    for i in idx:
        p = parties[i]
        p.weight = min(p.weight, 200.0)
        cell_sum[(p.country, p.segment)] = cell_sum.get((p.country, p.segment), 0.0) + p.weight
        cells_in_country.setdefault(p.country, set()).add(p.segment)
    probs = np.zeros(len(idx))
    for k, i in enumerate(idx):
        p = parties[i]
        segs = cells_in_country[p.country]
        # In SEGMENTS order: a set of strings iterates in an order that changes with the hash
        # seed, and the float sum (so the world) changed in the last bits with it.
        seg_total = sum(w for s, w in seg_w.items() if s in segs)
        probs[k] = (
            cty_w[p.country]
            / total_c
            * seg_w[p.segment]
            / seg_total
            * p.weight
            / cell_sum[(p.country, p.segment)]
        )
    # Legitimate forwarders per destination, shared by all background buyers there.
    fwd_start = np.zeros(len(COUNTRIES), dtype=np.int64)
    fwd_count = np.zeros(len(COUNTRIES), dtype=np.int64)
    for ci, c in enumerate(COUNTRIES):
        fwd_start[ci] = len(pl.inter_pool)
        k = 3 if c.hub else 2
        while len(pl.inter_pool) < fwd_start[ci] + k:
            pl.inter(pl.forwarder_name(c.code), c.code)
        fwd_count[ci] = k
    seg_code: dict[str, int] = {s.name: j for j, s in enumerate(SEGMENTS)}
    cty_code = {c.code: j for j, c in enumerate(COUNTRIES)}
    arr = np.array(idx, dtype=np.int64)
    return Background(
        party_index=arr,
        cdf=np.cumsum(probs),
        party_seg=np.array([seg_code[parties[i].segment] for i in idx], dtype=np.int64),
        party_china=np.array([COUNTRY_BY_CODE[parties[i].country].tier == 3 for i in idx]),
        party_tier=np.array([_tier_code(parties[i].country) for i in idx], dtype=np.int64),
        party_country=np.array([cty_code[parties[i].country] for i in idx], dtype=np.int64),
        party_fwd_rate=np.array([parties[i].forwarder_rate for i in idx]),
        party_has_alt=np.array([parties[i].payer_alt_name is not None for i in idx]),
        party_has_default=np.array([parties[i].auth_default is not None for i in idx]),
        fwd_start=fwd_start,
        fwd_count=fwd_count,
    )


def _tier_code(country: str) -> int:
    """1 = Tier 1, 2 = Tier 2 where LPP can be used, 4 = Tier 2 restricted, 3 = Tier 3."""
    c = COUNTRY_BY_CODE[country]
    if c.tier == 2 and c.lpp_restricted:
        return 4
    return c.tier


@dataclass
class _Pools:
    """String columns the line codes point into, as Arrow arrays ready for `take`."""

    items: pa.Array
    kinds: pa.Array
    end_uses: pa.Array
    exporters: pa.Array
    inter_name: pa.Array
    inter_country: pa.Array
    payer_name: pa.Array
    payer_country: pa.Array
    alt_name: pa.Array
    alt_country: pa.Array
    auth: pa.Array
    party_license: pa.Array
    party_default: pa.Array

    @staticmethod
    def build(book: PartyBook, pl: Planter) -> _Pools:
        ps = book.parties
        return _Pools(
            items=pa.array([f.item for f in ITEMS]),
            kinds=pa.array(["ic", "computer"]),
            end_uses=pa.array(list(END_USES)),
            exporters=pa.array([e for e, _ in EXPORTERS]),
            inter_name=pa.array([n for n, _ in pl.inter_pool] or [""]),
            inter_country=pa.array([c for _, c in pl.inter_pool] or [""]),
            payer_name=pa.array([n for n, _ in pl.payer_pool] or [""]),
            payer_country=pa.array([c for _, c in pl.payer_pool] or [""]),
            alt_name=pa.array([p.payer_alt_name for p in ps], pa.string()),
            alt_country=pa.array([p.payer_alt_country for p in ps], pa.string()),
            auth=pa.array(pl.auth_pool or list(AUTH_FIXED)),
            party_license=pa.array(
                [f"LICENSE:D{(i * 7919) % 999_983:06d}" for i in range(len(ps))]
            ),
            party_default=pa.array([p.auth_default for p in ps], pa.string()),
        )


def _choose(codes: np.ndarray, pool: pa.Array) -> pa.Array:
    """`pool[codes]` where codes >= 0, null elsewhere."""
    safe = pa.array(np.where(codes >= 0, codes, 0))
    mask = pa.array(codes >= 0)
    return pc.if_else(mask, pool.take(safe), pa.nulls(len(codes), pool.type))


def _to_table(b: Lines, offset: int, consignees: pa.Table, pools: _Pools) -> pa.Table:
    n = len(b)
    party = pa.array(b.party)
    cons = consignees.take(party)
    seq = pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64))
    order_id = pc.binary_join_element_wise(
        "ORD", pc.utf8_lpad(pc.cast(seq, pa.string()), 8, "0"), ""
    )
    dates = pa.array((b.day + _EPOCH_OFFSET).astype(np.int32)).cast(pa.date32())

    payer_name = _choose(b.payer, pools.payer_name)
    payer_country = _choose(b.payer, pools.payer_country)
    self_mask = pa.array(b.payer == PAYER_SELF)
    payer_name = pc.if_else(self_mask, cons.column("consignee_name"), payer_name)
    payer_country = pc.if_else(self_mask, cons.column("consignee_country"), payer_country)
    alt_mask = pa.array(b.payer == PAYER_ALT)
    payer_name = pc.if_else(alt_mask, pools.alt_name.take(party), payer_name)
    payer_country = pc.if_else(alt_mask, pools.alt_country.take(party), payer_country)

    auth = _choose(b.auth, pools.auth)
    auth = pc.if_else(pa.array(b.auth == AUTH_PARTY_LICENSE), pools.party_license.take(party), auth)
    auth = pc.if_else(pa.array(b.auth == AUTH_PARTY_DEFAULT), pools.party_default.take(party), auth)

    f64_null = pa.nulls(n, pa.float64())
    bool_null = pa.nulls(n, pa.bool_())
    cols: dict[str, Any] = {
        "order_id": order_id,
        "order_date": dates,
        "exporter": pools.exporters.take(pa.array(b.exporter)),
        "item": pools.items.take(pa.array(b.item)),
        "item_kind": pools.kinds.take(pa.array(b.computer.astype(np.int64))),
        "quantity": pa.array(b.quantity),
        "chips_per_unit": pa.array(b.chips),
        "tpp_per_unit": f64_null,
        "die_area_mm2": f64_null,
        "datacenter": bool_null,
        "memory_bandwidth_gbps": f64_null,
        "training_ops": f64_null,
        "open_weights": bool_null,
        "unit_price_usd": pa.array(b.price),
        "destination": cons.column("consignee_country"),
    }
    for name in consignees.column_names:
        cols[name] = cons.column(name)
    cols["end_use"] = pools.end_uses.take(pa.array(b.end_use))
    cols["intermediate_name"] = _choose(b.inter, pools.inter_name)
    cols["intermediate_country"] = _choose(b.inter, pools.inter_country)
    cols["payer_name"] = payer_name
    cols["payer_country"] = payer_country
    cols["authorization"] = auth
    return pa.table([cols[c] for c in ORDER_COLUMNS], schema=ORDER_SCHEMA)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _truth(
    seed: int,
    orders: int,
    written: int,
    book: PartyBook,
    pl: Planter,
    bg: list[int],
    limits: dict[int, int],
    files: dict[str, str],
    fwd_seen: dict[int, int],
    n_events: int,
) -> dict[str, Any]:
    parties = book.parties
    # Established look-alikes in the background, described after the fact.
    bg_live = [i for i in bg if parties[i].background]
    top = sorted(bg_live, key=lambda i: -parties[i].weight)
    top = [i for i in top if parties[i].segment == "cloud"][:10]
    fwd_users = sorted((i for i in fwd_seen if parties[i].background), key=lambda i: -fwd_seen[i])
    free_mail = [i for i in bg_live if parties[i].email.split("@")[-1] in nm.FREE_MAIL][:20]
    describe_established(pl, bg_live, top, fwd_users[:20], free_mail)

    def member(idx: int, role: str, signals: list[str]) -> dict[str, Any]:
        p = parties[idx]
        return {
            "consignee_id": p.consignee_id,
            "consignee_name": p.name,
            "country": p.country,
            "role": role,
            "signals": signals,
        }

    schemes: list[dict[str, Any]] = []
    decoys: list[dict[str, Any]] = []
    s_no = d_no = 0
    for g in pl.groups:
        rec: dict[str, Any] = {}
        if g.is_scheme:
            s_no += 1
            rec["scheme_id"] = f"S{s_no:04d}"
        else:
            d_no += 1
            rec["decoy_id"] = f"D{d_no:04d}"
        rec["kind"] = g.kind
        rec["summary"] = g.summary
        rec["signals"] = g.signals
        rec["consignees"] = [member(i, role, sig) for i, role, sig in g.members]
        rec["order_ids"] = g.order_ids
        years = sorted({y for _, y in g.tpp})
        rec["tpp_total"] = sum(g.tpp.values())
        rec["tpp_by_year"] = {
            str(y): sum(v for (_, yy), v in g.tpp.items() if yy == y) for y in years
        }
        if g.kind == "structuring":
            lpp = [
                {
                    "consignee_id": parties[i].consignee_id,
                    "year": y,
                    "lpp_tpp": v,
                    "limit_tpp": limits[y],
                    "share": round(v / limits[y], 4),
                }
                for (i, y), v in sorted(g.lpp_tpp.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            ]
            by_year = {str(y): sum(v for (_, yy), v in g.lpp_tpp.items() if yy == y) for y in years}
            rec["lpp"] = {
                "by_consignee_year": lpp,
                "ring_by_year": by_year,
                "ring_over_limit": {k: round(v / limits[int(k)], 3) for k, v in by_year.items()},
            }
        extra = dict(g.extra)
        if "parent" in extra:
            pidx = extra.pop("parent")["party"]
            p = parties[pidx]
            extra["parent"] = {
                "consignee_id": p.consignee_id,
                "consignee_name": p.name,
                "country": p.country,
            }
        rec.update(extra)
        (schemes if g.is_scheme else decoys).append(rec)

    return {
        "format": TRUTH_FORMAT,
        "seed": seed,
        "orders": written,
        "requested_orders": orders,
        "period": {"start": WORLD_START.isoformat(), "end": WORLD_END.isoformat()},
        "compliance_date": COMPLIANCE_DATE.isoformat(),
        "lpp_limit_tpp": {str(y): v for y, v in sorted(limits.items())},
        "lpp_destinations": list(LPP_DESTINATIONS),
        "tpp_per_ic": {f.item: int(ITEM_TPP[i]) for i, f in enumerate(ITEMS)},
        "files": files,
        "counts": {
            "consignees": len(book),
            "planted_lines": n_events,
            "scheme_orders": sum(len(s["order_ids"]) for s in schemes),
            "schemes": len(schemes),
            "decoy_groups": len(decoys),
        },
        "schemes": schemes,
        "decoys": decoys,
    }
