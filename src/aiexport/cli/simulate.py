"""`aiexport simulate`: replay a world under rule scenarios, write an HTML report and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aiexport.cli import app
from aiexport.rules.ruleset import law_root

console = Console(stderr=True)
out_console = Console()


def _scenario_names() -> list[str]:
    """The bundled scenarios (as `aiexport.simulate.available_scenarios`, without importing it:
    the simulation stack is loaded only when the command runs)."""
    names = (law_root() / "scenarios").glob("*.yaml")
    return sorted(p.stem for p in names if p.name != "assumptions.yaml")


@app.command("simulate")
def simulate_cmd(
    world: Annotated[
        Path,
        typer.Argument(
            help="World directory (orders.parquet or orders.csv, truth.json), from `aiexport world`."
        ),
    ],
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            "-s",
            help=f"Scenario name ({', '.join(_scenario_names())}) or YAML file; repeat. Default: all three.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="HTML report (self-contained, opens offline).")
    ] = Path("report.html"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON here.")
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            help="NAME=START:STOP:COUNT on the first scenario, e.g. lpp_allowance=5e6:27e6:12.",
        ),
    ] = None,
    no_detect: Annotated[
        bool,
        typer.Option("--no-detect", help="Skip the investigate pipeline (no 'caught' metrics)."),
    ] = False,
    sweep_detect: Annotated[
        bool,
        typer.Option(
            "--sweep-detect/--no-sweep-detect", help="Run detection at every sweep point."
        ),
    ] = True,
) -> None:
    """Compare scenarios on a world: compute delivered, license workload, diversion, detection."""
    from aiexport.simulate import DEFAULT_SCENARIOS, simulate
    from aiexport.simulate.report import HEADLINE, write_html

    names = scenario or list(DEFAULT_SCENARIOS)
    result = simulate(
        world,
        names,
        detector=None if no_detect else "auto",
        sweep=sweep,
        sweep_detect=sweep_detect,
        progress=lambda msg: console.print(f"[dim]{msg}[/]"),
    )
    write_html(result, out)
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    table = Table(title=f"{result.orders:,} orders, {result.seconds:.1f} s")
    table.add_column("metric")
    for s in result.scenarios:
        table.add_column(s["scenario"], justify="right")
    for label, key, _fmt in HEADLINE:
        table.add_row(
            label, *[("n/a" if s[key] is None else f"{s[key]:,.0f}") for s in result.scenarios]
        )
    out_console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    out_console.print(f"report: {out}" + (f"; metrics: {json_out}" if json_out else ""))
