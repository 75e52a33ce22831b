"""Commands of the enforcement analyst: investigate, screen-parties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aiexport.cli import app
from aiexport.errors import InputError, NotFound
from aiexport.rules.ruleset import DEFAULT_RULE_SET

if TYPE_CHECKING:
    from aiexport.intel.lists import ScreeningList

# The analytics stack (DuckDB, Splink, pandas) is imported inside the commands, so that
# `aiexport --help` and the other commands start fast.

console = Console()
err = Console(stderr=True)

ListsOpt = Annotated[
    list[Path] | None,
    typer.Option("--lists", help="Restricted-party list in CSL format (JSON or CSV); repeatable."),
]


def _lists(paths: list[Path] | None) -> ScreeningList | None:
    if not paths:
        return None
    from aiexport.intel.lists import load_lists

    lists = load_lists(paths)
    for w in lists.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    return lists


@app.command()
def investigate(
    orders: Annotated[
        Path | None,
        typer.Argument(help="Orders file (contract §1), or a case file with --explain."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Cases file to write (contract §3 JSON).")
    ] = None,
    lists: ListsOpt = None,
    explain: Annotated[
        str | None, typer.Option("--explain", help="Print one case in full (CASE_ID).")
    ] = None,
    cases_file: Annotated[
        Path | None,
        typer.Option(
            "--cases", help="Cases file to read for --explain (default: ORDERS or ./cases.json)."
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Cases to show in the table.")] = 20,
    rules: Annotated[
        str, typer.Option("--rules", help="Rule set name or YAML file.")
    ] = DEFAULT_RULE_SET,
) -> None:
    """Find structuring and diversion schemes in an orders file and rank them as cases."""
    from aiexport.intel.investigate import investigate as run_investigation
    from aiexport.rules.ruleset import load_rule_set

    if explain:
        if orders is not None and orders.suffix.lower() != ".json":
            doc = run_investigation(
                orders, lists=_lists(lists), rules=load_rule_set(rules)
            ).to_json()
        else:
            doc = _read_cases(cases_file or orders or out or Path("cases.json"))
        _explain(explain, doc)
        return
    if orders is None:
        raise InputError("give an orders file: aiexport investigate ORDERS --out CASES.json")
    out = out or Path("cases.json")
    with console.status("investigating…") as status:
        inv = run_investigation(
            orders,
            lists=_lists(lists),
            rules=load_rule_set(rules),
            progress=lambda s: status.update(s + "…"),
        )
    doc = inv.to_json()
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), "utf-8")
    console.print(
        f"[bold]{len(inv.cases)} cases[/] from {inv.orders:,} orders, {inv.consignees:,} consignees "
        f"({inv.clusters:,} resolved parties) in {inv.seconds['total']:.1f}s → {out}"
    )
    table = Table("#", "case", "score", "signals", "parties", "orders", "TPP", title="Top cases")
    for n, c in enumerate(inv.cases[:top], start=1):
        table.add_row(
            str(n),
            c.case_id,
            f"{c.score:.2f}",
            ", ".join(s.code for s in c.signals),
            str(len(c.parties)),
            str(len(c.order_ids)),
            f"{c.tpp_total:,.0f}",
        )
    console.print(table)
    if inv.cases:
        console.print(
            f"Explain one: aiexport investigate --explain {inv.cases[0].case_id} --cases {out}"
        )


def _read_cases(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the cases file: {exc.strerror}", file=str(path)) from None
    except ValueError:
        raise InputError("not a cases file (JSON with a `cases` list)", file=str(path)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise InputError("not a cases file (JSON with a `cases` list)", file=str(path))
    return doc


def _explain(case_id: str, doc: dict[str, Any]) -> None:
    case = next((c for c in doc["cases"] if c.get("case_id") == case_id), None)
    if case is None:
        raise NotFound(
            f"no case {case_id!r} in the cases file; run `aiexport investigate` to list them"
        )
    ev = case.get("evidence", {})
    console.print(
        f"[bold]{case['case_id']}[/] — score {case['score']:.2f} — {case['tpp_total']:,} TPP"
    )
    console.print(case["summary"], highlight=False)
    t = Table("signal", "strength", "why", title="Signals", expand=True)
    for s in ev.get("signals", []):
        t.add_row(s["code"], f"{s['strength']:.2f}", s["why"])
    console.print(t)
    p = Table(
        "party",
        "name",
        "country",
        "founded",
        "orders",
        "TPP",
        "LPP-eligible TPP by year",
        title="Parties",
    )
    for row in ev.get("parties", []):
        lpp = ", ".join(f"{y}: {v:,}" for y, v in row.get("lpp_tpp_by_year", {}).items())
        p.add_row(
            row["party"],
            row["name"],
            row["country"] or "",
            row.get("founded") or "",
            str(row["orders"]),
            f"{row['tpp']:,}",
            lpp,
        )
    console.print(p)
    names = ev.get("party_names", {})
    lk = Table("between", "kind", "shared", "match probability", title="What links them")
    for link in ev.get("links", []):
        a, b = link["between"]
        lk.add_row(
            f"{names.get(a, a)} ↔ {names.get(b, b)}",
            link["kind"],
            ", ".join(link["shared"]),
            str(link.get("match_probability", "")),
        )
    if ev.get("links"):
        console.print(lk)
    tl = Table("month", "orders", "TPP", title="Timeline")
    for row in ev.get("timeline", []):
        tl.add_row(row["month"], str(row["orders"]), f"{row['tpp']:,}")
    console.print(tl)
    console.print("Orders: " + ", ".join(case["order_ids"]), highlight=False)


@app.command("screen-parties")
def screen_parties(
    names: Annotated[
        list[str],
        typer.Argument(
            help="Names to screen, or a file with one name per line (optionally `name,country`)."
        ),
    ],
    lists: ListsOpt = None,
    country: Annotated[
        str | None, typer.Option("--country", help="Country of the names (ISO alpha-2).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print matches as JSON.")] = False,
) -> None:
    """Screen party names against restricted-party lists, with a score and an explanation."""
    from aiexport.intel.screening import CONFIDENT, Screener

    loaded = _lists(lists)
    if loaded is None:
        raise InputError("give at least one --lists FILE (CSL JSON or CSV)")
    screener = Screener(loaded)
    queries: list[tuple[str, str | None]] = []
    for n in names:
        path = Path(n)
        if path.is_file():
            for line in path.read_text("utf-8").splitlines():
                if line.strip():
                    name, _, cc = line.partition(",")
                    queries.append((name.strip(), cc.strip().upper() or country))
        else:
            queries.append((n, country))
    results = [(q, c, screener.screen(q, c)) for q, c in queries]
    if as_json:
        print(
            json.dumps(
                [
                    {"name": q, "country": c, "matches": [m.to_dict() for m in ms]}
                    for q, c, ms in results
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(
        "name",
        "match",
        "list",
        "score",
        "why",
        title=f"Screened against list {loaded.version} ({len(loaded.entries):,} entries)",
        expand=True,
    )
    for q, _, ms in results:
        if not ms:
            table.add_row(q, "[green]no match[/]", "", "", "")
        for m in ms:
            flag = "[bold red]" if m.score >= CONFIDENT else "[yellow]"
            table.add_row(
                q, f"{flag}{m.entry.name}[/]", m.entry.source, f"{m.score:.2f}", m.explain()
            )
    console.print(table)
