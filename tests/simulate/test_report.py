"""The report renders, holds charts, and loads nothing from the network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiexport.cli import app
from aiexport.simulate import World, simulate
from aiexport.simulate.report import render_html

EXTERNAL = re.compile(
    r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", re.I
)
IMPORT = re.compile(r"@import\s+url\(\s*[\"']?https?://", re.I)


def _html(sample_world: World) -> str:
    result = simulate(
        sample_world,
        ["diffusion-2025", "refinements-2025"],
        detector=None,
        sweep="lpp_allowance=5e6:27e6:3",
    )
    return render_html(result)


def test_report_is_self_contained(sample_world: World) -> None:
    html = _html(sample_world)
    assert "plotly" in html.lower()
    assert html.count('class="plotly-graph-div"') >= 5
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert not IMPORT.search(html)
    assert "refinements-2025" in html and "source" in html


def test_the_same_result_renders_byte_for_byte_the_same(sample_world: World) -> None:
    """Charts carry fixed element ids (plotly's own are random), so two reports of one result
    differ in nothing, and reports of two runs only where their figures do."""
    result = simulate(sample_world, ["diffusion-2025"], detector=None)
    first = render_html(result)
    assert render_html(result) == first
    assert 'id="chart-1"' in first


def test_cli_writes_report_and_metrics(sample_world_dir: Path, tmp_path: Path) -> None:
    out, js = tmp_path / "r.html", tmp_path / "m.json"
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            str(sample_world_dir),
            "--scenario",
            "diffusion-2025",
            "--scenario",
            "ear-2024",
            "--out",
            str(out),
            "--json",
            str(js),
            "--no-detect",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert [s["scenario"] for s in data["scenarios"]] == ["diffusion-2025", "ear-2024"]
    assert all(s["conservation"]["holds"] for s in data["scenarios"])
    assert out.stat().st_size > 100_000


def test_cli_bad_sweep(sample_world_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            str(sample_world_dir),
            "--no-detect",
            "--out",
            str(tmp_path / "r.html"),
            "--sweep",
            "lpp_allowance=5e6",
        ],
    )
    assert res.exit_code != 0


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Chromium")
def test_report_opens_offline_in_chromium(sample_world: World, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(sample_world), encoding="utf-8")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    js = "setTimeout(function(){document.title='charts:'+document.querySelectorAll('.main-svg').length},1500)"
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", f"<script>{js}</script></body>"),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    m = re.search(r"<title>charts:(\d+)</title>", proc.stdout)
    assert m, proc.stderr[-2000:]
    assert int(m.group(1)) >= 5


def test_allocations_that_tie_are_listed_by_name() -> None:
    """Allocations come from a set of strings, whose order changes with the hash seed."""
    from aiexport.simulate.report import allocation_order

    names = ["allocation/IN", "allocation/AE", "allocation/SG", "allocation/BR", "allocation/MY"]
    sc = [
        {"allocations": {n: {"licensed_tpp": 5.0 if n.endswith("SG") else 0} for n in names}},
        {"allocations": {n: {"licensed_tpp": 0} for n in reversed(names)}},
    ]
    assert allocation_order(sc) == ["allocation/SG", *sorted(set(names) - {"allocation/SG"})]
