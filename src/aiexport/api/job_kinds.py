"""The kinds of background job this service runs: each one call into a library.

Plugging a new library in is one function of `(JobContext, params) -> result` and one entry in
`KINDS`. Results are JSON: an investigation's is contract §3 (`{"cases": [...]}`).
"""

from __future__ import annotations

from typing import Any

from aiexport.api.jobs import JobContext, JobKind, require_keys
from aiexport.errors import AiexportError


class Unavailable(AiexportError):
    """The library behind this job is not installed in this build."""

    status = 503


def _check_investigation(params: dict[str, Any]) -> dict[str, Any]:
    return require_keys(params, set())


def run_investigation(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    raise Unavailable("investigations need aiexport.intel, which this build does not have yet")


def _check_simulation(params: dict[str, Any]) -> dict[str, Any]:
    return require_keys(params, set())


def run_simulation(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    raise Unavailable("simulations need aiexport.simulate, which this build does not have yet")


KINDS: dict[str, JobKind] = {
    "investigation": JobKind(
        "investigation",
        run_investigation,
        _check_investigation,
        "rank cases of evasion in the recorded orders",
    ),
    "simulation": JobKind(
        "simulation", run_simulation, _check_simulation, "replay trade under the shipped scenarios"
    ),
}
