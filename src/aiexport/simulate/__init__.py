"""Policy simulation: replay a world of orders under rule scenarios and compare the outcomes.

`simulate(world_dir, ["diffusion-2025", "ear-2024", "refinements-2025"])` runs, for each scenario:

1. the real decision engine on every distinct case of the world's orders (`_static`);
2. the evasive groups' adaptation to the scenario's LPP allowance: more shells, split orders
   (`_evasion`);
3. an exact replay of LPP allowances and country allocations with the legitimate buyers'
   behaviour: apply for a license, or wait for the new year (`_replay`);
4. detection by the real `aiexport.intel` pipeline over what shipped, worked up to the
   scenario's enforcement capacity (`detect`).

Metrics come back side by side, with the assumptions and their sources, as JSON and as a
self-contained HTML report (`report.render_html`). Every assumption lives in the scenario files
(`law/scenarios/`), each with its source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiexport.simulate._run import (
    SWEEP_ALIASES,
    Run,
    detect_run,
    parse_sweep,
    run_scenario,
    sweep_scenario,
)
from aiexport.simulate.detect import Case, Detection, Detector, intel_detector, work_cases
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "aiexport.simulate/1",
            "world": self.world,
            "orders": self.orders,
            "seconds": round(self.seconds, 3),
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
) -> SimulationResult:
    """Run every scenario on the world; optionally sweep one parameter of the first scenario."""
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    w = world if isinstance(world, World) else load_world(world)
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
    results: list[dict[str, Any]] = []
    for sc in loaded:
        say(f"scenario {sc.name}")
        run = run_scenario(w, sc, keep_for_detection=det is not None)
        if det is not None:
            say(f"scenario {sc.name}: detection")
            detect_run(run, sc, det)
        results.append(run.metrics)
    sweep_out: dict[str, Any] | None = None
    if sweep:
        target, values = parse_sweep(sweep)
        base = loaded[0]
        points = []
        for v in values:
            sc = sweep_scenario(base, target, v)
            say(f"sweep {target}={v:,.0f}")
            use_det = det is not None and sweep_detect
            run = run_scenario(w, sc, keep_for_detection=use_det)
            if use_det and det is not None:
                detect_run(run, sc, det)
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
        sweep_out = {"parameter": target, "scenario": base.name, "spec": sweep, "points": points}
    return SimulationResult(
        world=str(w.path),
        orders=w.n,
        scenarios=results,
        sweep=sweep_out,
        notes=notes,
        seconds=time.perf_counter() - t0,
    )


__all__ = [
    "DEFAULT_SCENARIOS",
    "SWEEP_ALIASES",
    "Case",
    "Detection",
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
