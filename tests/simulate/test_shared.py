"""The pooled pipeline (detection in worker processes, overlapping the next scenario's
decisions) gives exactly the metrics of the plain one (each scenario in turn, in process):
on the bundled sample world (too few consignees to train Splink: deterministic links) and on a
generated world where the first scenario's run trains the one model the others reuse.

The comparison runs in a fresh interpreter, as `aiexport simulate` and the bench do, so that
both sides import the same code: in a shared working tree, a module edited on disk during a
pytest session would otherwise be old in this process and new in the spawned workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, sys
from aiexport.simulate import DEFAULT_SCENARIOS, intel_detector, load_scenario, load_world
from aiexport.simulate import run_scenario, simulate
from aiexport.simulate._run import detect_run


def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("seconds", "split_seconds")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def dump(x):
    return json.dumps(strip(x), sort_keys=True, default=str)


if __name__ == "__main__":
    w = load_world(sys.argv[1])
    sweep = "lpp_allowance=5e6:27e6:2"
    plain = simulate(w, DEFAULT_SCENARIOS, sweep=sweep, workers=0).to_dict()
    pooled = simulate(w, DEFAULT_SCENARIOS, sweep=sweep, workers=2).to_dict()
    assert plain["split_seconds"]["detection_workers"] == 0
    assert pooled["split_seconds"]["detection_workers"] == 2
    assert all(s["detection"]["available"] for s in pooled["scenarios"])
    assert any(s["detection"]["cases"] > 0 for s in pooled["scenarios"])
    assert dump(plain) == dump(pooled), "pooled differs from in-process"
    # And the scenarios as the simulator first ran them: one after the other, in process.
    det = intel_detector()
    reference = []
    for name in DEFAULT_SCENARIOS:
        sc = load_scenario(name)
        run = run_scenario(w, sc)
        detect_run(run, sc, det)
        reference.append(run.metrics)
    assert dump(reference) == dump(pooled["scenarios"]), "pooled differs from the first loop"
    # Whether this world is large enough for the shared entity-resolution model to be trained
    # (and then reused by the other scenarios) rather than linked deterministically.
    import tempfile, pyarrow.parquet as pq
    from aiexport.intel import investigate
    first = load_scenario(DEFAULT_SCENARIOS[0])
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(run_scenario(w, first).shipped_tier2, tmp + "/o.parquet")
        trained = investigate(tmp + "/o.parquet", rules=first.rules).model is not None
    print("identical", [s["detection"]["cases"] for s in pooled["scenarios"]], "trained", trained)
"""


@pytest.fixture(scope="module")
def trained_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world with enough consignees for Splink to train: the first scenario's detection
    trains the model and the others reuse it."""
    from aiexport.world import generate_world

    out = tmp_path_factory.mktemp("world")
    generate_world(out, seed=11, orders=20_000)
    return out


@pytest.mark.parametrize("which", ["sample", "trained"])
def test_pooled_detection_equals_in_process(
    which: str, sample_world_dir: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    world = sample_world_dir if which == "sample" else request.getfixturevalue("trained_world_dir")
    script = tmp_path / "compare.py"
    script.write_text(SCRIPT, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), str(world)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "identical" in out.stdout
    assert ("trained True" in out.stdout) == (which == "trained"), out.stdout
