"""Benchmark: a 1,000,000-order world under three scenarios (target: under 60 s on 2 cores).

    python bench/simulate.py [--orders 1000000] [--seed 7] [--world DIR] [--detect]

Generates the world once (cached in DIR, default /tmp/aiexport-bench-world-<seed>-<orders>), then
times `simulate` for diffusion-2025, ear-2024 and refinements-2025. Without `--detect` the
timing covers the engine, the evasive adaptation and the exact quota replay (the simulator's
own work); with `--detect` it adds one `aiexport investigate` run per scenario, whose speed is
the enforcement-analytics package's (its own target: 1M orders in < 5 min).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aiexport.simulate import DEFAULT_SCENARIOS, load_world, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--detect", action="store_true")
    args = ap.parse_args()
    world_dir = args.world or Path(f"/tmp/aiexport-bench-world-{args.seed}-{args.orders}")
    if not (world_dir / "orders.parquet").exists():
        from aiexport.world import generate_world

        t = time.perf_counter()
        generate_world(world_dir, seed=args.seed, orders=args.orders)
        print(f"world generated in {time.perf_counter() - t:.1f} s: {world_dir}")
    t0 = time.perf_counter()
    world = load_world(world_dir)
    t_load = time.perf_counter() - t0
    result = simulate(world, DEFAULT_SCENARIOS, detector="auto" if args.detect else None)
    total = time.perf_counter() - t0
    for s in result.scenarios:
        print(
            f"{s['scenario']:>18}: delivered {s['delivered_h100']:>12,.0f} H100-eq, "
            f"diverted {s['diverted_h100']:>10,.0f}, caught {s['diverted_caught_h100'] or 0:>10,.0f}, "
            f"applications {s['license_applications']:>7,}, conservation {s['conservation']['holds']}, "
            f"{s['seconds']}"
        )
    print(
        f"simulate: {world.n:,} orders x {len(result.scenarios)} scenarios in {total:.1f} s "
        f"(load {t_load:.1f} s; detection {'on' if args.detect else 'off'}); target < 60 s"
    )


if __name__ == "__main__":
    main()
