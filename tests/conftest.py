"""Shared fixtures, and the database backends the ledger and service tests run on."""

from __future__ import annotations

import os

import pytest

from aiexport.rules import Engine, RuleSet, load_rule_set

PG_URL = os.environ.get("AIEXPORT_TEST_PG_URL")

# Ledger clients that find each other writing at once start a sequencer of their own
# (`aiexport.ledger._sequencer`): not in tests, whose concurrent writers are there to race on the
# database itself, except those of that feature (`tests/ledger/test_autoserve.py`).
os.environ["AIEXPORT_LEDGER_AUTOSERVE"] = "0"

# Each backend a database fixture runs on; PostgreSQL only where a server is configured.
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
        ],
    ),
]


@pytest.fixture(scope="session")
def diffusion() -> RuleSet:
    return load_rule_set("diffusion-2025")


@pytest.fixture(scope="session")
def ear2024() -> RuleSet:
    return load_rule_set("ear-2024")


@pytest.fixture(scope="session")
def engine(diffusion: RuleSet) -> Engine:
    return Engine(diffusion)
