"""The kinds of background job this service runs: each is one call into a library.

Plugging a library in is one function `(JobContext, params) -> JSON result` and one entry in
`KINDS`. An investigation runs `aiexport.intel.investigate` over every order recorded through
the service (its result is contract §3, `{"cases": [...], "run": {...}}`); a simulation runs
`aiexport.simulate.simulate` over a world the server knows by name (never a path from the
request), under shipped scenarios.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select

from aiexport.api import store
from aiexport.api.jobs import JobContext, JobKind, require_keys
from aiexport.errors import InputError, NotFound
from aiexport.rules.ruleset import load_rule_set

WORLDS: dict[str, Path] = {
    "sample": Path(str(resources.files("aiexport") / "data" / "sample_world"))
}
"""Worlds a simulation may name; `aiexport demo` adds the one it builds."""


def _check_investigation(params: dict[str, Any]) -> dict[str, Any]:
    require_keys(params, {"lists", "threshold"})
    if not isinstance(params.setdefault("lists", True), bool):
        raise InputError("`lists` is true (screen parties against the bundled list) or false")
    t = params.get("threshold")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1):
        raise InputError("`threshold` is a match probability between 0 and 1")
    return params


def export_orders(ctx: JobContext, path: Path) -> int:
    """Write every recorded order as JSON Lines (contract §1 names); return how many."""
    d = store.decisions.c
    n = 0
    with path.open("w", encoding="utf-8") as out, ctx.ledger.db.read() as conn:
        for row in conn.execute(select(d.order_json).order_by(d.order_date, d.id)):
            out.write(row.order_json + "\n")
            n += 1
    return n


def run_investigation(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from aiexport.intel import bundled_list_path, investigate, load_lists

    with tempfile.TemporaryDirectory(prefix="aiexport-inv-") as tmp:
        path = Path(tmp) / "orders.jsonl"
        n = export_orders(ctx, path)
        if n == 0:
            raise InputError(
                "no orders are recorded yet: record some with POST /v1/decisions and commit"
            )
        ctx.progress(0.05, f"{n:,} recorded orders exported")
        steps = [
            "reading orders",
            "building consignee records",
            "resolving entities (Splink)",
            "computing signals",
        ]

        def say(msg: str) -> None:
            done = steps.index(msg) + 1 if msg in steps else len(steps)
            ctx.progress(0.05 + 0.9 * done / (len(steps) + 1), msg)

        lists = (
            load_lists([bundled_list_path()], state_file=Path(tmp) / "state.json")
            if params["lists"]
            else None
        )
        inv = investigate(
            path,
            lists=lists,
            rules=load_rule_set(ctx.rule_set),
            threshold=params.get("threshold"),
            progress=say,
        )
    result: dict[str, Any] = json.loads(json.dumps(inv.to_json(), default=str))
    return result


def _check_simulation(params: dict[str, Any]) -> dict[str, Any]:
    from aiexport.simulate import DEFAULT_SCENARIOS, available_scenarios

    require_keys(params, {"world", "scenarios"})
    world = params.setdefault("world", "sample")
    if world not in WORLDS:
        raise NotFound(
            f"no world {world!r} on this server; choose one of {', '.join(sorted(WORLDS))}"
        )
    scenarios = params.setdefault("scenarios", list(DEFAULT_SCENARIOS))
    shipped = set(available_scenarios())
    if (
        not isinstance(scenarios, list)
        or not scenarios
        or not all(isinstance(s, str) and s in shipped for s in scenarios)
    ):
        raise InputError(
            f"`scenarios` is a list of shipped scenarios: {', '.join(sorted(shipped))}"
        )
    return params


def run_simulation(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from aiexport.simulate import simulate

    names: list[str] = params["scenarios"]
    seen: list[str] = []

    def say(msg: str) -> None:
        name = msg.removeprefix("scenario ").split(":")[0]
        if name in names and name not in seen:
            seen.append(name)
        ctx.progress(len(seen) / (len(names) + 1), msg)

    result = simulate(WORLDS[params["world"]], names, progress=say)
    out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
    return out


KINDS: dict[str, JobKind] = {
    "investigation": JobKind(
        "investigation",
        run_investigation,
        _check_investigation,
        "rank cases of evasion in the recorded orders",
    ),
    "simulation": JobKind(
        "simulation", run_simulation, _check_simulation, "replay a world under shipped scenarios"
    ),
}
