"""Benchmark of `aiexport screen`: the batch path, the per-order path and the floor.

    .venv/bin/python bench/screen.py [--orders 1000000] [--per-order 100000] [--seed 7]

Generates a realistic order file as Parquet in a temporary folder (not timed), then times:

* the batch path end to end: read the Parquet file, validate, decide, write decisions as Parquet;
* the per-order path (`read_orders` + `decide_all` + `write_records`) on the first
  `--per-order` orders, extrapolated to the whole file (it is linear in the number of orders);
* the floor: a bare DuckDB read and write of the same file
  (`COPY (SELECT * FROM read_parquet(...)) TO ... (FORMAT parquet)`).

and prints orders/s for each and the ratio batch time / floor time.

The mix: two years of orders (2025-2026, both sides of the 2025-05-15 compliance date, so both
controls are exercised), Tier 1 / Tier 2 / Tier 3 destinations weighted toward the big markets,
Zipf-distributed consignees (a few clouds with many lines, a long tail of small buyers; some share
LPP allowances to the limit), chips, 8-GPU servers, custom parts with `tpp_per_unit`, model
weights, and every kind of `authorization`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TIER1 = ["US", "DE", "GB", "FR", "JP", "NL", "KR", "TW", "CA", "AU", "IE", "SE", "FI", "IT", "ES"]
TIER2 = ["IN", "AE", "SA", "SG", "MY", "BR", "MX", "IL", "PL", "TH", "VN", "ID", "TR", "CH", "AT"]
TIER3 = ["CN", "HK", "MO", "RU", "BY", "IR"]
ITEMS = [
    # item, kind, weight
    ("H100-SXM5", None, 12),
    ("H200", None, 10),
    ("B200", None, 8),
    ("GB200", None, 3),
    ("HGX-H100-8", "computer", 6),
    ("HGX-B200-8", "computer", 4),
    ("H20", None, 6),
    ("L40S", None, 6),
    ("L4", None, 8),
    ("L40", None, 3),
    ("A100-SXM4", None, 3),
    ("MI300X", None, 4),
    ("MI300X-8", "computer", 1),
    ("Gaudi3", None, 2),
    ("RTX-4090", None, 6),
    ("RTX-5090", None, 4),
    ("L2", None, 2),
    ("TPU-v6e", None, 2),
]
END_USES = ["datacenter", "training", "inference", "development", "production", "storage",
            "research", "resale", "unknown"]  # fmt: skip
AUTHS = [
    ("", 80.0), ("LPP", 5.0), ("AIA", 2.0), ("ACM", 2.0), ("ACA", 1.0), ("NAC", 1.0),
    ("LICENSE", 7.0), ("UVEU", 0.05), ("NVEU", 0.05),
]  # fmt: skip


def generate_orders(n: int, seed: int = 7) -> pa.Table:
    """A realistic table of `n` orders (contract §1 columns, typed as Parquet would hold them)."""
    rng = np.random.default_rng(seed)
    n_cons = max(10, n // 40)
    # Consignees: country by tier weights, a few with a foreign (sometimes Tier 3) parent.
    tiers = rng.choice(3, size=n_cons, p=[0.5, 0.42, 0.08])
    pools = [np.array(TIER1), np.array(TIER2), np.array(TIER3)]
    country = np.empty(n_cons, dtype=object)
    for t in range(3):
        idx = np.flatnonzero(tiers == t)
        pool = pools[t]
        w = 1.0 / np.arange(1, len(pool) + 1)
        country[idx] = pool[rng.choice(len(pool), size=len(idx), p=w / w.sum())]
    hq = country.copy()
    foreign = rng.random(n_cons) < 0.06
    hq[foreign] = rng.choice(["US", "CN", "HK", "GB", "SG"], size=int(foreign.sum()))
    gov = rng.random(n_cons) < 0.05
    cons_ids = np.array([f"C{i:06d}" for i in range(n_cons)], dtype=object)
    cons_names = np.array([f"Consignee {i} Ltd" for i in range(n_cons)], dtype=object)
    has_id = rng.random(n_cons) < 0.8
    # Zipf-like order counts per consignee.
    weights = 1.0 / np.arange(1, n_cons + 1) ** 0.9
    cons = rng.choice(n_cons, size=n, p=weights / weights.sum())

    days = (dt.date(2026, 12, 31) - dt.date(2025, 1, 13)).days + 1
    day = rng.integers(0, days, size=n)
    dates = np.datetime64("2025-01-13") + day.astype("timedelta64[D]")

    item_w = np.array([w for _, _, w in ITEMS], dtype=float)
    item_i = rng.choice(len(ITEMS), size=n, p=item_w / item_w.sum())
    items = np.array([i for i, _, _ in ITEMS], dtype=object)[item_i]
    kinds = np.array([k for _, k, _ in ITEMS], dtype=object)[item_i]
    qty = np.minimum(np.exp(rng.normal(2.5, 1.6, size=n)).astype(np.int64) + 1, 5000)
    chips = np.full(n, None, dtype=object)
    tpp = np.full(n, np.nan)
    die = np.full(n, np.nan)
    dc = np.full(n, None, dtype=object)
    training = np.full(n, np.nan)
    openw = np.full(n, None, dtype=object)
    custom = rng.random(n) < 0.01
    items[custom] = "CUSTOM-ASIC"
    kinds[custom] = None
    tpp[custom] = rng.choice(
        [1200.0, 2400.5, 4000.0, 5000.0, 9000.0, 20000.0], size=int(custom.sum())
    )
    die[custom] = rng.choice([400.0, 600.0, 800.0], size=int(custom.sum()))
    dc[custom] = rng.random(int(custom.sum())) < 0.7
    servers = (rng.random(n) < 0.02) & ~custom
    kinds[servers] = "computer"
    chips[servers] = 4
    weights_rows = rng.random(n) < 0.004
    items[weights_rows] = "frontier-model"
    kinds[weights_rows] = "model_weights"
    training[weights_rows] = rng.choice([5e25, 2e26, 8e26], size=int(weights_rows.sum()))
    openw[weights_rows] = rng.random(int(weights_rows.sum())) < 0.3
    qty[weights_rows] = 1

    # Most lines ship to the consignee's country; some go elsewhere (a few via Tier 3 hubs).
    dest = country[cons].copy()
    elsewhere = rng.random(n) < 0.05
    dest[elsewhere] = rng.choice(TIER1 + TIER2 + TIER3, size=int(elsewhere.sum()))
    cons_country = np.where(elsewhere, country[cons], None)
    hq_col = np.where(hq[cons] != country[cons], hq[cons], None)

    auth_w = np.array([w for _, w in AUTHS])
    auth_i = rng.choice(len(AUTHS), size=n, p=auth_w / auth_w.sum())
    auth = np.array([a for a, _ in AUTHS], dtype=object)[auth_i]
    lic = auth == "LICENSE"
    auth[lic] = np.char.add(
        "LICENSE:D", rng.integers(100000, 999999, size=int(lic.sum())).astype(str)
    )
    for kind in ("UVEU", "NVEU"):
        m = auth == kind
        auth[m] = np.char.add(f"{kind}:V", rng.integers(1, 20, size=int(m.sum())).astype(str))
    auth[auth == ""] = None
    end_use = np.array(END_USES, dtype=object)[
        rng.choice(len(END_USES), size=n, p=[0.35, 0.2, 0.15, 0.06, 0.04, 0.04, 0.06, 0.05, 0.05])
    ]
    price = np.round(rng.uniform(500, 40000, size=n), 2)
    exporters = np.array(
        ["Nvidia Corp", "AMD", "Supermicro", "Dell", "HPE", "Intel", "Lenovo"], dtype=object
    )

    def nullable(a: np.ndarray, typ: pa.DataType) -> pa.Array:
        if a.dtype == float:
            return pa.array(a, type=typ, from_pandas=True)
        return pa.array(list(a), type=typ)

    return pa.table(
        {
            "order_id": pa.array([f"O{i:08d}" for i in range(n)]),
            "order_date": pa.array(dates, type=pa.date32()),
            "exporter": pa.array(exporters[rng.integers(0, len(exporters), size=n)].tolist()),
            "item": pa.array(items.tolist()),
            "item_kind": nullable(kinds, pa.string()),
            "quantity": pa.array(qty),
            "chips_per_unit": nullable(chips, pa.int64()),
            "tpp_per_unit": nullable(tpp, pa.float64()),
            "die_area_mm2": nullable(die, pa.float64()),
            "datacenter": nullable(dc, pa.bool_()),
            "training_ops": nullable(training, pa.float64()),
            "open_weights": nullable(openw, pa.bool_()),
            "unit_price_usd": pa.array(price),
            "destination": pa.array(dest.tolist()),
            "consignee_id": pa.array(np.where(has_id[cons], cons_ids[cons], None).tolist()),
            "consignee_name": pa.array(cons_names[cons].tolist()),
            "consignee_address": pa.array([f"{c} Street 1" for c in cons.tolist()]),
            "consignee_country": nullable(cons_country, pa.string()),
            "consignee_hq_country": nullable(hq_col, pa.string()),
            "consignee_government": pa.array(gov[cons]),
            "end_use": pa.array(end_use.tolist()),
            "authorization": nullable(auth, pa.string()),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--per-order", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--generator",
        choices=("world", "simple"),
        default="world",
        help="world: the project's calibrated synthetic world (aiexport.world; the default); "
        "simple: this script's own generator (independent draws: far more distinct decisions)",
    )
    ap.add_argument("--profile", action="store_true", help="profile the batch path (cProfile)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.orders, args.per_order, args.seed, args.profile, args.generator)


def write_orders(tmp: Path, n: int, seed: int, generator: str) -> Path:
    """Write `n` orders as Parquet in `tmp` (not timed)."""
    if generator == "world":
        from aiexport.world import generate_world

        generate_world(tmp / "world", seed=seed, orders=n)
        return tmp / "world" / "orders.parquet"
    src = tmp / "orders.parquet"
    pq.write_table(generate_orders(n, seed), src)
    return src


def run(tmp: Path, n: int, n_per_order: int, seed: int, profile: bool, generator: str) -> None:
    import duckdb

    from aiexport.batch import screen_file
    from aiexport.io.decisions import write_records
    from aiexport.io.orders import read_orders
    from aiexport.rules.decide import Engine
    from aiexport.rules.quota import MemoryQuota
    from aiexport.rules.ruleset import load_rule_set
    from aiexport.screen import decide_all

    t0 = time.perf_counter()
    src = write_orders(tmp, n, seed, generator)
    table = pq.read_table(src)
    n = table.num_rows
    # The per-order subset: every k-th order, so that it spans the period like the whole file.
    step = max(1, n // max(1, n_per_order))
    sub = tmp / "orders_sub.parquet"
    pq.write_table(table.take(np.arange(0, n, step)[:n_per_order]), sub)
    del table
    print(
        f"generated {n:,} orders ({generator}) in {time.perf_counter() - t0:.1f} s "
        f"({src.stat().st_size / 1e6:.1f} MB Parquet, {pq.ParquetFile(src).schema_arrow.names.__len__()} columns)"
    )
    rules = load_rule_set("diffusion-2025")
    engine = Engine(rules)  # law files and catalog loaded once, as in a long-running process

    con = duckdb.connect()
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{src}')) TO '{tmp / 'floor.parquet'}' (FORMAT parquet)"
    )
    floor, floor_cpu = time.perf_counter() - t0, time.process_time() - c0

    out = tmp / "batch.parquet"
    t0, c0 = time.perf_counter(), time.process_time()
    if profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            screen_file(src, out, engine)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    else:
        screen_file(src, out, engine)
    batch, batch_cpu = time.perf_counter() - t0, time.process_time() - c0
    from aiexport.batch import STAGES

    stages = "; ".join(f"{k} {v:.2f} s" for k, v in STAGES.items())

    m = pq.ParquetFile(sub).metadata.num_rows
    t0 = time.perf_counter()
    orders = read_orders(sub)
    dets = decide_all(orders, Engine(rules), MemoryQuota())
    write_records((d.to_record() for d in dets), tmp / "per_order.parquet")
    per_order = (time.perf_counter() - t0) * n / m

    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cpus, load average {load:.1f}, python {sys.version.split()[0]}"
    )
    print(
        f"floor     DuckDB read+write Parquet   {floor:8.2f} s {n / floor:12,.0f} orders/s"
        f"   (CPU {floor_cpu:.2f} s, all threads)"
    )
    print(
        f"batch     read, decide, write Parquet {batch:8.2f} s {n / batch:12,.0f} orders/s"
        f"   (CPU {batch_cpu:.2f} s, all threads)"
    )
    print(
        f"per-order timed on {m:,} orders, extrapolated to {n:,}: "
        f"{per_order:8.2f} s {n / per_order:12,.0f} orders/s"
    )
    print(f"batch stages: {stages}")
    print(
        f"batch / floor = {batch / floor:.2f}x; batch is {per_order / batch:.0f}x the per-order path"
    )


if __name__ == "__main__":
    main()
