"""Benchmark: a 1,000,000-order world under three scenarios (target: under 60 s on 2 cores).

    python bench/simulate.py [--orders 1000000] [--seed 7] [--world DIR] [--no-detect]
                             [--workers N] [--out report.html]

Generates the world once (cached in DIR, default /tmp/aiexport-bench-world-<seed>-<orders>), then
times `simulate` for diffusion-2025, ear-2024 and refinements-2025 with detection by the real
`aiexport.intel.investigate` pipeline (one run per scenario, in worker processes that overlap
the next scenario's decisions; `--workers 0` runs them in this process, one after the other),
and writes the HTML report and the metrics JSON. Prints the split: load, decisions (engine,
evasive adaptation, quota replay), the wait for detection after the last decision, the report;
each detection's own wall and CPU seconds; and the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from aiexport.simulate import DEFAULT_SCENARIOS, load_world, simulate
from aiexport.simulate.report import write_html


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--no-detect", action="store_true", help="skip the investigate pipeline")
    ap.add_argument("--workers", type=int, default=None, help="detection workers (0: in process)")
    ap.add_argument("--out", type=Path, default=None, help="HTML report (default: a temp file)")
    args = ap.parse_args()
    world_dir = args.world or Path(f"/tmp/aiexport-bench-world-{args.seed}-{args.orders}")
    if not (world_dir / "orders.parquet").exists():
        from aiexport.world import generate_world

        t = time.perf_counter()
        generate_world(world_dir, seed=args.seed, orders=args.orders)
        print(f"world generated in {time.perf_counter() - t:.1f} s: {world_dir}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    c0 = time.process_time()
    world = load_world(world_dir)
    t_load = time.perf_counter() - t0
    result = simulate(
        world,
        DEFAULT_SCENARIOS,
        detector=None if args.no_detect else "auto",
        workers=args.workers,
    )
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report.html"
        write_html(result, out)
        out.with_suffix(".json").write_text(
            json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8"
        )
    t_report = time.perf_counter() - t1
    total = time.perf_counter() - t0
    cpu_main = time.process_time() - c0
    for s in result.scenarios:
        print(
            f"{s['scenario']:>18}: delivered {s['delivered_h100']:>12,.0f} H100-eq, "
            f"diverted {s['diverted_h100']:>10,.0f}, "
            f"caught {s['diverted_caught_h100'] or 0:>10,.0f}, "
            f"applications {s['license_applications']:>7,}, "
            f"cases {s['detection'].get('cases', '-')}, "
            f"conservation {s['conservation']['holds']}, {s['seconds']}"
        )
    sp = result.split
    print(
        f"split: load {t_load:.1f} s | decisions {sp['decisions']:.1f} s | "
        f"detection wait after the last decision {sp['detection_wait']:.1f} s "
        f"({sp['detection_workers']} workers; {sp['detection_cpu']:.1f} CPU-s in them) | "
        f"report {t_report:.1f} s"
    )
    print(f"CPU: {cpu_main:.1f} s in this process + {sp['detection_cpu']:.1f} s in the workers")
    print(
        f"simulate: {world.n:,} orders x {len(result.scenarios)} scenarios in {total:.1f} s "
        f"(detection {'off' if args.no_detect else 'on'}); target < 60 s"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
