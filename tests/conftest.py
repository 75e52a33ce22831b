"""Shared fixtures."""

from __future__ import annotations

import pytest

from aiexport.rules import Engine, RuleSet, load_rule_set


@pytest.fixture(scope="session")
def diffusion() -> RuleSet:
    return load_rule_set("diffusion-2025")


@pytest.fixture(scope="session")
def ear2024() -> RuleSet:
    return load_rule_set("ear-2024")


@pytest.fixture(scope="session")
def engine(diffusion: RuleSet) -> Engine:
    return Engine(diffusion)
