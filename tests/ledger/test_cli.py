"""`aiexport ledger|license|veu` and `screen --commit`, end to end, on every backend."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from aiexport.cli import app
from aiexport.errors import InputError, LedgerIntegrityError, NotFound
from aiexport.ledger import Ledger, verify

runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_license_add_counts_against_the_country_allocation(url: str) -> None:
    args = ("license", "add", "D123456", "--destination", "mx", "--tpp", "50,000,000")
    out = cli(*args, "--consignee", "mx-norte", "--valid-from", "2025-06-01", "--db", url)
    assert "allocation/MX" in out
    again = cli(*args, "--consignee", "mx-norte", "--valid-from", "2025-06-01", "--db", url)
    assert "already registered" in again
    [lic] = json.loads(cli("license", "list", "--db", url, "--json"))
    assert lic["valid_until"] == "2026-05-31" and lic["tpp"] == "50000000"
    [bal] = json.loads(cli("ledger", "balance", "allocation/MX", "--db", url, "--json"))
    assert bal["used_tpp"] == "50000000" and bal["limit_tpp"] == "790000000"
    # A Tier 1 destination has no allocation: registered, nothing drawn.
    cli("license", "add", "T1", "--destination", "DE", "--tpp", "5", "--db", url)
    with pytest.raises(NotFound):
        Ledger(url).balance("allocation/DE")


def test_veu_add_and_list(url: str) -> None:
    cli("veu", "add", "V-1", "--kind", "nveu", "--holder", "ae-g42", "--hq", "AE",
        "--country", "AE", "--valid-from", "2025-02-01", "--db", url)  # fmt: skip
    cli("veu", "add", "U-1", "--kind", "UVEU", "--holder", "us-hyper", "--hq", "US",
        "--country", "IN", "--country", "AE", "--db", url)  # fmt: skip
    veus = json.loads(cli("veu", "list", "--db", url, "--json"))
    assert [(v["veu_id"], v["countries"]) for v in veus] == [("U-1", ["AE", "IN"]), ("V-1", ["AE"])]
    assert Ledger(url).veus_for("ae-g42")[0].kind == "NVEU"


def test_screen_commit_records_once_and_decides_the_same(url: str, tmp_path: Path) -> None:
    cli("license", "add", "D123456", "--destination", "MX", "--tpp", "50000000",
        "--consignee", "mx-norte", "--valid-from", "2025-06-01", "--db", url)  # fmt: skip
    dry = tmp_path / "dry.jsonl"
    cli("screen", "--sample", "--out", str(dry), "--db", url, "--json")
    with Ledger(url) as ledger:
        assert ledger.head()[0] == 1  # a dry run against the ledger records nothing
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    cli("screen", "--sample", "--out", str(first), "--db", url, "--commit", "--json")
    with Ledger(url) as ledger:
        head = ledger.head()
        assert head[0] > 1
        assert ledger.used("license/D123456") > 0  # the order citing the license drew on it
    cli("screen", "--sample", "--out", str(second), "--db", url, "--commit", "--json")
    assert first.read_text() == second.read_text() == dry.read_text()
    with Ledger(url) as ledger:
        assert ledger.head() == head
    drawn = [json.loads(line) for line in first.read_text().splitlines()]
    lpp = [d for d in drawn if d["authority"] == "LPP"]
    assert lpp, "the sample has LPP orders"
    account = lpp[0]["quota"]["account"]
    [bal] = json.loads(cli("ledger", "balance", account, "--db", url, "--json"))
    assert Decimal(bal["used_tpp"]) == sum(
        Decimal(str(d["tpp_total"])) for d in lpp if d["quota"]["account"] == account
    )


def test_history_verify_and_export(url: str, tmp_path: Path) -> None:
    cli("license", "add", "L-1", "--destination", "IN", "--tpp", "1000.5", "--db", url)
    cli("license", "add", "L-2", "--destination", "IN", "--tpp", "2000", "--db", url)
    hist = json.loads(cli("ledger", "history", "allocation/IN", "--db", url, "--json"))
    assert [h["amount"] for h in hist] == ["1000.5", "2000"]
    assert "chain intact" in cli("ledger", "verify", "--db", url)
    report = json.loads(cli("ledger", "verify", "--db", url, "--json"))
    head = report["head"]
    cli("ledger", "verify", "--db", url, "--expect-head", head)
    out = tmp_path / "ledger.parquet"
    runner.invoke(app, ["ledger", "export", str(out), "--db", url], catch_exceptions=False)
    table = pq.read_table(out)
    assert table.num_rows == 2
    assert sum(table.column("amount_tpp").to_pylist()) == Decimal("3000.5")

    engine = create_engine(Ledger(url).url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET amount = 1 WHERE seq = 2"))
    engine.dispose()
    result = runner.invoke(app, ["ledger", "verify", "--db", url])
    assert isinstance(result.exception, LedgerIntegrityError)
    assert "entry #2 was edited" in str(result.exception)


def test_db_defaults_to_aiexport_db_env(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIEXPORT_DB", url)
    cli("license", "add", "E-1", "--destination", "IN", "--tpp", "7")
    assert Ledger(url).used("allocation/IN") == 7


def test_db_defaults_to_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIEXPORT_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    cli("license", "add", "F-1", "--destination", "IN", "--tpp", "7")
    assert (tmp_path / "aiexport.db").exists()


def test_concurrent_screen_commit_processes_record_the_file_once(url: str, tmp_path: Path) -> None:
    """Three `aiexport screen --commit` processes on the same file and database at once."""
    import subprocess
    import sys

    Ledger(url).close()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiexport",
                "screen",
                "--sample",
                "--commit",
                "--json",
                "--db",
                url,
                "--out",
                str(tmp_path / f"{i}.jsonl"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    messages = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], messages
    assert sum("recorded" in m and "already" not in m for m in messages) == 1
    assert sum("already recorded" in m for m in messages) == 2
    outputs = {(tmp_path / f"{i}.jsonl").read_text() for i in range(3)}
    assert len(outputs) == 1
    with Ledger(url) as ledger:
        report = verify(ledger)
        assert report.ok and report.entries > 0
        assert len(_recorded(url)) == 1


def _recorded(url: str) -> list[str]:
    engine = create_engine(Ledger(url).url)
    with engine.connect() as conn:
        keys = list(conn.scalars(text("SELECT key FROM ledger_requests")))
    engine.dispose()
    return keys


def test_attrition_and_adjust(url: str) -> None:
    cli("license", "add", "L-9", "--destination", "IN", "--tpp", "100", "--db", url)
    cli("ledger", "attrition", "allocation/IN", "30", "--reason", "resold", "--db", url)
    cli("ledger", "attrition", "allocation/IN", "30", "--reason", "resold", "--db", url)  # replay
    cli(
        "ledger",
        "adjust",
        "allocation/IN",
        "--tpp",
        "-5",
        "--reason",
        "audit",
        "--key",
        "a1",
        "--db",
        url,
    )
    assert Ledger(url).used("allocation/IN") == 65
    kinds = [
        h["kind"]
        for h in json.loads(cli("ledger", "history", "allocation/IN", "--db", url, "--json"))
    ]
    assert kinds == ["commit", "attrition", "adjustment"]


def _decisions(path: Path) -> dict[str, dict[str, object]]:
    return {r["order_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_screen_dry_run_reads_the_default_ledger_when_it_exists(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIEXPORT_DB", raising=False)
    memory = tmp_path / "memory.jsonl"
    cli("screen", "--sample", "--out", str(memory), "--json")
    assert not (tmp_path / "aiexport.db").exists()  # no ledger: in memory, and none created
    with Ledger(url) as ledger:  # S-002 draws 5,066,240 TPP of its 26,900,000 LPP allowance
        ledger.adjust(
            "lpp/in-yotta/2025", Decimal(26_000_000), key="adj", actor="t", citation="test"
        )
        head = ledger.head()
    monkeypatch.setenv("AIEXPORT_DB", url)
    dry = tmp_path / "dry.jsonl"
    cli("screen", "--sample", "--out", str(dry), "--json")
    before, after = _decisions(memory), _decisions(dry)
    assert before["S-002"]["authority"] == "LPP" and after["S-002"]["authority"] != "LPP"
    assert before["S-001"] == after["S-001"]  # another consignee's order: unchanged
    with Ledger(url) as ledger:
        assert ledger.head() == head  # a dry run records nothing


def test_ledger_serve_refuses_sqlite_without_creating_a_file(tmp_path: Path) -> None:
    """The sequencer is for PostgreSQL: on a SQLite URL, a clear error and nothing made."""
    target = tmp_path / "ledger.db"
    result = runner.invoke(app, ["ledger", "serve", "--db", f"sqlite:///{target}"])
    assert isinstance(result.exception, InputError)
    assert "PostgreSQL" in str(result.exception)
    assert not target.exists()
