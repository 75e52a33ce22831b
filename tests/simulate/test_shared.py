"""The pooled pipeline (detection in worker processes, overlapping the next scenario's
decisions) gives exactly the metrics of the plain one (each scenario in turn, in process)."""

from __future__ import annotations

import json
from typing import Any

from aiexport.simulate import (
    DEFAULT_SCENARIOS,
    World,
    intel_detector,
    load_scenario,
    run_scenario,
    simulate,
)
from aiexport.simulate._run import detect_run


def _without_timings(x: Any) -> Any:
    if isinstance(x, dict):
        return {
            k: _without_timings(v) for k, v in x.items() if k not in ("seconds", "split_seconds")
        }
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def test_pooled_detection_equals_in_process(sample_world: World) -> None:
    sweep = "lpp_allowance=5e6:27e6:2"
    plain = simulate(sample_world, DEFAULT_SCENARIOS, sweep=sweep, workers=0).to_dict()
    pooled = simulate(sample_world, DEFAULT_SCENARIOS, sweep=sweep, workers=2).to_dict()
    assert plain["split_seconds"]["detection_workers"] == 0
    assert pooled["split_seconds"]["detection_workers"] == 2
    assert all(s["detection"]["available"] for s in pooled["scenarios"])
    assert any(s["detection"]["cases"] > 0 for s in pooled["scenarios"])
    a = json.dumps(_without_timings(plain), sort_keys=True, default=str)
    b = json.dumps(_without_timings(pooled), sort_keys=True, default=str)
    assert a == b

    # And the scenarios as the simulator first ran them: one after the other, in process.
    det = intel_detector()
    assert det is not None
    reference = []
    for name in DEFAULT_SCENARIOS:
        sc = load_scenario(name)
        run = run_scenario(sample_world, sc)
        detect_run(run, sc, det)
        reference.append(run.metrics)
    assert json.dumps(_without_timings(reference), sort_keys=True, default=str) == json.dumps(
        _without_timings(pooled["scenarios"]), sort_keys=True, default=str
    )
