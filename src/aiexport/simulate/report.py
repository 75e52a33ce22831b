"""The HTML report: scenarios side by side, charts, assumptions with sources. Opens offline.

plotly.js comes from the installed `plotly` package and is written inline once; no script or
style is loaded from the network, so the file works on an air-gapped analyst's laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from aiexport.simulate import SimulationResult

_COLORS = ["#1f5fa8", "#b5651d", "#2e8b57", "#8a2be2", "#c0392b", "#7f8c8d"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aiexport policy simulation: {{ names }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}td.src{text-align:left;font-size:.8rem;color:#444;max-width:40rem}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.5rem 0}
.ok{color:#2e7d32}.bad{color:#c62828}.chart{margin:1rem 0}
</style>
<script type="text/javascript">{{ plotlyjs }}</script>
</head><body>
<h1>Policy simulation: {{ names }}</h1>
<p>World <code>{{ world }}</code>: {{ "{:,}".format(orders) }} orders. Run in {{ "%.1f"|format(seconds) }} s.
Compute in TPP and H100-equivalents (1 H100 = {{ "{:,.0f}".format(h100) }} TPP, the reference chip of the law files).</p>
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}

<h2>Headline metrics</h2>
<table><tr><th>metric</th>{% for s in scenarios %}<th>{{ s.scenario }}</th>{% endfor %}</tr>
{% for label, key, fmt in headline %}<tr><td>{{ label }}</td>{% for s in scenarios %}<td>{{ fmtv(s[key], fmt) }}</td>{% endfor %}</tr>
{% endfor %}
<tr><td>Conservation: delivered + refused + diverted = demanded</td>{% for s in scenarios %}<td class="{{ 'ok' if s.conservation.holds else 'bad' }}">{{ 'holds' if s.conservation.holds else 'FAILS' }}</td>{% endfor %}</tr>
</table>

{% for c in charts %}<div class="chart">{{ c }}</div>{% endfor %}

<h2>Country allocations (Tier 2, § 742.6(b)(10)(iii))</h2>
<table><tr><th>country</th>{% for s in scenarios %}<th>{{ s.scenario }}: licensed / limit (denied), TPP</th>{% endfor %}</tr>
{% for c in alloc_countries %}<tr><td>{{ c }}</td>{% for s in scenarios %}{% set a = s.allocations.get(c) %}<td>{% if a %}{{ "{:,.0f}".format(a.licensed_tpp) }} / {{ "{:,.0f}".format(a.limit_tpp or 0) }}{% if a.denied_tpp %} <span class="bad">({{ "{:,.0f}".format(a.denied_tpp) }})</span>{% endif %}{% else %}-{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Scenarios: rules and assumptions, with sources</h2>
{% for s in scenarios %}
<h3>{{ s.scenario }}</h3>
<p>{{ s.description }}<br><small>rule set <code>{{ s.rule_set }}</code>; file <code>{{ s.scenario_file }}</code></small></p>
<table><tr><th>rule parameter (on 2025-06-01)</th><th>value</th></tr>
{% for k, v in s.parameters.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
<table><tr><th>assumption</th><th>value</th><th>source</th></tr>
{% for a in s.assumptions %}<tr><td>{{ a.key }}<br><small>{{ a.label }}</small></td><td>{{ a.value }} {{ a.unit }}</td><td class="src">{{ a.source }}</td></tr>{% endfor %}</table>
{% endfor %}

<h2>Model</h2>
<ul>
<li>Legitimate demand is the world's orders outside planted schemes, by country and buyer and date.</li>
<li>Each order is decided by the rule engine; LPP allowances (per consignee and calendar year) and country allocations (cumulative 2025-2027) are replayed exactly in date order.</li>
<li>A legitimate buyer whose LPP allowance binds applies for a license (one application per purchase order) or, within the wait window before 31 December, waits for the new year. Granted licenses ship after the review time; once a country allocation is met, applications meet a policy of denial and the buyer waits (refused within the horizon).</li>
<li>Evasive groups (truth.json) keep each entity under their fill share of the allowance, forming new shells at a yearly cost when needed; they never apply for licenses. What they get shipped is diverted to Tier 3.</li>
<li>Detection: the real <code>aiexport.intel</code> pipeline ranks cases over the orders that shipped to Tier 2; analysts work the top cases up to capacity; a case with at least half of its orders evasive is a find and its evasive orders are caught (seized: the evader forfeits their value).</li>
</ul>
</body></html>
"""

HEADLINE: list[tuple[str, str, str]] = [
    ("Compute demanded (H100-eq)", "demanded_h100", "n"),
    ("Delivered to legitimate buyers (H100-eq)", "delivered_h100", "n"),
    ("Refused (H100-eq)", "refused_h100", "n"),
    ("Diverted to Tier 3 (H100-eq)", "diverted_h100", "n"),
    ("Diverted compute caught (H100-eq)", "diverted_caught_h100", "n"),
    ("License applications to review", "license_applications", "n"),
    ("Legitimate demand delayed (H100-eq)", "legit_delayed_h100", "n"),
    ("Mean delay of delayed demand (days)", "legit_mean_delay_days", "f"),
    ("Legitimate demand refused or waiting (H100-eq)", "legit_refused_h100", "n"),
    ("Evader shell-years", "evader_shell_years", "n"),
    ("New shells formed", "evader_new_shells", "n"),
    ("Cost to evaders (USD)", "evader_cost_usd", "usd"),
]


def _fmtv(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if fmt == "usd":
        return f"${value:,.0f}"
    if fmt == "f":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _fig_html(fig: go.Figure, div_id: str) -> str:
    """A chart's HTML, with a fixed element id: plotly's default is a random one, and the same
    result should give the same report byte for byte (reports are compared by diffing them)."""
    fig.update_layout(
        template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 60}, height=420
    )
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False},
            div_id=div_id,
        )
    )


def charts(result: SimulationResult) -> list[str]:
    sc = result.scenarios
    names = [s["scenario"] for s in sc]
    out: list[str] = []
    fig = go.Figure()
    caught = [s["diverted_caught_h100"] or 0 for s in sc]
    parts = [
        ("Delivered", [s["delivered_h100"] for s in sc], "#2e8b57"),
        ("Refused", [s["refused_h100"] for s in sc], "#7f8c8d"),
        (
            "Diverted, not caught",
            [s["diverted_h100"] - c for s, c in zip(sc, caught, strict=True)],
            "#c0392b",
        ),
        ("Diverted, caught", caught, "#f0b400"),
    ]
    for label, ys, color in parts:
        fig.add_bar(name=label, x=names, y=ys, marker_color=color)
    fig.update_layout(barmode="stack", title="Where demanded compute went (H100-equivalents)")
    out.append(_fig_html(fig, f"chart-{len(out) + 1}"))

    fig = go.Figure()
    for t in ("1", "2", "3"):
        fig.add_bar(name=f"Tier {t}", x=names, y=[s["delivered_by_tier"][t]["h100"] for s in sc])
    fig.update_layout(
        barmode="group", title="Compute delivered to legitimate buyers by tier (H100-eq)"
    )
    out.append(_fig_html(fig, f"chart-{len(out) + 1}"))

    totals: dict[str, float] = {}
    for s in sc:
        for c, v in s["delivered_by_country"].items():
            totals[c] = totals.get(c, 0.0) + v["h100"]
    top = sorted(totals, key=lambda c: (-totals[c], c))[:20]
    fig = go.Figure()
    for i, s in enumerate(sc):
        fig.add_bar(
            name=s["scenario"],
            x=top,
            y=[s["delivered_by_country"].get(c, {}).get("h100", 0) for c in top],
            marker_color=_COLORS[i % len(_COLORS)],
        )
    fig.update_layout(barmode="group", title="Compute delivered by country, top 20 (H100-eq)")
    out.append(_fig_html(fig, f"chart-{len(out) + 1}"))

    fig = go.Figure()
    fig.add_bar(
        name="License applications",
        x=names,
        y=[s["license_applications"] for s in sc],
        marker_color="#1f5fa8",
        yaxis="y",
    )
    fig.add_bar(
        name="Legitimate demand delayed (H100-eq)",
        x=names,
        y=[s["legit_delayed_h100"] for s in sc],
        marker_color="#b5651d",
        yaxis="y2",
    )
    fig.update_layout(
        barmode="group",
        title="Regulator workload and delay to legitimate buyers",
        yaxis={"title": "applications"},
        yaxis2={"title": "H100-eq delayed", "overlaying": "y", "side": "right"},
        bargap=0.3,
        bargroupgap=0.1,
    )
    out.append(_fig_html(fig, f"chart-{len(out) + 1}"))

    fig = go.Figure()
    fig.add_bar(
        name="Shell cost (USD)",
        x=names,
        y=[s["evader_shell_cost_usd"] for s in sc],
        marker_color="#8a2be2",
    )
    fig.add_bar(
        name="Forfeited hardware (USD)",
        x=names,
        y=[s["evader_forfeited_usd"] or 0 for s in sc],
        marker_color="#f0b400",
    )
    fig.update_layout(barmode="stack", title="Cost to evaders (USD)")
    out.append(_fig_html(fig, f"chart-{len(out) + 1}"))

    if result.sweep:
        pts = result.sweep["points"]
        has_net = all(p["diverted_net_h100"] is not None for p in pts)
        ykey = "diverted_net_h100" if has_net else "diverted_h100"
        ylabel = "diverted, not caught (H100-eq)" if has_net else "diverted (H100-eq)"
        fig = go.Figure()
        fig.add_scatter(
            x=[p["license_applications"] for p in pts],
            y=[p[ykey] for p in pts],
            mode="lines+markers+text",
            text=[f"{p['value']:,.3g}" for p in pts],
            textposition="top center",
            name=result.sweep["parameter"],
        )
        fig.update_layout(
            title=f"Trade-off: {result.sweep['parameter']} swept on {result.sweep['scenario']} ({result.sweep['spec']})",
            xaxis={"title": "license applications to review"},
            yaxis={"title": ylabel},
        )
        out.append(_fig_html(fig, f"chart-{len(out) + 1}"))
    return out


def allocation_order(scenarios: list[dict[str, Any]]) -> list[str]:
    """The allocations of the table, most licensed first, then by name: a set of strings
    iterates in an order that changes with the process's hash seed, and many tie (none
    licensed)."""
    return sorted(
        {c for s in scenarios for c in s["allocations"]},
        key=lambda c: (
            -max(s["allocations"].get(c, {}).get("licensed_tpp", 0) for s in scenarios),
            c,
        ),
    )


def render_html(result: SimulationResult) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.from_string(_TEMPLATE)
    sc = result.scenarios
    alloc = allocation_order(sc)
    return tpl.render(
        names=", ".join(s["scenario"] for s in sc),
        world=result.world,
        orders=result.orders,
        seconds=result.seconds,
        h100=sc[0]["h100_tpp"] if sc else 0,
        notes=result.notes,
        scenarios=sc,
        headline=HEADLINE,
        fmtv=_fmtv,
        charts=[Markup(c) for c in charts(result)],
        plotlyjs=Markup(get_plotlyjs()),
        alloc_countries=alloc,
    )


def write_html(result: SimulationResult, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(render_html(result), encoding="utf-8")
    return p


__all__ = ["charts", "render_html", "write_html"]
