"""Policy simulation: replay a world of orders under rule scenarios and compare the outcomes.

`simulate(world_dir, ["diffusion-2025", "ear-2024", "refinements-2025"])` runs, for each scenario:

1. the real decision engine on every distinct case of the world's orders (`_static`);
2. the evasive groups' adaptation to the scenario's LPP allowance: more shells, split orders
   (`_evasion`);
3. an exact replay of LPP allowances and country allocations with the legitimate buyers'
   behaviour: apply for a license, or wait for the new year (`_replay`);
4. detection by the real `aiexport.intel` pipeline over what shipped, worked up to the
   scenario's enforcement capacity (`detect`). One detector serves every scenario: the
   entity-resolution model is trained once, on the first scenario's orders (by convention the
   baseline), and reused with the same parameters for the others and the sweep points.

Metrics come back side by side, with the assumptions and their sources, as JSON and as a
self-contained HTML report (`report.render_html`). Every assumption lives in the scenario files
(`law/scenarios/`), each with its source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from aiexport.simulate._run import (
    SWEEP_ALIASES,
    Run,
    detect_run,
    finish_detection,
    parse_sweep,
    run_scenario,
    sweep_scenario,
)
from aiexport.simulate.detect import (
    Case,
    Detection,
    DetectionPool,
    Detector,
    PooledCases,
    default_workers,
    intel_detector,
    work_cases,
)
from aiexport.simulate.scenario import Scenario, available_scenarios, load_scenario
from aiexport.simulate.world import World, load_world

DEFAULT_SCENARIOS = ("diffusion-2025", "ear-2024", "refinements-2025")


@dataclass
class SimulationResult:
    """Metrics of each scenario, the sweep points, and notes on what could not be measured."""

    world: str
    orders: int
    scenarios: list[dict[str, Any]]
    sweep: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    split: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "aiexport.simulate/1",
            "world": self.world,
            "orders": self.orders,
            "seconds": round(self.seconds, 3),
            "split_seconds": self.split,
            "notes": self.notes,
            "scenarios": self.scenarios,
            "sweep": self.sweep,
        }


def simulate(
    world: str | Path | World,
    scenarios: Sequence[str | Scenario] = DEFAULT_SCENARIOS,
    *,
    detector: Detector | Literal["auto"] | None = "auto",
    sweep: str | None = None,
    sweep_detect: bool = True,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> SimulationResult:
    """Run every scenario on the world; optionally sweep one parameter of the first scenario.

    With the real pipeline (`detector="auto"`) detection runs in `workers` worker processes
    (default: one per core, at most one per run) while the next scenario's decisions are
    computed; `workers=0` runs it in this process, one scenario after the other. Both give the
    same metrics (`tests/simulate/test_shared.py`).
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    w = world if isinstance(world, World) else load_world(world)
    t_load = time.perf_counter() - t0
    notes: list[str] = []
    det: Detector | None = intel_detector() if detector == "auto" else detector
    if det is None:
        notes.append(
            "Detection unavailable: aiexport.intel.investigate could not be imported, so "
            "'diverted compute caught', cases worked and forfeited hardware are not measured."
        )
    if not w.has_truth:
        notes.append(
            "No truth.json beside the orders: every order is treated as legitimate demand, "
            "so nothing is counted as diverted."
        )
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    sweep_spec = parse_sweep(sweep) if sweep else None
    jobs = len(loaded) + (len(sweep_spec[1]) if sweep_spec and sweep_detect else 0)
    n_workers = default_workers(jobs) if workers is None else workers
    pool = (
        DetectionPool(n_workers)
        if detector == "auto" and det is not None and n_workers > 0
        else None
    )
    pending: list[tuple[Run, Scenario, Future[PooledCases]]] = []
    t_decide = 0.0

    def one(sc: Scenario, use_det: bool) -> Run:
        nonlocal t_decide
        t1 = time.perf_counter()
        run = run_scenario(w, sc, keep_for_detection=use_det)
        t_decide += time.perf_counter() - t1
        if use_det and det is not None:
            if pool is not None:
                table = run.shipped_tier2 if run.shipped_tier2 is not None else pa.table({})
                pending.append((run, sc, pool.submit(table, sc.rules)))
            else:
                say(f"scenario {sc.name}: detection")
                detect_run(run, sc, det)
        return run

    try:
        runs = []
        for sc in loaded:
            say(f"scenario {sc.name}")
            runs.append(one(sc, det is not None))
        sweep_runs: list[tuple[float, Run]] = []
        if sweep_spec is not None:
            target, values = sweep_spec
            for v in values:
                say(f"sweep {target}={v:,.0f}")
                sc = sweep_scenario(loaded[0], target, v)
                sweep_runs.append((v, one(sc, det is not None and sweep_detect)))
        t2 = time.perf_counter()
        cpu = 0.0
        for run, sc, fut in pending:
            say(f"scenario {sc.name}: waiting for detection")
            got = fut.result()
            finish_detection(run, sc, got.cases, got.seconds)
            run.metrics["seconds"]["detection_cpu"] = round(got.cpu_seconds, 3)
            cpu += got.cpu_seconds
        t_wait = time.perf_counter() - t2
    finally:
        if pool is not None:
            pool.close()
    results = [r.metrics for r in runs]
    sweep_out: dict[str, Any] | None = None
    if sweep_spec is not None:
        points = []
        for v, run in sweep_runs:
            m = run.metrics
            points.append(
                {
                    "value": v,
                    "license_applications": m["license_applications"],
                    "legit_delayed_h100": m["legit_delayed_h100"],
                    "legit_refused_h100": m["legit_refused_h100"],
                    "diverted_h100": m["diverted_h100"],
                    "diverted_caught_h100": m["diverted_caught_h100"],
                    "diverted_net_h100": None
                    if m["diverted_caught_h100"] is None
                    else round(m["diverted_h100"] - m["diverted_caught_h100"], 1),
                    "evader_new_shells": m["evader_new_shells"],
                    "evader_cost_usd": m["evader_cost_usd"],
                }
            )
        sweep_out = {
            "parameter": sweep_spec[0],
            "scenario": loaded[0].name,
            "spec": sweep,
            "points": points,
        }
    total = time.perf_counter() - t0
    return SimulationResult(
        world=str(w.path),
        orders=w.n,
        scenarios=results,
        sweep=sweep_out,
        notes=notes,
        seconds=total,
        split={
            "load": round(t_load, 3),
            "decisions": round(t_decide, 3),
            "detection_wait": round(t_wait, 3),
            "detection_cpu": round(cpu, 3),
            "detection_workers": pool.workers if pool is not None else 0,
            "total": round(total, 3),
        },
    )


__all__ = [
    "DEFAULT_SCENARIOS",
    "SWEEP_ALIASES",
    "Case",
    "Detection",
    "DetectionPool",
    "Detector",
    "Run",
    "Scenario",
    "SimulationResult",
    "World",
    "available_scenarios",
    "intel_detector",
    "load_scenario",
    "load_world",
    "parse_sweep",
    "run_scenario",
    "simulate",
    "work_cases",
]
